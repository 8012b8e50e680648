"""The bodies of a file's diff: text hunks (`@@ -a,b +c,d @@`) and git binary patches (base85 + zlib)."""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from typing import Literal

from solver_core.errors import PatchNotApplicable

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_BINARY = re.compile(rb"^(literal|delta) (\d+)$")
MAX_BINARY_BYTES = 100 * 1024 * 1024  # GitHub's own limit for a blob


class Lines:
    """A cursor over the patch's lines, split on LF only (CR is content: CRLF files keep it)."""

    def __init__(self, data: bytes) -> None:
        self._lines = data.split(b"\n")
        if self._lines and self._lines[-1] == b"":
            self._lines.pop()
        self._at = 0

    def done(self) -> bool:
        return self._at >= len(self._lines)

    def peek(self) -> bytes:
        return self._lines[self._at]

    def take(self) -> bytes:
        if self.done():
            raise PatchNotApplicable("the patch ends in the middle of a file")
        self._at += 1
        return self._lines[self._at - 1]

    @property
    def number(self) -> int:
        return self._at


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    # (op, line): op is ' ', '-' or '+'; line keeps its newline unless the file ends without one.
    lines: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class BinaryHunk:
    kind: Literal["literal", "delta"]
    data: bytes  # inflated: the new file (literal) or a git delta against the old one


def read_hunk(lines: Lines) -> Hunk:
    header = _HUNK.match(lines.take())
    if header is None:
        raise PatchNotApplicable(f"line {lines.number}: malformed hunk header")
    old_start = int(header[1])  # where the new lines land follows from the old positions
    old_left = 1 if header[2] is None else int(header[2])
    new_left = 1 if header[4] is None else int(header[4])
    old_count, body = old_left, list[tuple[str, bytes]]()
    while old_left or new_left or (not lines.done() and lines.peek().startswith(b"\\")):
        line = lines.take()
        op = chr(line[0]) if line else " "  # an empty line is an empty context line
        if op == "\\":  # "\ No newline at end of file": the line before has no newline
            if not body:
                raise PatchNotApplicable(f"line {lines.number}: misplaced no-newline marker")
            body[-1] = (body[-1][0], body[-1][1].removesuffix(b"\n"))
            continue
        if op not in " -+":
            raise PatchNotApplicable(f"line {lines.number}: unexpected line in a hunk")
        old_left -= op in " -"
        new_left -= op in " +"
        if old_left < 0 or new_left < 0:
            raise PatchNotApplicable(f"line {lines.number}: hunk longer than its header says")
        body.append((op, line[1:] + b"\n"))
    return Hunk(old_start, old_count, tuple(body))


def read_binary(lines: Lines) -> BinaryHunk:
    """The forward hunk of a `GIT binary patch`; the reverse hunk that follows it is skipped."""
    forward = _binary_block(lines)
    if not lines.done() and _BINARY.match(lines.peek()):
        _binary_block(lines)
    return forward


def _binary_block(lines: Lines) -> BinaryHunk:
    header = _BINARY.match(lines.take())
    if header is None:
        raise PatchNotApplicable(f"line {lines.number}: expected 'literal N' or 'delta N'")
    kind: Literal["literal", "delta"] = "literal" if header[1] == b"literal" else "delta"
    size = int(header[2])
    if size > MAX_BINARY_BYTES:
        raise PatchNotApplicable(f"a binary file of {size} bytes is over GitHub's blob limit")
    packed = bytearray()
    while (line := lines.take()) != b"":
        packed += _base85_line(line, lines.number)
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(bytes(packed), size + 1)
    except zlib.error as exc:
        raise PatchNotApplicable(f"line {lines.number}: corrupt binary patch ({exc})") from exc
    if len(data) != size:
        raise PatchNotApplicable(f"line {lines.number}: binary patch inflates to {len(data)} bytes, not {size}")
    return BinaryHunk(kind, data)


def _base85_line(line: bytes, number: int) -> bytes:
    """One line: a length character (A-Z: 1-26, a-z: 27-52) and base85 in git's (RFC 1924) alphabet,
    which is the one Python's b85 codec uses."""
    first = line[:1]
    if b"A" <= first <= b"Z":
        length = first[0] - ord("A") + 1
    elif b"a" <= first <= b"z":
        length = first[0] - ord("a") + 27
    else:
        raise PatchNotApplicable(f"line {number}: bad binary patch line")
    encoded = line[1:]
    if len(encoded) != (length + 3) // 4 * 5:
        raise PatchNotApplicable(f"line {number}: binary patch line has the wrong length")
    try:
        return base64.b85decode(encoded)[:length]
    except ValueError as exc:
        raise PatchNotApplicable(f"line {number}: bad base85 in binary patch") from exc
