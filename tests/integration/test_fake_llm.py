"""Drive mini-swe-agent's real ``LitellmModel`` and ``DefaultAgent`` against ``FakeLLMServer``.

Retry layers, and how these tests keep them fast and countable:

* The openai client that litellm builds for ``openai/`` models retries 408/409/429/5xx itself
  (``max_retries`` defaults to 2, so up to 3 HTTP requests per ``litellm.completion`` call). It
  sleeps for ``retry-after-ms``/``Retry-After`` when that is at most 120 s, gives up at once when
  it is longer, and otherwise backs off 0.5-8 s. Each retry carries an ``x-stainless-retry-count``
  header, which is how these tests tell the layers apart.
* mini-swe-agent wraps every query in tenacity ``Retrying`` (``wait_exponential(min=4, max=60)``,
  ``MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT`` attempts, default 10) and gives up at once on the
  ``LitellmModel.abort_exceptions`` (auth, not-found, context window...).
* litellm's own ``num_retries`` is not used: it silently overrides ``max_retries=0`` on the first
  call (``num_retries=2`` gave 3 + 2 = 5 requests) and even retries 400/401, so counts get opaque.

Chosen setup: ``model_kwargs["max_retries"] = 0`` so each mini attempt is exactly one request, and
the ``fast_retries`` fixture swaps ``minisweagent.models.litellm_model.retry`` for the original
``Retrying`` with ``wait_none()``. That keeps mini's stop/abort/reraise semantics intact and only
removes the 4 s sleeps. The name must be patched where ``litellm_model`` imported it, not in
``minisweagent.models.utils.retry``. One test keeps the openai client's default retries on purpose
to pin down how it handles a 429 with ``Retry-After`` inside a single mini attempt.

Cost tracking: prices are registered through ``LitellmModel(litellm_model_registry=<json file>)``,
the same path a YAML config would use. Prices are powers of two so the cost is exact in floats.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tenacity import Retrying, wait_none

from tests.fakes.llm_server import SUBMIT_COMMAND, FakeLLMServer

# litellm fetches its price map and mini-swe-agent prints a banner and reads ~/.config at import
# time, so these must be in place before the imports below.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("MSWEA_GLOBAL_CONFIG_DIR", tempfile.mkdtemp(prefix="mswea-config-"))

import litellm
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import builtin_config_dir, get_config_from_spec
from minisweagent.environments.local import LocalEnvironment
from minisweagent.exceptions import FormatError
from minisweagent.models import litellm_model
from minisweagent.models.litellm_model import LitellmModel
from minisweagent.models.utils.retry import retry as minisweagent_retry

pytestmark = pytest.mark.integration

MODEL_NAME = "openai/solver-fake-model"
INPUT_COST = 2.0**-20
OUTPUT_COST = 2.0**-18
MESSAGES = [{"role": "user", "content": "Fix the bug."}]

# Stops litellm printing "Provider List: ..." while pricing a model name it does not know.
litellm.suppress_debug_info = True


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        # The key travels via the environment only; in model_kwargs it would be saved in trajectories.
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        yield fake


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    prices = {"input_cost_per_token": INPUT_COST, "output_cost_per_token": OUTPUT_COST}
    path = tmp_path / "model_registry.json"
    path.write_text(json.dumps({MODEL_NAME: {**prices, "litellm_provider": "openai", "mode": "chat"}}))
    return path


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_wait_retry(**kwargs: Any) -> Retrying:
        return minisweagent_retry(**kwargs).copy(wait=wait_none())

    monkeypatch.setattr(litellm_model, "retry", no_wait_retry)
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "3")


def make_model(server: FakeLLMServer, registry: Path, **model_kwargs: Any) -> Any:
    kwargs = {"api_base": server.base_url, **model_kwargs}
    return LitellmModel(model_name=MODEL_NAME, model_kwargs=kwargs, litellm_model_registry=str(registry))


def test_query_returns_scripted_tool_call(server: FakeLLMServer, registry: Path) -> None:
    server.script("ls -la")
    model = make_model(server, registry)

    first = model.query(MESSAGES)
    after_script = model.query(MESSAGES)

    call_id = first["tool_calls"][0]["id"]
    assert first["extra"]["actions"] == [{"command": "ls -la", "tool_call_id": call_id}]
    assert after_script["extra"]["actions"][0]["command"] == SUBMIT_COMMAND
    assert after_script["extra"]["actions"][0]["tool_call_id"] != call_id
    assert server.requests[0]["tools"][0]["function"]["name"] == "bash"
    assert server.requests[0]["messages"] == MESSAGES
    assert server.headers[0]["authorization"] == f"Bearer {server.api_key}"


def test_usage_becomes_exact_cost(server: FakeLLMServer, registry: Path) -> None:
    message = make_model(server, registry).query(MESSAGES)

    expected = server.prompt_tokens * INPUT_COST + server.completion_tokens * OUTPUT_COST
    assert message["extra"]["cost"] == expected
    assert message["extra"]["response"]["usage"]["total_tokens"] == 120


def test_text_without_tool_call_is_format_error(server: FakeLLMServer, registry: Path) -> None:
    server.script_responses({"role": "assistant", "content": "I think I am done."})

    with pytest.raises(FormatError) as excinfo:
        make_model(server, registry).query(MESSAGES)

    assert excinfo.value.messages[0]["extra"]["cost"] > 0


@pytest.mark.usefixtures("fast_retries")
def test_rate_limit_then_success_is_retried_by_minisweagent(server: FakeLLMServer, registry: Path) -> None:
    server.fail_next(1, 429, retry_after=0.05)
    server.script("pwd")

    message = make_model(server, registry, max_retries=0).query(MESSAGES)

    assert message["extra"]["actions"][0]["command"] == "pwd"
    assert len(server.requests) == 2
    # Both requests are first tries for the openai client, so the retry came from mini's loop.
    assert [h["x-stainless-retry-count"] for h in server.headers] == ["0", "0"]


def test_openai_client_retries_rate_limit_honouring_retry_after(
    server: FakeLLMServer, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "1")
    server.fail_next(1, 429, retry_after=0.3)
    started = time.monotonic()

    make_model(server, registry).query(MESSAGES)

    assert time.monotonic() - started >= 0.3
    assert [h["x-stainless-retry-count"] for h in server.headers] == ["0", "1"]


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, litellm.exceptions.RateLimitError),
        (500, litellm.exceptions.InternalServerError),
        (503, litellm.exceptions.ServiceUnavailableError),
    ],
)
def test_exhausted_retries_raise_litellm_error(
    server: FakeLLMServer, registry: Path, status: int, error: type[Exception]
) -> None:
    server.fail_next(10, status, retry_after=0.01)

    with pytest.raises(error) as excinfo:
        make_model(server, registry, max_retries=0).query(MESSAGES)

    assert type(excinfo.value) is error
    assert getattr(excinfo.value, "status_code", None) == status
    assert len(server.requests) == 3


@pytest.mark.usefixtures("fast_retries")
def test_wrong_key_aborts_without_retry(server: FakeLLMServer, registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")

    with pytest.raises(litellm.exceptions.AuthenticationError):
        make_model(server, registry, max_retries=0).query(MESSAGES)

    assert len(server.requests) == 1


def test_latency_does_not_serialise_concurrent_requests() -> None:
    with FakeLLMServer(latency_s=0.5) as fake, httpx.Client(base_url=fake.base_url) as client:
        statuses: list[int] = []

        def call() -> None:
            headers = {"Authorization": f"Bearer {fake.api_key}"}
            body = {"model": "m", "messages": MESSAGES}
            statuses.append(client.post("/chat/completions", json=body, headers=headers).status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert statuses == [200] * 4
        # Served one at a time, four requests would take 2 s.
        assert time.monotonic() - started < 1.0


def test_default_agent_run_submits_without_leaking_key(server: FakeLLMServer, registry: Path, tmp_path: Path) -> None:
    config = get_config_from_spec(builtin_config_dir / "mini.yaml")
    model_config = {**config["model"], "model_name": MODEL_NAME, "litellm_model_registry": str(registry)}
    model_config["model_kwargs"] = {**model_config.get("model_kwargs", {}), "api_base": server.base_url}
    workdir = tmp_path / "work"
    workdir.mkdir()
    server.script("printf 'hello' > note.txt", SUBMIT_COMMAND)
    agent = DefaultAgent(LitellmModel(**model_config), LocalEnvironment(cwd=str(workdir)), **config["agent"])

    result = agent.run(task="Write hello to note.txt")

    assert result["exit_status"] == "Submitted"
    assert (workdir / "note.txt").read_text() == "hello"
    assert len(server.requests) == 2
    assert server.api_key not in json.dumps(agent.serialize())
    assert server.api_key not in json.dumps(server.requests)
