"""Post-images: each changed file's bytes as the patch leaves them, stored at CollectArtifacts (read
from git's object database while the sandbox still exists) and published as blobs. A post-image is
named by the blob id the patch gives the file, and its bytes must hash to that id: what is
published is exactly what the patch says, and never anything else the sandbox wrote."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from solver_core.gitdiff.parse import FilePatch

NULL_BLOB = "0" * 40


def blob_sha(data: bytes) -> str:
    """The id git gives a blob with these bytes (SHA-1 object format)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def same_blob(named: str | None, actual: str) -> bool:
    """Does the (possibly abbreviated) id the patch names match this blob id?"""
    return named is None or actual.lower().startswith(named.lower())


def rewrites(change: FilePatch) -> bool:
    """Whether the change gives the file new bytes (rather than only a new name or mode)."""
    return bool(change.hunks) or change.binary is not None or change.binary_without_data or change.old_path is None


def needed_blobs(changes: list[FilePatch]) -> list[str]:
    """The blob ids of the new contents the patch describes (deletions and mode changes need none)."""
    blobs = [c.new_sha for c in changes if c.new_path is not None and rewrites(c) and c.new_sha]
    return list(dict.fromkeys(blob.lower() for blob in blobs))


class PostImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    mode: str | None
    blob: str
    size: int


class PostImages(BaseModel):
    """The manifest: which post-images were stored, or why none were."""

    model_config = ConfigDict(frozen=True)

    files: list[PostImage] = Field(default_factory=list)
    missing: str | None = Field(default=None, description="why the post-images were not stored")
