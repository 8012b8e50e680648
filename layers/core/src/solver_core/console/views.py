"""What the console's pages show, computed from the services' views: run counts, the champion and
why, and the timeline of each run's phases (from the status events)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from solver_core.models import EventView, RunView, SolveView
from solver_core.selection import summary
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, Outcome, RunStatus

PHASES: dict[str, str] = {
    RunStatus.QUEUED.value: "queued",
    RunStatus.LAUNCHING.value: "launch",
    RunStatus.PREPARING.value: "prepare",
    RunStatus.SOLVING.value: "agent",
    RunStatus.COLLECTING.value: "collect",
    RunStatus.VERIFYING.value: "verify",
}
TIMELINE_WIDTH = 1000  # the SVG's user units; the browser scales it


@dataclass(frozen=True)
class RunCounts:
    """Each run counted once, by what it came to: a run whose tests failed or that failed is
    `failed`; one that finished without a patch, untested or cancelled is counted as such."""

    running: int = 0
    passed: int = 0
    failed: int = 0
    untested: int = 0
    no_patch: int = 0
    cancelled: int = 0

    @property
    def summary(self) -> str:
        """`1 passed, 1 failed, 1 no patch`: only the kinds there are, in this order."""
        parts = [
            f"{count} {label}"
            for count, label in (
                (self.passed, "passed"),
                (self.failed, "failed"),
                (self.untested, "untested"),
                (self.no_patch, "no patch"),
                (self.cancelled, "cancelled"),
                (self.running, "running"),
            )
            if count
        ]
        return ", ".join(parts) or "no runs"


def run_kind(run: RunView) -> str:
    """The RunCounts field a run counts in."""
    if run.status not in RUN_TERMINAL:
        return "running"
    if run.outcome is Outcome.TESTS_PASSED:
        return "passed"
    if run.outcome is Outcome.TESTS_FAILED or run.status is RunStatus.FAILED:
        return "failed"
    if run.status is RunStatus.CANCELLED:
        return "cancelled"
    return "untested" if run.outcome is Outcome.UNTESTED else "no_patch"


def run_counts(runs: list[RunView]) -> RunCounts:
    return RunCounts(**Counter(run_kind(run) for run in runs))


def total_cost(solve: SolveView) -> float:
    return sum(run.cost_usd for run in solve.runs) + solve.selection_cost_usd  # the judge's calls too


def is_live(solve: SolveView) -> bool:
    return solve.status not in SOLVE_TERMINAL


def champion_reason(solve: SolveView, events: list[EventView]) -> str | None:
    """Why the champion won: what PickChampion recorded (the champion's verdict, then the selection's
    reason), else the solve's `selection` reason."""
    for event in reversed(events):
        if event.run_id is None and event.data and "champion_run_id" in event.data:
            return event.message
    return solve.selection.reason if solve.selection is not None else None


def selection_of(solve: SolveView) -> dict[str, str] | None:
    """The solve's `selection` record as lines: the baseline, then each candidate's signals."""
    selection = solve.selection
    if selection is None:
        return None
    lines = {"baseline": summary.baseline_line(selection.baseline)} if selection.baseline else {}
    lines |= {f"run {s.index}": summary.signals_line(s) for s in selection.runs}
    if selection.reproduction is not None:
        lines["reproduction"] = summary.reproduction_line(selection.reproduction)
    return lines | ({"judge": summary.judge_line(selection.judge)} if selection.judge else {})


@dataclass
class Segment:
    phase: str
    start: datetime
    end: datetime
    x: float = 0.0
    width: float = 0.0


@dataclass
class Lane:
    run: RunView
    segments: list[Segment] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # x of each agent step
    end_status: str | None = None


@dataclass
class Timeline:
    lanes: list[Lane]
    start: datetime
    end: datetime
    ticks: list[tuple[float, str]]

    @property
    def span_s(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0)


def timeline(solve: SolveView, events: list[EventView], now: datetime | None = None) -> Timeline:
    """Each run's phases on one time axis, from its status events: a phase lasts until the next."""
    now = now or datetime.now(UTC)
    lanes = {run.id: Lane(run=run) for run in solve.runs}
    step_times: dict[UUID, list[datetime]] = {}
    for event in events:
        lane = lanes.get(event.run_id) if event.run_id else None
        if lane is None:
            continue
        if event.kind is EventKind.STEP:
            step_times.setdefault(lane.run.id, []).append(event.at)
            continue
        status = (event.data or {}).get("status") if event.kind is EventKind.STATUS else None
        if not isinstance(status, str):
            continue
        if lane.segments and lane.end_status is None:
            lane.segments[-1].end = event.at
        if status in PHASES:
            lane.segments.append(Segment(PHASES[status], event.at, event.at))
            lane.end_status = None
        else:
            lane.end_status = status
    start = min([solve.created_at, *(e.at for e in events)])
    end = solve.finished_at or now
    end = max([end, *(e.at for e in events)])
    for lane in lanes.values():
        if lane.segments and lane.end_status is None and lane.run.status not in RUN_TERMINAL:
            lane.segments[-1].end = end
    span = max((end - start).total_seconds(), 1e-3)

    def x(moment: datetime) -> float:
        return round((moment - start).total_seconds() / span * TIMELINE_WIDTH, 2)

    for lane in lanes.values():
        for segment in lane.segments:
            segment.x = x(segment.start)
            segment.width = max(round(x(segment.end) - segment.x, 2), 1.0)
        lane.steps = [x(at) for at in step_times.get(lane.run.id, [])]
    ticks = [(round(TIMELINE_WIDTH * i / 4, 2), _span_label(span * i / 4)) for i in range(5)]
    return Timeline(lanes=sorted(lanes.values(), key=lambda lane: lane.run.index), start=start, end=end, ticks=ticks)


def _span_label(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
