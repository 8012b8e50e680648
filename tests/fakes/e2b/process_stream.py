"""Relaying a process's recorded events to the SDK as a Connect server stream."""

from __future__ import annotations

import time
from typing import Literal

from e2b.envd.process import process_pb
from protobuf import Oneof

from .connect import STREAM_CONTENT_TYPE, RpcError, end_stream, envelope
from .httpio import Request, Responder
from .procs import Exit, Output, ProcessRecord
from .state import Sandbox

_POLL_S = 0.05
_EVENT = process_pb.ProcessEvent

StreamResponse = type[process_pb.StartResponse] | type[process_pb.ConnectResponse]


class ProcessStream:
    """Relays one process's events as a Connect server stream."""

    def __init__(
        self,
        sandbox: Sandbox,
        record: ProcessRecord,
        out: Responder,
        response: StreamResponse,
        keepalive_s: float | None,
    ) -> None:
        self._sandbox, self._record, self._out = sandbox, record, out
        self._response, self._keepalive_s = response, keepalive_s

    def run(self, deadline: float | None, *, kill: bool, start_index: int = 0) -> None:
        self._out.start_stream(STREAM_CONTENT_TYPE)
        if not self._send(_start_event(self._record.pid)):
            return
        index, last_sent = start_index, time.monotonic()
        while True:
            events = self._record.wait_events(index, _wait_time(deadline))
            if not self._sandbox.alive:
                # A dead sandbox's proxy connection just ends; the SDK then probes /health.
                self._out.abort()
                return
            ended = any(isinstance(e, Exit) for e in events)
            if not ended and deadline is not None and time.monotonic() >= deadline:
                self._expire(kill)
                return
            for event in events:
                if not self._send(_to_event(event)):
                    return  # the client went away; the process keeps running, as in envd
            if ended:
                self._out.write_chunk(end_stream())
                self._out.finish_stream()
                return
            index += len(events)
            last_sent = self._keep_alive(last_sent, bool(events))
            if self._out.client_gone:
                return

    def _expire(self, kill: bool) -> None:
        # The SDK's own deadline fires at the same instant. Ending with deadline_exceeded rather
        # than an end event (exit -1) makes its outcome deterministic: TimeoutException either way.
        if kill:
            self._record.kill_child()  # only the direct child, like exec.CommandContext
        self._out.write_chunk(end_stream(RpcError("deadline_exceeded", "context deadline exceeded")))
        self._out.finish_stream()

    def _keep_alive(self, last_sent: float, sent_now: bool) -> float:
        now = time.monotonic()
        if sent_now:
            return now
        if self._keepalive_s is not None and now - last_sent >= self._keepalive_s:
            keepalive: Oneof[Literal["keepalive"], process_pb.ProcessEvent.KeepAlive]
            keepalive = Oneof("keepalive", _EVENT.KeepAlive())
            self._send(_EVENT(event=keepalive))
            return now
        return last_sent

    def _send(self, event: process_pb.ProcessEvent) -> bool:
        return self._out.write_chunk(envelope(self._response(event=event)))


def _start_event(pid: int) -> process_pb.ProcessEvent:
    start: Oneof[Literal["start"], process_pb.ProcessEvent.StartEvent] = Oneof("start", _EVENT.StartEvent(pid=pid))
    return _EVENT(event=start)


def _to_event(event: Output | Exit) -> process_pb.ProcessEvent:
    if isinstance(event, Output):
        data: Oneof[Literal["data"], process_pb.ProcessEvent.DataEvent]
        data = Oneof("data", _data_event(event))
        return _EVENT(event=data)
    end: Oneof[Literal["end"], process_pb.ProcessEvent.EndEvent] = Oneof(
        "end",
        _EVENT.EndEvent(exit_code=event.exit_code, exited=event.exited, status=event.status, error=event.error),
    )
    return _EVENT(event=end)


def _data_event(output: Output) -> process_pb.ProcessEvent.DataEvent:
    # One annotated Oneof per branch: mypy cannot infer the field literal from a union context.
    if output.stream == "stdout":
        stdout: Oneof[Literal["stdout"], bytes] = Oneof("stdout", output.data)
        return _EVENT.DataEvent(output=stdout)
    stderr: Oneof[Literal["stderr"], bytes] = Oneof("stderr", output.data)
    return _EVENT.DataEvent(output=stderr)


def deadline_from(request: Request) -> float | None:
    header = request.header("Connect-Timeout-Ms")
    return time.monotonic() + int(header) / 1000 if header else None


def keepalive_from(request: Request) -> float | None:
    header = request.header("Keepalive-Ping-Interval")
    return float(header) if header else None


def _wait_time(deadline: float | None) -> float:
    if deadline is None:
        return _POLL_S
    return max(0.0, min(_POLL_S, deadline - time.monotonic()))
