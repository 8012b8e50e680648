"""envd's ``process.Process`` Connect service, backed by local subprocesses."""

from __future__ import annotations

import signal
from collections.abc import Callable

from e2b.envd.process import process_pb
from protobuf import Oneof

from .connect import (
    JsonMessage,
    RpcError,
    decode_stream_request,
    decode_unary,
    send_stream_error,
)
from .httpio import Request, Responder
from .paths import to_host, to_virtual
from .process_stream import ProcessStream, deadline_from, keepalive_from
from .procs import ProcessRecord, sandbox_env, spawn
from .state import Sandbox

_SIGNALS = {process_pb.Signal.SIGKILL: signal.SIGKILL, process_pb.Signal.SIGTERM: signal.SIGTERM}


class ProcessService:
    """One instance serves every sandbox; each call names its sandbox."""

    def unary(self, method: str) -> Callable[[Sandbox, Request], JsonMessage] | None:
        routes: dict[str, Callable[[Sandbox, Request], JsonMessage]] = {
            "List": self._list,
            "SendSignal": self._send_signal,
            "SendInput": self._send_input,
            "CloseStdin": self._close_stdin,
        }
        return routes.get(method)

    def stream(self, method: str, sandbox: Sandbox, request: Request, out: Responder) -> bool:
        """Serve a server-streaming method; False if this service has no such method."""
        if method == "Start":
            self._serve(out, lambda: self._start(sandbox, request, out))
        elif method == "Connect":
            self._serve(out, lambda: self._connect(sandbox, request, out))
        else:
            return False
        return True

    @staticmethod
    def _serve(out: Responder, call: Callable[[], None]) -> None:
        try:
            call()
        except RpcError as e:
            send_stream_error(out, e)

    def _start(self, sandbox: Sandbox, request: Request, out: Responder) -> None:
        start = decode_stream_request(request, process_pb.StartRequest)
        if start.has_field("pty"):
            raise RpcError("unimplemented", "the fake sandbox has no PTY support")
        config = start.process or process_pb.ProcessConfig()
        cwd = to_host(sandbox.home, config.cwd if config.has_field("cwd") else None)
        if not cwd.is_dir():
            raise RpcError("invalid_argument", f"cwd '{config.cwd}' does not exist")
        env = sandbox_env(sandbox.home, sandbox.envs, dict(config.envs))
        try:
            record = spawn(
                config.cmd,
                list(config.args),
                cwd,
                env,
                stdin=start.stdin if start.has_field("stdin") else True,
                tag=start.tag if start.has_field("tag") else None,
            )
        except OSError as e:
            raise RpcError("internal", f"failed to start process: {e}") from e
        if not sandbox.add_process(record):
            record.kill_group()
        deadline = deadline_from(request)
        ProcessStream(sandbox, record, out, process_pb.StartResponse, keepalive_from(request)).run(deadline, kill=True)

    def _connect(self, sandbox: Sandbox, request: Request, out: Responder) -> None:
        selector = decode_stream_request(request, process_pb.ConnectRequest).process
        record = _select(sandbox, selector)
        stream = ProcessStream(sandbox, record, out, process_pb.ConnectResponse, keepalive_from(request))
        # Attaching does not replay old output, as with envd; it does not kill on deadline either.
        stream.run(deadline_from(request), kill=False, start_index=len(record.events))

    def _list(self, sandbox: Sandbox, request: Request) -> process_pb.ListResponse:
        decode_unary(request, process_pb.ListRequest)
        return process_pb.ListResponse(
            processes=[
                process_pb.ProcessInfo(
                    pid=p.pid,
                    tag=p.tag,
                    config=process_pb.ProcessConfig(
                        cmd=p.cmd, args=p.args, envs=p.envs, cwd=to_virtual(sandbox.home, p.cwd)
                    ),
                )
                for p in sandbox.running_processes()
            ]
        )

    def _send_signal(self, sandbox: Sandbox, request: Request) -> process_pb.SendSignalResponse:
        message = decode_unary(request, process_pb.SendSignalRequest)
        record = _select(sandbox, message.process)
        signum = _SIGNALS.get(message.signal)
        if signum is None:
            raise RpcError("invalid_argument", f"unsupported signal {message.signal}")
        # envd signals the process it started, not its descendants.
        record.signal_child(signum)
        return process_pb.SendSignalResponse()

    def _send_input(self, sandbox: Sandbox, request: Request) -> process_pb.SendInputResponse:
        message = decode_unary(request, process_pb.SendInputRequest)
        record = _select(sandbox, message.process)
        match message.input.input if message.input else None:
            case Oneof(field="stdin", value=data):
                try:
                    record.write_stdin(data)
                except OSError as e:
                    raise RpcError("failed_precondition", f"cannot write to stdin: {e}") from e
            case _:
                raise RpcError("invalid_argument", "only stdin input is supported")
        return process_pb.SendInputResponse()

    def _close_stdin(self, sandbox: Sandbox, request: Request) -> process_pb.CloseStdinResponse:
        record = _select(sandbox, decode_unary(request, process_pb.CloseStdinRequest).process)
        record.close_stdin()
        return process_pb.CloseStdinResponse()


def _select(sandbox: Sandbox, selector: process_pb.ProcessSelector | None) -> ProcessRecord:
    match selector.selector if selector else None:
        case Oneof(field="pid", value=int() as pid):
            record = sandbox.process(pid)
        case Oneof(field="tag", value=str() as tag):
            record = next((p for p in sandbox.running_processes() if p.tag == tag), None)
        case _:
            raise RpcError("invalid_argument", "a process selector is required")
    if record is None or record.finished:
        raise RpcError("not_found", f"process with {selector} not found")
    return record
