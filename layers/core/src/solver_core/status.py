"""Statuses of solves and runs and the only transitions allowed between them.

Transitions are checked here and enforced in the database by conditional updates
(`UPDATE … WHERE status IN sources_of(target)`), so two concurrent writers cannot both win and a
terminal row cannot be moved, except a retryable failed run going back to `queued`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class SolveStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_cancelled(self) -> bool:
        """Being cancelled or cancelled: no champion is picked, nothing is published."""
        return self in {SolveStatus.CANCELLING, SolveStatus.CANCELLED}


class RunStatus(StrEnum):
    QUEUED = "queued"
    LAUNCHING = "launching"
    PREPARING = "preparing"
    SOLVING = "solving"
    COLLECTING = "collecting"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """What a run produced, apart from its lifecycle status: a run that `succeeded` (finished its
    steps) may still have failed its tests. A solve's outcome is its champion's."""

    PENDING = "pending"  # not finished yet
    TESTS_PASSED = "tests_passed"  # a patch, and the tests passed with it
    TESTS_FAILED = "tests_failed"  # a patch, and the tests failed (or timed out) with it
    UNTESTED = "untested"  # a patch, and no tests were run (none given or detected, or --no-tests)
    NO_PATCH = "no_patch"  # finished, failed or cancelled without a patch

    @property
    def label(self) -> str:
        return {"tests_passed": "patch, tests passed", "tests_failed": "patch, tests failed",
                "untested": "patch, not tested", "no_patch": "no patch", "pending": "pending"}[self.value]  # fmt: skip


def state_label(status: RunStatus | SolveStatus) -> str:
    """The lifecycle state as shown to people (CLI and console): `succeeded` reads as a verdict on the
    patch, which it is not (a run that finished may have failed its tests: that is its outcome)."""
    return "finished" if status.value == "succeeded" else status.value


class EventKind(StrEnum):
    STATUS = "status"
    STEP = "step"
    LOG = "log"
    ERROR = "error"


SOLVE_TERMINAL = frozenset({SolveStatus.SUCCEEDED, SolveStatus.FAILED, SolveStatus.CANCELLED})
RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

SOLVE_TRANSITIONS: Mapping[SolveStatus, frozenset[SolveStatus]] = {
    SolveStatus.QUEUED: frozenset({SolveStatus.RUNNING, SolveStatus.FAILED, SolveStatus.CANCELLING}),
    SolveStatus.RUNNING: frozenset({SolveStatus.SUCCEEDED, SolveStatus.FAILED, SolveStatus.CANCELLING}),
    SolveStatus.CANCELLING: frozenset({SolveStatus.CANCELLED}),
    # A solve whose runs the sweeper resumes goes back to the queue; nothing else leaves a terminal state.
    SolveStatus.FAILED: frozenset({SolveStatus.QUEUED}),
    SolveStatus.SUCCEEDED: frozenset(),
    SolveStatus.CANCELLED: frozenset(),
}

_RUN_PIPELINE = (
    RunStatus.QUEUED,
    RunStatus.LAUNCHING,
    RunStatus.PREPARING,
    RunStatus.SOLVING,
    RunStatus.COLLECTING,
    RunStatus.VERIFYING,
)


def _run_transitions() -> dict[RunStatus, frozenset[RunStatus]]:
    table: dict[RunStatus, frozenset[RunStatus]] = {}
    for position, status in enumerate(_RUN_PIPELINE):
        following = _RUN_PIPELINE[position + 1 : position + 2]
        table[status] = frozenset({*following, RunStatus.FAILED, RunStatus.CANCELLED})
    # Without a test command there is nothing to verify, so collecting may finish the run.
    table[RunStatus.COLLECTING] |= {RunStatus.SUCCEEDED}
    table[RunStatus.VERIFYING] |= {RunStatus.SUCCEEDED}
    table[RunStatus.FAILED] = frozenset({RunStatus.QUEUED})  # only when the failure is retryable
    table[RunStatus.SUCCEEDED] = frozenset()
    table[RunStatus.CANCELLED] = frozenset()
    return table


RUN_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = _run_transitions()


def solve_sources(target: SolveStatus) -> frozenset[SolveStatus]:
    """Every status from which a solve may move to `target`."""
    return frozenset(s for s, allowed in SOLVE_TRANSITIONS.items() if target in allowed)


def run_sources(target: RunStatus) -> frozenset[RunStatus]:
    """Every status from which a run may move to `target`."""
    return frozenset(s for s, allowed in RUN_TRANSITIONS.items() if target in allowed)
