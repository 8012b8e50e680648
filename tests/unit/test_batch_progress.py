"""The live view's estimate of the time left in `solver batch`."""

from __future__ import annotations

import pytest

from solver_core.cli.batch import eta_minutes


def test_the_estimate_is_the_wall_time_per_finished_instance_times_those_left() -> None:
    # 4 workers finished 4 instances in 60 s: 8 more take 2 minutes (the workers are already in the pace).
    assert eta_minutes(60.0, finished=4, remaining=8) == pytest.approx(2.0)
    assert eta_minutes(60.0, finished=1, remaining=1) == pytest.approx(1.0)


def test_no_estimate_before_the_first_instance_finishes_or_after_the_last() -> None:
    assert eta_minutes(30.0, finished=0, remaining=5) is None
    assert eta_minutes(30.0, finished=5, remaining=0) is None
