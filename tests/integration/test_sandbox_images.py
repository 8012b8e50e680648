"""Which sandbox images a caller may name (`sandbox_image`, a batch instance's `image`): SWE-bench's
public images and the deployment's own by default, more per owner by the operator's settings, any
for the machine's own user. A template built for one team's private repository is not another's to
run. Through the API, on both databases."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from solver_core.api import build_app
from solver_core.api.deps import ApiLimits
from solver_core.db.schema import BatchRow, SolveRow
from solver_core.rules import RequestPolicy
from solver_core.settings import Settings
from tests.integration.test_batches_api import RecordingBatches, batch_body, instance
from tests.support.api import ALICE, BOB, ApiWorld, LambdaContextStub, api_world, rest_event, solve_body

pytestmark = pytest.mark.integration

TEAM_IMAGE = "solver-alice-private:v2"
SWEBENCH = "swebench/sweb.eval.x86_64.org_1776_repo-1:latest"


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[ApiWorld]:
    settings: dict[str, Any] = {"owner_sandbox_images": {ALICE: ["solver-alice-*"]}, "sandbox_template": "solver"}
    with api_world(database_url, tmp_path / "home", limits=ApiLimits(), **settings) as built:
        yield dataclasses.replace(built, deps=dataclasses.replace(built.deps, batch_orchestrator=RecordingBatches()))


def call(world: ApiWorld, path: str, body: dict[str, Any], owner: str) -> tuple[int, Any]:
    app = build_app(deps=lambda: world.deps)
    response = app.resolve(rest_event("POST", path, body=body, owner=owner), LambdaContextStub())  # type: ignore[arg-type]
    return int(response["statusCode"]), json.loads(response["body"])


def count(world: ApiWorld, table: type[Any]) -> int:
    with world.deps.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_an_image_built_for_one_owner_is_refused_to_another_and_nothing_is_written(world: ApiWorld) -> None:
    status, error = call(world, "/solves", solve_body(sandbox_image=TEAM_IMAGE), BOB)
    assert status == 422, error
    [detail] = error["error"]["details"]
    assert (detail["field"], detail["rule"]) == ("sandbox_image", "image_not_allowed")
    assert TEAM_IMAGE in detail["message"]
    assert "SOLVER_ALLOWED_SANDBOX_IMAGES" in detail["message"]  # says what to do
    assert count(world, SolveRow) == 0
    assert world.orchestrator.started == []

    status, started = call(world, "/solves", solve_body(sandbox_image=TEAM_IMAGE), ALICE)
    assert status == 202, started
    with world.deps.sessions() as session:
        assert session.scalars(select(SolveRow.sandbox_image)).all() == [TEAM_IMAGE]


@pytest.mark.parametrize("image", [SWEBENCH, "solver"])
def test_swebench_images_and_the_deployments_own_are_anyones(world: ApiWorld, image: str) -> None:
    status, started = call(world, "/solves", solve_body(sandbox_image=image), BOB)
    assert status == 202, started


def test_a_batch_instance_naming_an_image_not_allowed_is_a_422_naming_it(world: ApiWorld) -> None:
    body = batch_body(instance("swe-1", image=SWEBENCH), instance("theirs", image=TEAM_IMAGE))
    status, error = call(world, "/batches", body, BOB)
    assert status == 422, error
    [detail] = error["error"]["details"]
    assert detail["instance_id"] == "theirs"
    assert detail["message"].startswith("item 2 (theirs): sandbox image 'solver-alice-private:v2' is not allowed")
    assert (count(world, BatchRow), count(world, SolveRow)) == (0, 0)

    status, created = call(world, "/batches", body, ALICE)
    assert status == 202, created
    assert count(world, SolveRow) == 2


def test_the_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLVER_ALLOWED_SANDBOX_IMAGES", "ghcr.io/acme/*, python:3.12")
    monkeypatch.setenv("SOLVER_OWNER_SANDBOX_IMAGES", json.dumps({BOB: ["bob-*"]}))
    policy = RequestPolicy.from_settings(Settings(docker_image="debian:bookworm"))
    assert policy.image_allowed(ALICE, "ghcr.io/acme/app:1")
    assert policy.image_allowed(ALICE, "debian:bookworm")  # the deployment's own docker image
    assert not policy.image_allowed(ALICE, SWEBENCH)  # the default list was replaced
    assert policy.image_allowed(BOB, "bob-tools")
    assert not policy.image_allowed(ALICE, "bob-tools")
    trusted = RequestPolicy.from_settings(Settings(trusted_owner="local:me"))
    assert trusted.image_allowed("local:me", "anything/at:all")
    assert not trusted.image_allowed(ALICE, "anything/at:all")
