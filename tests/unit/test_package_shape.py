"""The package's shape (docs/architecture.md, "Layers"): the import-linter contracts of `make lint`
hold, so the suite fails too when a change imports a layer from below or closes an import cycle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_layer_and_no_cycle_contracts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert os.path.isfile(".importlinter")
    assert lint_imports(no_cache=True) == 0, "run `.venv/bin/lint-imports` for the broken contract"
