"""Processes started inside a fake sandbox: local subprocesses with a recorded event log.

Every process gets its own session (process group), so killing the sandbox can take down
everything a command left behind, while a command deadline kills only the direct child,
as envd's ``exec.CommandContext`` does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from tests.fakes.e2b.paths import VIRTUAL_HOME, to_host

# The whole environment a sandboxed command sees besides its sandbox's and its own envs:
# nothing from the host process leaks in (no API keys, no tokens).
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# How long after the direct child exits we keep collecting output still in the pipes;
# a backgrounded grandchild may hold them open indefinitely.
_DRAIN_GRACE_S = 0.3
_READ_SIZE = 64 * 1024

Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class Output:
    stream: Stream
    data: bytes


@dataclass(frozen=True)
class Exit:
    exit_code: int
    exited: bool
    status: str
    error: str | None


def sandbox_env(home: Path, sandbox_envs: Mapping[str, str], command_envs: Mapping[str, str]) -> dict[str, str]:
    """The environment of a command. Values that are paths under ``/home/user`` name the sandbox's
    directory on the host, as a real sandbox would resolve them (commands run on the host here)."""
    env = {"PATH": _BASE_PATH, "HOME": str(home), "LANG": "C.UTF-8", "USER": "user"}
    env.update(sandbox_envs)
    env.update(command_envs)
    return {key: _host_value(home, value) for key, value in env.items()}


def _host_value(home: Path, value: str) -> str:
    virtual = str(VIRTUAL_HOME)
    return str(to_host(home, value)) if value == virtual or value.startswith(f"{virtual}/") else value


def describe_exit(returncode: int) -> Exit:
    """Mirror Go's ProcessState: a signalled process reports -1 and ``signal: <name>``."""
    if returncode < 0:
        name = _signal_name(-returncode)
        return Exit(exit_code=-1, exited=False, status=f"signal: {name}", error=f"signal: {name}")
    status = f"exit status {returncode}"
    return Exit(exit_code=returncode, exited=True, status=status, error=status if returncode else None)


def _signal_name(signum: int) -> str:
    names = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}
    try:
        return names.get(signal.Signals(signum), signal.Signals(signum).name.lower())
    except ValueError:
        return f"signal {signum}"


@dataclass
class ProcessRecord:
    popen: subprocess.Popen[bytes]
    cmd: str
    args: list[str]
    envs: dict[str, str]
    cwd: Path
    tag: str | None = None
    events: list[Output | Exit] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def finished(self) -> bool:
        with self.changed:
            return bool(self.events) and isinstance(self.events[-1], Exit)

    def wait_events(self, start: int, timeout: float) -> list[Output | Exit]:
        """Events from index ``start`` on, waiting up to ``timeout`` for at least one."""
        with self.changed:
            if len(self.events) <= start:
                self.changed.wait(timeout)
            return self.events[start:]

    def poke(self) -> None:
        """Wake stream readers so they re-check sandbox liveness and deadlines."""
        with self.changed:
            self.changed.notify_all()

    def kill_child(self) -> None:
        """SIGKILL the direct child only; its descendants keep running (envd deadline semantics)."""
        self.signal_child(signal.SIGKILL)

    def signal_child(self, signum: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL the whole process group the command started (sandbox teardown)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def write_stdin(self, data: bytes) -> None:
        if self.popen.stdin is None:
            raise BrokenPipeError("stdin is not open")
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        if self.popen.stdin is not None:
            self.popen.stdin.close()

    def append(self, event: Output | Exit) -> None:
        with self.changed:
            if self.events and isinstance(self.events[-1], Exit):
                return  # the stream already ended; late output of a grandchild is dropped
            self.events.append(event)
            self.changed.notify_all()


def spawn(
    cmd: str,
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    stdin: bool,
    tag: str | None = None,
) -> ProcessRecord:
    popen = subprocess.Popen(
        [cmd, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )
    record = ProcessRecord(popen=popen, cmd=cmd, args=args, envs=env, cwd=cwd, tag=tag)
    readers = [
        _start_thread(_pump, record, "stdout", popen.stdout),
        _start_thread(_pump, record, "stderr", popen.stderr),
    ]
    _start_thread(_watch_exit, record, readers)
    return record


def _start_thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _pump(record: ProcessRecord, stream: Stream, pipe: IO[bytes] | None) -> None:
    if pipe is None:
        return
    fd = pipe.fileno()
    try:
        while chunk := os.read(fd, _READ_SIZE):
            record.append(Output(stream, chunk))
    except OSError:
        pass
    finally:
        pipe.close()


def _watch_exit(record: ProcessRecord, readers: list[threading.Thread]) -> None:
    returncode = record.popen.wait()
    for reader in readers:
        reader.join(_DRAIN_GRACE_S)
    if record.popen.stdin is not None:
        with contextlib.suppress(OSError):
            record.popen.stdin.close()
    record.append(describe_exit(returncode))
