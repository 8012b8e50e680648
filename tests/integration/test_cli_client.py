"""`solver status`, `solver list`, `solver cancel` and `solver events` on the local database."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import typer
from typer.testing import CliRunner

from solver_core.cli import client
from solver_core.cli.common import local_owner, open_container
from solver_core.models import SolveRequest
from solver_core.settings import local_cli_settings
from solver_core.status import EventKind, SolveStatus
from solver_core.wiring import Container
from tests.support.api import solve_body

pytestmark = pytest.mark.integration

# Registered the way cli/__init__.py registers them.
app = typer.Typer()
app.command("status")(client.status)
app.command("list")(client.list_solves)
app.command("cancel")(client.cancel)
app.command("events")(client.events)


@pytest.fixture
def container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    monkeypatch.setenv("SOLVER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOLVER_SANDBOX_DIR", str(tmp_path / "sandboxes"))
    built = open_container(local_cli_settings())
    yield built
    built.close()


def start(container: Container, title: str = "Fix the bug") -> str:
    request = SolveRequest.model_validate(solve_body(issue={"title": title}))
    return str(container.solves.start(local_owner(), request).solve.id)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_and_list(container: Container) -> None:
    first, second = start(container, "first"), start(container, "second")
    assert "queued" in invoke("status", first)
    shown = json.loads(invoke("status", first, "--json"))
    assert shown["id"] == first
    assert shown["issue"]["title"] == "first"
    listed = json.loads(invoke("list", "--json", "--limit", "1"))
    assert [s["id"] for s in listed["items"]] == [second]
    more = json.loads(invoke("list", "--json", "--cursor", listed["next_cursor"]))
    assert [s["id"] for s in more["items"]] == [first]
    assert first in invoke("list")


def test_an_unknown_solve_is_an_error(container: Container) -> None:
    result = CliRunner().invoke(app, ["status", "6d8b1a0e-2a5e-4f4c-9d6b-2d0c1b0e9a11"])
    assert result.exit_code == 1


def test_cancel_is_idempotent(container: Container) -> None:
    solve_id = start(container)
    first = json.loads(invoke("cancel", solve_id, "--json"))
    assert first["changed"] is True
    assert first["solve"]["status"] == "cancelled"
    again = json.loads(invoke("cancel", solve_id, "--json"))
    assert again["changed"] is False


def test_events_and_follow_until_the_solve_ends(container: Container) -> None:
    solve_id = start(container)
    lines = [json.loads(line) for line in invoke("events", solve_id, "--json").splitlines()]
    assert [e["message"] for e in lines] == ["solve queued"]

    def finish_later() -> None:
        time.sleep(0.5)
        container.events.append(UUID(solve_id), EventKind.LOG, "working")
        container.runs.move_solve(UUID(solve_id), SolveStatus.CANCELLING)
        container.runs.move_solve(UUID(solve_id), SolveStatus.CANCELLED)

    worker = threading.Thread(target=finish_later)
    worker.start()
    followed = invoke("events", solve_id, "--follow", "--after", str(lines[0]["seq"]))
    worker.join()
    assert "working" in followed
    assert "solve cancelled" in followed
