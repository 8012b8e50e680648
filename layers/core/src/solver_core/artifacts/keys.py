"""Where each artifact lives in the store. Keys are relative, '/'-separated and
validated, so no caller can escape the store's root or bucket prefix."""

from __future__ import annotations

import re
from uuid import UUID

from solver_core.errors import ArtifactError

_SEGMENT = re.compile(r"^[A-Za-z0-9._=-]{1,200}$")
MAX_KEY_LENGTH = 900


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Reject absolute keys, '..', empty segments and odd characters."""
    body = key[:-1] if prefix and key.endswith("/") else key
    segments = body.split("/")
    if not body or len(key) > MAX_KEY_LENGTH or any(not _SEGMENT.match(s) or s in {".", ".."} for s in segments):
        raise ArtifactError(f"invalid artifact key {key[:120]!r}")
    return key


def solve_prefix(solve_id: UUID) -> str:
    return f"solves/{solve_id}/"


def run_prefix(solve_id: UUID, run_id: UUID) -> str:
    return f"{solve_prefix(solve_id)}runs/{run_id}/"


def checkpoint_prefix(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}checkpoint/"


def checkpoint_part(solve_id: UUID, run_id: UUID, sequence: int) -> str:
    """One increment of a run's checkpoint; restoring concatenates the parts in key order."""
    return f"{checkpoint_prefix(solve_id, run_id)}{sequence:08d}.json"


def trajectory(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}trajectory.json"


def patch(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}patch.diff"


def post_images(solve_id: UUID, run_id: UUID) -> str:
    """The manifest of the changed files as the patch leaves them (path, mode, blob id, size)."""
    return f"{run_prefix(solve_id, run_id)}post-images.json"


def post_image(solve_id: UUID, run_id: UUID, blob: str) -> str:
    """One changed file's bytes after the patch, named by its git blob id."""
    return f"{run_prefix(solve_id, run_id)}post-images/{blob}"


def partial_diff(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}partial.diff"


def log(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}log.txt"


def test_output(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}tests.txt"


def champion_patch(solve_id: UUID) -> str:
    return f"{solve_prefix(solve_id)}champion.diff"


def error_detail(solve_id: UUID, run_id: UUID) -> str:
    """The full text of the error that ended a run (its events carry one line); part of its log."""
    return f"{run_prefix(solve_id, run_id)}error.txt"


def prepare_log(solve_id: UUID, run_id: UUID) -> str:
    return f"{run_prefix(solve_id, run_id)}prepare.log"


def batch_items(batch_id: UUID) -> str:
    """The items file a cloud batch's Distributed Map reads: `[{solve_id, instance_id}, …]`."""
    return f"batches/{batch_id}/items.json"


def batch_preds(batch_id: UUID) -> str:
    """preds.json of a cloud batch, stored when too large for a response and served by a link."""
    return f"batches/{batch_id}/preds.json"


def test_cases(solve_id: UUID, run_id: UUID) -> str:
    """Per-test outcomes of a run's verification (id → passed/failed/skipped), from JUnit XML."""
    return f"{run_prefix(solve_id, run_id)}test-cases.json"


def reproduce_script(solve_id: UUID, run_id: UUID) -> str:
    """An attempt's reproduction script, kept apart from its patch."""
    return f"{run_prefix(solve_id, run_id)}reproduce-script"
