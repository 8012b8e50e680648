"""PublishResults: after FinishSolve, publish the solve where its issue lives, as the request asked.

Never fails the solve: every error is recorded as an `error` event on the solve and in its
publication record, and the step returns normally. Publishing again (a resumed execution that
finishes again, `solver publish`) updates the same comment and pull request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from solver_core.artifacts import keys
from solver_core.db.schema import SolveRow, utcnow
from solver_core.errors import ArtifactNotFound, PublishError, SolverError
from solver_core.gitdiff.images import PostImages
from solver_core.github_urls import RepoRef
from solver_core.models import Publication, SolveView
from solver_core.ports import ArtifactStore, Publisher
from solver_core.publish.report import SolveReport
from solver_core.services.allowlist import AllowlistService, Grant
from solver_core.services.events import EventService
from solver_core.status import EventKind, SolveStatus
from solver_core.store import records
from solver_core.store.views import solve_view

log = logging.getLogger(__name__)
T = TypeVar("T")


def should_publish(solve: SolveView) -> bool:
    """Publish a solve that asked for it once it ended with a result (a cancelled one has none)."""
    return solve.publish is not None and solve.status in {SolveStatus.SUCCEEDED, SolveStatus.FAILED}


class PublishService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        events: EventService,
        artifacts: ArtifactStore,
        publisher: Callable[[], Publisher],
        *,
        allowlist: AllowlistService,
        api_url: str | None = None,
    ) -> None:
        self._api_url = api_url  # the API's base URL, which comments link to
        self._sessions = sessions
        self._allowlist = allowlist
        self._events = events
        self._artifacts = artifacts
        self._make_publisher = publisher  # built when first needed: missing credentials become an event
        self._publisher: Publisher | None = None

    def publish(self, solve_id: UUID) -> Publication:
        solve = self._solve(solve_id)
        previous = solve.publication or Publication()
        if not should_publish(solve) or solve.publish is None:
            return previous
        errors: list[str] = []
        report = self._attempt(solve_id, "report", lambda: self.report(solve), errors)
        # Each target is checked against the owner's allowlist before any credential is used on it
        # (a GitHub App does not even look up its installation on a repository that is not allowed).
        pull_grant = comment_grant = None
        if report and solve.publish.pull_request and report.champion is not None:
            pull_repo = report.repo
            pull_grant = self._attempt(solve_id, "pull request", lambda: self._allowed(solve, pull_repo), errors)
        if report and solve.publish.comment:
            issue_repo = report.issue.repo if report.issue else None
            comment_grant = self._attempt(solve_id, "comment", lambda: self._allowed(solve, issue_repo), errors)
        wanted = pull_grant is not None or comment_grant is not None
        publisher = self._attempt(solve_id, "publisher", self._get_publisher, errors) if wanted else None
        pull, comment = previous.pull_request, previous.comment
        if publisher and report and pull_grant is not None:
            for_pull = replace(report, allow_workflows=pull_grant.allow_workflows)
            made = self._attempt(solve_id, "pull request", lambda: publisher.pull_request(for_pull, pull), errors)
            pull = made or pull
        if publisher and report and comment_grant is not None:
            posted = self._attempt(solve_id, "comment", lambda: publisher.comment(report, comment, pull), errors)
            comment = posted or comment
        publication = Publication(comment=comment, pull_request=pull, published_at=utcnow(), errors=errors)
        self._store(solve_id, publication)
        self._announce(solve_id, publication)
        return publication

    def _allowed(self, solve: SolveView, repo: RepoRef | None) -> Grant:
        if repo is None:
            raise PublishError("the solve names no GitHub repository to publish to")
        return self._allowlist.require(solve.owner, repo.url, "publishing")

    def _get_publisher(self) -> Publisher:
        if self._publisher is None:  # kept: a GitHub App's installation tokens are cached inside it
            self._publisher = self._make_publisher()
        return self._publisher

    def report(self, solve: SolveView) -> SolveReport:
        champion = next((r for r in solve.runs if r.id == solve.champion_run_id), None)
        if champion is None:
            return SolveReport(solve, None, None, api_url=self._api_url)
        patch = self._artifacts.get(keys.champion_patch(solve.id))
        images, missing = self._post_images(solve.id, champion.id)
        return SolveReport(solve, champion, patch, api_url=self._api_url, images=images, images_missing=missing)

    def _post_images(self, solve_id: UUID, run_id: UUID) -> tuple[dict[str, bytes], str | None]:
        try:
            manifest = PostImages.model_validate_json(self._artifacts.get(keys.post_images(solve_id, run_id)))
        except ArtifactNotFound:
            return {}, "the champion's changed files were not stored (a run collected before they were)"
        images = {f.blob: self._artifacts.get(keys.post_image(solve_id, run_id, f.blob)) for f in manifest.files}
        return images, manifest.missing

    def _attempt(self, solve_id: UUID, what: str, call: Callable[[], T], errors: list[str]) -> T | None:
        try:
            return call()
        except SolverError as exc:
            problem, name, retryable = exc.message, type(exc).__name__, exc.retryable
        except Exception as exc:  # a bug must not fail the solve either; it is logged in full
            log.exception("publishing the %s of solve %s failed", what, solve_id)
            problem, name, retryable = str(exc) or type(exc).__name__, type(exc).__name__, False
        errors.append(f"{what}: {problem}"[:1000])
        data = {"target": what, "error": name, "retryable": retryable}
        self._events.append(solve_id, EventKind.ERROR, f"publishing the {what} failed: {problem}", data=data)
        return None

    def _announce(self, solve_id: UUID, publication: Publication) -> None:
        done = {
            "comment": publication.comment.url if publication.comment else None,
            "pull_request": publication.pull_request.url if publication.pull_request else None,
        }
        if any(done.values()):
            shown = ", ".join(f"{kind} {url}" for kind, url in done.items() if url)
            self._events.append(solve_id, EventKind.LOG, f"published: {shown}", data=done)

    def _solve(self, solve_id: UUID) -> SolveView:
        with self._sessions() as session:
            row = records.solve_row(session, solve_id)
            return solve_view(row, row.runs)

    def _store(self, solve_id: UUID, publication: Publication) -> None:
        # Not a status change, and allowed on finished solves: only this column is written.
        with self._sessions.begin() as session:
            values = {"publication": publication.model_dump(mode="json")}
            session.execute(update(SolveRow).where(SolveRow.id == solve_id).values(**values))
