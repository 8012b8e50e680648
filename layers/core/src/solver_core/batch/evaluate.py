"""`solver batch --evaluate`: each champion patch against the instance's hidden tests, in a fresh
sandbox, after the champion was chosen (docs/architecture.md, "Batches").

In the sandbox: the base commit and setup, the champion patch, then `test_patch`, then
`eval_command` with FAIL_TO_PASS + PASS_TO_PASS. Results are read per test id from the JUnit XML
the runner writes (pytest through `PYTEST_ADDOPTS=--junitxml=…`, jest-junit through
`JEST_JUNIT_OUTPUT_FILE`, any other to `$SOLVER_JUNIT_XML`, as for verification), else from pytest's
`-rA` summary lines. The hidden tests
reach no agent: they enter only this sandbox, which is created after choosing and killed after.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from solver_core.artifacts import keys
from solver_core.batch.instances import Instance, swebench_image
from solver_core.batch.outputs import (
    BatchState,
    InstanceRecord,
    InstanceReport,
    Report,
    TestsStatus,
    read_state,
    write_json,
)
from solver_core.batch.requests import IMAGE_BACKENDS
from solver_core.errors import ArtifactNotFound, SolverError
from solver_core.sandbox import repository
from solver_core.sandbox.base import SandboxSpec
from solver_core.selection.junit import MAX_REPORT_BYTES, ParseError, junit_key, junit_results

if TYPE_CHECKING:
    from solver_core.wiring import Container

log = logging.getLogger(__name__)

EVAL_DIR = ".solver-eval"
EVAL_LIFETIME_MARGIN_S = 600
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S+)")
PASSING = {"PASSED", "XFAIL"}


def summary_results(output: str) -> dict[str, bool]:
    """Per node id, from pytest's `-rA` short summary (PASSED id / FAILED id - reason)."""
    results: dict[str, bool] = {}
    for line in output.splitlines():
        if match := _SUMMARY.match(line.strip()):
            results[match.group(2)] = match.group(1) in PASSING
    return results


def _by_id(junit: dict[tuple[str, str], bool]) -> dict[str, list[bool]]:
    """Each testcase under the ids another runner's test list may use: its name alone (`TestAdd`,
    gotestsum), `classname::name` and `classname.name`."""
    ids: dict[str, list[bool]] = {}
    for (classname, name), passed in junit.items():
        for test_id in {name, f"{classname}::{name}", f"{classname}.{name}"}:
            ids.setdefault(test_id, []).append(passed)
    return ids


def grade(tests: list[str], junit: dict[tuple[str, str], bool], summary: dict[str, bool]) -> TestsStatus:
    """Each listed test by its JUnit testcase (pytest's node id, else the names other runners use; a
    name that several testcases share passes only if all of them pass), else by pytest's summary."""
    status = TestsStatus()
    ids = _by_id(junit)
    for test in tests:
        passed = junit.get(junit_key(test))
        if passed is None and test in ids:
            passed = all(ids[test])
        if passed is None:
            passed = summary.get(test, False)  # a test that never ran did not pass
        (status.success if passed else status.failure).append(test)
    return status


class Evaluator:
    def __init__(self, container: Container, output: Path) -> None:
        self.container = container
        self.output = output
        self._lock = threading.Lock()

    def path(self, instance_id: str) -> Path:
        return self.output / instance_id / "eval.json"

    def evaluate(self, instance: Instance, record: InstanceRecord) -> InstanceReport:
        """Evaluate the instance's champion and keep the result in `<id>/eval.json`."""
        patch = self._patch(record.solve_id)
        if not patch.strip():
            report = InstanceReport(patch_is_None=record.solve_id is None, patch_exists=False)
        else:
            try:
                assert record.solve_id is not None  # a patch comes from a solve
                report = self._run(instance, patch, self.container.runs.solve(record.solve_id).owner)
            except SolverError as exc:
                log.warning("evaluating %s failed: %s", instance.instance_id, exc)
                error = f"{type(exc).__name__}: {exc.message}"
                report = InstanceReport(patch_exists=True, error=error, infra_failure=exc.retryable)
        write_json(self.path(instance.instance_id), report)
        return report

    def _patch(self, solve_id: UUID | None) -> bytes:
        if solve_id is None:
            return b""
        try:
            return self.container.artifacts.get(keys.champion_patch(solve_id))
        except ArtifactNotFound:
            return b""

    def _token(self, owner: str, url: str) -> str | None:
        """The deployment's token for the host, only where the owner's allowlist covers the
        repository (as for the runs' own clones)."""
        deps = self.container.pipeline().deps
        token = deps.settings.host_token(url)
        if token is None or deps.allowlist.grant(owner, url) is not None:
            return token
        return None

    def _run(self, instance: Instance, patch: bytes, owner: str) -> InstanceReport:
        settings = self.container.settings
        sandboxes = self.container.pipeline().deps.sandboxes
        image = instance.image or (swebench_image(instance.instance_id) if settings.sandbox in IMAGE_BACKENDS else None)
        spec = SandboxSpec(
            metadata={"app": "solver", "stack": settings.stack_name, "evaluation": instance.instance_id},
            lifetime_s=settings.setup_timeout_s + settings.verify_timeout_s + EVAL_LIFETIME_MARGIN_S,
            template=image,
        )
        sandbox = sandboxes.create(spec)
        report = InstanceReport(patch_exists=True)
        try:
            repository.prepare(
                sandbox,
                repo=self._source(instance),
                ref=instance.base_commit,
                setup_command=instance.setup_command,
                issue_text="",
                token=self._token(owner, instance.source),
            )
            try:
                repository.apply_patch(sandbox, patch, repository.WORKDIR)
            except SolverError as exc:
                report.error = f"the champion patch does not apply: {exc.message}"
                return report
            report.patch_successfully_applied = True
            repository.apply_patch(sandbox, instance.test_patch.encode(), repository.WORKDIR)
            junit_file = f"{sandbox.home}/{EVAL_DIR}/junit.xml"
            sandbox.run(f'mkdir -p "$HOME/{EVAL_DIR}" && rm -f "{junit_file}"', timeout=30)
            tests = " ".join(shlex.quote(t) for t in instance.hidden_tests)
            result = sandbox.run(
                instance.eval_command.replace("{tests}", tests),
                cwd=sandbox.workdir,
                env=repository.junit_env(junit_file),
                timeout=settings.verify_timeout_s,
            )
            junit = self._junit(lambda path: sandbox.read_file(path, limit=MAX_REPORT_BYTES), junit_file)
            summary = summary_results(result.output)
        finally:
            sandboxes.kill(sandbox.id)
        report.tests_status = {
            "FAIL_TO_PASS": grade(instance.fail_to_pass, junit, summary),
            "PASS_TO_PASS": grade(instance.pass_to_pass, junit, summary),
        }
        report.resolved = all(not s.failure for s in report.tests_status.values())
        return report

    @staticmethod
    def _source(instance: Instance) -> str:
        source = instance.source
        if not source.startswith(("https://", "http://")) and Path(source).exists():
            return str(Path(source).resolve())
        return source

    @staticmethod
    def _junit(read: Callable[[str], bytes], path: str) -> dict[tuple[str, str], bool]:
        """The report's results; none when the runner wrote none (a backend says so with a SolverError
        or an OSError), or one that is unreadable or too large: then pytest's summary lines decide."""
        try:
            data = read(path)
            return junit_results(data) if len(data) <= MAX_REPORT_BYTES else {}
        except (SolverError, OSError, ParseError, ValueError):
            return {}

    def write_report(self, instances: list[Instance], state: BatchState, patches: dict[str, str]) -> Report:
        """report.json over every instance of this invocation (the harness's fields)."""
        reports: dict[str, InstanceReport] = {}
        for instance in instances:
            path = self.path(instance.instance_id)
            if path.exists():
                reports[instance.instance_id] = InstanceReport.model_validate_json(path.read_bytes())
        records = {i.instance_id: state.record(i.instance_id) for i in instances}
        report = build_report(records, reports, patches)
        with self._lock:
            write_json(self.output / "report.json", report)
        return report


def build_report(
    records: dict[str, InstanceRecord], reports: dict[str, InstanceReport], patches: dict[str, str]
) -> Report:
    """The harness's rules (swebench's `make_run_report`): an instance with a final outcome is
    submitted (it is in preds.json), others are incomplete; a submitted empty patch is
    `empty_patch`; a patch evaluated to a verdict is completed, resolved or not; any other submitted
    patch is an error."""
    submitted = sorted(iid for iid, r in records.items() if r.outcome.final)
    empty = sorted(iid for iid in submitted if not patches.get(iid, "").strip())
    completed = sorted(
        iid
        for iid in submitted
        if iid in reports and reports[iid].patch_successfully_applied and not reports[iid].error
    )
    resolved = sorted(iid for iid in completed if reports[iid].resolved)
    unresolved = sorted(iid for iid in completed if not reports[iid].resolved)
    errors = sorted(set(submitted) - set(empty) - set(completed))
    infra = sorted(iid for iid in errors if iid in reports and reports[iid].infra_failure)
    return Report(
        total_instances=len(records),
        submitted_instances=len(submitted),
        completed_instances=len(completed),
        resolved_instances=len(resolved),
        unresolved_instances=len(unresolved),
        infra_failure_instances=len(infra),
        ambiguous_failure_instances=0,
        empty_patch_instances=len(empty),
        error_instances=len(errors),
        completed_ids=completed,
        incomplete_ids=sorted(set(records) - set(submitted)),
        empty_patch_ids=empty,
        submitted_ids=submitted,
        resolved_ids=resolved,
        unresolved_ids=unresolved,
        infra_failure_ids=infra,
        ambiguous_failure_ids=[],
        failure_reasons={iid: reports[iid].error or "" for iid in infra},
        error_ids=errors,
        instances={iid: reports[iid] for iid in sorted(reports)},
    )


def pending_evaluations(output: Path, instances: list[Instance]) -> list[Instance]:
    """Instances with a final outcome whose evaluation is missing (an interrupted --evaluate)."""
    state = read_state(output / "batch.json")
    if state is None:
        return []
    return [
        i
        for i in instances
        if state.record(i.instance_id).outcome.final and not (output / i.instance_id / "eval.json").exists()
    ]
