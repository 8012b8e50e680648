"""Lambda packages: the unzipped size of each function with its layers (the real arm64 build), and
the cold import time of each handler module.

    make build && .venv/bin/python benchmarks/lambda_package.py [--runs 5]

Import times are measured on this machine with an x86_64 twin of each package, built by the same
Makefile recipes (only the wheel platform differs), imported by a fresh Python 3.13 process each
time with the Lambda runtime's own packages (boto3) beside it. Targets: API functions ≤ 50 MB and
≤ 400 ms; run_solver ≤ 240 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from lambda_build import find_lambda_python, function_layers, size_of  # noqa: E402

BUILD = ROOT / ".aws-sam" / "build"
TWIN = ROOT / ".aws-sam" / "x86_64"
API = ("StartSolveFunction", "StatusFunction", "CancelFunction")
HANDLERS = {**dict.fromkeys(API, "CoreLayer"), "RunSolverFunction": None}
LAMBDA_ENV = {
    "MSWEA_SILENT_STARTUP": "1",
    "MSWEA_GLOBAL_CONFIG_DIR": "/tmp/mswea",  # noqa: S108 - as the Lambda functions have it
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "POWERTOOLS_SERVICE_NAME": "solver",
    "POWERTOOLS_METRICS_NAMESPACE": "Solver",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def build_twin(name: str) -> Path:
    target = TWIN / name
    if not target.exists():
        target.mkdir(parents=True)
        make = ["make", f"build-{name}", f"ARTIFACTS_DIR={target}", "LAMBDA_PLATFORM=manylinux2014_x86_64"]
        subprocess.run(make, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return target


def runtime_packages() -> Path:
    """What the Lambda Python runtime provides next to a function: boto3 and its dependencies."""
    target = TWIN / "_runtime"
    if not target.exists():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target), "boto3"]
        subprocess.run(pip, check=True)
    return target


def cold_import_ms(python: str, function: str, layer: str | None, runs: int) -> float:
    paths = [str(build_twin(function))]
    if layer:
        paths.append(str(build_twin(layer) / "python"))
    home = tempfile.gettempdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": ":".join([*paths, str(runtime_packages())])}
    code = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [python, "-c", code], env=env | LAMBDA_ENV, cwd=paths[0], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the x86_64 twins")
    args = parser.parse_args()
    if not BUILD.exists():
        print("run `make build` first", file=sys.stderr)
        return 2
    if args.rebuild:
        shutil.rmtree(TWIN, ignore_errors=True)
    python = find_lambda_python()
    layers = function_layers(BUILD)
    print(f"{'function':22} {'unzipped (arm64)':>18} {'cold import (median)':>22}")
    for function in sorted(layers):
        total = size_of(BUILD / function) + sum(size_of(BUILD / layer) for layer in layers[function])
        timing = "-"
        if python and function in HANDLERS:
            timing = f"{cold_import_ms(python, function, HANDLERS[function], args.runs):.0f} ms"
        print(f"{function:22} {total / 1e6:15.1f} MB {timing:>22}")
    print(f"python: {python or 'python3.13 not found: no import times'}; runs per handler: {args.runs}")
    os.environ.pop("PYTHONPATH", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
