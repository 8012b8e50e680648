"""`solver serve` on a machine with other users and a browser: the token (never in an argv), the
Host header (DNS rebinding), JSON-only writes (cross-site forms), bubblewrap or an explicit opt-out,
and the sweeper on a timer."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from solver_core.api.http import ApiServer
from solver_core.cli.common import local_owner
from solver_core.cli.serve import make_server, start_sweeper
from solver_core.db.migrate import upgrade
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.sandbox.base import SandboxSpec
from solver_core.wiring import build_container
from tests.support.api import ApiWorld, api_world, solve_body
from tests.support.runtime import runtime_settings

pytestmark = pytest.mark.integration

TOKEN = "serve-hardening-token-0123456789"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    url = f"sqlite:///{tmp_path / 'solver.db'}"
    with api_world(url, tmp_path / "home") as built:
        upgrade(built.deps.sessions.kw["bind"])
        yield built


@pytest.fixture
def server(world: ApiWorld) -> Iterator[ApiServer]:
    built = make_server(
        lambda: world.deps, "127.0.0.1", 0, token=TOKEN, owner=local_owner(), allowed_hosts=("solver.lan",)
    )
    thread = threading.Thread(target=built.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield built
    built.shutdown()
    built.server_close()
    thread.join(5)


def request(
    server: ApiServer,
    method: str,
    path: str,
    *,
    host: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, object]]:
    port = int(server.server_address[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, path, skip_host=True)
    if host is not None:
        connection.putheader("Host", host)
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    if content_type is not None:
        connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body or b"")))
    connection.endheaders(body)
    answer = connection.getresponse()
    text = answer.read().decode()
    connection.close()
    return answer.status, json.loads(text) if text.startswith("{") else {}


def test_the_host_header_must_name_this_server(server: ApiServer) -> None:
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"solver.lan:{port}", f"SOLVER.LAN:{port}"):
        assert request(server, "GET", "/solves", host=host)[0] == 200, host
    foreign: tuple[str | None, ...] = ("evil.example", f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}")
    for other in (*foreign, f"solver.lan.evil:{port}", None):
        status, body = request(server, "GET", "/solves", host=other)
        assert status == 421, other
        assert body["error"]["code"] == "host_not_allowed"  # type: ignore[index]


def test_writes_must_be_json(server: ApiServer, world: ApiWorld) -> None:
    host = f"127.0.0.1:{server.server_address[1]}"
    created = request(
        server, "POST", "/solves", host=host, body=json.dumps(solve_body()).encode(), content_type="application/json"
    )
    assert created[0] == 202
    solve_id = created[1]["id"]
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        status, body = request(server, "POST", f"/solves/{solve_id}/cancel", host=host, content_type=content_type)
        assert status == 415, content_type
        assert body["error"]["code"] == "unsupported_media_type"  # type: ignore[index]
        form = request(server, "POST", "/solves", host=host, body=b"repo_url=x", content_type=content_type)
        assert form[0] == 415
    assert world.deps.solves.get(local_owner(), UUID(str(solve_id))).status.value == "queued"  # not cancelled
    assert len(world.orchestrator.started) == 1
    cancelled = request(server, "POST", f"/solves/{solve_id}/cancel", host=host, content_type="application/json")
    assert cancelled[0] == 200


# -- the command itself ------------------------------------------------------------------------


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    return env | {"SOLVER_HOME": str(tmp_path / "home"), "SOLVER_SANDBOX_DIR": str(tmp_path / "sandboxes")} | extra


def run_serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "solver_core.cli", "serve", "--port", "0", *args]
    env_ = serve_env(tmp_path, **env)
    return subprocess.run(command, env=env_, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--host", "0.0.0.0", "--allowed-host", "solver.lan"), {}, "needs a token"),
        (("--host", "0.0.0.0"), {"SOLVER_SERVE_TOKEN": TOKEN}, "--allowed-host"),
        (("--no-token",), {"SOLVER_SERVE_TOKEN": TOKEN}, "contradicts"),
        (("--token", TOKEN), {}, "SOLVER_SERVE_TOKEN"),
        ((), {"SOLVER_SANDBOX_ISOLATION": "none"}, "--unsafe-no-isolation"),
    ],
)
def test_serve_refuses_unsafe_configurations(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    done = run_serve(tmp_path, *args, **env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_no_token_is_refused_off_loopback(tmp_path: Path) -> None:
    done = run_serve(tmp_path, "--host", "0.0.0.0", "--allowed-host", "x", "--no-token")
    assert done.returncode == 2
    assert "loopback" in done.stderr


def test_a_readable_token_file_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    done = run_serve(tmp_path, "--token-file", str(token_file))
    assert done.returncode == 2
    assert "chmod 600" in done.stderr


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, output: list[str]) -> None:
        self.process, self.url, self.output = process, url, output

    def get(self, path: str, token: str | None) -> int:
        connection = http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=30)
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        status = connection.getresponse().status
        connection.close()
        return status


def start_serve(tmp_path: Path, *args: str, **env: str) -> Served:
    command = [sys.executable, "-m", "solver_core.cli", "serve", "--port", "0", *args]
    process = subprocess.Popen(
        command, env=serve_env(tmp_path, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if match := re.search(r"Solver API on (http://\S+)", line):  # the last line it prints
            return Served(process, match.group(1), lines)
    process.kill()
    raise AssertionError("".join(lines))


def stop(served: Served) -> None:
    served.process.terminate()
    served.process.wait(30)


def test_on_loopback_a_token_is_generated_and_printed(tmp_path: Path) -> None:
    served = start_serve(tmp_path)
    try:
        match = re.search(r"token \(generated\): (\S+)", "".join(served.output))
        assert match, served.output
        token = match.group(1)
        assert len(token) >= 32
        assert served.get("/solves", None) == 401
        assert served.get("/solves", "wrong") == 401
        assert served.get("/solves", token) == 200
    finally:
        stop(served)


def test_the_token_comes_from_the_environment_or_a_file_and_never_from_argv(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    for args, env in ((("--token-file", str(token_file)), {}), ((), {"SOLVER_SERVE_TOKEN": TOKEN})):
        served = start_serve(tmp_path, *args, **env)
        try:
            assert served.get("/solves", TOKEN) == 200
            assert served.get("/solves", None) == 401
            argv = Path(f"/proc/{served.process.pid}/cmdline").read_bytes().decode()
            assert TOKEN not in argv
            assert TOKEN not in "".join(served.output)  # a given token is not printed either
        finally:
            stop(served)


def test_no_token_serves_loopback_clients(tmp_path: Path) -> None:
    served = start_serve(tmp_path, "--no-token")
    try:
        assert served.get("/solves", None) == 200
    finally:
        stop(served)


def test_without_bubblewrap_serve_needs_the_explicit_opt_out(tmp_path: Path) -> None:
    served = start_serve(tmp_path, "--no-token", "--unsafe-no-isolation", SOLVER_SANDBOX_ISOLATION="none")
    try:
        assert served.get("/solves", None) == 200
        assert "unsafe-no-isolation" in "".join(served.output)
    finally:
        stop(served)


def test_serve_runs_the_sweeper_on_a_timer(tmp_path: Path) -> None:
    settings = runtime_settings(tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", sandbox_isolation="none")
    container = build_container(settings)
    upgrade(container.engine)
    orchestrator = LocalOrchestrator(container.pipeline(), container.flow())
    sandboxes = container.pipeline().deps.sandboxes
    metadata = {"app": "solver", "stack": settings.stack_name, "run_id": "00000000-0000-0000-0000-000000000000"}
    leaked = sandboxes.create(SandboxSpec(metadata=metadata, lifetime_s=300)).id
    stop_timer = start_sweeper(container, orchestrator, interval_s=0.2)
    try:
        deadline = datetime.now(UTC).timestamp() + 30
        while sandboxes.list({"app": "solver"}) and datetime.now(UTC).timestamp() < deadline:
            time.sleep(0.1)
        assert [s.id for s in sandboxes.list({"app": "solver"})] == [], f"{leaked} was never reaped"
    finally:
        stop_timer.set()
        container.close()
