"""The "pre-existing unrelated failure" scenario of champion selection: a repository whose suite
already fails for an unrelated reason, and three scripted candidates (replay models): the true fix,
a fix that breaks another test, and a no-op. Today's ranking (every candidate fails) picks the
smallest patch, the no-op; the baseline comparison picks the true fix."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.runtime import make_repo, write_replay

CALC = "def mean(values):\n    return sum(values) // len(values)\n\n\ndef half(x):\n    return x // 2\n"
TESTS = (
    "import os\n\nfrom calc import half, mean\n\n\n"
    "def test_mean():\n    assert mean([1, 2]) == 1.5\n\n\n"
    "def test_half():\n    assert half(5) == 2\n\n\n"
    "def test_unrelated_environment():\n    assert os.environ.get('SOLVER_SCENARIO_NEVER_SET') == 'yes'\n"
)
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TRUE_FIX = (
    "sed -i 's|return sum(values) // len(values)|total = sum(values)\\n    return total / len(values)|' calc.py",
    SUBMIT,
)
BREAKS_OTHER = ("sed -i 's|//|/|g' calc.py", SUBMIT)  # fixes mean, breaks half
NO_OP = ("echo '# looked at it' >> calc.py", SUBMIT)
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"


def scenario_repo(path: Path) -> Path:
    return make_repo(path, {"calc.py": CALC, "test_calc.py": TESTS})


def scenario_models(directory: Path) -> list[str]:
    """The three candidates, as replay models in run order: true fix, fix that breaks, no-op."""
    return [
        write_replay(directory / "true_fix.yaml", *TRUE_FIX),
        write_replay(directory / "breaks_other.yaml", *BREAKS_OTHER),
        write_replay(directory / "no_op.yaml", *NO_OP),
    ]
