"""Typed errors, mapped to responses and state-machine error names in one place each.

The state machine matches errors by class name, so class names are part of the contract.
`retryable` says whether the same work may succeed if tried again later. Every message is one line:
what happened, then what to do (`hint`, the class's advice unless the raiser gives a better one).
"""

from __future__ import annotations

from typing import Any, ClassVar

from solver_core.messages import join


class SolverError(Exception):
    """Base of every error Solver raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    hint: ClassVar[str] = "retry; if it happens again, report it with the solve id"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None, hint: str | None = None) -> None:
        self.message = join(message, hint or self.hint)
        super().__init__(self.message)
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(SolverError):
    """The request could not be read at all (malformed JSON, too large, wrong content type)."""

    code = "bad_request"
    hint = "send a JSON body within the size limit, with content-type application/json"
    status = 400


class ValidationFailed(SolverError):
    """The request was readable but breaks a rule; `details` names each field and rule."""

    code = "validation_failed"
    hint = "fix the fields named in details and send the request again"
    status = 422


class ReplayNotFound(ValidationFailed):
    """A batch's replay folder has no file for an instance: that instance fails, the others run."""

    code = "replay_not_found"


class NotFound(SolverError):
    code = "not_found"
    hint = "check the id (`solver list` shows your solves)"
    status = 404


class Conflict(SolverError):
    code = "conflict"
    hint = "read the current state (`solver status ID`) and try again"
    status = 409


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was used before with a different request."""

    code = "idempotency_conflict"
    hint = "use a new Idempotency-Key for a different request"


class IllegalTransition(Conflict):
    """A status change that the state diagram forbids, or that lost a race to another writer."""

    code = "illegal_transition"
    hint = "read the current state (`solver status ID`); it has already moved on"


class TooManyRequests(SolverError):
    code = "too_many_requests"
    hint = "wait for some of your solves to finish, or cancel one, then retry"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(SolverError):
    """The caller is known but may not do this."""

    code = "forbidden"
    status = 403


class NotOnAllowlist(Forbidden):
    """The deployment's Git credentials or publishing were asked for a repository outside the
    owner's allowlist (`solver owners`)."""

    code = "not_on_allowlist"


class ConfigurationError(SolverError):
    """Settings that cannot work together; raised at start-up, never per request."""

    code = "configuration_error"
    hint = "fix the SOLVER_* settings named above; `solver doctor` checks them all"


class PreflightFailed(SolverError):
    """Something a solve needs is missing on this machine (git, bubblewrap when required, a key,
    a reachable repository); found before anything was created."""

    code = "preflight_failed"
    status = 422
    hint = "run `solver doctor` for more"


class TemplateBuildFailed(SolverError):
    """e2b refused or failed to build a sandbox template (`solver template build`)."""

    code = "template_build_failed"
    hint = "read the build's log above, fix the image or its name, then build again"


class ArtifactError(SolverError):
    """The artifact store failed to read or write an object."""

    code = "artifact_error"
    hint = "check that the artifact store is reachable and writable (`solver doctor`), then retry"
    retryable = True


class ArtifactNotFound(ArtifactError):
    code = "artifact_not_found"
    hint = "the run may not have produced it yet; check the solve's status"
    status = 404
    retryable = False


# --- Run-level failures: recorded on the run; retryable ones are re-queued by the sweeper. ---


class RunError(SolverError):
    """A run could not continue."""

    code = "run_error"
    hint = "see the run's log artifact for the details, then start the solve again"


class SandboxGone(RunError):
    """The sandbox was killed or expired under the run."""

    code = "sandbox_gone"
    hint = "the run is resumed in a new sandbox; nothing to do unless it keeps happening"
    retryable = True


class SandboxUnavailable(RunError):
    """The sandbox provider could not be reached or answered with a server error."""

    code = "sandbox_unavailable"
    hint = "check the sandbox provider (`solver doctor`); the run is retried"
    retryable = True


class SandboxCapacityExceeded(RunError):
    """Too many live sandboxes; the state machine backs off and tries again."""

    code = "sandbox_capacity_exceeded"
    hint = "the launch waits and retries; raise SOLVER_MAX_LIVE_SANDBOXES to allow more"
    retryable = True


class RepositoryError(RunError):
    """The repository could not be cloned, checked out or set up."""

    code = "repository_error"
    hint = "check the repository URL, ref and setup command (details in the run's log artifact)"


class CloneFailed(RepositoryError):
    """Cloning failed for a reason that may pass (network unreachable, DNS, a server error, a timeout,
    throttling): the run is retried. A missing repository or ref stays a RepositoryError."""

    code = "clone_failed"
    hint = "the run is retried; check the repository host's status if it keeps failing"
    retryable = True


class CommandLost(RunError):
    """A detached command in the sandbox ended without recording its outcome (its runner was killed
    from outside, or never started); the run resumes in a new sandbox."""

    code = "command_lost"
    retryable = True


class RepositoryNotAllowed(RepositoryError):
    """An anonymous clone failed, and the deployment's credentials for the host are not the owner's
    to use on this repository (it is not on the owner's allowlist)."""

    code = "repository_not_allowed"
    status = 403


class PatchTooLarge(RunError):
    """The run's patch is larger than `SOLVER_MAX_PATCH_BYTES` (measured in the sandbox, never read)."""

    code = "patch_too_large"


class ModelUnavailable(RunError):
    """The LLM provider kept failing (rate limits, server errors) after its retries."""

    code = "model_unavailable"
    hint = "the run is retried; check the provider's status page if it keeps failing"
    retryable = True


class ModelNotConfigured(RunError):
    """A model cannot be called from here: litellm does not know it, or its provider's key is not
    set in the environment of the process that runs the agent loop. Retrying cannot help."""

    code = "model_not_configured"
    status = 422
    hint = "run `solver doctor` for more"


class StaleHeartbeat(RunError):
    """The run stopped reporting and its execution is gone (a crashed or lost worker)."""

    code = "stale_heartbeat"
    hint = "the run is resumed from its last checkpoint; nothing to do"
    retryable = True


class ExecutionEnded(RunError):
    """The orchestration ended (aborted, failed, timed out) before the run did."""

    code = "execution_ended"
    hint = "the run is resumed from its last checkpoint; nothing to do"
    retryable = True


class RunCancelled(RunError):
    """The solve is being cancelled; the run stops at its next check."""

    code = "run_cancelled"
    hint = "nothing to do; start a new solve to try again"


# Error names that are not ours but mean "the infrastructure hiccupped; the work can resume".
TRANSIENT_FOREIGN_ERRORS = (
    "States.Timeout", "States.HeartbeatTimeout", "Lambda.", "Sandbox.Timedout",
    # SQLAlchemy's names for a database that could not be reached (a Task that outlived the outage
    # retries): the run resumes once the database is back.
    "OperationalError", "InterfaceError",
)  # fmt: skip


def error_class(name: str) -> type[SolverError] | None:
    """Our error class of that name (the state machine reports errors by class name)."""
    pending: list[type[SolverError]] = [SolverError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def is_retryable(name: str) -> bool:
    cls = error_class(name)
    if cls is not None:
        return cls.retryable
    return name.startswith(TRANSIENT_FOREIGN_ERRORS)


# --- Publishing to GitHub: recorded on the solve as error events; they never fail the solve. ---


class PublishError(SolverError):
    """The solve's result could not be published (comment or pull request)."""

    code = "publish_error"
    hint = "fix the cause, then run `solver publish ID`"


class PublishNotConfigured(PublishError):
    """No GitHub credentials are configured (a token or a GitHub App)."""

    code = "publish_not_configured"
    hint = "set SOLVER_GITHUB_TOKEN (or a GitHub App), then run `solver publish ID`"


class PatchNotApplicable(PublishError):
    """The champion patch cannot be turned into a commit on the repository's base (malformed, or its
    preimage differs from what GitHub has)."""

    code = "patch_not_applicable"
    hint = "the repository moved on; start a new solve on its current head"


class WorkflowChangeRefused(PublishError):
    """A draft pull request would change .github/workflows/, and the owner's allowlist entry does
    not permit it."""

    code = "workflow_change_refused"
    status = 403


class GitHubError(PublishError):
    """GitHub answered with an error; `http_status` is its HTTP status (0 when it could not be reached)."""

    code = "github_error"
    hint = "check the token's access to the repository, then run `solver publish ID`"

    def __init__(self, message: str, *, http_status: int = 0) -> None:
        super().__init__(message)
        self.http_status = http_status


class GitHubPermissionDenied(GitHubError):
    """The credentials may not do this (401, or a 403 that is not a rate limit): retrying cannot help."""

    code = "github_permission_denied"
    hint = "give the token (or GitHub App) write access to the repository, then run `solver publish ID`"


class GitHubNotFound(GitHubError):
    """No such repository, issue or object (or, for a private repository, no access to it)."""

    code = "github_not_found"
    hint = "check the issue URL and that the token can see the repository"


class GitHubRateLimited(GitHubError):
    """Rate limited for longer than Solver waits; publishing again later will work."""

    code = "github_rate_limited"
    hint = "run `solver publish ID` again later"
    retryable = True


class GitHubUnavailable(GitHubError):
    """GitHub kept failing (5xx, transport errors) after the bounded retries."""

    code = "github_unavailable"
    hint = "run `solver publish ID` again when GitHub is back"
    retryable = True
