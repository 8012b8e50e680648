"""One composition root (docs/architecture.md, "Layers"): outside wiring.py no module of the package
or of functions/ constructs a service, the solve flow, a pipeline, an orchestrator, the sweeper or a
notifier; callers ask the Container. (Tests and fakes build their own, on purpose.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "src" / "solver_core"
COMPOSITION_ROOT = PACKAGE / "wiring.py"
# The notifier's own module composes its notifiers (build_notifier), and wiring.py calls it.
BUILDS_ITS_OWN = {PACKAGE / "notify.py"}
BUILT_ONLY_BY_WIRING = {
    "SolveFlow", "RunPipeline", "Sweeper", "RunQueries", "build_notifier",
    "EventBridgeNotifier", "WebhookNotifier", "CompositeNotifier",
}  # fmt: skip


def _is_built_by_wiring_only(name: str) -> bool:
    return name in BUILT_ONLY_BY_WIRING or name.endswith(("Service", "Orchestrator"))


def constructions(path: Path) -> list[str]:
    """`Name(...)` and `module.Name(...)` calls of the components only the container builds."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name is not None and _is_built_by_wiring_only(name):
            found.append(f"{node.lineno} {name}(...)")
    return found


def test_only_the_composition_root_builds_services_orchestrators_and_notifiers() -> None:
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    outside = [p for p in sources if p != COMPOSITION_ROOT and p not in BUILDS_ITS_OWN and "migrations" not in p.parts]
    hits = [f"{path.relative_to(ROOT)}:{hit}" for path in outside for hit in constructions(path)]
    assert hits == []


def test_the_check_sees_a_construction(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from x import CancelService, orchestrators\nCancelService()\norchestrators.LocalOrchestrator(1)\n"
    )
    assert constructions(probe) == ["2 CancelService(...)", "3 LocalOrchestrator(...)"]
