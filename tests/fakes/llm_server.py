"""A loopback, OpenAI-compatible chat-completions server for driving real LLM clients in tests.

Only the non-streaming ``POST /v1/chat/completions`` endpoint is implemented; that is all
litellm's ``openai/`` provider uses when mini-swe-agent calls ``litellm.completion``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from tests.fakes.loopback import FakeHTTPServer, Loopback, LoopbackFake

SUBMIT_COMMAND = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
_COMPLETION_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}

Json = dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Json
    headers: dict[str, str]


def bash_tool_call(command: str) -> Json:
    """An assistant message calling mini-swe-agent's ``bash`` tool once."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                # Clients pair tool results with calls by id, so ids must never repeat.
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps({"command": command})},
            }
        ],
    }


def error_body(status: int, message: str) -> Json:
    error_type, code = _ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _retry_after_headers(retry_after: float | None) -> dict[str, str]:
    if retry_after is None:
        return {}
    # The openai client prefers the millisecond header, so sub-second waits survive integer rounding.
    return {"Retry-After": f"{retry_after:g}", "retry-after-ms": str(int(retry_after * 1000))}


class FakeLLMServer(LoopbackFake):
    """Scripted OpenAI chat-completions endpoint on ``127.0.0.1`` with a free port.

    ``requests`` and ``headers`` record every request, refused ones included; header names are
    lower-cased. Once the script runs out, every answer is the submit command, so agent loops end.
    """

    def __init__(self, *, latency_s: float = 0.0, prompt_tokens: int = 100, completion_tokens: int = 20):
        self.latency_s = latency_s
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.api_key = f"sk-fake-{secrets.token_hex(16)}"
        self.requests: list[Json] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._responses: deque[Json] = deque()
        self._failures: deque[_Failure] = deque()
        self._loop = Loopback(_Handler, self, "fake-llm")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------------

    def script(self, *commands: str) -> None:
        """Queue one ``bash`` tool call per command, answered in order."""
        self.script_responses(*(bash_tool_call(command) for command in commands))

    def script_responses(self, *responses: Json) -> None:
        """Queue raw assistant messages; an optional ``finish_reason`` key overrides the default."""
        with self._lock:
            self._responses.extend(dict(response) for response in responses)

    def fail_next(self, count: int, status: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` authorised requests with an OpenAI-style error."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    # -- request handling (called from handler threads) ------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw_body: bytes) -> _Reply:
        body = self._record(headers, raw_body)
        # Sleeping here only holds this request's thread, so concurrent callers are not serialised.
        time.sleep(self.latency_s)
        refusal = self._refusal(path, headers, body)
        if refusal is not None or body is None:
            return refusal or _Reply(400, error_body(400, "Request body is not a JSON object."), {})
        return _Reply(200, self._completion(str(body.get("model", "fake-model"))), {})

    def _refusal(self, path: str, headers: dict[str, str], body: Json | None) -> _Reply | None:
        if path not in _COMPLETION_PATHS:
            return _Reply(404, error_body(404, f"Unknown path {path}"), {})
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _Reply(401, error_body(401, "Incorrect API key provided."), {})
        failure = cast(_Failure | None, self._pop(self._failures))
        if failure is not None:
            error = error_body(failure.status, f"Injected failure with status {failure.status}")
            return _Reply(failure.status, error, _retry_after_headers(failure.retry_after))
        if body is not None and body.get("stream"):
            return _Reply(400, error_body(400, "FakeLLMServer does not support stream=true."), {})
        return None

    def _record(self, headers: dict[str, str], raw_body: bytes) -> Json | None:
        try:
            parsed = json.loads(raw_body or b"null")
        except ValueError:
            parsed = None
        body = cast(Json, parsed) if isinstance(parsed, dict) else None
        with self._lock:
            self.headers.append(headers)
            self.requests.append(body if body is not None else {"_raw": raw_body.decode("utf-8", "replace")})
        return body

    def _pop(self, queue: deque[Any]) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    def _completion(self, model: str) -> Json:
        message = cast(Json | None, self._pop(self._responses)) or bash_tool_call(SUBMIT_COMMAND)
        finish_reason = message.pop("finish_reason", None) or ("tool_calls" if message.get("tool_calls") else "stop")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes every connection after its response, so stop() never waits on idle keep-alives.
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        path = self.path.split("?", 1)[0]
        reply = cast(FakeHTTPServer, self.server).fake.handle(path, headers, raw_body)
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request access logs would drown pytest output; assertions use `requests` instead.
        return
