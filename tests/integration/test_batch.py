"""`solver batch` end to end, as a user runs it (a subprocess): real-shaped SWE-bench instances built
from small repositories made here, replays per instance, preds.json / report.json, resume after
Ctrl-C, an infrastructure failure, invalid lines and the total cost limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from solver_core.batch.instances import swebench_image
from solver_core.sandbox.template import e2b_template_name
from tests.fakes.e2b import FakeE2BService
from tests.fakes.git_server import GitHTTPServer
from tests.support.runtime import DOCKER_TEST_IMAGE, GIT_ENV, commit_files, git, make_repo, require_docker

pytestmark = pytest.mark.integration

CALC = "def mean(values):\n    return sum(values) // len(values)\n\n\ndef add(a, b):\n    return a + b\n"
VISIBLE = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
HIDDEN = (
    "from calc import add, mean\n\n\ndef test_mean_keeps_the_fraction():\n    assert mean([1, 2]) == 1.5\n\n\n"
    "def test_add():\n    assert add(-1, 1) == 0\n"
)
FIX = "sed -i 's|sum(values) // len(values)|sum(values) / len(values)|' calc.py"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
PEEK = "cat tests/test_hidden.py 2>&1; git log --all --oneline | wc -l"
EVAL = "python3 -m pytest -rA -p no:cacheprovider {tests}"
F2P = "tests/test_hidden.py::test_mean_keeps_the_fraction"
P2P = ["tests/test_hidden.py::test_add", "tests/test_visible.py::test_add"]


@dataclass
class World:
    root: Path
    repo: Path
    base: str
    test_patch: str
    replays: Path
    output: Path
    env: dict[str, str]

    def instance(self, instance_id: str, **fields: Any) -> dict[str, Any]:
        # As in the published datasets: the test lists are JSON-encoded strings, and the gold patch
        # is there too (it must never reach an agent).
        return {
            "instance_id": instance_id,
            "repo": "org/calc",
            "repo_url": str(self.repo),
            "base_commit": self.base,
            "problem_statement": "mean() drops the fraction: mean([1, 2]) is 1, not 1.5.",
            "patch": "GOLD PATCH NEVER SHOWN",
            "test_patch": self.test_patch,
            "FAIL_TO_PASS": json.dumps([F2P]),
            "PASS_TO_PASS": json.dumps(P2P),
            "test_command": "python3 -m pytest -q -p no:cacheprovider tests/test_visible.py",
            "eval_command": EVAL,
            "version": "1.0",
        } | fields

    def write(self, name: str, instances: list[dict[str, Any]], *, extra_lines: tuple[str, ...] = ()) -> Path:
        path = self.root / name
        path.write_text("\n".join([json.dumps(i) for i in instances] + list(extra_lines)) + "\n")
        return path

    def replay(self, instance_id: str, *actions: str | dict[str, Any]) -> None:
        (self.replays / f"{instance_id}.yaml").write_text(yaml.safe_dump({"actions": list(actions)}))

    def batch(self, instances: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(instances, *args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def command(self, instances: Path, *args: str) -> list[str]:
        base = [sys.executable, "-m", "solver_core.cli", "batch", str(instances), "--output", str(self.output)]
        return [*base, "--model", f"replay:{self.replays}", "--name", "solver-test", *args]

    def json(self, name: str) -> Any:
        return json.loads((self.output / name).read_text())


@pytest.fixture
def world(tmp_path: Path) -> World:
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_visible.py": VISIBLE})
    base = git(repo, "rev-parse", "HEAD")
    # The hidden tests are made in a separate clone: nothing in the instance's repository holds them.
    upstream = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(repo), str(upstream)], check=True, env=os.environ | GIT_ENV)
    commit_files(upstream, {"tests/test_hidden.py": HIDDEN}, "hidden tests")
    test_patch = git(upstream, "diff", base, "HEAD") + "\n"
    replays = tmp_path / "replays"
    replays.mkdir()
    env = (
        os.environ
        | GIT_ENV
        | {
            "SOLVER_HOME": str(tmp_path / "home"),
            "SOLVER_MAX_RUN_ATTEMPTS": "1",
            "COLUMNS": "200",
        }
    )
    env.pop("SOLVER_DATABASE_URL", None)
    return World(tmp_path, repo, base, test_patch, replays, tmp_path / "out", env)


def test_a_batch_writes_predictions_trajectories_and_an_evaluation_report(world: World) -> None:
    world.replay("org__calc-1", PEEK, FIX, SUBMIT)
    world.replay("org__calc-2", "ls", SUBMIT)  # submits without changing anything
    # org__calc-3 has no replay file: that instance fails clearly, the others run.
    instances = world.write(
        "instances.jsonl", [world.instance("org__calc-1"), world.instance("org__calc-2"), world.instance("org__calc-3")]
    )
    done = world.batch(instances, "--evaluate", "--workers", "2")
    assert done.returncode == 1, done.stderr  # one instance is not finished
    preds = world.json("preds.json")
    assert set(preds) == {"org__calc-1", "org__calc-2"}
    assert preds["org__calc-1"]["instance_id"] == "org__calc-1"
    assert preds["org__calc-1"]["model_name_or_path"] == "solver-test"
    assert "+    return sum(values) / len(values)" in preds["org__calc-1"]["model_patch"]
    assert preds["org__calc-2"]["model_patch"] == ""  # a definitive failure: an empty prediction
    state = world.json("batch.json")
    assert state["instances"]["org__calc-3"]["outcome"] == "error"
    assert "org__calc-3.yaml" in state["instances"]["org__calc-3"]["error"]
    assert state["counts"]["patch"] == 1
    assert state["counts"]["no_patch"] == 1

    trajectory = json.loads((world.output / "org__calc-1" / "org__calc-1.traj.json").read_text())
    assert trajectory["trajectory_format"].startswith("mini-swe-agent")
    said = json.dumps(trajectory["messages"])
    assert "No such file" in said  # the agent looked for the hidden tests and found nothing
    assert "test_mean_keeps_the_fraction" not in said
    assert "GOLD PATCH" not in said
    runs = json.loads((world.output / "org__calc-1" / "runs.json").read_text())
    assert runs["runs"][0]["tests_passed"] is True
    assert not (world.output / "org__calc-2" / "org__calc-2.traj.json").exists()  # no champion

    report = world.json("report.json")
    assert report["total_instances"] == 3
    assert report["submitted_ids"] == ["org__calc-1", "org__calc-2"]
    assert report["resolved_ids"] == ["org__calc-1"]
    assert report["empty_patch_ids"] == ["org__calc-2"]
    assert report["incomplete_ids"] == ["org__calc-3"]  # no prediction: incomplete, as in the harness
    assert report["error_ids"] == []
    status = report["instances"]["org__calc-1"]["tests_status"]
    assert status["FAIL_TO_PASS"] == {"success": [F2P], "failure": []}
    assert sorted(status["PASS_TO_PASS"]["success"]) == sorted(P2P)
    assert report["instances"]["org__calc-1"]["resolved"] is True

    # The same command again runs only what is not finished: the missing replay now exists.
    solve_1 = state["instances"]["org__calc-1"]["solve_id"]
    world.replay("org__calc-3", FIX, SUBMIT)
    again = world.batch(instances, "--evaluate", "--json")
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert [e["instance_id"] for e in events if e["event"] == "instance"] == ["org__calc-3"]
    assert events[-1]["event"] == "batch"
    assert world.json("batch.json")["instances"]["org__calc-1"]["solve_id"] == solve_1
    assert set(world.json("preds.json")) == {"org__calc-1", "org__calc-2", "org__calc-3"}
    assert world.json("report.json")["resolved_ids"] == ["org__calc-1", "org__calc-3"]


def test_an_unresolving_patch_is_reported_per_test(world: World) -> None:
    world.replay("org__calc-9", "sed -i 's|a + b|a - b|' calc.py", SUBMIT)  # breaks add(), keeps the bug
    done = world.batch(world.write("one.jsonl", [world.instance("org__calc-9", test_command=None)]), "--evaluate")
    assert done.returncode == 0, done.stderr
    report = world.json("report.json")
    assert report["unresolved_ids"] == ["org__calc-9"]
    status = report["instances"]["org__calc-9"]["tests_status"]
    assert status["FAIL_TO_PASS"]["failure"] == [F2P]
    assert sorted(status["PASS_TO_PASS"]["failure"]) == sorted(P2P)


# A test runner that is not pytest: it runs the named checks itself and writes JUnit XML where Solver
# asks any runner to ($SOLVER_JUNIT_XML), testcases named as go test names them (package, TestName).
RUNNER = """import os, sys
from xml.sax.saxutils import quoteattr
sys.path.insert(0, ".")
from calc import add, mean
CHECKS = {"TestMean": lambda: mean([1, 2]) == 1.5, "TestAdd": lambda: add(-1, 1) == 0}
cases = []
for name in sys.argv[1:]:
    ok = CHECKS[name]()
    cases.append("<testcase classname='calc' name=%s>%s</testcase>" % (quoteattr(name), "" if ok else "<failure/>"))
    print(name, "ok" if ok else "FAIL")
with open(os.environ["SOLVER_JUNIT_XML"], "w") as report:
    report.write("<testsuite name='calc'>" + "".join(cases) + "</testsuite>")
"""


def test_another_runners_junit_xml_is_read_per_test(world: World, tmp_path: Path) -> None:
    upstream = tmp_path / "runner-upstream"
    subprocess.run(["git", "clone", "-q", str(world.repo), str(upstream)], check=True, env=os.environ | GIT_ENV)
    commit_files(upstream, {"checks/run.py": RUNNER}, "the checks")
    test_patch = git(upstream, "diff", world.base, "HEAD") + "\n"
    fields = {
        "test_patch": test_patch,
        "FAIL_TO_PASS": json.dumps(["TestMean"]),
        "PASS_TO_PASS": json.dumps(["TestAdd"]),
        "eval_command": "python3 checks/run.py {tests}",
    }
    world.replay("org__calc-1", FIX, SUBMIT)
    world.replay("org__calc-2", FIX, "sed -i 's|a + b|a - b|' calc.py", SUBMIT)  # fixes mean, breaks add
    world.replay("org__calc-3", FIX, SUBMIT)  # its eval_command writes no report and prints nothing
    instances = world.write(
        "instances.jsonl",
        [world.instance(i, **fields) for i in ("org__calc-1", "org__calc-2")]
        + [world.instance("org__calc-3", **fields | {"eval_command": "true {tests}"})],
    )
    done = world.batch(instances, "--evaluate")
    assert done.returncode == 0, done.stderr
    report = world.json("report.json")
    assert report["resolved_ids"] == ["org__calc-1"]
    assert report["unresolved_ids"] == ["org__calc-2", "org__calc-3"]  # a test that never ran did not pass
    resolved = report["instances"]["org__calc-1"]["tests_status"]
    assert resolved["FAIL_TO_PASS"] == {"success": ["TestMean"], "failure": []}
    assert resolved["PASS_TO_PASS"] == {"success": ["TestAdd"], "failure": []}
    unresolved = report["instances"]["org__calc-2"]["tests_status"]
    assert unresolved["FAIL_TO_PASS"] == {"success": ["TestMean"], "failure": []}
    assert unresolved["PASS_TO_PASS"] == {"success": [], "failure": ["TestAdd"]}


def test_invalid_lines_are_reported_with_their_numbers_before_anything_runs(world: World) -> None:
    world.replay("org__calc-1", FIX, SUBMIT)
    missing = {k: v for k, v in world.instance("org__calc-2").items() if k != "base_commit"}
    instances = world.write(
        "instances.jsonl",
        [world.instance("org__calc-1"), missing, world.instance("org__calc-1")],
        extra_lines=("{not json",),
    )
    refused = world.batch(instances)
    assert refused.returncode == 2
    assert "line 2 (org__calc-2): base_commit is required" in refused.stderr
    assert "line 3 (org__calc-1): instance_id repeats the one at line 1" in refused.stderr
    assert "line 4: not valid JSON" in refused.stderr
    assert not world.output.exists()  # nothing started

    skipped = world.batch(instances, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert set(world.json("preds.json")) == {"org__calc-1"}


def test_ctrl_c_then_the_same_command_resumes_the_instance_from_its_checkpoints(world: World) -> None:
    slow = [f"sleep 0.7; echo {n} >> progress.txt" for n in range(8)]
    world.replay("org__calc-1", *slow, FIX, SUBMIT)
    instances = world.write("instances.jsonl", [world.instance("org__calc-1")])
    process = subprocess.Popen(
        world.command(instances), env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = world.output / "batch.json"
            if state.exists() and '"outcome": "running"' in state.read_text():
                break
            time.sleep(0.2)
        time.sleep(4)  # a few steps in
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    interrupted = world.json("batch.json")["instances"]["org__calc-1"]
    assert interrupted["outcome"] == "running"
    assert not (world.output / "preds.json").exists() or world.json("preds.json") == {}

    resumed = world.batch(instances)
    assert resumed.returncode == 0, resumed.stderr
    record = world.json("batch.json")["instances"]["org__calc-1"]
    assert record["outcome"] == "patch"
    assert record["solve_id"] == interrupted["solve_id"]  # the same solve went on
    run = json.loads((world.output / "org__calc-1" / "runs.json").read_text())["runs"][0]
    assert run["attempt"] == 1  # resumed once, from its checkpoint
    patch = world.json("preds.json")["org__calc-1"]["model_patch"]
    assert "sum(values) / len(values)" in patch
    # No action ran twice: the steps before the interrupt were not replayed from the start. An
    # action the interrupt cut off is answered as interrupted (the agent decides whether to re-run
    # it; a replay moves on), so its line may be missing, and then the trajectory says why.
    added = [int(line[1:]) for line in patch.splitlines() if line.startswith("+") and line[1:].isdigit()]
    assert added == sorted(set(added))
    trajectory = (world.output / "org__calc-1" / "org__calc-1.traj.json").read_text()
    missing = set(range(8)) - set(added)
    assert len(missing) <= 1
    assert not missing or "This command was interrupted" in trajectory


def test_an_unreachable_repository_is_run_again_never_an_empty_prediction(world: World, tmp_path: Path) -> None:
    """The repository's host answers 503: an infrastructure failure, absent from preds.json; the same
    command, once the host answers again, runs that instance again and produces its patch."""
    ids = ["org__calc-1", "org__calc-2"]
    for iid in ids:
        world.replay(iid, FIX, SUBMIT)
    world.env["SOLVER_ALLOWED_HTTP_HOSTS"] = "127.0.0.1"
    with GitHTTPServer(tmp_path / "git", token=None).start() as server:
        url = server.add_repo("org/calc", world.repo)
        instances = world.write("instances.jsonl", [world.instance(ids[0]), world.instance(ids[1], repo_url=url)])
        server.unavailable = True
        first = world.batch(instances)
        assert first.returncode == 1, first.stderr
        state = world.json("batch.json")["instances"]
        assert state[ids[0]]["outcome"] == "patch"
        assert state[ids[1]]["outcome"] == "infra_error"
        assert "CloneFailed" in state[ids[1]]["error"]
        assert "503" in state[ids[1]]["error"]
        assert set(world.json("preds.json")) == {ids[0]}  # never recorded with an empty patch

        server.unavailable = False
        second = world.batch(instances, "--json")
        assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert [e["instance_id"] for e in events if e["event"] == "instance"] == [ids[1]]
    assert world.json("batch.json")["instances"][ids[1]]["outcome"] == "patch"
    assert "+    return sum(values) / len(values)" in world.json("preds.json")[ids[1]]["model_patch"]


def test_solve_options_reach_each_instance(world: World, tmp_path: Path) -> None:
    """--selector-model with a replay folder names one judge file per instance (a missing one fails
    that instance, clearly); --no-tests detects no test command."""
    world.replay("org__calc-1", FIX, SUBMIT)
    judges = tmp_path / "judges"
    judges.mkdir()
    instances = world.write("one.jsonl", [world.instance("org__calc-1", test_command=None)])
    options = ("--selector-model", f"replay:{judges}", "--no-tests", "--verify-in", "same_sandbox")
    first = world.batch(instances, *options)
    assert first.returncode == 1, first.stderr
    record = world.json("batch.json")["instances"]["org__calc-1"]
    assert record["outcome"] == "error"
    assert "org__calc-1.yaml" in record["error"]

    (judges / "org__calc-1.yaml").write_text(yaml.safe_dump({"actions": []}))
    second = world.batch(instances, *options)
    assert second.returncode == 0, second.stderr
    run = json.loads((world.output / "org__calc-1" / "runs.json").read_text())["runs"][0]
    assert run["tests_passed"] is None  # the repository's pytest suite was not detected, nor run
    with_tests = world.batch(instances, "--redo")
    assert with_tests.returncode == 0, with_tests.stderr
    assert json.loads((world.output / "org__calc-1" / "runs.json").read_text())["runs"][0]["tests_passed"] is True


def test_the_total_cost_limit_stops_starting_new_instances(world: World) -> None:
    for number in (1, 2, 3):
        world.replay(f"org__calc-{number}", {"command": FIX, "cost": 0.4}, {"command": SUBMIT, "cost": 0.4})
    instances = world.write("instances.jsonl", [world.instance(f"org__calc-{n}") for n in (1, 2, 3)])
    done = world.batch(instances, "--cost-limit-total", "1.0")
    assert done.returncode == 1, done.stderr
    state = world.json("batch.json")
    outcomes = {iid: r["outcome"] for iid, r in state["instances"].items()}
    assert outcomes == {"org__calc-1": "patch", "org__calc-2": "patch", "org__calc-3": "not_started"}
    assert state["cost_usd"] == pytest.approx(1.6)
    assert set(world.json("preds.json")) == {"org__calc-1", "org__calc-2"}  # never an empty prediction


def test_filter_and_slice_choose_the_instances(world: World) -> None:
    for number in (1, 2, 3, 4):
        world.replay(f"org__calc-{number}", FIX, SUBMIT)
    instances = world.write("instances.jsonl", [world.instance(f"org__calc-{n}") for n in (1, 2, 3, 4)])
    done = world.batch(instances, "--filter", "calc-[234]", "--slice", "1:3")
    assert done.returncode == 0, done.stderr
    assert set(world.json("preds.json")) == {"org__calc-3", "org__calc-4"}
    bad = world.batch(instances, "--slice", "x")
    assert bad.returncode == 2
    assert "A:B" in bad.stderr


def test_processes_run_each_attempts_agent_loop_in_its_own_process(world: World) -> None:
    # Without bubblewrap a command's parent is the process that runs the agent loop.
    world.env["SOLVER_SANDBOX_ISOLATION"] = "none"
    world.replay("org__calc-1", "tr '\\0' ' ' < /proc/$PPID/cmdline", FIX, SUBMIT)
    instances = world.write("instances.jsonl", [world.instance("org__calc-1")])
    done = world.batch(instances, "--processes", "--attempts", "2")
    assert done.returncode == 0, done.stderr
    trajectory = (world.output / "org__calc-1" / "org__calc-1.traj.json").read_text()
    assert "internal run-agent" in trajectory
    assert "sum(values) / len(values)" in world.json("preds.json")["org__calc-1"]["model_patch"]


@pytest.fixture
def instance_images() -> Iterator[list[str]]:
    require_docker()
    made: list[str] = []
    yield made
    for image in made:
        subprocess.run(["docker", "rmi", "--force", image], capture_output=True, check=False)


def build_instance_image(tmp_path: Path, instance_id: str, made: list[str]) -> str:
    """A per-instance image on the test image, tagged the way SWE-bench names them."""
    image = swebench_image(instance_id)
    context = tmp_path / f"image-{instance_id}"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {DOCKER_TEST_IMAGE}\nRUN echo {instance_id} > /etc/solver-instance\n")
    subprocess.run(["docker", "build", "-q", "-t", image, str(context)], check=True, capture_output=True)
    made.append(image)
    return image


def test_docker_instances_run_on_their_swebench_named_images(
    world: World, tmp_path: Path, instance_images: list[str]
) -> None:
    """Image resolution end to end; an instance whose image is missing is an infrastructure failure:
    run again (after the image is built), never an empty prediction."""
    ids = ["org__calc-1", "org__calc-2"]
    build_instance_image(tmp_path, ids[0], instance_images)
    for iid in ids:
        world.replay(iid, "cat /etc/solver-instance", FIX, SUBMIT)
    instances = world.write("instances.jsonl", [world.instance(iid) for iid in ids])
    first = world.batch(instances, "--sandbox", "docker", "--evaluate")
    assert first.returncode == 1, first.stderr
    state = world.json("batch.json")["instances"]
    assert state[ids[0]]["outcome"] == "patch"
    assert state[ids[1]]["outcome"] == "infra_error"
    assert "SandboxUnavailable" in state[ids[1]]["error"]
    assert set(world.json("preds.json")) == {ids[0]}
    trajectory = (world.output / ids[0] / f"{ids[0]}.traj.json").read_text()
    assert f"{ids[0]}\\n" in trajectory  # the command ran in that instance's own image
    assert world.json("report.json")["resolved_ids"] == [ids[0]]

    build_instance_image(tmp_path, ids[1], instance_images)
    second = world.batch(instances, "--sandbox", "docker", "--evaluate")
    assert second.returncode == 0, second.stderr
    assert set(world.json("preds.json")) == set(ids)
    preds = world.json("preds.json")
    assert all("+    return sum(values) / len(values)" in preds[iid]["model_patch"] for iid in ids)
    # (The fake's sandboxes run on this machine, whose python3 may lack pytest: the verdicts are not
    # checked here, the sandboxes' templates are.)


def test_e2b_instances_run_on_the_templates_built_from_their_images(world: World, tmp_path: Path) -> None:
    """`solver template build --from-instances`, then `solver batch --sandbox e2b`: every sandbox of an
    instance (the agent's, the verification's, the evaluation's) starts from the template built from
    its image. The fake refuses templates that were not built, as e2b does."""
    ids = ["org__calc-1", "org__calc-2"]
    for iid in ids:
        world.replay(iid, FIX, SUBMIT)
    instances = world.write("instances.jsonl", [world.instance(iid) for iid in ids])
    templates = {e2b_template_name(swebench_image(iid)) for iid in ids}
    with FakeE2BService(tmp_path / "e2b", templates_must_exist=True) as service:
        env = world.env | {
            "SOLVER_E2B_API_KEY": service.api_key,
            "SOLVER_E2B_API_URL": service.api_url,
            "SOLVER_E2B_SANDBOX_URL": service.sandbox_url,
        }
        command = world.command(instances, "--sandbox", "e2b", "--evaluate")
        early = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert early.returncode == 2, early.stdout + early.stderr  # nothing built yet: nothing starts
        first = swebench_image(ids[0])
        assert (
            f"2 of 2 e2b template(s) do not exist ({first} -> {e2b_template_name(first)}); "
            f"build them: solver template build --from-instances {instances}"
        ) in early.stderr
        assert service.create_requests == []

        build = [sys.executable, "-m", "solver_core.cli", "template", "build", "--from-instances", str(instances)]
        built = subprocess.run(build, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert built.returncode == 0, built.stdout + built.stderr
        for iid in ids:
            assert f"{swebench_image(iid)} -> {e2b_template_name(swebench_image(iid))}" in built.stdout
        assert {b.from_image for b in service.templates.builds()} == {swebench_image(iid) for iid in ids}

        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        asked = [request["template"] for request in service.create_requests]
    assert set(asked) == templates
    assert len(asked) >= 3 * len(ids)  # agent, verification and evaluation sandboxes
    evaluated = {
        r["metadata"]["evaluation"]: r["template"] for r in service.create_requests if "evaluation" in r["metadata"]
    }
    assert evaluated == {iid: e2b_template_name(swebench_image(iid)) for iid in ids}
    preds = world.json("preds.json")
    assert all("+    return sum(values) / len(values)" in preds[iid]["model_patch"] for iid in ids)
    # (The fake's sandboxes run on this machine, whose python3 may lack pytest: the verdicts are not
    # checked here, the sandboxes' templates are.)
