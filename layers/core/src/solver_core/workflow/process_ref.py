"""Which process runs a local solve, so that another process can tell whether it still runs.

A local execution is named `local:<host>:<pid>:<start>:<solve id>`, where `<start>` is the
process's start time in clock ticks since boot (/proc/<pid>/stat), so a pid reused by another
process is not taken for it. A `solver solve` killed with `kill -9` leaves its solve `running`;
any later command on the same machine sees that the process is gone (docs/architecture.md,
"Local crashes and `solver resume`").
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

PREFIX = "local:"


@dataclass(frozen=True)
class LocalRef:
    host: str
    pid: int
    start: str
    solve_id: UUID


def process_start(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name, in parentheses, may hold spaces
    return fields[19] if len(fields) > 19 else None


def execution_ref(solve_id: UUID) -> str:
    """This process's name for running `solve_id`."""
    pid = os.getpid()
    return f"{PREFIX}{socket.gethostname()}:{pid}:{process_start(pid) or '0'}:{solve_id}"


def parse(ref: str | None) -> LocalRef | None:
    if not ref or not ref.startswith(PREFIX):
        return None
    parts = ref.removeprefix(PREFIX).split(":")
    if len(parts) != 4:
        return None
    with contextlib.suppress(ValueError):
        return LocalRef(parts[0], int(parts[1]), parts[2], UUID(parts[3]))
    return None


def is_this_process(ref: LocalRef) -> bool:
    return ref.host == socket.gethostname() and ref.pid == os.getpid()


def process_alive(ref: LocalRef) -> bool:
    """Whether the process that took the solve still runs (another machine's: assumed so)."""
    if ref.host != socket.gethostname():
        return True
    start = process_start(ref.pid)
    if start is None:
        if not Path("/proc/self/stat").exists():  # no procfs: only the pid can be checked
            try:
                os.kill(ref.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return False
    return ref.start in {start, "0"}


def process_ended(execution_ref: str | None) -> bool:
    """Whether the execution is another process's on this machine, and that process is gone
    (this process's own executions are its threads: the orchestrator knows about those)."""
    ref = parse(execution_ref)
    return ref is not None and not is_this_process(ref) and not process_alive(ref)
