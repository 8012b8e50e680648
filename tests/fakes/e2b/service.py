"""``FakeE2BService``: the control plane and envd of e2b on one loopback port."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from .control import ControlPlane, FailureInjector, is_control_path
from .envd import Envd
from .httpio import Request, Responder
from .server import LoopbackServer
from .state import Registry
from .templates import TemplateBuilds

_REAP_INTERVAL_S = 0.05


class FakeE2BService:
    """A loopback e2b for driving the real, unmodified e2b SDK in tests.

    Both planes share one port: the control plane's paths (``/sandboxes``, ``/v2/sandboxes``, the
    template builds' ``/templates``, ``/v2/templates``, ``/v3/templates``)
    and envd's (``/health``, ``/files``, ``/process.Process/*``, ``/filesystem.Filesystem/*``)
    never overlap, so ``api_url == sandbox_url``.
    """

    def __init__(
        self,
        root: Path,
        api_key: str = "e2b_test_key",
        capacity: int | None = None,
        *,
        templates_must_exist: bool = False,
    ) -> None:
        """`templates_must_exist`: creating a sandbox from a template that was not built here (other
        than e2b's `base`) is answered 404, as e2b answers it."""
        self.root = Path(root)
        self.api_key = api_key
        self._registry = Registry(self.root, capacity)
        self._failures = FailureInjector()
        self.templates = TemplateBuilds()
        self._control = ControlPlane(
            self._registry, api_key, self._failures, self.templates, templates_must_exist=templates_must_exist
        )
        self._envd = Envd(self._registry)
        self._server: LoopbackServer | None = None
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeE2BService:
        if self._server is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = LoopbackServer(self._route)
        self._server.start()
        self._stopping.clear()
        self._reaper = threading.Thread(target=self._reap_forever, name="fake-e2b-reaper", daemon=True)
        self._reaper.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
            self._reaper = None
        self._registry.kill_all()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeE2BService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what tests configure the SDK with ---------------------------------------------------

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeE2BService is not started")
        return self._server.url

    @property
    def sandbox_url(self) -> str:
        return self.api_url

    def sdk_kwargs(self) -> dict[str, Any]:
        """Connection options for ``Sandbox.create/connect/kill/list`` (no env vars needed)."""
        return {"api_key": self.api_key, "api_url": self.api_url, "sandbox_url": self.sandbox_url}

    # --- inspection and fault injection ------------------------------------------------------

    @property
    def create_requests(self) -> list[dict[str, Any]]:
        """Every authenticated ``POST /v2/sandboxes`` received, including retried attempts."""
        return self._control.create_requests

    def live_sandbox_ids(self) -> list[str]:
        return [s.sandbox_id for s in self._registry.all_live()]

    def sandbox_dir(self, sandbox_id: str) -> Path:
        """The host directory that is ``/home/user`` inside the sandbox (kept after it dies)."""
        sandbox = self._registry.get(sandbox_id)
        if sandbox is None:
            raise KeyError(sandbox_id)
        return sandbox.home

    def kill_sandbox(self, sandbox_id: str) -> None:
        """Simulate an external kill or expiry: processes die, in-flight streams drop.

        Later calls get the real service's answers for a gone sandbox (envd: 502 "... was not
        found"; control plane: 404). Killing an already dead sandbox is a no-op.
        """
        if self._registry.get(sandbox_id) is None:
            raise KeyError(sandbox_id)
        self._registry.kill(sandbox_id)

    def fail_next(self, count: int, status: int) -> None:
        """Answer the next ``count`` control-plane requests with ``status``.

        The SDK retries 429/502/503/504 (3 retries by default), so each retry consumes one.
        """
        self._failures.arm(count, status)

    # --- internals ---------------------------------------------------------------------------

    def _route(self, request: Request, out: Responder) -> None:
        if is_control_path(request.path):
            self._control.handle(request, out)
        else:
            self._envd.handle(request, out)

    def _reap_forever(self) -> None:
        while not self._stopping.wait(_REAP_INTERVAL_S):
            self._registry.reap_expired()
