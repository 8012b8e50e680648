"""Smoke test of a deployed Solver API: every route once, and one solve run to its end.

    python tools/smoke.py --api-url "$API" --repo https://github.com/you/calculator \\
        --model anthropic/claude-sonnet-4-5 --test-command "python -m pytest -q" [--auth sigv4|cognito|none]

With `--auth sigv4` (the stack's default, IAM) requests are signed with the AWS credentials of the environment
(botocore's chain: AWS_PROFILE, SSO, instance roles); `--auth cognito` sends a token as the bearer, read from
SOLVER_SMOKE_TOKEN or `--token-file` (never from the command line, where other users' `ps` would see it);
`--auth none` suits `solver serve` on the loopback interface (with its token the same way, if it has one).
After the solve, a one-instance batch of the same repository is started, read and cancelled.
The solve is started with an Idempotency-Key, so running the script
again reuses it. Each check prints one line; the exit code is the number of failed checks (0: all passed).
See docs/deploy.md, "Verify the first deploy".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

TERMINAL = {"succeeded", "failed", "cancelled"}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the patch's 303 is checked, not followed with the API's credentials


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    base: str
    auth: str
    token: str | None = None
    region: str | None = None
    timeout_s: float = 30

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        url = self.base.rstrip("/") + path
        all_headers |= self._auth_headers(method, url, data, all_headers)
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout_s) as response:
                return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def _auth_headers(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        if self.auth == "cognito":
            return {"Authorization": f"Bearer {self.token}"}
        if self.auth != "sigv4":
            return {"Authorization": f"Bearer {self.token}"} if self.token else {}
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("--auth sigv4 needs AWS credentials in the environment")
        region = self.region or session.region_name or urlsplit(url).hostname.split(".")[2]  # type: ignore[union-attr]
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(signed)
        return {
            k: v
            for k, v in signed.headers.items()
            if k.lower() in {"authorization", "x-amz-date", "x-amz-security-token"}
        }


@dataclass
class Smoke:
    api: Api
    failures: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failures.append(name)
        return ok

    def expect(self, name: str, method: str, path: str, statuses: set[int], **kwargs: Any) -> Answer | None:
        try:
            answer = self.api.call(method, path, **kwargs)
        except OSError as exc:
            self.check(f"{method} {name}", False, f"{type(exc).__name__}: {exc}")
            return None
        ok = answer.status in statuses
        self.check(f"{method} {name}", ok, f"{answer.status}" + ("" if ok else f" {answer.body[:300]!r}"))
        return answer if ok else None


def run(api: Api, request: dict[str, Any], wait_s: float) -> list[str]:
    smoke = Smoke(api)
    smoke.expect("/health", "GET", "/health", {200})
    smoke.expect("/models", "GET", "/models", {200})
    smoke.expect("/openapi.json", "GET", "/openapi.json", {200})
    smoke.expect("/docs", "GET", "/docs", {200})
    smoke.expect("/ui", "GET", "/ui", {200})
    smoke.expect("/solves (invalid body: 422)", "POST", "/solves", {422}, body={"repo_url": "ftp://nowhere"})
    key = request.pop("idempotency_key")
    started = smoke.expect("/solves", "POST", "/solves", {200, 202}, body=request, headers={"Idempotency-Key": key})
    if started is None:
        return smoke.failures
    solve_id = started.json()["id"]
    smoke.expect("/solves (list)", "GET", "/solves?" + urlencode({"limit": "5"}), {200})
    deadline, status = time.monotonic() + wait_s, "queued"
    while time.monotonic() < deadline:
        answer = smoke.api.call("GET", f"/solves/{solve_id}")
        status = answer.json().get("status", "?") if answer.status == 200 else f"HTTP {answer.status}"
        if status in TERMINAL:
            break
        time.sleep(5)
    smoke.check(f"solve {solve_id} finished", status in TERMINAL, status)
    smoke.check(f"solve {solve_id} succeeded", status == "succeeded", status)
    smoke.expect("/solves/{id}", "GET", f"/solves/{solve_id}", {200})
    smoke.expect("/solves/{id}/events", "GET", f"/solves/{solve_id}/events?after=0", {200})
    smoke.expect("/solves/{id}/stats", "GET", f"/solves/{solve_id}/stats", {200})
    patch = smoke.expect("/solves/{id}/patch", "GET", f"/solves/{solve_id}/patch", {200, 303})
    if patch is not None and patch.status == 303:
        link = patch.headers.get("location", "")
        with urllib.request.urlopen(link, timeout=api.timeout_s) as download:  # noqa: S310 - the presigned link
            smoke.check("the patch's download link", download.status == 200, str(download.status))
    smoke.expect("/solves/{id}/cancel (finished: unchanged)", "POST", f"/solves/{solve_id}/cancel", {200}, body={})
    smoke.expect("/solves/{id}/publish (no publish option: 409)", "POST", f"/solves/{solve_id}/publish", {409}, body={})
    smoke.expect("/solves/{unknown} (404)", "GET", f"/solves/{uuid.uuid4()}", {404})
    smoke.expect("/ui/solves/{id}", "GET", f"/ui/solves/{solve_id}", {200})
    solved = smoke.api.call("GET", f"/solves/{solve_id}")
    base = next((r.get("base_commit") for r in solved.json().get("runs", []) if r.get("base_commit")), None)
    if smoke.check("the solve's base commit (for the batch)", bool(base), str(base)):
        batch(smoke, request, str(base), key)
    return smoke.failures


def batch(smoke: Smoke, request: dict[str, Any], base: str, key: str) -> None:
    """POST /batches (a bad body, then one instance of the solve's repository), read it, cancel it."""
    smoke.expect("/batches (invalid body: 422)", "POST", "/batches", {422}, body={"models": request["models"]})
    instance = {
        "instance_id": "smoke__check-1", "repo": "smoke/check", "repo_url": request["repo_url"], "base_commit": base,
        "problem_statement": request["issue"]["body"], "test_command": request["test_command"],
    }  # fmt: skip
    body = {"instances": [instance], "models": request["models"], "max_concurrency": 1, "limits": request["limits"]}
    started = smoke.expect("/batches", "POST", "/batches", {200, 202}, body=body, headers={"Idempotency-Key": key})
    if started is None:
        return
    batch_id = started.json()["id"]
    smoke.expect("/batches/{id}", "GET", f"/batches/{batch_id}", {200})
    smoke.expect("/batches/{id}/cancel", "POST", f"/batches/{batch_id}/cancel", {200}, body={})
    smoke.expect("/batches/{id}/preds", "GET", f"/batches/{batch_id}/preds", {200, 303})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True, help="the stack's ApiUrl output (or solver serve's URL)")
    parser.add_argument("--repo", required=True, help="a repository the solve may clone")
    parser.add_argument("--model", required=True, help="a model name, or replay:PATH where replays are allowed")
    parser.add_argument("--test-command", default="python -m pytest -q")
    parser.add_argument("--issue", default="The smoke test: make the failing test pass.")
    parser.add_argument("--auth", choices=["sigv4", "cognito", "none"], default="sigv4")
    parser.add_argument(
        "--token-file", help="a file holding the Cognito ID token (--auth cognito) or solver serve's bearer token; "
        "or set SOLVER_SMOKE_TOKEN"
    )  # fmt: skip
    parser.add_argument("--region", help="for SigV4; default: the API URL's region")
    parser.add_argument("--wait", type=float, default=1800, help="seconds to wait for the solve to finish")
    parser.add_argument("--idempotency-key", default=f"smoke-{uuid.uuid4()}")
    args = parser.parse_args(argv)
    request = {
        "repo_url": args.repo,
        "issue": {"title": "Smoke test", "body": args.issue},
        "models": [args.model],
        "limits": {"step_limit": 30, "cost_limit_usd": 1.0, "time_limit_s": 1200},
        "test_command": args.test_command,
        "idempotency_key": args.idempotency_key,
    }
    token = os.environ.get("SOLVER_SMOKE_TOKEN") or None
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    if args.auth == "cognito" and not token:
        parser.error("--auth cognito needs the token in SOLVER_SMOKE_TOKEN or --token-file")
    failures = run(Api(args.api_url, args.auth, token, args.region), request, args.wait)
    print(f"{len(failures)} check(s) failed" + (": " + ", ".join(failures) if failures else ""))
    return len(failures)


if __name__ == "__main__":
    sys.exit(main())
