"""Champion selection: how often each strategy picks a true fix, on small real repositories with
labelled candidate sets. Every set is a real solve (local orchestrator, local sandboxes without
isolation, SQLite): each candidate is a replay model whose scripted actions write its change, the
baseline and the candidates are verified in fresh sandboxes, and the strategies then rank the same
verified runs:

- today: tests passed > leaves the tests alone > submitted > smaller patch > cost (one exit code);
- baseline: the candidates compared with the test command on the base commit, per test (JUnit XML);
- + reproduction: the above, then how many of the attempts' reproduction scripts a candidate passes,
  counting only scripts that fail on the base commit (each candidate's agent writes the script its
  understanding of the issue suggests: the true fixes and the fix that breaks another test a correct
  one, the wrong fixes one that already passes on the base commit, the no-op none);
- + consensus: the above, then the larger group of candidates making the same change;
- + judge: the above, then a replayed selector model among candidates still tied (what Solver
  records as the champion). The replay names the first true fix, so this column shows where a judge
  is consulted and that it never overrides a test signal, not how well a real model judges.

    .venv/bin/python benchmarks/selection.py

Target: the full strategy picks a true fix in every set where one exists; today's is the reference.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import benchlib

from solver_core.models import SolveView
from solver_core.selection.ranking import Baseline
from solver_core.wiring import Container
from solver_core.workflow.champion import pick_champion, reproduction

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"

CALC = "def mean(values):\n    return sum(values) // len(values)\n\n\ndef half(x):\n    return x // 2\n"
TEST_MEAN = "from calc import mean\n\n\ndef test_mean():\n    assert mean([1, 2]) == 1.5\n"
TEST_HALF = "from calc import half\n\n\ndef test_half():\n    assert half(5) == 2\n"
TEST_ENV = "import os\n\n\ndef test_environment():\n    assert os.environ.get('BENCH_NEVER_SET') == 'yes'\n"
WEAK_MEAN = "from calc import mean\n\n\ndef test_mean_even():\n    assert mean([2, 4]) == 3\n"  # misses the bug


def script(check: str) -> str:
    """The action writing a reproduction script that exits 0 when `check` holds."""
    body = f"import sys\\nfrom calc import mean\\nsys.exit(0 if {check} else 1)\\n"
    return f"printf '{body}' > reproduce_issue.py"


RIGHT_SCRIPT = script("mean([1, 2]) == 1.5")  # fails on the base commit: it reproduces the issue
WEAK_SCRIPT = script("mean([2, 4]) == 3")  # passes on the base commit already: validation drops it

# Candidates: shell actions writing the change (and the agent's reproduction script), and whether it
# truly fixes mean().
TRUE_FIX = (
    (
        RIGHT_SCRIPT,
        "sed -i 's|return sum(values) // len(values)|total = sum(values)\\n    return total / len(values)|' calc.py",
    ),
    True,
)
TRUE_FIX_ALIKE = (
    (RIGHT_SCRIPT, "sed -i 's|sum(values) // len(values)|sum(values)/len(values)  # true division|' calc.py"),
    True,
)
TRUE_FIX_SAME = ((RIGHT_SCRIPT, "sed -i 's|sum(values) // len(values)|sum(values) / len(values)|' calc.py"), True)
BREAKS_OTHER = ((RIGHT_SCRIPT, "sed -i 's|//|/|g' calc.py"), False)  # fixes mean, breaks half
NO_OP = (("echo '# looked at it' >> calc.py",), False)
EDITS_TEST = ((WEAK_SCRIPT, "sed -i 's|== 1.5|== 1|' tests/test_mean.py"), False)  # the test agrees with the bug
WRONG_PASSES_WEAK = ((WEAK_SCRIPT, "sed -i 's|// len(values)|// max(len(values), 1)|' calc.py"), False)


@dataclass(frozen=True)
class Set:
    name: str
    files: dict[str, str]
    candidates: tuple[tuple[tuple[str, ...], bool], ...]


def repo_files(*, unrelated_failure: bool = False, weak: bool = False) -> dict[str, str]:
    files = {"calc.py": CALC, "tests/test_half.py": TEST_HALF}
    files["tests/test_mean.py"] = WEAK_MEAN if weak else TEST_MEAN
    if unrelated_failure:
        files["tests/test_env.py"] = TEST_ENV
    return files


SETS = (
    Set("true fix vs a fix that breaks another test", repo_files(), (TRUE_FIX, BREAKS_OTHER)),
    Set("true fix vs a no-op", repo_files(), (NO_OP, TRUE_FIX)),
    Set("true fix vs a fix that edits the test", repo_files(), (EDITS_TEST, TRUE_FIX)),
    Set(
        "suite misses the bug: a wrong fix that passes, two equivalent true fixes",
        repo_files(weak=True),
        (WRONG_PASSES_WEAK, TRUE_FIX_SAME, TRUE_FIX_ALIKE),
    ),
    Set(
        "pre-existing unrelated failure: true fix, a fix that breaks another test, a no-op",
        repo_files(unrelated_failure=True),
        (TRUE_FIX, BREAKS_OTHER, NO_OP),
    ),
    Set(
        "pre-existing failure, all six kinds",
        repo_files(unrelated_failure=True),
        (NO_OP, BREAKS_OTHER, EDITS_TEST, TRUE_FIX, TRUE_FIX_ALIKE, TRUE_FIX_SAME),
    ),
    Set(
        "suite misses the bug: a wrong fix that passes, one true fix (without scripts, only a judge breaks the tie)",
        repo_files(weak=True),
        (WRONG_PASSES_WEAK, TRUE_FIX_SAME),
    ),
)
STRATEGIES = ("today", "baseline", "+ reproduction", "+ consensus", "+ judge (replayed; Solver)")


def solve_set(container: Container, workdir: Path, number: int, case: Set) -> SolveView:
    from tests.support.runtime import start_solve

    repo = benchlib.make_repo(workdir / f"repo{number}", case.files)
    models = [
        benchlib.write_replay(workdir / f"set{number}-c{i}.yaml", [*actions, SUBMIT])
        for i, (actions, _) in enumerate(case.candidates)
    ]
    # The replayed judge names the first true fix: it shows where a judge is consulted (only on ties)
    # and that it never overrides a test signal, not how well a model judges.
    first_true = next(i for i, (_, fix) in enumerate(case.candidates) if fix)
    judge = workdir / f"set{number}-judge.yaml"
    judge.write_text(f"actions:\n  - command: 'CHOICE: {first_true}'\n")
    solve = start_solve(
        container, repo_url=str(repo), models=models, max_parallel=len(models), test_command=PYTEST,
        selector_model=f"replay:{judge}", reproduce=True, reproduce_command="python3 reproduce_issue.py",
    )  # fmt: skip
    container.local_orchestrator().execute(solve.id)
    return container.runs.solve(solve.id)


def picks(container: Container, solve: SolveView) -> dict[str, int | None]:
    flow = container.flow()
    cases = {r.id: c for r in [*solve.runs, *filter(None, [solve.baseline])] if (c := flow.per_test(r))}
    baseline = Baseline(solve.baseline, cases.get(solve.baseline.id)) if solve.baseline else None
    groups = {r.id: r.patch_stats.group for r in solve.runs if r.patch_stats and r.patch_stats.group}
    reproduced, _summary = reproduction(solve)
    chosen = {
        "today": pick_champion(solve.runs).run,
        "baseline": pick_champion(solve.runs, baseline, cases).run,
        "+ reproduction": pick_champion(solve.runs, baseline, cases, reproduced=reproduced).run,
        "+ consensus": pick_champion(solve.runs, baseline, cases, groups, reproduced=reproduced).run,
        "+ judge (replayed; Solver)": next((r for r in solve.runs if r.id == solve.champion_run_id), None),
    }
    return {name: (run.index if run else None) for name, run in chosen.items()}


def main() -> None:
    from tests.support.runtime import runtime

    benchlib.header("Champion selection", ".venv/bin/python benchmarks/selection.py")
    rows: list[list[object]] = []
    hits = dict.fromkeys(STRATEGIES, 0)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        container = runtime(root, f"sqlite:///{root / 'solver.db'}", sandbox_isolation="none")
        from solver_core.db.migrate import upgrade

        upgrade(container.engine)
        try:
            for number, case in enumerate(SETS):
                solve = solve_set(container, root, number, case)
                chosen = picks(container, solve)
                truth = [fix for _, fix in case.candidates]
                cells = []
                for name in STRATEGIES:
                    index = chosen[name]
                    good = index is not None and truth[index]
                    hits[name] += good
                    cells.append(f"{'✓' if good else '✗'} run {index}")
                rows.append([case.name, len(case.candidates), *cells])
        finally:
            container.close()
    rows.append(["**true fix picked**", "", *(f"**{hits[name]} / {len(SETS)}**" for name in STRATEGIES)])
    print(benchlib.table(["candidate set", "candidates", *STRATEGIES], rows))


if __name__ == "__main__":
    main()
