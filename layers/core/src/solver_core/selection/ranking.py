"""Ranking the candidates of a solve (docs/architecture.md, "Choosing the champion").

Order, first difference wins: breaks no test that passed on the base commit > the test command
passes > fixes more tests that failed on the base commit > passes more of the attempts' validated
reproduction scripts > leaves existing tests alone
(`modifies_tests`) > a larger consensus group > the selector model's pick (only among candidates tied
on all of those) > the agent submitted > a smaller patch > a lower cost > the lower index. Without a
baseline the test signals reduce to today's pass/fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from solver_core.models import MAX_NAMED_TESTS, BaselineSummary, RunSignals, RunView, Selection, TestDelta
from solver_core.selection.junit import CaseOutcome

Cases = Mapping[str, CaseOutcome]
SUITE = "(the test command)"  # the one "test" of an exit-code comparison


@dataclass(frozen=True)
class Candidate:
    run: RunView
    cases: Cases | None = None  # per-test results of its verification (JUnit XML), when there were any
    group_size: int = 1
    group: str | None = None  # its consensus group (selection/consensus.py)
    judge_vote: bool | None = None  # the selector model picked it (None: no judge asked)
    reproduce_passed: int | None = None  # validated reproduction scripts it passes (None: none were run)


@dataclass(frozen=True)
class Baseline:
    run: RunView
    cases: Cases | None = None


def summarize(baseline: Baseline | None) -> BaselineSummary | None:
    if baseline is None:
        return None
    run, tests = baseline.run, baseline.run.tests
    if tests is None:
        if run.error:
            return BaselineSummary(status="error", base_commit=run.base_commit, error=run.error[:500])
        return BaselineSummary(status="not_run", base_commit=run.base_commit)
    cases = baseline.cases or {}
    failing = sorted(t for t, o in cases.items() if o is CaseOutcome.FAILED)
    return BaselineSummary(
        status="passed" if tests.passed else "failed",
        command=tests.command,
        exit_code=tests.exit_code,
        base_commit=run.base_commit,
        per_test=bool(cases),
        passed=sum(1 for o in cases.values() if o is CaseOutcome.PASSED) if cases else None,
        failed=len(failing) if cases else None,
        failing_tests=failing[:MAX_NAMED_TESTS],
    )


def compare(baseline: Baseline | None, candidate: Candidate) -> TestDelta | None:
    """The candidate's tests against the baseline's; None when they are not comparable (no baseline
    result, another command, another base commit)."""
    if baseline is None or baseline.run.tests is None or candidate.run.tests is None:
        return None
    base, mine = baseline.run.tests, candidate.run.tests
    if base.command != mine.command or baseline.run.base_commit != candidate.run.base_commit:
        return None
    if baseline.cases and candidate.cases:
        before, after = baseline.cases, candidate.cases
        passes = {t for t, o in after.items() if o is CaseOutcome.PASSED}  # failed, skipped or gone: not passing
        fixed = sorted(t for t, o in before.items() if o is CaseOutcome.FAILED and t in passes)
        broken = sorted(t for t, o in before.items() if o is CaseOutcome.PASSED and t not in passes)
        still = sorted(t for t, o in before.items() if o is CaseOutcome.FAILED and t not in passes)
        return _delta("per_test", fixed, broken, still)
    fixed = [SUITE] if not base.passed and mine.passed else []
    broken = [SUITE] if base.passed and not mine.passed else []
    still = [SUITE] if not base.passed and not mine.passed else []
    return _delta("exit_code", fixed, broken, still)


def _delta(basis: str, fixed: list[str], broken: list[str], still: list[str]) -> TestDelta:
    return TestDelta.model_validate(
        {
            "basis": basis,
            "fixed": len(fixed),
            "broken": len(broken),
            "still_failing": len(still),
            "fixed_tests": fixed[:MAX_NAMED_TESTS],
            "broken_tests": broken[:MAX_NAMED_TESTS],
            "still_failing_tests": still[:MAX_NAMED_TESTS],
        }
    )


def signals(candidate: Candidate, baseline: Baseline | None) -> RunSignals:
    run = candidate.run
    stats = run.patch_stats
    return RunSignals(
        run_id=run.id,
        index=run.index,
        model=run.model,
        rank=0,
        tests=None if run.tests is None else ("passed" if run.tests.passed else "failed"),
        baseline_delta=compare(baseline, candidate),
        modifies_tests=run.modifies_tests,
        group_size=candidate.group_size,
        group=candidate.group,
        reproduce_passed=candidate.reproduce_passed,
        judge_vote=candidate.judge_vote,
        submitted=run.exit_status == "Submitted",
        patch_lines=(stats.added + stats.removed) if stats else 0,
        cost_usd=run.cost_usd,
    )


@dataclass(frozen=True)
class Criterion:
    """One ranking signal: its key (smaller ranks first) and how to say why the winner beat the other."""

    key: Callable[[RunSignals], float]
    why: Callable[[RunSignals, RunSignals], str]


def _broken(s: RunSignals) -> int:
    return s.baseline_delta.broken if s.baseline_delta else 0


def _fixed(s: RunSignals) -> int:
    return s.baseline_delta.fixed if s.baseline_delta else 0


def _named(names: list[str], count: int) -> str:
    shown = ", ".join(names[:3])
    return f"{shown}, …" if count > 3 else shown


def _why_broken(win: RunSignals, other: RunSignals) -> str:
    delta = other.baseline_delta
    assert delta is not None
    return (
        f"it breaks no test that passed on the base commit; run {other.index} breaks {delta.broken} "
        f"({_named(delta.broken_tests, delta.broken)})"
    )


def _why_fixed(win: RunSignals, other: RunSignals) -> str:
    delta = win.baseline_delta
    assert delta is not None
    return (
        f"it fixes {delta.fixed} test(s) that failed on the base commit ({_named(delta.fixed_tests, delta.fixed)}); "
        f"run {other.index} fixes {_fixed(other)}"
    )


CRITERIA: tuple[Criterion, ...] = (
    Criterion(lambda s: _broken(s) > 0, _why_broken),
    Criterion(lambda s: s.tests != "passed", lambda w, o: f"its tests pass; run {o.index}'s {o.tests or 'never ran'}"),
    Criterion(lambda s: -_fixed(s), _why_fixed),
    Criterion(
        lambda s: -(s.reproduce_passed or 0),
        lambda w, o: f"it passes {w.reproduce_passed} reproduction script(s), run {o.index} {o.reproduce_passed or 0}",
    ),
    Criterion(lambda s: bool(s.modifies_tests), lambda w, o: f"run {o.index} modifies existing tests, it does not"),
    Criterion(
        lambda s: -s.group_size,
        lambda w, o: f"{w.group_size} candidates made the same change, {o.group_size} made run {o.index}'s",
    ),
    Criterion(
        lambda s: s.judge_vote is not True,
        lambda w, o: f"tied with run {o.index} on the tests and consensus; the selector model picked it",
    ),
    Criterion(lambda s: not s.submitted, lambda w, o: f"the agent submitted it; run {o.index} did not"),
    Criterion(
        lambda s: s.patch_lines,
        lambda w, o: f"tied on the tests; its patch is smaller ({w.patch_lines} lines, run {o.index}: {o.patch_lines})",
    ),
    Criterion(lambda s: s.cost_usd, lambda w, o: f"tied otherwise; it cost less (${w.cost_usd:.4f})"),
    Criterion(lambda s: s.index, lambda w, o: f"tied on every signal with run {o.index}; the lower index"),
)


JUDGE_AT = 6  # CRITERIA's index of the judge's vote: it orders only what the signals before it tie


def rank_key(s: RunSignals) -> tuple[float, ...]:
    return tuple(criterion.key(s) for criterion in CRITERIA)


def tied_with_champion(selection: Selection) -> list[RunSignals]:
    """The candidates (the champion first) that every signal before the judge's vote ties."""
    if not selection.runs:
        return []
    leader = rank_key(selection.runs[0])[:JUDGE_AT]
    return [s for s in selection.runs if rank_key(s)[:JUDGE_AT] == leader]


def select(candidates: list[Candidate], baseline: Baseline | None) -> Selection:
    """Every candidate's signals, best first, and the one line saying why the best won."""
    summary = summarize(baseline)
    if not candidates:
        return Selection(champion_run_id=None, reason="no run produced a patch", baseline=summary)
    ordered = sorted((signals(c, baseline) for c in candidates), key=rank_key)
    ranked = [s.model_copy(update={"rank": position}) for position, s in enumerate(ordered, start=1)]
    return Selection(champion_run_id=ranked[0].run_id, reason=reason(ranked, summary), baseline=summary, runs=ranked)


def reason(ranked: list[RunSignals], baseline: BaselineSummary | None) -> str:
    win = ranked[0]
    head = f"run {win.index} ({win.model}) won"
    context = _baseline_context(baseline)
    if len(ranked) == 1:
        return f"{head}: the only candidate with a patch{context}"
    # Against the best candidate that made another change; the same change written differently only
    # lost on size, cost or index.
    rival = next((s for s in ranked[1:] if s.group is None or s.group != win.group), None)
    if rival is None:
        return f"{head}: all {len(ranked)} candidates made the same change; {_why(win, ranked[1])}{context}"
    return f"{head}: {_why(win, rival)}{context}"


def _why(win: RunSignals, other: RunSignals) -> str:
    for criterion in CRITERIA:
        if criterion.key(win) != criterion.key(other):
            return criterion.why(win, other)
    return f"tied with run {other.index} on every signal"


def _baseline_context(baseline: BaselineSummary | None) -> str:
    if baseline is None or baseline.status != "failed":
        return ""
    if baseline.failed:
        return f" ({baseline.failed} test(s) already failed on the base commit)"
    return " (the tests already failed on the base commit)"
