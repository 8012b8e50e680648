"""What verification in a fresh sandbox costs compared with the agent's own sandbox.

VerifyPatch on the demo calculator (a one-line fix, `python3 -m unittest -q`), on the local
bubblewrap sandbox: (a) `verify_in: fresh_sandbox` — kill nothing, create a sandbox, clone the
repository at the base commit (a bundle of a local repository), apply the stored patch, set up, run
the tests, kill the sandbox; (b) `verify_in: same_sandbox` — a new worktree under a clean HOME in the
agent's sandbox. Interleaved repetitions after a warm-up; medians.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources
from pathlib import Path

import benchlib

from solver_core.sandbox import repository
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.local import LocalSandboxBackend

FIX = "sed -i 's|total // len|total / len|' calculator.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    benchlib.header("Verification: fresh sandbox vs the agent's sandbox", ".venv/bin/python benchmarks/verification.py")
    with tempfile.TemporaryDirectory(prefix="solver-bench-verify-") as scratch:
        root = Path(scratch)
        demo = resources.files("solver_core") / "demo" / "calculator"
        files = {name: (demo / name).read_text() for name in ("calculator.py", "test_calculator.py", "README.md")}
        repo = benchlib.make_repo(root / "calculator", files)
        backend = LocalSandboxBackend(root / "sandboxes", isolation="bwrap")
        agent = backend.create(SandboxSpec(metadata={"app": "bench"}, lifetime_s=3600))
        base = repository.prepare(agent, repo=str(repo), ref=None, setup_command=None, issue_text="x").base_commit
        agent.run(FIX, cwd=agent.workdir, timeout=30)
        job = repository.VerifyJob(
            base=base, patch=repository.diff(agent, base), test_command="python3 -m unittest -q",
            setup_command=None, timeout_s=120,
        )  # fmt: skip

        def fresh() -> bool:
            box = backend.create(SandboxSpec(metadata={"app": "bench", "purpose": "verify"}, lifetime_s=3600))
            try:
                return repository.verify_fresh(box, job, repo=str(repo)).passed
            finally:
                backend.kill(box.id)

        def same() -> bool:
            return repository.verify_same(agent, job).passed

        timings: dict[str, list[float]] = {"fresh_sandbox": [], "same_sandbox": []}
        for repetition in range(args.repeat + 1):
            for name, verify in (("fresh_sandbox", fresh), ("same_sandbox", same)):
                started = time.perf_counter()
                assert verify(), name
                if repetition:  # the first round warms up
                    timings[name].append((time.perf_counter() - started) * 1000)
        backend.kill(agent.id)
    rows = [[name, f"{benchlib.median(v):.0f}", f"{min(v):.0f}", f"{max(v):.0f}"] for name, v in timings.items()]
    print(benchlib.table(["verify_in", "VerifyPatch (ms, median)", "min", "max"], rows))


if __name__ == "__main__":
    main()
