"""HTTP/1.1 plumbing for the fake: request parsing and a responder that can stream.

The SDK's transport (pyqwest, i.e. reqwest/hyper) keeps connections alive and sends streaming
request bodies with ``Transfer-Encoding: chunked``, so both have to be handled here;
``http.server`` does neither on its own.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]

# Upper bound on a request body, so a confused client cannot exhaust memory.
_MAX_BODY = 256 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Json:
        if not self.body:
            return {}
        parsed = json.loads(self.body)
        return parsed if isinstance(parsed, dict) else {}


def read_request(handler: BaseHTTPRequestHandler) -> Request:
    split = urlsplit(handler.path)
    headers = {name.lower(): value for name, value in handler.headers.items()}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(handler)
    else:
        length = int(headers.get("content-length") or 0)
        body = handler.rfile.read(min(length, _MAX_BODY)) if length else b""
    return Request(
        method=handler.command,
        path=split.path,
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=body,
    )


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    body = bytearray()
    while True:
        size_line = handler.rfile.readline(1024)
        if not size_line:
            raise ConnectionError("client closed the connection inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            _skip_trailers(handler)
            return bytes(body)
        if len(body) + size > _MAX_BODY:
            raise ConnectionError("chunked request body too large")
        body.extend(handler.rfile.read(size))
        handler.rfile.readline(16)  # the CRLF closing every chunk


def _skip_trailers(handler: BaseHTTPRequestHandler) -> None:
    while handler.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
        pass


@dataclass
class Responder:
    """Writes exactly one response: either a complete body or a chunked stream."""

    handler: BaseHTTPRequestHandler
    streaming: bool = field(default=False, init=False)
    client_gone: bool = field(default=False, init=False)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.handler.send_response(status)
            self.handler.send_header("Content-Type", content_type)
            self.handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.handler.send_header(name, value)
            self.handler.end_headers()
            self.handler.wfile.write(body)
            self.handler.wfile.flush()
        except OSError:
            self._mark_gone()

    def send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json", headers)

    def send_empty(self, status: int = 204) -> None:
        try:
            self.handler.send_response(status)
            self.handler.send_header("Content-Length", "0")
            self.handler.end_headers()
            self.handler.wfile.flush()
        except OSError:
            self._mark_gone()

    def start_stream(self, content_type: str) -> None:
        self.streaming = True
        try:
            self.handler.send_response(200)
            self.handler.send_header("Content-Type", content_type)
            self.handler.send_header("Transfer-Encoding", "chunked")
            self.handler.end_headers()
            self.handler.wfile.flush()
        except OSError:
            self._mark_gone()

    def write_chunk(self, data: bytes) -> bool:
        """Send one chunk; False once the client has gone away."""
        if self.client_gone:
            return False
        try:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()
        except OSError:
            self._mark_gone()
        return not self.client_gone

    def finish_stream(self) -> None:
        if not self.client_gone:
            try:
                self.handler.wfile.write(b"0\r\n\r\n")
                self.handler.wfile.flush()
            except OSError:
                self._mark_gone()

    def abort(self) -> None:
        """Drop the connection mid-response, the way a dying sandbox's proxy connection ends."""
        self._mark_gone()
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def _mark_gone(self) -> None:
        self.client_gone = True
        self.handler.close_connection = True
