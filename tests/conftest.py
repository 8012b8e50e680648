"""Session-wide test infrastructure: a throwaway PostgreSQL, fresh databases per test on both engines."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from solver_core.db.engine import make_engine, make_sessions
from solver_core.db.migrate import upgrade
from solver_core.rules import RequestPolicy
from solver_core.services.events import EventService
from solver_core.services.runs import RunService
from solver_core.services.solves import SolveService
from tests.support.postgres import PostgresServer, PostgresUnavailable

DATABASES = ["postgresql", "sqlite"]
TEMPLATE_DB = "solver_template"

# Tests never see the developer's own settings or credentials.
for _name in list(os.environ):
    if _name.startswith("SOLVER_") and _name != "SOLVER_TEST_DATABASE_URL":
        del os.environ[_name]
os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("MSWEA_GLOBAL_CONFIG_DIR", tempfile.mkdtemp(prefix="solver-test-mswea-"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """An admin URL on a PostgreSQL server: SOLVER_TEST_DATABASE_URL, or one started for this session."""
    given = os.environ.get("SOLVER_TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL and none could be started: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server.admin_url
    finally:
        server.stop()


def _admin(url: str) -> Engine:
    return make_engine(url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A migrated database that each test's database is cloned from (CREATE DATABASE … TEMPLATE)."""
    admin = _admin(postgres_admin_url)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}"))
        conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    engine = make_engine(_database_url(postgres_admin_url, TEMPLATE_DB))
    upgrade(engine)
    engine.dispose()
    yield TEMPLATE_DB
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}"))
    admin.dispose()


def _fresh_postgres(admin_url: str, template: str | None) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin(admin_url)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    try:
        yield _database_url(admin_url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each engine (test ids: postgresql, sqlite)."""
    if request.param == "sqlite":
        target = tmp_path / "solver.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    yield from _fresh_postgres(admin_url, request.getfixturevalue("postgres_template"))


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (for tests that only make sense on the real thing)."""
    yield from _fresh_postgres(postgres_admin_url, postgres_template)


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no schema at all, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    yield from _fresh_postgres(request.getfixturevalue("postgres_admin_url"), None)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=25)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessions(engine)


class Services:
    """The persistence services over one test database."""

    def __init__(self, sessions: sessionmaker[Session], policy: RequestPolicy) -> None:
        self.sessions = sessions
        self.solves = SolveService(sessions, policy)
        self.events = EventService(sessions)
        self.runs = RunService(sessions)


@pytest.fixture
def services(sessions: sessionmaker[Session]) -> Services:
    return Services(sessions, RequestPolicy(allowed_http_hosts=frozenset({"127.0.0.1"})))
