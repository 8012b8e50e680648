"""The real, unmodified e2b SDK against the loopback ``FakeE2BService``.

These tests pin both the fake's behaviour and the SDK's error mapping that the rest of the
suite relies on (which exception the SDK raises for a gone sandbox, a 429, a 503, ...).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import (
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    RateLimitException,
    Sandbox,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    ServiceBusyException,
    TimeoutException,
)

from tests.fakes.e2b import FakeE2BService

pytestmark = pytest.mark.integration

_E2B_ENV = ("E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG", "E2B_API_URL", "E2B_SANDBOX_URL", "E2B_HTTP_VERSION")


@pytest.fixture(autouse=True)
def _no_e2b_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake must be reachable through explicit kwargs alone.
    for name in _E2B_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FakeE2BService]:
    with FakeE2BService(tmp_path / "e2b") as service:
        yield service
    _assert_no_processes_left(service.root)


@pytest.fixture
def kw(svc: FakeE2BService) -> dict[str, Any]:
    return svc.sdk_kwargs()


@pytest.fixture
def sandbox(svc: FakeE2BService, kw: dict[str, Any]) -> Sandbox:
    return Sandbox.create(timeout=60, **kw)


def _pid_state(pid: int) -> str | None:
    """The /proc state letter of a process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _running(pid: int) -> bool:
    return _pid_state(pid) not in (None, "Z", "X")  # a zombie is dead, just not yet reaped


def _processes_under(root: Path) -> list[int]:
    """Live processes whose HOME is a sandbox directory of this fake (every sandbox process)."""
    marker = f"HOME={root}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(marker) for var in environ.split(b"\0")) and _running(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def _assert_no_processes_left(root: Path) -> None:
    _wait_for(lambda: not _processes_under(root), timeout=3)
    assert _processes_under(root) == []


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _read_pid(path: Path) -> int:
    assert _wait_for(lambda: path.exists() and path.read_text().strip() != "", timeout=3)
    return int(path.read_text())


# --- create and commands -------------------------------------------------------------------------


def test_create_records_request_and_runs_echo(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    sandbox = Sandbox.create("solver-template", timeout=120, metadata={"run": "r1"}, envs={"A": "1"}, **kw)

    chunks: list[str] = []
    result = sandbox.commands.run("echo hi", on_stdout=chunks.append)

    assert (result.exit_code, result.stdout, result.stderr) == (0, "hi\n", "")
    assert "".join(chunks) == "hi\n"
    assert svc.live_sandbox_ids() == [sandbox.sandbox_id]
    assert svc.sandbox_dir(sandbox.sandbox_id).is_dir()
    [request] = svc.create_requests
    assert request["template"] == "solver-template"
    assert (request["metadata"], request["timeout"], request["envs"]) == ({"run": "r1"}, 120, {"A": "1"})
    assert request["idempotency_key"] is None


def test_stdout_is_streamed_before_the_command_ends(sandbox: Sandbox) -> None:
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()

    sandbox.commands.run(
        "echo first; sleep 0.5; echo second",
        on_stdout=lambda chunk: arrivals.append((time.monotonic() - started, chunk)),
    )

    assert "".join(chunk for _, chunk in arrivals) == "first\nsecond\n"
    assert arrivals[0][1] == "first\n"
    assert arrivals[0][0] < 0.4  # delivered while the command was still sleeping


def test_nonzero_exit_raises_command_exit_exception(sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitException) as caught:
        sandbox.commands.run("echo out; echo boom >&2; exit 7")

    assert caught.value.exit_code == 7
    assert caught.value.stdout == "out\n"
    assert caught.value.stderr == "boom\n"


def test_cwd_and_envs_are_honoured_and_host_env_is_hidden(
    svc: FakeE2BService, kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLVER_CANARY_SECRET", "must-not-leak")
    sandbox = Sandbox.create(timeout=60, envs={"SANDBOX_VAR": "from-create"}, **kw)
    home = svc.sandbox_dir(sandbox.sandbox_id)
    sandbox.files.make_dir("/home/user/work")

    result = sandbox.commands.run(
        'pwd; echo "$SANDBOX_VAR $CMD_VAR $HOME"; echo "canary=${SOLVER_CANARY_SECRET:-absent}"',
        cwd="/home/user/work",
        envs={"CMD_VAR": "from-run"},
    )
    default_cwd = sandbox.commands.run("pwd").stdout.strip()
    environment = sandbox.commands.run("env").stdout

    assert result.stdout.splitlines() == [str(home / "work"), f"from-create from-run {home}", "canary=absent"]
    assert default_cwd == str(home)
    assert "SOLVER_CANARY_SECRET" not in environment
    assert "E2B" not in environment


def test_files_round_trip(svc: FakeE2BService, sandbox: Sandbox) -> None:
    home = svc.sandbox_dir(sandbox.sandbox_id)

    info = sandbox.files.write("/home/user/repo/notes.txt", "hello\n")
    sandbox.files.write("repo/data.bin", b"\x00\x01\xff\r\n")
    sandbox.commands.run("echo from-command > repo/cmd.txt")

    assert info.path == "/home/user/repo/notes.txt"
    assert (home / "repo" / "notes.txt").read_text() == "hello\n"
    assert sandbox.files.read("/home/user/repo/notes.txt") == "hello\n"
    assert sandbox.files.read("/home/user/repo/data.bin", format="bytes") == bytearray(b"\x00\x01\xff\r\n")
    assert sandbox.files.read("/home/user/repo/cmd.txt") == "from-command\n"
    entries = sandbox.files.list("/home/user/repo")
    assert sorted(e.name for e in entries) == ["cmd.txt", "data.bin", "notes.txt"]
    assert {e.path for e in entries} >= {"/home/user/repo/notes.txt"}
    assert sandbox.files.exists("/home/user/repo/notes.txt")
    assert not sandbox.files.exists("/home/user/repo/missing.txt")
    assert sandbox.files.make_dir("/home/user/repo/sub") is True
    assert sandbox.files.make_dir("/home/user/repo/sub") is False
    sandbox.files.remove("/home/user/repo/notes.txt")
    assert not (home / "repo" / "notes.txt").exists()
    with pytest.raises(FileNotFoundException):
        sandbox.files.read("/home/user/repo/notes.txt")


def test_background_command_can_be_listed_and_killed(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 30", background=True)

    assert handle.pid in [p.pid for p in sandbox.commands.list()]
    assert sandbox.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as caught:
        handle.wait()
    assert caught.value.exit_code == -1  # killed by a signal, as Go's ProcessState reports it
    assert sandbox.commands.kill(handle.pid) is False


def test_concurrent_commands_in_several_sandboxes(kw: dict[str, Any]) -> None:
    sandboxes = [Sandbox.create(timeout=60, **kw) for _ in range(2)]
    results: dict[tuple[int, int], str] = {}

    def run(box: int, job: int) -> None:
        results[box, job] = sandboxes[box].commands.run(f"sleep 0.5; echo {box}-{job}").stdout

    threads = [threading.Thread(target=run, args=(b, j)) for b in range(2) for j in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.monotonic() - started < 2.0  # six 0.5 s commands ran in parallel
    assert results == {(b, j): f"{b}-{j}\n" for b in range(2) for j in range(3)}


# --- connect, list, kill ---------------------------------------------------------------------------


def test_connect_by_id_extends_the_timeout(sandbox: Sandbox, kw: dict[str, Any]) -> None:
    before = Sandbox.get_info(sandbox.sandbox_id, **kw).end_at

    same = Sandbox.connect(sandbox.sandbox_id, timeout=600, **kw)

    assert same.sandbox_id == sandbox.sandbox_id
    assert same.commands.run("echo connected").stdout == "connected\n"
    assert Sandbox.get_info(sandbox.sandbox_id, **kw).end_at > before


def test_list_by_metadata_returns_only_matching_live_sandboxes(kw: dict[str, Any]) -> None:
    wanted = {"run": "r 1/&=x", "kind": "solver"}
    match = Sandbox.create(timeout=60, metadata=wanted, **kw)
    killed = Sandbox.create(timeout=60, metadata=wanted, **kw)
    Sandbox.create(timeout=60, metadata={"run": "other", "kind": "solver"}, **kw)
    killed.kill()

    listed = Sandbox.list(query=SandboxQuery(metadata=wanted), **kw).next_items()

    assert [info.sandbox_id for info in listed] == [match.sandbox_id]
    assert listed[0].metadata == wanted
    assert len(Sandbox.list(query=SandboxQuery(metadata={"kind": "solver"}), **kw).next_items()) == 2


def test_kill_static_and_instance(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    first = Sandbox.create(timeout=60, **kw)
    second = Sandbox.create(timeout=60, **kw)

    assert first.kill() is True
    assert Sandbox.kill(first.sandbox_id, **kw) is False
    assert Sandbox.kill(second.sandbox_id, **kw) is True
    assert second.kill() is False
    assert svc.live_sandbox_ids() == []


def test_calls_after_kill_raise_not_running_or_not_found(sandbox: Sandbox, kw: dict[str, Any]) -> None:
    sandbox.kill()

    with pytest.raises(SandboxNotRunningException):  # envd plane: the proxy's 502 "... was not found"
        sandbox.commands.run("echo hi")
    with pytest.raises(SandboxNotRunningException):
        sandbox.files.read("/home/user/anything")
    assert sandbox.is_running() is False
    with pytest.raises(SandboxNotFoundException):  # control plane: 404
        Sandbox.connect(sandbox.sandbox_id, **kw)
    with pytest.raises(SandboxNotFoundException):
        sandbox.set_timeout(30)
    with pytest.raises(SandboxNotFoundException):
        Sandbox.get_info(sandbox.sandbox_id, **kw)


def test_external_kill_fails_an_in_flight_command_promptly(svc: FakeE2BService, sandbox: Sandbox) -> None:
    pid_file = svc.sandbox_dir(sandbox.sandbox_id) / "sleep.pid"
    killer = threading.Timer(0.5, svc.kill_sandbox, args=(sandbox.sandbox_id,))
    killer.start()
    started = time.monotonic()

    with pytest.raises(SandboxNotRunningException):
        sandbox.commands.run("echo $$ > sleep.pid; exec sleep 30")

    assert time.monotonic() - started < 2.5
    assert _wait_for(lambda: not _running(_read_pid(pid_file)), timeout=2)


def test_command_timeout_kills_only_the_direct_child(svc: FakeE2BService, sandbox: Sandbox) -> None:
    home = svc.sandbox_dir(sandbox.sandbox_id)

    with pytest.raises(TimeoutException) as caught:
        sandbox.commands.run("echo $$ > parent.pid; sleep 30 & echo $! > child.pid; wait", timeout=1)

    assert type(caught.value) is TimeoutException  # not SandboxNotRunning/Unreachable: it is alive
    parent, child = _read_pid(home / "parent.pid"), _read_pid(home / "child.pid")
    assert _wait_for(lambda: not _running(parent), timeout=2)
    assert _running(child)  # the backgrounded grandchild survives, as under envd
    assert sandbox.commands.run("echo still-alive").stdout == "still-alive\n"
    sandbox.kill()  # killing the sandbox takes the whole process group down
    assert _wait_for(lambda: not _running(child), timeout=2)


def test_lifetime_expiry_kills_the_sandbox(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    short = Sandbox.create(timeout=1, **kw)
    shortened = Sandbox.create(timeout=60, **kw)
    shortened.set_timeout(1)
    handle = short.commands.run("sleep 30", background=True)

    assert _wait_for(lambda: svc.live_sandbox_ids() == [], timeout=3)
    with pytest.raises(SandboxNotRunningException):
        short.commands.run("echo late")
    with pytest.raises(SandboxNotRunningException):
        handle.wait()
    assert not _running(handle.pid)


# --- control-plane failures --------------------------------------------------------------------------


def test_capacity_limit_answers_429(tmp_path: Path) -> None:
    with FakeE2BService(tmp_path, capacity=1) as svc:
        kw = svc.sdk_kwargs()
        first = Sandbox.create(timeout=60, **kw)

        with pytest.raises(RateLimitException, match="maximum number of concurrent E2B sandboxes"):
            Sandbox.create(timeout=60, retries=0, **kw)

        first.kill()
        Sandbox.create(timeout=60, **kw)


def test_injected_503_surfaces_as_service_busy(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    svc.fail_next(1, 503)
    with pytest.raises(ServiceBusyException) as caught:
        Sandbox.create(timeout=60, retries=0, **kw)
    assert caught.value.status_code == 503

    svc.fail_next(4, 503)  # one attempt plus the SDK's 3 default retries
    with pytest.raises(ServiceBusyException):
        Sandbox.list(**kw).next_items()


def test_sdk_retries_a_single_503_transparently(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    svc.fail_next(1, 503)

    sandbox = Sandbox.create(timeout=60, idempotency_key="create-1", **kw)

    assert svc.live_sandbox_ids() == [sandbox.sandbox_id]
    assert [r["idempotency_key"] for r in svc.create_requests] == ["create-1", "create-1"]


def test_wrong_api_key_is_rejected(kw: dict[str, Any]) -> None:
    bad = {**kw, "api_key": "e2b_wrong"}
    with pytest.raises(AuthenticationException):
        Sandbox.create(timeout=60, **bad)
    with pytest.raises(AuthenticationException):
        Sandbox.list(**bad).next_items()


def test_idempotency_key_returns_the_same_sandbox(svc: FakeE2BService, kw: dict[str, Any]) -> None:
    first = Sandbox.create(timeout=60, metadata={"job": "j1"}, idempotency_key="job-j1", **kw)
    again = Sandbox.create(timeout=60, metadata={"job": "j1"}, idempotency_key="job-j1", **kw)
    other = Sandbox.create(timeout=60, metadata={"job": "j1"}, idempotency_key="job-j2", **kw)

    assert again.sandbox_id == first.sandbox_id
    assert other.sandbox_id != first.sandbox_id
    assert sorted(svc.live_sandbox_ids()) == sorted([first.sandbox_id, other.sandbox_id])
    assert [r["idempotency_key"] for r in svc.create_requests] == ["job-j1", "job-j1", "job-j2"]


def test_unreachable_control_plane_raises_httpx_connect_error(tmp_path: Path) -> None:
    service = FakeE2BService(tmp_path).start()
    kw = service.sdk_kwargs()
    service.stop()

    with pytest.raises(httpx.ConnectError):  # the SDK does not wrap control-plane transport errors
        Sandbox.list(**kw).next_items()


def test_stop_kills_every_sandbox_process(tmp_path: Path) -> None:
    service = FakeE2BService(tmp_path).start()
    sandbox = Sandbox.create(timeout=60, **service.sdk_kwargs())
    handle = sandbox.commands.run("sleep 30 & sleep 30", background=True)

    service.stop()

    assert _wait_for(lambda: not _running(handle.pid), timeout=2)
    _assert_no_processes_left(service.root)
    assert os.path.isdir(tmp_path / sandbox.sandbox_id)  # sandbox files stay for inspection
