"""`solver serve` answers on threads, and powertools keeps the request being resolved in shared places
(the current event on a class attribute): the server resolves one request at a time, so concurrent
requests each see their own event and route."""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from solver_core.api.http import ApiServer
from tests.support.api import echo_app

pytestmark = pytest.mark.integration


def test_concurrent_requests_each_see_their_own_event_and_route() -> None:
    server = ApiServer(("127.0.0.1", 0), echo_app(), owner="local:tester", token=None, max_body_bytes=lambda: 1000)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]

    def calls(first: int) -> list[dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers = []
        for i in range(first, first + 25):
            connection.request("GET", f"/echo/{i}")
            answers.append(json.loads(connection.getresponse().read()))
        connection.close()
        return answers

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = [a for chunk in pool.map(calls, range(0, 400, 25)) for a in chunk]
    finally:
        server.shutdown()
        server.server_close()
    assert [a["path"] for a in answers] == [f"/echo/{i}" for i in range(400)]
    assert {a["route"] for a in answers} == {"/echo/<n>"}
