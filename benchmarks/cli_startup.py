"""How long the `solver` command takes as a whole process when it has little to do: `solver --help`,
`solver status ID` and `solver list` on a fresh SOLVER_HOME holding one solve (its database already
migrated). Each command runs once to warm the page cache, then `--runs` times; the wall time is from
starting the executable to its exit. And the import of `solver_core.cli` alone, for comparison.

    .venv/bin/python benchmarks/cli_startup.py [--runs 9] [--postgres]

With --postgres the commands read a PostgreSQL database (the benchmarks' throwaway server) instead
of the embedded SQLite one.

Targets (as whole processes): `solver --help` ≤ 0.3 s, `solver status ID` ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import header, make_repo, median, percentile, postgres_database, table

TARGETS = {"solver --help": 0.3, "solver status ID": 0.5}


DATABASE: dict[str, str] = {}  # SOLVER_DATABASE_URL, with --postgres


def environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOLVER_HOME": str(home / "solver"), **DATABASE}


def seed(home: Path) -> str:
    """One queued solve in a migrated database under `home`; returns its id."""
    os.environ.update({k: v for k, v in environment(home).items() if k != "PATH"})
    from solver_core.cli.common import local_owner
    from solver_core.db.migrate import upgrade
    from solver_core.models import IssueSpec, SolveRequest
    from solver_core.rules import RequestPolicy
    from solver_core.settings import local_cli_settings
    from solver_core.wiring import build_container

    repo = make_repo(home / "calc", {"calc.py": "def add(a, b):\n    return a - b\n"})
    settings = local_cli_settings()
    container = build_container(settings)
    try:
        upgrade(container.engine)
        request = SolveRequest.model_validate(
            {"repo_url": str(repo), "issue": IssueSpec(title="add subtracts"), "models": ["replay:/dev/null"]},
            context={"policy": RequestPolicy.from_settings(settings)},
        )
        return str(container.solves.start(local_owner(), request).solve.id)
    finally:
        container.close()


def wall_s(argv: list[str], home: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=environment(home), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of the embedded SQLite")
    args = parser.parse_args()
    runs = args.runs
    header("Command-line start-up", ".venv/bin/python benchmarks/cli_startup.py")
    bindir = Path(sys.executable).parent
    solver = str(bindir / "solver")
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        if args.postgres:
            DATABASE["SOLVER_DATABASE_URL"] = stack.enter_context(postgres_database())
        home = Path(scratch)
        solve_id = seed(home)
        commands = {
            "solver --help": [solver, "--help"],
            "solver status ID": [solver, "status", solve_id],
            "solver list": [solver, "list"],
            "python -c 'import solver_core.cli'": [sys.executable, "-c", "import solver_core.cli"],
        }
        rows = []
        for name, argv in commands.items():
            wall_s(argv, home)  # warm-up
            times = [wall_s(argv, home)[0] for _ in range(runs)]
            target = TARGETS.get(name)
            met = "" if target is None else ("met" if median(times) <= target else "not met")
            rows.append([f"`{name}`", f"{min(times):.3f}", f"{median(times):.3f}", f"{percentile(times, 90):.3f}",
                         f"≤ {target}" if target else "—", met])  # fmt: skip
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}\n")
    print(table(["command", "min (s)", "median (s)", "p90 (s)", "target (s)", ""], rows))
    load = os.getloadavg()[0]
    print(f"\nload average while measuring (1 min): {load:.1f}")


if __name__ == "__main__":
    main()
