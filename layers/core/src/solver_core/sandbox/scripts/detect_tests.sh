#!/usr/bin/env bash
# Detect the test command of the repository in $SOLVER_WORKDIR (relative to $HOME), for a solve that
# gave none. Run after setup (setup.sh), on the base commit, before the agent touches anything.
# Prints SOLVER_TEST_COMMAND=<command> and SOLVER_TEST_REASON=<what gave it away>, or nothing.
set -uo pipefail
cd "$HOME" && cd "${SOLVER_WORKDIR:?SOLVER_WORKDIR is required}" || exit 3

have() { command -v "$1" >/dev/null 2>&1; }
warn() { echo "SOLVER_WARNING: $*"; }
found() {
  echo "SOLVER_TEST_COMMAND=$1"
  echo "SOLVER_TEST_REASON=$2"
  exit 0
}

pytest_marker() {
  if [ -f pytest.ini ]; then echo "pytest.ini"; return; fi
  if [ -f pyproject.toml ] && grep -Eq '^\[tool\.pytest' pyproject.toml; then echo "pyproject.toml [tool.pytest]"; return; fi
  if [ -f tox.ini ]; then echo "tox.ini"; return; fi
  if [ -f setup.cfg ] && grep -Eq '^\[tool:pytest\]' setup.cfg; then echo "setup.cfg [tool:pytest]"; return; fi
  if [ -d tests ] && [ -n "$(find tests -maxdepth 3 -name '*.py' -print -quit 2>/dev/null)" ]; then echo "tests/"; fi
}

pytest_command() {
  # The repository's own virtualenv (made by setup) first, then whatever python has pytest; nothing
  # when none has it.
  if [ -x .venv/bin/python ] && .venv/bin/python -m pytest --version >/dev/null 2>&1; then echo ".venv/bin/python -m pytest -q"
  elif have python3 && python3 -m pytest --version >/dev/null 2>&1; then echo "python3 -m pytest -q"
  elif have pytest; then echo "pytest -q"
  fi
}

npm_test_script() {
  [ -f package.json ] || return 1
  if have python3; then
    python3 -c '
import json, sys
script = (json.load(open("package.json")).get("scripts") or {}).get("test", "")
sys.exit(0 if script and "no test specified" not in script else 1)' 2>/dev/null
  else
    grep -Eq '"test"[[:space:]]*:' package.json && ! grep -q 'no test specified' package.json
  fi
}

marker=$(pytest_marker)
if [ -n "$marker" ]; then
  command=$(pytest_command)
  if [ -z "$command" ]; then
    warn "the repository uses pytest ($marker) but pytest is not installed in the sandbox; install it in the setup command"
    command="python3 -m pytest -q"
  fi
  found "$command" "$marker"
fi
if npm_test_script; then found "npm test" "package.json scripts.test"; fi
if [ -f go.mod ]; then found "go test ./..." "go.mod"; fi
if [ -f Cargo.toml ]; then found "cargo test" "Cargo.toml"; fi
if [ -f pom.xml ]; then found "mvn -q test" "pom.xml"; fi
if [ -f build.gradle ] || [ -f build.gradle.kts ]; then
  if [ -x ./gradlew ]; then found "./gradlew test" "build.gradle"; else found "gradle test" "build.gradle"; fi
fi
echo "SOLVER_NO_TESTS_DETECTED"
