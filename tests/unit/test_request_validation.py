"""Each validation rule of the solve request rejects a bad input, naming the field and the rule."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from solver_core.models import SolveRequest
from solver_core.rules import RequestPolicy

pytestmark = pytest.mark.unit

LOCAL_POLICY = RequestPolicy(allow_local_repos=True, allow_replay_models=True)


def request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "repo_url": "https://github.com/org/repo",
        "ref": "main",
        "issue": {"title": "Fix the bug", "body": "It breaks.\n\nDetails."},
        "models": ["anthropic/claude-sonnet-4-5"],
    }
    return base | changes


def rejection(data: dict[str, Any], policy: RequestPolicy | None = None) -> tuple[tuple[str | int, ...], str, str]:
    """The first error's (location, rule, message) of a request that must be rejected."""
    with pytest.raises(ValidationError) as caught:
        SolveRequest.model_validate(data, context=policy)
    error = caught.value.errors()[0]
    return error["loc"], error["type"], error["msg"]


def test_a_good_request_passes_with_defaults() -> None:
    parsed = SolveRequest.model_validate(request())
    assert parsed.limits.step_limit == 50
    assert parsed.run_models() == ["anthropic/claude-sonnet-4-5"]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://github.com/org/repo", "url_scheme"),
        ("git@github.com:org/repo.git", "url_scheme"),
        ("ftp://github.com/org/repo", "url_scheme"),
        ("https://user:pass@github.com/org/repo", "url_credentials"),
        ("https://ghp_token@github.com/org/repo", "url_credentials"),
        ("https://evil.example.com/org/repo", "host_not_allowed"),
        ("https://github.com.evil.io/org/repo", "host_not_allowed"),
        ("https://github.com/org/repo?x=1", "url_query"),
        ("https://github.com/org/repo#frag", "url_query"),
        ("https://github.com/org", "url_path"),
        ("https://github.com/org/../repo", "url_path"),
        ("https://github.com/org/re po", "url_path"),
        ("https://github.com/org/repo\u202e", "control_characters"),
        ("https://github.com:99999/org/repo", "url_syntax"),
        ("/home/me/project", "local_repo_not_allowed"),
        ("file:///home/me/project", "local_repo_not_allowed"),
        ("https://github.com/" + "a" * 3000, "too_long"),
    ],
)
def test_repository_urls_are_https_on_the_allowlist_without_credentials(url: str, rule: str) -> None:
    loc, kind, _ = rejection(request(repo_url=url))
    assert loc == ("repo_url",)
    assert kind == rule


def test_rejections_explain_themselves() -> None:
    _, _, message = rejection(request(repo_url="https://evil.example.com/org/repo"))
    assert "evil.example.com" in message
    assert "github.com" in message


def test_http_is_accepted_only_for_hosts_the_settings_name() -> None:
    url = "http://127.0.0.1:8080/org/repo.git"
    assert rejection(request(repo_url=url))[1] == "url_scheme"
    policy = RequestPolicy(allowed_http_hosts=frozenset({"127.0.0.1"}))
    assert SolveRequest.model_validate(request(repo_url=url), context=policy).repo_url == url


def test_local_repositories_need_the_policy_and_a_real_git_directory(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert rejection(request(repo_url=str(tmp_path)))[1] == "local_repo_not_allowed"
    parsed = SolveRequest.model_validate(request(repo_url=str(tmp_path)), context=LOCAL_POLICY)
    assert parsed.repo_url == str(tmp_path)
    assert rejection(request(repo_url=str(tmp_path / "nope")), LOCAL_POLICY)[1] == "local_repo_missing"
    assert rejection(request(repo_url=f"{tmp_path}/../x"), LOCAL_POLICY)[1] == "local_repo_path"


@pytest.mark.parametrize(
    "ref", ["main", "feature/x-1", "v1.2.3", "deadbeef", "0123456789abcdef0123456789abcdef01234567", "a@b"]
)
def test_valid_refs_pass(ref: str) -> None:
    assert SolveRequest.model_validate(request(ref=ref)).ref == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-rf",
        "a..b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "a@{1}",
        "@",
        "/main",
        "main/",
        "a//b",
        "main.",
        ".hidden",
        "x/.y",
        "branch.lock",
        "a\x00b",
        "$(rm -rf /)",
        "x" * 256,
    ],
)
def test_refs_follow_gits_rules(ref: str) -> None:
    loc, kind, _ = rejection(request(ref=ref))
    assert loc == ("ref",)
    assert kind == "git_ref"


@pytest.mark.parametrize(
    ("issue", "loc", "rule"),
    [
        ({"title": ""}, ("issue", "title"), "string_too_short"),
        ({"title": "   "}, ("issue", "title"), "blank"),
        ({"title": "x" * 301}, ("issue", "title"), "string_too_long"),
        ({"title": "two\nlines"}, ("issue", "title"), "single_line"),
        ({"title": "bell\x07"}, ("issue", "title"), "control_characters"),
        ({"title": "ok", "body": "x" * 65_537}, ("issue", "body"), "string_too_long"),
        ({"title": "ok", "body": "nul\x00"}, ("issue", "body"), "control_characters"),
        ({"title": "ok", "url": "http://github.com/o/r/issues/1"}, ("issue", "url"), "url_scheme"),
        ({"title": "ok", "unknown": 1}, ("issue", "unknown"), "extra_forbidden"),
    ],
)
def test_issue_text_is_bounded_and_clean(issue: dict[str, Any], loc: tuple[str, ...], rule: str) -> None:
    assert rejection(request(issue=issue))[:2] == (loc, rule)


@pytest.mark.parametrize("field", ["setup_command", "test_command"])
@pytest.mark.parametrize(
    ("value", "rule"),
    [("", "string_too_short"), ("  ", "blank"), ("x" * 4097, "string_too_long"), ("a\x00", "control_characters")],
)
def test_commands_are_bounded(field: str, value: str, rule: str) -> None:
    assert rejection(request(**{field: value}))[:2] == ((field,), rule)


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../up.py", "a/../b.py", ".git/hooks/post-checkout", "a//b.py", "-rf", "sp ace.py", ""]
)
def test_the_reproduction_script_stays_inside_the_repository(path: str) -> None:
    loc, rule = rejection(request(reproduce=True, reproduce_path=path))[:2]
    assert loc == ("reproduce_path",)
    assert rule in {"repo_file", "string_too_short"}


def test_a_reproduction_script_in_a_folder_with_its_own_command_is_accepted() -> None:
    parsed = SolveRequest.model_validate(
        request(
            reproduce=True, reproduce_path="tests/repro/issue_12.sh", reproduce_command="bash tests/repro/issue_12.sh"
        )
    )
    assert (parsed.reproduce, parsed.reproduce_path) == (True, "tests/repro/issue_12.sh")


@pytest.mark.parametrize(
    ("changes", "loc", "rule"),
    [
        ({"limits": {"step_limit": 0}}, ("limits", "step_limit"), "greater_than_equal"),
        ({"limits": {"step_limit": 1001}}, ("limits", "step_limit"), "less_than_equal"),
        ({"limits": {"cost_limit_usd": 0}}, ("limits", "cost_limit_usd"), "greater_than"),
        ({"limits": {"cost_limit_usd": 101}}, ("limits", "cost_limit_usd"), "less_than_equal"),
        ({"limits": {"time_limit_s": 5}}, ("limits", "time_limit_s"), "greater_than_equal"),
        ({"limits": {"time_limit_s": 86_401}}, ("limits", "time_limit_s"), "less_than_equal"),
        ({"limits": {"steps": 3}}, ("limits", "steps"), "extra_forbidden"),
        ({"attempts_per_model": 0}, ("attempts_per_model",), "greater_than_equal"),
        ({"attempts_per_model": 11}, ("attempts_per_model",), "less_than_equal"),
        ({"max_parallel": 0}, ("max_parallel",), "greater_than_equal"),
        ({"max_parallel": 33}, ("max_parallel",), "less_than_equal"),
        ({"models": []}, ("models",), "too_short"),
        ({"models": [f"m{i}" for i in range(9)]}, ("models",), "too_long"),
        ({"models": ["bad model"]}, ("models", 0), "model_name"),
        ({"models": ["replay:/tmp/x.yaml"]}, ("models", 0), "replay_not_allowed"),
        ({"models": ["a", "b", "c"], "attempts_per_model": 6}, (), "too_many_runs"),
        ({"callback_url": "http://example.com/hook"}, ("callback_url",), "url_scheme"),
        ({"callback_url": "https://u:p@example.com/hook"}, ("callback_url",), "url_credentials"),
        ({"external_ref": {"k": "x" * 257}}, ("external_ref", "k"), "string_too_long"),
        ({"external_ref": {f"k{i}": "v" for i in range(17)}}, ("external_ref",), "too_long"),
        ({"surprise": True}, ("surprise",), "extra_forbidden"),
        ({"attempts_per_model": "two"}, ("attempts_per_model",), "int_parsing"),
    ],
)
def test_bounds_on_limits_runs_parallelism_and_unknown_fields(
    changes: dict[str, Any], loc: tuple[str, ...], rule: str
) -> None:
    assert rejection(request(**changes))[:2] == (loc, rule)


def test_replay_models_are_accepted_where_the_policy_allows(tmp_path: Path) -> None:
    replay = tmp_path / "fix.yaml"
    replay.write_text("actions: []\n")
    parsed = SolveRequest.model_validate(request(models=[f"replay:{replay}"]), context=LOCAL_POLICY)
    assert parsed.models == [f"replay:{replay}"]


def test_runs_are_models_times_attempts_in_order() -> None:
    parsed = SolveRequest.model_validate(request(models=["a/x", "b/y"], attempts_per_model=2))
    assert parsed.run_models() == ["a/x", "a/x", "b/y", "b/y"]


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    first = SolveRequest.model_validate(request())
    reordered = SolveRequest.model_validate(dict(reversed(list(request().items()))))
    changed = SolveRequest.model_validate(request(ref="dev"))
    assert first.fingerprint() == reordered.fingerprint()
    assert first.fingerprint() != changed.fingerprint()
