"""Repository work inside a sandbox: prepare (clone, check out, set up), diff, and verify.

The scripts in `sandbox/scripts` are package data, uploaded to `$HOME/.solver/` in the sandbox
(outside the repository, so they never appear in a patch) and run there.

Paths inside command lines are written relative to `$HOME`, never as absolute host paths: a
sandbox's home may be mapped (e2b's /home/user), and only the working directory and file API
calls go through that mapping.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from solver_core.errors import RepositoryError
from solver_core.ports import Sandbox
from solver_core.sandbox.base import CommandResult

SCRIPTS = ("clone.sh", "setup.sh", "detect_tests.sh")
SOLVER_DIR = "$HOME/.solver"  # as commands see it
WORKDIR = "repo"  # relative to $HOME; `sandbox.workdir` is the same place as an absolute path
VERIFY_DIR = "verify"
ERROR_PREFIX = "SOLVER_ERROR: "
WARNING_PREFIX = "SOLVER_WARNING: "


@dataclass(frozen=True)
class PrepareTimeouts:
    clone_s: int = 600
    setup_s: int = 1200


@dataclass(frozen=True)
class DetectedTests:
    command: str
    reason: str  # what gave it away: "pytest.ini", "package.json scripts.test", …


@dataclass(frozen=True)
class Prepared:
    base_commit: str
    log: str
    warnings: list[str] = field(default_factory=list)
    tests: DetectedTests | None = None


@dataclass(frozen=True)
class PatchStats:
    files: int
    added: int
    removed: int


@dataclass(frozen=True)
class Verification:
    command: str
    exit_code: int
    passed: bool
    duration_s: float
    output: str
    timed_out: bool


def solver_dir(sandbox: Sandbox) -> str:
    return f"{sandbox.home}/.solver"


def git_auth_env(repo_url: str, token: str) -> dict[str, str]:
    """Git configuration, through the environment of one command, that sends a Basic auth header
    to the repository's own host only (so a redirect elsewhere never carries the token)."""
    parts = urlsplit(repo_url)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def upload_scripts(sandbox: Sandbox) -> None:
    package = resources.files("solver_core.sandbox") / "scripts"
    for name in SCRIPTS:
        sandbox.write_file(f"{solver_dir(sandbox)}/{name}", (package / name).read_bytes())


def _error_of(result: CommandResult, fallback: str) -> str:
    for line in reversed(result.output.splitlines()):
        if line.startswith(ERROR_PREFIX):
            return line.removeprefix(ERROR_PREFIX).strip()
    if result.timed_out:
        return f"{fallback}: timed out"
    return f"{fallback} (exit code {result.returncode}): {result.output.strip()[-300:]}"


def _local_bundle(sandbox: Sandbox, path: str) -> str:
    """Local repositories travel as a git bundle of all their refs: the same path on every backend."""
    with tempfile.TemporaryDirectory(prefix="solver-bundle-") as scratch:
        bundle = Path(scratch) / "repo.bundle"
        created = subprocess.run(
            ["git", "-C", path, "bundle", "create", str(bundle), "--all"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if created.returncode != 0:
            raise RepositoryError(f"could not read the local repository {path}: {created.stderr.strip()[-300:]}")
        sandbox.write_file(f"{solver_dir(sandbox)}/repo.bundle", bundle.read_bytes())
    return ".solver/repo.bundle"


def prepare(
    sandbox: Sandbox,
    *,
    repo: str,
    ref: str | None,
    setup_command: str | None,
    issue_text: str,
    token: str | None = None,
    timeouts: PrepareTimeouts = PrepareTimeouts(),
    detect_tests: bool = False,
) -> Prepared:
    upload_scripts(sandbox)
    is_local = repo.startswith("/")
    source = _local_bundle(sandbox, repo) if is_local else repo
    env = {"SOLVER_REPO": source, "SOLVER_REPO_DISPLAY": repo, "SOLVER_WORKDIR": WORKDIR}
    if ref:
        env["SOLVER_REF"] = ref
    if token and not is_local:
        env |= git_auth_env(repo, token)
    cloned = sandbox.run(f"bash {SOLVER_DIR}/clone.sh", env=env, timeout=timeouts.clone_s)
    if not cloned.ok:
        raise RepositoryError(_error_of(cloned, f"could not clone {repo}"))
    base = next((ln.split("=", 1)[1] for ln in cloned.output.splitlines() if ln.startswith("BASE_COMMIT=")), "")
    if not base:
        raise RepositoryError(f"cloning {repo} reported no base commit")
    setup = run_setup(sandbox, WORKDIR, setup_command, timeouts.setup_s)
    sandbox.write_file(f"{solver_dir(sandbox)}/issue.md", issue_text.encode())
    if is_local:
        sandbox.run(f'rm -f "$HOME/{source}"', timeout=30)
    detection = None
    if detect_tests:
        detection = sandbox.run(f"bash {SOLVER_DIR}/detect_tests.sh", env={"SOLVER_WORKDIR": WORKDIR}, timeout=120)
    log = cloned.output + setup.output + (detection.output if detection else "")
    warnings = [ln.removeprefix(WARNING_PREFIX) for ln in log.splitlines() if ln.startswith(WARNING_PREFIX)]
    return Prepared(base_commit=base, log=log, warnings=warnings, tests=parse_detected(detection))


def parse_detected(result: CommandResult | None) -> DetectedTests | None:
    """The command detect_tests.sh printed (it runs the base commit's files, before the agent)."""
    if result is None or not result.ok:
        return None
    found = dict(ln.split("=", 1) for ln in result.output.splitlines() if ln.startswith("SOLVER_TEST_") and "=" in ln)
    command = found.get("SOLVER_TEST_COMMAND", "").strip()
    return DetectedTests(command, found.get("SOLVER_TEST_REASON", "").strip()) if command else None


def run_setup(sandbox: Sandbox, workdir: str, setup_command: str | None, timeout_s: int) -> CommandResult:
    """Run setup.sh in `workdir` (relative to $HOME)."""
    env = {"SOLVER_WORKDIR": workdir}
    if setup_command:
        env["SOLVER_SETUP_COMMAND"] = setup_command
    result = sandbox.run(f"bash {SOLVER_DIR}/setup.sh", env=env, timeout=timeout_s)
    if not result.ok:
        raise RepositoryError(_error_of(result, "repository setup failed"))
    return result


def _staged_diff_command(base: str, out: str, extra: str) -> str:
    # A private index, seeded from the repository's, so the agent's own staging area is untouched.
    # The flags pin the patch format whatever the repository's own diff configuration says
    # (external diff drivers, textconv filters, no prefixes).
    index = f"{SOLVER_DIR}/index"
    return (
        f'cp .git/index "{index}" 2>/dev/null; export GIT_INDEX_FILE="{index}" && git add -A && '
        f"git diff --cached --binary --full-index --no-ext-diff --no-textconv --no-renames "
        f'--src-prefix=a/ --dst-prefix=b/ {base} > "{out}" && {extra}'
    )


def diff(sandbox: Sandbox, base: str, *, timeout: int = 120) -> bytes:
    """The working tree's changes against `base` (new, deleted and binary files included)."""
    command = _staged_diff_command(base, f"{SOLVER_DIR}/patch.diff", "true")
    result = sandbox.run(command, cwd=sandbox.workdir, timeout=timeout)
    if not result.ok:
        raise RepositoryError(f"could not compute the patch: {result.output.strip()[-300:]}")
    return sandbox.read_file(f"{solver_dir(sandbox)}/patch.diff")


def diff_if_changed(sandbox: Sandbox, base: str, previous_digest: str | None) -> tuple[str, bytes | None]:
    """The diff's digest, and its bytes only when they differ from `previous_digest` (one round trip
    when nothing changed, which is most steps)."""
    out = f"{SOLVER_DIR}/partial.diff"
    command = _staged_diff_command(base, out, f'sha256sum "{out}"')
    result = sandbox.run(command, cwd=sandbox.workdir, timeout=120)
    if not result.ok:
        raise RepositoryError(f"could not compute the partial diff: {result.output.strip()[-300:]}")
    digest = result.output.split()[0] if result.output.split() else ""
    if digest == previous_digest:
        return digest, None
    return digest, sandbox.read_file(f"{solver_dir(sandbox)}/partial.diff")


def patch_stats(patch: bytes) -> PatchStats:
    """Files touched and lines added/removed, read from the patch itself (binary files count as files)."""
    files, added, removed = 0, 0, 0
    for line in patch.decode("utf-8", errors="replace").splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++ "):
            added += 1
        elif line.startswith("-") and not line.startswith("--- "):
            removed += 1
    return PatchStats(files, added, removed)


def apply_patch(sandbox: Sandbox, patch: bytes, workdir: str) -> None:
    """Apply a patch (e.g. a checkpointed partial diff) to a checkout (`workdir` relative to $HOME)."""
    if not patch.strip():
        return
    sandbox.write_file(f"{solver_dir(sandbox)}/apply.diff", patch)
    command = f'cd "$HOME/{workdir}" && git apply --binary --whitespace=nowarn "{SOLVER_DIR}/apply.diff"'
    applied = sandbox.run(command, timeout=120)
    if not applied.ok:
        raise RepositoryError(f"the patch does not apply: {applied.output.strip()[-300:]}")


def verify(
    sandbox: Sandbox,
    *,
    base: str,
    patch: bytes,
    test_command: str,
    setup_command: str | None,
    timeout_s: int,
    setup_timeout_s: int = 1200,
) -> Verification:
    """Run the tests on a fresh checkout of `base` with `patch` applied and dependencies set up
    again, so nothing the agent left outside its patch can make them pass."""
    tree = f'"$HOME/{VERIFY_DIR}"'
    command = f"git worktree remove --force {tree} 2>/dev/null; rm -rf {tree}; "
    command += f"git worktree add --quiet --detach {tree} {base}"
    fresh = sandbox.run(command, cwd=sandbox.workdir, timeout=300)
    if not fresh.ok:
        raise RepositoryError(f"could not make a fresh checkout for verification: {fresh.output.strip()[-300:]}")
    apply_patch(sandbox, patch, VERIFY_DIR)
    run_setup(sandbox, VERIFY_DIR, setup_command, setup_timeout_s)
    started = time.monotonic()
    result = sandbox.run(test_command, cwd=f"{sandbox.home}/{VERIFY_DIR}", timeout=timeout_s)
    duration = time.monotonic() - started
    return Verification(
        command=test_command,
        exit_code=result.returncode,
        passed=result.ok,
        duration_s=round(duration, 3),
        output=result.output,
        timed_out=result.timed_out,
    )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
