"""The observability module works without AWS and only reconfigures logging inside Lambda."""

from __future__ import annotations

import json
import logging

import pytest

from solver_core import observability

pytestmark = pytest.mark.unit


def test_metrics_flush_as_emf_without_any_aws_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    observability.record_solve_started()
    observability.record_api_response(503)
    observability.metrics.flush_metrics()
    observability.record_run_finished("succeeded", 0.42)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["SolvesStarted"] == [1.0]
    assert lines[0]["ApiServerErrors"] == [1.0]
    assert lines[1]["status"] == "succeeded"
    assert {d["Namespace"] for line in lines for d in line["_aws"]["CloudWatchMetrics"]} == {"Solver"}
    assert observability.get_tracer().disabled  # no X-Ray daemon outside Lambda


def test_logging_is_rerouted_only_inside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = logging.getLogger("solver_core")
    before = (list(ours.handlers), ours.propagate, ours.level)
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    observability.configure_lambda_logging()
    assert (list(ours.handlers), ours.propagate) == before[:2]
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    try:
        observability.configure_lambda_logging()
        assert ours.handlers == observability.logger.handlers
        assert not ours.propagate
    finally:
        ours.handlers, ours.propagate = before[0], before[1]
        ours.setLevel(before[2])
