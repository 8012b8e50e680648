"""Consensus among candidate patches: candidates that make the same change, written differently,
fall into one group, and a larger group is a signal that the change is right (docs/architecture.md,
Choosing the champion).

Two patches are "the same change" when they leave every file they touch equal after normalization:
whitespace and comments are ignored, and a Python file is compared by its syntax tree (docstrings
dropped), so reformatting, renamed comments or a different quoting style do not split a group.
The key is built from the post-image of every changed file when it is known, else from the diff's
added and removed lines, normalized the same way.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Hashable, Iterable, Mapping
from pathlib import PurePosixPath
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_HASH_COMMENT = frozenset({".py", ".pyi", ".sh", ".bash", ".rb", ".pl", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".r"})
_SLASH_COMMENT = frozenset(
    {
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".java",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".go",
        ".rs",
        ".cs",
        ".kt",
        ".swift",
        ".scala",
        ".php",
    }
)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_DIFF_FILE = re.compile(r"^diff --git a/(.+?) b/(.+)$")


def normalize_source(path: str, text: str) -> str:
    """The file's content with formatting and comments taken out; Python by its syntax tree."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in {".py", ".pyi"}:
        tree = _python_tree(text)
        if tree is not None:
            return tree
    return "\n".join(_normalize_lines(suffix, text.splitlines()))


def key_from_files(files: Mapping[str, bytes | None]) -> str:
    """The group key of a patch given the post-image of every file it touches (None: deleted)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        content = files[path]
        normalized = "\0deleted" if content is None else normalize_source(path, content.decode(errors="replace"))
        digest.update(f"{path}\0{normalized}\0\0".encode())
    return digest.hexdigest()


def key_from_diff(patch: bytes) -> str:
    """The group key of a patch from its diff alone: per file, the added and the removed lines,
    normalized, in order (hunk positions and context lines do not count)."""
    changes: dict[str, tuple[list[str], list[str]]] = {}
    current: tuple[list[str], list[str]] | None = None
    suffix = ""
    for line in patch.decode(errors="replace").splitlines():
        header = _DIFF_FILE.match(line)
        if header:
            path = header.group(2)
            suffix = PurePosixPath(path).suffix.lower()
            current = changes.setdefault(path, ([], []))
        elif current is None or line.startswith(("+++ ", "--- ")):
            continue
        elif line.startswith("+"):
            current[0].extend(_normalize_lines(suffix, [line[1:]]))
        elif line.startswith("-"):
            current[1].extend(_normalize_lines(suffix, [line[1:]]))
    digest = hashlib.sha256()
    for path in sorted(changes):
        added, removed = changes[path]
        if added or removed:
            digest.update("\0".join([path, *added, "\0-", *removed, "\0\0"]).encode())
    return digest.hexdigest()


def groups(keys: Mapping[K, str]) -> dict[K, int]:
    """For each candidate, the size of its group (how many candidates share its key)."""
    sizes: dict[str, int] = {}
    for key in keys.values():
        sizes[key] = sizes.get(key, 0) + 1
    return {candidate: sizes[key] for candidate, key in keys.items()}


def _python_tree(text: str) -> str | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _normalize_lines(suffix: str, lines: Iterable[str]) -> list[str]:
    text = "\n".join(lines)
    if suffix in _SLASH_COMMENT:
        text = _BLOCK_COMMENT.sub("", text)
    out: list[str] = []
    for raw in text.splitlines():
        line = "".join(raw.split())
        if suffix in _HASH_COMMENT and line.startswith("#"):
            continue
        if suffix in _SLASH_COMMENT and line.startswith("//"):
            continue
        if line:
            out.append(line)
    return out
