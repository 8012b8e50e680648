#!/usr/bin/env bash
# Clone the repository into $SOLVER_WORKDIR (relative to $HOME) and check out $SOLVER_REF (branch, tag or sha; the
# default branch when empty). Prints BASE_COMMIT=<sha> on success. On failure prints one line
# "SOLVER_ERROR: <reason>" to stderr and exits non-zero.
#
# For private repositories the caller passes an HTTP Authorization header to git through
# GIT_CONFIG_COUNT/GIT_CONFIG_KEY_*/GIT_CONFIG_VALUE_* in THIS command's environment only: it is
# never written to .git/config or any file, and later commands never see it.
set -uo pipefail
cd "$HOME" || exit 3  # relative paths below are relative to the sandbox's home

src="${SOLVER_REPO:?SOLVER_REPO is required}"
dest="${SOLVER_WORKDIR:?SOLVER_WORKDIR is required}"
ref="${SOLVER_REF:-}"
shown="${SOLVER_REPO_DISPLAY:-$src}"
export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false GCM_INTERACTIVE=never
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

fail() {
  echo "SOLVER_ERROR: $*" >&2
  exit 3
}

last_error() { grep -v '^\s*$' "$errors" | tail -n 2 | tr '\n' ' ' | cut -c1-400; }

rm -rf "$dest"
git clone --quiet --no-checkout "$src" "$dest" 2>"$errors" || fail "could not clone $shown: $(last_error)"
cd "$dest" || fail "clone of $shown left no directory"

resolve() {
  local candidate
  for candidate in "refs/remotes/origin/$1" "refs/tags/$1" "$1"; do
    if git rev-parse --verify --quiet "$candidate^{commit}" 2>/dev/null; then
      return 0
    fi
  done
  # A sha or ref the default clone did not bring (a pull request head, say): ask for it directly.
  if git fetch --quiet origin "$1" 2>"$errors"; then
    git rev-parse --verify --quiet "FETCH_HEAD^{commit}"
    return $?
  fi
  # Only a remote that answered "no such ref" says the ref is missing; anything else (the network,
  # the server) may pass, and is reported as a failed fetch (exit 4) rather than a missing ref.
  grep -qiE "couldn't find remote ref|not our ref|bad object|unadvertised object|did not send all necessary objects|invalid refspec|not a valid" "$errors" && return 1
  return 4
}

if [ -z "$ref" ]; then
  commit="$(git rev-parse --verify --quiet 'HEAD^{commit}')" || fail "$shown has no commits on its default branch"
else
  commit="$(resolve "$ref")"
  case $? in
    0) ;;
    4) fail "could not fetch '$ref' from $shown: $(last_error)" ;;
    *) fail "ref '$ref' not found in $shown" ;;
  esac
fi

git checkout --quiet --detach "$commit" 2>"$errors" || fail "could not check out '$ref' of $shown: $(last_error)"
git config user.name "Solver"
git config user.email "solver@localhost"
git config core.pager cat
# Caches that running code leaves behind are never part of a fix, even where .gitignore forgets them.
printf '%s\n' '__pycache__/' '*.py[cod]' '.pytest_cache/' '.mypy_cache/' '.ruff_cache/' '.tox/' \
  '.coverage' '.DS_Store' '*.egg-info/' '.eggs/' '.gradle/' >> .git/info/exclude
echo "BASE_COMMIT=$(git rev-parse HEAD)"
