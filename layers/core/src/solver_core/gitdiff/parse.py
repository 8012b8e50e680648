"""Parse git's diff format (as `git diff --binary --full-index` writes it) into one FilePatch per file.

Only what git writes is accepted: a `diff --git` line, extended headers, then `---`/`+++` and hunks,
or a `GIT binary patch`. Paths may be C-quoted by git; the default `a/` and `b/` prefixes are required
(a repository configured with `diff.noprefix` produces paths we could not read unambiguously).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.hunks import BinaryHunk, Hunk, Lines, read_binary, read_hunk
from solver_core.gitdiff.paths import decode_path, git_line_paths, header_path

_HEADER_FIELDS = {
    b"old mode ": "old_mode",
    b"new mode ": "new_mode",
    b"deleted file mode ": "deleted_mode",
    b"new file mode ": "created_mode",
    b"rename from ": "rename_from",
    b"rename to ": "rename_to",
    b"copy from ": "copy_from",
    b"copy to ": "copy_to",
    b"index ": "index",
}
_IGNORED = (b"similarity index ", b"dissimilarity index ")


@dataclass
class FilePatch:
    """One file's change. `old_path` is None for a new file, `new_path` None for a deleted one."""

    old_path: str | None
    new_path: str | None
    old_mode: str | None = None
    new_mode: str | None = None
    old_sha: str | None = None
    new_sha: str | None = None
    is_copy: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    binary: BinaryHunk | None = None
    binary_without_data: bool = False


@dataclass
class _Header:
    git_paths: tuple[str, str] | None
    values: dict[str, str] = field(default_factory=dict)
    minus: str | None = None
    plus: str | None = None


def parse_patch(patch: bytes) -> list[FilePatch]:
    lines = Lines(patch)
    files: list[FilePatch] = []
    while not lines.done():
        line = lines.take()
        if not line.startswith(b"diff --git "):
            raise PatchNotApplicable(f"line {lines.number}: expected 'diff --git', got {line[:60]!r}")
        files.append(_parse_file(line, lines))
    return files


def _parse_file(first: bytes, lines: Lines) -> FilePatch:
    header = _Header(git_line_paths(first.removeprefix(b"diff --git ")))
    _read_extended_header(header, lines)
    result = _file_patch(header)
    if not lines.done() and lines.peek().startswith(b"--- "):
        header.minus = header_path(lines.take().removeprefix(b"--- "), "a/")
        if lines.done() or not lines.peek().startswith(b"+++ "):
            raise PatchNotApplicable(f"line {lines.number}: '---' without '+++'")
        header.plus = header_path(lines.take().removeprefix(b"+++ "), "b/")
        result = _file_patch(header)
        while not lines.done() and lines.peek().startswith(b"@@ "):
            result.hunks.append(read_hunk(lines))
    elif not lines.done() and lines.peek() == b"GIT binary patch":
        lines.take()
        result.binary = read_binary(lines)
    elif not lines.done() and lines.peek().startswith(b"Binary files "):
        lines.take()
        result.binary_without_data = True
    return result


def _read_extended_header(header: _Header, lines: Lines) -> None:
    while not lines.done():
        line = lines.peek()
        found = next(((p, n) for p, n in _HEADER_FIELDS.items() if line.startswith(p)), None)
        if found is not None:
            header.values[found[1]] = lines.take()[len(found[0]) :].decode("utf-8", "surrogateescape")
        elif line.startswith(_IGNORED):
            lines.take()
        else:
            return


def _file_patch(header: _Header) -> FilePatch:
    values = header.values
    old_path, new_path = _paths(header)
    old_sha, new_sha, index_mode = _index(values.get("index"))
    created, deleted = "created_mode" in values, "deleted_mode" in values
    old_mode = None if created else values.get("old_mode") or values.get("deleted_mode") or index_mode
    new_mode = None if deleted else values.get("new_mode") or values.get("created_mode") or index_mode
    return FilePatch(
        old_path=None if created else old_path,
        new_path=None if deleted else new_path,
        old_mode=old_mode,
        new_mode=new_mode,
        old_sha=old_sha,
        new_sha=new_sha,
        is_copy="copy_from" in values,
    )


def _paths(header: _Header) -> tuple[str, str]:
    values = header.values
    git_old, git_new = header.git_paths or (None, None)
    source = values.get("rename_from") or values.get("copy_from")
    target = values.get("rename_to") or values.get("copy_to")
    old = _plain(source) if source else header.minus or git_old
    new = _plain(target) if target else header.plus or git_new
    if old is None or new is None:
        raise PatchNotApplicable("a file in the patch has no readable path")
    return old, new


def _plain(value: str) -> str:
    """A rename/copy path: unprefixed, possibly C-quoted."""
    return decode_path(value.encode("utf-8", "surrogateescape"))


def _index(value: str | None) -> tuple[str | None, str | None, str | None]:
    """`index <old>..<new>[ <mode>]` → (old sha, new sha, mode); all-zero ids mean 'no such blob'."""
    if value is None:
        return None, None, None
    ids, _, mode = value.partition(" ")
    old, sep, new = ids.partition("..")
    if not sep or not all(c in "0123456789abcdef" for c in old + new):
        raise PatchNotApplicable(f"unreadable index line: {value[:100]!r}")
    return _blob_id(old), _blob_id(new), (mode or None)


def _blob_id(value: str) -> str | None:
    return None if set(value) <= {"0"} else value
