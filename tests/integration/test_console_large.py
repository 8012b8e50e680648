"""The console's raw trajectory download in AWS: a trajectory too large for a Lambda response is a
303 to a presigned link (as GET /solves/{id}/patch is), never a 502; a small one is served whole."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from moto import mock_aws
from sqlalchemy import update

from solver_core.api import build_app
from solver_core.api.deps import ApiLimits
from solver_core.api.routes.read import RESPONSE_ENVELOPE_BYTES
from solver_core.artifacts import keys
from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client
from solver_core.console.routes import router as console_router
from solver_core.db.schema import RunRow
from tests.support.api import ALICE, BOB, LambdaContextStub, api_world, header, rest_event, solve_body
from tests.support.api_scenarios import finish_solve
from tests.support.aws import use_fake_credentials

pytestmark = pytest.mark.integration


def trajectory(size: int) -> bytes:
    message = {"role": "user", "content": "x" * size}
    return json.dumps(
        {"info": {"exit_status": "Submitted"}, "messages": [message], "trajectory_format": "mini-swe-agent-1.1"}
    ).encode()


def test_a_large_trajectory_download_is_a_303_to_a_presigned_link(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_credentials(monkeypatch)
    with mock_aws(), api_world(database_url, tmp_path / "home") as world:
        client = make_s3_client("us-east-1")
        client.create_bucket(Bucket="solver-test")
        store = S3ArtifactStore(client, "solver-test")
        limits = ApiLimits(max_response_bytes=RESPONSE_ENVELOPE_BYTES + 8192)
        deps = dataclasses.replace(world.deps, artifacts=store, limits=limits)
        app = build_app(deps=lambda: deps)
        app.include_router(console_router(lambda: deps))  # as the status function serves it

        def get(path: str, owner: str = ALICE) -> dict[str, Any]:
            return app.resolve(rest_event("GET", path, owner=owner), LambdaContextStub())  # type: ignore[arg-type]

        started = rest_event("POST", "/solves", body=solve_body(), owner=ALICE)
        created = json.loads(app.resolve(started, LambdaContextStub())["body"])  # type: ignore[arg-type]
        solve_id = UUID(created["id"])
        winner = finish_solve(world, solve_id)
        key = keys.trajectory(solve_id, winner)
        with world.deps.sessions.begin() as session:  # as CollectArtifacts records it
            session.execute(update(RunRow).where(RunRow.id == winner).values(trajectory_key=key))
        path = f"/ui/solves/{solve_id}/runs/{winner}/trajectory.json"

        store.put(key, trajectory(100))
        small = get(path)
        assert small["statusCode"] == 200, small["body"][:300]
        assert json.loads(small["body"])["messages"][0]["content"] == "x" * 100

        store.put(key, trajectory(20_000))
        large = get(path)
        assert large["statusCode"] == 303, large["body"][:200]
        location = header(large, "Location") or ""
        assert location.startswith("https://solver-test.s3.amazonaws.com/")
        assert "X-Amz-Signature=" in location
        assert get(path, owner=BOB)["statusCode"] == 404  # another owner's run: no link either
