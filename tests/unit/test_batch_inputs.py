"""Batch input rules, SWE-bench image names and reading test results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from solver_core.batch.evaluate import grade, summary_results
from solver_core.batch.instances import load_instances, parse_slice, select, swebench_image
from solver_core.selection.junit import junit_key, junit_results

pytestmark = pytest.mark.unit

BASE = {"repo": "astropy/astropy", "base_commit": "a" * 40, "problem_statement": "It breaks."}


def test_images_are_named_as_swebench_publishes_them() -> None:
    assert swebench_image("astropy__astropy-12907") == "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907:latest"
    assert swebench_image("Django__Django-1") == "swebench/sweb.eval.x86_64.django_1776_django-1:latest"


def test_json_encoded_test_lists_are_read_and_unknown_fields_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "i.json"
    record = BASE | {"instance_id": "a__b-1", "FAIL_TO_PASS": '["t.py::x"]', "PASS_TO_PASS": "[]", "patch": "gold"}
    path.write_text(json.dumps([record]))
    loaded = load_instances(path)
    assert loaded.problems == []
    ((_, instance),) = loaded.instances
    assert instance.fail_to_pass == ["t.py::x"]
    assert "gold" not in instance.model_dump_json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instance_id": "../etc"}, "instance_id"),
        ({"repo": "no-owner"}, "owner/name"),
        ({"base_commit": "main; id"}, "commit sha"),
        ({"problem_statement": "  "}, "blank"),
        ({"FAIL_TO_PASS": "not json"}, "JSON-encoded list"),
        ({"eval_command": "pytest"}, "{tests}"),
        ({"image": "Bad Image"}, "image"),
    ],
)
def test_bad_fields_name_the_line_and_the_rule(tmp_path: Path, change: dict[str, str], message: str) -> None:
    path = tmp_path / "i.jsonl"
    path.write_text("\n" + json.dumps(BASE | {"instance_id": "a__b-1"} | change) + "\n")
    (problem,) = load_instances(path).problems
    assert problem.where == "line 2"
    assert message in problem.message


def test_filter_then_slice(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    path.write_text("\n".join(json.dumps(BASE | {"instance_id": f"x__y-{n}"}) for n in range(6)))
    instances = [i for _, i in load_instances(path).instances]
    chosen = select(instances, pattern=r"-[1-4]$", window="1:3")
    assert [i.instance_id for i in chosen] == ["x__y-2", "x__y-3"]
    with pytest.raises(ValueError, match="A:B"):
        parse_slice("1-3")


def test_results_come_from_junit_xml_then_the_short_summary() -> None:
    xml = b"""<testsuites><testsuite>
      <testcase classname="tests.test_a.TestC" name="test_x[1]"/>
      <testcase classname="tests.test_a" name="test_y"><failure message="boom"/></testcase>
      <testcase classname="tests.test_a" name="test_s"><skipped/></testcase>
    </testsuite></testsuites>"""
    junit = junit_results(xml)
    assert junit_key("tests/test_a.py::TestC::test_x[1]") == ("tests.test_a.TestC", "test_x[1]")
    summary = summary_results("PASSED other.py::test_z\nFAILED other.py::test_w - assert 0\n")
    tests = ["tests/test_a.py::TestC::test_x[1]", "tests/test_a.py::test_y", "tests/test_a.py::test_s",
             "other.py::test_z", "other.py::test_w", "never.py::ran"]  # fmt: skip
    status = grade(tests, junit, summary)
    assert status.success == ["tests/test_a.py::TestC::test_x[1]", "other.py::test_z"]
    assert status.failure == ["tests/test_a.py::test_y", "tests/test_a.py::test_s", "other.py::test_w", "never.py::ran"]


def test_other_runners_testcases_match_by_name_or_classname() -> None:
    """gotestsum names a testcase (package, TestName); jest (suite, "title"): the listed ids are the
    names, or `classname::name`. A name two testcases share passes only if both pass."""
    xml = b"""<testsuites><testsuite>
      <testcase classname="example.com/calc" name="TestAdd"/>
      <testcase classname="example.com/calc" name="TestMean"><failure/></testcase>
      <testcase classname="example.com/stats" name="TestShared"/>
      <testcase classname="example.com/calc" name="TestShared"><failure/></testcase>
      <testcase classname="calc" name="adds numbers"/>
    </testsuite></testsuites>"""
    tests = ["TestAdd", "TestMean", "TestShared", "example.com/stats::TestShared", "calc::adds numbers", "TestGone"]
    status = grade(tests, junit_results(xml), {})
    assert status.success == ["TestAdd", "example.com/stats::TestShared", "calc::adds numbers"]
    assert status.failure == ["TestMean", "TestShared", "TestGone"]


def test_a_hostile_junit_file_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><testsuite>&b;</testsuite>'
    with pytest.raises(Exception, match=r"(?i)entit"):
        junit_results(bomb)


def test_a_solve_names_its_image_only_with_safe_characters() -> None:
    from pydantic import ValidationError

    from solver_core.models import SolveRequest

    data = {"repo_url": "https://github.com/o/r", "issue": {"title": "t"}, "models": ["m"]}
    assert (
        SolveRequest.model_validate(data | {"sandbox_image": "swebench/x:latest"}).sandbox_image == "swebench/x:latest"
    )
    for bad in ("--privileged", "img; rm -rf /", "a/../b", "UPPER"):
        with pytest.raises(ValidationError, match="image_name"):
            SolveRequest.model_validate(data | {"sandbox_image": bad})


def test_reproduce_reaches_every_instances_solve_and_the_remote_batch() -> None:
    from pathlib import Path

    from solver_core.batch.instances import Instance
    from solver_core.batch.requests import BatchOptions, build_request
    from solver_core.cli.remote_batch import RemoteOptions, request_body
    from solver_core.rules import RequestPolicy
    from solver_core.settings import Settings

    instance = Instance.model_validate(
        {"instance_id": "o__r-1", "repo": "o/r", "base_commit": "a" * 40, "problem_statement": "it breaks"}
    )
    policy = RequestPolicy.from_settings(Settings())
    for reproduce in (False, True):
        options = BatchOptions(models=["m"], output=Path(), name="n", reproduce=reproduce)
        assert build_request(instance, options, policy).reproduce is reproduce
        remote = RemoteOptions(["m"], 1, 1, 1, {}, None, reproduce=reproduce)
        assert request_body([instance], remote).get("reproduce", False) is reproduce


def test_solve_options_reach_every_instances_solve_and_the_remote_batch(tmp_path: Path) -> None:
    """The `solver solve` options that make sense per instance: the judge (a replay folder names one
    file per instance, as for the models), where to verify, no test detection, the reproduction script."""
    from solver_core.batch.instances import Instance
    from solver_core.batch.requests import BatchOptions, build_request, instance_selector
    from solver_core.cli.remote_batch import RemoteOptions, request_body
    from solver_core.errors import ReplayNotFound
    from solver_core.models import DEFAULT_REPRODUCE_PATH, VerifyIn
    from solver_core.rules import RequestPolicy

    instance = Instance.model_validate(BASE | {"instance_id": "o__r-1", "test_command": "make check"})
    policy = RequestPolicy(allow_replay_models=True)
    chosen = {
        "reproduce": True,
        "reproduce_path": "scripts/repro.sh",
        "reproduce_command": "bash scripts/repro.sh",
        "verify_in": VerifyIn.SAME_SANDBOX,
        "detect_tests": False,
    }
    (tmp_path / "o__r-1.yaml").write_text("actions: []\n")
    options = BatchOptions(models=["m"], output=Path(), name="n", selector_model=f"replay:{tmp_path}", **chosen)
    selector = instance_selector(options, "o__r-1")
    assert selector == f"replay:{tmp_path / 'o__r-1.yaml'}"
    request = build_request(instance, options, policy, selector_model=selector)
    assert request.selector_model == selector
    assert {name: getattr(request, name) for name in chosen} == chosen
    assert request.test_command == "make check"  # without detection, an instance's own tests still run
    with pytest.raises(ReplayNotFound, match=r"o__r-2\.yaml"):
        instance_selector(options, "o__r-2")

    defaults = build_request(instance, BatchOptions(models=["m"], output=Path(), name="n"), policy)
    assert (defaults.selector_model, defaults.verify_in, defaults.detect_tests) == (None, VerifyIn.FRESH_SANDBOX, True)
    assert (defaults.reproduce_path, defaults.reproduce_command) == (DEFAULT_REPRODUCE_PATH, None)

    remote = RemoteOptions(["m"], 1, 1, 1, {}, None, selector_model="anthropic/claude-haiku-4-5", **chosen)
    body = request_body([instance], remote)
    assert body["selector_model"] == "anthropic/claude-haiku-4-5"
    assert {name: body[name] for name in chosen} == chosen | {"verify_in": "same_sandbox"}
    plain = request_body([instance], RemoteOptions(["m"], 1, 1, 1, {}, None))
    assert not {"selector_model", "verify_in", "detect_tests", "reproduce_path", "reproduce_command"} & set(plain)
