"""Which step failures are retried in place, and how: the same rules the state machine's Retry
blocks carry (a contract test checks they agree), applied by the local orchestrator."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from solver_core.errors import SolverError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryRule:
    errors: tuple[str, ...]
    interval_s: float
    max_attempts: int
    backoff_rate: float


# Capacity frees up as other runs end: wait long. An unavailable provider is usually a blip: retry
# soon, a few times. Everything else goes to RecordRunFailure (and possibly the sweeper).
CAPACITY = RetryRule(("SandboxCapacityExceeded",), interval_s=30, max_attempts=20, backoff_rate=1.5)
UNAVAILABLE = RetryRule(("SandboxUnavailable",), interval_s=2, max_attempts=3, backoff_rate=2.0)
LAMBDA_TRANSIENT = RetryRule(
    (
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ),
    interval_s=2,
    max_attempts=6,
    backoff_rate=2.0,
)
# A blip of the artifact store while storing the champion's patch must not fail the whole solve.
ARTIFACTS = RetryRule(("ArtifactError",), interval_s=2, max_attempts=3, backoff_rate=2.0)
LAUNCH_RULES = (CAPACITY, UNAVAILABLE)
# VerifyPatch opens a sandbox too (the fresh one verification runs in).
VERIFY_RULES = LAUNCH_RULES
STEP_RULES = (UNAVAILABLE,)
PICK_RULES = (ARTIFACTS,)


def call_with_retries(
    step: Callable[[], T],
    rules: tuple[RetryRule, ...],
    *,
    time_scale: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `step`, retrying the errors the rules name, as a state machine Retry block would."""
    attempts: dict[RetryRule, int] = {}
    while True:
        try:
            return step()
        except SolverError as exc:
            rule = next((r for r in rules if type(exc).__name__ in r.errors), None)
            if rule is None:
                raise
            done = attempts.get(rule, 0)
            if done >= rule.max_attempts:
                raise
            attempts[rule] = done + 1
            sleep(rule.interval_s * rule.backoff_rate**done * time_scale)
