"""`solver serve`: the HTTP API on this machine, on the embedded defaults and the local orchestrator.

Hardened for a machine with other users and a browser (docs/architecture.md, "`solver serve`"): a
token is always required, except on loopback with `--no-token` (on loopback one is generated and
printed when none is given); it comes from SOLVER_SERVE_TOKEN or `--token-file`, never the command
line. The Host header must name the server (DNS rebinding) and writes must be JSON (api/http.py).
Local sandboxes must be isolated with bubblewrap unless `--unsafe-no-isolation`. The sweeper runs
on a timer.
"""

from __future__ import annotations

import logging
import secrets
import stat
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.markup import escape

from solver_core.agent.keys import preflight_models
from solver_core.api import ApiDeps, build_app
from solver_core.api.http import ApiServer, is_loopback, is_wildcard
from solver_core.cli.common import console, ensure_ready, local_owner, open_container
from solver_core.console.remote import BearerSigner, RemoteProxy, Signer, iam_signer
from solver_core.errors import ConfigurationError
from solver_core.orchestrators.local import LocalOrchestrator
from solver_core.sandbox.local import bwrap_path
from solver_core.settings import Settings
from solver_core.wiring import Container

log = logging.getLogger(__name__)


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


def make_server(
    deps: Callable[[], ApiDeps],
    host: str,
    port: int,
    *,
    token: str | None,
    owner: str,
    allowed_hosts: tuple[str, ...] = (),
) -> ApiServer:
    """A threaded HTTP server for the whole API (port 0 picks a free port); `deps` is asked per request."""
    from solver_core.console.routes import router as console_router

    app = build_app(deps=deps)
    app.include_router(console_router(deps))  # the web console's pages (/ui)
    return ApiServer(
        (host, port),
        app,
        owner=owner,
        token=token,
        # The largest body of any route (POST /batches); the API refuses each route's own excess.
        max_body_bytes=lambda: max(deps().limits.max_body_bytes, deps().limits.max_batch_body_bytes),
        allowed_hosts=allowed_hosts,
    )


def refuse(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/]")
    return typer.Exit(2)


def read_token_file(path: Path) -> str:
    """The token in a file that only its owner may read (a token others can read protects nothing)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise refuse(f"cannot read --token-file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise refuse(f"--token-file {path} may be read by other users: chmod 600 it")
    if not text:
        raise refuse(f"--token-file {path} is empty")
    return text


def resolve_token(settings: Settings, host: str, token_file: Path | None, no_token: bool) -> tuple[str | None, bool]:
    """The server's token and whether it was generated. Never taken from the command line."""
    given = read_token_file(token_file) if token_file else None
    given = given or (settings.serve_token.get_secret_value() if settings.serve_token else None)
    if no_token:
        if given:
            raise refuse("--no-token contradicts the token given (SOLVER_SERVE_TOKEN or --token-file)")
        if not is_loopback(host):
            raise refuse(f"--no-token is only allowed on a loopback address, not {host}")
        return None, False
    if given:
        return given, False
    if not is_loopback(host):
        raise refuse(f"serving on {host} needs a token: set SOLVER_SERVE_TOKEN or give --token-file")
    return secrets.token_urlsafe(32), True


def check_isolation(settings: Settings, unsafe_no_isolation: bool) -> None:
    """Local sandboxes must be bubblewrapped: callers' agents run on this machine."""
    if settings.sandbox != "local" or unsafe_no_isolation:
        return
    if settings.sandbox_isolation == "none":
        raise refuse("SOLVER_SANDBOX_ISOLATION=none: serve refuses to run unisolated (--unsafe-no-isolation)")
    if bwrap_path() is None:
        raise refuse(
            "bubblewrap (bwrap) is not installed: agent commands would run unisolated on this machine. "
            "Install bubblewrap, use SOLVER_SANDBOX=docker or e2b, or pass --unsafe-no-isolation"
        )


def check_hosts(host: str, allowed_hosts: list[str]) -> None:
    if is_wildcard(host) and not allowed_hosts:
        raise refuse(f"bound to every interface ({host}): name the host names clients use with --allowed-host")


def start_sweeper(container: Container, orchestrator: object, interval_s: float) -> threading.Event:
    """The sweeper on a timer, in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    if not isinstance(orchestrator, LocalOrchestrator):
        return stop  # Step Functions deployments have their own scheduled sweeper
    sweeper = container.sweeper(orchestrator)

    def loop() -> None:
        while not stop.wait(interval_s):
            report = sweeper.sweep()
            for error in report.errors:
                log.warning("sweeper: %s", error)

    threading.Thread(target=loop, name="sweeper", daemon=True).start()
    return stop


class RemoteAuth(StrEnum):
    IAM = "iam"
    COGNITO = "cognito"
    TOKEN = "token"  # noqa: S105 - a mode's name: another `solver serve`, its token from SOLVER_SERVE_TOKEN


def remote_signer(remote: str, auth: RemoteAuth, *, region: str | None, settings: Settings) -> Signer:
    if auth is RemoteAuth.COGNITO:
        if settings.remote_id_token is None:
            raise ConfigurationError("--remote-auth cognito needs the user pool's ID token in SOLVER_REMOTE_ID_TOKEN")
        return BearerSigner(settings.remote_id_token.get_secret_value())
    if auth is RemoteAuth.TOKEN:
        if settings.serve_token is None:
            raise ConfigurationError("--remote-auth token needs the server's token in SOLVER_SERVE_TOKEN")
        return BearerSigner(f"Bearer {settings.serve_token.get_secret_value()}")
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
    token_file: Annotated[
        Path | None,
        typer.Option(help="A file (mode 600) holding the token that requests must send as 'Authorization: Bearer'."),
    ] = None,
    no_token: Annotated[bool, typer.Option("--no-token", help="Loopback only: serve without a token.")] = False,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="A host name clients use to reach this server (repeatable).")
    ] = None,
    unsafe_no_isolation: Annotated[
        bool, typer.Option("--unsafe-no-isolation", help="Run agents' commands without bubblewrap.")
    ] = False,
    token: Annotated[str | None, typer.Option(hidden=True)] = None,
    remote: Annotated[
        str | None, typer.Option(help="Proxy a deployed API (its URL with the stage) instead of serving one here.")
    ] = None,
    remote_auth: Annotated[
        RemoteAuth,
        typer.Option(
            help="How --remote requests authenticate: SigV4 (iam), SOLVER_REMOTE_ID_TOKEN (cognito) "
            "or SOLVER_SERVE_TOKEN (token)."
        ),
    ] = RemoteAuth.IAM,
    region: Annotated[str | None, typer.Option(help="AWS region of --remote (default: from its URL).")] = None,
) -> None:
    """Serve the HTTP API (the same routes as the cloud API; Swagger UI at /docs, console at /ui).

    The token comes from SOLVER_SERVE_TOKEN or --token-file; on loopback, one is generated when
    neither is given."""
    if token is not None:
        raise refuse("--token is gone (every user can read a command line): use SOLVER_SERVE_TOKEN or --token-file")
    if remote is not None:
        secret, generated = resolve_token(Settings(), host, token_file, no_token)
        if generated:
            console.print(f"token (generated): [bold]{secret}[/] (send 'Authorization: Bearer <token>')")
        serve_remote(host, port, remote, remote_auth, region=region, token=secret)
        return
    settings = serve_settings(allow_local_repos=allow_local_repos, allow_replay_models=allow_replay_models)
    hosts = tuple(allowed_host or ())
    check_hosts(host, list(hosts))
    check_isolation(settings, unsafe_no_isolation)
    ensure_ready(settings)
    secret, generated = resolve_token(settings, host, token_file, no_token)
    container = open_container(settings)
    try:
        publisher = background_publisher(container)
        # Runs execute in this process unless a state machine is configured: check their keys here.
        check = None if settings.state_machine_arn else preflight_models
        deps = ApiDeps.from_container(
            container, publish=publisher, check_models=check, batch_orchestrator=container.batch_orchestrator
        )
        server = make_server(lambda: deps, host, port, token=secret, owner=local_owner(), allowed_hosts=hosts)
    except BaseException:
        container.close()
        raise
    stop_sweeper = start_sweeper(container, deps.orchestrator, settings.serve_sweep_interval_s)
    announce(server, secret if generated else None, no_token=no_token, unsafe=unsafe_no_isolation)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stop_sweeper.set()
        server.server_close()
        container.close()


def announce(server: ApiServer, generated_token: str | None, *, no_token: bool, unsafe: bool) -> None:
    """What the server runs with; the line with its URL comes last."""
    if unsafe:
        console.print("[red]--unsafe-no-isolation: agents' commands run on this machine without a sandbox[/]")
    if no_token:
        console.print("[yellow]--no-token: every client on this machine's loopback interface is served[/]")
    if generated_token:
        console.print(f"token (generated): [bold]{generated_token}[/] (send 'Authorization: Bearer <token>')")
    # The fragment never reaches a server or its logs; the login page's script signs in with it.
    sign_in = f"/ui/login#token={generated_token}" if generated_token else ("/ui" if no_token else "/ui/login")
    console.print(f"web console: [bold]{server.url}{sign_in}[/]")
    console.print(f"Solver API on [bold]{server.url}[/] (Swagger UI: {server.url}/docs), owner {local_owner()}")
