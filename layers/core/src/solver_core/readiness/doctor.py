"""`doctor` checks everything and reports; `preflight` checks what a solve about to start needs (its
models' keys, its repository, the sandbox) in well under a second and raises before anything is
created. `solver solve`, `solver serve` and `solver batch` call `preflight`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from solver_core.agent.keys import provider_table
from solver_core.errors import PreflightFailed
from solver_core.readiness.checks import (
    Check,
    Level,
    check_artifacts,
    check_bubblewrap,
    check_database,
    check_git,
    check_postgres_binaries,
    check_repository,
    check_sandbox_backend,
    database_exists,
    ok,
    probe_engine,
    problem,
)
from solver_core.readiness.models import DOCTOR_FIX, model_checks, preflight_models
from solver_core.settings import Settings


def doctor(settings: Settings, models: Sequence[str] = ()) -> list[Check]:
    """Every check. Requested models must be usable (✗ otherwise); without any, the registry's
    models are reported, their problems as warnings (none of them was asked for)."""
    checks = [check_git(), *check_bubblewrap(settings), *check_sandbox_backend(settings)]
    database = check_database(settings)
    checks += [*database, check_artifacts(settings), check_postgres_binaries()]
    registry, priced = _registry(settings) if all(c.level is not Level.ERROR for c in database) else ([], set())
    for model in models or registry:
        found = model_checks(model, registry_price=lambda m: m in priced)
        checks += found if models else [_advisory(c) for c in found]
    if not models and not registry:
        checks.append(check_any_provider_key(os.environ))
    return checks


def check_any_provider_key(env: Mapping[str, str]) -> Check:
    """With no model asked for or registered: whether any LLM provider's key is set at all, so a
    fresh machine is not told "all good" while `solver solve` could use no real model."""
    table = provider_table()["keys"]
    providers = sorted(p for p, alternatives in table.items() if any(all(env.get(k) for k in a) for a in alternatives))
    if providers:
        return ok("model keys", f"set for {', '.join(providers[:6])}{' …' if len(providers) > 6 else ''}")
    return problem(
        "model keys",
        "no LLM provider key is set: `solver solve` can run replays (as `make demo` does) but no real model",
        "export the key of the provider you use, e.g. ANTHROPIC_API_KEY=…, then `solver doctor --model M`",
        fatal=False,
    )


def _advisory(check: Check) -> Check:
    return check.model_copy(update={"level": Level.WARNING}) if check.level is Level.ERROR else check


def _registry(settings: Settings) -> tuple[list[str], set[str]]:
    """The active models of the registry, and those it has prices for (none before the first run)."""
    if not database_exists(settings):
        return [], set()
    from sqlalchemy import select

    from solver_core.db.engine import make_sessions
    from solver_core.db.schema import AIModelRow

    engine = probe_engine(settings)
    try:
        with make_sessions(engine)() as session:
            rows = session.scalars(select(AIModelRow).where(AIModelRow.is_active)).all()
            names = [row.name for row in rows]
            priced = {row.name for row in rows if row.input_cost_per_token is not None}
    except Exception:  # the database check has said what is wrong
        return [], set()
    finally:
        engine.dispose()
    return names, priced


def preflight(settings: Settings, models: Sequence[str] = (), repo: str | None = None) -> list[Check]:
    """What a solve about to start needs, checked before any sandbox, clone or database row: the
    models' keys, git, bubblewrap when required, the e2b key, the repository. Raises the first
    problem as one line; returns the warnings."""
    preflight_models(models)
    checks = [check_git(), *check_bubblewrap(settings)]
    if settings.sandbox == "e2b":
        checks += check_sandbox_backend(settings)[:1]  # the key only: the API call is doctor's
    if repo is not None:
        checks.append(check_repository(repo, settings))
    errors = [c for c in checks if c.level is Level.ERROR]
    if errors:
        raise PreflightFailed(errors[0].line, hint=DOCTOR_FIX)
    return [c for c in checks if c.level is Level.WARNING]
