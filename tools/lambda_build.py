"""Helpers for `sam build` (BuildMethod: makefile): prune a Lambda bundle, compile it for the Lambda
interpreter when one is installed, and check every function's unzipped size against the budget.

    python3 tools/lambda_build.py prune DIR
    python3 tools/lambda_build.py compile DIR
    python3 tools/lambda_build.py sizes [BUILD_DIR] [--budget-mb 240]

Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

LAMBDA_PYTHON = "python3.13"
# The Lambda Python runtime ships boto3 and its dependencies; a copy in the bundle would only add weight.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "python_dateutil", "six")
# Never imported at run time: test suites, the litellm proxy's web UI and API docs, SQLAlchemy's
# test plugin, console scripts.
PRUNE_PATHS = (
    "litellm/proxy/_experimental",
    "litellm/proxy/swagger",
    "sqlalchemy/testing",
    "sqlalchemy/dialects/mssql",  # Solver speaks PostgreSQL (and SQLite locally) only
    "sqlalchemy/dialects/mysql",
    "sqlalchemy/dialects/oracle",
    "bin",
)
PRUNE_DIR_NAMES = {"__pycache__", "tests", "test"}
# Our own code keeps its sources in the bundles (readable tracebacks); the rest ships as bytecode.
KEEP_SOURCE = ("solver_core", "minisweagent", "app.py")


def prune(root: Path) -> int:
    """Remove what a Lambda never imports; returns the bytes freed."""
    before = size_of(root)
    for name in RUNTIME_PROVIDED:
        for path in [root / name, root / f"{name}.py", *root.glob(f"{name}-*.dist-info")]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    for relative in PRUNE_PATHS:
        shutil.rmtree(root / relative, ignore_errors=True)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in PRUNE_DIR_NAMES and ".dist-info" not in str(path):
            shutil.rmtree(path, ignore_errors=True)
    return before - size_of(root)


def find_lambda_python() -> str | None:
    """The runtime's Python version on this machine: on PATH, or installed by pyenv but not selected
    (pyenv's shim then exists but refuses to run)."""
    candidates = [
        shutil.which(LAMBDA_PYTHON) or "",
        *sorted(glob.glob(f"{Path.home()}/.pyenv/versions/3.13*/bin/{LAMBDA_PYTHON}")),
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def compile_for_lambda(root: Path, keep_source: tuple[str, ...] = KEEP_SOURCE) -> bool:
    """Byte-compile with the Lambda runtime's Python version when it is installed here (pyc files
    of another version would be ignored by the runtime, so none is better than wrong ones).

    Third-party packages become sourceless: each module's .pyc replaces its .py (`compileall -b`),
    which roughly halves their size and still imports without compiling on a cold start. Solver's
    own packages keep their sources (and get the usual __pycache__), so tracebacks show our code.
    """
    python = find_lambda_python()
    if python is None:
        print(f"{LAMBDA_PYTHON} not found: skipping .pyc compilation", file=sys.stderr)
        return False
    ours = [root / name for name in keep_source if (root / name).exists()]
    theirs = [p for p in root.iterdir() if p not in ours and not p.name.endswith(".dist-info")]
    compileall = [python, "-m", "compileall", "-q", "-j", "0"]
    subprocess.run([*compileall, *map(str, ours)], check=False)
    subprocess.run([*compileall, "-b", *map(str, theirs)], check=False)
    for source in [p for t in theirs for p in ([t] if t.is_file() else t.rglob("*.py"))]:
        if source.suffix == ".py" and source.with_suffix(".pyc").exists():
            source.unlink()
    return True


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def function_layers(build_dir: Path) -> dict[str, list[str]]:
    """Function → its layers' logical ids, read from the built template."""
    template = json.loads(_template_json(build_dir / "template.yaml"))
    result: dict[str, list[str]] = {}
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            layers = resource.get("Properties", {}).get("Layers", [])
            result[name] = [layer["Ref"] for layer in layers if isinstance(layer, dict) and "Ref" in layer]
    return result


def _template_json(path: Path) -> str:
    import yaml  # only `sizes` needs it, and it runs in the project virtualenv

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            value: object = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node)
        else:
            value = loader.construct_mapping(node)  # type: ignore[arg-type]
        return {"Ref": value} if suffix == "Ref" else {suffix: value}

    Loader.add_multi_constructor("!", tag)
    return json.dumps(yaml.load(path.read_text(), Loader=Loader), default=str)  # noqa: S506


def sizes(build_dir: Path, budget_mb: float) -> int:
    """Print every function's unzipped size with its layers; non-zero when one is over budget."""
    over = 0
    for function, layers in sorted(function_layers(build_dir).items()):
        own = size_of(build_dir / function)
        total = own + sum(size_of(build_dir / layer) for layer in layers)
        flag = "OVER BUDGET" if total > budget_mb * 1e6 else "ok"
        over += total > budget_mb * 1e6
        layer_text = f" + {', '.join(layers)}" if layers else ""
        print(f"{function:28} {own / 1e6:7.1f} MB{layer_text:16} = {total / 1e6:7.1f} MB  {flag}")
    print(f"budget: {budget_mb:.0f} MB unzipped per function including its layers")
    return 1 if over else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prune", "compile"):
        sub.add_parser(name).add_argument("directory", type=Path)
    check = sub.add_parser("sizes")
    check.add_argument("build_dir", type=Path, nargs="?", default=Path(".aws-sam/build"))
    check.add_argument("--budget-mb", type=float, default=240)
    args = parser.parse_args()
    if args.command == "prune":
        print(f"pruned {prune(args.directory) / 1e6:.1f} MB from {args.directory}")
        return 0
    if args.command == "compile":
        compile_for_lambda(args.directory)
        return 0
    return sizes(args.build_dir, args.budget_mb)


if __name__ == "__main__":
    sys.exit(main())
