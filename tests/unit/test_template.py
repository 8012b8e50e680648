"""e2b templates without a service: their contents, the rule that names the template of an image,
and the command's refusals before anything is sent (builds against the fake e2b service are in
tests/integration/test_template_build.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from solver_core.cli import app
from solver_core.errors import SandboxUnavailable
from solver_core.sandbox import template
from solver_core.sandbox.template import e2b_template_name

pytestmark = pytest.mark.unit

SWEBENCH = "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907:latest"
E2B_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # what e2b's API accepts as a template name (no tag)


def test_the_template_has_what_preparation_needs() -> None:
    dockerfile = template.dockerfile()
    assert dockerfile.startswith("FROM python:3.12")
    for tool in ("git", "ripgrep", "build-essential", "nodejs", "npm"):
        assert tool in dockerfile
    assert "WORKDIR /home/user" in dockerfile


def test_the_dry_run_prints_the_dockerfile() -> None:
    result = CliRunner().invoke(app, ["template", "build", "--dry-run"])
    assert result.exit_code == 0
    assert "ripgrep" in result.output


@pytest.mark.parametrize("name", ["solver", "solver:v2", "my_template-2", "python:3.12", "base"])
def test_a_template_name_is_kept_as_it_is(name: str) -> None:
    assert e2b_template_name(name) == name


def test_a_swebench_image_becomes_a_readable_template_name() -> None:
    name = e2b_template_name(SWEBENCH)
    assert re.fullmatch(r"sweb-eval-x86_64-astropy_1776_astropy-12907-[0-9a-f]{16}", name), name
    assert e2b_template_name(SWEBENCH) == name  # deterministic: the build and the batch agree


@pytest.mark.parametrize(
    "image",
    [
        SWEBENCH,
        "swebench/sweb.eval.x86_64.scikit-learn_1776_scikit-learn-10297:latest",
        "Solver",
        "ghcr.io/Org/Image:V1",
        "registry.example.com:5000/team/project/image:2024.01",
        "python@sha256:" + "ab" * 32,
        "a" * 300 + "/b:c",
        "///",
    ],
)
def test_any_image_becomes_a_valid_bounded_template_name(image: str) -> None:
    name = e2b_template_name(image)
    assert E2B_NAME.match(name), name
    assert len(name) <= template.MAX_NAME_LENGTH


def test_a_long_name_keeps_its_end_and_the_latest_tag_is_dropped() -> None:
    name = e2b_template_name("swebench/sweb.eval.x86_64.scikit-learn_1776_scikit-learn-10297:latest")
    assert re.fullmatch(r"x86_64-scikit-learn_1776_scikit-learn-10297-[0-9a-f]{16}", name), name
    assert e2b_template_name("ghcr.io/org/img:v1").startswith("ghcr-io-org-img-v1-")


def test_distinct_images_never_share_a_template() -> None:
    similar = [
        "org/img:v1", "org/img-v1", "org/img_v1", "Org/img:v1", "org.img:v1", "org/img:latest", "org/img",
        "org/img@sha256:" + "a" * 64, "org/img@sha256:" + "a" * 63 + "b",
    ]  # fmt: skip
    names = [e2b_template_name(image) for image in similar]
    assert len(set(names)) == len(similar), names


def test_dry_run_from_images_prints_each_image_its_template_and_dockerfile() -> None:
    result = CliRunner().invoke(
        app, ["template", "build", "--from-image", SWEBENCH, "--from-image", "ghcr.io/org/img:v1", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert f"# {SWEBENCH} -> {e2b_template_name(SWEBENCH)}\nFROM {SWEBENCH}\n" in result.output
    assert "FROM ghcr.io/org/img:v1" in result.output
    assert "for tool in bash env timeout git" in result.output  # the build fails on an image without them


def test_name_goes_with_exactly_one_image() -> None:
    result = CliRunner().invoke(app, ["template", "build", "--from-image", "a/b", "--from-image", "c/d", "--name", "x"])
    assert result.exit_code == 2
    assert "exactly one image" in result.output


def test_a_name_e2b_would_refuse_is_refused_here() -> None:
    result = CliRunner().invoke(app, ["template", "build", "--from-image", "a/b", "--name", "My.Template"])
    assert result.exit_code == 2
    assert "not an e2b template name" in result.output


def test_a_bad_image_reference_is_refused() -> None:
    result = CliRunner().invoke(app, ["template", "build", "--from-image", "a b; rm -rf /"])
    assert result.exit_code == 2
    assert "not a valid image" in result.output


@pytest.mark.parametrize("args", [[], ["--from-image", SWEBENCH]])
def test_building_without_a_key_is_one_line(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLVER_E2B_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["template", "build", *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "building an e2b template needs SOLVER_E2B_API_KEY; set it to your e2b API key (e2b_…)"
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_build_function_refuses_without_a_key() -> None:
    with pytest.raises(SandboxUnavailable, match="SOLVER_E2B_API_KEY"):
        template.build("solver", api_key=None)


def test_a_file_without_instances_builds_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "instances.jsonl"
    empty.write_text("not json\n")
    result = CliRunner().invoke(app, ["template", "build", "--from-instances", str(empty), "--dry-run"])
    assert result.exit_code == 2
    assert "line 1" in result.output
    assert f"{empty} has no instance to build a template for" in result.output
    assert "FROM" not in result.output
