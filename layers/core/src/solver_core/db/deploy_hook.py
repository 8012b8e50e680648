"""The CloudFormation custom resource that migrates the database on every deploy.

CloudFormation waits (up to an hour) for an answer at the pre-signed `ResponseURL`, so an answer is
always sent, failure included; deleting the stack leaves the database alone.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PHYSICAL_ID = "solver-database-schema"
Send = Callable[[str, bytes], None]


def put_response(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def handle(event: dict[str, Any], migrate: Callable[[], str | None], send: Send = put_response) -> dict[str, Any]:
    """Run `migrate` on Create and Update, nothing on Delete; always answer CloudFormation."""
    status, reason, data = "SUCCESS", "", {}
    try:
        if event.get("RequestType") in {"Create", "Update"}:
            data["Revision"] = migrate() or ""
    except Exception as exc:  # the stack must hear about any failure, or it hangs for an hour
        log.exception("database migration failed")
        status, reason = "FAILED", f"database migration failed: {type(exc).__name__}: {exc}"[:1000]
    response = {
        "Status": status,
        "Reason": reason or "see the function's logs",
        "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_ID,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": data,
    }
    send(event["ResponseURL"], json.dumps(response).encode())
    return response
