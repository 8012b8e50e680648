"""CollectArtifacts' post-images (gitdiff/images.py): the changed files' bytes read from git while the
sandbox still exists, bounded, each checked against the blob id the patch names, stored for publishing."""

from __future__ import annotations

import logging
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.errors import SolverError
from solver_core.gitdiff.images import PostImage, PostImages, blob_sha, needed_blobs
from solver_core.gitdiff.parse import parse_patch
from solver_core.ports import ArtifactStore, Sandbox
from solver_core.sandbox import repository

log = logging.getLogger(__name__)

# The changed files of one run in all: a one-line change in a large file needs the whole file.
MAX_POST_IMAGE_BYTES = 50_000_000


def store_post_images(
    artifacts: ArtifactStore, sandbox: Sandbox, solve_id: UUID, run_id: UUID, patch: bytes,
    *, max_bytes: int = MAX_POST_IMAGE_BYTES,
) -> PostImages:  # fmt: skip
    """Store the post-image of every file the patch gives new bytes, and the manifest. When they
    cannot be stored (too large, unreadable, not what the patch names), the manifest says why and
    the run goes on: only a pull request needs them."""
    try:
        changes = parse_patch(patch)
        blobs = needed_blobs(changes)
        found = repository.read_blobs(sandbox, blobs, max_bytes=max_bytes)
        if found is None:
            manifest = PostImages(missing=f"the changed files are larger than {max_bytes} bytes in all")
        elif wrong := [blob for blob, data in found.items() if blob_sha(data) != blob]:
            manifest = PostImages(missing=f"the repository's object {wrong[0][:12]} does not hold the patch's bytes")
        else:
            paths = {c.new_sha.lower(): (c.new_path, c.new_mode) for c in changes if c.new_sha and c.new_path}
            for blob, data in found.items():
                artifacts.put(keys.post_image(solve_id, run_id, blob), data, content_type="application/octet-stream")
            files = [PostImage(path=paths[b][0] or "", mode=paths[b][1], blob=b, size=len(d)) for b, d in found.items()]
            manifest = PostImages(files=files)
    except SolverError as exc:
        log.warning("run %s: the post-images were not stored: %s", run_id, exc.message)
        manifest = PostImages(missing=exc.message)
    artifacts.put(
        keys.post_images(solve_id, run_id), manifest.model_dump_json().encode(), content_type="application/json"
    )
    return manifest
