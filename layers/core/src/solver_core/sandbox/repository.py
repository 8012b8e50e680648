"""Repository work inside a sandbox: prepare (clone, check out, set up), diff, and verify.

The scripts in `sandbox/scripts` are package data, passed inline to `bash -c` (never a file the
sandbox could have changed); clone and setup run as detached commands (`sandbox/detached.py`).
Solver's own files live in `$HOME/.solver/`, outside the repository, so they never enter a patch.

Paths inside command lines are written relative to `$HOME`, never as absolute host paths: a
sandbox's home may be mapped (e2b's /home/user), and only the working directory and file API
calls go through that mapping.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from solver_core.errors import PatchTooLarge, RepositoryError, SolverError
from solver_core.ports import Sandbox
from solver_core.sandbox import detached, test_changes
from solver_core.sandbox.base import CommandResult
from solver_core.sandbox.detached import CommandSpec, JobResult
from solver_core.selection import junit
from solver_core.selection.junit import CaseOutcome

BUNDLE = ".solver/repo.bundle"  # relative to $HOME
SOLVER_DIR = "$HOME/.solver"  # as commands see it
WORKDIR = "repo"  # relative to $HOME; `sandbox.workdir` is the same place as an absolute path
ERROR_PREFIX = "SOLVER_ERROR: "
DEFAULT_MAX_PATCH_BYTES = 5_000_000  # SOLVER_MAX_PATCH_BYTES
WARNING_PREFIX = "SOLVER_WARNING: "


@dataclass(frozen=True)
class PrepareTimeouts:
    clone_s: int = 600
    setup_s: int = 1200


@dataclass(frozen=True)
class DetectedTests:
    command: str
    reason: str  # what gave it away: "pytest.ini", "package.json scripts.test", …
    warnings: tuple[str, ...] = ()  # e.g. the runner is not installed in the sandbox


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
    test_changes: list[str] = field(default_factory=list)
    cases: dict[str, CaseOutcome] | None = None  # per test, when the runner wrote a JUnit XML report


def solver_dir(sandbox: Sandbox) -> str:
    return f"{sandbox.home}/.solver"


def git_config_env(*pairs: tuple[str, str]) -> dict[str, str]:
    """Git configuration through the environment (`GIT_CONFIG_COUNT`/`_KEY_n`/`_VALUE_n`), which
    outranks every config file and lives only as long as the command."""
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for number, (key, value) in enumerate(pairs):
        env |= {f"GIT_CONFIG_KEY_{number}": key, f"GIT_CONFIG_VALUE_{number}": value}
    return env


def git_auth_config(repo_url: str, token: str) -> tuple[str, str]:
    """A Basic auth header sent to the repository's own host only (so a redirect elsewhere never
    carries the token)."""
    parts = urlsplit(repo_url)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return f"http.{parts.scheme}://{parts.netloc}/.extraHeader", f"Authorization: Basic {basic}"


@cache
def script(name: str) -> str:
    return (resources.files("solver_core.sandbox") / "scripts" / name).read_text()


def inline(name: str) -> str:
    """A command that runs one of our scripts passed inline: nothing the sandbox holds can swap it."""
    return f"bash -c {shlex.quote(script(name))} {name}"


def git_auth_env(repo_url: str, token: str) -> dict[str, str]:
    """The auth header as the configuration of one command's environment."""
    return git_config_env(git_auth_config(repo_url, token))


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
        sandbox.write_file(f"{sandbox.home}/{BUNDLE}", bundle.read_bytes())
    return BUNDLE


def clone_spec(sandbox: Sandbox, *, repo: str, ref: str | None, token: str | None, timeout_s: int) -> CommandSpec:
    """The clone as a detached command (a local repository is uploaded as a bundle first)."""
    is_local = repo.startswith("/")
    source = _local_bundle(sandbox, repo) if is_local else repo
    env = {"SOLVER_REPO": source, "SOLVER_REPO_DISPLAY": repo, "SOLVER_WORKDIR": WORKDIR}
    if ref:
        env["SOLVER_REF"] = ref
    if token and not is_local:
        env |= git_auth_env(repo, token)
    return CommandSpec(inline("clone.sh"), timeout_s, env=env)


def cloned(result: CommandResult, repo: str) -> str:
    """The base commit a finished clone reports, or the reason it failed."""
    if not result.ok:
        raise RepositoryError(_error_of(result, f"could not clone {repo}"))
    base = next((ln.split("=", 1)[1] for ln in result.output.splitlines() if ln.startswith("BASE_COMMIT=")), "")
    if not base:
        raise RepositoryError(f"cloning {repo} reported no base commit")
    return base


def setup_spec(sandbox: Sandbox, workdir: str, setup_command: str | None, timeout_s: int) -> CommandSpec:
    """setup.sh in `workdir` (relative to $HOME) as a detached command."""
    env = {"SOLVER_WORKDIR": workdir}
    if setup_command:
        env["SOLVER_SETUP_COMMAND"] = setup_command
    return CommandSpec(inline("setup.sh"), timeout_s, env=env)


def set_up(result: CommandResult) -> list[str]:
    """The warnings of a finished setup, or the reason it failed."""
    if not result.ok:
        raise RepositoryError(_error_of(result, "repository setup failed"))
    return [ln.removeprefix(WARNING_PREFIX) for ln in result.output.splitlines() if ln.startswith(WARNING_PREFIX)]


def finish_prepare(sandbox: Sandbox, *, repo: str, issue_text: str, timeout_s: float = 30) -> None:
    """After clone and setup: the issue where the agent finds it; an uploaded bundle removed."""
    sandbox.write_file(f"{solver_dir(sandbox)}/issue.md", issue_text.encode())
    if repo.startswith("/"):
        sandbox.run(f'rm -f "$HOME/{BUNDLE}"', timeout=timeout_s)


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
    """Clone, check out and set up in one call (detached commands waited for here)."""
    clone = detached.run_to_end(
        sandbox, clone_spec(sandbox, repo=repo, ref=ref, token=token, timeout_s=timeouts.clone_s)
    )
    base = cloned(clone, repo)
    setup = detached.run_to_end(sandbox, setup_spec(sandbox, WORKDIR, setup_command, timeouts.setup_s))
    warnings = set_up(setup)
    finish_prepare(sandbox, repo=repo, issue_text=issue_text)
    detection = run_detection(sandbox) if detect_tests else None
    log = clone.output + setup.output + (detection.output if detection else "")
    return Prepared(base_commit=base, log=log, warnings=warnings, tests=parse_detected(detection))


def run_detection(sandbox: Sandbox, timeout_s: float = 120) -> CommandResult:
    """detect_tests.sh in the repository (the base commit's files, before the agent)."""
    return sandbox.run(inline("detect_tests.sh"), env={"SOLVER_WORKDIR": WORKDIR}, timeout=timeout_s)


def parse_detected(result: CommandResult | None) -> DetectedTests | None:
    """The command detect_tests.sh printed (it runs the base commit's files, before the agent)."""
    if result is None or not result.ok:
        return None
    lines = result.output.splitlines()
    found = dict(ln.split("=", 1) for ln in lines if ln.startswith("SOLVER_TEST_") and "=" in ln)
    command = found.get("SOLVER_TEST_COMMAND", "").strip()
    warnings = tuple(ln.removeprefix(WARNING_PREFIX) for ln in lines if ln.startswith(WARNING_PREFIX))
    return DetectedTests(command, found.get("SOLVER_TEST_REASON", "").strip(), warnings) if command else None


@dataclass(frozen=True)
class PatchFile:
    """A computed patch in the sandbox, measured there: `size` bytes, or `too_large` saying why."""

    path: str
    size: int
    sha256: str
    too_large: str | None = None
    excluded_changed: bool = False  # the excluded path differs from the base commit


def _compute_patch(sandbox: Sandbox, base: str, name: str, max_bytes: int, exclude: str | None = None) -> PatchFile:
    """Run patch.sh (uploaded again: the agent may have changed its copy) in the repository;
    `exclude`: a path left out (as it is on the base commit)."""
    package = resources.files("solver_core.sandbox") / "scripts"
    sandbox.write_file(f"{solver_dir(sandbox)}/patch.sh", (package / "patch.sh").read_bytes())
    env = {
        "SOLVER_BASE": base,
        "SOLVER_OUT": f".solver/{name}",
        "SOLVER_MAX_BYTES": str(max_bytes),
        "SOLVER_INDEX": ".solver/index",
    }
    if exclude:
        env["SOLVER_EXCLUDE"] = exclude
    result = sandbox.run(f"bash {SOLVER_DIR}/patch.sh", cwd=sandbox.workdir, env=env, timeout=300)
    if not result.ok:
        raise RepositoryError(_error_of(result, "could not compute the patch"))
    values = dict(line.split("=", 1) for line in result.output.splitlines() if line.startswith("SOLVER_PATCH_"))
    path = f"{solver_dir(sandbox)}/{name}"
    if "SOLVER_PATCH_TOO_LARGE" in values:
        return PatchFile(path, max_bytes + 1, "", too_large=values["SOLVER_PATCH_TOO_LARGE"])
    changed = values.get("SOLVER_PATCH_EXCLUDED") == "changed"
    try:
        return PatchFile(
            path, int(values["SOLVER_PATCH_BYTES"]), values["SOLVER_PATCH_SHA256"], excluded_changed=changed
        )
    except (KeyError, ValueError):
        raise RepositoryError(f"computing the patch reported no size: {result.output.strip()[-300:]}") from None


def _read_patch(sandbox: Sandbox, patch: PatchFile, max_bytes: int) -> bytes:
    """The patch's bytes, never more than `max_bytes` of them read (whatever the sandbox reported)."""
    if patch.too_large is None:
        data = sandbox.read_file(patch.path, limit=max_bytes)
        if len(data) <= max_bytes:
            return data
    detail = patch.too_large or "more than the sandbox reported"
    raise PatchTooLarge(f"the patch is larger than the limit of {max_bytes} bytes ({detail})")


def diff(sandbox: Sandbox, base: str, *, max_bytes: int = DEFAULT_MAX_PATCH_BYTES) -> bytes:
    """The working tree's changes against `base` (new, deleted and binary files included); a patch
    over `max_bytes` raises PatchTooLarge before any of it is read."""
    return _read_patch(sandbox, _compute_patch(sandbox, base, "patch.diff", max_bytes), max_bytes)


def diff_without(
    sandbox: Sandbox, base: str, path: str, *, max_bytes: int = DEFAULT_MAX_PATCH_BYTES
) -> tuple[bytes, bool]:
    """`diff` with `path` (relative to the repository) left as it is on the base commit, and whether
    the working tree changed that path (the reproduction script: kept apart from the patch)."""
    found = _compute_patch(sandbox, base, "patch.diff", max_bytes, path)
    return _read_patch(sandbox, found, max_bytes), found.excluded_changed


MAX_SCRIPT_BYTES = 64_000  # a reproduction script; a larger file is not one


def read_script(sandbox: Sandbox, path: str) -> bytes | None:
    """The reproduction script the agent left at `path` in the repository; None when there is none
    (or it is a directory, unreadable, or over MAX_SCRIPT_BYTES)."""
    try:
        data = sandbox.read_file(f"{sandbox.workdir}/{path}", limit=MAX_SCRIPT_BYTES)
    except (SolverError, OSError, ValueError):  # ValueError: a link out of the local sandbox
        return None
    return data if len(data) <= MAX_SCRIPT_BYTES else None


def write_scripts(sandbox: Sandbox, checkout: Checkout, scripts: list[bytes]) -> list[str]:
    """The reproduction scripts, each in Solver's directory of the checkout's HOME (outside the
    repository); their paths, in order."""
    paths = []
    for number, script in enumerate(scripts):
        path = f"{checkout.home}/.solver/reproduce-{number}"
        sandbox.write_file(path, script)
        paths.append(path)
    return paths


def script_spec(checkout: Checkout, script: str, path: str, command: str, timeout_s: int) -> CommandSpec:
    """One reproduction script, copied to `path` in the checkout, run by `command` from the
    repository's root, as a detached command."""
    env = {**checkout.env, "SOLVER_SCRIPT": script, "SOLVER_SCRIPT_PATH": path}
    run = f'mkdir -p "$(dirname -- "$SOLVER_SCRIPT_PATH")" && cp -- "$SOLVER_SCRIPT" "$SOLVER_SCRIPT_PATH" && {command}'
    return CommandSpec(run, timeout_s, cwd=checkout.workdir, env=env)


def diff_if_changed(
    sandbox: Sandbox, base: str, previous_digest: str | None, *, max_bytes: int = DEFAULT_MAX_PATCH_BYTES
) -> tuple[str, bytes | None]:
    """The diff's digest, and its bytes only when they differ from `previous_digest` (one round trip
    when nothing changed, which is most steps). PatchTooLarge when it is over `max_bytes`."""
    patch = _compute_patch(sandbox, base, "partial.diff", max_bytes)
    if patch.too_large is None and patch.sha256 == previous_digest:
        return patch.sha256, None
    return patch.sha256, _read_patch(sandbox, patch, max_bytes)


_BLOB_ID = re.compile(r"^[0-9a-f]{40}$")
MAX_IMAGE_BYTES = 1_000_000  # per file read for a consensus key; a larger one falls back to the diff


def post_images(sandbox: Sandbox, patch: bytes) -> dict[str, bytes | None] | None:
    """The changed files as the patch leaves them (None: deleted), read from the checkout; None when
    the patch cannot be read or a file is binary, unreadable or over MAX_IMAGE_BYTES."""
    files = test_changes.changed_files(patch)
    if files is None:
        return None
    images: dict[str, bytes | None] = {}
    for change in files:
        if change.binary is not None or change.binary_without_data:
            return None
        if change.new_path is None:
            images[change.old_path or ""] = None
            continue
        try:
            data = sandbox.read_file(f"{sandbox.workdir}/{change.new_path}", limit=MAX_IMAGE_BYTES)
        except (SolverError, OSError):
            return None
        if len(data) > MAX_IMAGE_BYTES:
            return None
        images[change.new_path] = data
    return images


def read_blobs(sandbox: Sandbox, blobs: list[str], *, max_bytes: int) -> dict[str, bytes] | None:
    """The contents of these blobs from the repository's object database (where computing the patch
    put every changed file), at most `max_bytes` in all; None when they are larger. The ids are
    checked here to be hex; the caller checks the bytes against them."""
    if not blobs:
        return {}
    if not all(_BLOB_ID.match(blob) for blob in blobs):
        raise RepositoryError("a blob id in the patch is not a full git object id")
    out = f"{SOLVER_DIR}/post-images"  # as commands see it; the file API reads it at solver_dir(sandbox)
    sizes = sandbox.run(
        f'mkdir -p "{out}" && for b in {" ".join(blobs)}; do '
        f'git -c core.hooksPath=/dev/null cat-file blob $b > "{out}/$b" || exit 3; wc -c < "{out}/$b"; done',
        cwd=sandbox.workdir,
        timeout=300,
    )
    if not sizes.ok:
        raise RepositoryError(_error_of(sizes, "could not read the changed files from git"))
    try:
        total = sum(int(line) for line in sizes.output.split())
    except ValueError:
        raise RepositoryError("reading the changed files from git reported no sizes") from None
    if total > max_bytes:
        return None
    found: dict[str, bytes] = {}
    for blob in blobs:
        data = sandbox.read_file(f"{solver_dir(sandbox)}/post-images/{blob}", limit=max_bytes)
        max_bytes -= len(data)
        if max_bytes < 0:  # larger than the sandbox reported
            return None
        found[blob] = data
    return found


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


# Git configuration for every command of a verification: no hooks, no fsmonitor command, no
# replacement objects.
VERIFY_GIT_CONFIG = (("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false"))
VERIFY_GIT_ENV = {**git_config_env(*VERIFY_GIT_CONFIG), "GIT_NO_REPLACE_OBJECTS": "1"}


def apply_patch(
    sandbox: Sandbox, patch: bytes, workdir: str, env: Mapping[str, str] | None = None, *, timeout_s: float = 120
) -> None:
    """Apply a patch (e.g. a checkpointed partial diff) to a checkout (`workdir` relative to $HOME)."""
    if not patch.strip():
        return
    sandbox.write_file(f"{(env or {}).get('HOME', sandbox.home)}/.solver/apply.diff", patch)
    command = (
        f'cd "$HOME/{workdir}" && git -c core.hooksPath=/dev/null apply --binary --whitespace=nowarn '
        f'"{SOLVER_DIR}/apply.diff"'
    )
    applied = sandbox.run(command, env=env, timeout=timeout_s)
    if not applied.ok:
        raise RepositoryError(f"the patch does not apply: {applied.output.strip()[-300:]}")


@dataclass(frozen=True)
class VerifyJob:
    """What VerifyPatch runs: the stored patch on `base`, then setup and the test command."""

    base: str
    patch: bytes
    test_command: str
    setup_command: str | None
    timeout_s: int
    setup_timeout_s: int = 1200
    clone_timeout_s: int = 600


@dataclass(frozen=True)
class Checkout:
    """Where a verification runs: `<home>/repo`, and the environment of every command there (git
    hooks, fsmonitor and replacement objects off; in the agent's sandbox also a HOME of its own and
    no user site-packages)."""

    home: str
    env: Mapping[str, str]

    @property
    def workdir(self) -> str:
        return f"{self.home}/{WORKDIR}"

    @classmethod
    def fresh(cls, sandbox: Sandbox) -> Checkout:
        """The clone in a sandbox the agent never touched (`verify_in: fresh_sandbox`)."""
        return cls(sandbox.home, dict(VERIFY_GIT_ENV))

    @classmethod
    def isolated(cls, home: str) -> Checkout:
        """A worktree under a new, empty HOME in the agent's sandbox (`verify_in: same_sandbox`)."""
        return cls(home, {"HOME": home, "PYTHONNOUSERSITE": "1", **VERIFY_GIT_ENV})


def verify_clone_spec(sandbox: Sandbox, job: VerifyJob, *, repo: str, token: str | None = None) -> CommandSpec:
    """The clone at the base commit in a fresh sandbox, as a detached command (Solver's clone.sh
    passed inline; the auth header is in this command's environment alone)."""
    is_local = repo.startswith("/")
    source = _local_bundle(sandbox, repo) if is_local else repo
    env = {"SOLVER_REPO": source, "SOLVER_REPO_DISPLAY": repo, "SOLVER_WORKDIR": WORKDIR, "SOLVER_REF": job.base}
    config = VERIFY_GIT_CONFIG + ((git_auth_config(repo, token),) if token and not is_local else ())
    env |= {**VERIFY_GIT_ENV, **git_config_env(*config)}
    return CommandSpec(inline("clone.sh"), job.clone_timeout_s, env=env)


def verify_cloned(result: CommandResult, job: VerifyJob, repo: str) -> None:
    """A finished verification clone is at the base commit, or the reason it is not."""
    if not result.ok:
        raise RepositoryError(_error_of(result, f"could not clone {repo} for verification"))
    if f"BASE_COMMIT={job.base}" not in result.output.splitlines():
        raise RepositoryError(f"the verification clone of {repo} is not at the base commit {job.base}")


def isolated_checkout(sandbox: Sandbox, job: VerifyJob, *, timeout_s: float = 300) -> Checkout:
    """A new worktree of the base commit under a new, empty HOME in the agent's sandbox (no
    ~/.profile, ~/.bashrc, git config or user site-packages of the agent's)."""
    checkout = Checkout.isolated(f"{sandbox.home}/.solver-verify-{secrets.token_hex(8)}")
    added = sandbox.run(
        f'mkdir -p "$HOME" && git worktree add --quiet --detach "$HOME/{WORKDIR}" {shlex.quote(job.base)}',
        cwd=sandbox.workdir,
        env=checkout.env,
        timeout=timeout_s,
    )
    if not added.ok:
        remove_checkout(sandbox, checkout)
        raise RepositoryError(f"could not make a fresh checkout for verification: {added.output.strip()[-300:]}")
    return checkout


def remove_checkout(sandbox: Sandbox, checkout: Checkout, *, timeout_s: float = 120) -> None:
    """Best effort: an isolated checkout's worktree and HOME (the sandbox is killed next anyway)."""
    with contextlib.suppress(SolverError):
        sandbox.run(
            f'git worktree remove --force "$HOME/{WORKDIR}"; case "$HOME" in */.solver-verify-*) rm -rf "$HOME";; esac',
            cwd=sandbox.workdir,
            env=checkout.env,
            timeout=timeout_s,
        )


def apply_for_verification(
    sandbox: Sandbox, job: VerifyJob, checkout: Checkout, *, timeout_s: float = 120
) -> list[str]:
    """The stored patch applied to the checkout (reset first, so a repeat after a cut-off attempt
    applies it to the base commit again); returns what it changes in the tests."""
    reset = sandbox.run(
        f'cd "$HOME/{WORKDIR}" && git reset --quiet --hard && git clean --quiet -ffdx',
        env=checkout.env,
        timeout=timeout_s,
    )
    if not reset.ok:
        raise RepositoryError(f"could not reset the verification checkout: {reset.output.strip()[-300:]}")
    files = test_changes.changed_files(job.patch) or []
    sectioned = test_changes.sectioned_paths(files)
    before = {path: _read_optional(sandbox, checkout, path, timeout_s) for path in sectioned}
    apply_patch(sandbox, job.patch, WORKDIR, checkout.env, timeout_s=timeout_s)
    contents = {path: (before[path], _read_optional(sandbox, checkout, path, timeout_s)) for path in sectioned}
    return test_changes.test_changes(job.patch, job.test_command, contents)


def verify_setup_spec(job: VerifyJob, checkout: Checkout) -> CommandSpec:
    """setup.sh (passed inline) in the verification checkout, as a detached command."""
    env = {**checkout.env, "SOLVER_WORKDIR": WORKDIR}
    if job.setup_command:
        env["SOLVER_SETUP_COMMAND"] = job.setup_command
    return CommandSpec(inline("setup.sh"), job.setup_timeout_s, cwd=checkout.home, env=env)


def junit_report(checkout: Checkout) -> str:
    """A new path for the test runner's JUnit XML report, outside the repository's tree."""
    return f"{checkout.home}/.solver/junit-{secrets.token_hex(8)}.xml"


def test_spec(job: VerifyJob, checkout: Checkout, report: str) -> CommandSpec:
    """The test command in the verification checkout, as a detached command (its JUnit XML report
    asked for at `report`)."""
    env = {**checkout.env, **junit_env(report)}
    return CommandSpec(job.test_command, job.timeout_s, cwd=checkout.workdir, env=env)


def verification(
    job: VerifyJob, result: JobResult, changes: list[str], cases: dict[str, CaseOutcome] | None = None
) -> Verification:
    """The verdict of a finished test command: its own exit code, as the runner recorded it."""
    return Verification(
        command=job.test_command,
        exit_code=result.returncode,
        passed=result.ok,
        duration_s=result.duration_s,
        output=result.output,
        timed_out=result.timed_out,
        test_changes=changes,
        cases=cases,
    )


def verify_fresh(sandbox: Sandbox, job: VerifyJob, *, repo: str, token: str | None = None) -> Verification:
    """Verification in a sandbox the agent never touched, in one call: Solver's scripts clone `repo`
    at the base commit, apply the stored patch, set up and run the tests. Nothing of the agent's but
    its patch is there. (VerifyPatch runs the same phases across invocations: workflow/verification.py.)"""
    verify_cloned(detached.run_to_end(sandbox, verify_clone_spec(sandbox, job, repo=repo, token=token)), job, repo)
    return _verify_checkout(sandbox, job, Checkout.fresh(sandbox))


def verify_same(sandbox: Sandbox, job: VerifyJob) -> Verification:
    """Verification in the sandbox the agent used (`verify_in: same_sandbox`), in one call. It
    trusts the agent: a live process of its own could still interfere. What it left on disk is kept
    out: a new worktree of the base commit under a new, empty HOME, Solver's scripts passed inline,
    git hooks, fsmonitor and replacement objects off, and no shell startup file read."""
    checkout = isolated_checkout(sandbox, job)
    try:
        return _verify_checkout(sandbox, job, checkout)
    finally:
        remove_checkout(sandbox, checkout)


def _verify_checkout(sandbox: Sandbox, job: VerifyJob, checkout: Checkout) -> Verification:
    changes = apply_for_verification(sandbox, job, checkout)
    set_up(detached.run_to_end(sandbox, verify_setup_spec(job, checkout)))
    report = junit_report(checkout)
    tests = detached.run_to_end(sandbox, test_spec(job, checkout, report))
    return verification(job, tests, changes, read_junit(sandbox, report))


def junit_env(report: str) -> dict[str, str]:
    """Where the test runner writes its JUnit XML report: pytest through PYTEST_ADDOPTS (a command
    that already names a report keeps its own), jest-junit through its variable, and any command
    through SOLVER_JUNIT_XML (`gotestsum --junitfile "$SOLVER_JUNIT_XML" …`)."""
    return {"PYTEST_ADDOPTS": f"--junitxml={report}", "JEST_JUNIT_OUTPUT_FILE": report, "SOLVER_JUNIT_XML": report}


def read_junit(sandbox: Sandbox, report: str) -> dict[str, CaseOutcome] | None:
    """The per-test outcomes of the report, None when there is none (or it is unreadable or too
    large): then the exit code alone decides."""
    try:
        data = sandbox.read_file(report, limit=junit.MAX_REPORT_BYTES)
    except (SolverError, OSError):  # no report written (a backend may say so either way)
        return None
    if not data or len(data) > junit.MAX_REPORT_BYTES:
        return None
    try:
        return junit.case_outcomes(data) or None
    except (junit.ParseError, ValueError):
        return None


def _read_optional(sandbox: Sandbox, checkout: Checkout, path: str, timeout_s: float) -> bytes | None:
    """A regular file of the checkout (`path` relative to it), None when absent or not a regular
    file; at most MAX_CONFIG_BYTES + 1 bytes of it are read."""
    quoted = shlex.quote(path)
    exists = sandbox.run(
        f'cd "$HOME/{WORKDIR}" && test -f {quoted} && ! test -L {quoted}', env=checkout.env, timeout=timeout_s
    )
    if not exists.ok:
        return None
    return sandbox.read_file(f"{checkout.workdir}/{path}", limit=test_changes.MAX_CONFIG_BYTES)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
