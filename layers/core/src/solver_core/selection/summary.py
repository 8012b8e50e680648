"""One-line texts of a `selection` record, shared by the CLI, the web console and the GitHub comment."""

from __future__ import annotations

from solver_core.models import BaselineSummary, JudgeVerdict, ReproductionSummary, RunSignals


def baseline_line(baseline: BaselineSummary) -> str:
    if baseline.status == "not_run":
        return "not run (no test command)"
    if baseline.status == "error":
        return f"could not run: {baseline.error or 'unknown error'}"
    counts = f", {baseline.passed} passed, {baseline.failed} failed" if baseline.per_test else ""
    failing = f" ({', '.join(baseline.failing_tests[:3])}{', …' if (baseline.failed or 0) > 3 else ''})"
    shown = failing if baseline.failing_tests else ""
    return f"tests {baseline.status} on the base commit (exit {baseline.exit_code}{counts}){shown}"


def signals_line(signals: RunSignals) -> str:
    parts = [f"#{signals.rank}", f"tests {signals.tests or 'not run'}"]
    delta = signals.baseline_delta
    if delta is not None:
        basis = "per test" if delta.basis == "per_test" else "by exit code"
        parts.append(f"fixed {delta.fixed}, broke {delta.broken}, still failing {delta.still_failing} ({basis})")
    if signals.modifies_tests:
        parts.append("modifies tests")
    if signals.group_size > 1:
        parts.append(f"same change as {signals.group_size - 1} other(s)")
    if signals.reproduce_passed is not None:
        parts.append(f"reproduction scripts passed: {signals.reproduce_passed}")
    if signals.judge_vote is not None:
        parts.append("judge's pick" if signals.judge_vote else "not the judge's pick")
    parts.append("submitted" if signals.submitted else "not submitted")
    parts.append(f"{signals.patch_lines} lines")
    return ", ".join(parts)


def reproduction_line(found: ReproductionSummary) -> str:
    if found.status == "no_scripts":
        return "no attempt wrote a script"
    if found.status == "error":
        return f"{found.scripts} script(s) written, none counted: {found.error or 'unknown error'}"
    return f"{found.scripts} script(s) written, {found.validated} fail on the base commit (those count)"


def judge_line(verdict: JudgeVerdict) -> str:
    among = ", ".join(str(index) for index in verdict.candidates)
    if verdict.choice is None:
        return f"{verdict.model} gave no usable pick among runs {among} ({verdict.error}); ${verdict.cost_usd:.4f}"
    return (
        f"{verdict.model} picked run {verdict.choice} among runs {among}: {verdict.reasoning} (${verdict.cost_usd:.4f})"
    )
