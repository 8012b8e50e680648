"""Every sandbox adapter passes the same behavioural tests: local with bubblewrap, local as plain
subprocesses, and e2b (the real SDK against the loopback fake service)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minisweagent.exceptions import Submitted

from solver_core.errors import SandboxGone
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.sandbox.base import SandboxSpec
from tests.support.runtime import BACKENDS, sandbox_backend

pytestmark = pytest.mark.integration

CANARY = "sk-canary0123456789abcdefghijkl"


SUITE = uuid.uuid4().hex  # this test session's sandboxes, apart from any other's on a shared engine


@pytest.fixture(params=[*BACKENDS, "docker"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxBackend]:
    with sandbox_backend(request.param, tmp_path) as (backend, _service):
        yield backend


@pytest.fixture
def sandbox(backend: SandboxBackend) -> Iterator[Sandbox]:
    box = backend.create(SandboxSpec(metadata={"app": "solver", "test": "sandboxes", "suite": SUITE}, lifetime_s=300))
    yield box
    backend.kill(box.id)


def test_commands_return_output_and_exit_codes(sandbox: Sandbox) -> None:
    ok = sandbox.run("echo hello; echo oops >&2", timeout=30)
    assert ok.returncode == 0
    assert "hello" in ok.output
    assert "oops" in ok.output
    failed = sandbox.run("echo partial; exit 7", timeout=30)
    assert (failed.returncode, failed.ok) == (7, False)  # a non-zero exit is a result, not an error
    assert "partial" in failed.output


def test_cwd_and_explicit_env_are_honoured(sandbox: Sandbox) -> None:
    sandbox.run("mkdir -p repo/sub", timeout=30)
    result = sandbox.run("pwd; echo $GREETING", cwd=f"{sandbox.home}/repo/sub", env={"GREETING": "hi"}, timeout=30)
    cwd, greeting = result.output.splitlines()
    assert cwd.endswith("/repo/sub")  # the fake e2b service maps /home/user to a host directory
    assert greeting == "hi"


def test_the_environment_is_scrubbed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    env = sandbox.run("env", timeout=30).output
    assert CANARY not in env
    assert "AWS_" not in env
    assert "PATH=" in env
    assert "HOME=" in env


def test_files_round_trip(sandbox: Sandbox) -> None:
    sandbox.write_file(f"{sandbox.home}/dir/data.bin", b"\x00\x01binary\xff")
    assert sandbox.read_file(f"{sandbox.home}/dir/data.bin") == b"\x00\x01binary\xff"
    assert sandbox.run("wc -c < dir/data.bin", timeout=30).output.strip() == "9"


def test_execute_speaks_mini_swe_agents_environment_protocol(sandbox: Sandbox) -> None:
    sandbox.run("mkdir -p repo", timeout=30)
    output = sandbox.execute({"command": "echo in repo; pwd"})
    assert output["returncode"] == 0
    said, cwd = output["output"].splitlines()
    assert said == "in repo"
    assert cwd.endswith("/repo")
    with pytest.raises(Submitted) as submitted:
        sandbox.execute({"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT; echo final words"})
    assert submitted.value.messages[0]["extra"]["submission"] == "final words\n"
    assert "sandbox_id" in sandbox.serialize()["info"]["config"]
    assert CANARY not in str(sandbox.get_template_vars())


def test_a_timeout_kills_the_whole_process_tree(sandbox: Sandbox) -> None:
    # A grandchild in the background would outlive a deadline that only kills the direct child.
    command = "(sleep 3; echo late > late.txt) & sleep 60"
    started = time.monotonic()
    result = sandbox.run(command, timeout=1)
    assert result.timed_out
    assert result.returncode == 124
    assert time.monotonic() - started < 15
    time.sleep(3.5)
    assert "missing" in sandbox.run("test -e late.txt && echo present || echo missing", timeout=30).output
    sandbox.run("mkdir -p repo", timeout=30)
    timed = sandbox.execute({"command": "sleep 30"}, timeout=1)
    assert timed["returncode"] == 124
    assert "timed out" in timed["exception_info"]


def test_output_is_bounded(sandbox: Sandbox) -> None:
    result = sandbox.run("head -c 3000000 /dev/zero | tr '\\0' a; echo; echo END", timeout=60)
    assert result.truncated
    assert len(result.output) < 1_100_000
    assert result.output.rstrip().endswith("END")  # the tail is kept


def test_killing_a_sandbox_fails_its_running_command(backend: SandboxBackend, sandbox: Sandbox) -> None:
    outcome: list[BaseException | str] = []

    def run() -> None:
        try:
            sandbox.run("sleep 30; echo finished", timeout=60)
            outcome.append("finished")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert backend.kill(sandbox.id)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    assert isinstance(outcome[0], SandboxGone)
    with pytest.raises(SandboxGone):
        sandbox.run("echo again", timeout=10)
    with pytest.raises(SandboxGone):
        backend.connect(sandbox.id)
    assert not backend.kill(sandbox.id)  # gone already


def test_reconnect_by_id_and_list_by_metadata(backend: SandboxBackend, sandbox: Sandbox) -> None:
    sandbox.run("echo kept > note.txt", timeout=30)
    again = backend.connect(sandbox.id)
    assert again.run("cat note.txt", timeout=30).output.strip() == "kept"
    other = backend.create(SandboxSpec(metadata={"app": "solver", "test": "other", "suite": SUITE}, lifetime_s=300))
    try:  # filtered by this session's `suite` too: a docker engine or e2b team may hold others' sandboxes
        assert [s.id for s in backend.list({"test": "sandboxes", "suite": SUITE})] == [sandbox.id]
        assert {s.id for s in backend.list({"suite": SUITE})} == {sandbox.id, other.id}
        assert {s.id for s in backend.list({"app": "solver"})} >= {sandbox.id, other.id}
        assert backend.list({"test": "sandboxes", "suite": SUITE})[0].metadata["app"] == "solver"
    finally:
        backend.kill(other.id)
    assert [s.id for s in backend.list({"suite": SUITE})] == [sandbox.id]


def test_the_same_idempotency_key_gives_the_same_sandbox(backend: SandboxBackend) -> None:
    spec = SandboxSpec(metadata={"app": "solver"}, lifetime_s=300, idempotency_key="run-1-0")
    first = backend.create(spec)
    try:
        assert backend.create(spec).id == first.id
    finally:
        backend.kill(first.id)


def test_a_sandbox_dies_at_the_end_of_its_lifetime(backend: SandboxBackend) -> None:
    box = backend.create(SandboxSpec(metadata={"app": "solver", "test": "short"}, lifetime_s=2))
    time.sleep(3.5)
    with pytest.raises(SandboxGone):
        box.run("echo still here", timeout=10)
    backend.kill(box.id)
