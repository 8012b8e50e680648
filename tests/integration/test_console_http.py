"""The console over HTTP, without a browser: its security headers, the session cookie's rules
(reads anywhere, writes only same-origin with JSON), escaping, and the publish route."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest

from solver_core.api import ApiDeps
from solver_core.api.session import COOKIE, session_value
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.serve import make_server
from solver_core.wiring import Container
from tests.support.runtime import make_repo, runtime_settings, write_replay

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-the-console"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Server:
    url: str
    container: Container
    published: list[UUID]

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, body: str | None = None) -> Raw:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Raw(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
        finally:
            connection.close()

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # As `solver serve` does: its one owner, the machine's user, may publish anywhere (serve_settings).
    settings = runtime_settings(
        tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", sandbox_isolation="none", trusted_owner=local_owner()
    )
    container = open_container(settings)
    published: list[UUID] = []
    deps = ApiDeps.from_container(container, container.orchestrator, publish=published.append)
    api = make_server(lambda: deps, "127.0.0.1", 0, token=TOKEN, owner=local_owner())
    thread = threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(api.url, container, published)
    finally:
        api.shutdown()
        api.server_close()
        thread.join(5)
        container.close()


def cookie() -> str:
    return f"{COOKIE}={session_value(TOKEN)}"


def finished_solve(
    server: Server,
    tmp_path: Path,
    *commands: str,
    publish: bool = False,
    test_command: str = "true",
    others: tuple[tuple[str, ...], ...] = (),
) -> str:
    """A solve of one replayed model running `commands` (and one more per entry of `others`), finished."""
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    models = [
        write_replay(tmp_path / f"r{i}.yaml", *script, "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
        for i, script in enumerate((commands, *others))
    ]
    body: dict[str, Any] = {
        "repo_url": str(repo),
        "issue": {"title": f"title {HOSTILE}", "url": "https://github.com/o/r/issues/1"},
        "models": models,
        "test_command": test_command,
    }
    if publish:
        body["publish"] = {"comment": True}
        server.container.allowlist.add(local_owner(), "github.com/o/r")  # publish targets are per owner
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    created = server.call("POST", "/solves", headers=headers, body=json.dumps(body))
    assert created.status == 202, created.body
    solve_id = json.loads(created.body)["id"]
    deadline = time.monotonic() + 180  # the local orchestrator runs it; a loaded machine is slow
    while time.monotonic() < deadline:
        got = json.loads(server.call("GET", f"/solves/{solve_id}", headers={"Cookie": cookie()}).body)
        if got["status"] in {"succeeded", "failed"}:
            return str(solve_id)
        time.sleep(0.1)
    raise AssertionError(f"solve {solve_id} did not finish")


def test_pages_need_an_identity_and_send_a_strict_csp(server: Server) -> None:
    refused = server.call("GET", "/ui")
    assert refused.status == 401
    assert "Sign in" in refused.body
    for path in ("/ui", "/ui/new", "/ui/login"):
        page = server.call("GET", path, headers={"Cookie": cookie()})
        assert page.status == 200, path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        # No inline scripts or event handlers for the CSP to block: every script has a src.
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.body) == []
        assert re.findall(r"\son[a-z]+\s*=", page.body) == []
        # Every form control has a label (hidden inputs excepted), and the page says its language.
        controls = re.findall(r"<(?:input|select|textarea)\b(?![^>]*type=\"hidden\")[^>]*\bid=\"([^\"]+)\"", page.body)
        assert len(controls) >= {"/ui": 2, "/ui/new": 16, "/ui/login": 1}[path]
        unlabelled = [c for c in controls if f'<label for="{c}"' not in page.body]
        assert unlabelled == [], path
        assert '<html lang="en">' in page.body


def test_login_sets_an_httponly_strict_cookie_and_a_wrong_token_does_not(server: Server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{server.host}"}
    wrong = server.call("POST", "/ui/login", headers=form, body="token=nope")
    assert wrong.status == 303
    assert wrong.headers["location"] == "/ui/login?failed=1"
    assert "set-cookie" not in wrong.headers

    right = server.call("POST", "/ui/login", headers=form, body=f"token={TOKEN}")
    assert right.status == 303
    assert right.headers["location"] == "/ui"
    set_cookie = right.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}={session_value(TOKEN)};")
    assert "HttpOnly" in set_cookie
    assert "SameSite=Strict" in set_cookie
    assert TOKEN not in set_cookie

    cross = server.call("POST", "/ui/login", headers=form | {"Origin": "http://evil.example"}, body=f"token={TOKEN}")
    assert "set-cookie" not in cross.headers


def test_the_cookie_reads_everywhere_but_writes_only_same_origin_json(server: Server, tmp_path: Path) -> None:
    solve_id = finished_solve(server, tmp_path, "true")
    assert server.call("GET", f"/solves/{solve_id}", headers={"Cookie": cookie()}).status == 200
    assert server.call("GET", f"/solves/{solve_id}", headers={"Cookie": f"{COOKIE}=forged"}).status == 401

    cancel = f"/solves/{solve_id}/cancel"
    own = {"Cookie": cookie(), "Origin": f"http://{server.host}", "Content-Type": "application/json"}
    # Another port of the same host is the same site: SameSite=Strict would let its form through.
    other_port = own | {"Origin": "http://127.0.0.1:1"}
    assert server.call("POST", cancel, headers=other_port, body="{}").status == 401
    no_origin = {k: v for k, v in own.items() if k != "Origin"}
    assert server.call("POST", cancel, headers=no_origin, body="{}").status == 401
    # A form with no fields sends an empty body, which no content check looks at: the cookie must not pass.
    # (serve refuses any write that is not JSON, 415, before the cookie is even looked at)
    as_form = own | {"Content-Type": "application/x-www-form-urlencoded"}
    assert server.call("POST", cancel, headers=as_form, body="").status == 415
    as_text = own | {"Content-Type": "text/plain"}
    assert server.call("POST", cancel, headers=as_text, body="").status == 415
    cross_fetch = own | {"Sec-Fetch-Site": "same-site"}
    assert server.call("POST", cancel, headers=cross_fetch, body="{}").status == 401

    allowed = server.call("POST", cancel, headers=own, body="{}")
    assert allowed.status == 200, allowed.body
    assert json.loads(allowed.body)["changed"] is False  # it had finished; the request was let in


def test_what_the_agent_wrote_is_escaped_in_every_page(server: Server, tmp_path: Path) -> None:
    solve_id = finished_solve(server, tmp_path, f"printf '%s' '{HOSTILE}'")
    run_id = json.loads(server.call("GET", f"/solves/{solve_id}", headers={"Cookie": cookie()}).body)["runs"][0]["id"]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    for path in ("/ui", f"/ui/solves/{solve_id}", f"/ui/solves/{solve_id}/runs/{run_id}"):
        page = server.call("GET", path, headers={"Cookie": cookie()})
        assert page.status == 200
        assert HOSTILE not in page.body
        assert "<img src=x" not in page.body
        assert escaped in page.body or escaped.replace("&lt;", "&#60;") in page.body, path


def test_publish_is_for_finished_solves_with_a_publish_option(server: Server, tmp_path: Path) -> None:
    own = {"Cookie": cookie(), "Origin": f"http://{server.host}", "Content-Type": "application/json"}
    without = finished_solve(server, tmp_path, "true")
    refused = server.call("POST", f"/solves/{without}/publish", headers=own, body="{}")
    assert refused.status == 409
    assert "without a publish option" in refused.body
    assert server.published == []

    with_option = finished_solve(server, tmp_path / "2", "true", publish=True)
    accepted = server.call("POST", f"/solves/{with_option}/publish", headers=own, body="{}")
    assert accepted.status == 202, accepted.body
    assert server.published == [UUID(with_option)]
    page = server.call("GET", f"/ui/solves/{with_option}", headers={"Cookie": cookie()})
    assert 'data-action="publish"' in page.body


def test_static_files_are_served_by_name_only(server: Server) -> None:
    js = server.call("GET", "/ui/static/console.js", headers={"Cookie": cookie()})
    assert js.status == 200
    assert js.headers["content-type"].startswith("text/javascript")
    for name in ("..%2Froutes.py", "routes.py", ".hidden", "NOTICE"):
        assert server.call("GET", f"/ui/static/{name}", headers={"Cookie": cookie()}).status == 404, name


def test_the_list_pages_and_filters_by_repository(server: Server, tmp_path: Path) -> None:
    from html import unescape

    from solver_core.models import SolveRequest
    from solver_core.rules import RequestPolicy

    policy = RequestPolicy.from_settings(server.container.settings)
    repos = [make_repo(tmp_path / name, {"a.py": "x = 1\n"}) for name in ("one", "two")]
    for i in range(27):  # recorded, not run: the list only reads them
        data = {"repo_url": str(repos[i % 2]), "issue": {"title": f"solve number {i}"}, "models": ["replay:/x.yaml"]}
        server.container.solves.start(local_owner(), SolveRequest.model_validate(data, context=policy))

    first = server.call("GET", "/ui", headers={"Cookie": cookie()})
    assert first.body.count("<tr data-solve=") == 25
    assert "solve number 26" in first.body
    assert "solve number 1<" not in first.body
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first.body)
    assert next_link is not None
    second = server.call("GET", unescape(next_link[1]), headers={"Cookie": cookie()})
    assert second.body.count("<tr data-solve=") == 2
    assert "solve number 1<" in second.body
    assert "solve number 0<" in second.body
    assert 'rel="next"' not in second.body

    query = f"/ui?repo={repos[1]}"
    only_two = server.call("GET", query, headers={"Cookie": cookie()})
    titles = re.findall(r"solve number (\d+)<", only_two.body)
    assert len(titles) == 13
    assert all(int(t) % 2 == 1 for t in titles)
    api = json.loads(server.call("GET", f"/solves?repo={repos[0]}&limit=200", headers={"Cookie": cookie()}).body)
    assert len(api["items"]) == 14
    assert {item["repo_url"] for item in api["items"]} == {str(repos[0])}


def badges(html: str) -> list[tuple[str, str]]:
    """The outcome and state badges of a page, in order: (class, text)."""
    return re.findall(r'<span class="((?:outcome|status) [^"]*)"[^>]*>([^<]*)</span>', html)


def test_a_run_whose_tests_failed_never_reads_succeeded(server: Server, tmp_path: Path) -> None:
    """Its outcome is the badge and its state reads "finished", as in the CLI: on every page."""
    solve_id = finished_solve(server, tmp_path, "echo 'x = 2' > a.py", test_command="false")
    got = json.loads(server.call("GET", f"/solves/{solve_id}", headers={"Cookie": cookie()}).body)
    assert (got["status"], got["outcome"], got["runs"][0]["outcome"]) == ("succeeded", "tests_failed", "tests_failed")
    failed_then_finished = [
        ("outcome outcome-tests_failed", "patch, tests failed"),
        ("status status-finished secondary", "finished"),
    ]
    run_id = got["runs"][0]["id"]
    for path, copies in (("/ui", 1), (f"/ui/solves/{solve_id}", 2), (f"/ui/solves/{solve_id}/runs/{run_id}", 1)):
        page = server.call("GET", path, headers={"Cookie": cookie()})
        assert badges(page.body) == failed_then_finished * copies, path  # the header, then the run table
        assert ">succeeded<" not in page.body, path
    listed = server.call("GET", "/ui", headers={"Cookie": cookie()}).body
    assert '<td class="runs">1 failed</td>' in listed
    assert '<option value="succeeded">finished</option>' in listed  # the filter says it too


def test_the_runs_are_counted_by_what_they_came_to(server: Server, tmp_path: Path) -> None:
    """A run without a patch is not counted as failed: passed, failed and no patch each say so."""
    solve_id = finished_solve(
        server, tmp_path, "echo 'x = 2' > a.py", test_command="grep -q 'x = 2' a.py",
        others=(("echo 'x = 3' > a.py",), ("true",)),
    )  # fmt: skip
    runs = json.loads(server.call("GET", f"/solves/{solve_id}", headers={"Cookie": cookie()}).body)["runs"]
    assert sorted(run["outcome"] for run in runs) == ["no_patch", "tests_failed", "tests_passed"]
    listed = server.call("GET", "/ui", headers={"Cookie": cookie()}).body
    assert '<td class="runs">1 passed, 1 failed, 1 no patch</td>' in listed
    page = server.call("GET", f"/ui/solves/{solve_id}", headers={"Cookie": cookie()}).body
    assert '<span id="run-counts">1 passed, 1 failed, 1 no patch</span>' in page
