"""The publish option of a solve request: what it needs (a GitHub issue, a GitHub repository), its
branch prefix, and where publishing goes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from solver_core.github_urls import parse_issue_url, parse_repo_url, pull_request_repo
from solver_core.models import SolveRequest
from solver_core.rules import RequestPolicy

pytestmark = pytest.mark.unit

ISSUE = "https://github.com/org/repo/issues/12"


def request(publish: dict[str, Any] | None, *, issue_url: str | None = ISSUE, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "repo_url": "https://github.com/org/repo",
        "issue": {"title": "Fix the bug", "url": issue_url},
        "models": ["anthropic/claude-sonnet-4-5"],
        "publish": publish,
    }
    return data | changes


def rejection(data: dict[str, Any], policy: RequestPolicy | None = None) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        SolveRequest.model_validate(data, context=policy)
    error = caught.value.errors()[0]
    return error["loc"], error["type"]


def test_publish_is_optional_and_defaults_to_nothing() -> None:
    parsed = SolveRequest.model_validate(request(None))
    assert parsed.publish is None
    options = SolveRequest.model_validate(request({"comment": True})).publish
    assert options is not None
    assert (options.comment, options.pull_request, options.branch_prefix) == (True, False, "solver/")


@pytest.mark.parametrize(
    ("publish", "issue_url", "changes", "rule"),
    [
        ({}, ISSUE, {}, "publish_nothing"),
        ({"comment": False, "pull_request": False}, ISSUE, {}, "publish_nothing"),
        ({"comment": True}, None, {}, "publish_needs_github_issue"),
        ({"comment": True}, "https://gitlab.com/org/repo/-/issues/1", {}, "publish_needs_github_issue"),
        ({"comment": True}, "https://github.com/org/repo", {}, "publish_needs_github_issue"),
        ({"comment": True}, "https://github.com/org/repo/issues/x", {}, "publish_needs_github_issue"),
        ({"pull_request": True}, None, {"repo_url": "https://gitlab.com/org/repo"}, "publish_needs_github_repo"),
        ({"comment": True, "branch_prefix": "bad..prefix/"}, ISSUE, {}, "branch_prefix"),
        ({"comment": True, "branch_prefix": "-x"}, ISSUE, {}, "branch_prefix"),
        ({"comment": True, "branch_prefix": "a b/"}, ISSUE, {}, "branch_prefix"),
        ({"comment": True, "branch_prefix": "refs/heads/x/"}, ISSUE, {}, "branch_prefix"),
        ({"comment": True, "branch_prefix": ""}, ISSUE, {}, "string_too_short"),
        ({"comment": True, "tag": "x"}, ISSUE, {}, "extra_forbidden"),
    ],
)
def test_publish_rules_name_the_field_and_the_rule(
    publish: dict[str, Any], issue_url: str | None, changes: dict[str, Any], rule: str
) -> None:
    loc, kind = rejection(request(publish, issue_url=issue_url, **changes))
    assert loc[0] == "publish"
    assert kind == rule


def test_a_pull_request_goes_to_the_github_repository_or_the_issues_one(tmp_path: Any) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    local = RequestPolicy(allow_local_repos=True)
    parsed = SolveRequest.model_validate(request({"pull_request": True}, repo_url=str(tmp_path)), context=local)
    assert parsed.publish is not None
    assert parsed.publish.pull_request
    assert rejection(request({"pull_request": True}, issue_url=None, repo_url=str(tmp_path)), local)[1] == (
        "publish_needs_github_repo"
    )
    assert pull_request_repo(str(tmp_path), ISSUE) == parse_repo_url("https://github.com/org/repo")
    assert pull_request_repo("https://github.com/a/b.git", ISSUE) == parse_repo_url("https://github.com/a/b")


def test_github_locations_are_parsed_strictly() -> None:
    issue = parse_issue_url("https://github.com/org/repo/pull/7")
    assert issue is not None
    assert (issue.repo.full_name, issue.number) == ("org/repo", 7)
    for bad in ("http://github.com/o/r/issues/1", "https://github.com/o/r/issues/0", "https://x.com/o/r/issues/1",
                "https://github.com/o/../issues/1", "https://github.com/o/r/issues/1/more", "not a url"):  # fmt: skip
        assert parse_issue_url(bad) is None, bad
    assert parse_repo_url("https://github.com/o/r/tree/main") is None
    assert parse_repo_url("/local/path") is None


def test_the_fingerprint_of_a_request_without_publish_is_what_it_was_before_the_option() -> None:
    import hashlib
    import json

    parsed = SolveRequest.model_validate(request(None))
    # Before the options existed (each excluded the same way when unset or at its default).
    options = {"publish", "sandbox_image", "verify_in", "detect_tests", "selector_model"}
    options |= {"reproduce", "reproduce_path", "reproduce_command"}
    legacy = parsed.model_dump(mode="json", exclude=options)
    digest = hashlib.sha256(json.dumps(legacy, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert parsed.fingerprint() == digest
    assert SolveRequest.model_validate(request({"comment": True})).fingerprint() != digest
    assert parsed.model_copy(update={"detect_tests": False}).fingerprint() != digest
    assert parsed.model_copy(update={"reproduce": True}).fingerprint() != digest


@pytest.mark.parametrize(
    ("publish", "changes"),
    [
        ({"comment": True}, {"issue": {"title": "t", "url": "https://github.com/victim/private/issues/3"}}),
        ({"pull_request": True}, {"repo_url": "https://gitlab.com/org/repo"}),
        ({"comment": True, "pull_request": True}, {"repo_url": "https://github.com/org/fork"}),
    ],
)
def test_publishing_goes_only_to_the_repository_the_code_came_from(
    publish: dict[str, Any], changes: dict[str, Any]
) -> None:
    data = request(publish) | changes
    with pytest.raises(ValidationError) as caught:
        SolveRequest.model_validate(data)
    error = caught.value.errors()[0]
    assert (error["loc"], error["type"]) == (("publish",), "publish_target_mismatch")
    assert data["repo_url"] in error["msg"]  # the message names both repositories
    assert "would go to https://github.com/" in error["msg"]


def test_the_same_repository_in_another_spelling_is_the_same_target() -> None:
    data = request({"comment": True, "pull_request": True}, repo_url="https://github.com/Org/Repo.git")
    assert SolveRequest.model_validate(data).publish is not None
