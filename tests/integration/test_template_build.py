"""`solver template build` with the real e2b SDK against the loopback fake service (its template
build endpoints), and the e2b backend asking for the template built from an image."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from solver_core.batch.instances import swebench_image
from solver_core.cli import app
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.e2b import E2BSandboxBackend
from solver_core.sandbox.template import REQUIRED_TOOLS, e2b_template_name
from tests.fakes.e2b import FakeE2BService

pytestmark = pytest.mark.integration

SWEBENCH = "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907:latest"
MAPPED = e2b_template_name(SWEBENCH)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FakeE2BService]:
    with FakeE2BService(tmp_path / "e2b", templates_must_exist=True) as svc:
        yield svc


def solver(service: FakeE2BService, *args: str, key: str | None = None) -> Result:
    env = {"SOLVER_E2B_API_KEY": key or service.api_key, "SOLVER_E2B_API_URL": service.api_url}
    return CliRunner().invoke(app, ["template", "build", *args], env=env)


def test_from_image_builds_the_swebench_image_under_the_mapped_name(service: FakeE2BService) -> None:
    result = solver(service, "--from-image", SWEBENCH, "--cpu", "4", "--memory-mb", "8192")
    assert result.exit_code == 0, result.output
    assert f"{SWEBENCH} -> {MAPPED}" in result.output.splitlines()
    (build,) = service.templates.builds()
    assert (build.name, build.tag, build.from_image) == (MAPPED, "default", SWEBENCH)
    assert (build.cpu_count, build.memory_mb, build.status) == (4, 8192, "ready")
    (check,) = build.steps  # the image as it is, checked for what Solver's commands call
    assert check["type"] == "RUN"
    assert all(tool in check["args"][0] for tool in REQUIRED_TOOLS)
    # A sandbox of that image now starts from the template built for it.
    backend = E2BSandboxBackend(api_key=service.api_key, api_url=service.api_url, sandbox_url=service.sandbox_url)
    backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=60, template=SWEBENCH)).kill()
    assert [r["template"] for r in service.create_requests] == [MAPPED]


def test_name_gives_the_template_of_one_image_its_own_name(service: FakeE2BService) -> None:
    result = solver(service, "--from-image", SWEBENCH, "--name", "astropy:v2")
    assert result.exit_code == 0, result.output
    assert f"{SWEBENCH} -> astropy:v2" in result.output
    (build,) = service.templates.builds()
    assert (build.name, build.tag) == ("astropy", "v2")


def test_solvers_own_template_is_built_with_its_name_and_resources(service: FakeE2BService) -> None:
    result = solver(service, "--name", "solver:v2", "--cpu", "4")
    assert result.exit_code == 0, result.output
    (build,) = service.templates.builds()
    assert (build.name, build.tag, build.cpu_count, build.memory_mb) == ("solver", "v2", 4, 4096)
    assert build.from_image == "python:3.12"
    assert any("nodejs" in " ".join(step["args"]) for step in build.steps)


def test_a_failed_build_is_one_clear_line_and_a_non_zero_exit(service: FakeE2BService) -> None:
    service.templates.fail_build(MAPPED, "the image lacks git, which Solver's commands need")
    result = solver(service, "--from-image", SWEBENCH)
    assert result.exit_code == 1
    assert f"{SWEBENCH} -> {MAPPED}: build failed: the image lacks git, which Solver's commands need" in (
        result.output.splitlines()
    )
    assert result.output.splitlines()[-1] == "1 of 1 template build(s) failed"
    assert not service.templates.is_ready(MAPPED)


def test_a_failed_build_of_solvers_template_is_one_line(service: FakeE2BService) -> None:
    service.templates.fail_build("solver", "apt-get failed")
    result = solver(service)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("e2b template solver: apt-get failed; read the build's log")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_rejected_key_is_one_line(service: FakeE2BService) -> None:
    result = solver(service, "--from-image", SWEBENCH, "--from-image", "ghcr.io/org/other:2", key="e2b_wrong")
    assert result.exit_code == 2
    (line,) = result.output.splitlines()[1:]  # after "building 2 e2b template(s) from images …"
    assert line.startswith("e2b rejected the API key:")
    assert line.endswith("; check SOLVER_E2B_API_KEY")
    assert not service.templates.builds()


def test_from_instances_builds_each_image_once_and_skips_templates_that_exist(
    service: FakeE2BService, tmp_path: Path
) -> None:
    own = "ghcr.io/org/calc:1.0"
    rows = [
        {"instance_id": "astropy__astropy-12907"},
        {"instance_id": "django__django-11099"},
        {"instance_id": "org__calc-1", "image": own},
        {"instance_id": "org__calc-2", "image": own},  # the same image: one template
    ]
    common = {"repo": "org/repo", "base_commit": "a" * 40, "problem_statement": "it breaks"}
    instances = tmp_path / "instances.jsonl"
    instances.write_text("".join(json.dumps(common | row) + "\n" for row in rows) + "not json\n")
    service.templates.add_ready(MAPPED)  # built before

    result = solver(service, "--from-instances", str(instances), "--parallel", "2")
    assert result.exit_code == 0, result.output
    django = swebench_image("django__django-11099")
    lines = result.output.splitlines()
    assert f"{SWEBENCH} -> {MAPPED} (exists)" in lines
    assert f"{django} -> {e2b_template_name(django)}" in lines
    assert f"{own} -> {e2b_template_name(own)}" in lines
    assert any(line.startswith("skipped line 5") for line in lines)  # a bad line is named, not fatal
    assert sorted(b.from_image or "" for b in service.templates.builds()) == sorted([django, own])

    again = solver(service, "--from-instances", str(instances))
    assert again.exit_code == 0, again.output
    assert len(service.templates.builds()) == 2  # everything exists now
    rebuilt = solver(service, "--from-instances", str(instances), "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert len(service.templates.builds()) == 5


def test_one_failed_build_does_not_stop_the_others(service: FakeE2BService) -> None:
    other = "ghcr.io/org/other:2"
    service.templates.fail_build(MAPPED, "pull access denied")
    result = solver(service, "--from-image", SWEBENCH, "--from-image", other)
    assert result.exit_code == 1
    assert f"{other} -> {e2b_template_name(other)}" in result.output.splitlines()
    assert result.output.splitlines()[-1] == "1 of 2 template build(s) failed"
    assert service.templates.is_ready(e2b_template_name(other))


def test_builds_beyond_e2bs_limit_wait_for_a_running_one_to_end(service: FakeE2BService) -> None:
    images = [f"ghcr.io/org/image-{n}:1" for n in range(3)]
    service.templates.max_running = 1
    result = solver(service, *(arg for image in images for arg in ("--from-image", image)), "--parallel", "3")
    assert result.exit_code == 0, result.output
    assert service.templates.refused > 0  # e2b said no; those builds waited and then ran
    assert sorted(b.from_image or "" for b in service.templates.builds()) == images
    assert all(b.status == "ready" for b in service.templates.builds())


@pytest.mark.parametrize(
    ("deployment", "image", "asked"),
    [
        ("solver", None, "solver"),  # SOLVER_SANDBOX_TEMPLATE=solver keeps working
        ("solver", "solver:v2", "solver:v2"),  # an explicit template name too
        ("solver", SWEBENCH, MAPPED),  # a solve's image is asked for as its template
        (SWEBENCH, None, MAPPED),  # so is the deployment's
    ],
)
def test_the_backend_asks_for_the_template_of_an_image(
    tmp_path: Path, deployment: str, image: str | None, asked: str
) -> None:
    with FakeE2BService(tmp_path / "e2b") as service:
        backend = E2BSandboxBackend(
            api_key=service.api_key, api_url=service.api_url, sandbox_url=service.sandbox_url, template=deployment
        )
        backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=60, template=image)).kill()
        assert [r["template"] for r in service.create_requests] == [asked]


def test_an_image_reference_as_template_is_refused_by_e2b(tmp_path: Path) -> None:
    """What a batch on e2b used to ask for: e2b's API refuses it (the fake checks names as e2b does)."""
    from e2b import Sandbox, SandboxException

    with FakeE2BService(tmp_path / "e2b") as service, pytest.raises(SandboxException, match="invalid template"):
        Sandbox.create(template=SWEBENCH, timeout=60, **service.sdk_kwargs())


@pytest.mark.parametrize(
    ("configured", "fix"), [("solver:v2", "--name solver:v2"), (SWEBENCH, f"--from-image {SWEBENCH}")]
)
def test_doctor_names_a_missing_template_and_the_command_that_builds_it(
    service: FakeE2BService, configured: str, fix: str
) -> None:
    from solver_core.readiness.checks import check_sandbox_backend
    from solver_core.settings import Settings

    settings = Settings(
        sandbox="e2b",
        sandbox_template=configured,
        e2b_api_key=service.api_key,
        e2b_api_url=service.api_url,
        e2b_sandbox_url=service.sandbox_url,
    )
    name = e2b_template_name(configured)
    checks = {c.name: c for c in check_sandbox_backend(settings)}
    assert checks["e2b template"].level == "error"
    assert checks["e2b template"].detail == f"{name} does not exist"
    assert checks["e2b template"].fix == f"build it: solver template build {fix}"
    service.templates.add_ready(name)
    checks = {c.name: c for c in check_sandbox_backend(settings)}
    assert (checks["e2b template"].level, checks["e2b template"].detail) == ("ok", name)
