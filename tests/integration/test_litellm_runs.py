"""Runs with the real LitellmModel against a loopback OpenAI-compatible server: tool calls, cost,
rate limits, and provider failures that end a run as retryable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minisweagent.models import litellm_model
from minisweagent.models.utils.retry import retry as minisweagent_retry
from tenacity import Retrying, wait_none

from solver_core.db.migrate import upgrade
from solver_core.db.schema import AIModelRow
from solver_core.orchestrators.local import run_to_end
from solver_core.status import RunStatus
from solver_core.wiring import Container
from tests.fakes.llm_server import FakeLLMServer
from tests.support.runtime import make_repo, runtime, sandbox_backend, start_solve

pytestmark = pytest.mark.integration

MODEL = "openai/solver-fake-model"
IN_PRICE, OUT_PRICE = 2**-20, 2**-18  # exact in binary floating point


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    def fast_retry(**kwargs: Any) -> Retrying:
        return minisweagent_retry(**kwargs).copy(wait=wait_none())

    monkeypatch.setattr(litellm_model, "retry", fast_retry)  # mini-swe-agent waits 4-60 s between tries
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "3")
    with FakeLLMServer().start() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        yield server


@pytest.fixture
def container(tmp_path: Path, llm: FakeLLMServer) -> Iterator[Container]:
    built = runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", allow_unregistered_models=False)
    upgrade(built.engine)
    with built.sessions.begin() as session:
        session.add(
            AIModelRow(
                name=MODEL,
                provider="openai",
                model_kwargs={"api_base": llm.base_url, "max_retries": 0},
                input_cost_per_token=IN_PRICE,
                output_cost_per_token=OUT_PRICE,
            )
        )
    yield built
    built.close()


def solve_once(container: Container, tmp_path: Path) -> Any:
    repo = make_repo(tmp_path / "repo", {"calc.py": "x = 1 // 2\n"})
    solve = start_solve(container, repo_url=str(repo), models=[MODEL])
    with sandbox_backend("local-plain", tmp_path) as (sandboxes, _):
        return run_to_end(container.pipeline(sandboxes), solve.runs[0].id), solve


def test_tool_calls_run_and_usage_becomes_cost(container: Container, llm: FakeLLMServer, tmp_path: Path) -> None:
    llm.script("cat calc.py", "sed -i 's|//|/|' calc.py")  # then the server answers with the submit sentinel
    run, solve = solve_once(container, tmp_path)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.exit_status == "Submitted"
    assert run.steps == 3
    assert run.cost_usd == 3 * (100 * IN_PRICE + 20 * OUT_PRICE)
    assert run.tokens == 3 * 120
    assert "+x = 1 / 2" in container.artifacts.get(run.artifacts["patch"]).decode()
    sent = json.dumps(llm.requests)
    assert "calc.py" in sent  # the observation of step 1 went back to the model
    assert llm.api_key not in sent
    stored = [p.read_bytes() for p in (tmp_path / "home" / "artifacts").rglob("*") if p.is_file()]
    assert not any(llm.api_key.encode() in blob for blob in stored)
    events = json.dumps([e.model_dump(mode="json") for e in container.events.read("tester", solve.id, limit=500)])
    assert llm.api_key not in events


def test_a_rate_limit_then_success_keeps_going(container: Container, llm: FakeLLMServer, tmp_path: Path) -> None:
    llm.fail_next(1, 429, retry_after=0)
    llm.script("true")
    run, _ = solve_once(container, tmp_path)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.steps == 2


def test_server_errors_until_retries_run_out_fail_the_run_as_retryable(
    container: Container, llm: FakeLLMServer, tmp_path: Path
) -> None:
    llm.fail_next(50, 500)
    run, _ = solve_once(container, tmp_path)
    assert run.status is RunStatus.FAILED
    assert run.error
    assert run.error.startswith("ModelUnavailable")
    assert run.retryable
    assert run.artifacts.get("trajectory")


def test_a_missing_key_fails_the_run_with_a_short_model_not_configured_error(
    container: Container, llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    run, _ = solve_once(container, tmp_path)
    assert run.status is RunStatus.FAILED
    assert run.retryable is False  # setting the key is the fix, not a retry
    assert run.error == (
        f"ModelNotConfigured: model {MODEL} has no API key: set OPENAI_API_KEY; run `solver doctor` for more"
    )
    assert llm.requests == []  # it failed before the provider was called


def test_in_a_deployment_a_missing_key_says_to_add_it_to_the_keys_secret(
    llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In AWS the run function's keys come from the LLM keys secret: exporting a variable or running
    `solver doctor` on a laptop would not help, so the error says where the key goes."""
    monkeypatch.delenv("OPENAI_API_KEY")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:solver/llm-AbCdEf"
    deployed = runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", llm_keys_secret_arn=arn)
    try:
        upgrade(deployed.engine)
        run, _ = solve_once(deployed, tmp_path)
    finally:
        deployed.close()
    assert run.error == (
        f"ModelNotConfigured: model {MODEL} has no API key: set OPENAI_API_KEY; "
        "add it to the JSON of the deployment's LlmKeysSecretArn secret (read when a function starts)"
    )
    assert llm.requests == []


def test_a_refused_key_is_one_line_with_the_provider_code_and_the_detail_goes_to_the_log(
    container: Container, llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789abcdef0123")
    run, _ = solve_once(container, tmp_path)
    assert run.status is RunStatus.FAILED
    assert run.error
    assert run.error.startswith("ModelNotConfigured: the model provider refused the credentials: AuthenticationError")
    assert "invalid_api_key" in run.error  # the provider's own code survives the shortening
    assert "\n" not in run.error
    assert len(run.error) < 400
    assert "mini-extra" not in run.error  # mini-swe-agent's advice for its own command line
    log = container.artifacts.get(run.artifacts["log"]).decode()
    assert "--- error detail ---" in log
    assert "Incorrect API key provided" in log


def test_model_header_values_reach_the_provider_but_never_the_trajectory(
    container: Container, llm: FakeLLMServer, tmp_path: Path
) -> None:
    tenant = "acme-tenant-7781-routing"
    with container.sessions.begin() as session:
        row = session.get(AIModelRow, MODEL)
        assert row is not None
        row.model_kwargs = row.model_kwargs | {"extra_headers": {"X-Tenant": tenant}}
    llm.script("echo routed")
    run, solve = solve_once(container, tmp_path)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert any(h.get("x-tenant") == tenant for h in llm.headers)  # the header was sent
    trajectory = json.loads(container.artifacts.get(run.artifacts["trajectory"]))
    assert trajectory["info"]["config"]["model"]["model_kwargs"]["extra_headers"] == {"X-Tenant": "[REDACTED]"}
    stored = [p.read_bytes() for p in (tmp_path / "home" / "artifacts").rglob("*") if p.is_file()]
    assert not any(tenant.encode() in blob for blob in stored)
    events = json.dumps([e.model_dump(mode="json") for e in container.events.read("tester", solve.id, limit=500)])
    assert tenant not in events


def test_the_selector_model_is_asked_through_litellm_and_priced_by_the_registry(
    container: Container, llm: FakeLLMServer
) -> None:
    from solver_core.workflow.judge import ModelJudge

    llm.script_responses({"role": "assistant", "content": "CHOICE: 1\nIt keeps the fraction."})
    answer = ModelJudge(container.runs.model_spec).ask(MODEL, "which candidate?")
    assert answer.text == "CHOICE: 1\nIt keeps the fraction."
    assert answer.cost_usd == 100 * IN_PRICE + 20 * OUT_PRICE
    assert llm.requests[-1]["messages"] == [{"role": "user", "content": "which candidate?"}]
    assert llm.api_key not in json.dumps(llm.requests)
