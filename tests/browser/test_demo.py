"""The issue's "done when": after `solver demo`, the server `solver serve` builds (same settings,
same home) shows the demo's solve in the console with its runs, timeline, diff and trajectories.
Its screenshots are the ones in docs/ (CONSOLE_SCREENSHOTS=docs/console pytest tests/browser/test_demo.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from solver_core.api import ApiDeps
from solver_core.cli.common import local_owner, open_container
from solver_core.cli.serve import background_publisher, make_server, serve_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLVER_")}
    env |= {"SOLVER_HOME": str(home), "SOLVER_SANDBOX_DIR": str(home / "sandboxes"), "SOLVER_SANDBOX_ISOLATION": "none"}
    command = [sys.executable, "-m", "solver_core.cli", "demo", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    for name in [k for k in os.environ if k.startswith("SOLVER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOLVER_HOME", str(home))
    settings = serve_settings(allow_local_repos=False, allow_replay_models=False)  # as `solver serve` reads them
    container = open_container(settings)
    deps = ApiDeps.from_container(container, container.orchestrator, publish=background_publisher(container))
    server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner=local_owner())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        container.close()


def test_the_demos_solve_in_the_console(shots: Path, demo_server: str, page: Any) -> None:
    page.set_viewport_size({"width": 1100, "height": 760})
    page.goto(f"{demo_server}/ui")
    row = page.locator("tr[data-solve]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("mean() drops the fractional part of the average")
    expect(row.locator(".status")).to_have_text("finished")
    expect(row.locator(".outcome")).to_have_text("patch, tests passed")
    expect(row.locator("td.runs")).to_have_text("1 passed, 1 failed, 1 no patch")
    page.screenshot(path=str(shots / "solves.png"))

    row.get_by_role("link").click()
    expect(page.locator("#runs tbody tr")).to_have_count(3)
    expect(page.locator("#runs tbody tr.champion")).to_contain_text("replay:fix.yaml")
    expect(page.locator("#reason")).to_contain_text("tests passed")
    # The header's selection: the baseline on the base commit, then each candidate's signals.
    expect(page.locator("#selection")).to_contain_text("tests failed on the base commit")
    expect(page.locator("#selection")).to_contain_text("#1, tests passed, fixed 1, broke 0")
    for lane in range(3):
        expect(page.locator("#timeline text.lane-label").nth(lane)).to_have_text(f"run {lane}")
    expect(page.locator("#timeline rect.ph-agent")).to_have_count(3)
    expect(page.locator("#timeline rect.ph-verify")).to_have_count(2)  # the explorer had no patch to verify
    expect(page.locator("#champion-diff tr.added")).to_contain_text("return total / len(values)")
    page.set_viewport_size({"width": 1100, "height": 1400})
    page.screenshot(path=str(shots / "solve.png"))

    page.set_viewport_size({"width": 1100, "height": 760})
    page.locator("#runs tr.champion").get_by_role("link", name="steps").click()
    expect(page.locator("li.step")).to_have_count(6)
    expect(page.locator("#step-4 pre.command")).to_contain_text("sed -i")
    page.screenshot(path=str(shots / "run.png"))
    page.keyboard.press("j")
    expect(page.locator("#step-1")).to_be_focused()

    page.goto(f"{demo_server}/ui/new")
    page.get_by_label("Title").fill("")
    page.get_by_role("button", name="Start the solve").click()
    expect(page.locator("#repo_url-error")).to_be_visible()
    page.screenshot(path=str(shots / "new.png"))
