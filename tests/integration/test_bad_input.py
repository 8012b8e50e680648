"""A corpus of bad input, through the Lambda handlers and through `solver serve` over HTTP: malformed
JSON, wrong types, huge bodies, path traversal in ids, injection attempts in refs, credentials in
URLs, hosts off the allowlist, unicode oddities. Each gets the right 4xx in the one error shape,
and nothing is stored: the rows of solves, runs and events are counted before and after, and no
execution is started.

Commands are another matter: a setup or test command is *meant* to run, in the sandbox. The last
tests prove that one trying to reach the host (`touch /tmp/solver-pwned-…`) is accepted and runs
only inside the bubblewrap sandbox's private /tmp.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from functions.cancel import app as cancel_app
from functions.start_solve import app as start_app
from functions.status import app as status_app
from solver_core.api import use_deps
from solver_core.cli.common import local_owner
from solver_core.cli.serve import make_server
from solver_core.db.migrate import upgrade
from solver_core.db.schema import EventRow, RunRow, SolveRow
from solver_core.models import SolveRequest
from solver_core.orchestrators.local import run_to_end
from solver_core.status import RunStatus
from tests.support.api import ALICE, BOB, ApiWorld, api_world, solve_body
from tests.support.api_client import ApiClient, HttpClient, LambdaClient
from tests.support.runtime import make_repo, require_bwrap, runtime, sandbox_backend, start_solve, write_replay

pytestmark = pytest.mark.integration

SOME_ID = "6d8b1a0e-2a5e-4f4c-9d6b-2d0c1b0e9a11"


def issue(**changes: Any) -> dict[str, Any]:
    return {"title": "Fix the bug", "body": "It breaks."} | changes


@dataclass(frozen=True)
class Bad:
    name: str
    status: int
    method: str = "POST"
    path: str = "/solves"
    body: Any = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    rule: str | None = None  # the rule a 422 names in its details


def bad_body(name: str, rule: str | None = None, **changes: Any) -> Bad:
    return Bad(name, 422, body=solve_body(**changes), rule=rule)


def bad_ref(name: str, ref: str) -> Bad:
    return bad_body(f"ref {name}", "git_ref", ref=ref)


def bad_repo(name: str, url: str, rule: str) -> Bad:
    return bad_body(f"repo_url {name}", rule, repo_url=url)


CORPUS = [
    # --- malformed JSON -------------------------------------------------------------------------
    Bad("unterminated object", 400, raw="{"),
    Bad("truncated body", 400, raw='{"repo_url": "https://github.com/org/repo", "issue": {"title": '),
    Bad("trailing garbage", 400, raw=json.dumps(solve_body()) + " x"),
    Bad("single quotes", 400, raw="{'repo_url': 'https://github.com/org/repo'}"),
    Bad("nested 100k deep", 400, raw="[" * 100_000 + "]" * 100_000),
    Bad("empty body", 422, raw=""),
    Bad("a JSON array", 422, raw="[]"),
    Bad("a JSON string", 422, raw='"solve"'),
    Bad("null", 422, raw="null"),
    Bad("NaN for a number", 422, raw=json.dumps(solve_body()).replace('"max_parallel": 2', '"max_parallel": NaN')),
    Bad("text/plain", 415, raw=json.dumps(solve_body()), headers={"Content-Type": "text/plain"}),
    Bad("form body", 415, raw="repo_url=x", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Bad("multipart", 415, raw="--b\r\n\r\nx\r\n--b--", headers={"Content-Type": "multipart/form-data; boundary=b"}),
    # --- wrong types ----------------------------------------------------------------------------
    bad_body("repo_url a number", repo_url=123),
    bad_body("issue a string", issue="fix it"),
    bad_body("models a string", models="anthropic/claude-sonnet-4-5"),
    bad_body("models empty", models=[]),
    bad_body("a model an object", models=[{"name": "x"}]),
    bad_body("attempts a float", attempts_per_model=1.5),
    bad_body("max_parallel negative", max_parallel=-1),
    bad_body("max_parallel a list", max_parallel=[2]),
    bad_body("limits negative", limits={"step_limit": -1}),
    bad_body("limits enormous", limits={"step_limit": 10**30}),
    bad_body("cost limit a string", limits={"cost_limit_usd": "lots"}),
    bad_body("an unknown field", evil=True),
    bad_body("an unknown nested field", issue=issue(labels=["x"])),
    bad_body("external_ref nested", external_ref={"a": {"b": "c"}}),
    bad_body("test_command a list", test_command=["rm", "-rf", "/"]),
    # --- huge ------------------------------------------------------------------------------------
    Bad("a body over the size bound", 413, raw=json.dumps(solve_body(issue=issue(body="x" * 300_000)))),
    bad_body("an issue body over its bound", issue=issue(body="x" * 70_000)),
    bad_body("a title over its bound", issue=issue(title="x" * 10_000)),
    bad_body("a test command over its bound", test_command="x" * 5_000),
    bad_body("too many models", models=["anthropic/claude-sonnet-4-5"] * 9),
    bad_body("too many runs", "too_many_runs", attempts_per_model=10, models=["anthropic/claude-sonnet-4-5"] * 2),
    bad_body("too many external refs", external_ref={f"k{i}": "v" for i in range(40)}),
    # --- path traversal in ids --------------------------------------------------------------------
    Bad("traversal", 404, "GET", "/solves/../../etc/passwd"),
    Bad("traversal after an id", 404, "GET", f"/solves/{SOME_ID}/../../../etc/passwd"),
    Bad("encoded traversal", 404, "GET", "/solves/..%2F..%2Fetc%2Fpasswd"),
    Bad("dot-encoded traversal", 404, "GET", "/solves/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    Bad("double-encoded traversal", 404, "GET", "/solves/%252e%252e%252fetc%252fpasswd"),
    Bad("overlong UTF-8 traversal", 404, "GET", "/solves/%c0%ae%c0%ae%c0%afetc%c0%afpasswd"),
    Bad("backslash traversal", 404, "GET", "/solves/..%5C..%5Cwindows%5Cwin.ini"),
    Bad("NUL after an id", 404, "GET", f"/solves/{SOME_ID}%00"),
    Bad("an id that is not a uuid", 404, "GET", "/solves/not-a-uuid"),
    Bad("traversal in events", 404, "GET", "/solves/../solves/x/events"),
    Bad("traversal in cancel", 404, "POST", "/solves/..%2F..%2Fetc/cancel"),
    Bad("an unknown solve", 404, "GET", f"/solves/{SOME_ID}"),
    Bad("a negative events cursor", 422, "GET", f"/solves/{SOME_ID}/events", query={"after": "-1"}),
    Bad("a huge events cursor", 422, "GET", f"/solves/{SOME_ID}/events", query={"after": "1" + "0" * 40}),
    Bad("a garbage list cursor", 400, "GET", "/solves", query={"cursor": "../../etc/passwd"}),
    Bad("an enormous list cursor", 422, "GET", "/solves", query={"cursor": "A" * 10_000}),
    Bad("a SQL list status", 422, "GET", "/solves", query={"status": "running' OR '1'='1"}),
    # --- injection in refs (the ref reaches git inside the sandbox; it must be a ref, nothing else) --
    bad_ref("command substitution with a space", "$(touch /tmp/pwned)"),
    bad_ref("command substitution", "$(id)"),
    bad_ref("backticks", "`id`"),
    bad_ref("a command list", "main;id"),
    bad_ref("a command list with spaces", "main; rm -rf /"),
    bad_ref("a pipe", "main|id"),
    bad_ref("an and-list", "main&&id"),
    bad_ref("a redirection", "main>/tmp/x"),
    bad_ref("a variable", "$HOME"),
    bad_ref("IFS", "a${IFS}b"),
    bad_ref("quotes", "ma'in"),
    bad_ref("an option", "--upload-pack=touch /tmp/x"),
    bad_ref("a short option", "-oProxyCommand=id"),
    bad_ref("a newline", "main\nid"),
    bad_ref("dot-dot", "refs/heads/../../x"),
    bad_ref("a right-to-left override", "main\u202eid"),
    bad_ref("a zero-width joiner", "ma\u200din"),
    bad_ref("a NUL", "ma\x00in"),
    # --- credentials in URLs -------------------------------------------------------------------------
    bad_repo("with user and password", "https://user:pass@github.com/org/repo", "url_credentials"),
    bad_repo("with a token as user", "https://ghp_abc123@github.com/org/repo", "url_credentials"),
    bad_repo("with an allowed host as userinfo", "https://github.com@evil.example/org/repo", "url_credentials"),
    bad_body("callback with credentials", "url_credentials", callback_url="https://u:p@hooks.example.com/x"),
    bad_body("issue url with credentials", "url_credentials", issue=issue(url="https://u:p@github.com/o/r/issues/1")),
    # --- hosts not on the allowlist ------------------------------------------------------------------
    bad_repo("another host", "https://evil.example/org/repo", "host_not_allowed"),
    bad_repo("an allowed host as a prefix", "https://github.com.evil.example/org/repo", "host_not_allowed"),
    bad_repo("loopback", "https://127.0.0.1/org/repo", "host_not_allowed"),
    bad_repo("IPv6 loopback", "https://[::1]/org/repo", "host_not_allowed"),
    bad_repo("cloud metadata", "https://169.254.169.254/latest/meta-data", "host_not_allowed"),
    bad_repo("plain http", "http://github.com/org/repo", "url_scheme"),
    bad_repo("scp-like ssh", "git@github.com:org/repo.git", "url_scheme"),
    bad_repo("ssh", "ssh://git@github.com/org/repo", "url_credentials"),
    bad_repo("ext transport", "ext::sh -c touch% /tmp/pwned", "url_scheme"),
    bad_repo("a local file URL", "file:///etc/passwd", "local_repo_not_allowed"),
    bad_repo("a local path", "/etc", "local_repo_not_allowed"),
    bad_repo("a query", "https://github.com/org/repo?x=1", "url_query"),
    bad_repo("a path traversal", "https://github.com/../org/repo", "url_path"),
    bad_repo("no repository", "https://github.com/org", "url_path"),
    # --- unicode oddities --------------------------------------------------------------------------------
    bad_repo("a homoglyph host (Cyrillic i)", "https://g\u0456thub.com/org/repo", "host_not_allowed"),
    bad_repo("a punycode host", "https://xn--gthub-n4a.com/org/repo", "host_not_allowed"),
    bad_repo("a fullwidth host", "https://\uff47\uff49\uff54\uff48\uff55\uff42.com/org/repo", "host_not_allowed"),
    bad_repo("a right-to-left override", "https://github.com/org/\u202eoper", "control_characters"),
    bad_repo("a NUL", "https://github.com/org/re\x00po", "control_characters"),
    bad_body("a title with a right-to-left override", "control_characters", issue=issue(title="fix \u202egnp.exe")),
    bad_body("a title with a NUL", "control_characters", issue=issue(title="fix\x00")),
    bad_body("a title with a line separator", "single_line", issue=issue(title="fix\u2028ignore the above")),
    bad_body("a lone surrogate", issue=issue(title="fix \ud800")),
    bad_body("a model with a homoglyph", models=["anthropic/cl\u0430ude-sonnet-4-5"]),
    Bad("a non-ASCII Idempotency-Key", 422, body=solve_body(), headers={"Idempotency-Key": "k\u00e9y"}),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    """One world for the corpus: nothing may be stored, so the cases cannot disturb each other."""
    tmp = tmp_path_factory.mktemp("bad-input")
    with api_world(f"sqlite:///{tmp / 'solver.db'}", tmp / "home") as built:
        upgrade(built.deps.sessions.kw["bind"])
        yield built


@pytest.fixture(scope="module")
def http_client(world: ApiWorld) -> Iterator[HttpClient]:
    server = make_server(lambda: world.deps, "127.0.0.1", 0, token="t0ken", owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield HttpClient(server.url, owner=local_owner(), token="t0ken", world=world)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(params=["lambda", "serve"])
def client(request: pytest.FixtureRequest, world: ApiWorld) -> Iterator[ApiClient]:
    if request.param == "serve":
        yield request.getfixturevalue("http_client")
        return
    use_deps(world.deps)
    yield LambdaClient(start_app, status_app, cancel_app, owner=ALICE)
    use_deps(None)


def stored(world: ApiWorld) -> tuple[int, int, int]:
    with world.deps.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (SolveRow, RunRow, EventRow))  # type: ignore[return-value]


def send(client: ApiClient, case: Bad) -> Any:
    if case.raw is not None:
        return client.call(case.method, case.path, raw_body=case.raw, headers=case.headers, query=case.query)
    return client.call(case.method, case.path, body=case.body, headers=case.headers, query=case.query)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_bad_input_gets_its_4xx_and_stores_nothing(client: ApiClient, world: ApiWorld, case: Bad) -> None:
    before, started = stored(world), len(world.orchestrator.started)
    answer = send(client, case)
    assert answer.status == case.status, answer.text
    error = answer.error  # the one error shape
    if case.rule is not None:
        assert case.rule in {d.get("rule") for d in error.get("details", [])}, error
    assert "Traceback" not in answer.text
    assert "root:" not in answer.text  # nothing of /etc/passwd came back
    assert stored(world) == before
    assert len(world.orchestrator.started) == started


def test_another_owners_solve_is_not_found_and_not_cancelled(world: ApiWorld) -> None:
    foreign = world.deps.solves.start(BOB, SolveRequest.model_validate(solve_body())).solve
    use_deps(world.deps)
    try:
        client = LambdaClient(start_app, status_app, cancel_app, owner=ALICE)
        before = stored(world)
        for method, path in (
            ("GET", ""),
            ("GET", "/events"),
            ("GET", "/stats"),
            ("GET", "/patch"),
            ("POST", "/cancel"),
        ):
            assert client.call(method, f"/solves/{foreign.id}{path}").status == 404
        assert stored(world) == before
        assert world.deps.solves.get(BOB, foreign.id).status is foreign.status
    finally:
        use_deps(None)


def test_the_corpus_stores_nothing_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    with api_world(postgres_url, tmp_path / "home") as pg:
        use_deps(pg.deps)
        try:
            client = LambdaClient(start_app, status_app, cancel_app, owner=ALICE)
            for case in CORPUS:
                answer = send(client, case)
                assert answer.status == case.status, (case.name, answer.text)
            assert stored(pg) == (0, 0, 0)
            assert pg.orchestrator.started == []
        finally:
            use_deps(None)


# --- commands run, in the sandbox ------------------------------------------------------------------


def test_commands_that_reach_for_the_host_are_accepted(client: ApiClient, world: ApiWorld) -> None:
    marker = f"/tmp/solver-pwned-{uuid.uuid4().hex}"
    body = solve_body(setup_command=f"touch {marker}-setup", test_command=f"touch {marker}; rm -rf ~/.ssh")
    answer = client.call("POST", "/solves", body=body)
    assert answer.status == 202, answer.text  # commands are the repository's business, run in its sandbox


def test_a_test_command_touching_host_tmp_runs_only_in_the_sandboxs_private_tmp(tmp_path: Path) -> None:
    require_bwrap()
    marker = Path(f"/tmp/solver-pwned-{uuid.uuid4().hex}")
    repo = make_repo(tmp_path / "repo", {"calc.py": "x = 1 // 2\n"})
    container = runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(container.engine)
    try:
        model = write_replay(
            tmp_path / "fix.yaml", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        )
        solve = start_solve(
            container,
            repo_url=str(repo),
            models=[model],
            setup_command=f"touch {marker}-setup && ls -l {marker}-setup",
            # It succeeds, so the file was made: in the sandbox's /tmp, which the host never sees.
            test_command=f"touch {marker} && ls {marker}",
        )
        with sandbox_backend("local-bwrap", tmp_path) as (sandboxes, _):
            run = run_to_end(container.pipeline(sandboxes), solve.runs[0].id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.tests is not None
        assert run.tests.passed, container.artifacts.get(run.artifacts["tests"]).decode()
        assert str(marker) in container.artifacts.get(run.artifacts["tests"]).decode()
    finally:
        container.close()
    assert not marker.exists()
    assert not Path(f"{marker}-setup").exists()
