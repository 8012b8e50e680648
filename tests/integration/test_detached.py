"""Detached commands on every sandbox backend: started in one call, checked on from another
connection (as the next Lambda invocation does), with their own deadline, a stop, and an outcome
read from the runner. Processes are looked for on this host (`pgrep`), where every backend's
processes are visible (bubblewrap's, the fake e2b service's and Docker's alike)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.errors import CommandLost, SandboxGone
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.sandbox import detached
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.detached import CommandSpec, JobResult
from solver_core.sandbox.local import LocalSandbox
from tests.support.runtime import BACKENDS, sandbox_backend

pytestmark = pytest.mark.integration


@pytest.fixture(params=[*BACKENDS, "docker"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str, tmp_path: Path) -> Iterator[SandboxBackend]:
    with sandbox_backend(kind, tmp_path) as (built, _service):
        yield built


@pytest.fixture
def sandbox(backend: SandboxBackend) -> Iterator[Sandbox]:
    box = backend.create(SandboxSpec(metadata={"app": "solver", "test": "detached"}, lifetime_s=300))
    yield box
    backend.kill(box.id)


def marked(command: str) -> tuple[str, str]:
    """`command` with a unique token in its shell's command line, so `pgrep -f` finds it."""
    token = f"solver-test-{uuid.uuid4().hex}"
    return f"{command}; : {token}", token


def running(token: str) -> bool:
    """The command's own shell runs (the runner's command line holds the token too, after a `#`)."""
    found = subprocess.run(
        ["pgrep", "-f", f"^bash (--noprofile --norc )?-l?c [^#]*{token}"], capture_output=True, check=False
    )
    return found.returncode == 0


def gone_within(token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def start(sandbox: Sandbox, command: str, timeout_s: int = 60) -> detached.Job:
    job = detached.new_job(sandbox.id, timeout_s)
    detached.start(sandbox, job, CommandSpec(command, timeout_s, cwd=sandbox.home))
    return job


def finish(backend: SandboxBackend, job: detached.Job, within: float = 60) -> JobResult:
    """Wait for the job through a fresh connection to its sandbox: another invocation's view."""
    result = detached.wait(backend.connect(job.sandbox_id), job, until=time.monotonic() + within)
    assert result is not None, f"job {job.id} still running after {within} s"
    return result


def test_a_detached_command_runs_on_after_the_call_and_reports_its_exit_code_and_output(
    backend: SandboxBackend, sandbox: Sandbox
) -> None:
    job = start(sandbox, "echo out; echo err >&2; sleep 1; echo late; exit 3")
    started = time.monotonic()
    assert detached.check(sandbox, job) == "running"
    assert time.monotonic() - started < 1  # starting did not wait for the command
    result = finish(backend, job)
    assert (result.returncode, result.ok, result.timed_out, result.cancelled) == (3, False, False, False)
    assert result.output.split() == ["out", "err", "late"]
    assert 1 <= result.duration_s < 10


def test_a_passing_command_with_env_and_cwd(backend: SandboxBackend, sandbox: Sandbox) -> None:
    sandbox.run("mkdir -p work", timeout=30)
    job = detached.new_job(sandbox.id, 60)
    spec = CommandSpec('pwd; echo "$GREETING"', 60, cwd=f"{sandbox.home}/work", env={"GREETING": "hello"})
    detached.start(sandbox, job, spec)
    result = finish(backend, job)
    assert result.ok
    cwd, greeting = result.output.split()
    assert (cwd.endswith("/work"), greeting) == (True, "hello")


def test_a_detached_command_reads_no_startup_file(backend: SandboxBackend, sandbox: Sandbox) -> None:
    """What the agent can write in its HOME (or name in BASH_ENV/ENV) never runs with Solver's
    detached commands: not in the runner's shell, not in the command's (e2b's SDK starts every
    command in a login shell)."""
    home = sandbox.run('printf %s "$HOME"', timeout=30).output
    hook = b'echo startup >> "$HOME/read-a-startup-file"\n'
    for name in (".profile", ".bash_profile", ".bash_login", ".bashrc", "env.sh"):
        sandbox.write_file(f"{sandbox.home}/{name}", hook)
    job = detached.new_job(sandbox.id, 60)
    startup = {"BASH_ENV": f"{home}/env.sh", "ENV": f"{home}/env.sh"}
    detached.start(sandbox, job, CommandSpec('printf "%s" "$HOME"', 60, env=startup))
    result = finish(backend, job)
    assert result.ok
    assert result.output == home  # the command still has its real HOME
    assert sandbox.run('test -e "$HOME/read-a-startup-file"', timeout=30).returncode != 0


def test_the_deadline_kills_the_whole_process_group(backend: SandboxBackend, sandbox: Sandbox) -> None:
    command, token = marked("(sleep 120; : child) & sleep 120")
    job = start(sandbox, command, timeout_s=1)
    result = finish(backend, job, within=30)
    assert (result.timed_out, result.ok) == (True, False)
    assert gone_within(token, 10)


def test_a_stopped_job_is_killed_with_its_children_and_reported_cancelled(
    backend: SandboxBackend, sandbox: Sandbox
) -> None:
    command, token = marked("(sleep 120; : child) & sleep 120")
    job = start(sandbox, command)
    deadline = time.monotonic() + 10
    while not running(token):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    backend.connect(sandbox.id).stop_job(job.id)
    result = finish(backend, job, within=30)
    assert (result.cancelled, result.timed_out, result.ok) == (True, False, False)
    assert gone_within(token, 10)


def test_starting_a_job_twice_runs_it_once(backend: SandboxBackend, sandbox: Sandbox) -> None:
    job = detached.new_job(sandbox.id, 60)
    spec = CommandSpec("echo run >> count.txt; sleep 1", 60, cwd=sandbox.home)
    detached.start(sandbox, job, spec)
    detached.start(sandbox, job, spec)  # a retried invocation starting it again
    assert finish(backend, job).ok
    detached.start(sandbox, job, spec)  # and again after it ended
    time.sleep(0.5)
    assert sandbox.run("cat count.txt", timeout=30).output.split() == ["run"]


def test_killing_the_sandbox_kills_its_jobs(backend: SandboxBackend, sandbox: Sandbox) -> None:
    command, token = marked("sleep 120")
    job = start(sandbox, command)
    deadline = time.monotonic() + 10
    while not running(token):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    backend.kill(sandbox.id)
    assert gone_within(token, 15)
    with pytest.raises(SandboxGone):
        detached.check(backend.connect(job.sandbox_id), job)


def test_a_runner_killed_from_outside_is_reported_lost(backend: SandboxBackend, sandbox: Sandbox) -> None:
    command, token = marked("sleep 120")
    job = start(sandbox, command)
    deadline = time.monotonic() + 10
    while not running(token):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    runner = subprocess.run(["pgrep", "-f", f"solver-job run .*{job.id}"], capture_output=True, text=True, check=True)
    for pid in runner.stdout.split():
        os.kill(int(pid), signal.SIGKILL)  # an out-of-memory kill, say: no exit code is written
    with pytest.raises(CommandLost):
        finish(backend, job, within=10)
    sandbox.stop_job(job.id)
    assert gone_within(token, 10)


def test_a_job_that_never_started_is_started_again(backend: SandboxBackend, sandbox: Sandbox) -> None:
    job = detached.new_job(sandbox.id, 60).model_copy(update={"started_at": time.time() - detached.START_GRACE_S - 1})
    spec = CommandSpec("echo started late", 60, cwd=sandbox.home)
    assert detached.check(sandbox, job) == "absent"  # the invocation that recorded it died before starting it
    restart = lambda: detached.start(sandbox, job, spec)  # noqa: E731
    result = detached.wait(sandbox, job, until=time.monotonic() + 30, restart=restart)
    assert result is not None
    assert result.output.strip() == "started late"


def test_under_bubblewrap_the_sandbox_cannot_forge_a_jobs_outcome(tmp_path: Path) -> None:
    with sandbox_backend("local-bwrap", tmp_path) as (backend, _service):
        sandbox = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=300))
        assert isinstance(sandbox, LocalSandbox)
        job = start(sandbox, "sleep 2; echo real; exit 1")
        directory = sandbox.job_dir(job.id)
        assert not directory.startswith(sandbox.home)
        forged = sandbox.run(
            f"echo '0 0 0' > {directory}/exit; echo forged > {directory}/output; kill -9 $(cat {directory}/child)",
            timeout=30,
        )
        assert not forged.ok
        result = finish(backend, job)
        assert (result.returncode, result.output.strip()) == (1, "real")
        backend.kill(sandbox.id)
