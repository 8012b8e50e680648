"""The Markdown Solver posts: the issue comment (runs table, champion diff, links) and the pull
request's title, body and commit message. Everything taken from runs or the patch is escaped, and
the diff sits in a code fence longer than any backtick run inside it."""

from __future__ import annotations

import re

from solver_core.gitdiff.parse import FilePatch
from solver_core.models import PublishedPull, RunSignals, RunView
from solver_core.publish.report import SolveReport
from solver_core.selection.summary import baseline_line, judge_line, reproduction_line, signals_line
from solver_core.status import state_label

MAX_COMMENT_CHARS = 65_000  # GitHub refuses bodies over 65,536 characters
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")


def cell(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", " ".join(text.split()))


def code(text: str) -> str:
    """An inline code span; backslashes do not escape inside one, a longer backtick fence does."""
    text = " ".join(text.split("\n"))
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _tests(run: RunView) -> str:
    if run.tests is None:
        return "not run"
    return "passed" if run.tests.passed else f"failed (exit {run.tests.exit_code})"


def _row(report: SolveReport, run: RunView, signals: RunSignals | None) -> str:
    crown = " 🏆" if report.champion is not None and run.id == report.champion.id else ""
    # `succeeded` reads "finished", as in the CLI and the console: a run that finished may have failed its tests.
    status = state_label(run.status) + (f" ({run.exit_status})" if run.exit_status else "")
    model = code(run.model).replace("|", "\\|")  # GFM splits table cells on pipes even inside code
    ranked = cell(signals_line(signals)) if signals is not None else "-"  # the selection's, as `solver solve` shows
    cells = [f"{run.index}{crown}", model, cell(status), _tests(run), ranked, str(run.steps), f"${run.cost_usd:.4f}"]
    return "| " + " | ".join(cells) + " |"


def runs_table(report: SolveReport) -> str:
    head = "| run | model | state | tests | signals | steps | cost |\n|---|---|---|---|---|---|---|"
    selection = report.solve.selection
    signals = {s.run_id: s for s in selection.runs} if selection is not None else {}
    return "\n".join([head, *(_row(report, run, signals.get(run.id)) for run in report.solve.runs)])


def where_to_fetch(report: SolveReport) -> str:
    """How to get the trajectories, logs and full patch: authenticated routes, never a presigned link."""
    if report.solve_url:
        return (
            f"Trajectories, logs and the full patch (with your Solver API credentials): "
            f"`GET {report.solve_url}` and `GET {report.solve_url}/patch`."
        )
    return (
        f"Trajectories, logs and the full patch: `solver status {report.solve.id}` where the solve ran, "
        f"or `GET /solves/{report.solve.id}` on its Solver API."
    )


def display_diff(patch: bytes) -> str:
    """The patch as text, with binary patch data (base85 noise) replaced by a note."""
    out, skipping = [], False
    for line in patch.decode("utf-8", errors="replace").split("\n"):
        if line.startswith("diff --git "):
            skipping = False
        if line == "GIT binary patch":
            out.append("(binary file: contents omitted)")
            skipping = True
        if not skipping:
            out.append(line)
    return "\n".join(out).rstrip("\n")


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}diff\n{text}\n{fence}"


def _diff_block(report: SolveReport, budget: int) -> str:
    if report.patch is None or report.champion is None:
        return ""
    stats = report.champion.patch_stats
    summary = f"{stats.files} file(s), +{stats.added} -{stats.removed}" if stats else "the patch"
    text = display_diff(report.patch)
    note = ""
    if len(text) > budget:
        cut = text[: max(0, budget)].rsplit("\n", 1)[0]
        shown, total = cut.count("\n") + 1, text.count("\n") + 1
        where = f" The full patch: `GET {report.solve_url}/patch`." if report.solve_url else ""
        note, text = f"\n\n*Diff truncated: {shown} of {total} lines shown.{where}*", cut
    return f"<details><summary>Champion diff ({summary})</summary>\n\n{_fenced(text)}{note}\n\n</details>"


def _headline(report: SolveReport, pull: PublishedPull | None) -> str:
    solve, champion = report.solve, report.champion
    if champion is None:
        lines = [f"### Solver: no patch for this issue ({solve.status.value})", "", cell(solve.error or "")]
    else:
        lines = [
            f"### Solver: {'a tested' if champion.tests and champion.tests.passed else 'a'} patch for this issue",
            "",
            f"Champion: run {champion.index} ({code(champion.model)}), tests {_tests(champion)}.",
        ]
        selection = solve.selection
        if selection is not None:  # test ids come from reports the patched code wrote: escaped
            if selection.baseline is not None:
                lines += ["", f"Baseline: {cell(baseline_line(selection.baseline))}."]
            if selection.reproduction is not None:
                lines += ["", f"Reproduction scripts: {cell(reproduction_line(selection.reproduction))}."]
            if selection.judge is not None:  # the selector model's answer: escaped like the rest
                lines += ["", f"Judge: {cell(judge_line(selection.judge))}."]
            lines += ["", f"Why: {cell(selection.reason)}."]
    if pull is not None:
        lines.append(f"Draft pull request: [#{pull.number}]({pull.url})")
    return "\n".join(lines)


def comment_body(report: SolveReport, pull: PublishedPull | None) -> str:
    head = "\n\n".join([report.marker, _headline(report, pull), runs_table(report), where_to_fetch(report)])
    foot = f"<sub>Solve `{report.solve.id}` · {len(report.solve.runs)} run(s)</sub>"
    budget = MAX_COMMENT_CHARS - len(head) - len(foot) - 400  # room for the fence, summary and note
    parts = [head, _diff_block(report, budget), foot]
    return "\n\n".join(part for part in parts if part)


def pull_title(report: SolveReport) -> str:
    return f"Solver: {report.solve.issue.title}"[:250]


def _change_line(change: FilePatch) -> str:
    old, new = code(change.old_path or ""), code(change.new_path or "")
    if change.new_path is None:
        return f"- deleted {old}"
    if change.old_path is None:
        return f"- added {new}"
    if change.old_path != change.new_path:
        return f"- {'copied' if change.is_copy else 'renamed'} {old} → {new}"
    if change.old_mode and change.new_mode and change.old_mode != change.new_mode:
        return f"- modified {new} (mode {change.old_mode} → {change.new_mode})"
    return f"- modified {new}"


def pull_body(report: SolveReport, changes: list[FilePatch], base_note: str) -> str:
    champion = report.champion
    issue = report.solve.issue
    about = f"Proposed fix for {issue.url}" if issue.url else f"Proposed fix for: {cell(issue.title)}"
    stats = champion.patch_stats if champion else None
    lines = [report.marker, about, ""]
    if champion is not None:
        lines.append(f"Champion: run {champion.index} ({code(champion.model)}), tests {_tests(champion)}, "
                     f"{champion.steps} steps, ${champion.cost_usd:.4f}.")  # fmt: skip
    if stats is not None:
        lines.append(f"Changes: {stats.files} file(s), +{stats.added} -{stats.removed}")
    lines += [_change_line(c) for c in changes[:100]]
    if len(changes) > 100:
        lines.append(f"- … and {len(changes) - 100} more")
    lines += ["", base_note, "", f"<sub>Solve `{report.solve.id}`. Review before merging: this is a draft.</sub>"]
    return "\n".join(lines)


def commit_message(report: SolveReport) -> str:
    """The commit's last line is the trailer by which a later publish recognises its own branch."""
    title = f"Solver: {report.solve.issue.title}"[:72]
    about = f"\n\nFor {report.solve.issue.url}" if report.solve.issue.url else ""
    return f"{title}{about}\n\nSolver-Solve: {report.solve.id}\n"
