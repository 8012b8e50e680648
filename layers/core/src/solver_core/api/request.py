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

    Each deployment uses one kind of authorizer, so the raw identity is the owner. There is no
    anonymous owner: without an identity every owner-scoped route answers 401.
    """
    context = event.get("requestContext") or {}
    authorizer = _dig(context, "authorizer") or {}
    candidates = (
        _dig(authorizer, "claims", "sub"),
        _dig(authorizer, "jwt", "claims", "sub"),
        _dig(authorizer, "principalId"),
        _dig(context, "identity", "userArn"),
        _dig(context, "identity", "caller"),
    )
    owner = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), None)
    if owner is None:
        raise Unauthorized("the request carries no caller identity")
    if len(owner) > MAX_OWNER_LENGTH:
        raise Unauthorized(f"the caller identity is longer than {MAX_OWNER_LENGTH} characters")
    return owner


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
