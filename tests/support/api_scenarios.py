"""The API's behaviour, written once and run through the Lambda handlers and through `solver serve`.

A test class in each transport's test module inherits `ApiScenarios` and provides the `client`
(an ApiClient) and `world` (an ApiWorld) fixtures.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from solver_core.api import ApiLimits, openapi_document
from solver_core.artifacts import keys
from solver_core.models import SolveRequest
from solver_core.status import EventKind, RunStatus, SolveStatus
from tests.support.api import BOB, ApiWorld, solve_body
from tests.support.api_client import ApiClient

pytestmark = pytest.mark.integration

RUN_PATH = (RunStatus.LAUNCHING, RunStatus.PREPARING, RunStatus.SOLVING)


def start(client: ApiClient, **changes: Any) -> dict[str, Any]:
    answer = client.call("POST", "/solves", body=solve_body(**changes))
    assert answer.status == 202, answer.text
    created: dict[str, Any] = answer.json
    return created


def advance(world: ApiWorld, run_id: UUID, *statuses: RunStatus) -> None:
    for status in statuses:
        world.deps.runs.move(run_id, status)


def finish_solve(world: ApiWorld, solve_id: UUID) -> UUID:
    """Drive a solve to succeeded by hand: run 0 wins with a patch, the other runs fail."""
    solve = world.deps.runs.solve(solve_id)
    world.deps.runs.move_solve(solve_id, SolveStatus.RUNNING)
    winner = solve.runs[0].id
    advance(world, winner, *RUN_PATH)
    world.deps.runs.record_progress(winner, steps=12, cost_usd=0.25, tokens=900)
    advance(world, winner, RunStatus.COLLECTING)
    world.deps.runs.set_fields(winner, patch_stats={"files": 2, "added": 7, "removed": 3}, patch_key="p/patch.diff")
    advance(world, winner, RunStatus.SUCCEEDED)
    for run in solve.runs[1:]:
        world.deps.runs.move(run.id, RunStatus.FAILED, error="no patch")
    world.deps.runs.move_solve(solve_id, SolveStatus.SUCCEEDED, champion_run_id=winner)
    return winner


def other_owners_solve(world: ApiWorld) -> UUID:
    return world.deps.solves.start(BOB, SolveRequest.model_validate(solve_body())).solve.id


class ApiScenarios:
    def test_start_answers_202_with_links_and_starts_the_execution(self, client: ApiClient, world: ApiWorld) -> None:
        answer = client.call("POST", "/solves", body=solve_body())
        assert answer.status == 202
        created = answer.json
        solve_id = UUID(created["id"])
        assert created["status"] == "queued"
        assert created["created"] is True
        assert created["links"]["self"].endswith(f"/solves/{solve_id}")
        assert created["links"]["events"] == created["links"]["self"] + "/events"
        assert created["links"]["cancel"] == created["links"]["self"] + "/cancel"
        assert answer.headers["location"] == created["links"]["self"]
        assert world.orchestrator.started == [solve_id]
        solve = world.deps.solves.get(client.owner, solve_id)
        assert solve.execution_ref == f"fake-execution:{solve_id}"
        assert [r.model for r in solve.runs] == ["anthropic/claude-sonnet-4-5"] * 2

    def test_the_champion_patch_is_served_as_a_diff_once_there_is_one(self, client: ApiClient, world: ApiWorld) -> None:
        solve_id = start(client)["id"]
        waiting = client.call("GET", f"/solves/{solve_id}/patch")
        assert waiting.status == 404
        assert "no champion" in waiting.json["error"]["message"]
        finish_solve(world, UUID(solve_id))
        world.deps.artifacts.put(keys.champion_patch(UUID(solve_id)), b"diff --git a/x b/x\n+fixed\n")
        answer = client.call("GET", f"/solves/{solve_id}/patch")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/x-diff")
        assert answer.text == "diff --git a/x b/x\n+fixed\n"

    def test_get_answers_the_public_shape(self, client: ApiClient, world: ApiWorld) -> None:
        solve_id = start(client)["id"]
        body = client.call("GET", f"/solves/{solve_id}").json
        assert body["id"] == solve_id
        assert body["status"] == "queued"
        assert body["issue"] == {"title": "Fix the bug", "body": "It breaks.", "url": None}
        assert body["external_ref"] == {"session_id": "s-1"}
        assert [r["index"] for r in body["runs"]] == [0, 1]
        assert {"id", "model", "status", "exit_status", "steps", "cost_usd", "patch_stats", "tests", "error"} <= set(
            body["runs"][0]
        )
        assert "owner" not in body

    def test_an_idempotent_replay_is_200_with_the_same_solve_and_another_body_is_409(
        self, client: ApiClient, world: ApiWorld
    ) -> None:
        key = {"Idempotency-Key": "order-42"}
        first = client.call("POST", "/solves", body=solve_body(), headers=key)
        again = client.call("POST", "/solves", body=solve_body(), headers=key)
        assert (first.status, again.status) == (202, 200)
        assert again.json["id"] == first.json["id"]
        assert again.json["created"] is False
        assert again.headers["idempotent-replayed"] == "true"
        other = client.call("POST", "/solves", body=solve_body(ref="dev"), headers=key)
        assert other.status == 409
        error = other.error
        assert error["code"] == "idempotency_conflict"
        assert error["details"][0]["field"] == "Idempotency-Key"
        assert error["details"][0]["solve_id"] == first.json["id"]
        assert set(world.orchestrator.started) == {UUID(first.json["id"])}

    @pytest.mark.parametrize(
        ("changes", "field", "rule"),
        [
            ({"repo_url": "http://github.com/org/repo"}, "repo_url", "url_scheme"),
            ({"repo_url": "https://evil.example/org/repo"}, "repo_url", "host_not_allowed"),
            ({"repo_url": "https://user:pw@github.com/org/repo"}, "repo_url", "url_credentials"),
            ({"ref": "bad..ref"}, "ref", "git_ref"),
            ({"issue": {"title": ""}}, "issue.title", "string_too_short"),
            ({"models": []}, "models", "too_short"),
            ({"models": ["acme/unknown"]}, "models[0]", "model_not_registered"),
            ({"models": ["replay:/tmp/x.yaml"]}, "models[0]", "replay_not_allowed"),
            ({"repo_url": "/srv/repo"}, "repo_url", "local_repo_not_allowed"),
            ({"limits": {"step_limit": 0}}, "limits.step_limit", "greater_than_equal"),
            ({"attempts_per_model": 9, "models": ["openai/gpt-5", "openai/gpt-5-mini"]}, "body", "too_many_runs"),
            ({"surprise": True}, "surprise", "extra_forbidden"),
            ({"callback_url": "http://hooks.example/x"}, "callback_url", "url_scheme"),
        ],
    )
    def test_validation_errors_are_422_naming_the_field_and_the_rule(
        self, client: ApiClient, world: ApiWorld, changes: dict[str, Any], field: str, rule: str
    ) -> None:
        answer = client.call("POST", "/solves", body=solve_body(**changes))
        assert answer.status == 422, answer.text
        error = answer.error
        assert error["code"] == "validation_failed"
        assert {"field": field, "rule": rule} in [{"field": d["field"], "rule": d["rule"]} for d in error["details"]]
        assert world.orchestrator.started == []

    def test_a_bad_idempotency_key_or_query_is_422_naming_the_parameter(self, client: ApiClient) -> None:
        answer = client.call("POST", "/solves", body=solve_body(), headers={"Idempotency-Key": "x" * 300})
        assert answer.status == 422
        assert answer.error["details"][0] == {
            **answer.error["details"][0],
            "field": "Idempotency-Key",
            "in": "header",
            "rule": "string_pattern_mismatch",
        }
        for query in ({"limit": "0"}, {"limit": "abc"}, {"status": "sleeping"}):
            answer = client.call("GET", "/solves", query=query)
            assert answer.status == 422
            assert answer.error["details"][0]["in"] == "query"

    def test_unreadable_bodies_are_400_and_non_objects_422(self, client: ApiClient) -> None:
        malformed = client.call("POST", "/solves", raw_body='{"repo_url": ')
        assert malformed.status == 400
        assert malformed.error["code"] == "bad_request"
        assert malformed.error["details"][0]["rule"] == "json_invalid"
        deep = client.call("POST", "/solves", raw_body="[" * 50_000 + "]" * 50_000)
        assert deep.status == 400
        for text in ("[1, 2]", '"text"', "null"):
            answer = client.call("POST", "/solves", raw_body=text)
            assert answer.status == 422, (text, answer.text)
            assert answer.error["details"][0]["field"] == "body"
        no_body = client.call("POST", "/solves")
        assert no_body.status == 422
        assert no_body.error["details"][0]["rule"] == "missing"

    def test_a_body_over_the_bound_is_413(self, client: ApiClient, world: ApiWorld) -> None:
        limit = world.deps.limits.max_body_bytes
        huge = solve_body(issue={"title": "t", "body": "x" * limit})
        answer = client.call("POST", "/solves", body=huge)
        assert answer.status == 413
        assert answer.error["code"] == "payload_too_large"
        # Just under the bound the request is read, and its over-long issue body breaks a rule instead.
        under = solve_body(issue={"title": "t", "body": "x" * (limit - 1000)})
        answer = client.call("POST", "/solves", body=under)
        assert answer.status == 422
        assert answer.error["details"][0]["field"] == "issue.body"

    def test_every_error_answer_is_one_line_what_happened_then_what_to_do(self, client: ApiClient) -> None:
        answers = {
            "bad_request": client.call("POST", "/solves", raw_body='{"repo_url": '),
            "validation_failed": client.call("POST", "/solves", body=solve_body(models=[])),
            "unsupported_media_type": client.call(
                "POST", "/solves", raw_body="x", headers={"Content-Type": "text/plain"}
            ),
            "not_found": client.call("GET", f"/solves/{uuid4()}"),
            "method_not_allowed": client.call("DELETE", "/solves"),
        }
        for code, answer in answers.items():
            assert answer.error["code"] == code, (code, answer.text)
            message = answer.error["message"]
            what, _, todo = message.partition("; ")
            assert "\n" not in message, message
            assert what, message
            assert todo, f"{code}: no advice in {message!r}"
        assert answers["not_found"].error["message"].endswith("; check the id (`solver list` shows your solves)")

    def test_unknown_routes_and_malformed_ids_are_404_in_the_error_shape(self, client: ApiClient) -> None:
        for method, path in (("GET", "/nope"), ("GET", "/solves/not-a-uuid")):
            answer = client.call(method, path)
            assert answer.status == 404, (method, path)
            assert answer.error["code"] == "not_found"
        wrong_method = client.call("DELETE", "/solves")
        assert wrong_method.status == 405
        assert wrong_method.error["code"] == "method_not_allowed"
        assert "GET" in wrong_method.headers["allow"]
        missing = client.call("GET", f"/solves/{uuid4()}")
        assert missing.status == 404
        assert missing.error["code"] == "not_found"

    def test_another_owners_solve_is_404_on_every_route(self, client: ApiClient, world: ApiWorld) -> None:
        theirs = other_owners_solve(world)
        for method, path in (
            ("GET", f"/solves/{theirs}"),
            ("GET", f"/solves/{theirs}/events"),
            ("GET", f"/solves/{theirs}/stats"),
            ("POST", f"/solves/{theirs}/cancel"),
        ):
            answer = client.call(method, path)
            assert answer.status == 404, (method, path, answer.text)
            assert answer.error["code"] == "not_found"
        assert client.call("GET", "/solves").json["items"] == []
        assert world.deps.solves.get(BOB, theirs).status is SolveStatus.QUEUED  # not cancelled

    def test_list_pages_with_a_cursor_and_filters_by_status(self, client: ApiClient, world: ApiWorld) -> None:
        ids = [start(client, issue={"title": f"issue {i}"})["id"] for i in range(5)]
        world.deps.runs.move_solve(UUID(ids[0]), SolveStatus.RUNNING)
        seen: list[str] = []
        query = {"limit": "2"}
        while True:
            page = client.call("GET", "/solves", query=query).json
            seen += [item["id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            query = {"limit": "2", "cursor": page["next_cursor"]}
        assert seen == list(reversed(ids))
        running = client.call("GET", "/solves", query={"status": "running"}).json
        assert [item["id"] for item in running["items"]] == [ids[0]]

    def test_bad_cursors_are_400(self, client: ApiClient) -> None:
        forged = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00", str(uuid4())]).encode()).decode()
        for cursor in ("%%%", "bm90IGpzb24", forged):
            answer = client.call("GET", "/solves", query={"cursor": cursor})
            assert answer.status == 400, (cursor, answer.text)
            assert answer.error["details"][0]["field"] == "cursor"

    def test_events_after_a_sequence_number(self, client: ApiClient, world: ApiWorld) -> None:
        solve_id = start(client)["id"]
        first = client.call("GET", f"/solves/{solve_id}/events").json
        assert [e["message"] for e in first["items"]] == ["solve queued"]
        assert first["next_after"] == first["items"][-1]["seq"]
        empty = client.call("GET", f"/solves/{solve_id}/events", query={"after": str(first["next_after"])}).json
        assert empty == {"items": [], "next_after": first["next_after"]}
        world.deps.events.append(UUID(solve_id), EventKind.LOG, "hello", data={"n": 1})
        world.deps.events.append(UUID(solve_id), EventKind.LOG, "again")
        later = client.call(
            "GET", f"/solves/{solve_id}/events", query={"after": str(first["next_after"]), "limit": "1"}
        ).json
        assert [(e["message"], e["data"]) for e in later["items"]] == [("hello", {"n": 1})]
        assert client.call("GET", f"/solves/{solve_id}/events", query={"after": "-1"}).status == 422

    def test_stats_per_run_and_per_solve(self, client: ApiClient, world: ApiWorld) -> None:
        solve_id = UUID(start(client)["id"])
        run0, run1 = (r.id for r in world.deps.runs.solve(solve_id).runs)
        world.deps.runs.move_solve(solve_id, SolveStatus.RUNNING)
        advance(world, run0, *RUN_PATH)
        world.deps.runs.record_progress(run0, steps=10, cost_usd=0.5, tokens=100)
        stats = client.call("GET", f"/solves/{solve_id}/stats").json
        assert [r["progress_pct"] for r in stats["runs"]] == [25.0, 0.0]  # 10 of 40 steps; run 1 still queued
        assert stats["progress_pct"] == 12.5
        assert (stats["steps"], stats["cost_usd"], stats["tokens"]) == (10, 0.5, 100)
        assert stats["runs"][0]["duration_s"] >= 0
        assert stats["runs"][1]["duration_s"] is None
        assert stats["runs_by_status"] == {"solving": 1, "queued": 1}
        world.deps.runs.move(run0, RunStatus.FAILED, error="boom")
        world.deps.runs.move(run1, RunStatus.FAILED, error="boom")
        world.deps.runs.move_solve(solve_id, SolveStatus.FAILED, error="no patch")
        done = client.call("GET", f"/solves/{solve_id}/stats").json
        assert done["progress_pct"] is None
        assert {r["progress_pct"] for r in done["runs"]} == {None}
        finished = UUID(start(client, issue={"title": "another"})["id"])
        finish_solve(world, finished)
        champion = client.call("GET", f"/solves/{finished}/stats").json
        assert (champion["files_changed"], champion["lines_added"], champion["lines_removed"]) == (2, 7, 3)
        assert champion["runs"][0]["files_changed"] == 2
        assert champion["runs"][1]["files_changed"] is None

    def test_cancel_is_idempotent_and_a_finished_solve_keeps_its_state(
        self, client: ApiClient, world: ApiWorld
    ) -> None:
        solve_id = UUID(start(client)["id"])
        run0 = world.deps.runs.solve(solve_id).runs[0].id
        world.deps.runs.move_solve(solve_id, SolveStatus.RUNNING)
        advance(world, run0, RunStatus.LAUNCHING)
        world.deps.runs.set_fields(run0, sandbox_id="sbx-1")
        first = client.call("POST", f"/solves/{solve_id}/cancel")
        assert first.status == 200, first.text
        assert first.json["changed"] is True
        assert first.json["solve"]["status"] == "cancelled"
        assert {r["status"] for r in first.json["solve"]["runs"]} == {"cancelled"}
        assert world.sandboxes.killed == ["sbx-1"]
        assert [s[0] for s in world.orchestrator.stopped] == [solve_id]
        again = client.call("POST", f"/solves/{solve_id}/cancel")
        assert again.status == 200
        assert again.json["changed"] is False
        assert again.json["solve"]["status"] == "cancelled"
        finished = UUID(start(client, issue={"title": "done"})["id"])
        finish_solve(world, finished)
        late = client.call("POST", f"/solves/{finished}/cancel")
        assert late.status == 200
        assert late.json["changed"] is False
        assert late.json["solve"]["status"] == "succeeded"
        assert len(world.orchestrator.stopped) == 1

    def test_the_per_owner_cap_is_429_with_retry_after_but_never_refuses_a_replay(
        self, client: ApiClient, world: ApiWorld
    ) -> None:
        client.install(dataclasses.replace(world.deps, limits=ApiLimits(max_active_solves_per_owner=2)))
        key = {"Idempotency-Key": "first"}
        assert client.call("POST", "/solves", body=solve_body(), headers=key).status == 202
        start(client, issue={"title": "second"})
        refused = client.call("POST", "/solves", body=solve_body(issue={"title": "third"}))
        assert refused.status == 429
        assert refused.error["code"] == "too_many_requests"
        assert int(refused.headers["retry-after"]) > 0
        assert client.call("POST", "/solves", body=solve_body(), headers=key).status == 200
        other_owners_solve(world)  # others' solves do not count
        world.deps.runs.move_solve(UUID(start_id(client, key)), SolveStatus.CANCELLING)
        assert client.call("POST", "/solves", body=solve_body(issue={"title": "third"})).status == 429
        world.deps.runs.move_solve(UUID(start_id(client, key)), SolveStatus.CANCELLED)
        assert client.call("POST", "/solves", body=solve_body(issue={"title": "third"})).status == 202

    def test_an_orchestrator_failure_is_503_and_a_retry_with_the_key_starts_the_solve(
        self, client: ApiClient, world: ApiWorld
    ) -> None:
        key = {"Idempotency-Key": "retry-me"}
        world.orchestrator.fail_start = True
        failed = client.call("POST", "/solves", body=solve_body(), headers=key)
        assert failed.status == 503
        solve_id = failed.error["details"][0]["solve_id"]
        world.orchestrator.fail_start = False
        retried = client.call("POST", "/solves", body=solve_body(), headers=key)
        assert retried.status == 200
        assert retried.json["id"] == solve_id
        assert world.orchestrator.started == [UUID(solve_id)]

    def test_health_is_200_and_503_names_what_failed(self, client: ApiClient, world: ApiWorld) -> None:
        healthy = client.call("GET", "/health")
        assert healthy.status == 200
        assert set(healthy.json["checks"]) == {"database", "artifacts", "sandbox", "orchestrator"}
        assert all(check["ok"] for check in healthy.json["checks"].values())
        world.orchestrator.healthy = False
        world.sandboxes.healthy = False
        degraded = client.call("GET", "/health")
        assert degraded.status == 503
        error = degraded.error
        assert error["code"] == "unavailable"
        assert "sandbox" in error["message"]
        assert "orchestrator" in error["message"]
        assert {d["field"] for d in error["details"]} == {"sandbox", "orchestrator"}
        assert any("API key" in d["message"] for d in error["details"])

    def test_models_lists_the_active_registry(self, client: ApiClient) -> None:
        body = client.call("GET", "/models").json
        names = [m["name"] for m in body["models"]]
        assert "anthropic/claude-sonnet-4-5" in names
        assert names == sorted(names)
        assert {"default", "swebench"} <= {c["name"] for c in body["agent_configs"]}

    def test_the_openapi_document_and_swagger_ui_are_served(self, client: ApiClient) -> None:
        document = client.call("GET", "/openapi.json")
        assert document.status == 200
        assert document.json == json.loads(json.dumps(openapi_document()))
        docs = client.call("GET", "/docs")
        assert docs.status == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle" in docs.text


def start_id(client: ApiClient, headers: dict[str, str]) -> str:
    """The id of the solve an Idempotency-Key started (by replaying it)."""
    answer = client.call("POST", "/solves", body=solve_body(), headers=headers)
    assert answer.status in {200, 202}, answer.text
    solve_id: str = answer.json["id"]
    return solve_id
