"""The solve-level steps around the runs: BeginSolve, PickChampion, FinishSolve, FailSolve.

PickChampion ranks the candidates with selection/ranking.py (the baseline's per-test comparison,
consensus, then today's signals) and records the solve's `selection`. A solve with no patch at all
fails, with the reason.
A solve whose failed runs will still be retried (retryable, attempts left) is not finished yet: it
stays running until the sweeper has resumed them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from solver_core.artifacts import keys
from solver_core.errors import ArtifactNotFound, IllegalTransition
from solver_core.models import (
    JudgeVerdict,
    Publication,
    ReproductionSummary,
    RunKind,
    RunView,
    Selection,
    SolveView,
)
from solver_core.ports import ArtifactStore
from solver_core.publish.service import should_publish
from solver_core.selection import consensus, judge, ranking
from solver_core.selection.junit import CaseOutcome
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.status import RUN_TERMINAL, SOLVE_TERMINAL, EventKind, RunStatus, SolveStatus
from solver_core.workflow.judge import Answer, ModelJudge

DEFAULT_MAX_RUN_ATTEMPTS = 3
CASES: TypeAdapter[dict[str, CaseOutcome]] = TypeAdapter(dict[str, CaseOutcome])
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    run: RunView | None
    reason: str
    selection: Selection | None = None


def _earlier_verdict(solve: SolveView, indexes: list[int]) -> JudgeVerdict | None:
    """The selector model's pick recorded by an earlier PickChampion of this solve among the same
    candidates, if it made one: asked again, it would cost again and might answer otherwise."""
    verdict = solve.selection.judge if solve.selection is not None else None
    if verdict is None or verdict.choice is None:
        return None
    return verdict if (verdict.model, verdict.candidates) == (solve.selector_model, indexes) else None


def _has_patch(run: RunView) -> bool:
    return run.status is RunStatus.SUCCEEDED and bool(run.patch_stats and run.patch_stats.files)


def describe(run: RunView) -> str:
    stats = run.patch_stats
    tests = "no tests run" if run.tests is None else ("tests passed" if run.tests.passed else "tests failed")
    if run.tests is not None and run.tests.detected:
        tests += f" (detected: {run.tests.command})"
    if run.modifies_tests:
        tests += " (the patch modifies tests)"
    submitted = "submitted" if run.exit_status == "Submitted" else f"ended {run.exit_status or 'unknown'}"
    size = f"+{stats.added} -{stats.removed}" if stats else "no patch"
    return f"run {run.index} ({run.model}): {tests}, {submitted}, {size}, ${run.cost_usd:.4f}"


def pick_champion(
    runs: list[RunView],
    baseline: ranking.Baseline | None = None,
    cases: Mapping[UUID, ranking.Cases] | None = None,
    groups: Mapping[UUID, str] | None = None,
    *,
    votes: Mapping[UUID, bool] | None = None,
    reproduced: Mapping[UUID, int] | None = None,
) -> Choice:
    """The best candidate by the ranking in selection/ranking.py, with the selection record."""
    candidates = [r for r in runs if _has_patch(r)]
    if not candidates:
        failures = "; ".join(f"run {r.index}: {r.error or r.exit_status or r.status.value}" for r in runs)
        reason = f"no run produced a patch ({failures})" if failures else "no runs"
        return Choice(None, reason, ranking.select([], baseline).model_copy(update={"reason": reason}))
    found, keys_of = cases or {}, groups or {}
    sizes = consensus.groups({r.id: keys_of[r.id] for r in candidates if r.id in keys_of})
    selection = ranking.select(
        [
            ranking.Candidate(
                r,
                found.get(r.id),
                sizes.get(r.id, 1),
                keys_of.get(r.id),
                (votes or {}).get(r.id),
                (reproduced or {}).get(r.id),
            )
            for r in candidates
        ],
        baseline,
    )
    best = next(r for r in candidates if r.id == selection.champion_run_id)
    return Choice(best, f"champion is {describe(best)}; {selection.reason}", selection)


def reproduction(solve: SolveView) -> tuple[dict[UUID, int], ReproductionSummary | None]:
    """Per candidate, how many validated reproduction scripts it passes (validated: they failed on
    the base commit), and the solve's summary; nothing when reproduction was not asked for."""
    if not solve.reproduce:
        return {}, None
    written = sum(1 for r in solve.runs if r.reproduce_script)
    if not solve.checks:
        return {}, ReproductionSummary(status="no_scripts" if not written else "error", scripts=written, validated=0,
                                       error=None if not written else "the checks were not made")  # fmt: skip
    base = next((c for c in solve.checks if c.reproduction is None or c.reproduction.target_run_id is None), None)
    if base is None or base.status is not RunStatus.SUCCEEDED or base.reproduction is None:
        why = "no check" if base is None else base.error or base.status.value
        error = f"the scripts could not run on the base commit: {why}"
        return {}, ReproductionSummary(status="error", scripts=written, validated=0, error=error[:500])
    validated = {s.author_run_id for s in base.reproduction.scripts if s.exit_code is not None and s.exit_code != 0}
    summary = ReproductionSummary(status="checked", scripts=written, validated=len(validated))
    if not validated:
        return {}, summary
    passed = {
        check.reproduction.target_run_id: sum(
            1 for s in check.reproduction.scripts if s.passed and s.author_run_id in validated
        )
        for check in solve.checks
        if check.status is RunStatus.SUCCEEDED and check.reproduction and check.reproduction.target_run_id
    }
    return passed, summary


def with_reproduction(choice: Choice, summary: ReproductionSummary | None) -> Choice:
    if choice.selection is None or summary is None:
        return choice
    return replace(choice, selection=choice.selection.model_copy(update={"reproduction": summary}))


def will_retry(run: RunView, max_attempts: int) -> bool:
    return run.status is RunStatus.FAILED and run.retryable and run.attempt + 1 < max_attempts


class Judge(Protocol):
    """Asks the selector model one question (workflow/judge.py)."""

    def ask(self, model: str, question: str) -> Answer: ...


class SolveFlow:
    def __init__(
        self,
        runs: RunService,
        events: EventService,
        artifacts: ArtifactStore,
        *,
        max_run_attempts: int = DEFAULT_MAX_RUN_ATTEMPTS,
        notify: Callable[[SolveView], None] | None = None,
        publish: Callable[[UUID], Publication] | None = None,
        judge: Judge | None = None,
    ) -> None:
        self._runs = runs
        self._judge = judge or ModelJudge(runs.model_spec)
        self._events = events
        self._artifacts = artifacts
        self.max_run_attempts = max_run_attempts
        self._notify = notify or (lambda _solve: None)
        self._publish = publish

    def begin(self, solve_id: UUID, run_ids: list[UUID] | None = None) -> dict[str, Any]:
        """BeginSolve: mark the solve running and list its queued runs (all, or the given ones)."""
        solve = self._runs.solve(solve_id)
        if solve.status in {SolveStatus.QUEUED, SolveStatus.FAILED}:
            with contextlib.suppress(IllegalTransition):
                if solve.status is SolveStatus.FAILED:  # a resume of a solve that had ended failed
                    self._runs.move_solve(solve_id, SolveStatus.QUEUED)
                self._runs.move_solve(solve_id, SolveStatus.RUNNING)
        wanted = set(run_ids) if run_ids is not None else None
        # The baseline first, and one more slot for it: it runs alongside the attempts, never after them.
        queued = sorted(
            (r for r in solve.all_runs if r.status is RunStatus.QUEUED and (wanted is None or r.id in wanted)),
            key=lambda r: r.kind is not RunKind.BASELINE,
        )
        attempts = sum(1 for r in queued if r.kind is RunKind.ATTEMPT)
        extra = len(queued) - attempts
        return {
            "solve_id": str(solve_id),
            "max_parallel": max(1, min(solve.max_parallel, attempts or 1) + extra),
            "runs": [{"solve_id": str(solve_id), "run_id": str(r.id)} for r in queued],
        }

    def plan_checks(self, solve_id: UUID) -> dict[str, Any]:
        """PlanChecks, after the attempts: with `reproduce`, make the reproduction checks once (every
        script on the base commit and on each candidate) and list those still to run, in BeginSolve's
        shape; `more` says whether the runs' Map goes round again for them."""
        solve = self._runs.solve(solve_id)
        ready = solve.reproduce and solve.status is SolveStatus.RUNNING and not self.pending_retries(solve)
        if ready and not solve.checks:
            self._make_checks(solve)
            solve = self._runs.solve(solve_id)
        queued = [r for r in solve.checks if r.status is RunStatus.QUEUED]
        return {
            "solve_id": str(solve_id),
            "max_parallel": max(1, min(solve.max_parallel, len(queued))),
            "runs": [{"solve_id": str(solve_id), "run_id": str(r.id)} for r in queued],
            "more": bool(queued),
        }

    def _make_checks(self, solve: SolveView) -> None:
        authors = [r for r in solve.runs if r.status is RunStatus.SUCCEEDED and r.reproduce_script]
        candidates = [r for r in solve.runs if _has_patch(r)]
        if not authors or not candidates:
            what = "no attempt left a reproduction script" if not authors else "no candidate to check"
            self._events.append(solve.id, EventKind.LOG, f"reproduction: {what}")
            return
        if self._runs.add_checks(solve.id, authors, candidates):
            self._events.append(
                solve.id, EventKind.LOG,
                f"reproduction: {len(authors)} script(s) to run on the base commit and {len(candidates)} candidate(s)",
            )  # fmt: skip

    def pending_retries(self, solve: SolveView) -> list[RunView]:
        return [r for r in solve.all_runs if will_retry(r, self.max_run_attempts)]

    def pick(self, solve_id: UUID) -> Choice:
        """PickChampion: choose and record the champion (its patch is also stored at solve level)."""
        solve = self._runs.solve(solve_id)
        if solve.status.is_cancelled:
            return Choice(None, "the solve was cancelled: no champion")
        choice = self._choose(solve)
        if choice.selection is not None:
            self._runs.set_solve_fields(solve_id, selection=choice.selection.model_dump(mode="json"))
        if choice.run is not None:
            patch = self._artifacts.get(keys.patch(solve_id, choice.run.id))
            self._artifacts.put(keys.champion_patch(solve_id), patch, content_type="text/x-diff")
            self._runs.set_solve_fields(solve_id, champion_run_id=choice.run.id)
        champion = str(choice.run.id) if choice.run else None
        self._events.append(solve_id, EventKind.LOG, choice.reason, data={"champion_run_id": champion})
        return choice

    def _choose(self, solve: SolveView) -> Choice:
        """The ranking's inputs: per-test results (stored by VerifyPatch), the baseline, and the
        consensus groups of the candidates' patches."""
        candidates = [r for r in solve.runs if _has_patch(r)]
        cases = {r.id: found for r in [*candidates, *filter(None, [solve.baseline])] if (found := self.per_test(r))}
        baseline = None
        if solve.baseline is not None:
            baseline = ranking.Baseline(solve.baseline, cases.get(solve.baseline.id))
        groups = {r.id: self._group(r) for r in candidates}
        reproduced, summary = reproduction(solve)
        choice = with_reproduction(pick_champion(solve.runs, baseline, cases, groups, reproduced=reproduced), summary)
        if solve.selector_model is None or choice.selection is None:
            return choice
        verdict, votes = self._ask_judge(solve, choice.selection)
        if verdict is None:
            return choice
        judged = with_reproduction(
            pick_champion(solve.runs, baseline, cases, groups, votes=votes, reproduced=reproduced), summary
        )
        assert judged.selection is not None
        return replace(judged, selection=judged.selection.model_copy(update={"judge": verdict}))

    def _ask_judge(self, solve: SolveView, selection: Selection) -> tuple[JudgeVerdict | None, dict[UUID, bool]]:
        """The selector model's pick among the candidates tied on every signal before it (one per
        consensus group: the same change needs no judge). Never raises: a failed call is recorded."""
        assert solve.selector_model is not None
        tied, seen = [], set()
        for signals in ranking.tied_with_champion(selection):
            if signals.group is None or signals.group not in seen:
                tied.append(signals)
                seen.add(signals.group)
        if len(tied) < 2:
            return None, {}
        indexes = [s.index for s in tied]
        if (earlier := _earlier_verdict(solve, indexes)) is not None:  # a retried PickChampion: asked already
            return earlier, {s.run_id: s.index == earlier.choice for s in tied}
        diffs = [(s.index, self._artifacts.get(keys.patch(solve.id, s.run_id)).decode(errors="replace")) for s in tied]
        question = judge.prompt(f"# {solve.issue.title}\n\n{solve.issue.body}", diffs)
        try:
            answer = self._judge.ask(solve.selector_model, question)
        except Exception as exc:  # a model outage or a refused call: the other signals decide
            log.warning("solve %s: the selector model failed: %s", solve.id, exc)
            verdict = JudgeVerdict(
                model=solve.selector_model, candidates=indexes, choice=None, reasoning="", cost_usd=0.0,
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
            )  # fmt: skip
            return verdict, {}
        self._runs.add_selection_cost(solve.id, answer.cost_usd)
        choice = judge.parse(answer.text, indexes)
        self._events.append(
            solve.id, EventKind.LOG,
            f"selector model {solve.selector_model} asked to choose among runs {', '.join(map(str, indexes))}"
            f" (${answer.cost_usd:.4f})",
        )  # fmt: skip
        verdict = JudgeVerdict(
            model=solve.selector_model,
            candidates=indexes,
            choice=choice,
            reasoning=judge.reasoning(answer.text),
            cost_usd=answer.cost_usd,
            error=None if choice is not None else "no CHOICE naming a tied run in the answer",
        )
        return verdict, ({s.run_id: s.index == choice for s in tied} if choice is not None else {})

    def _group(self, run: RunView) -> str:
        """Its consensus group, from CollectArtifacts; for runs collected before that existed, from
        the stored diff."""
        if run.patch_stats is not None and run.patch_stats.group:
            return run.patch_stats.group
        return consensus.key_from_diff(self._artifacts.get(keys.patch(run.solve_id, run.id)))[:16]

    def per_test(self, run: RunView) -> ranking.Cases | None:
        """The run's per-test results, when its runner wrote a JUnit XML report."""
        if run.tests is None or run.tests.per_test is None:
            return None
        try:
            return CASES.validate_json(self._artifacts.get(keys.test_cases(run.solve_id, run.id)))
        except (ArtifactNotFound, ValidationError):
            log.warning("run %s: its per-test results are unreadable; its exit code counts", run.id)
            return None

    def finish(self, solve_id: UUID) -> SolveView:
        """FinishSolve: succeeded with a champion, failed without; cancelled if being cancelled."""
        solve = self._runs.solve(solve_id)
        if solve.status in {SolveStatus.CANCELLING, SolveStatus.CANCELLED}:
            return self.finish_cancel(solve_id)
        if solve.status in SOLVE_TERMINAL:
            return solve
        if pending := self.pending_retries(solve):
            self._events.append(solve_id, EventKind.LOG, f"waiting for {len(pending)} run(s) to be retried")
            return solve
        try:
            if solve.champion_run_id is not None:
                done = self._runs.move_solve(solve_id, SolveStatus.SUCCEEDED)
            else:
                done = self._runs.move_solve(solve_id, SolveStatus.FAILED, error=pick_champion(solve.runs).reason)
        except IllegalTransition:
            return self._runs.solve(solve_id)  # cancelled meanwhile: its state wins
        self._notify(done)
        return done

    def fail(self, solve_id: UUID, error: str, cause: str) -> SolveView:
        """FailSolve: something outside the runs broke; unfinished runs are failed as retryable."""
        solve = self._runs.solve(solve_id)
        for run in solve.all_runs:
            if run.status not in RUN_TERMINAL:
                with contextlib.suppress(IllegalTransition):
                    self._runs.move(run.id, RunStatus.FAILED, error=f"{error}: {cause}"[:2000], retryable=True)
        with contextlib.suppress(IllegalTransition):
            done = self._runs.move_solve(solve_id, SolveStatus.FAILED, error=f"{error}: {cause}"[:2000])
            self._notify(done)
        return self._runs.solve(solve_id)

    def finish_cancel(self, solve_id: UUID) -> SolveView:
        """Mark every unfinished run cancelled, then the solve (idempotent)."""
        solve = self._runs.solve(solve_id)
        for run in solve.all_runs:
            if run.status not in RUN_TERMINAL:
                with contextlib.suppress(IllegalTransition):
                    self._runs.move(run.id, RunStatus.CANCELLED, error="cancelled")
        if solve.status is SolveStatus.CANCELLING:
            with contextlib.suppress(IllegalTransition):
                self._notify(self._runs.move_solve(solve_id, SolveStatus.CANCELLED))
        return self._runs.solve(solve_id)

    def wants_publish(self, solve: SolveView) -> bool:
        """FinishSolve's answer to the state machine's ShouldPublish choice."""
        return should_publish(solve)

    def publish(self, solve_id: UUID) -> Publication | None:
        """PublishResults: post the result to GitHub. Never raises: publishing never fails a solve."""
        if self._publish is None:
            self._events.append(solve_id, EventKind.ERROR, "publishing failed: no publisher is configured")
            return None
        try:
            return self._publish(solve_id)
        except Exception:  # the service records its own errors; this is the last line of defence
            log.exception("publishing solve %s failed", solve_id)
            return None

    def run_and_finish(self, solve_id: UUID) -> SolveView:
        """PickChampion then FinishSolve, as one call (the local orchestrator, the CLI)."""
        self.pick(solve_id)
        return self.finish(solve_id)
