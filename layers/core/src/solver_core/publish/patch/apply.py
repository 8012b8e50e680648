"""New file contents from old ones: text hunks applied strictly (the preimage is verified by its blob
id first, so no fuzz or offset search is needed), git binary literals and deltas, and git's blob ids."""

from __future__ import annotations

import hashlib

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.hunks import BinaryHunk, Hunk
from solver_core.gitdiff.parse import FilePatch


def blob_sha(data: bytes) -> str:
    """The id git gives a blob with these bytes (SHA-1 object format)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def same_blob(named: str | None, actual: str) -> bool:
    """Does the (possibly abbreviated) id the patch names match this blob id?"""
    return named is None or actual.lower().startswith(named.lower())


def new_content(change: FilePatch, old: bytes | None) -> bytes:
    """The file's bytes after the change, checked against the blob id the patch names for them."""
    if change.binary_without_data:
        raise PatchNotApplicable(f"{change.new_path}: binary change without data (the patch needs --binary)")
    if change.binary is not None:
        content = apply_binary(change.binary, old)
    elif change.hunks:
        content = apply_hunks(old or b"", change.hunks, change.new_path or "")
    else:
        content = old or b""  # a rename, copy or mode change keeps the bytes; a new empty file has none
    if change.new_sha is not None and not same_blob(change.new_sha, blob_sha(content)):
        raise PatchNotApplicable(f"{change.new_path}: the result does not match the patch's blob id {change.new_sha}")
    return content


def apply_hunks(old: bytes, hunks: list[Hunk], path: str) -> bytes:
    source = old.split(b"\n")
    lines = [line + b"\n" for line in source[:-1]] + ([source[-1]] if source[-1] else [])
    out: list[bytes] = []
    at = 0  # the next old line (0-based) not yet copied
    for hunk in hunks:
        # A hunk that removes nothing names the line it follows; others name their first line.
        start = hunk.old_start if hunk.old_count == 0 else hunk.old_start - 1
        if start < at or start > len(lines):
            raise PatchNotApplicable(f"{path}: hunk at line {hunk.old_start} is out of order or past the end")
        out += lines[at:start]
        at = start
        for op, text in hunk.lines:
            if op in " -":
                if at >= len(lines) or lines[at] != text:
                    raise PatchNotApplicable(f"{path}: line {at + 1} differs from the patch's context")
                at += 1
            if op in " +":
                out.append(text)
    return b"".join(out + lines[at:])


def apply_binary(hunk: BinaryHunk, old: bytes | None) -> bytes:
    if hunk.kind == "literal":
        return hunk.data
    if old is None:
        raise PatchNotApplicable("a binary delta needs the old file")
    return apply_delta(old, hunk.data)


def apply_delta(source: bytes, delta: bytes) -> bytes:
    """Git's delta format (patch-delta.c): two sizes, then copy-from-source and insert instructions."""
    source_size, at = _varint(delta, 0)
    target_size, at = _varint(delta, at)
    if source_size != len(source):
        raise PatchNotApplicable("binary delta was made against a different file")
    out = bytearray()
    while at < len(delta):
        op = delta[at]
        at += 1
        if op & 0x80:
            offset, size, at = _copy_args(delta, at, op)
            if offset + size > len(source):
                raise PatchNotApplicable("binary delta copies past the end of the file")
            out += source[offset : offset + size]
        elif op:
            out += delta[at : at + op]
            at += op
        else:
            raise PatchNotApplicable("binary delta has a reserved instruction")
    if len(out) != target_size:
        raise PatchNotApplicable("binary delta produced the wrong size")
    return bytes(out)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise PatchNotApplicable("truncated binary delta")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _copy_args(delta: bytes, at: int, op: int) -> tuple[int, int, int]:
    """Offset (up to 4 bytes) and size (up to 3 bytes), each byte present when its bit in `op` is set."""
    values = [0, 0]
    for bit in range(7):
        if op & (1 << bit):
            if at >= len(delta):
                raise PatchNotApplicable("truncated binary delta")
            which, shift = (0, bit * 8) if bit < 4 else (1, (bit - 4) * 8)
            values[which] |= delta[at] << shift
            at += 1
    return values[0], values[1] or 0x10000, at
