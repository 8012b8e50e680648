"""How long the `solver` command takes as a whole process when it has little to do: `solver --help`,
`solver status ID` and `solver list` on a fresh SOLVER_HOME holding one solve (its database already
migrated). Each command runs once to warm the page cache, then `--runs` times; the wall time is from
starting the executable to its exit. And the import of `solver_core.cli` alone, for comparison.

`solver solve`'s fixed cost: a 31-step replay (30 `echo` actions, then the exhausted replay ends the
run) as a whole process, on the same home (the local sandbox, bubblewrap where installed), against
bare mini-swe-agent replaying the same file with its LocalEnvironment in a process of its own.

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

from benchlib import header, make_repo, median, percentile, postgres_database, table, write_replay

TARGETS = {"solver --help": 0.3, "solver status ID": 0.5, "solver solve (31-step replay)": 1.15}
ISSUE = "Append the numbers to f, one per line."
BARE = """
import sys
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments.local import LocalEnvironment
from solver_core.agent.config import agent_setup
from solver_core.agent.replay import ReplayModel
from solver_core.models import Limits
setup = agent_setup("mini.yaml", {}, Limits(step_limit=41, time_limit_s=3600))
model = ReplayModel(path=sys.argv[1], **setup.model)
agent = DefaultAgent(model, LocalEnvironment(cwd=sys.argv[2], timeout=120), **setup.agent)
agent.run(sys.argv[3])
assert agent.n_calls == 31, agent.n_calls
"""


DATABASE: dict[str, str] = {}  # SOLVER_DATABASE_URL, with --postgres


def environment(home: Path) -> dict[str, str]:
    quiet = {"MSWEA_SILENT_STARTUP": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOLVER_HOME": str(home / "solver"), **quiet, **DATABASE}


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
        repo = make_repo(home / "numbers", {"README.md": "numbers\n", "f": ""})
        replay = write_replay(home / "replay.yaml", [f"echo {i} >> f" for i in range(1, 31)])
        clone = home / "bare-clone"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        commands = {
            "solver --help": [solver, "--help"],
            "solver status ID": [solver, "status", solve_id],
            "solver list": [solver, "list"],
            "python -c 'import solver_core.cli'": [sys.executable, "-c", "import solver_core.cli"],
            "solver solve (31-step replay)": [
                solver, "solve", str(repo), "--model", replay, "--issue", ISSUE, "--json",
            ],
            "bare mini-swe-agent (31-step replay)": [
                sys.executable, "-c", BARE, replay.removeprefix("replay:"), str(clone), ISSUE,
            ],
        }  # fmt: skip
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
