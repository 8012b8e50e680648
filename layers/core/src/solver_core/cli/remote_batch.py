"""`solver batch FILE --remote URL`: the same batch on a deployed stack (POST /batches), followed
until it ends, its preds.json written to the output folder (docs/architecture.md, "Batches in the
cloud"). Requests are authenticated as `solver serve --remote` authenticates them (console/remote.py).

Running the same command again follows the same batch: the request carries an Idempotency-Key made
from its body, which the API answers with the batch it started the first time."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from solver_core.batch.cloud import MAX_INLINE_INSTANCES, BatchView
from solver_core.batch.instances import Instance
from solver_core.batch.outputs import write_atomic, write_json
from solver_core.cli.common import console
from solver_core.console.remote import Signer
from solver_core.errors import SolverError
from solver_core.models import DEFAULT_REPRODUCE_PATH, VerifyIn

TIMEOUT_S = 60
KEY_PREFIX = "solver-batch-"


class RemoteError(SolverError):
    """The deployed API refused a request or could not be reached."""

    code = "remote_error"
    hint = "check the URL (with its stage), your credentials, and the error's details"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class RemoteApi:
    """A deployed Solver API: its base URL (with the stage) and how requests are authenticated."""

    def __init__(self, base: str, signer: Signer) -> None:
        self.base = base.rstrip("/")
        self._signer = signer

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        data = b"" if body is None else json.dumps(body).encode()
        url = self.base + path
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        return fetch(method, url, self._signer.sign(method, url, sent, data), data)

    def expect(self, answer: Answer, *ok: int) -> Any:
        if answer.status in ok:
            return answer.json()
        try:
            error = answer.json()["error"]
            message, details = str(error["message"]), list(error.get("details") or [])
        except (ValueError, KeyError, TypeError):
            message, details = answer.body[:500].decode("utf-8", errors="replace"), []
        lines = [{"message": d.get("message") or f"{d.get('field')}: {d.get('rule')}"} for d in details]
        raise RemoteError(
            f"the API answered {answer.status}: {message}",
            details=lines,
            hint="the lines below name each problem" if lines else None,
        )


def fetch(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> Answer:
    """One request, redirects not followed (a 303 is the caller's to read)."""
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise RemoteError(f"not an http(s) URL: {url}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=TIMEOUT_S)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target or "/", body=body or None, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    except OSError as exc:
        raise RemoteError(f"could not reach {parts.hostname}: {exc}") from exc
    finally:
        connection.close()


@dataclass(frozen=True)
class RemoteOptions:
    models: list[str]
    attempts: int
    max_concurrency: int
    max_parallel: int
    limits: dict[str, Any]
    name: str | None
    poll_s: float = 5.0
    reproduce: bool = False
    reproduce_path: str = DEFAULT_REPRODUCE_PATH
    reproduce_command: str | None = None
    selector_model: str | None = None
    verify_in: VerifyIn = VerifyIn.FRESH_SANDBOX
    detect_tests: bool = True


def request_body(instances: list[Instance], options: RemoteOptions) -> dict[str, Any]:
    """POST /batches' body; options left at their defaults are left out (the same body, and so the
    same Idempotency-Key, as before they existed)."""
    return {
        "instances": [i.model_dump(mode="json", by_alias=True, exclude_defaults=True) for i in instances],
        "models": options.models,
        "attempts": options.attempts,
        "max_concurrency": options.max_concurrency,
        "max_parallel": options.max_parallel,
        "limits": options.limits,
        **({"name": options.name} if options.name else {}),
        **({"reproduce": True} if options.reproduce else {}),
        **({"reproduce_path": options.reproduce_path} if options.reproduce_path != DEFAULT_REPRODUCE_PATH else {}),
        **({"reproduce_command": options.reproduce_command} if options.reproduce_command else {}),
        **({"selector_model": options.selector_model} if options.selector_model else {}),
        **({"verify_in": options.verify_in.value} if options.verify_in is not VerifyIn.FRESH_SANDBOX else {}),
        **({} if options.detect_tests else {"detect_tests": False}),
    }


def idempotency_key(body: dict[str, Any]) -> str:
    return KEY_PREFIX + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40]


def start(api: RemoteApi, instances: list[Instance], options: RemoteOptions) -> tuple[str, bool]:
    """The batch's id, and whether this call created it (False: the same command ran before)."""
    if len(instances) > MAX_INLINE_INSTANCES:
        raise RemoteError(
            f"{len(instances)} instances: at most {MAX_INLINE_INSTANCES} go inline; upload the file to the "
            "artifacts bucket under your batch-inputs folder and POST /batches with instances_key (docs/deploy.md)"
        )
    body = request_body(instances, options)
    created = api.expect(api.call("POST", "/batches", body, {"Idempotency-Key": idempotency_key(body)}), 200, 202)
    return str(created["id"]), bool(created["created"])


def cancel(api: RemoteApi, batch_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = api.expect(api.call("POST", f"/batches/{batch_id}/cancel", {}), 200)
    return answer


def follow(api: RemoteApi, batch_id: str, options: RemoteOptions, *, as_json: bool) -> BatchView:
    """Poll the batch until it ends, printing its progress when it changes."""
    shown = ""
    while True:
        batch = BatchView.model_validate(api.expect(api.call("GET", f"/batches/{batch_id}"), 200))
        line = progress(batch)
        if line != shown:
            if as_json:
                typer.echo(json.dumps({"event": "progress", **batch.model_dump(mode="json")}))
            else:
                console.print(line)
            shown = line
        if batch.status != "running":
            return batch
        time.sleep(options.poll_s)


def progress(batch: BatchView) -> str:
    counts = batch.counts
    by_status = ", ".join(f"{status.value} {n}" for status, n in counts.by_status.items() if n)
    return (
        f"batch {escape(batch.name)} [{batch.status}]: {counts.done}/{counts.total} done, "
        f"{counts.with_patch} with a patch ({by_status}), ${batch.cost_usd:.4f}"
    )


def predictions(api: RemoteApi, batch_id: str) -> bytes:
    """preds.json, following the API's 303 to a presigned link (which takes no credentials)."""
    answer = api.call("GET", f"/batches/{batch_id}/preds")
    if answer.status == 303 and "location" in answer.headers:
        linked = fetch("GET", answer.headers["location"], {})
        if linked.status != 200:
            raise RemoteError(f"the preds.json link answered {linked.status}")
        return linked.body
    api.expect(answer, 200)
    return answer.body


def save(output: Path, batch: BatchView, preds: bytes) -> None:
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "preds.json", preds)
    write_json(output / "batch.json", batch.model_dump(mode="json"))
