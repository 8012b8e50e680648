"""Detached commands inside a sandbox, as every backend runs them: the runner script
(`scripts/job.sh`, passed inline so nothing in the sandbox can replace it) and what its `status`
action reports. The handles, waiting and deadlines on top of this are in `sandbox/detached.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

STATUS_MARKER = "SOLVER_JOB "
JOB_ID = re.compile(r"[a-z0-9]{8,64}")
# A status read returns at most this much of a finished command's output (its head and tail).
STATUS_OUTPUT_BYTES = 1_000_000
CONTROL_TIMEOUT_S = 60

JobState = Literal["absent", "starting", "running", "lost", "exited"]


@dataclass(frozen=True)
class JobStatus:
    """What a sandbox says about one detached command."""

    state: JobState
    exit_code: int | None = None
    cancelled: bool = False
    duration_s: float | None = None
    output: str = ""


@cache
def job_script() -> str:
    return (resources.files("solver_core.sandbox") / "scripts" / "job.sh").read_text()


def check_job_id(job_id: str) -> str:
    """Job ids become path segments: only what `new_job_id` makes is accepted."""
    if not JOB_ID.fullmatch(job_id):
        raise ValueError(f"{job_id!r} is not a job id")
    return job_id


def runner_argv(action: str, directory: str, *args: str) -> list[str]:
    """The runner's command line for `action` on the job in `directory`."""
    return ["bash", "-c", job_script(), "solver-job", action, directory, *args]


def parse_status(output: str) -> JobStatus | None:
    """The runner's report; None when the output carries none (the check itself failed)."""
    lines = output.split("\n")
    for index, line in enumerate(lines):
        if not line.startswith(STATUS_MARKER):
            continue
        words = line.removeprefix(STATUS_MARKER).split()
        state = words[0] if words else ""
        if state == "exited" and len(words) >= 4:
            return JobStatus(
                "exited",
                exit_code=int(words[1]),
                cancelled="cancelled" in words[4:],
                duration_s=_duration(words[2], words[3]),
                output="\n".join(lines[index + 1 :]),
            )
        if state in {"absent", "starting", "running", "lost"}:
            return JobStatus(state)  # type: ignore[arg-type]
        return None
    return None


def _duration(began: str, ended: str) -> float | None:
    try:
        seconds = float(ended) - float(began)
    except ValueError:  # a `date` without %N
        return None
    return round(seconds, 3) if seconds >= 0 else None
