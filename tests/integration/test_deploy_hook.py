"""The deploy-time migration custom resource always answers CloudFormation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import inspect

from solver_core.db import deploy_hook
from solver_core.db.engine import make_engine
from solver_core.db.migrate import current_revision, head_revision, upgrade

pytestmark = pytest.mark.integration


@pytest.fixture
def cloudformation() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for the pre-signed S3 URL CloudFormation waits on."""
    answers: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cfn-response?signature=x", answers
    server.shutdown()


def event(kind: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "stack",
        "RequestId": "req",
        "LogicalResourceId": "Schema",
    }


def test_create_migrates_from_empty_and_reports_the_revision(
    cloudformation: tuple[str, list[dict[str, Any]]], empty_database_url: str
) -> None:
    url, answers = cloudformation
    engine = make_engine(empty_database_url)

    def migrate() -> str | None:
        upgrade(engine)
        return current_revision(engine)

    try:
        deploy_hook.handle(event("Create", url), migrate)
        assert "solves" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert answers[0]["Status"] == "SUCCESS"
    assert answers[0]["Data"] == {"Revision": head_revision()}
    assert answers[0]["PhysicalResourceId"] == deploy_hook.PHYSICAL_ID


def test_a_failed_migration_is_reported_not_left_hanging(cloudformation: tuple[str, list[dict[str, Any]]]) -> None:
    url, answers = cloudformation

    def broken() -> str | None:
        raise RuntimeError("database unreachable")

    deploy_hook.handle(event("Update", url) | {"PhysicalResourceId": "kept"}, broken)
    assert answers[0]["Status"] == "FAILED"
    assert "database unreachable" in answers[0]["Reason"]
    assert answers[0]["PhysicalResourceId"] == "kept"


def test_delete_leaves_the_database_alone(cloudformation: tuple[str, list[dict[str, Any]]]) -> None:
    url, answers = cloudformation
    calls: list[str] = []

    def migrate() -> str | None:
        calls.append("migrated")
        return None

    deploy_hook.handle(event("Delete", url), migrate)
    assert calls == []
    assert answers[0]["Status"] == "SUCCESS"
