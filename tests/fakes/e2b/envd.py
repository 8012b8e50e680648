"""The in-sandbox daemon (envd) as reached through the sandbox proxy.

The SDK sends every sandbox's envd traffic to the one ``sandbox_url`` and names the sandbox in
the ``E2b-Sandbox-Id`` header, so a single router serves all sandboxes.
"""

from __future__ import annotations

from collections.abc import Callable

from .connect import JsonMessage, RpcError, send_unary, send_unary_error
from .envd_fs import FilesystemService, serve_files
from .envd_process import ProcessService
from .httpio import Request, Responder
from .state import Registry, Sandbox

UnaryHandler = Callable[[Sandbox, Request], JsonMessage]


class Envd:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._process = ProcessService()
        self._filesystem = FilesystemService()

    def handle(self, request: Request, out: Responder) -> None:
        sandbox_id = request.header("E2b-Sandbox-Id") or ""
        sandbox = self._registry.live(sandbox_id)
        if sandbox is None:
            # What the sandbox proxy answers for a killed or expired sandbox; the SDK keys its
            # SandboxNotRunningException on the "was not found" wording and the 502.
            message = f"The sandbox {sandbox_id} was not found"
            out.send_json(502, {"sandboxId": sandbox_id, "message": message, "code": 502})
        elif request.path == "/health":
            out.send_empty(204)
        elif request.header("X-Access-Token") != sandbox.envd_access_token:
            out.send_json(401, {"code": 401, "message": "invalid access token"})
        elif request.path == "/files":
            serve_files(sandbox, request, out)
        else:
            self._rpc(sandbox, request, out)

    def _rpc(self, sandbox: Sandbox, request: Request, out: Responder) -> None:
        service, _, method = request.path.strip("/").partition("/")
        handler: UnaryHandler | None = None
        if service == "process.Process":
            if self._process.stream(method, sandbox, request, out):
                return
            handler = self._process.unary(method)
        elif service == "filesystem.Filesystem":
            handler = self._filesystem.unary(method)
        if handler is None:
            send_unary_error(out, RpcError("unimplemented", f"{request.path} is not implemented by the fake"))
            return
        try:
            response = handler(sandbox, request)
        except RpcError as e:
            send_unary_error(out, e)
        except OSError as e:
            send_unary_error(out, RpcError("internal", str(e)))
        else:
            send_unary(out, response)
