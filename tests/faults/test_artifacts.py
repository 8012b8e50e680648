"""Fault: one write to the artifact store (S3, under moto) fails, as a put that still fails after
botocore's own retries would: a checkpoint part, the partial diff, the patch, the trajectory, the
test output or the champion patch.

`ArtifactError` is retryable: the run fails, is resumed from its checkpoint, and the solve
succeeds. That needs the checkpoint to restore every step even though one part was never written
(its messages travel with the next part), and the trajectory and the sandbox to be kept and
released on the way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from solver_core.artifacts import keys
from solver_core.errors import ArtifactError
from solver_core.ports import ArtifactStore
from solver_core.status import RunStatus, SolveStatus
from solver_core.workflow import agent_step
from tests.faults import invariants
from tests.faults.world import FIX, OWNER, SUBMIT, TEST_COMMAND, FaultWorld, fault_world

pytestmark = pytest.mark.faults

BUCKET = "solver-faults"
ACTIONS = ("cat calc.py", FIX, "cat calc.py", TEST_COMMAND, SUBMIT)


class FailsOnce:
    """The store, except that the first put of a key ending with `suffix` fails."""

    def __init__(self, inner: ArtifactStore, suffix: str) -> None:
        self.inner = inner
        self.suffix = suffix
        self.failed: str | None = None
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        with self._lock:
            fail = self.failed is None and key.endswith(self.suffix)
            if fail:
                self.failed = key
        if fail:
            raise ArtifactError(f"could not write artifact {key}: SlowDown (injected)")
        self.inner.put(key, data, content_type=content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def download_url(self, key: str) -> str | None:
        return self.inner.download_url(key)

    def check(self) -> None:
        self.inner.check()


@pytest.fixture(autouse=True)
def diff_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_step, "PARTIAL_DIFF_INTERVAL_S", 0.0)  # so the partial diff is written early


def world_failing_on(tmp_path: Path, canaries: list[str], suffix: str) -> Iterator[tuple[FaultWorld, FailsOnce]]:
    stores: list[FailsOnce] = []

    def wrap(store: ArtifactStore) -> ArtifactStore:
        stores.append(FailsOnce(store, suffix))
        return stores[0]

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        database = f"sqlite:///{tmp_path / 'db.sqlite'}"
        settings = {"artifacts_bucket": BUCKET, "aws_region": "us-east-1"}
        with fault_world(tmp_path, database, canaries, artifacts=wrap, **settings) as world:
            yield world, stores[0]


PUTS = ["checkpoint/00000003.json", "partial.diff", "patch.diff", "trajectory.json", "tests.txt"]


@pytest.mark.parametrize("suffix", PUTS)
def test_a_put_failing_once_costs_a_resume_and_loses_no_work(suffix: str, tmp_path: Path, canaries: list[str]) -> None:
    for world, store in world_failing_on(tmp_path, canaries, suffix):
        solve = world.start(models=[world.replay("work", *ACTIONS)])
        final = world.check(world.run(solve))
        assert store.failed is not None, f"{suffix} was never written"
        assert final.status is SolveStatus.SUCCEEDED, final.error
        (run,) = final.runs
        # Resumed once, where it was: no step taken twice (a lost checkpoint part would replay one).
        assert (run.status, run.attempt, run.steps) == (RunStatus.SUCCEEDED, 1, len(ACTIONS))
        assert invariants.trajectory_commands(world.container, run) == list(ACTIONS)
        assert run.tests is not None
        assert run.tests.passed


def test_a_champion_patch_put_failing_once_is_retried(tmp_path: Path, canaries: list[str]) -> None:
    """PickChampion retries the artifact store (ArtifactError), as the state machine's Retry does."""
    for world, store in world_failing_on(tmp_path, canaries, "champion.diff"):
        solve = world.start(models=[world.replay("work", *ACTIONS)])
        final = world.check(world.run(solve))
        assert store.failed is not None, "champion.diff was never written"
        assert final.status is SolveStatus.SUCCEEDED, final.error
        assert final.champion_run_id == final.runs[0].id
        assert world.container.artifacts.exists(keys.champion_patch(final.id))
        assert final.runs[0].attempt == 0  # the run itself was never disturbed


def test_a_retried_pick_champion_asks_the_judge_once_and_counts_its_cost_once(
    tmp_path: Path, canaries: list[str]
) -> None:
    """Two passing fixes of one size tie, so the selector model is asked; then storing the champion's
    patch fails once and PickChampion runs again. The judge's recorded pick is reused, not bought
    twice, and the solve's cost counts that one call."""
    judge_file = tmp_path / "judge.yaml"
    judge_file.write_text("actions:\n  - thought: run 1 divides floats\n    command: 'CHOICE: 1'\n    cost: 0.02\n")
    floats = "sed -i 's|sum(values) // len(values)|float(sum(values)) / len(values)|' calc.py"
    for world, store in world_failing_on(tmp_path, canaries, "champion.diff"):
        models = [world.replay("plain", FIX, SUBMIT), world.replay("floats", floats, SUBMIT)]
        solve = world.start(models=models, max_parallel=2, selector_model=f"replay:{judge_file}")
        final = world.check(world.run(solve))
        assert store.failed is not None, "champion.diff was never written"
        assert final.status is SolveStatus.SUCCEEDED, final.error
        assert final.selection is not None
        assert final.selection.judge is not None
        assert final.selection.judge.choice == 1
        assert final.champion_run_id == final.runs[1].id
        events = world.container.events.read(OWNER, final.id, limit=1000)
        asked = [e for e in events if e.message.startswith("selector model")]
        assert len(asked) == 1, [e.message for e in asked]
        assert final.selection_cost_usd == pytest.approx(0.02)
