"""The `solver` executable. Before the command line is built (which imports SQLAlchemy, Alembic,
the API, … and takes about a second), `solver solve --model M` (and `solver batch`) checks that M's provider key is set,
from a table and the environment alone: a missing key fails at once, in one line, with nothing
created (docs/architecture.md, "Readiness")."""

from __future__ import annotations

import sys
from collections.abc import Sequence

FAST_COMMANDS = frozenset({"solve", "batch"})


def requested_models(argv: Sequence[str]) -> list[str] | None:
    """The `--model` values of a `solve` or `batch` command line; None for other commands, help, and
    `--remote` (the models run in the deployment, with its keys, not this machine's)."""
    if len(argv) < 2 or argv[1] not in FAST_COMMANDS or any(a in {"--help", "-h"} for a in argv):
        return None
    if any(a == "--remote" or a.startswith("--remote=") for a in argv[2:]):
        return None
    models, args = [], list(argv[2:])
    for i, arg in enumerate(args):
        if arg == "--model" and i + 1 < len(args):
            models.append(args[i + 1])
        elif arg.startswith("--model="):
            models.append(arg.removeprefix("--model="))
    return models


def fail_fast(argv: Sequence[str]) -> int | None:
    """2 (after printing why) when a requested model has no key; None to go on."""
    models = requested_models(argv)
    if not models:
        return None
    from solver_core.agent.keys import preflight_models
    from solver_core.errors import ModelNotConfigured

    try:
        preflight_models(models, thorough=False)  # litellm itself is the slow import this avoids
    except ModelNotConfigured as exc:
        print(exc.message, file=sys.stderr)
        return 2
    return None


def main() -> None:
    if (code := fail_fast(sys.argv)) is not None:
        sys.exit(code)
    from solver_core.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
