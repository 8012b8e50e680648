"""The steps of one run, shared by the Step Functions handlers and the local orchestrator.

Each step takes ids, reads what it needs from the database, does its work and records the result,
so any step can run in a fresh process (a Lambda invocation) after the previous one.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid4

from solver_core.agent.redact import Redactor
from solver_core.artifacts import keys
from solver_core.errors import (
    IllegalTransition,
    RepositoryError,
    RepositoryNotAllowed,
    RunCancelled,
    SandboxCapacityExceeded,
    SandboxGone,
    SolverError,
    is_retryable,
)
from solver_core.models import RunKind, ScriptResult, TestCounts, TestResult, VerifyIn, reproduce_command_of
from solver_core.ports import ArtifactStore, Sandbox, SandboxBackend
from solver_core.sandbox import repository
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.detached import CommandSpec, JobResult
from solver_core.selection import consensus
from solver_core.selection.junit import CaseOutcome
from solver_core.services.allowlist import AllowlistService
from solver_core.services.events import EventService
from solver_core.services.runs import RunContext, RunService
from solver_core.settings import Settings
from solver_core.status import RUN_TERMINAL, EventKind, RunStatus, SolveStatus
from solver_core.workflow.commands import UNLIMITED, Progress, StepCommands, Window
from solver_core.workflow.post_images import store_post_images
from solver_core.workflow.verification import STEP as VERIFY_STEP
from solver_core.workflow.verification import CloneFrom, PhasedVerification

MAX_TEST_OUTPUT = 200_000
CLONE_LOG_CHARS = 4000  # what the prepare log keeps of the clone's output (a few lines when it works)
# A sandbox outlives its run's time limit by its commands' own deadlines (clone, setup, setup again
# and tests for verification: they happen outside the agent's clock) and this margin. The lifetime
# is the leak backstop if every cleanup path fails.
SANDBOX_LIFETIME_MARGIN_S = 1800
T = TypeVar("T")


@dataclass(frozen=True)
class StepDeps:
    settings: Settings
    runs: RunService
    events: EventService
    artifacts: ArtifactStore
    sandboxes: SandboxBackend
    redactor: Redactor
    allowlist: AllowlistService


class RunSteps:
    def __init__(self, deps: StepDeps) -> None:
        self.deps = deps
        self.commands = StepCommands(deps.runs)

    # --- helpers -----------------------------------------------------------------------------

    def log(
        self, ctx: RunContext, message: str, *, kind: EventKind = EventKind.LOG, data: dict[str, Any] | None = None
    ) -> None:
        redact = self.deps.redactor
        self.deps.events.append(
            ctx.solve.id, kind, redact.redact(message), run_id=ctx.run.id, data=redact.redact_data(data)
        )

    def _check_cancelled(self, run_id: UUID) -> None:
        if self.deps.runs.stop_reason(run_id):
            raise RunCancelled("the solve is being cancelled")

    def _advance(self, ctx: RunContext, target: RunStatus) -> None:
        """Move the run forward unless it is already there (a retried step must be idempotent)."""
        if ctx.run.status is target:
            return
        self.deps.runs.move(ctx.run.id, target)

    def sandbox(self, ctx: RunContext) -> Sandbox:
        if not ctx.run.sandbox_id:
            raise SandboxGone(f"run {ctx.run.id} has no sandbox")
        return self.deps.sandboxes.connect(ctx.run.sandbox_id)

    # --- the steps ---------------------------------------------------------------------------

    def launch(self, run_id: UUID) -> str:
        """LaunchSandbox: respect the global cap and the owner's share of it, then create (or find
        again) the run's sandbox."""
        self._check_cancelled(run_id)
        ctx = self.deps.runs.context(run_id)
        if ctx.run.status is RunStatus.LAUNCHING and ctx.run.sandbox_id:
            return ctx.run.sandbox_id
        cap, share = self.deps.settings.max_live_sandboxes, self.deps.settings.max_live_sandboxes_per_owner
        if not self.deps.runs.claim_sandbox_slot(run_id, cap, share):
            raise SandboxCapacityExceeded(f"no sandbox slot: at most {cap} may be live, {share} of them per owner")
        self._start_solve(ctx)
        if ctx.run.kind is RunKind.CHECK:  # its one sandbox is VerifyPatch's, under the slot claimed here
            return ""
        spec = SandboxSpec(
            metadata=self._metadata(ctx, ctx.run.kind.value if ctx.run.kind is RunKind.BASELINE else "agent"),
            lifetime_s=ctx.solve.limits.time_limit_s + self._commands_budget_s() + SANDBOX_LIFETIME_MARGIN_S,
            idempotency_key=f"{ctx.run.id}-{ctx.run.attempt}",
            template=ctx.solve.sandbox_image or self.deps.settings.sandbox_template,
        )
        sandbox = self.deps.sandboxes.create(spec)
        if not self.deps.runs.set_fields(run_id, sandbox_id=sandbox.id):
            # The run ended (a cancel) while its sandbox was being created: no one else knows this
            # sandbox, so no release or cancel would ever kill it (the fault suite found it leaking).
            with contextlib.suppress(SolverError):
                self.deps.sandboxes.kill(sandbox.id)
            raise RunCancelled(f"run {run_id} ended while its sandbox was being created")
        self.log(ctx, f"sandbox {sandbox.id} started ({self.deps.sandboxes.name})", data={"sandbox_id": sandbox.id})
        return sandbox.id

    def _commands_budget_s(self) -> int:
        settings = self.deps.settings
        return settings.clone_timeout_s + 2 * settings.setup_timeout_s + settings.verify_timeout_s

    def _metadata(self, ctx: RunContext, purpose: str) -> dict[str, str]:
        """What the sweeper finds a run's sandboxes by (`purpose`: agent, baseline or verify)."""
        return {
            "app": "solver",
            "stack": self.deps.settings.stack_name,
            "solve_id": str(ctx.solve.id),
            "run_id": str(ctx.run.id),
            "purpose": purpose,
        }

    def _start_solve(self, ctx: RunContext) -> None:
        if ctx.solve.status is SolveStatus.QUEUED:
            with contextlib.suppress(IllegalTransition):  # another run started it first
                self.deps.runs.move_solve(ctx.solve.id, SolveStatus.RUNNING)

    def prepare(self, run_id: UUID, window: Window = UNLIMITED) -> bool:
        """PrepareRepository: clone, check out and set up (detached commands, checked on across
        invocations); on a resumed run, re-apply its partial diff. True once the repository is ready;
        False: call again (the state machine waits, then does)."""
        self._check_cancelled(run_id)
        ctx = self.deps.runs.context(run_id)
        self._advance(ctx, RunStatus.PREPARING)
        if ctx.run.kind is RunKind.CHECK:  # VerifyPatch clones and sets up in its own fresh sandbox
            return True
        sandbox = self.sandbox(ctx)
        settings = self.deps.settings
        repo = ctx.solve.repo_url
        progress = self.commands.progress(run_id, "prepare", sandbox)
        if not progress.finished("clone"):
            token, withheld = self._clone_token(ctx)
            timeout = settings.clone_timeout_s

            def clone() -> CommandSpec:
                return repository.clone_spec(sandbox, repo=repo, ref=ctx.solve.ref, token=token, timeout_s=timeout)

            cloned = self.commands.run(run_id, progress, "clone", sandbox=sandbox, spec=clone, window=window)
            if cloned is None:
                return False
            base = self._cloned(cloned, repo, withheld=withheld)
            self.commands.complete(run_id, progress, "clone", base_commit=base, log=cloned.output[-CLONE_LOG_CHARS:])
        if not progress.finished("setup"):
            setup_timeout = settings.setup_timeout_s

            def setup() -> CommandSpec:
                return repository.setup_spec(sandbox, repository.WORKDIR, ctx.solve.setup_command, setup_timeout)

            done = self.commands.run(run_id, progress, "setup", sandbox=sandbox, spec=setup, window=window)
            if done is None:
                return False
            warnings = repository.set_up(done)
            log = progress.facts.get("log", "") + done.output
            self.deps.artifacts.put(keys.prepare_log(ctx.solve.id, run_id), self.deps.redactor.redact(log).encode())
            for warning in warnings:
                self.log(ctx, f"setup warning: {warning}")
            self.commands.complete(run_id, progress, "setup")
        if window.left() <= 0:
            return False
        base = progress.facts["base_commit"]
        repository.finish_prepare(sandbox, repo=repo, issue_text=issue_text(ctx), timeout_s=window.bound(30))
        found = None
        if ctx.solve.test_command is None and ctx.solve.detect_tests:
            found = repository.parse_detected(repository.run_detection(sandbox, window.bound(120)))
        self.deps.runs.set_fields(run_id, base_commit=base, detected_test_command=found.command if found else None)
        self._log_tests(ctx, found)
        partial = keys.partial_diff(ctx.solve.id, run_id)
        if not progress.finished("resume") and self.deps.artifacts.exists(partial):
            patch = self.deps.artifacts.get(partial)
            repository.apply_patch(sandbox, patch, repository.WORKDIR, timeout_s=window.bound(120))
            self.commands.complete(run_id, progress, "resume")
            self.log(ctx, "resumed: the checkpointed changes were applied to the fresh checkout")
        self.commands.clear(run_id)
        self.log(ctx, f"repository ready at {base[:12]}", data={"base_commit": base})
        return True

    @staticmethod
    def _cloned(result: JobResult, repo: str, *, withheld: bool) -> str:
        try:
            return repository.cloned(result, repo)
        except RepositoryError as exc:
            if withheld and not exc.retryable and exc.message.startswith("could not clone"):
                raise RepositoryNotAllowed(
                    "not on the owner's allowlist, so cloned without the deployment's credentials, and that "
                    f"failed (if the repository is private, an administrator adds it with `solver owners add`): "
                    f"{exc.message}"
                ) from exc
            raise

    def _log_tests(self, ctx: RunContext, found: repository.DetectedTests | None) -> None:
        if ctx.solve.test_command is not None:
            return
        if not ctx.solve.detect_tests:
            self.log(ctx, "tests: none (detection turned off); the champion is chosen without tests")
        elif found is None:
            self.log(ctx, "tests: no test command given and none detected; give one with --test-command")
        else:
            data = {"test_command": found.command, "detected": True, "reason": found.reason}
            self.log(ctx, f"tests: detected `{found.command}` ({found.reason})", data=data)
            for warning in found.warnings:
                self.log(ctx, f"tests: warning: {warning}")

    def _clone_token(self, ctx: RunContext) -> tuple[str | None, bool]:
        """The deployment's token for the repository's host, only where the owner's allowlist covers
        the repository; otherwise the clone is anonymous. Also says whether a token was withheld."""
        token = self.deps.settings.host_token(ctx.solve.repo_url)
        if token is None or self.deps.allowlist.grant(ctx.solve.owner, ctx.solve.repo_url) is not None:
            return token, False
        return None, True

    def collect(self, run_id: UUID) -> bool:
        """CollectArtifacts: the patch (computed by us), its stats, the trajectory and the log."""
        ctx = self.deps.runs.context(run_id)
        self._advance(ctx, RunStatus.COLLECTING)
        if ctx.run.kind is RunKind.CHECK:
            return self._collect_check(ctx)
        base = ctx.run.base_commit
        if not base:
            raise SandboxGone("the run has no base commit; its repository was never prepared")
        sandbox = self.sandbox(ctx)
        limit = self.deps.settings.max_patch_bytes
        if ctx.solve.reproduce and ctx.run.kind is RunKind.ATTEMPT:
            patch, wrote = repository.diff_without(sandbox, base, ctx.solve.reproduce_path, max_bytes=limit)
            self._keep_script(ctx, sandbox, ctx.solve.reproduce_path if wrote else None)
        else:
            patch = repository.diff(sandbox, base, max_bytes=limit)
        stats = repository.patch_stats(patch)
        patch_key = keys.patch(ctx.solve.id, run_id)
        self.deps.artifacts.put(patch_key, patch, content_type="text/x-diff")
        if stats.files:  # while the sandbox exists: what publishing makes blobs of
            store_post_images(self.deps.artifacts, sandbox, ctx.solve.id, run_id, patch)
        group = consensus_group(sandbox, patch) if stats.files else None
        self.deps.runs.set_fields(
            run_id,
            patch_key=patch_key,
            patch_stats={"files": stats.files, "added": stats.added, "removed": stats.removed, "group": group},
        )
        self.log(ctx, f"patch: {stats.files} files, +{stats.added} -{stats.removed}", data=vars(stats))
        return stats.files > 0

    def _keep_script(self, ctx: RunContext, sandbox: Sandbox, path: str | None) -> None:
        """The attempt's reproduction script (`path`; None: it wrote none there), stored apart from
        its patch (which leaves it out)."""
        script = repository.read_script(sandbox, path) if path is not None else None
        if script is None:
            where = ctx.solve.reproduce_path
            self.log(ctx, f"reproduction: no script written at {where} (or over {repository.MAX_SCRIPT_BYTES} bytes)")
            return
        key = keys.reproduce_script(ctx.solve.id, ctx.run.id)
        self.deps.artifacts.put(key, script, content_type="text/plain")
        self.deps.runs.set_fields(ctx.run.id, reproduce_key=key)
        self.log(ctx, f"reproduction: kept {path} ({len(script)} bytes), left out of the patch")

    def _collect_check(self, ctx: RunContext) -> bool:
        """A check's patch is its candidate's (the base commit's check: none)."""
        plan = ctx.run.reproduction
        target = plan.target_run_id if plan is not None else None
        patch = self.deps.artifacts.get(keys.patch(ctx.solve.id, target)) if target is not None else b""
        patch_key = keys.patch(ctx.solve.id, ctx.run.id)
        self.deps.artifacts.put(patch_key, patch, content_type="text/x-diff")
        stats = repository.patch_stats(patch)
        self.deps.runs.set_fields(
            ctx.run.id,
            patch_key=patch_key,
            patch_stats={"files": stats.files, "added": stats.added, "removed": stats.removed},
        )
        return True

    def verify(self, run_id: UUID, window: Window = UNLIMITED) -> bool:
        """VerifyPatch: the test command on the base commit with the stored patch applied, in a new
        sandbox (or, with `verify_in: same_sandbox`, a hardened checkout in the agent's); then the
        run succeeds. True once it did; False: its commands still run (or no time was left to start
        one), call again."""
        ctx = self.deps.runs.context(run_id)
        command, detected = test_command_of(ctx)
        has_patch = bool(ctx.run.patch_stats and ctx.run.patch_stats.files)
        if ctx.run.kind is RunKind.CHECK:
            self._check_cancelled(run_id)
            self._advance(ctx, RunStatus.VERIFYING)
            if not self._run_scripts(ctx, window):
                return False
        elif command and (has_patch or ctx.run.kind is RunKind.BASELINE):  # the baseline tests the base commit
            self._check_cancelled(run_id)
            self._advance(ctx, RunStatus.VERIFYING)
            if not self._run_tests(ctx, command, window, detected=detected):
                return False
        # A succeeded run no longer counts against the global cap, so its sandbox goes first (the
        # contract test of the cap saw two live at once); ReleaseSandbox then finds it gone.
        sandbox_id = self.deps.runs.get(run_id).sandbox_id
        if sandbox_id:
            with contextlib.suppress(SolverError):
                self.deps.sandboxes.kill(sandbox_id)
        self.deps.runs.move(run_id, RunStatus.SUCCEEDED)
        return True

    def _run_tests(self, ctx: RunContext, command: str, window: Window, *, detected: bool = False) -> bool:
        assert ctx.run.base_commit is not None
        if window.left() <= 0:
            return False
        settings = self.deps.settings
        job = repository.VerifyJob(
            base=ctx.run.base_commit,
            patch=self.deps.artifacts.get(keys.patch(ctx.solve.id, ctx.run.id)),
            test_command=command,
            setup_command=ctx.solve.setup_command,
            timeout_s=settings.verify_timeout_s,
            setup_timeout_s=settings.setup_timeout_s,
            clone_timeout_s=settings.clone_timeout_s,
        )
        phases = PhasedVerification(self.commands, ctx.run.id, window)
        if ctx.solve.verify_in is VerifyIn.SAME_SANDBOX:
            sandbox = self.sandbox(ctx)
            progress = self.commands.progress(ctx.run.id, VERIFY_STEP, sandbox)
            # Its worktree goes with the sandbox, which VerifyPatch kills next.
            outcome = phases.advance(progress, sandbox, job, clone_from=None)
        else:
            outcome = self._verify_in_fresh_sandbox(ctx, job, phases)
        if outcome is None:
            return False
        self._record_tests(ctx, outcome, detected=detected)
        self.commands.clear(ctx.run.id)
        return True

    def _run_scripts(self, ctx: RunContext, window: Window) -> bool:
        """A check: every attempt's reproduction script on its target, in a fresh sandbox (clone at
        the base commit, the candidate's patch, setup, then each script in turn)."""
        assert ctx.run.base_commit is not None
        assert ctx.run.reproduction is not None
        if window.left() <= 0:
            return False
        settings, plan = self.deps.settings, ctx.run.reproduction
        job = repository.VerifyJob(
            base=ctx.run.base_commit,
            patch=self.deps.artifacts.get(keys.patch(ctx.solve.id, ctx.run.id)),
            test_command=reproduce_command_of(ctx.solve.reproduce_path, ctx.solve.reproduce_command),
            setup_command=ctx.solve.setup_command,
            timeout_s=settings.reproduce_timeout_s,
            setup_timeout_s=settings.setup_timeout_s,
            clone_timeout_s=settings.clone_timeout_s,
        )
        scripts = [self.deps.artifacts.get(keys.reproduce_script(ctx.solve.id, a.run_id)) for a in plan.authors]
        phases = PhasedVerification(self.commands, ctx.run.id, window)
        results = self._in_fresh_sandbox(
            ctx, lambda progress, box, source: phases.advance_scripts(
                progress, box, job, scripts, ctx.solve.reproduce_path, clone_from=source
            )
        )  # fmt: skip
        if results is None:
            return False
        found = [
            ScriptResult(
                author_run_id=author.run_id, author_index=author.index, exit_code=None if r.timed_out else r.returncode,
                passed=r.ok, timed_out=r.timed_out,
            )
            for author, r in zip(plan.authors, results, strict=True)
        ]  # fmt: skip
        done = plan.model_copy(update={"scripts": found})
        self.deps.runs.set_fields(ctx.run.id, reproduction=done.model_dump(mode="json"))
        self.commands.clear(ctx.run.id)
        target = "the base commit" if plan.target_run_id is None else f"run {self._index_of(ctx, plan.target_run_id)}"
        outcomes = ", ".join(f"run {s.author_index}'s {'passes' if s.passed else 'fails'}" for s in found)
        self.log(ctx, f"reproduction on {target}: {outcomes}", data=done.model_dump(mode="json"))
        return True

    def _index_of(self, ctx: RunContext, run_id: UUID) -> int:
        return self.deps.runs.get(run_id).index

    def _record_tests(self, ctx: RunContext, outcome: repository.Verification, *, detected: bool) -> TestResult:
        command = outcome.command
        output_key = keys.test_output(ctx.solve.id, ctx.run.id)
        output = self.deps.redactor.redact(outcome.output)[-MAX_TEST_OUTPUT:]
        self.deps.artifacts.put(output_key, output.encode(), content_type="text/plain")
        result = TestResult(
            command=outcome.command,
            exit_code=outcome.exit_code,
            passed=outcome.passed,
            duration_s=outcome.duration_s,
            output_key=output_key,
            detected=detected,
            modifies_tests=bool(outcome.test_changes),
            test_changes=[self.deps.redactor.redact(change) for change in outcome.test_changes],
            per_test=self._store_cases(ctx, outcome.cases),
        )
        self.deps.runs.set_fields(ctx.run.id, tests=result.model_dump(mode="json"))
        verdict = "passed" if outcome.passed else ("timed out" if outcome.timed_out else "failed")
        how = f", detected `{command}`" if detected else ""
        flagged = ", the patch modifies tests" if result.modifies_tests else ""
        counts = f", {result.per_test.passed} passed, {result.per_test.failed} failed" if result.per_test else ""
        what = "baseline: tests on the base commit" if ctx.run.kind is RunKind.BASELINE else "tests"
        self.log(
            ctx,
            f"{what} {verdict} (exit {outcome.exit_code}, {outcome.duration_s:.1f}s{how}{counts}){flagged}",
            data=result.model_dump(mode="json"),
        )
        return result

    def _store_cases(self, ctx: RunContext, cases: dict[str, CaseOutcome] | None) -> TestCounts | None:
        """Per-test outcomes for PickChampion's comparison with the baseline (an artifact: a suite
        can have thousands); their counts go on the run."""
        if not cases:
            return None
        data = {self.deps.redactor.redact(name): outcome.value for name, outcome in cases.items()}
        self.deps.artifacts.put(keys.test_cases(ctx.solve.id, ctx.run.id), json.dumps(data).encode())
        counts = Counter(cases.values())
        return TestCounts(
            passed=counts[CaseOutcome.PASSED], failed=counts[CaseOutcome.FAILED], skipped=counts[CaseOutcome.SKIPPED]
        )

    def _verify_in_fresh_sandbox(
        self, ctx: RunContext, job: repository.VerifyJob, phases: PhasedVerification
    ) -> repository.Verification | None:
        return self._in_fresh_sandbox(
            ctx, lambda progress, box, source: phases.advance(progress, box, job, clone_from=source)
        )

    def _in_fresh_sandbox(
        self, ctx: RunContext, advance: Callable[[Progress, Sandbox, CloneFrom], T | None]
    ) -> T | None:
        """`advance` in the verification sandbox this step made earlier (still the run's sandbox), or
        a new one. It is killed with the run's sandbox: at the end of VerifyPatch, or on failure."""
        progress = self.commands.stored(ctx.run.id, VERIFY_STEP)
        if progress is not None and progress.sandbox_id == ctx.run.sandbox_id:
            box = self.deps.sandboxes.connect(progress.sandbox_id)
        else:
            box = self._launch_verification(ctx)
            progress = Progress(step=VERIFY_STEP, sandbox_id=box.id)
            self.commands.save(ctx.run.id, progress)
        token, _withheld = self._clone_token(ctx)  # the owner's allowlist governs this clone too
        return advance(progress, box, CloneFrom(ctx.solve.repo_url, token))

    def _launch_verification(self, ctx: RunContext) -> Sandbox:
        """A new sandbox for verification. The run hands its slot of the global cap over: the
        agent's sandbox (its patch is stored) is killed first, so a run never holds two. The new id
        replaces the run's `sandbox_id`, so every path that kills a run's sandbox (release, failure,
        cancel) kills this one; the sweeper finds it by its metadata. A retried VerifyPatch starts
        over in another new sandbox."""
        self._check_cancelled(ctx.run.id)
        if ctx.run.sandbox_id:
            self.deps.sandboxes.kill(ctx.run.sandbox_id)
        settings = self.deps.settings
        spec = SandboxSpec(
            metadata=self._metadata(ctx, "verify"),
            lifetime_s=settings.clone_timeout_s
            + settings.setup_timeout_s
            + settings.verify_timeout_s
            + SANDBOX_LIFETIME_MARGIN_S,
            idempotency_key=f"{ctx.run.id}-{ctx.run.attempt}-verify-{uuid4().hex[:12]}",
            template=ctx.solve.sandbox_image or settings.sandbox_template,  # the same image as the agent's
        )
        box = self.deps.sandboxes.create(spec)
        if not self.deps.runs.set_fields(ctx.run.id, sandbox_id=box.id):
            with contextlib.suppress(SolverError):
                self.deps.sandboxes.kill(box.id)
            raise RunCancelled(f"run {ctx.run.id} ended while its verification sandbox was being created")
        self.log(ctx, f"verification sandbox {box.id} started", data={"sandbox_id": box.id, "purpose": "verify"})
        return box

    def release(self, run_id: UUID) -> bool:
        """ReleaseSandbox: kill the run's sandbox; gone already is fine."""
        ctx = self.deps.runs.context(run_id)
        if not ctx.run.sandbox_id:
            return False
        try:
            killed = self.deps.sandboxes.kill(ctx.run.sandbox_id)
        except SolverError as exc:
            self.log(ctx, f"could not kill sandbox {ctx.run.sandbox_id}: {exc}", kind=EventKind.ERROR)
            return False
        self.log(ctx, f"sandbox {ctx.run.sandbox_id} released")
        return killed

    def record_failure(self, run_id: UUID, error: str, message: str, *, retryable: bool | None = None) -> RunStatus:
        """RecordRunFailure: kill the sandbox, keep the trajectory, mark the run failed (or cancelled);
        `retryable` overrides what the error's name says."""
        ctx = self.deps.runs.context(run_id)
        self.release(run_id)
        if ctx.run.status in RUN_TERMINAL:
            return ctx.run.status
        message = self.deps.redactor.redact(message)
        cancelled = error == RunCancelled.__name__ or self.deps.runs.stop_reason(run_id) is not None
        target = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
        self.log(ctx, f"{error}: {message}", kind=EventKind.ERROR, data={"error": error})
        with contextlib.suppress(IllegalTransition):  # a concurrent cancel or finish got there first
            if cancelled:  # whatever the step died of (its sandbox killed under it), as the cancel's finish says it
                self.deps.runs.move(run_id, target, error="cancelled")
            else:
                self.deps.runs.move(
                    run_id,
                    target,
                    error=f"{error}: {message}",
                    retryable=is_retryable(error) if retryable is None else retryable,
                    exit_status=ctx.run.exit_status or error,
                )
        return target


def consensus_group(sandbox: Sandbox, patch: bytes) -> str:
    """The patch's consensus group (selection/consensus.py): from the post-images of the files it
    changes, read from the checkout it was computed in (Python compared by syntax tree); from the
    diff's lines when a file cannot be read whole."""
    images = repository.post_images(sandbox, patch)
    key = consensus.key_from_files(images) if images is not None else consensus.key_from_diff(patch)
    return key[:16]


def test_command_of(ctx: RunContext) -> tuple[str | None, bool]:
    """(the command to verify with, whether it was detected): an explicit command always wins."""
    if ctx.solve.test_command:
        return ctx.solve.test_command, False
    if ctx.solve.detect_tests and ctx.run.detected_test_command:
        return ctx.run.detected_test_command, True
    return None, False


def issue_text(ctx: RunContext) -> str:
    issue = ctx.solve.issue
    parts = [f"# {issue.title}", "", issue.body.strip()]
    if issue.url:
        parts += ["", f"Issue: {issue.url}"]
    if ctx.solve.reproduce and ctx.run.kind is RunKind.ATTEMPT:
        parts += ["", reproduce_instructions(ctx.solve.reproduce_path, ctx.solve.reproduce_command)]
    return "\n".join(parts).strip() + "\n"


def reproduce_instructions(path: str, command: str | None) -> str:
    """What an attempt is asked to write besides its fix (docs/architecture.md, "Choosing the champion")."""
    runs = reproduce_command_of(path, command)
    return (
        f"Besides fixing the issue, write a reproduction script at `{path}` (relative to the repository "
        f"root). Run from the repository root with `{runs}`, it must exit with a non-zero status while the "
        "issue is present and with status 0 once it is fixed. Keep it small and self-contained, and leave it "
        "in place: it is kept apart from your patch and run against every candidate fix."
    )
