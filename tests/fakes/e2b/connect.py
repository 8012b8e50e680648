"""Server side of the Connect protocol, JSON codec only (what the SDK's envd clients speak).

Messages are (de)serialised with the SDK's own generated protobuf classes, so field names,
int64-as-string and bytes-as-base64 match what the client expects by construction.
"""

from __future__ import annotations

import json
import struct
from typing import Protocol, TypeVar

from .httpio import Request, Responder

UNARY_CONTENT_TYPE = "application/json"
STREAM_CONTENT_TYPE = "application/connect+json"

_END_STREAM_FLAG = 0b10

# Connect error code -> HTTP status of a unary error response (connect protocol spec).
_HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}


class RpcError(Exception):
    """Raised by RPC implementations; becomes a Connect error on the wire."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JsonMessage(Protocol):
    def to_json(self) -> str: ...


M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)


class JsonMessageClass(Protocol[M_co]):
    def from_json(self, data: str | bytes, *, ignore_unknown_fields: bool = ...) -> M_co: ...


def decode_unary(request: Request, message_class: JsonMessageClass[M]) -> M:
    return _decode(request.body or b"{}", message_class)


def decode_stream_request(request: Request, message_class: JsonMessageClass[M]) -> M:
    """The single request message of a server-streaming call, unwrapped from its envelope."""
    body = request.body
    if len(body) < 5:
        raise RpcError("invalid_argument", "missing request envelope")
    flags, length = struct.unpack(">BI", body[:5])
    if flags & 0b01:
        raise RpcError("unimplemented", "compressed request envelopes are not supported")
    return _decode(body[5 : 5 + length], message_class)


def _decode(data: bytes, message_class: JsonMessageClass[M]) -> M:
    try:
        return message_class.from_json(data, ignore_unknown_fields=True)
    except Exception as e:
        raise RpcError("invalid_argument", f"cannot decode request: {e}") from e


def send_unary(responder: Responder, message: JsonMessage) -> None:
    responder.send(200, message.to_json().encode(), UNARY_CONTENT_TYPE)


def send_unary_error(responder: Responder, error: RpcError) -> None:
    status = _HTTP_STATUS.get(error.code, 500)
    responder.send_json(status, {"code": error.code, "message": error.message})


def envelope(message: JsonMessage) -> bytes:
    data = message.to_json().encode()
    return struct.pack(">BI", 0, len(data)) + data


def end_stream(error: RpcError | None = None) -> bytes:
    payload: dict[str, object] = {}
    if error is not None:
        payload["error"] = {"code": error.code, "message": error.message}
    data = json.dumps(payload).encode()
    return struct.pack(">BI", _END_STREAM_FLAG, len(data)) + data


def send_stream_error(responder: Responder, error: RpcError) -> None:
    """A streaming call that fails before its first message: HTTP 200 plus an error end-message."""
    responder.start_stream(STREAM_CONTENT_TYPE)
    responder.write_chunk(end_stream(error))
    responder.finish_stream()
