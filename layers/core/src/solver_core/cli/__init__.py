"""The `solver` command line, on the embedded defaults unless SOLVER_* settings say otherwise.

A command's module is imported only when that command runs (or its own --help is asked for):
`solver --help` lists the commands from the table below without importing SQLAlchemy, the API or
the agent stack, and `solver status` imports what status needs (BENCHMARKS.md, "Command-line
start-up"). tests/unit/test_cli_commands.py checks that each one-line help is its command's own.
"""

from __future__ import annotations

import gc
import importlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Entry:
    module: str  # in solver_core.cli
    attribute: str  # a command function, or a typer.Typer of subcommands
    help: str  # the first paragraph of the command's own help
    hidden: bool = False


COMMANDS: dict[str, Entry] = {
    "solve": Entry(
        "solve",
        "solve",
        "Run agent attempts on REPO for an issue, in parallel, and show the champion's patch.",
    ),
    "publish": Entry(
        "solve",
        "publish",
        "Publish (again) a finished solve to GitHub: updates its comment and pull request in place.",
    ),
    "resume": Entry(
        "solve",
        "resume",
        "Continue an unfinished solve: its interrupted runs resume from their checkpoints in new sandboxes.",
    ),
    "batch": Entry(
        "batch",
        "batch",
        "Solve every instance of a benchmark or backlog; resume by running the same command again.",
    ),
    "demo": Entry(
        "demo",
        "demo",
        "Run the bundled example: three replayed attempts in parallel, tests pick the champion.",
    ),
    "serve": Entry(
        "serve",
        "serve",
        "Serve the HTTP API (the same routes as the cloud API; Swagger UI at /docs, console at /ui).",
    ),
    "doctor": Entry(
        "doctor",
        "run_doctor",
        "Check that this machine can run solves: git, bubblewrap, the sandbox backend, the "
        "database,\nthe artifacts folder and the models. The exit code is 1 when any check fails "
        "(✗).",
    ),
    "status": Entry(
        "client",
        "status",
        "Show a solve: its status, runs and artifact links.",
    ),
    "list": Entry(
        "client",
        "list_solves",
        "List your solves, newest first.",
    ),
    "cancel": Entry(
        "client",
        "cancel",
        "Cancel a solve (idempotent); a finished solve is left as it is.",
    ),
    "events": Entry(
        "client",
        "events",
        "Print a solve's events; with --follow, as they happen.",
    ),
    "db": Entry(
        "db",
        "app",
        "Database schema management.",
    ),
    "owners": Entry(
        "owners",
        "app",
        "Who may use the deployment's Git credentials and publishing, where.",
    ),
    "internal": Entry(
        "internal",
        "app",
        "Run single steps of a run (used by `solver solve`).",
        hidden=True,
    ),
    "template": Entry(
        "template",
        "app",
        "The e2b sandbox templates: Solver's own, or one built from each image.",
    ),
}


def load(name: str) -> _click.Command:
    """The command as typer builds it, from its module (imported now)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(f"solver_core.cli.{entry.module}"), entry.attribute)
    if isinstance(target, typer.Typer):
        command: _click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommand(TyperCommand):
    """Stands for a command in the list until it runs: then its module is imported and the real
    command parses the arguments (its own --help included) and runs."""

    def __init__(self, name: str, entry: Entry) -> None:
        super().__init__(name, help=entry.help, hidden=entry.hidden)

    @cached_property
    def real(self) -> _click.Command:
        assert self.name is not None
        return load(self.name)

    def make_context(
        self, info_name: str | None, args: list[str], parent: _click.Context | None = None, **extra: Any
    ) -> _click.Context:
        return self.real.make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: _click.Context) -> Any:
        return self.real.invoke(ctx)


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        entry = COMMANDS.get(cmd_name)
        return None if entry is None else LazyCommand(cmd_name, entry)


app = typer.Typer(cls=LazyGroup, no_args_is_help=True, add_completion=False, help="Turn issues into tested patches.")


@app.callback()
def _root() -> None:
    """Turn issues into tested patches."""


def main() -> None:
    try:
        app()
    finally:
        # The process ends here. Python's exit would run the garbage collector over every object the
        # imports made (SQLAlchemy's, the agent stack's): about 0.1 s of a short command, for nothing.
        # Frozen objects are skipped; atexit handlers and flushes still run (BENCHMARKS.md §1).
        gc.freeze()
