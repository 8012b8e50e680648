"""`solver doctor` and the preflight, as a newcomer meets them: a separate process with an
environment built from scratch (no provider keys, no SOLVER_* settings, a HOME of its own) and a
PATH that has git but, unless a test adds it, no bubblewrap."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from solver_core.db.engine import make_engine
from solver_core.db.migrate import upgrade
from tests.support.runtime import make_repo, require_bwrap, require_docker

pytestmark = pytest.mark.integration

ANTHROPIC = "anthropic/claude-sonnet-4-5"


def tool_dir(tmp_path: Path, *tools: str) -> Path:
    """A PATH folder with just these tools (and bash, which the sandbox scripts need)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for tool in ("git", "bash", *tools):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        if not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    return folder


def scrubbed_env(tmp_path: Path, *tools: str, **extra: str) -> dict[str, str]:
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": str(tool_dir(tmp_path, *tools)),
        "HOME": str(home),
        "SOLVER_HOME": str(tmp_path / "solver-home"),
        "SOLVER_SANDBOX_DIR": str(tmp_path / "sandboxes"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    } | extra


def solver(env: dict[str, str], *args: str, entry: str = "solver_core.entry") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", entry, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def doctor_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = solver(env, "doctor", "--json", *args)
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    return done.returncode, {check["name"]: check for check in report["checks"]} | {"ok": report["ok"]}


def test_doctor_names_exactly_what_is_missing_on_a_bare_machine(tmp_path: Path) -> None:
    code, checks = doctor_json(scrubbed_env(tmp_path), "--model", ANTHROPIC)
    assert code == 1
    assert checks["ok"] is False
    assert checks["git"]["level"] == "ok"
    assert checks["git"]["detail"].startswith("git version")
    assert checks["bubblewrap"]["level"] == "warning"
    assert "apt-get install bubblewrap" in checks["bubblewrap"]["fix"]
    assert checks[f"{ANTHROPIC} key"] == {
        "name": f"{ANTHROPIC} key",
        "level": "error",
        "detail": "ANTHROPIC_API_KEY not set",
        "fix": "export ANTHROPIC_API_KEY=…",
    }
    assert checks[ANTHROPIC]["level"] == "ok"  # litellm knows it
    assert checks[f"{ANTHROPIC} price"]["level"] == "ok"
    assert checks["artifacts"]["level"] == "ok"
    errors = [c["name"] for n, c in checks.items() if n != "ok" and c["level"] == "error"]
    assert errors == [f"{ANTHROPIC} key"]  # nothing else is reported missing


def test_a_fresh_machine_without_any_key_is_warned_not_told_all_good(tmp_path: Path) -> None:
    """No --model and an empty registry (a fresh home): doctor still says whether a real model could run."""
    code, checks = doctor_json(scrubbed_env(tmp_path))
    assert code == 0  # a warning: the demo needs no key
    assert checks["model keys"]["level"] == "warning"
    assert "no LLM provider key is set" in checks["model keys"]["detail"]
    assert "ANTHROPIC_API_KEY" in checks["model keys"]["fix"]
    done = solver(scrubbed_env(tmp_path), "doctor")
    assert "all good" not in done.stderr + done.stdout
    _, checks = doctor_json(scrubbed_env(tmp_path, OPENAI_API_KEY="sk-test-0000"))
    assert checks["model keys"] == {"name": "model keys", "level": "ok", "detail": "set for openai", "fix": None}


def test_with_the_key_and_bubblewrap_the_doctor_is_happy(tmp_path: Path) -> None:
    require_bwrap()  # skips without bubblewrap; fails under CI
    env = scrubbed_env(tmp_path, "bwrap", ANTHROPIC_API_KEY="sk-ant-test-0000")
    code, checks = doctor_json(env, "--model", ANTHROPIC)
    assert checks["bubblewrap"]["level"] == "ok"
    assert checks[f"{ANTHROPIC} key"]["level"] == "ok"
    assert checks["user namespaces"]["level"] in {"ok", "warning"}  # some containers forbid them
    assert code == 0
    assert "sk-ant-test-0000" not in json.dumps(checks)


def test_the_human_report_marks_each_check_and_gives_the_fix(tmp_path: Path) -> None:
    done = solver(scrubbed_env(tmp_path), "doctor", "--model", "openai/gpt-5", "--model", "no-such-model-xyz")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "✗ openai/gpt-5 key: OPENAI_API_KEY not set → export OPENAI_API_KEY=…" in lines
    assert any(line.startswith("✗ no-such-model-xyz: litellm does not know this model → name it") for line in lines)
    assert any(line.startswith("! bubblewrap: bwrap is not installed") for line in lines)
    assert any(line.startswith("✓ git: git version") for line in lines)


def test_an_unknown_price_is_a_warning_and_does_not_fail(tmp_path: Path) -> None:
    env = scrubbed_env(tmp_path, OPENAI_API_KEY="sk-test-0000")
    code, checks = doctor_json(env, "--model", "openai/solver-model-without-a-price")
    assert checks["openai/solver-model-without-a-price price"]["level"] == "warning"
    assert "cost limits cannot apply" in checks["openai/solver-model-without-a-price price"]["detail"]
    assert code == 0


def test_the_database_url_is_shown_without_its_password_and_an_old_schema_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(make_engine(url), "0004")
    env = scrubbed_env(tmp_path, SOLVER_DATABASE_URL=url)
    _, checks = doctor_json(env)
    assert checks["database"]["detail"] == url
    assert checks["migrations"]["level"] == "warning"  # SQLite is upgraded on first use anyway
    assert "solver db upgrade" in checks["migrations"]["fix"]
    secret = "postgresql://solver:hunter2secret@127.0.0.1:1/solver"
    code, checks = doctor_json(scrubbed_env(tmp_path, SOLVER_DATABASE_URL=secret))
    assert code == 1
    assert checks["database"]["level"] == "error"
    assert "hunter2secret" not in json.dumps(checks)
    assert "postgresql://solver:***@127.0.0.1:1/solver" in checks["database"]["detail"]


def test_an_unwritable_artifacts_folder_and_a_missing_e2b_key_fail(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = scrubbed_env(tmp_path, SOLVER_ARTIFACTS_DIR=str(blocker / "artifacts"))
    code, checks = doctor_json(env, "--sandbox", "e2b")
    assert code == 1
    assert checks["artifacts"]["level"] == "error"
    assert checks["e2b key"] == {
        "name": "e2b key",
        "level": "error",
        "detail": "SOLVER_E2B_API_KEY is not set",
        "fix": "export SOLVER_E2B_API_KEY=e2b_…",
    }
    assert checks["bubblewrap"]["detail"] == "not used (sandbox is e2b)"


def test_an_unreachable_docker_engine_is_named(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        require_docker()  # no client means no engine: skips here, fails under CI
    env = scrubbed_env(tmp_path, "docker", DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    code, checks = doctor_json(env, "--sandbox", "docker")
    assert code == 1
    assert checks["docker engine"]["level"] == "error"
    assert "start the docker engine" in checks["docker engine"]["fix"]


# --- preflight -------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["solver_core.entry", "solver_core.cli"], ids=["executable", "module"])
def test_a_missing_key_fails_before_anything_is_created_in_one_line(tmp_path: Path, entry: str) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    env = scrubbed_env(tmp_path)
    done = solver(env, "solve", str(repo), "--issue", "fix it", "--model", ANTHROPIC, entry=entry)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"model {ANTHROPIC} has no API key: set ANTHROPIC_API_KEY; run `solver doctor` for more"
    )
    assert not (tmp_path / "solver-home").exists()  # no database, no solve, no artifacts
    assert not (tmp_path / "sandboxes").exists()  # no sandbox


def test_a_local_batch_without_its_key_fails_at_once_and_a_remote_one_is_not_asked_for_it(tmp_path: Path) -> None:
    """A local batch runs the models here, so a missing key fails it in one line with nothing created;
    with --remote the deployment's keys run them, so this machine's are not asked for."""
    instances = tmp_path / "instances.jsonl"
    instances.write_text(
        json.dumps({"instance_id": "o__r-1", "repo": "o/r", "base_commit": "a" * 40, "problem_statement": "x"}) + "\n"
    )
    env = scrubbed_env(tmp_path)
    output = tmp_path / "out"
    done = solver(env, "batch", str(instances), "--model", ANTHROPIC, "--output", str(output))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"model {ANTHROPIC} has no API key: set ANTHROPIC_API_KEY; run `solver doctor` for more"
    )
    assert not output.exists()
    assert not (tmp_path / "solver-home").exists()

    remote = "http://127.0.0.1:9/stage"  # the discard port: nothing answers
    env |= {"SOLVER_SERVE_TOKEN": "t" * 32}
    done = solver(env, "batch", str(instances), "--model", ANTHROPIC, "--remote", remote, "--remote-auth", "token")
    assert "has no API key" not in done.stderr
    assert done.stderr.startswith("could not reach 127.0.0.1")  # it went on to reach the deployment


def test_an_unreachable_repository_fails_before_anything_is_created(tmp_path: Path) -> None:
    env = scrubbed_env(tmp_path, SOLVER_ALLOWED_HTTP_HOSTS="127.0.0.1")
    replay = tmp_path / "idle.yaml"
    replay.write_text("actions: [ls]\n")
    url = "http://127.0.0.1:9/owner/repo.git"  # the discard port: nothing listens
    done = solver(env, "solve", url, "--issue", "fix it", "--model", f"replay:{replay}")
    assert done.returncode == 2
    assert done.stderr.startswith(f"repository: {url} cannot be read (")
    assert done.stderr.strip().endswith("run `solver doctor` for more")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "solver-home").exists()


def test_required_bubblewrap_that_is_missing_fails_the_preflight(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    replay = tmp_path / "idle.yaml"
    replay.write_text("actions: [ls]\n")
    env = scrubbed_env(tmp_path, SOLVER_SANDBOX_ISOLATION="bwrap")
    done = solver(env, "solve", str(repo), "--issue", "fix it", "--model", f"replay:{replay}")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bubblewrap: bwrap is not installed; install bubblewrap (apt-get install bubblewrap); "
        "run `solver doctor` for more"
    )
    assert not (tmp_path / "solver-home").exists()


def test_serve_refuses_a_model_without_its_key_at_request_time(tmp_path: Path) -> None:
    from solver_core.agent.keys import preflight_models
    from solver_core.api.deps import ApiDeps
    from solver_core.cli.serve import make_server
    from tests.support.runtime import runtime

    container = runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(container.engine)
    deps = ApiDeps.from_container(container, check_models=preflight_models)
    server = make_server(lambda: deps, "127.0.0.1", 0, token=None, owner="local:tester")
    import http.client
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    body = {"repo_url": str(repo), "issue": {"title": "fix it"}, "models": ["anthropic/claude-sonnet-4-5"]}
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        connection.request("POST", "/solves", json.dumps(body), {"content-type": "application/json"})
        answer = connection.getresponse()
        error = json.loads(answer.read())["error"]
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
        container.close()
    assert answer.status == 422
    assert error["code"] == "model_not_configured"
    assert "set ANTHROPIC_API_KEY" in error["message"]
    assert container.solves.list("local:tester").items == []


def test_the_test_suites_postgresql_binaries_are_found_or_named_as_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solver_core.readiness.checks import check_postgres_binaries

    monkeypatch.setenv("PATH", str(tool_dir(tmp_path)))  # git and bash only
    missing = check_postgres_binaries((str(tmp_path / "nowhere"),))
    assert missing.level == "warning"
    assert missing.detail.startswith("initdb and pg_ctl not found")
    assert missing.fix == "install the server (apt-get install postgresql)"

    server = tmp_path / "lib" / "15" / "bin"
    server.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (server / name).write_text("#!/bin/sh\n")
        (server / name).chmod(0o755)
    found = check_postgres_binaries((str(tmp_path / "lib" / "*" / "bin"),))
    assert (found.level, found.detail) == ("ok", str(server))

    _, checks = doctor_json(scrubbed_env(tmp_path))  # the real machine: the suite needs them, so they are here
    assert checks["postgresql (tests)"]["level"] == "ok"
