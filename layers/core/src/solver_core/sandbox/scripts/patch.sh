#!/usr/bin/env bash
# Write the working tree's changes against $SOLVER_BASE (new, deleted and binary files included) to
# $HOME/$SOLVER_OUT, run in the repository. A patch over $SOLVER_MAX_BYTES is never written whole: one
# line "SOLVER_PATCH_TOO_LARGE=<bytes> <what>" says so. Otherwise it prints
# "SOLVER_PATCH_BYTES=<bytes>" and "SOLVER_PATCH_SHA256=<digest>".
#
# A private index ($HOME/$SOLVER_INDEX, seeded from the repository's) leaves the agent's staging area
# untouched. The diff flags pin the patch format whatever the repository's own configuration says
# (external diff drivers, textconv filters, no prefixes).
set -uo pipefail
base="${SOLVER_BASE:?SOLVER_BASE is required}"
out="$HOME/${SOLVER_OUT:?SOLVER_OUT is required}"
max="${SOLVER_MAX_BYTES:?SOLVER_MAX_BYTES is required}"
index="$HOME/${SOLVER_INDEX:?SOLVER_INDEX is required}"
git=(git -c core.hooksPath=/dev/null -c core.fsmonitor=false)

fail() {
  echo "SOLVER_ERROR: $*" >&2
  exit 3
}

# -p keeps the index's mtime: git rechecks the content of files as new as the index ("racily clean");
# a fresh mtime would make an edit of the same size, in the second of the checkout, look unchanged.
cp -p .git/index "$index" 2>/dev/null
export GIT_INDEX_FILE="$index"
"${git[@]}" add -A || fail "git add failed"
# $SOLVER_EXCLUDE (optional): one path left as it is on the base commit (the reproduction script,
# which is kept apart from the patch).
if [ -n "${SOLVER_EXCLUDE:-}" ]; then
  if "${git[@]}" diff --cached --quiet --no-ext-diff --no-textconv "$base" -- ":(literal)$SOLVER_EXCLUDE"; then
    echo "SOLVER_PATCH_EXCLUDED=unchanged"
  else
    echo "SOLVER_PATCH_EXCLUDED=changed"
  fi
  "${git[@]}" reset -q "$base" -- ":(literal)$SOLVER_EXCLUDE" > /dev/null 2>&1 \
    || "${git[@]}" rm -q --cached --ignore-unmatch -- ":(literal)$SOLVER_EXCLUDE" > /dev/null \
    || fail "could not leave $SOLVER_EXCLUDE out of the patch"
fi

# Sizes first, from the object database: a file whose change is larger than the limit ends the
# check before git renders it (a binary diff holds the whole file in memory).
raw="$index.raw"
"${git[@]}" diff --cached --raw --no-renames --abbrev=40 -z "$base" > "$raw" || fail "git diff --raw failed"
size_of() {
  case "$1" in
    *[!0]*) git cat-file -s "$1" 2>/dev/null || echo 0 ;;
    *) echo 0 ;;
  esac
}
while IFS= read -r -d '' meta && IFS= read -r -d '' path; do
  read -r _ _ old new _ <<< "$meta"
  before="$(size_of "$old")"
  after="$(size_of "$new")"
  change=$(( after > before ? after - before : before - after ))
  if (( change > max )); then
    echo "SOLVER_PATCH_TOO_LARGE=$change bytes of changes in $(printf '%q' "$path")"
    exit 0
  fi
done < "$raw"

"${git[@]}" diff --cached --binary --full-index --no-ext-diff --no-textconv --no-renames \
  --src-prefix=a/ --dst-prefix=b/ "$base" | head -c "$(( max + 1 ))" > "$out"
codes=("${PIPESTATUS[@]}")
bytes="$(wc -c < "$out")"
if (( bytes > max )); then
  echo "SOLVER_PATCH_TOO_LARGE=$bytes bytes or more"
  exit 0
fi
# 141: git stopped by SIGPIPE because head had read enough, which the size check above reports.
[ "${codes[0]}" = 0 ] || fail "git diff failed with exit code ${codes[0]}"
[ "${codes[1]}" = 0 ] || fail "could not write the patch"
echo "SOLVER_PATCH_BYTES=$bytes"
echo "SOLVER_PATCH_SHA256=$(sha256sum "$out" | cut -d' ' -f1)"
