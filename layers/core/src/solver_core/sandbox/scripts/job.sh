# A detached command: its runner, and the checks Solver makes on it later (from another invocation).
# Solver passes this text inline (`bash -c "<this>" solver-job ACTION DIR ...`), never as a file the
# sandbox could have changed. DIR is the job's own directory, named by a random id.
#
#   run DIR LIMIT CMD...  Run CMD (an argv) for at most LIMIT seconds (its whole process group is
#                         killed then), its output in DIR/output and its exit code in DIR/exit. A
#                         second `run` of the same DIR does nothing, so starting is idempotent. The
#                         runner holds DIR/lock while it lives: `status` tells "running" from "lost".
#   status DIR MAX        One line "SOLVER_JOB absent|starting|running|lost|exited CODE BEGAN ENDED
#                         [cancelled]" (times in epoch seconds, as the sandbox's clock says);
#                         after "exited", at most MAX bytes of the output (its head and tail).
#   stop DIR              Kill the command's process group; its exit is then recorded as cancelled.
set -u
action="${1:?action}"
dir="${2:?job directory}"
shift 2

case "$action" in
run)
  limit="${1:?limit}"
  shift
  mkdir -p "${dir%/*}" && mkdir "$dir" 2>/dev/null || exit 0
  exec 9>"$dir/lock"
  if command -v flock >/dev/null 2>&1; then
    flock -n 9 || exit 0
    echo lock >"$dir/started"
  else
    echo nolock >"$dir/started"
  fi
  if [ -e "$dir/cancelled" ]; then # stopped before it began
    echo "137 0 0" >"$dir/exit"
    exit 0
  fi
  began=$(date +%s.%N)
  # `timeout` leads its own process group: the deadline (and `stop`) reach every descendant.
  timeout -k 5 "$limit" "$@" >"$dir/output" 2>&1 </dev/null 9>&- &
  child=$!
  echo "$child" >"$dir/child"
  # A `stop` writes "cancelled" and then reads "child"; this side writes "child" and then reads
  # "cancelled": whichever comes second sees the other, so a stop at any moment kills it.
  if [ -e "$dir/cancelled" ]; then kill -KILL -- "-$child" 2>/dev/null; fi
  wait "$child"
  code=$?
  echo "$code $began $(date +%s.%N)" >"$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"
  ;;
status)
  max="${1:?max bytes}"
  if [ ! -d "$dir" ]; then
    echo "SOLVER_JOB absent"
    exit 0
  fi
  if [ ! -f "$dir/started" ]; then
    echo "SOLVER_JOB starting"
    exit 0
  fi
  alive=no
  if [ "$(cat "$dir/started")" = nolock ] || ! flock -n "$dir/lock" true 2>/dev/null; then alive=yes; fi
  # The runner writes the exit code before it lets go of the lock: checked in this order, a runner
  # that just finished is never taken for a lost one.
  if [ -f "$dir/exit" ]; then
    cancelled=""
    if [ -e "$dir/cancelled" ]; then cancelled=cancelled; fi
    echo "SOLVER_JOB exited $(cat "$dir/exit") $cancelled"
    size=$(stat -c %s "$dir/output" 2>/dev/null || echo 0)
    if [ "$size" -le "$max" ]; then
      cat "$dir/output" 2>/dev/null
    else
      half=$((max / 2))
      head -c "$half" "$dir/output"
      printf '\n[... %s bytes of output elided ...]\n' $((size - 2 * half))
      tail -c "$half" "$dir/output"
    fi
  elif [ "$alive" = yes ]; then
    echo "SOLVER_JOB running"
  else
    echo "SOLVER_JOB lost"
  fi
  ;;
stop)
  [ -d "$dir" ] || exit 0
  touch "$dir/cancelled"
  child="$(cat "$dir/child" 2>/dev/null)"
  if [ -n "$child" ]; then kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null; fi
  exit 0
  ;;
*)
  echo "unknown action $action" >&2
  exit 2
  ;;
esac
