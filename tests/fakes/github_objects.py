"""Git's object model for the fake GitHub: blobs, trees and commits hashed exactly as git hashes them.

Real object ids make the fake faithful where it matters: a repository imported from a local git
repository has the same commit ids as the local one (so a run's recorded base commit exists on the
fake), and a tree built through the API can be compared with what `git write-tree` computes locally.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TREE_MODE = "40000"  # as stored in tree objects; the API shows "040000"


@dataclass(frozen=True)
class Entry:
    mode: str
    name: str
    sha: str

    @property
    def is_tree(self) -> bool:
        return self.mode == TREE_MODE


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str


def _sort_key(entry: Entry) -> bytes:
    # Git orders tree entries by name, comparing a subtree's name as if it ended in '/'.
    return entry.name.encode() + (b"/" if entry.is_tree else b"")


class GitObjects:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes]] = {}

    def put(self, kind: str, data: bytes) -> str:
        sha = hashlib.sha1(f"{kind} {len(data)}".encode() + b"\x00" + data, usedforsecurity=False).hexdigest()
        self.objects[sha] = (kind, data)
        return sha

    def get(self, sha: str, kind: str) -> bytes | None:
        found = self.objects.get(sha)
        return found[1] if found is not None and found[0] == kind else None

    def read_tree(self, sha: str) -> list[Entry]:
        data = self.get(sha, "tree")
        if data is None:
            raise KeyError(sha)
        entries, at = [], 0
        while at < len(data):
            space, nul = data.index(b" ", at), data.index(b"\x00", at)
            entries.append(
                Entry(data[at:space].decode(), data[space + 1 : nul].decode(), data[nul + 1 : nul + 21].hex())
            )
            at = nul + 21
        return entries

    def write_tree(self, entries: list[Entry]) -> str:
        body = b"".join(
            f"{e.mode} {e.name}".encode() + b"\x00" + bytes.fromhex(e.sha) for e in sorted(entries, key=_sort_key)
        )
        return self.put("tree", body)

    def flatten(self, tree: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """path → (mode, blob sha) for every file under the tree."""
        files: dict[str, tuple[str, str]] = {}
        for entry in self.read_tree(tree):
            if entry.is_tree:
                files |= self.flatten(entry.sha, f"{prefix}{entry.name}/")
            else:
                files[prefix + entry.name] = (entry.mode, entry.sha)
        return files

    def build(self, files: dict[str, tuple[str, str]]) -> str:
        """The tree of these files (nested directories written bottom-up)."""
        here: list[Entry] = []
        below: dict[str, dict[str, tuple[str, str]]] = {}
        for path, (mode, sha) in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = (mode, sha)
            else:
                here.append(Entry(mode, head, sha))
        here += [Entry(TREE_MODE, name, self.build(sub)) for name, sub in below.items()]
        return self.write_tree(here)

    def write_commit(self, tree: str, parents: list[str], message: str, who: str) -> str:
        lines = [f"tree {tree}", *(f"parent {p}" for p in parents), f"author {who}", f"committer {who}", "", message]
        return self.put("commit", "\n".join(lines).encode())

    def read_commit(self, sha: str) -> Commit | None:
        data = self.get(sha, "commit")
        if data is None:
            return None
        head, _, message = data.decode().partition("\n\n")
        fields = [line.split(" ", 1) for line in head.splitlines()]
        tree = next(v for k, v in fields if k == "tree")
        return Commit(sha, tree, [v for k, v in fields if k == "parent"], message)

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        pending, seen = [commit], set()
        while pending:
            current = pending.pop()
            if current == ancestor:
                return True
            if current in seen:
                continue
            seen.add(current)
            found = self.read_commit(current)
            pending += found.parents if found else []
        return False

    def import_repository(self, path: Path) -> dict[str, str]:
        """Copy every object of a local repository; returns its branches (name → commit)."""
        env = os.environ | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
        dump = subprocess.run(
            ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=path, env=env, capture_output=True, check=True
        ).stdout
        at = 0
        while at < len(dump):
            header_end = dump.index(b"\n", at)
            sha, kind, size = dump[at:header_end].decode().split()
            data = dump[header_end + 1 : header_end + 1 + int(size)]
            assert self.put(kind, data) == sha, f"object {sha} hashed differently"
            at = header_end + 1 + int(size) + 1
        refs = subprocess.run(
            ["git", "for-each-ref", "--format=%(objectname) %(refname:short)", "refs/heads"],
            cwd=path, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return {name: sha for sha, name in (line.split(" ", 1) for line in refs.splitlines())}
