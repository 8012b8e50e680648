"""Does a patch change the tests that judge it? (docs/architecture.md, "Verification")

A run whose patch modifies existing test files or test configuration is flagged `modifies_tests`:
its tests may pass because it changed what they check. Flagged are changes to existing files that
look like tests (by name or folder) or that the test command names, any change to `conftest.py`,
`pytest.ini` or `tox.ini` (new ones too: they change how the existing tests run), and changes to the
test sections of `pyproject.toml` and `setup.cfg`. New test files are not flagged: adding a
regression test is what a good fix does.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.parse import FilePatch, parse_patch

# Whole files that configure how tests run.
CONFIG_FILES = frozenset({"conftest.py", "pytest.ini", "tox.ini"})
# Files with test sections among others: only changes to those sections count.
SECTIONED_FILES = frozenset({"pyproject.toml", "setup.cfg"})
PYPROJECT_TEST_TABLES = ("pytest", "tox", "coverage")
SETUP_CFG_TEST_SECTIONS = re.compile(r"^(tool:pytest|pytest|tox|tox:.*|coverage:.*)$")
TEST_FOLDERS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs"})
TEST_FILE_NAMES = re.compile(
    r"^(test_.+\.py|.+_test\.py|.+_test\.go|.+\.(test|spec)\.[cm]?[jt]sx?|.+Tests?\.(java|kt|cs)|.+_spec\.rb)$"
)
MAX_CONFIG_BYTES = 1_000_000  # a configuration file larger than this is read as "changed"

Contents = Mapping[str, tuple[bytes | None, bytes | None]]  # path -> (before, after); None: absent


def changed_files(patch: bytes) -> list[FilePatch] | None:
    """The files a patch touches; None when it cannot be read (then it is treated as changing tests)."""
    try:
        return parse_patch(patch)
    except PatchNotApplicable:
        return None


def sectioned_paths(files: list[FilePatch]) -> list[str]:
    """The touched files whose test sections must be compared (their contents are needed)."""
    return sorted(
        {p for f in files for p in (f.old_path, f.new_path) if p and PurePosixPath(p).name in SECTIONED_FILES}
    )


def test_changes(patch: bytes, test_command: str | None, contents: Contents) -> list[str]:
    """What the patch changes among the tests and their configuration, one description each."""
    files = changed_files(patch)
    if files is None:
        return ["the patch could not be read"]
    named = command_paths(test_command or "")
    found: list[str] = []
    for change in files:
        found += _describe(change, named, contents)
    return sorted(set(found))


def _describe(change: FilePatch, named: list[str], contents: Contents) -> list[str]:
    found: list[str] = []
    for path in dict.fromkeys(p for p in (change.old_path, change.new_path) if p):
        name = PurePosixPath(path).name
        existed = path == change.old_path
        if name in CONFIG_FILES:
            found.append(f"{path} (test configuration)")
        elif name in SECTIONED_FILES:
            before, after = contents.get(path, (b"?", b"!"))  # unknown contents count as a change
            found += [f"{path} [{section}]" for section in changed_sections(name, before, after)]
        elif existed and is_test_path(path):
            found.append(f"{path} (test file)")
        elif existed and any(path == p or path.startswith(f"{p}/") for p in named):
            found.append(f"{path} (named by the test command)")
    return found


def is_test_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(TEST_FILE_NAMES.match(parts[-1])) or any(part in TEST_FOLDERS for part in parts[:-1])


def command_paths(command: str) -> list[str]:
    """Paths a test command names: `pytest tests/test_x.py::test_y` names `tests/test_x.py`,
    `python -m unittest tests.test_x` names `tests/test_x.py` and the folder `tests/test_x`."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    paths: set[str] = set()
    for word in words:
        if word.startswith("-") or "=" in word:
            continue
        candidate = word.split("::", 1)[0].removeprefix("./").rstrip("/")
        if candidate in {"", ".", ".."} or candidate.startswith("/"):
            continue
        paths.add(candidate)
        if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", candidate) and not candidate.endswith(".py"):
            module = candidate.replace(".", "/")
            paths.update({module, f"{module}.py"})
    return sorted(paths)


def changed_sections(name: str, before: bytes | None, after: bytes | None) -> list[str]:
    """The test sections that differ between two versions of pyproject.toml or setup.cfg."""
    old, new = _sections(name, before), _sections(name, after)
    if old is None or new is None:
        return ["test sections (unreadable)"]
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def _sections(name: str, data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return {}
    if len(data) > MAX_CONFIG_BYTES:
        return None
    try:
        text = data.decode()
        if name == "pyproject.toml":
            tool = tomllib.loads(text).get("tool", {})
            return {f"tool.{k}": tool[k] for k in PYPROJECT_TEST_TABLES if isinstance(tool, dict) and k in tool}
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read_string(text)
        return {s: dict(parser[s]) for s in parser.sections() if SETUP_CFG_TEST_SECTIONS.match(s)}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error):
        return None
