"""tools/smoke.py, the first-deploy smoke test, run against `solver serve` (the same routers as the deployed API,
on the embedded defaults): every route passes and a replayed solve succeeds; against nothing, it fails by name."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from solver_core.api import ApiDeps
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.serve import make_server
from tests.support.runtime import make_repo, runtime_settings, write_replay

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parents[2] / "tools" / "smoke.py"
BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\n"


def smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke", SMOKE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke"] = module  # dataclasses resolve annotations through the module's entry
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    settings = runtime_settings(tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", sandbox_isolation="none")
    container = open_container(settings)
    deps = ApiDeps.from_container(container, container.orchestrator, batch_orchestrator=container.batch_orchestrator)
    server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield str(server.url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        container.close()


def test_the_smoke_test_passes_against_solver_serve(
    served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    fix = write_replay(tmp_path / "fix.yaml", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
    args = ["--api-url", served, "--repo", str(repo), "--model", fix, "--test-command", "python3 test_calc.py"]
    failed = smoke().main([*args, "--auth", "none", "--wait", "120"])
    out = capsys.readouterr().out
    assert failed == 0, out
    routes = ("GET /health", "POST /solves", "GET /solves/{id}/patch", "POST /solves/{id}/cancel", "GET /ui",
              "POST /batches", "GET /batches/{id}", "POST /batches/{id}/cancel", "GET /batches/{id}/preds")  # fmt: skip
    for route in routes:
        assert f"ok   {route}" in out, out
    assert "succeeded" in out


def test_the_smoke_test_names_what_failed(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--api-url", "http://127.0.0.1:9", "--repo", "https://github.com/o/r", "--model", "m", "--auth", "none"]
    failed = smoke().main(args)
    out = capsys.readouterr().out
    assert failed > 0
    assert "FAIL GET /health" in out
