"""File names in git's diff format: C-quoted when unusual, `a/`/`b/`-prefixed, and checked to stay
inside the repository (they become paths in a GitHub tree)."""

from __future__ import annotations

from solver_core.errors import PatchNotApplicable

_ESCAPES = {
    ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13,
    ord('"'): 34, ord("\\"): 92,
}  # fmt: skip
_OCTAL = b"01234567"


def unquote(raw: bytes) -> str:
    """Git's C-style quoting (`"dir/caf\\303\\251.txt"`) → the path."""
    if len(raw) < 2 or not raw.startswith(b'"') or not raw.endswith(b'"'):
        raise PatchNotApplicable(f"badly quoted path {raw[:80]!r}")
    out, body, i = bytearray(), raw[1:-1], 0
    while i < len(body):
        byte = body[i]
        if byte != ord("\\"):
            out.append(byte)
            i += 1
        elif i + 4 <= len(body) and all(c in _OCTAL for c in body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif i + 1 < len(body) and body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            raise PatchNotApplicable(f"bad escape in quoted path {raw[:80]!r}")
    return _checked(bytes(out))


def decode_path(raw: bytes) -> str:
    return unquote(raw) if raw.startswith(b'"') else _checked(raw)


def _checked(raw: bytes) -> str:
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatchNotApplicable(f"path {raw[:80]!r} is not UTF-8; GitHub's API cannot name it") from exc
    parts = path.split("/")
    if not path or path.startswith("/") or "\x00" in path or any(p in {"", ".", ".."} for p in parts):
        raise PatchNotApplicable(f"unsafe path in patch: {path[:100]!r}")
    if any(p.lower() == ".git" for p in parts):
        raise PatchNotApplicable(f"the patch touches git's own directory: {path[:100]!r}")
    return path


def header_path(raw: bytes, prefix: str) -> str | None:
    """The path of a `---`/`+++` line; None for /dev/null. Git appends a tab to names with spaces."""
    raw = raw.removesuffix(b"\t")
    if raw == b"/dev/null":
        return None
    quoted = raw.startswith(b'"')
    prefix_bytes = prefix.encode()
    if quoted:
        inner = raw[1:]
        if not inner.startswith(prefix_bytes):
            raise PatchNotApplicable(f"path {raw[:100]!r} lacks git's default '{prefix}' prefix")
        return unquote(b'"' + inner[len(prefix_bytes) :])
    if not raw.startswith(prefix_bytes):
        raise PatchNotApplicable(f"path {raw[:100]!r} lacks git's default '{prefix}' prefix")
    return _checked(raw[len(prefix_bytes) :])


def git_line_paths(rest: bytes) -> tuple[str, str] | None:
    """The two names of `diff --git a/X b/Y`; None when they cannot be told apart (unquoted names with
    spaces that differ: a rename, whose own header lines name both)."""
    if rest.startswith(b'"'):
        end = _closing_quote(rest)
        return _named(rest[: end + 1], "a/"), _named(rest[end + 2 :], "b/")
    if b' "' in rest:
        first, _, second = rest.partition(b' "')
        return _named(first, "a/"), _named(b'"' + second, "b/")
    half = (len(rest) - 1) // 2
    first, second = rest[:half], rest[half + 1 :]
    if len(rest) % 2 == 0 or rest[half : half + 1] != b" " or first[2:] != second[2:]:
        return None
    return _named(first, "a/"), _named(second, "b/")


def _named(raw: bytes, prefix: str) -> str:
    path = header_path(raw, prefix)
    if path is None:
        raise PatchNotApplicable("a 'diff --git' line names /dev/null")
    return path


def _closing_quote(raw: bytes) -> int:
    i = 1
    while i < len(raw):
        if raw[i] == ord("\\"):
            i += 2
            continue
        if raw[i] == ord('"'):
            return i
        i += 1
    raise PatchNotApplicable(f"unterminated quoted path {raw[:80]!r}")
