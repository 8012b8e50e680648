"""A loopback HTTP server in a background thread, shared by the fakes that speak plain HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class FakeHTTPServer(ThreadingHTTPServer):
    # Daemon handler threads never keep pytest alive if a client leaves a socket open.
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any, host: str = "127.0.0.1") -> None:
        self.fake = fake  # handlers reach their fake as self.server.fake
        super().__init__((host, 0), handler)


class Loopback:
    """Serves `handler` on 127.0.0.1 (or `host`: a container reaches the host on its bridge address),
    on a free port, until stopped; starting twice is harmless."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any, name: str, host: str = "127.0.0.1") -> None:
        self.host = host
        self._handler = handler
        self._fake = fake
        self._name = name
        self._httpd: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        if self._httpd is not None:
            return
        self._httpd = FakeHTTPServer(self._handler, self._fake, self.host)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{self._name} is not running")
        return int(self._httpd.server_address[1])


class LoopbackFake:
    """start/stop, a context manager and the port, for a fake that serves through `self._loop`."""

    _loop: Loopback

    def _before_start(self) -> None:
        """Prepare what serving needs (a directory, say); runs on the first start only."""

    def start(self) -> Self:
        if not self._loop.running:
            self._before_start()
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._loop.port
