"""VerifyPatch's synchronous phases (the isolated worktree, applying the patch) under an
invocation's window: never started without time left, given what the window has left as their
limit, and done again by the next invocation when that cut, not their own limit, ended them."""

from __future__ import annotations

import time

import pytest

from solver_core.errors import RepositoryError
from solver_core.workflow.commands import UNLIMITED, Window
from solver_core.workflow.verification import within


def test_a_phase_is_not_started_without_time_left() -> None:
    started: list[float] = []
    assert within(Window(deadline=time.monotonic() - 1), started.append) is None
    assert started == []


def test_a_phase_gets_its_own_limit_cut_to_the_window() -> None:
    limits: list[float] = []
    within(Window(deadline=time.monotonic() + 5), limits.append, limit_s=120)
    within(UNLIMITED, limits.append, limit_s=120)
    assert 4 < limits[0] <= 5
    assert limits[1] == 120


def test_a_phase_the_window_cut_off_is_left_for_the_next_invocation() -> None:
    def slow(limit: float) -> None:
        time.sleep(limit)
        raise RepositoryError("the patch does not apply: timed out")

    assert within(Window(deadline=time.monotonic() + 0.2), slow, limit_s=120) is None


def test_a_phase_that_fails_on_its_own_fails() -> None:
    def broken(_limit: float) -> None:
        raise RepositoryError("the patch does not apply: corrupt patch at line 3")

    def slow(limit: float) -> None:
        time.sleep(limit)
        raise RepositoryError("the patch does not apply: timed out")

    with pytest.raises(RepositoryError, match="corrupt patch"):
        within(Window(deadline=time.monotonic() + 60), broken, limit_s=120)
    with pytest.raises(RepositoryError, match="timed out"):  # its own limit ended it, not the window
        within(UNLIMITED, slow, limit_s=0.1)
