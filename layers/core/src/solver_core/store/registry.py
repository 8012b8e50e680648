"""The registry of models and agent configurations that a solve may ask for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from solver_core.db.schema import AgentConfigRow, AIModelRow
from solver_core.errors import ValidationFailed
from solver_core.models import ModelSpec
from solver_core.rules import REPLAY_PREFIX, RequestPolicy

DEFAULT_AGENT_BASE = "mini.yaml"


def check_models(session: Session, models: Sequence[str], policy: RequestPolicy) -> None:
    """Every requested model must be an active registry entry (replays are checked by the request)."""
    if policy.allow_unregistered_models:
        return
    wanted = {m for m in models if not m.startswith(REPLAY_PREFIX)}
    active = set(
        session.scalars(select(AIModelRow.name).where(AIModelRow.name.in_(wanted), AIModelRow.is_active)).all()
    )
    details = [
        {
            "field": f"models[{i}]",
            "rule": "model_not_registered",
            "message": f"model '{m}' is not in the registry",
        }
        for i, m in enumerate(models)
        if m in wanted and m not in active
    ]
    if details:
        raise ValidationFailed("the request names models that are not available", details=details)


def check_image(policy: RequestPolicy, owner: str, image: str | None) -> None:
    """The solve's sandbox image must be one the deployment allows this owner: a template built for
    one team's private repository is not another's to run."""
    if image is None or policy.image_allowed(owner, image):
        return
    message = (
        f"sandbox image '{image[:200]}' is not allowed for this caller; the deployment's operator allows "
        "images with SOLVER_ALLOWED_SANDBOX_IMAGES or SOLVER_OWNER_SANDBOX_IMAGES"
    )
    detail = {"field": "sandbox_image", "rule": "image_not_allowed", "message": message}
    raise ValidationFailed(message, details=[detail])


def resolve_agent_config(session: Session, name: str | None) -> str | None:
    """The named configuration, or the registry's default when none is named."""
    if name is None:
        return session.scalars(select(AgentConfigRow.name).where(AgentConfigRow.is_default)).first()
    if session.get(AgentConfigRow, name) is None:
        raise ValidationFailed(
            "unknown agent configuration",
            details=[{"field": "agent_config", "rule": "agent_config_unknown", "message": f"no config '{name}'"}],
        )
    return name


def model_spec(session: Session, name: str) -> ModelSpec:
    """The registry's description of a model; an unregistered name (allowed by policy) gets defaults."""
    row = session.get(AIModelRow, name)
    if row is None:
        return ModelSpec(name=name)
    return ModelSpec(
        name=row.name,
        model_kwargs=dict(row.model_kwargs or {}),
        input_cost_per_token=row.input_cost_per_token,
        output_cost_per_token=row.output_cost_per_token,
    )


def agent_config_of(session: Session, name: str | None) -> tuple[str, dict[str, Any]]:
    """(bundled base YAML, overrides) of a named configuration; mini.yaml when there is none."""
    row = session.get(AgentConfigRow, name) if name else None
    if row is None:
        return DEFAULT_AGENT_BASE, {}
    return row.base, dict(row.overrides or {})
