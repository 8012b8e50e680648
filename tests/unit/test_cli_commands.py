"""The command line loads a command's module only when that command runs (solver_core/cli/__init__.py):
the list shown by `solver --help` comes from a table, which must say what each command's own help
says, and listing the commands must not import the heavy stacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from solver_core.cli import COMMANDS, load

pytestmark = pytest.mark.unit

HEAVY = ("sqlalchemy", "alembic", "pydantic", "aws_lambda_powertools", "litellm", "minisweagent", "boto3")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    command = load(name)
    assert command.name == name
    assert (command.help or "").split("\n\n")[0].strip() == COMMANDS[name].help


def test_solver_help_lists_every_command_without_importing_the_heavy_stacks() -> None:
    script = (
        "import json, sys\n"
        "sys.argv = ['solver', '--help']\n"
        "from solver_core.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert loaded.isdisjoint(HEAVY), loaded & set(HEAVY)
    shown = [name for name, entry in COMMANDS.items() if not entry.hidden]
    assert all(f" {name} " in done.stdout for name in shown)
    assert " internal " not in done.stdout
