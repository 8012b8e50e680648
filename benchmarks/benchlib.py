"""What the benchmark scripts share: a clean environment, the machine's description, a throwaway
PostgreSQL, repositories and replay files, and small statistics.

Scripts run as `.venv/bin/python benchmarks/<name>.py`, so this directory is on `sys.path` and the
repository root is added here: the benchmarks reuse the test suite's builders (`tests.support`) and
fakes (`tests.fakes`) rather than growing their own copies.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Like the test session: never the developer's own settings, quiet mini-swe-agent, no network
# fetch of litellm's price map at import.
for _name in list(os.environ):
    if _name.startswith("SOLVER_"):
        del os.environ[_name]
os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("MSWEA_GLOBAL_CONFIG_DIR", tempfile.mkdtemp(prefix="solver-bench-mswea-"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def machine() -> str:
    """One line about where the figures come from."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = [
        f"{cpu}, {os.cpu_count()} vCPU, {memory_gb:.0f} GiB RAM",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        _version(["bwrap", "--version"]),
        _postgres_version(),
    ]
    return "; ".join(p for p in parts if p)


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def _postgres_version() -> str:
    from tests.support.postgres import PostgresUnavailable, find_binary

    try:
        return _version([find_binary("postgres"), "--version"])
    except PostgresUnavailable:
        return ""


@contextmanager
def postgres_database() -> Iterator[str]:
    """A migrated database on a PostgreSQL server started for this benchmark (the test suite's
    server: fsync off, as in the tests, so the figures are about Solver, not the disk)."""
    from sqlalchemy import text

    from solver_core.db.engine import make_engine
    from solver_core.db.migrate import upgrade
    from tests.support.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(server.admin_url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = server.admin_url.rsplit("/", 1)[0] + "/" + name
        engine = make_engine(url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        server.stop()


def make_repo(path: Path, files: dict[str, str]) -> Path:
    from tests.support.runtime import make_repo as build

    return build(path, files)


def write_replay(path: Path, commands: Sequence[str]) -> str:
    """A replay file of shell actions; returns the `replay:` model name for it."""
    from tests.support.runtime import write_replay as build

    return build(path, *commands)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, ready to paste into BENCHMARKS.md."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def header(title: str, command: str) -> None:
    """The title, the machine, and the command as it was run (the script's own options included)."""
    options = " ".join(sys.argv[1:])
    print(f"## {title}\n")
    print(f"machine: {machine()}")
    print(f"command: {command}{' ' + options if options else ''}\n")
