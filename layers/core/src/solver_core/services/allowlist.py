"""Per-owner allowlists: the repositories and organisations for which an owner may use the
deployment's Git credentials (a private clone) and publishing (docs/architecture.md, "Tenancy").

An entry's target is `host/org` (every repository of the organisation, or a GitLab group and its
subgroups) or `host/org/repo`, compared case-insensitively; `org` and `org/repo` mean github.com.
The most specific entry that covers a repository decides, including whether a draft pull request
may change `.github/workflows/`. The trusted owner (the machine's user on the CLI and `solver
serve`) is allowed everything without entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.schema import AllowlistRow, utcnow
from solver_core.errors import NotOnAllowlist, ValidationFailed
from solver_core.rules import repository_key
from solver_core.store.records import rowcount

EVERYTHING = "*"
DEFAULT_HOST = "github.com"
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:[0-9]{1,5})?$")
_SEGMENT = re.compile(r"^[a-z0-9._~-]{1,100}$")
MAX_TARGET = 512


@dataclass(frozen=True)
class Grant:
    """An allowlist entry (or, for the trusted owner, everything)."""

    owner: str
    target: str
    allow_workflows: bool = False
    created_at: datetime | None = None


def normalise_target(text: str) -> str:
    """An entry as stored: `host/org[/repo…]` in lower case; ValidationFailed for anything else."""
    raw = text.strip()
    if raw.lower().startswith(("https://", "http://")):
        parts = urlsplit(raw)
        host, segments = (parts.netloc or "").lower(), [s for s in parts.path.split("/") if s]
    else:
        segments = [s for s in raw.split("/") if s]
        host = segments.pop(0).lower() if segments and "." in segments[0] else DEFAULT_HOST
    host = host.removeprefix("www.")
    segments = [s.lower() for s in segments]
    if segments:
        segments[-1] = segments[-1].removesuffix(".git")
    valid = (
        _HOST.match(host)
        and segments
        and all(_SEGMENT.match(s) and s not in {".", ".."} for s in segments)
        and len(raw) <= MAX_TARGET
    )
    if not valid:
        raise ValidationFailed(
            f"'{text[:100]}' is not an allowlist target: give org, org/repo, or host/org[/repo]",
            details=[{"field": "target", "rule": "allowlist_target"}],
        )
    return "/".join([host, *segments])


def covers(target: str, key: str) -> bool:
    return target in {EVERYTHING, key} or key.startswith(target + "/")


class AllowlistService:
    def __init__(self, sessions: sessionmaker[Session], *, trusted_owner: str | None = None) -> None:
        self._sessions = sessions
        self._trusted = trusted_owner

    def grant(self, owner: str, location: str) -> Grant | None:
        """The entry that lets `owner` use the deployment's credentials on this repository URL."""
        if self._trusted is not None and owner == self._trusted:
            return Grant(owner, EVERYTHING, allow_workflows=True)
        key = repository_key(location)
        if key is None:
            return None
        found = [g for g in self.entries(owner) if covers(g.target, key)]
        return max(found, key=lambda g: len(g.target)) if found else None

    def require(self, owner: str, location: str, what: str) -> Grant:
        """The grant, or NotOnAllowlist (403) saying what was refused and how to allow it."""
        grant = self.grant(owner, location)
        if grant is None:
            target = repository_key(location) or location
            raise NotOnAllowlist(
                f"{what} on {target} is not allowed for this caller: the repository is not on its allowlist "
                f"(an administrator adds it with `solver owners add OWNER {target}`)",
                details=[{"field": "repository", "rule": "not_on_allowlist", "repository": target}],
            )
        return grant

    def entries(self, owner: str | None = None) -> list[Grant]:
        query = select(AllowlistRow).order_by(AllowlistRow.owner, AllowlistRow.target)
        if owner is not None:
            query = query.where(AllowlistRow.owner == owner)
        with self._sessions() as session:
            return [_grant(row) for row in session.scalars(query)]

    def add(self, owner: str, target: str, *, allow_workflows: bool = False) -> Grant:
        """Add an entry, or update the workflow flag of an existing one."""
        if not owner.strip() or len(owner) > 200:
            raise ValidationFailed("an owner is 1 to 200 characters", details=[{"field": "owner", "rule": "owner"}])
        stored = normalise_target(target)
        with self._sessions.begin() as session:
            row = session.get(AllowlistRow, (owner, stored))
            if row is None:
                row = AllowlistRow(owner=owner, target=stored, allow_workflows=allow_workflows, created_at=utcnow())
                session.add(row)
            else:
                row.allow_workflows = allow_workflows
            session.flush()
            return _grant(row)

    def remove(self, owner: str, target: str) -> bool:
        stored = normalise_target(target)
        with self._sessions.begin() as session:
            done = session.execute(
                delete(AllowlistRow).where(AllowlistRow.owner == owner, AllowlistRow.target == stored)
            )
            return rowcount(done) > 0


def _grant(row: AllowlistRow) -> Grant:
    return Grant(row.owner, row.target, row.allow_workflows, row.created_at)
