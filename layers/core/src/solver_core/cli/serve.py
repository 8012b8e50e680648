"""`solver serve`: the HTTP API on this machine, on the embedded defaults and the local orchestrator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import typer
from rich.markup import escape

from solver_core.api import ApiDeps, build_app
from solver_core.api.http import ApiServer, is_loopback
from solver_core.cli.common import console, ensure_ready, local_owner, open_container
from solver_core.console.remote import BearerSigner, RemoteProxy, Signer, iam_signer
from solver_core.errors import ConfigurationError
from solver_core.notify import build_notifier
from solver_core.readiness.models import preflight_models
from solver_core.settings import Settings
from solver_core.wiring import Container, build_orchestrator


def serve_settings(*, allow_local_repos: bool, allow_replay_models: bool) -> Settings:
    """The environment's settings; the flags can only allow more, never less. Unlike the other
    commands, serve is strict by default: other programs (and people) may call it."""
    settings = Settings()
    # Every request is the machine's user's (api/http.py): allowed every repository, every sandbox slot.
    single_owner = {"trusted_owner": local_owner(), "owner_sandbox_share": 1.0}
    return settings.model_copy(
        update={
            "allow_local_repos": settings.allow_local_repos or allow_local_repos,
            "allow_replay_models": settings.allow_replay_models or allow_replay_models,
            **{k: v for k, v in single_owner.items() if k not in settings.model_fields_set},
        }
    )


def make_server(deps: Callable[[], ApiDeps], host: str, port: int, *, token: str | None, owner: str) -> ApiServer:
    """A threaded HTTP server for the whole API (port 0 picks a free port); `deps` is asked per request."""
    return ApiServer(
        (host, port),
        build_app(deps=deps),
        owner=owner,
        token=token,
        max_body_bytes=lambda: deps().limits.max_body_bytes,
    )


class RemoteAuth(StrEnum):
    IAM = "iam"
    COGNITO = "cognito"


def remote_signer(remote: str, auth: RemoteAuth, *, region: str | None, settings: Settings) -> Signer:
    if auth is RemoteAuth.COGNITO:
        if settings.remote_id_token is None:
            raise ConfigurationError("--remote-auth cognito needs the user pool's ID token in SOLVER_REMOTE_ID_TOKEN")
        return BearerSigner(settings.remote_id_token.get_secret_value())
    return iam_signer(remote, region or settings.aws_region)


def serve_remote(host: str, port: int, remote: str, auth: RemoteAuth, *, region: str | None, token: str | None) -> None:
    """A local proxy to a deployed API that authenticates every request (docs/architecture.md)."""
    try:
        signer = remote_signer(remote, auth, region=region, settings=Settings())
        proxy = RemoteProxy((host, port), remote, signer, token=token)
    except ConfigurationError as exc:
        console.print(f"[red]{escape(exc.message)}[/]")
        raise typer.Exit(2) from exc
    console.print(f"Proxy to {escape(remote)} ({auth.value}) on [bold]{proxy.url}[/]: open {proxy.url}/ui")
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        proxy.server_close()


def background_publisher(container: Container) -> Callable[[UUID], None]:
    """POST /solves/{id}/publish answers at once; publishing (bounded GitHub waits and retries)
    goes on in a thread, and records its outcome on the solve."""
    flow = container.flow()

    def publish(solve_id: UUID) -> None:
        threading.Thread(target=flow.publish, args=(solve_id,), name=f"publish-{solve_id}", daemon=True).start()

    return publish


def serve(  # noqa: PLR0917 - a typer command takes its options as parameters
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    allow_local_repos: Annotated[bool, typer.Option(help="Accept local repository paths.")] = False,
    allow_replay_models: Annotated[bool, typer.Option(help="Accept replay:PATH models.")] = False,
    token: Annotated[
        str | None, typer.Option(help="Require 'Authorization: Bearer TOKEN'; without it only loopback clients.")
    ] = None,
    remote: Annotated[
        str | None, typer.Option(help="Proxy a deployed API (its URL with the stage) instead of serving one here.")
    ] = None,
    remote_auth: Annotated[
        RemoteAuth, typer.Option(help="How --remote requests authenticate: SigV4 (iam) or SOLVER_REMOTE_ID_TOKEN.")
    ] = RemoteAuth.IAM,
    region: Annotated[str | None, typer.Option(help="AWS region of --remote (default: from its URL).")] = None,
) -> None:
    """Serve the HTTP API (the same routes as the cloud API; Swagger UI at /docs, console at /ui)."""
    if remote is not None:
        serve_remote(host, port, remote, remote_auth, region=region, token=token)
        return
    settings = serve_settings(allow_local_repos=allow_local_repos, allow_replay_models=allow_replay_models)
    ensure_ready(settings)
    container = open_container(settings)
    try:
        notify = build_notifier(settings).solve_changed
        publisher = background_publisher(container)
        orchestrator = build_orchestrator(settings, container)
        # Runs execute in this process unless a state machine is configured: check their keys here.
        check = None if settings.state_machine_arn else preflight_models
        deps = ApiDeps.from_container(container, orchestrator, notify=notify, publish=publisher, check_models=check)
        server = make_server(lambda: deps, host, port, token=token, owner=local_owner())
    except BaseException:
        container.close()
        raise
    console.print(f"Solver API on [bold]{server.url}[/] (Swagger UI: {server.url}/docs), owner {local_owner()}")
    if token is None and not is_loopback(host):
        console.print("[yellow]no --token: only clients on this machine's loopback interface are served[/]")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.server_close()
        container.close()
