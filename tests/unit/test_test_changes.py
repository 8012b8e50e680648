"""Which patches change the tests that judge them (`modifies_tests`)."""

from __future__ import annotations

import pytest

from solver_core.sandbox.test_changes import command_paths
from solver_core.sandbox.test_changes import test_changes as find_test_changes

pytestmark = pytest.mark.unit


def modified(path: str) -> bytes:
    return (
        f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
        "@@ -1 +1 @@\n-old\n+new\n"
    ).encode()


def created(path: str) -> bytes:
    header = f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..2222222\n"
    return f"{header}--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+new\n".encode()


def deleted(path: str) -> bytes:
    header = f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex 1111111..0000000\n"
    return f"{header}--- a/{path}\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n".encode()


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (modified("src/calc.py"), []),
        (created("tests/test_new_regression.py"), []),  # adding a test is what a good fix does
        (modified("tests/test_calc.py"), ["tests/test_calc.py (test file)"]),
        (deleted("test_calc.py"), ["test_calc.py (test file)"]),
        (modified("pkg/calc_test.go"), ["pkg/calc_test.go (test file)"]),
        (modified("web/src/__tests__/app.js"), ["web/src/__tests__/app.js (test file)"]),
        (modified("web/app.spec.ts"), ["web/app.spec.ts (test file)"]),
        (created("conftest.py"), ["conftest.py (test configuration)"]),  # a new conftest changes old tests
        (modified("tox.ini"), ["tox.ini (test configuration)"]),
        (created("pytest.ini"), ["pytest.ini (test configuration)"]),
        (modified("checks/verify_calc.py"), ["checks/verify_calc.py (named by the test command)"]),
    ],
)
def test_changes_to_existing_tests_and_their_configuration_are_found(patch: bytes, expected: list[str]) -> None:
    assert find_test_changes(patch, "pytest -q checks/verify_calc.py::test_one", {}) == expected


def test_only_the_test_sections_of_pyproject_and_setup_cfg_count() -> None:
    before = b'[project]\nname = "x"\nversion = "1"\n[tool.pytest.ini_options]\naddopts = "-q"\n'
    version_bump = before.replace(b'version = "1"', b'version = "2"')
    deselects = before.replace(b'addopts = "-q"', b'addopts = "-q --deselect tests/test_calc.py"')
    assert find_test_changes(modified("pyproject.toml"), "pytest", {"pyproject.toml": (before, version_bump)}) == []
    assert find_test_changes(modified("pyproject.toml"), "pytest", {"pyproject.toml": (before, deselects)}) == [
        "pyproject.toml [tool.pytest]"
    ]
    cfg = b"[metadata]\nname = x\n[tool:pytest]\naddopts = -q\n"
    assert (
        find_test_changes(modified("setup.cfg"), "pytest", {"setup.cfg": (cfg, cfg.replace(b"name = x", b"name = y"))})
        == []
    )
    assert find_test_changes(
        modified("setup.cfg"), "pytest", {"setup.cfg": (cfg, cfg.replace(b"-q", b"-q -k 'not mean'"))}
    ) == ["setup.cfg [tool:pytest]"]
    # Contents that cannot be read or compared count as a change.
    assert find_test_changes(modified("pyproject.toml"), "pytest", {"pyproject.toml": (before, b"[broken")}) == [
        "pyproject.toml [test sections (unreadable)]"
    ]
    assert find_test_changes(modified("setup.cfg"), "pytest", {}) == ["setup.cfg [test sections (unreadable)]"]


def test_paths_a_test_command_names() -> None:
    assert command_paths("pytest -q tests/unit ./checks/a.py::test_x -k 'not slow' --maxfail=1 .") == [
        "checks/a.py",
        "not slow",
        "pytest",
        "tests/unit",
    ]
    assert "tests/test_calc.py" in command_paths("python -m unittest tests.test_calc")
    assert find_test_changes(modified("tests/unit/helpers.py"), "pytest tests/unit", {}) == [
        "tests/unit/helpers.py (test file)"
    ]
    assert find_test_changes(modified("checks/helpers.py"), "pytest checks", {}) == [
        "checks/helpers.py (named by the test command)"
    ]
    assert find_test_changes(b"not a patch", "pytest", {}) == ["the patch could not be read"]
