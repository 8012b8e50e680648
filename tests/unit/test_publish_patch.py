"""Reading git's diff format back into file contents, strictly: hunks, no-newline markers, CRLF,
quoted paths, binary literals and deltas; and refusing what is malformed or unsafe."""

from __future__ import annotations

import base64
import zlib

import pytest

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.parse import FilePatch, parse_patch
from solver_core.publish.patch.apply import apply_delta, blob_sha, new_content

pytestmark = pytest.mark.unit

OLD = b"one\ntwo\nthree\nfour\n"
NEW = b"one\nTWO\nthree\nfour\nfive"


def text_patch(old: bytes = OLD, new: bytes = NEW, path: str = "f.txt") -> bytes:
    return (
        f"diff --git a/{path} b/{path}\nindex {blob_sha(old)}..{blob_sha(new)} 100644\n--- a/{path}\n+++ b/{path}\n"
        "@@ -1,4 +1,5 @@\n one\n-two\n+TWO\n three\n four\n+five\n\\ No newline at end of file\n"
    ).encode()


def only(patch: bytes) -> FilePatch:
    (change,) = parse_patch(patch)
    return change


def test_a_text_change_applies_and_matches_its_blob_id() -> None:
    change = only(text_patch())
    assert (change.old_path, change.new_path, change.old_mode, change.new_mode) == (
        "f.txt",
        "f.txt",
        "100644",
        "100644",
    )
    assert new_content(change, OLD) == NEW


def test_the_preimage_must_be_exactly_what_the_patch_says() -> None:
    with pytest.raises(PatchNotApplicable, match="differs from the patch's context"):
        new_content(only(text_patch()), b"one\nTWO?\nthree\nfour\n")


def test_a_result_that_does_not_hash_to_the_named_blob_is_refused() -> None:
    forged = text_patch().replace(blob_sha(NEW).encode(), blob_sha(b"other").encode())
    with pytest.raises(PatchNotApplicable, match="does not match the patch's blob id"):
        new_content(only(forged), OLD)


def test_crlf_lines_keep_their_carriage_returns() -> None:
    old, new = b"a\r\nb\r\n", b"a\r\nB\r\n"
    patch = (
        f"diff --git a/w.txt b/w.txt\nindex {blob_sha(old)}..{blob_sha(new)} 100644\n--- a/w.txt\n+++ b/w.txt\n"
        "@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n"
    ).encode()
    assert new_content(only(patch), old) == new


def test_new_deleted_renamed_and_mode_changes() -> None:
    patch = (
        b"diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\nindex 1111111..0000000\n"
        b"--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        b"diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29\n"
        b"diff --git a/old name.txt b/new name.txt\nsimilarity index 100%\n"
        b"rename from old name.txt\nrename to new name.txt\n"
        b"diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
        b'diff --git "a/caf\\303\\251 \\"q\\".txt" "b/caf\\303\\251 \\"q\\".txt"\nnew file mode 100644\n'
        b"index 0000000..0000001\n"
    )
    gone, empty, renamed, mode, quoted = parse_patch(patch)
    assert (gone.old_path, gone.new_path, gone.old_sha) == ("gone.txt", None, "1111111")
    assert (empty.old_path, empty.new_path, new_content(empty, None)) == (None, "empty", b"")
    assert (renamed.old_path, renamed.new_path) == ("old name.txt", "new name.txt")
    assert (mode.old_mode, mode.new_mode) == ("100644", "100755")
    assert quoted.new_path == 'café "q".txt'


def _binary_lines(data: bytes) -> str:
    packed, lines = zlib.compress(data), []
    for at in range(0, len(packed), 52):
        chunk = packed[at : at + 52]
        size = chr(ord("A") + len(chunk) - 1) if len(chunk) <= 26 else chr(ord("a") + len(chunk) - 27)
        lines.append(size + base64.b85encode(chunk + b"\0" * (-len(chunk) % 4)).decode())
    return "\n".join(lines)


def test_git_binary_literals_decode() -> None:
    data = bytes(range(256)) * 3
    patch = (
        f"diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..{blob_sha(data)}\nGIT binary patch\n"
        f"literal {len(data)}\n{_binary_lines(data)}\n\nliteral 0\nHcmV?d00001\n\n"
    ).encode()
    assert new_content(only(patch), None) == data


def test_binary_sizes_are_enforced() -> None:
    data = b"x" * 100
    patch = f"diff --git a/b b/b\nGIT binary patch\nliteral 99\n{_binary_lines(data)}\n\n".encode()
    with pytest.raises(PatchNotApplicable, match="inflates to 100 bytes, not 99"):
        parse_patch(patch)


def test_git_deltas_copy_and_insert() -> None:
    source = b"0123456789" * 10
    # sizes (100, 15), copy offset 10 size 5, insert "abcde", copy offset 0x0 size 5
    delta = bytes([100, 15, 0x91, 10, 5, 5]) + b"abcde" + bytes([0x90, 5])
    assert apply_delta(source, delta) == b"01234abcde01234"
    with pytest.raises(PatchNotApplicable, match="different file"):
        apply_delta(source[:50], delta)
    with pytest.raises(PatchNotApplicable, match="past the end"):
        apply_delta(source, bytes([100, 5, 0x91, 99, 5]))


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        (b"hello\n", "expected 'diff --git'"),
        (b"diff --git a/../x b/../x\nnew file mode 100644\n", "unsafe path"),
        (b"diff --git a/.git/config b/.git/config\nnew file mode 100644\n", "git's own directory"),
        (b"diff --git x y\n--- x\n+++ y\n", "lacks git's default 'a/' prefix"),
        (b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n", "ends in the middle"),
        (b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1 @@\n a\n+b\n", "longer than its header"),
        (b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n a\n+b\n", "expected 'diff --git'"),
        (b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n?x\n", "unexpected line in a hunk"),
        (b"diff --git a/f b/f\nindex zz..yy 100644\n", "unreadable index line"),
        (b'diff --git "a/f\\q" "b/f\\q"\nnew file mode 100644\n', "bad escape"),
    ],
)
def test_malformed_or_unsafe_patches_are_refused(patch: bytes, problem: str) -> None:
    with pytest.raises(PatchNotApplicable, match=problem):
        parse_patch(patch)


def test_binary_changes_without_data_cannot_be_published() -> None:
    change = only(
        b"diff --git a/i.png b/i.png\nindex 1111111..2222222 100644\nBinary files a/i.png and b/i.png differ\n"
    )
    with pytest.raises(PatchNotApplicable, match="needs --binary"):
        new_content(change, b"old")
