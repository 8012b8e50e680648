"""The status diagram (docs/architecture.md, Persistence decisions)."""

from __future__ import annotations

import itertools

import pytest

from solver_core.status import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    SOLVE_TERMINAL,
    SOLVE_TRANSITIONS,
    RunStatus,
    SolveStatus,
    run_sources,
    solve_sources,
)

pytestmark = pytest.mark.unit


def test_a_run_walks_the_pipeline_in_order() -> None:
    pipeline = ["queued", "launching", "preparing", "solving", "collecting", "verifying", "succeeded"]
    for current, following in itertools.pairwise(pipeline):
        assert RunStatus(following) in RUN_TRANSITIONS[RunStatus(current)]
    assert RunStatus.SOLVING not in RUN_TRANSITIONS[RunStatus.QUEUED]  # no skipping preparation


def test_every_live_status_can_fail_or_be_cancelled() -> None:
    for status in set(RunStatus) - RUN_TERMINAL:
        assert {RunStatus.FAILED, RunStatus.CANCELLED} <= RUN_TRANSITIONS[status]
    for solve_status in set(SolveStatus) - SOLVE_TERMINAL - {SolveStatus.CANCELLING}:
        assert SolveStatus.CANCELLING in SOLVE_TRANSITIONS[solve_status]


def test_only_failed_leaves_a_terminal_state_and_only_to_queued() -> None:
    assert RUN_TRANSITIONS[RunStatus.FAILED] == {RunStatus.QUEUED}
    assert SOLVE_TRANSITIONS[SolveStatus.FAILED] == {SolveStatus.QUEUED}
    for status in RUN_TERMINAL - {RunStatus.FAILED}:
        assert not RUN_TRANSITIONS[status]
    for solve_status in SOLVE_TERMINAL - {SolveStatus.FAILED}:
        assert not SOLVE_TRANSITIONS[solve_status]


def test_cancelling_only_ends_in_cancelled() -> None:
    assert SOLVE_TRANSITIONS[SolveStatus.CANCELLING] == {SolveStatus.CANCELLED}
    assert solve_sources(SolveStatus.CANCELLED) == {SolveStatus.CANCELLING}


def test_sources_invert_the_table() -> None:
    assert run_sources(RunStatus.QUEUED) == {RunStatus.FAILED}
    assert run_sources(RunStatus.SUCCEEDED) == {RunStatus.COLLECTING, RunStatus.VERIFYING}
    assert solve_sources(SolveStatus.RUNNING) == {SolveStatus.QUEUED}
