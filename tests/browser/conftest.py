"""Browser tests: the web console in the system's Chromium, driven by Playwright (no downloaded
browser), against `solver serve`'s server on an ephemeral port with the local orchestrator."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from solver_core.api import ApiDeps
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.serve import background_publisher, make_server
from solver_core.wiring import Container
from tests.support.api_client import HttpClient
from tests.support.runtime import make_repo, runtime_settings

CHROMIUM = os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5, mean([1, 2])\nprint('ok')\n"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@dataclass
class Served:
    url: str
    client: HttpClient
    container: Container
    repo: Path
    tmp: Path
    token: str | None


def serve(tmp_path: Path, *, token: str | None = None) -> Iterator[Served]:
    settings = runtime_settings(
        tmp_path, f"sqlite:///{tmp_path / 'solver.db'}", allow_unregistered_models=False, sandbox_isolation="none"
    )
    container = open_container(settings)
    orchestrator = container.orchestrator
    deps = ApiDeps.from_container(container, orchestrator, publish=background_publisher(container))
    server = make_server(lambda: deps, "127.0.0.1", 0, token=token, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    repo = make_repo(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": TESTS})
    try:
        client = HttpClient(server.url, owner=local_owner(), token=token, world=None)
        yield Served(server.url, client, container, repo, tmp_path, token)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        container.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a test saves its screenshots: CONSOLE_SCREENSHOTS when set (docs/ is made from
    these), else the test's temporary folder."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def request_body(repo: Path, model: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "repo_url": str(repo),
        "issue": {"title": title, "body": "mean([1, 2]) prints 1."},
        "models": [model],
        "limits": {"step_limit": 10, "cost_limit_usd": 1.0, "time_limit_s": 600},
        "test_command": "python3 test_calc.py",
    } | extra
