"""Riding out a short database outage: a server restart, a failover, connections terminated.

The pool's pre-ping replaces connections that died while idle, but a database that is down when a
run step needs it made the step fail, and with it the run: not as retryable, with its sandbox left
alive and its trajectory unwritten (the fault suite found it). The run services retry their
transactions while the database is unreachable, for about 16 s, then give up.

Only connection failures are retried (PostgreSQL: no SQLSTATE, class 08, or an administrator
shutdown), never a failed statement. A retried transaction starts from scratch; the one ambiguous
case is a connection lost during COMMIT, after which a status move may find itself already made
(IllegalTransition, which its callers handle).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

OUTAGE_DELAYS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin shutdown, crash shutdown, cannot connect now


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (rather than refusing a statement).
    SQLite's only such error, 'database is locked', has already waited out its busy timeout."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if not type(original).__module__.startswith("psycopg"):
        return False
    state = getattr(original, "sqlstate", None)
    return state is None or state.startswith("08") or state in _SHUTDOWN_STATES


def survives_outage(method: Callable[P, T]) -> Callable[P, T]:
    """Retry `method` (one whole transaction) while the database is unreachable."""

    @functools.wraps(method)
    def retried(*args: P.args, **kwargs: P.kwargs) -> T:
        for delay in OUTAGE_DELAYS_S:
            try:
                return method(*args, **kwargs)
            except DBAPIError as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("the database is unreachable (%s); trying again in %.2f s", type(exc.orig).__name__, delay)
                time.sleep(delay)
        return method(*args, **kwargs)

    return retried
