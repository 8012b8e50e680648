"""Who is calling (from the authorizer context API Gateway filled in) and where the API lives."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from solver_core.api.errors import Unauthorized
from solver_core.api.schemas import Links

MAX_OWNER_LENGTH = 200  # the width of solves.owner
_ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/[^/]+/.+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def owner_of(event: BaseProxyEvent) -> str:
    """The caller's identity: a JWT `sub` (Cognito authorizer on REST, or the JWT authorizer's
    shape), a Lambda authorizer's principal, or the IAM caller (its ARN, else its id).

    Each deployment uses one kind of authorizer, so the identity is the owner. There is no
    anonymous owner: without an identity every owner-scoped route answers 401. An IAM caller with
    an assumed role is its role, not its session (`iam_owner`).
    """
    context = event.get("requestContext") or {}
    authorizer = _dig(context, "authorizer") or {}
    candidates: list[Any] = [
        _dig(authorizer, "claims", "sub"),
        _dig(authorizer, "jwt", "claims", "sub"),
        _dig(authorizer, "principalId"),
    ]
    iam = (_dig(context, "identity", "userArn"), _dig(context, "identity", "caller"))
    candidates += [iam_owner(c) if isinstance(c, str) else c for c in iam]
    owner = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), None)
    if owner is None:
        raise Unauthorized("the request carries no caller identity")
    if len(owner) > MAX_OWNER_LENGTH:
        raise Unauthorized(f"the caller identity is longer than {MAX_OWNER_LENGTH} characters")
    return owner


def iam_owner(identity: str) -> str:
    """The owner of an IAM caller: its ARN (or caller id) without the session name of an assumed role.

    Whoever assumes a role picks the session name (`sts:AssumeRole`'s RoleSessionName), so a caller
    could otherwise become a new owner, with a fresh cap, budget and allowlist, by renaming its
    session: `arn:aws:sts::123:assumed-role/Role/any-name` is owned by
    `arn:aws:sts::123:assumed-role/Role`, and the caller id `AROA…:any-name` by `AROA…`. Every
    session of one role is therefore one owner (docs/architecture.md, "Tenancy").
    """
    identity = identity.strip()
    if _ASSUMED_ROLE.match(identity):
        return identity.rsplit("/", 1)[0]
    if identity.startswith("AROA") and ":" in identity:  # a role's unique id, then the session name
        return identity.split(":", 1)[0]
    return identity


def base_url(event: BaseProxyEvent, base_path: str) -> str:
    """'https://host/stage' from the request; just the stage path when the host is unusable."""
    host = event.headers.get("host") or ""
    proto = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
    if not _HOST.match(host) or proto not in {"http", "https"}:
        return base_path
    return f"{proto}://{host}{base_path}"


def solve_links(base: str, solve_id: UUID) -> Links:
    own = f"{base}/solves/{solve_id}"
    return Links(self=own, events=f"{own}/events", cancel=f"{own}/cancel", stats=f"{own}/stats")
