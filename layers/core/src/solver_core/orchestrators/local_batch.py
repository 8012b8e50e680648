"""A cloud batch on one machine (`solver serve`): what statemachine/batch.asl.json does, with threads.
Each solve of the items file runs through the local orchestrator, at most `max_concurrency` at once;
a stop stops starting solves; FinishBatch ends it (docs/architecture.md, "Batches in the cloud")."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from solver_core.batch.cloud import BatchItem
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.ports import ArtifactStore
from solver_core.services.batches import BatchService, finish_batch
from solver_core.status import SOLVE_TERMINAL, SolveStatus

log = logging.getLogger(__name__)


class LocalBatchOrchestrator:
    name = "local"

    def __init__(self, orchestrator: LocalOrchestrator, batches: BatchService, artifacts: ArtifactStore) -> None:
        self._solves = orchestrator
        self._batches = batches
        self._artifacts = artifacts
        self._stopped: dict[UUID, threading.Event] = {}
        self._threads: dict[UUID, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, batch_id: UUID, items_key: str, max_concurrency: int) -> str:
        with self._lock:
            if batch_id not in self._threads:
                self._stopped[batch_id] = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(batch_id, items_key, max_concurrency), name=f"batch-{batch_id}", daemon=True
                )
                self._threads[batch_id] = thread
                thread.start()
        return f"local-batch:{batch_id}"

    def stop(self, batch_id: UUID, execution_ref: str | None, reason: str) -> None:
        with self._lock:
            event = self._stopped.get(batch_id)
        if event is not None:
            event.set()

    def wait(self, batch_id: UUID, timeout: float | None = None) -> bool:
        thread = self._threads.get(batch_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self, batch_id: UUID, items_key: str, max_concurrency: int) -> None:
        error: str | None = None
        try:
            items = [BatchItem.model_validate(i) for i in json.loads(self._artifacts.get(items_key))]
            with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="batch-solve") as pool:
                list(pool.map(lambda item: self._solve(batch_id, item), items))
        except Exception as exc:  # the state machine's Catch on the Map: FinishBatch with the error
            log.exception("batch %s failed", batch_id)
            error = f"{type(exc).__name__}: {exc}"
        flow = self._solves.flow
        finish_batch(self._batches, self._solves.pipeline.deps.runs, flow, batch_id, error)

    def _solve(self, batch_id: UUID, item: BatchItem) -> None:
        """One iteration: run the solve to its end; one failing never stops the others."""
        if self._stopped[batch_id].is_set():
            return
        solve = self._solves.pipeline.deps.runs.solve(item.solve_id)
        if solve.status in SOLVE_TERMINAL or solve.status is SolveStatus.CANCELLING:
            return
        try:
            self._solves.execute(item.solve_id)
        except Exception as exc:
            log.exception("solve %s of batch %s failed outside its runs", item.solve_id, batch_id)
            self._solves.flow.fail(item.solve_id, type(exc).__name__, str(exc))
