"""`solver batch FILE --remote URL` driving a served API over HTTP: POST /batches, follow, preds.json;
the same command again follows the same batch; --cancel; a refused instance. The server is `solver
serve`'s (make_server) with its bearer token, its batches run by the local batch orchestrator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from solver_core.api import ApiDeps
from solver_core.cli import app
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.remote_batch import RemoteApi, predictions
from solver_core.cli.serve import make_server
from solver_core.console.remote import BearerSigner
from solver_core.db.schema import BatchRow
from solver_core.wiring import Container
from tests.support.runtime import git, make_repo, runtime_settings, write_replay

pytestmark = pytest.mark.integration

TOKEN = "remote-batch-test-token-0123456789"
BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"


@dataclass
class Served:
    url: str
    container: Container
    repo: Path
    base: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    settings = runtime_settings(tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", sandbox_isolation="none")
    container = open_container(settings)
    deps = ApiDeps.from_container(container, batch_orchestrator=container.batch_orchestrator)
    server = make_server(lambda: deps, "127.0.0.1", 0, token=TOKEN, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY})
    try:
        yield Served(server.url, container, repo, git(repo, "rev-parse", "HEAD").strip())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        container.close()


def instances_file(path: Path, served: Served, count: int, **fields: Any) -> Path:
    rows = [
        {"instance_id": f"calc__mean-{n}", "repo": "org/calc", "repo_url": str(served.repo),
         "base_commit": served.base, "problem_statement": "mean([1, 2]) is 1", "patch": "gold"} | fields
        for n in range(count)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def solver(served: Served, *args: str) -> Any:
    env = {"SOLVER_SERVE_TOKEN": TOKEN}
    command = ["batch", *args, "--remote", served.url, "--remote-auth", "token", "--poll-s", "0.05"]
    return CliRunner().invoke(app, command, env=env, catch_exceptions=False)


def test_a_remote_batch_runs_to_its_end_and_the_same_command_follows_it_again(served: Served, tmp_path: Path) -> None:
    fix = write_replay(tmp_path / "fix.yaml", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
    file = instances_file(tmp_path / "swe.jsonl", served, 2)
    out = tmp_path / "out"
    args = (str(file), "--model", fix, "--max-concurrency", "1", "--output", str(out), "--name", "remote-run")
    result = solver(served, *args)
    assert result.exit_code == 0, result.output
    assert "started (2 instances)" in result.output
    preds = json.loads((out / "preds.json").read_text())
    assert sorted(preds) == ["calc__mean-0", "calc__mean-1"]
    for instance_id, prediction in preds.items():
        assert prediction["instance_id"] == instance_id
        assert prediction["model_name_or_path"] == "remote-run"
        assert "+    return sum(values) / len(values)" in prediction["model_patch"]
    batch = json.loads((out / "batch.json").read_text())
    assert batch["status"] == "finished"
    assert batch["counts"]["with_patch"] == 2

    again = solver(served, *args)
    assert again.exit_code == 0, again.output
    assert f"batch {batch['id']} already started: following it" in again.output
    with served.container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 1

    cancelled = solver(served, *args, "--cancel")
    assert cancelled.exit_code == 0, cancelled.output
    assert f"batch {batch['id']} cancelled: 0 unfinished solve(s) cancelled" in cancelled.output


def test_an_instance_the_deployment_refuses_is_reported_and_nothing_runs(served: Served, tmp_path: Path) -> None:
    file = instances_file(tmp_path / "swe.jsonl", served, 2, image="not an image!")
    result = solver(served, str(file), "--model", "replay:/x.yaml", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output  # read locally first: the image is refused by line
    assert "line 1 (calc__mean-0): image" in result.output

    file = instances_file(tmp_path / "remote.jsonl", served, 1, repo_url="relative/path")
    result = solver(served, str(file), "--model", "replay:/x.yaml", "--output", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "the API answered 422" in result.output
    assert "item 1 (calc__mean-0): repo_url" in result.output
    assert not (tmp_path / "out").exists()


def test_the_wrong_token_is_refused(served: Served, tmp_path: Path) -> None:
    file = instances_file(tmp_path / "swe.jsonl", served, 1)
    command = ["batch", str(file), "--model", "replay:/x.yaml", "--remote", served.url, "--remote-auth", "token"]
    result = CliRunner().invoke(app, command, env={"SOLVER_SERVE_TOKEN": "wrong"}, catch_exceptions=False)
    assert result.exit_code == 1
    assert "the API answered 401" in result.output


class _Links(BaseHTTPRequestHandler):
    """/preds answers a 303 to /object (as the API does for a large preds.json); /object needs no credentials."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        _Links.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if self.path.startswith("/api/batches/b-1/preds"):
            self.send_response(303)
            port = self.headers["Host"].rsplit(":", 1)[-1]
            self.send_header("Location", f"http://127.0.0.1:{port}/object?X-Amz-Signature=s")
            self.end_headers()
            return
        body = b'{"a-1": {"instance_id": "a-1", "model_name_or_path": "m", "model_patch": "diff"}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def test_a_large_preds_json_is_fetched_from_its_link_without_credentials() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = RemoteApi(f"http://127.0.0.1:{server.server_address[1]}/api", BearerSigner("Bearer secret-token"))
        preds = predictions(api, "b-1")
    finally:
        server.shutdown()
        server.server_close()
    assert json.loads(preds)["a-1"]["model_patch"] == "diff"
    first, second = _Links.seen
    assert first["authorization"] == "Bearer secret-token"
    assert second["path"].startswith("/object?")
    assert "authorization" not in second  # the presigned link is fetched as it is


def test_options_only_a_local_batch_honours_are_refused_with_remote(served: Served, tmp_path: Path) -> None:
    """A budget or an evaluation asked for with --remote would be silently dropped: it is an error."""
    file = instances_file(tmp_path / "instances.jsonl", served, 1)
    replay = write_replay(tmp_path / "idle.yaml", "ls")
    done = solver(served, str(file), "--model", f"replay:{replay}", "--cost-limit-total", "1", "--evaluate")
    assert done.exit_code == 2
    said = " ".join(done.output.replace("│", " ").split())  # typer's error box, unwrapped
    assert "--cost-limit-total, --evaluate only apply to a local batch" in said
    with served.container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 0
