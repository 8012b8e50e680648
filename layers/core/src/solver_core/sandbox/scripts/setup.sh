#!/usr/bin/env bash
# Install the repository's dependencies in $SOLVER_WORKDIR (relative to $HOME): run $SOLVER_SETUP_COMMAND when given,
# otherwise detect the ecosystem and install what it declares (a failed detected install is a
# warning: the agent can still work). Then record every untracked path that setup created in
# .git/info/exclude, so virtualenvs, node_modules and build output never enter the patch.
set -uo pipefail
cd "$HOME" && cd "${SOLVER_WORKDIR:?SOLVER_WORKDIR is required}" || exit 3

fail() {
  echo "SOLVER_ERROR: $*" >&2
  exit 3
}

warn() { echo "SOLVER_WARNING: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

install_python() {
  have python3 || { warn "python3 is not available; skipping Python dependencies"; return; }
  python3 -m venv .venv || { warn "could not create a virtualenv"; return; }
  local pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
  if [ -f requirements.txt ]; then "${pip[@]}" -r requirements.txt || warn "pip install -r requirements.txt failed"; fi
  if [ -f pyproject.toml ] || [ -f setup.py ]; then "${pip[@]}" -e . || warn "pip install -e . failed"; fi
  for extra in requirements-dev.txt requirements-test.txt; do
    if [ -f "$extra" ]; then "${pip[@]}" -r "$extra" || warn "pip install -r $extra failed"; fi
  done
}

install_node() {
  have npm || { warn "npm is not available; skipping Node dependencies"; return; }
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent || warn "npm ci failed"
  else npm install --no-audit --no-fund --silent || warn "npm install failed"; fi
}

detect_and_install() {
  local found=0
  if [ -f requirements.txt ] || [ -f pyproject.toml ] || [ -f setup.py ]; then found=1; install_python; fi
  if [ -f package.json ]; then found=1; install_node; fi
  if [ -f go.mod ]; then found=1; { have go && go mod download; } || warn "go mod download failed"; fi
  if [ -f Cargo.toml ]; then found=1; { have cargo && cargo fetch --quiet; } || warn "cargo fetch failed"; fi
  if [ -f pom.xml ]; then found=1; { have mvn && mvn -q -B dependency:go-offline; } || warn "maven dependency download failed"; fi
  if [ -f build.gradle ] || [ -f build.gradle.kts ]; then
    found=1
    if [ -x ./gradlew ]; then ./gradlew --quiet dependencies >/dev/null || warn "gradle dependencies failed"
    elif have gradle; then gradle --quiet dependencies >/dev/null || warn "gradle dependencies failed"
    else warn "gradle is not available"; fi
  fi
  [ "$found" = 1 ] || echo "no dependency manifest found; nothing to install"
}

if [ -n "${SOLVER_SETUP_COMMAND:-}" ]; then
  bash -c "$SOLVER_SETUP_COMMAND" || fail "setup command failed with exit code $?"
else
  detect_and_install
fi

# Everything untracked now was made by preparation: keep it out of every patch.
git ls-files --others --exclude-standard --directory -z | while IFS= read -r -d '' path; do
  printf '/%s\n' "${path%/}" >> .git/info/exclude
done
echo "SOLVER_PREPARED"
