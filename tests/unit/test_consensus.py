"""Consensus groups: the same change written differently is one group; a different change is not."""

from __future__ import annotations

import pytest

from solver_core.selection.consensus import groups, key_from_diff, key_from_files, normalize_source

pytestmark = pytest.mark.unit

BASE = "def mean(xs):\n    return sum(xs) // len(xs)\n"
FIX_A = 'def mean(xs):\n    """Average."""\n    return sum(xs) / len(xs)\n'
FIX_B = "def mean(xs):\n    # true division keeps the fraction\n    return sum(xs)/len(xs)\n"
FIX_C = "def mean(xs):\n    return float(sum(xs)) / len(xs)\n"


def _diff(path: str, removed: list[str], added: list[str]) -> bytes:
    lines = [f"diff --git a/{path} b/{path}", f"--- a/{path}", f"+++ b/{path}", "@@ -1,2 +1,2 @@", " def mean(xs):"]
    lines += [f"-{r}" for r in removed] + [f"+{a}" for a in added]
    return ("\n".join(lines) + "\n").encode()


def test_python_files_are_compared_by_their_syntax_tree() -> None:
    assert normalize_source("calc.py", FIX_A) == normalize_source("calc.py", FIX_B)
    assert normalize_source("calc.py", FIX_A) != normalize_source("calc.py", FIX_C)
    assert normalize_source("calc.py", FIX_A) != normalize_source("calc.py", BASE)


def test_unparsable_python_falls_back_to_lines_without_comments_or_whitespace() -> None:
    broken_a = "def mean(xs:\n    return  sum(xs) / len(xs)  \n"
    broken_b = "# a comment\ndef mean(xs:\n    return sum(xs) / len(xs)\n"
    assert normalize_source("calc.py", broken_a) == normalize_source("calc.py", broken_b)


def test_c_like_files_ignore_line_and_block_comments() -> None:
    a = "int f(int x) {\n  /* fix */\n  return x + 1; // off by one\n}\n"
    b = "int f(int x) {\n  // fix\n  return x+1; // off by one\n}\n"
    assert normalize_source("f.c", a) == normalize_source("f.c", b)
    assert normalize_source("f.c", a) != normalize_source("f.c", a.replace("+ 1", "+ 2"))


def test_equivalent_post_images_share_a_key_and_deletions_count() -> None:
    assert key_from_files({"calc.py": FIX_A.encode()}) == key_from_files({"calc.py": FIX_B.encode()})
    assert key_from_files({"calc.py": FIX_A.encode()}) != key_from_files({"calc.py": FIX_C.encode()})
    assert key_from_files({"calc.py": FIX_A.encode()}) != key_from_files({"calc.py": FIX_A.encode(), "old.py": None})
    assert key_from_files({"a.py": b"x = 1\n"}) != key_from_files({"b.py": b"x = 1\n"})


def test_diff_keys_ignore_whitespace_comments_and_context() -> None:
    a = _diff("calc.py", ["    return sum(xs) // len(xs)"], ["    return sum(xs) / len(xs)"])
    b = _diff("calc.py", ["    return sum(xs)  //  len(xs)"], ["    # keep the fraction", "    return sum(xs)/len(xs)"])
    c = _diff("calc.py", ["    return sum(xs) // len(xs)"], ["    return float(sum(xs)) / len(xs)"])
    assert key_from_diff(a) == key_from_diff(b)
    assert key_from_diff(a) != key_from_diff(c)
    assert key_from_diff(b"") == key_from_diff(_diff("calc.py", [], ["    # only a comment"]))


def test_group_sizes() -> None:
    sizes = groups({"r1": "k1", "r2": "k2", "r3": "k1", "r4": "k1"})
    assert sizes == {"r1": 3, "r2": 1, "r3": 3, "r4": 3}
