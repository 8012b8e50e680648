"""Unified diffs as the console shows them: files, hunks and lines, highlighted by Pygments, in a
unified or a side-by-side layout. Every piece of text stays text: Pygments' HTML formatter escapes
it, and what it returns is the only markup the templates mark safe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest
from typing import Literal, cast

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

Kind = Literal["context", "added", "removed", "note"]
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
MAX_LINE_CHARS = 2000  # a minified line is cut for display; the raw patch has it whole


@dataclass(frozen=True)
class Line:
    kind: Kind
    old: int | None
    new: int | None
    html: Markup


@dataclass
class Hunk:
    header: str
    lines: list[Line] = field(default_factory=list)

    def side_by_side(self) -> list[tuple[Line | None, Line | None]]:
        """Rows of (old, new): context on both sides, each run of removals paired with the run of
        additions that follows it."""
        rows: list[tuple[Line | None, Line | None]] = []
        removed: list[Line] = []
        added: list[Line] = []

        def flush() -> None:
            rows.extend(zip_longest(removed, added))
            removed.clear()
            added.clear()

        for line in self.lines:
            if line.kind == "removed":
                if added:
                    flush()
                removed.append(line)
            elif line.kind == "added":
                added.append(line)
            else:
                flush()
                rows.append((line, line) if line.kind == "context" else (line, None))
        flush()
        return rows


@dataclass
class FileDiff:
    old_path: str
    new_path: str
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    added: int = 0
    removed: int = 0

    @property
    def path(self) -> str:
        return self.new_path if self.new_path != "/dev/null" else self.old_path


def parse(patch: str) -> list[FileDiff]:
    """The files of a git-style unified diff, highlighted by each file's language."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_no = new_no = 0
    lexer: Lexer = TextLexer()
    for raw in patch.splitlines():
        if raw.startswith("diff --git "):
            old, new = _git_paths(raw)
            current, hunk = FileDiff(old, new), None
            files.append(current)
            lexer = _lexer_for(new)
        elif current is None:
            continue
        elif hunk is None and raw.startswith("--- "):
            current.old_path = _strip_prefix(raw[4:], "a/")
        elif hunk is None and raw.startswith("+++ "):
            current.new_path = _strip_prefix(raw[4:], "b/")
            lexer = _lexer_for(current.path)
        elif raw.startswith("Binary files ") or raw == "GIT binary patch":
            current.binary = True
        elif match := _HUNK.match(raw):
            old_no, new_no = int(match[1]), int(match[2])
            hunk = Hunk(header=raw)
            current.hunks.append(hunk)
        elif hunk is None or current.binary:
            continue
        elif raw.startswith("+"):
            hunk.lines.append(Line("added", None, new_no, _code(lexer, raw[1:])))
            current.added += 1
            new_no += 1
        elif raw.startswith("-"):
            hunk.lines.append(Line("removed", old_no, None, _code(lexer, raw[1:])))
            current.removed += 1
            old_no += 1
        elif raw.startswith("\\"):
            hunk.lines.append(Line("note", None, None, escape(raw)))
        else:
            hunk.lines.append(Line("context", old_no, new_no, _code(lexer, raw[1:])))
            old_no += 1
            new_no += 1
    return files


def _git_paths(line: str) -> tuple[str, str]:
    rest = line[len("diff --git ") :]
    if rest.startswith("a/") and " b/" in rest:
        old, new = rest[2:].split(" b/", 1)
        return old, new
    return rest, rest


def _strip_prefix(path: str, prefix: str) -> str:
    path = path.split("\t", 1)[0]
    return path[len(prefix) :] if path.startswith(prefix) else path


@lru_cache(maxsize=256)
def _lexer_for(path: str) -> Lexer:
    try:
        lexer: Lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return cast(Lexer, TextLexer(stripnl=False, ensurenl=False))
    return lexer


_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")


def _code(lexer: Lexer, text: str) -> Markup:
    """One line, highlighted on its own (a line inside a multi-line string may be coloured as code:
    acceptable for reading a patch, and it keeps every line independent)."""
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + " …"
    return Markup(highlight(text, lexer, _FORMATTER).rstrip("\n"))  # noqa: S704 - Pygments escapes the text


def stylesheet() -> str:
    """The token colours (Pygments' `default` style, whose colours read on a light background)."""
    formatter: HtmlFormatter[str] = HtmlFormatter(style="default", classprefix="tok-")
    return str(formatter.get_style_defs(".code"))  # type: ignore[no-untyped-call] # unannotated upstream
