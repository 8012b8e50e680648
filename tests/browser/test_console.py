"""The web console in a real browser: start a solve from the form, watch it finish without a
reload, read the champion's diff, step through a trajectory with the keyboard, cancel a slow
solve, and see hostile trajectory output shown as text."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served, request_body
from tests.support.runtime import write_replay

pytestmark = pytest.mark.browser

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
FIX = ("sleep 2", "cat calc.py", "sed -i 's|//|/|' calc.py", "python3 test_calc.py", SUBMIT)
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def start(served: Served, model: str, title: str) -> str:
    created = served.client.call("POST", "/solves", body=request_body(served.repo, model, title))
    assert created.status == 202, created.text
    return str(created.json["id"])


def wait_status(served: Served, solve_id: str, wanted: set[str], timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(served.client.call("GET", f"/solves/{solve_id}").json["status"])
        if status in wanted:
            return status
        time.sleep(0.2)
    raise AssertionError(f"solve {solve_id} never reached {wanted}")


def test_start_from_the_form_and_watch_it_succeed_without_reloading(served: Served, page: Any, shots: Path) -> None:
    fix = write_replay(served.tmp / "fix.yaml", *FIX)
    page.goto(f"{served.url}/ui/new")
    page.get_by_label("Repository URL or path").fill(str(served.repo))
    page.get_by_label("Title").fill("mean() floors the average")
    page.get_by_label("Body").fill("mean([1, 2]) prints 1 instead of 1.5.")
    page.get_by_label("Models, one per line").fill(fix)
    page.get_by_label("Test command").fill("python3 test_calc.py")
    page.get_by_label("Steps").fill("10")
    page.get_by_label("Ask each attempt for a reproduction script").check()
    page.get_by_label("Script command").fill("python3 reproduce_issue.py")
    page.screenshot(path=str(shots / "new-filled.png"))
    page.get_by_role("button", name="Start the solve").click()

    page.wait_for_url(re.compile(r"/ui/solves/[0-9a-f-]{36}$"))
    created = served.client.call("GET", f"/solves/{page.url.rsplit('/', 1)[1]}").json
    assert (created["reproduce"], created["reproduce_path"], created["reproduce_command"]) == (
        True, "reproduce_issue.py", "python3 reproduce_issue.py",
    )  # fmt: skip
    head = page.locator("#solve-head header .status").first
    expect(head).to_have_text(re.compile("queued|running"))
    page.evaluate("window.stillTheSamePage = true")
    expect(head).to_have_text("finished", timeout=180_000)
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, never reloaded
    expect(page.locator("#solve-head header .outcome")).to_have_text("patch, tests passed")
    expect(page.locator("#champion")).to_contain_text("run 0")
    expect(page.locator("#reason")).to_contain_text("tests passed")
    expect(page.locator("#events")).to_contain_text("solve finished")  # the live feed followed it
    expect(page.locator("#events li", has_text="tests passed").first).to_contain_text("run 0")
    expect(page.locator("#timeline rect.ph-agent")).to_have_count(1)
    expect(page.locator("#timeline rect.ph-verify")).to_have_count(1)
    page.screenshot(path=str(shots / "solve-live.png"), full_page=True)


def test_a_solve_whose_tests_failed_never_reads_succeeded(served: Served, page: Any) -> None:
    """Followed live from running to its end: the outcome is the badge, the state says "finished"."""
    breaks = write_replay(served.tmp / "breaks.yaml", "sleep 2", "sed -i 's|//|%|' calc.py", SUBMIT)
    solve_id = start(served, breaks, "tests fail after this")
    page.goto(f"{served.url}/ui/solves/{solve_id}")
    head = page.locator("#solve-head header")
    expect(head.locator(".status")).to_have_text(re.compile("queued|running"))
    expect(head.locator(".outcome")).to_have_count(0)  # no outcome while it runs
    expect(head.locator(".outcome")).to_have_text("patch, tests failed", timeout=180_000)
    expect(head.locator(".status")).to_have_text("finished")
    row = page.locator("#runs tbody tr").first
    expect(row.locator(".outcome")).to_have_text("patch, tests failed")
    expect(row.locator(".status")).to_have_text("finished")
    expect(row.locator("td", has_text="failed (1)")).to_have_count(1)
    expect(page.locator("#run-counts")).to_have_text("1 failed")
    expect(page.locator("#solve-head")).not_to_contain_text("succeeded")

    page.goto(f"{served.url}/ui")
    listed = page.locator(f'tr[data-solve="{solve_id}"]')
    expect(listed.locator(".outcome")).to_have_text("patch, tests failed")
    expect(listed.locator("td.runs")).to_have_text("1 failed")
    expect(listed).not_to_contain_text("succeeded")
    page.locator(f'tr[data-solve="{solve_id}"] a').click()
    page.locator("#runs tbody tr").first.get_by_role("link", name="steps").click()
    expect(page.locator("#run-head .outcome")).to_have_text("patch, tests failed")
    expect(page.locator("#run-head")).not_to_contain_text("succeeded")


def test_the_form_can_turn_test_detection_off(served: Served, page: Any) -> None:
    """The API's detect_tests: false (the CLI's --no-tests): the patch is then shown as not tested."""
    fix = write_replay(served.tmp / "fix.yaml", *FIX[1:])
    page.goto(f"{served.url}/ui/new")
    detect = page.get_by_label("Detect tests when no command is given")
    expect(detect).to_be_checked()  # the API's default
    expect(page.locator("#test_command-help")).to_contain_text("when empty, one is detected from the repository")
    page.get_by_label("Repository URL or path").fill(str(served.repo))
    page.get_by_label("Title").fill("no tests this time")
    page.get_by_label("Models, one per line").fill(fix)
    detect.uncheck()
    page.get_by_role("button", name="Start the solve").click()

    page.wait_for_url(re.compile(r"/ui/solves/[0-9a-f-]{36}$"))
    solve_id = page.url.rsplit("/", 1)[1]
    from solver_core.cli.common import local_owner

    assert served.container.solves.get(local_owner(), UUID(solve_id)).detect_tests is False  # not in GET's answer
    expect(page.locator("#solve-head header .outcome")).to_have_text("patch, not tested", timeout=180_000)
    assert served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["tests"] is None


def test_the_list_follows_a_running_solve(served: Served, page: Any, shots: Path) -> None:
    fix = write_replay(served.tmp / "fix.yaml", *FIX)
    page.goto(f"{served.url}/ui")
    expect(page.locator("#solves")).to_contain_text("No solves")
    solve_id = start(served, fix, "listed while it runs")
    row = page.locator(f'tr[data-solve="{solve_id}"]')
    expect(row).to_contain_text("listed while it runs")  # appeared without a reload
    expect(row.locator(".status")).to_have_text("finished", timeout=180_000)
    expect(row.locator(".outcome")).to_have_text("patch, tests passed")
    expect(row.locator("td.runs")).to_have_text("1 passed")
    page.screenshot(path=str(shots / "solves-live.png"))

    page.select_option("#f-status", "failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#solves")).to_contain_text("No solves match these filters")


def test_the_champions_diff_unified_and_side_by_side(served: Served, page: Any) -> None:
    fix = write_replay(served.tmp / "fix.yaml", *FIX[1:])
    solve_id = start(served, fix, "diff")
    assert wait_status(served, solve_id, {"succeeded", "failed"}) == "succeeded"
    page.goto(f"{served.url}/ui/solves/{solve_id}")
    unified = page.locator("#champion-diff table.diff.unified")
    expect(unified.locator("tr.removed")).to_contain_text("return sum(values) // len(values)")
    expect(unified.locator("tr.added")).to_contain_text("return sum(values) / len(values)")
    expect(unified.locator("tr.added .tok-k").first).to_have_text("return")  # highlighted as Python
    page.get_by_role("link", name="Side by side").click()
    split = page.locator("#champion-diff table.diff.split")
    row = split.locator("tr", has=page.locator("td.removed"))
    expect(row.locator("td.removed")).to_contain_text("//")
    expect(row.locator("td.added")).to_contain_text("/ len(values)")


def test_compare_two_candidates(served: Served, page: Any) -> None:
    fix = write_replay(served.tmp / "fix.yaml", *FIX[1:])
    other = write_replay(served.tmp / "other.yaml", "sed -i 's|// len(values)|/ max(len(values), 1)|' calc.py", SUBMIT)
    body = request_body(served.repo, fix, "compare") | {"models": [fix, other]}
    solve_id = served.client.call("POST", "/solves", body=body).json["id"]
    wait_status(served, solve_id, {"succeeded", "failed"})
    page.goto(f"{served.url}/ui/solves/{solve_id}")
    page.get_by_role("button", name="Compare").click()
    delta = page.locator("#compare table.diff").first
    before, after = delta.locator("tr.removed", has_text="return"), delta.locator("tr.added", has_text="return")
    expect(before).to_contain_text("+    return sum(values) / len(values)")
    expect(after).to_contain_text("+    return sum(values) / max(len(values), 1)")


def test_step_through_a_trajectory_with_the_keyboard(served: Served, page: Any, shots: Path) -> None:
    long_output = "seq 1 200"
    fix = write_replay(served.tmp / "fix.yaml", "cat calc.py", long_output, "sed -i 's|//|/|' calc.py", SUBMIT)
    solve_id = start(served, fix, "keys")
    wait_status(served, solve_id, {"succeeded", "failed"})
    run_id = served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["id"]
    page.goto(f"{served.url}/ui/solves/{solve_id}/runs/{run_id}")
    expect(page.locator("li.step")).to_have_count(4)
    focused = "document.activeElement && document.activeElement.id"
    page.keyboard.press("j")
    assert page.evaluate(focused) == "step-1"
    expect(page.locator("#step-1 pre.command")).to_contain_text("$ cat calc.py")
    expect(page.locator("#step-1 .exit")).to_have_text("0")
    page.keyboard.press("j")
    assert page.evaluate(focused) == "step-2"
    output = page.locator("#step-2 details.output")
    expect(output).not_to_have_attribute("open", "")  # 200 lines start collapsed
    page.keyboard.press("o")
    expect(output).to_have_attribute("open", "")
    expect(output.locator("pre.out")).to_contain_text("200")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.evaluate(focused) == "step-2"
    page.screenshot(path=str(shots / "run-keyboard.png"))

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the raw trajectory").click()
    saved = Path(download.value.path()).read_text()
    assert '"trajectory_format": "mini-swe-agent-1.1"' in saved
    assert "seq 1 200" in saved


def test_cancel_a_slow_solve(served: Served, page: Any) -> None:
    slow = write_replay(served.tmp / "slow.yaml", "sleep 60", "sleep 60")
    solve_id = start(served, slow, "slow")
    wait_status(served, solve_id, {"running"})
    page.goto(f"{served.url}/ui/solves/{solve_id}")
    page.get_by_role("button", name="Cancel solve").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Cancel this solve?")
    page.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert served.client.call("GET", f"/solves/{solve_id}").json["status"] == "running"  # declined: nothing sent

    page.get_by_role("button", name="Cancel solve").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#solve-head header .status").first).to_have_text("cancelled", timeout=60_000)
    assert served.client.call("GET", f"/solves/{solve_id}").json["status"] == "cancelled"


def test_hostile_trajectory_output_is_shown_as_text(served: Served, page: Any) -> None:
    hostile = write_replay(served.tmp / "hostile.yaml", f"printf '%s\\n' '{HOSTILE}'", SUBMIT)
    solve_id = start(served, hostile, f"title {HOSTILE}")
    wait_status(served, solve_id, {"succeeded", "failed"})
    run_id = served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["id"]
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    for path in ("/ui", f"/ui/solves/{solve_id}", f"/ui/solves/{solve_id}/runs/{run_id}"):
        page.goto(served.url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("main img").count() == 0
        assert page.locator("main script").count() == 0
    expect(page.locator("#step-1 pre.out")).to_have_text(HOSTILE + "\n")
    expect(page.locator("#step-1 pre.command")).to_contain_text(HOSTILE)
    page.wait_for_timeout(500)
    assert dialogs == []


def test_validation_errors_are_shown_beside_their_fields(served: Served, page: Any) -> None:
    page.goto(f"{served.url}/ui/new")
    page.get_by_label("Repository URL or path").fill("https://evil.example.com/x/y")
    page.get_by_label("Models, one per line").fill("replay:/nope.yaml")
    page.get_by_label("Steps").fill("0")
    page.get_by_label("Script path").fill("../outside.py")
    page.get_by_role("button", name="Start the solve").click()
    expect(page.locator("#issue_title-error")).to_be_visible()
    expect(page.locator("#reproduce_path-error")).to_contain_text("inside the repository")
    expect(page.locator("#issue_title-error")).to_contain_text("Field required")
    expect(page.locator("#repo_url-error")).to_contain_text("evil.example.com")
    expect(page.locator("#step_limit-error")).to_contain_text("greater than or equal to 1")
    expect(page.get_by_label("Steps")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#test_command-error")).to_be_hidden()
    assert page.url.endswith("/ui/new")


def test_a_running_runs_trajectory_is_read_from_its_checkpoint_and_followed(served: Served, page: Any) -> None:
    slow = write_replay(served.tmp / "slow.yaml", "echo first", "sleep 3", "echo third", "sleep 2", SUBMIT)
    solve_id = start(served, slow, "follow the steps")
    deadline = time.monotonic() + 60
    while served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["steps"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    run_id = served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["id"]
    page.goto(f"{served.url}/ui/solves/{solve_id}/runs/{run_id}")
    expect(page.locator("#steps")).to_have_attribute("data-follow", "yes")  # the run is still going
    expect(page.locator(".tools")).to_contain_text("so far")  # read from the checkpoint parts
    expect(page.locator("#step-1 pre.out")).to_have_text("first\n")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#step-3 pre.out")).to_have_text("third\n", timeout=60_000)
    expect(page.locator("li.step")).to_have_count(5, timeout=60_000)
    expect(page.locator("#run-head .status")).to_have_text("finished", timeout=60_000)
    expect(page.locator("#run-head .outcome")).to_have_text("no patch")  # it only echoed
    assert page.evaluate("window.stillTheSamePage") is True


def test_sign_in_with_the_servers_token(tmp_path: Path, page: Any) -> None:
    from tests.browser.conftest import serve

    for served in serve(tmp_path, token="browser-token-123"):
        page.goto(f"{served.url}/ui")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_role("link", name="Sign in with the server's token").click()
        page.get_by_label("Token").fill("not-it")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not this server's")
        page.get_by_label("Token").fill("browser-token-123")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Solves")).to_be_visible()
        cookies = page.context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("solver_session", True, "Strict")]
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it


def test_the_pages_read_without_javascript(served: Served, browser: Any) -> None:
    fix = write_replay(served.tmp / "fix.yaml", *FIX[1:])
    solve_id = start(served, fix, "no script")
    wait_status(served, solve_id, {"succeeded", "failed"})
    run_id = served.client.call("GET", f"/solves/{solve_id}").json["runs"][0]["id"]
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{served.url}/ui")
        page.get_by_role("link", name="no script").click()
        expect(page.locator("#solve-head header .status").first).to_have_text("finished")
        expect(page.locator("#champion-diff tr.added")).to_contain_text("/ len(values)")
        page.get_by_role("link", name="Side by side").click()
        expect(page.locator("#champion-diff table.split td.added")).to_contain_text("/ len(values)")
        expect(page.get_by_role("button", name="Cancel solve")).to_have_count(0)  # actions need the script
        page.goto(f"{served.url}/ui/solves/{solve_id}/runs/{run_id}")
        expect(page.locator("li.step")).to_have_count(len(FIX) - 1)
        expect(page.locator("#step-3 pre.out")).to_contain_text("ok")
    finally:
        context.close()


def test_what_the_reader_opened_stays_open_while_the_page_refreshes(served: Served, page: Any) -> None:
    slow = write_replay(served.tmp / "slow.yaml", "sleep 60")
    solve_id = start(served, slow, "stay open")
    wait_status(served, solve_id, {"running"})
    page.goto(f"{served.url}/ui/solves/{solve_id}")
    page.get_by_text("Issue text").click()
    expect(page.locator("details.issue-body")).to_have_attribute("open", "")
    page.evaluate("document.getElementById('solve-head').dataset.marker = 'old'")
    expect(page.locator("#solve-head")).not_to_have_attribute("data-marker", "old")  # replaced by a refresh
    expect(page.locator("details.issue-body")).to_have_attribute("open", "")
    served.client.call("POST", f"/solves/{solve_id}/cancel")


def test_publish_asks_first_then_publishes_again(served: Served, page: Any) -> None:
    from solver_core.cli.common import local_owner

    served.container.allowlist.add(local_owner(), "github.com/o/r")
    fix = write_replay(served.tmp / "fix.yaml", *FIX[1:])
    body = request_body(served.repo, fix, "publish me") | {"publish": {"comment": True}}
    body["issue"]["url"] = "https://github.com/o/r/issues/1"
    solve_id = served.client.call("POST", "/solves", body=body).json["id"]
    wait_status(served, solve_id, {"succeeded", "failed"})
    before = len(errors_after_the_first_publish(served, solve_id))

    page.goto(f"{served.url}/ui/solves/{solve_id}")
    page.get_by_role("button", name="Publish to GitHub").click()
    expect(page.locator("dialog#confirm")).to_contain_text("Publish this solve to GitHub?")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".action-result")).to_have_text("Publish to GitHub: done", timeout=30_000)  # slow under load

    # This machine has no GitHub credentials: the attempt is recorded on the solve as an error event.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = served.client.call("GET", f"/solves/{solve_id}/events", query={"limit": "1000"}).json["items"]
        if len(events) > before and any(e["kind"] == "error" for e in events[before:]):
            return
        time.sleep(0.2)
    raise AssertionError("publishing left no trace on the solve")


def errors_after_the_first_publish(served: Served, solve_id: str) -> list[dict[str, Any]]:
    """The solve's events once its own publish at the end (no GitHub credentials here) has failed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events: list[dict[str, Any]] = served.client.call(
            "GET", f"/solves/{solve_id}/events", query={"limit": "1000"}
        ).json["items"]
        if any(e["kind"] == "error" for e in events):
            return events
        time.sleep(0.2)
    raise AssertionError("the solve's own publish left no trace")


def test_the_printed_sign_in_link_signs_in_and_leaves_no_token_behind(tmp_path: Path, page: Any) -> None:
    from tests.browser.conftest import serve

    for served in serve(tmp_path, token="fragment-token-456"):
        page.goto(f"{served.url}/ui/login#token=fragment-token-456")
        expect(page.get_by_role("heading", name="Solves")).to_be_visible()
        assert page.url == f"{served.url}/ui"
        assert "fragment-token-456" not in page.evaluate("location.href + document.body.innerHTML")
        assert [c["name"] for c in page.context.cookies()] == ["solver_session"]
        page.go_back()
        assert "fragment-token-456" not in page.url  # replaced in the history, not just left behind
