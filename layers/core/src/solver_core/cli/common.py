"""What the commands share: the console, the local owner and a migrated container."""

from __future__ import annotations

import sys

from rich.console import Console

from solver_core.db.migrate import upgrade
from solver_core.settings import Settings, local_owner
from solver_core.wiring import Container, build_container

__all__ = ["console", "local_owner", "open_container"]

# Piped output (CI logs, `| tee`) gets a wide fixed width rather than rich's default of 80 columns.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


def open_container(settings: Settings, *, settle: bool = True) -> Container:
    """The container on migrated storage: the embedded database is created or upgraded on first use.
    Solves left unfinished by a process that ended are settled first (cli/liveness.py)."""
    container = build_container(settings)
    upgrade(container.engine)
    if settle:
        from solver_core.cli.liveness import settle_orphans

        settle_orphans(container)
    return container
