"""Whether a database already has this version's newest schema, answered without importing Alembic
(a few hundred milliseconds): the command line migrates only when it does not (`open_container`).
Migrations are numbered (`0001_…`) with the number as the revision and one head (docs/architecture.md,
"Persistence decisions"), so the newest file's number is the head; a test checks it is Alembic's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def newest_revision() -> str | None:
    numbers = sorted(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    return numbers[-1] if numbers else None


def at_newest(engine: Engine) -> bool:
    """True when the database records exactly the newest revision (a missing table: False)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as connection:
            stored = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:
        return False
    return stored == [newest_revision()]
