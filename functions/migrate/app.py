"""CloudFormation custom resource: apply the Alembic migrations on every deploy."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from solver_core.db import deploy_hook
from solver_core.db.engine import make_engine
from solver_core.db.migrate import current_revision, upgrade
from solver_core.observability import logger
from solver_core.secrets import FUNCTION_SECRETS, resolve_secrets
from solver_core.settings import Settings


def migrate() -> str | None:
    settings = resolve_secrets(Settings(), FUNCTION_SECRETS["MigrateFunction"])
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        upgrade(engine)
        return current_revision(engine)
    finally:
        engine.dispose()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deploy_hook.handle(event, migrate)
