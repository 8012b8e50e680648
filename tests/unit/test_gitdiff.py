"""Reading git's diff strictly (gitdiff/parse.py), and which post-images a patch needs (gitdiff/images.py):
publishing checks the stored bytes of every changed file against the blob ids parsed here."""

from __future__ import annotations

import base64
import zlib

import pytest

from solver_core.errors import PatchNotApplicable
from solver_core.gitdiff.images import blob_sha, needed_blobs
from solver_core.gitdiff.parse import FilePatch, parse_patch

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
    assert (empty.old_path, empty.new_path, empty.new_sha) == (None, "empty", "e69de29")
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
    change = only(patch)
    assert change.binary is not None
    assert change.binary.data == data
    assert needed_blobs([change]) == [blob_sha(data)]


def test_binary_sizes_are_enforced() -> None:
    data = b"x" * 100
    patch = f"diff --git a/b b/b\nGIT binary patch\nliteral 99\n{_binary_lines(data)}\n\n".encode()
    with pytest.raises(PatchNotApplicable, match="inflates to 100 bytes, not 99"):
        parse_patch(patch)


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


def test_a_patch_needs_the_post_images_of_new_bytes_only() -> None:
    """A text change and a new file need theirs; a deletion and a mode change keep or drop bytes."""
    patch = text_patch() + (
        b"diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\nindex 1111111..0000000\n"
        b"--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        b"diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
        b"diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n"
    )
    assert needed_blobs(parse_patch(patch)) == [blob_sha(NEW), blob_sha(b"")]
