"""VerifyPatch's commands across invocations (docs/architecture.md, "Verification" and "Long
commands across invocations").

A verification is a checkout (a clone at the base commit in a fresh sandbox, or a new worktree
under a new HOME in the agent's), the stored patch applied to it, setup, and the test command. The
clone, setup and tests run detached through `StepCommands`, each a phase recorded in the run's
`runs.commands`, so each invocation picks up where the last one stopped. The short synchronous
phases (the worktree, applying the patch) get what the invocation has left as their limit and are
done again whole when it cut them off.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from solver_core.errors import CommandLost, RepositoryError, RunCancelled
from solver_core.ports import Sandbox
from solver_core.sandbox import repository
from solver_core.sandbox.detached import CommandSpec, JobResult
from solver_core.sandbox.repository import Checkout, Verification, VerifyJob
from solver_core.workflow.commands import Progress, StepCommands, Window

STEP = "verify"
SYNC_TIMEOUT_S = 120  # a worktree, a reset and `git apply`: short, even on a slow sandbox

T = TypeVar("T")


@dataclass(frozen=True)
class CloneFrom:
    """Where a fresh sandbox's verification clones from; the token is the one the owner's allowlist
    grants (None: anonymous)."""

    repo: str
    token: str | None = None


class PhasedVerification:
    """One verification in one sandbox: `advance` does what the window allows and returns the
    verdict once the test command ended; None means "not yet, call again"."""

    def __init__(self, commands: StepCommands, run_id: UUID, window: Window) -> None:
        self.commands = commands
        self.run_id = run_id
        self.window = window

    def advance(
        self, progress: Progress, sandbox: Sandbox, job: VerifyJob, *, clone_from: CloneFrom | None
    ) -> Verification | None:
        """`clone_from`: clone into this sandbox, which the agent never used; None: an isolated
        worktree in the agent's sandbox (`verify_in: same_sandbox`)."""
        checkout = self._ready(progress, sandbox, job, clone_from)
        if checkout is None:
            return None
        # The report's path is kept with the command (saved when it starts), so the invocation that
        # finds the tests ended reads the report they wrote.
        report = progress.facts.setdefault("junit_report", repository.junit_report(checkout))
        tests = self._detached(progress, "tests", sandbox, lambda: repository.test_spec(job, checkout, report))
        if tests is None:
            return None
        changes = json.loads(progress.facts["test_changes"])
        return repository.verification(job, tests, changes, repository.read_junit(sandbox, report))

    def advance_scripts(
        self,
        progress: Progress,
        sandbox: Sandbox,
        job: VerifyJob,
        scripts: list[bytes],
        path: str,
        *,
        clone_from: CloneFrom,
    ) -> list[JobResult] | None:
        """A reproduction check: the same checkout, patch and setup, then each script copied to
        `path` and run with the job's command (`job.test_command`), one detached phase each; their
        results in order once the last one ended."""
        checkout = self._ready(progress, sandbox, job, clone_from)
        if checkout is None:
            return None
        if not progress.finished("scripts"):
            if self._sync(lambda _limit: repository.write_scripts(sandbox, checkout, scripts)) is None:
                return None
            self.commands.complete(self.run_id, progress, "scripts")
        results: list[JobResult] = []
        for number in range(len(scripts)):
            phase = f"reproduce-{number}"
            if progress.finished(phase):
                found = json.loads(progress.facts[phase])
                results.append(JobResult(output="", returncode=found["returncode"], timed_out=found["timed_out"]))
                continue
            script = f"{checkout.home}/.solver/reproduce-{number}"

            def spec(script: str = script) -> CommandSpec:
                return repository.script_spec(checkout, script, path, job.test_command, job.timeout_s)

            result = self._detached(progress, phase, sandbox, spec)
            if result is None:
                return None
            outcome = json.dumps({"returncode": result.returncode, "timed_out": result.timed_out})
            self.commands.complete(self.run_id, progress, phase, **{phase: outcome})
            results.append(result)
        return results

    def _ready(
        self, progress: Progress, sandbox: Sandbox, job: VerifyJob, clone_from: CloneFrom | None
    ) -> Checkout | None:
        """The checkout with the patch applied and set up; None: not yet."""
        checkout = self._checkout(progress, sandbox, job, clone_from)
        if checkout is None:
            return None
        if not progress.finished("apply"):
            apply = repository.apply_for_verification
            changes = self._sync(lambda limit: apply(sandbox, job, checkout, timeout_s=limit))
            if changes is None:
                return None
            self.commands.complete(self.run_id, progress, "apply", test_changes=json.dumps(changes))
        if not progress.finished("setup"):
            setup = self._detached(progress, "setup", sandbox, lambda: repository.verify_setup_spec(job, checkout))
            if setup is None:
                return None
            repository.set_up(setup)
            self.commands.complete(self.run_id, progress, "setup")
        return checkout

    def _checkout(
        self, progress: Progress, sandbox: Sandbox, job: VerifyJob, clone_from: CloneFrom | None
    ) -> Checkout | None:
        if clone_from is not None:
            if not progress.finished("clone"):

                def clone() -> CommandSpec:
                    return repository.verify_clone_spec(sandbox, job, repo=clone_from.repo, token=clone_from.token)

                cloned = self._detached(progress, "clone", sandbox, clone)
                if cloned is None:
                    return None
                repository.verify_cloned(cloned, job, clone_from.repo)
                self.commands.complete(self.run_id, progress, "clone")
            return Checkout.fresh(sandbox)
        if not progress.finished("checkout"):
            made = self._sync(lambda limit: repository.isolated_checkout(sandbox, job, timeout_s=limit))
            if made is None:
                return None
            self.commands.complete(self.run_id, progress, "checkout", home=made.home)
        return Checkout.isolated(progress.facts["home"])

    def _detached(
        self, progress: Progress, phase: str, sandbox: Sandbox, spec: Callable[[], CommandSpec]
    ) -> JobResult | None:
        result = self.commands.run(self.run_id, progress, phase, sandbox=sandbox, spec=spec, window=self.window)
        if result is not None and result.cancelled:
            # A stopped command has no verdict: only a cancel stops one, anything else is a lost command.
            if self.commands.runs.stop_reason(self.run_id):
                raise RunCancelled("the solve is being cancelled")
            raise CommandLost(f"the verification's {phase} command was stopped from outside")
        return result

    def _sync(self, action: Callable[[float], T]) -> T | None:
        return within(self.window, action)


def within(window: Window, action: Callable[[float], T], limit_s: float = SYNC_TIMEOUT_S) -> T | None:
    """A synchronous phase, given its limit cut to what the invocation has left; None when there is
    no time left to start it, or when that cut (not the phase's own limit) ended it: the next
    invocation does it again."""
    if window.left() <= 0:
        return None
    limit = window.bound(limit_s)
    try:
        return action(limit)
    except RepositoryError:
        if limit < limit_s and window.left() <= 0:
            return None
        raise
