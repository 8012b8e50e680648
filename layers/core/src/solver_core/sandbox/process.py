"""Running a host subprocess for a sandbox: bounded output, and the whole process group killed at
the deadline (mini-swe-agent's LocalEnvironment does the same, but buffers unbounded output)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from solver_core.sandbox.base import TIMEOUT_EXIT_CODE, CommandResult, OutputBuffer

# After the command exits, background children still holding its output pipe get this long to
# finish, then their process group is killed (mini-swe-agent would wait for them until the timeout).
DRAIN_AFTER_EXIT_S = 2.0


def _pump(stream: IO[bytes], buffer: OutputBuffer) -> None:
    fd = stream.fileno()
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            buffer.add(chunk)


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the process to exit, at most `timeout` seconds; True when it did.

    `Popen.wait(timeout=...)` polls with sleeps that double up to 50 ms, so a 10 ms command was
    waited for ~15 ms and a 40 ms one ~64 ms; every sandbox command paid it (the benchmarks found it).
    A pidfd becomes readable the moment the process exits, so polling it wakes up exactly then.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: the stdlib's polling wait
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        exited = bool(poller.poll(max(timeout, 0) * 1000))
    finally:
        os.close(pidfd)
    if exited:
        process.wait()  # reaps it at once: it has exited
    return exited


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, from /proc (Linux), parents before children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces and parentheses: the fields after its last ")" are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float,
    max_output_bytes: int,
    on_start: Callable[[int], None] | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> CommandResult:
    """Run argv in a new session; at the deadline kill its process group and report exit code 124."""
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    if on_start:
        on_start(process.pid)
    buffer = OutputBuffer(max_output_bytes)
    reader = threading.Thread(target=_pump, args=(process.stdout, buffer), daemon=True)
    reader.start()
    timed_out = False
    try:
        if not wait_exit(process, timeout):
            timed_out = True
            kill_group(process.pid)
            process.wait()
    finally:
        if on_exit:
            on_exit(process.pid)
    reader.join(DRAIN_AFTER_EXIT_S)
    if reader.is_alive():
        kill_group(process.pid)
        reader.join(DRAIN_AFTER_EXIT_S)
    process.stdout.close()
    returncode = TIMEOUT_EXIT_CODE if timed_out else process.returncode
    return CommandResult(buffer.text(), returncode, timed_out=timed_out, truncated=buffer.dropped > 0)
