"""Logger, Tracer and Metrics (Powertools), shared by every handler and usable without AWS.

- Logs are structured JSON; `solve_id` is the correlation id once a request names a solve.
- The X-Ray SDK tracer is built only by the processes that ask for it (`get_tracer()`: the run steps,
  where a step's subsegments are worth it). Importing it costs about 300 ms (it imports botocore), so
  the API functions rely on Lambda's and API Gateway's active tracing instead, which need no SDK.
  Outside Lambda it disables itself.
- Metrics go to CloudWatch as EMF lines on stdout when a handler flushes them (`log_metrics`);
  the namespace is fixed here, so a missing POWERTOOLS_METRICS_NAMESPACE can never fail a flush,
  and nothing is sent anywhere by merely adding a metric.

Building these objects reads only POWERTOOLS_* variables and opens no connection.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import TYPE_CHECKING
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "solver"
NAMESPACE = "Solver"
API_CORRELATION_PATH = correlation_paths.API_GATEWAY_REST

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer


@cache
def get_tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def configure_lambda_logging() -> None:
    """In Lambda, route the `solver_core.*` loggers through the structured logger (once per cold
    start). powertools stops them propagating to the root logger (the runtime's plain handler
    would log each line twice), so outside Lambda, where the root logger is the CLI's or pytest's,
    this does nothing. LAMBDA_TASK_ROOT is the same test powertools' own Tracer uses."""
    if not os.environ.get("LAMBDA_TASK_ROOT"):
        return
    logging.getLogger("solver_core")  # registered, so that powertools finds it: children propagate to it
    copy_config_to_registered_loggers(source_logger=logger, include={"solver_core"})


def bind_solve(solve_id: UUID | str) -> None:
    """Make the solve the correlation id of what this invocation logs and traces from here on."""
    logger.set_correlation_id(str(solve_id))
    if get_tracer.cache_info().currsize:  # only where a tracer is in use; never built just for this
        get_tracer().put_annotation(key="solve_id", value=str(solve_id))


def record_api_response(status_code: int) -> None:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    if status_code >= 500:
        metrics.add_metric(name="ApiServerErrors", unit=MetricUnit.Count, value=1)
    elif status_code == 429:
        metrics.add_metric(name="ApiThrottled", unit=MetricUnit.Count, value=1)


def record_solve_started() -> None:
    metrics.add_metric(name="SolvesStarted", unit=MetricUnit.Count, value=1)


def record_solve_cancelled() -> None:
    metrics.add_metric(name="SolvesCancelled", unit=MetricUnit.Count, value=1)


def record_run_finished(status: str, cost_usd: float) -> None:
    """For the orchestration steps: runs finished, by final status (a dimension of their own, so
    it does not spread to the handler's other metrics), and what each run cost."""
    with single_metric(
        name="RunsFinished", unit=MetricUnit.Count, value=1, namespace=NAMESPACE, default_dimensions={"status": status}
    ):
        pass
    metrics.add_metric(name="RunCostUSD", unit=MetricUnit.NoUnit, value=cost_usd)


def record_sweep(*, stale: int, requeued: int, reaped: int, errors: int = 0) -> None:
    """What the sweeper found: stale runs (the StuckRuns alarm), runs resumed, sandboxes leaked,
    and the items it could not handle (each logged with its error)."""
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=errors)
    metrics.add_metric(name="StaleRuns", unit=MetricUnit.Count, value=stale)
    metrics.add_metric(name="RunsRequeued", unit=MetricUnit.Count, value=requeued)
    metrics.add_metric(name="SandboxesReaped", unit=MetricUnit.Count, value=reaped)
