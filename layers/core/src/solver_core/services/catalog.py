"""Read-only views for the API: the active registry, and the counts behind the per-owner cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.schema import AgentConfigRow, AIModelRow


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    provider: str
    input_cost_per_token: float | None
    output_cost_per_token: float | None


class AgentConfigInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    base: str
    is_default: bool


class CatalogService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def models(self) -> list[ModelInfo]:
        """Active registry models, by name (the ones a POST /solves may name)."""
        with self._sessions() as session:
            rows = session.scalars(select(AIModelRow).where(AIModelRow.is_active).order_by(AIModelRow.name)).all()
            return [
                ModelInfo(
                    name=r.name,
                    provider=r.provider,
                    input_cost_per_token=r.input_cost_per_token,
                    output_cost_per_token=r.output_cost_per_token,
                )
                for r in rows
            ]

    def agent_configs(self) -> list[AgentConfigInfo]:
        with self._sessions() as session:
            rows = session.scalars(select(AgentConfigRow).order_by(AgentConfigRow.name)).all()
            return [AgentConfigInfo(name=r.name, base=r.base, is_default=r.is_default) for r in rows]

    def ping(self) -> None:
        """One round trip to the database (health checks)."""
        with self._sessions() as session:
            session.execute(text("SELECT 1"))
