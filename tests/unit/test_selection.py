"""Ranking against the baseline: regressions first, then the verdict, then tests fixed; the reason
names the signal that decided (selection/ranking.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from solver_core.models import (
    PatchStats,
    Reproduction,
    RunKind,
    RunView,
    ScriptAuthor,
    ScriptResult,
    SolveView,
    TestCounts,
    TestResult,
)
from solver_core.publish.render import comment_body
from solver_core.publish.report import SolveReport
from solver_core.selection.junit import CaseOutcome, case_outcomes
from solver_core.selection.ranking import Baseline, Candidate, compare, select
from solver_core.workflow.champion import pick_champion, reproduction

pytestmark = pytest.mark.unit

P, F, S = CaseOutcome.PASSED, CaseOutcome.FAILED, CaseOutcome.SKIPPED
BASE = "b" * 40


def run(index: int, *, passed: bool | None, kind: RunKind = RunKind.ATTEMPT, lines: int = 2, **changes: Any) -> RunView:
    counts = TestCounts(passed=1, failed=0)
    tests = None if passed is None else TestResult(
        command="pytest -q", exit_code=0 if passed else 1, passed=passed, duration_s=1.0, per_test=counts
    )  # fmt: skip
    base: dict[str, Any] = {
        "id": uuid.uuid4(), "solve_id": uuid.UUID(int=0), "index": index, "model": f"m{index}", "agent_config": None,
        "status": "succeeded", "exit_status": "Submitted", "attempt": 0, "retryable": False, "sandbox_id": None,
        "base_commit": BASE, "steps": 3, "cost_usd": 1.0, "tokens": 0, "tests": tests, "error": None,
        "patch_stats": PatchStats(files=1, added=lines // 2, removed=lines - lines // 2), "artifacts": {},
        "heartbeat_at": None, "created_at": datetime.now(UTC), "started_at": None, "finished_at": None, "kind": kind,
    }  # fmt: skip
    return RunView(**(base | changes))


def baseline(cases: dict[str, CaseOutcome] | None, *, passed: bool = False) -> Baseline:
    return Baseline(run(-1, passed=passed, kind=RunKind.BASELINE), cases)


# The "done when" scenario: an unrelated test already fails on the base commit.
BEFORE = {"t::test_bug": F, "t::test_unrelated": F, "t::test_other": P}
TRUE_FIX = {"t::test_bug": P, "t::test_unrelated": F, "t::test_other": P}
BREAKS_OTHER = {"t::test_bug": P, "t::test_unrelated": F, "t::test_other": F}
NO_OP = dict(BEFORE)


def test_a_pre_existing_failure_no_longer_hides_the_true_fix() -> None:
    true_fix = Candidate(run(0, passed=False, lines=6), TRUE_FIX)
    breaks = Candidate(run(1, passed=False, lines=2), BREAKS_OTHER)  # smaller: today's ranking picked it
    no_op = Candidate(run(2, passed=False, lines=1), NO_OP)
    selection = select([no_op, breaks, true_fix], baseline(BEFORE))
    assert selection.champion_run_id == true_fix.run.id
    assert [s.index for s in selection.runs] == [0, 2, 1]  # the regression ranks below even the no-op
    assert "fixes 1 test(s) that failed on the base commit (t::test_bug)" in selection.reason
    assert "2 test(s) already failed on the base commit" in selection.reason
    champion, _no_op_signals, breaker = selection.runs
    assert champion.baseline_delta is not None
    assert champion.baseline_delta.still_failing_tests == ["t::test_unrelated"]
    assert breaker.baseline_delta is not None
    assert breaker.baseline_delta.broken_tests == ["t::test_other"]
    assert breaker.rank == 3
    assert selection.baseline is not None
    assert selection.baseline.failing_tests == ["t::test_bug", "t::test_unrelated"]


def test_breaking_a_passing_test_ranks_below_every_candidate_that_breaks_none() -> None:
    passes_but_drops_a_test = Candidate(run(0, passed=True, lines=1), {"t::test_bug": P})  # test_other vanished
    fails = Candidate(run(1, passed=False), NO_OP)
    selection = select([passes_but_drops_a_test, fails], baseline(BEFORE))
    assert selection.champion_run_id == fails.run.id
    assert "breaks no test that passed on the base commit; run 0 breaks 1 (t::test_other)" in selection.reason


def test_a_passing_test_that_is_skipped_after_the_patch_counts_as_broken() -> None:
    delta = compare(baseline({"a": P, "b": F}), Candidate(run(0, passed=True), {"a": S, "b": P}))
    assert delta is not None
    assert (delta.fixed, delta.broken, delta.still_failing) == (1, 1, 0)


def test_without_a_junit_report_the_exit_codes_are_compared() -> None:
    delta = compare(baseline(None, passed=True), Candidate(run(0, passed=False), None))
    assert delta is not None
    assert delta.basis == "exit_code"
    assert delta.broken == 1
    passing = Candidate(run(0, passed=True, lines=9))
    failing = Candidate(run(1, passed=False, lines=1))
    assert select([failing, passing], baseline(None, passed=True)).champion_run_id == passing.run.id


def test_another_base_commit_or_command_is_not_compared() -> None:
    other = Candidate(run(0, passed=True, base_commit="c" * 40), TRUE_FIX)
    assert compare(baseline(BEFORE), other) is None


def test_without_a_baseline_the_order_is_todays() -> None:
    passing = Candidate(run(0, passed=True, lines=20))
    small = Candidate(run(1, passed=False, lines=1))
    selection = select([small, passing], None)
    assert selection.champion_run_id == passing.run.id
    assert selection.reason == "run 0 (m0) won: its tests pass; run 1's failed"
    assert selection.runs[0].baseline_delta is None


def test_a_larger_consensus_group_breaks_a_tie_on_the_test_signals() -> None:
    lone = Candidate(run(0, passed=True, lines=1), group_size=1, group="lone")
    shared_a = Candidate(run(1, passed=True, lines=4), group_size=2, group="shared")
    shared_b = Candidate(run(2, passed=True, lines=5), group_size=2, group="shared")
    selection = select([lone, shared_a, shared_b], None)
    assert selection.champion_run_id == shared_a.run.id
    assert "2 candidates made the same change, 1 made run 0's" in selection.reason
    # The group never outranks a test signal.
    failing_pair = Candidate(run(3, passed=False), group_size=3, group="other")
    assert select([failing_pair, lone], None).champion_run_id == lone.run.id


def test_junit_test_ids_and_outcomes() -> None:
    xml = b"""<testsuites><testsuite>
      <testcase classname="tests.test_a" name="test_ok"/>
      <testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>
      <testcase classname="tests.test_a" name="test_err"><error message="x"/></testcase>
      <testcase classname="tests.test_a" name="test_skip"><skipped/></testcase>
      <testcase classname="tests.test_a" name="test_rerun"><failure/></testcase>
      <testcase classname="tests.test_a" name="test_rerun"/>
    </testsuite></testsuites>"""
    assert case_outcomes(xml) == {
        "tests.test_a::test_ok": P,
        "tests.test_a::test_bad": F,
        "tests.test_a::test_err": F,
        "tests.test_a::test_skip": S,
        "tests.test_a::test_rerun": F,
    }


# Reports as the other runners the issue names write them (shapes taken from their documentation).
JEST_JUNIT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" errors="0" time="1.2">
  <testsuite name="calc" errors="0" failures="1" skipped="1" timestamp="2026-12-04T05:00:00" time="0.5" tests="3">
    <testcase classname="calc mean divides" name="calc mean divides" time="0.002"></testcase>
    <testcase classname="calc mean rounds" name="calc mean rounds" time="0.001">
      <failure>Error: expect(received).toBe(expected) // Object.is equality</failure>
    </testcase>
    <testcase classname="calc later" name="calc later" time="0"><skipped/></testcase>
  </testsuite>
</testsuites>"""
GOTESTSUM = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" errors="0" time="0.010">
  <testsuite tests="3" failures="1" time="0.005" name="example.com/calc" timestamp="2026-12-04T05:00:00Z">
    <properties><property name="go.version" value="go1.22.0 linux/amd64"></property></properties>
    <testcase classname="example.com/calc" name="TestMean" time="0.000"></testcase>
    <testcase classname="example.com/calc" name="TestMean/empty" time="0.000">
      <failure message="Failed" type="">calc_test.go:12: got 0, want error</failure>
    </testcase>
    <testcase classname="example.com/calc" name="TestLater" time="0.000"><skipped message="later"></skipped></testcase>
  </testsuite>
</testsuites>"""


@pytest.mark.parametrize(
    ("xml", "ids"),
    [
        (JEST_JUNIT, tuple(f"calc {t}::calc {t}" for t in ("mean divides", "mean rounds", "later"))),
        (GOTESTSUM, ("example.com/calc::TestMean", "example.com/calc::TestMean/empty", "example.com/calc::TestLater")),
    ],
    ids=["jest-junit", "gotestsum"],
)  # fmt: skip
def test_jest_junit_and_gotestsum_reports_are_read_per_test(xml: bytes, ids: tuple[str, str, str]) -> None:
    passing, failing, skipped = ids
    assert case_outcomes(xml) == {passing: P, failing: F, skipped: S}
    # Against a baseline where the failing test passed, the candidate broke exactly that one.
    before = {passing: P, failing: P, skipped: S}
    delta = compare(baseline(before), Candidate(run(0, passed=False), case_outcomes(xml)))
    assert delta is not None
    assert (delta.basis, delta.broken_tests, delta.fixed_tests) == ("per_test", [failing], [])


def test_the_github_comment_says_why_and_escapes_test_ids_the_patched_code_wrote() -> None:
    """Test ids come from a JUnit report the patched code wrote: Markdown in them is shown as text."""
    hostile = "t::test_[click](https://evil.example)<img src=x>"
    fix = Candidate(run(0, passed=False), {hostile: P, "t::other": P})
    selection = select(
        [fix, Candidate(run(1, passed=False), {hostile: F, "t::other": P})], baseline({hostile: F, "t::other": P})
    )
    now = datetime.now(UTC)
    solve = SolveView(
        id=uuid.uuid4(), owner="o", status="succeeded", repo_url="https://github.com/o/r", ref=None,
        issue={"title": "t", "body": "", "url": "https://github.com/o/r/issues/1"}, models=["m0", "m1"],
        attempts_per_model=1, max_parallel=2, agent_config=None, limits={}, setup_command=None,
        test_command="pytest -q", callback_url=None, external_ref=None, execution_ref=None,
        champion_run_id=fix.run.id, error=None,
        created_at=now, updated_at=now, started_at=now, finished_at=now, runs=[fix.run], selection=selection,
    )  # fmt: skip
    body = comment_body(SolveReport(solve=solve, champion=fix.run, patch=b""), None)
    why = next(line for line in body.splitlines() if line.startswith("Why: "))
    assert "run 0 (m0) won: it fixes 1 test(s) that failed on the base commit" in why
    assert "<img" not in body.replace(r"\<img", "")  # only escaped: GitHub shows it as text
    assert "](https" not in body.replace(r"\](https", "")
    assert r"\<img src=x\>" in why
    assert "Baseline: tests failed on the base commit (exit 1, 1 passed, 1 failed)" in body


def test_the_github_comment_shows_each_runs_signals_and_the_judges_verdict_escaped() -> None:
    """As `solver solve` and GET /solves/{id} show them; the judge's answer is a model's text: escaped."""
    from solver_core.models import JudgeVerdict, RunSignals, Selection, TestDelta

    hostile = "pick <img src=x onerror=alert(1)> | [x](https://evil.example)"
    won, lost, empty = run(0, passed=True), run(1, passed=False), run(2, passed=None, patch_stats=None)
    delta = TestDelta(basis="per_test", fixed=2, broken=0, still_failing=1)
    selection = Selection(
        champion_run_id=won.id, reason="run 0 (m0) won: the judge picked it", baseline=None,
        runs=[
            RunSignals(run_id=won.id, index=0, model="m0", rank=1, tests="passed", baseline_delta=delta,
                       modifies_tests=False, group_size=2, reproduce_passed=3, judge_vote=True, submitted=True,
                       patch_lines=2, cost_usd=1.0),
            RunSignals(run_id=lost.id, index=1, model="m1", rank=2, tests="failed", baseline_delta=None,
                       modifies_tests=True, group_size=1, reproduce_passed=0, judge_vote=False, submitted=True,
                       patch_lines=4, cost_usd=1.0),
        ],
        judge=JudgeVerdict(model="judge-model", candidates=[0, 1], choice=0, reasoning=hostile, cost_usd=0.01),
    )  # fmt: skip
    now = datetime.now(UTC)
    solve = SolveView(
        id=uuid.uuid4(), owner="o", status="succeeded", repo_url="https://github.com/o/r", ref=None,
        issue={"title": "t", "body": "", "url": "https://github.com/o/r/issues/1"}, models=["m0", "m1", "m2"],
        attempts_per_model=1, max_parallel=3, agent_config=None, limits={}, setup_command=None,
        test_command="pytest -q", callback_url=None, external_ref=None, execution_ref=None,
        champion_run_id=won.id, error=None, created_at=now, updated_at=now, started_at=now, finished_at=now,
        runs=[won, lost, empty], selection=selection,
    )  # fmt: skip
    body = comment_body(SolveReport(solve=solve, champion=won, patch=b""), None)
    rows = {line.split(" | ")[0]: line for line in body.splitlines() if line.startswith("| ") and "`m" in line}
    assert (
        "| finished (Submitted) | passed | #1, tests passed, fixed 2, broke 0, still failing 1 (per test), "
        "same change as 1 other(s), reproduction scripts passed: 3, judge's pick, submitted, 2 lines | 3 |"
    ) in rows["| 0 🏆"]
    assert "#2, tests failed, modifies tests, reproduction scripts passed: 0, not the judge's pick" in rows["| 1"]
    assert "| not run | - |" in rows["| 2"]  # no patch: nothing ranked it
    judge = next(line for line in body.splitlines() if line.startswith("Judge: "))
    assert judge.startswith("Judge: judge-model picked run 0 among runs 0, 1: pick \\<img src=x onerror=alert(1)\\>")
    assert "\\| \\[x\\](https://evil.example)" in judge
    assert "<img" not in body.replace(r"\<img", "")
    assert "](https" not in body.replace(r"\](https", "")
    assert "succeeded" not in body


def test_the_judge_only_orders_candidates_the_other_signals_tie() -> None:
    passing_a = Candidate(run(0, passed=True, lines=2), group="a", judge_vote=False)
    passing_b = Candidate(run(1, passed=True, lines=6), group="b", judge_vote=True)
    assert select([passing_a, passing_b], None).champion_run_id == passing_b.run.id  # before size
    # A test signal outranks the judge's vote: a failing pick stays below a passing candidate.
    failing_pick = Candidate(run(2, passed=False, lines=1), group="c", judge_vote=True)
    selection = select([failing_pick, passing_a], None)
    assert selection.champion_run_id == passing_a.run.id
    assert "its tests pass" in selection.reason


def test_the_judges_question_is_bounded_and_its_answer_read() -> None:
    from solver_core.selection import judge

    question = judge.prompt("x" * 20_000, [(0, "d" * 50_000), (3, "+fix")])
    assert len(question) < judge.MAX_ISSUE_CHARS + 2 * judge.MAX_DIFF_CHARS + 2_000
    assert '<candidate run="3">\n+fix\n</candidate>' in question
    assert "more characters not shown" in question
    assert judge.parse("I prefer it.\nCHOICE: run 3\n", [0, 3]) == 3
    assert judge.parse("CHOICE: 7\nCHOICE: 0", [0, 3]) == 0  # a run outside the tie is no answer
    assert judge.parse("both are fine", [0, 3]) is None


def test_a_replayed_selector_model_is_refused_where_replays_are_not_allowed() -> None:
    from pydantic import ValidationError

    from solver_core.models import SolveRequest

    body = {"repo_url": "https://github.com/o/r", "issue": {"title": "t"}, "models": ["openai/gpt-4o"]}
    assert SolveRequest.model_validate(body | {"selector_model": "openai/gpt-4o"}).selector_model == "openai/gpt-4o"
    with pytest.raises(ValidationError, match="selector_model"):
        SolveRequest.model_validate(body | {"selector_model": "replay:/tmp/judge.yaml"})  # the strictest policy


def check(target: RunView | None, authors: list[RunView], exits: list[int | None], **changes: Any) -> RunView:
    """A reproduction check run: each author's script's exit code on `target` (None: the base commit)."""
    scripts = [
        ScriptResult(author_run_id=a.id, author_index=a.index, exit_code=e, passed=e == 0, timed_out=e is None)
        for a, e in zip(authors, exits, strict=True)
    ]
    plan = Reproduction(
        target_run_id=target.id if target else None,
        authors=[ScriptAuthor(run_id=a.id, index=a.index) for a in authors],
        scripts=scripts,
    )
    index = -2 if target is None else -3 - target.index
    return run(index, passed=None, kind=RunKind.CHECK, reproduction=plan, **changes)


def solve_with(runs: list[RunView], checks: list[RunView], *, reproduce: bool = True) -> SolveView:
    now = datetime.now(UTC)
    return SolveView.model_validate({
        "id": uuid.uuid4(), "owner": "o", "status": "running", "repo_url": "https://github.com/o/r", "ref": None,
        "issue": {"title": "t"}, "models": ["m"], "attempts_per_model": 2, "max_parallel": 2, "agent_config": None,
        "limits": {}, "setup_command": None, "test_command": None, "callback_url": None, "external_ref": None,
        "execution_ref": None, "champion_run_id": None, "error": None, "created_at": now, "updated_at": now,
        "started_at": None, "finished_at": None, "runs": runs, "checks": checks, "reproduce": reproduce,
    })  # fmt: skip


def test_only_scripts_that_fail_on_the_base_commit_count() -> None:
    """Run 0's script passes on the base commit already (it reproduces nothing) and a timed-out one is not
    validated either; only run 1's counts: the fix that passes it ranks first."""
    authors = [run(0, passed=None, reproduce_script=True), run(1, passed=None, reproduce_script=True)]
    timed_out = run(2, passed=None, reproduce_script=True)
    everyone = [*authors, timed_out]
    checks = [
        check(None, everyone, [0, 1, None]),
        check(authors[0], everyone, [0, 1, 0]),
        check(authors[1], everyone, [0, 0, 0]),
        check(timed_out, everyone, [0, 1, 0]),
    ]
    passed, summary = reproduction(solve_with(everyone, checks))
    assert summary is not None
    assert (summary.status, summary.scripts, summary.validated) == ("checked", 3, 1)
    assert passed == {authors[0].id: 0, authors[1].id: 1, timed_out.id: 0}
    choice = pick_champion(everyone, reproduced=passed)
    assert choice.run == authors[1]
    assert "reproduction script" in choice.reason


def test_scripts_that_could_not_run_on_the_base_commit_decide_nothing() -> None:
    authors = [run(0, passed=None, reproduce_script=True), run(1, passed=None, reproduce_script=True)]
    failed_base = check(None, authors, [1, 1], status="failed", error="SandboxUnavailable: no sandbox")
    checks = [failed_base, check(authors[0], authors, [0, 0]), check(authors[1], authors, [1, 1])]
    passed, summary = reproduction(solve_with(authors, checks))
    assert passed == {}
    assert summary is not None
    assert summary.status == "error"
    assert "SandboxUnavailable" in (summary.error or "")
    assert reproduction(solve_with(authors, [], reproduce=False)) == ({}, None)
    passed, summary = reproduction(solve_with([run(0, passed=None)], []))
    assert (passed, summary.status if summary else None) == ({}, "no_scripts")
