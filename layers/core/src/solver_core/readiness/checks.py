"""The checks behind `solver doctor` and the preflight of `solver solve`/`serve`/`batch`: each one
says what it found and, when something is wrong, what to do about it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from solver_core.messages import one_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from solver_core.settings import Settings

PROBE_TIMEOUT_S = 10


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class Check(BaseModel):
    """One finding: `name` is what was checked, `detail` what was found, `fix` what to do."""

    model_config = ConfigDict(frozen=True)

    name: str
    level: Level
    detail: str
    fix: str | None = None

    @property
    def line(self) -> str:
        """The finding as one line: what happened, then what to do."""
        return f"{self.name}: {self.detail}" + (f"; {self.fix}" if self.fix else "")


def ok(name: str, detail: str) -> Check:
    return Check(name=name, level=Level.OK, detail=detail)


def problem(name: str, detail: str, fix: str, *, fatal: bool = True) -> Check:
    return Check(name=name, level=Level.ERROR if fatal else Level.WARNING, detail=one_line(detail), fix=fix)


def _run(argv: list[str], timeout: float = PROBE_TIMEOUT_S) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_git() -> Check:
    if shutil.which("git") is None:
        return problem("git", "git is not installed", "install git (apt-get install git, brew install git)")
    done = _run(["git", "--version"])
    if done is None or done.returncode != 0:
        return problem("git", "`git --version` failed", "reinstall git")
    return ok("git", done.stdout.strip())


def check_bubblewrap(settings: Settings) -> list[Check]:
    """bwrap, and whether it can make namespaces here (containers and some kernels forbid them)."""
    required = settings.sandbox == "local" and settings.sandbox_isolation == "bwrap"
    if settings.sandbox != "local" or settings.sandbox_isolation == "none":
        why = f"sandbox is {settings.sandbox}" if settings.sandbox != "local" else "SOLVER_SANDBOX_ISOLATION=none"
        return [ok("bubblewrap", f"not used ({why})")]
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        consequence = "" if required else ": local sandboxes run as plain subprocesses, without isolation"
        return [problem("bubblewrap", f"bwrap is not installed{consequence}",
                        "install bubblewrap (apt-get install bubblewrap)", fatal=required)]  # fmt: skip
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    probe.append("true")
    done = _run(probe)
    if done is None or done.returncode != 0:
        reason = one_line(done.stderr if done else "timed out", 160)
        return [
            ok("bubblewrap", bwrap),
            problem("user namespaces", f"bwrap cannot create namespaces ({reason})",
                    "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or "
                    "kernel.apparmor_restrict_unprivileged_userns=0), or set SOLVER_SANDBOX_ISOLATION=none",
                    fatal=required),
        ]  # fmt: skip
    return [ok("bubblewrap", bwrap), ok("user namespaces", "bwrap can create namespaces")]


POSTGRES_DIRS = ("/usr/lib/postgresql/*/bin",)  # Debian's and Ubuntu's server packages


def check_postgres_binaries(search: tuple[str, ...] = POSTGRES_DIRS) -> Check:
    """PostgreSQL's server binaries, which the test suite (`make test`) uses to start a throwaway
    server: on PATH or where Debian installs them. Only contributors need them, so a warning."""
    found = {
        name: shutil.which(name) or next(iter(sorted(p for d in search for p in glob.glob(f"{d}/{name}"))[::-1]), None)
        for name in ("initdb", "pg_ctl")
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        what = f"{' and '.join(missing)} not found: `make test` cannot start its throwaway PostgreSQL"
        return problem("postgresql (tests)", what, "install the server (apt-get install postgresql)", fatal=False)
    return ok("postgresql (tests)", str(Path(str(found["initdb"])).parent))


def check_sandbox_backend(settings: Settings) -> list[Check]:
    """The docker engine or the e2b API, when one of them is configured."""
    if settings.sandbox == "docker":
        if shutil.which("docker") is None:
            return [problem("docker", "the docker client is not installed", "install docker, or use --sandbox local")]
        return [_backend_check(settings, "docker engine", "start the docker engine (systemctl start docker) "
                                                          "and check that this user may use it")]  # fmt: skip
    if settings.sandbox == "e2b":
        if settings.e2b_api_key is None and not settings.e2b_api_key_secret_arn:
            return [problem("e2b key", "SOLVER_E2B_API_KEY is not set", "export SOLVER_E2B_API_KEY=e2b_…")]
        checks = [ok("e2b key", "set"), _backend_check(settings, "e2b API", "check the key and the network")]
        if settings.sandbox_template and settings.e2b_api_key is not None and checks[-1].level is Level.OK:
            checks.append(_template_check(settings, settings.sandbox_template, settings.e2b_api_key.get_secret_value()))
        return checks
    return []


def _template_check(settings: Settings, configured: str, key: str) -> Check:
    """SOLVER_SANDBOX_TEMPLATE (a template, or an image: its template) exists at e2b."""
    from solver_core.errors import SolverError
    from solver_core.sandbox import template

    name = template.e2b_template_name(configured)
    try:
        absent = template.missing([name], api_key=key, api_url=settings.e2b_api_url)
    except SolverError as exc:
        return problem("e2b template", f"{name} could not be checked: {exc.message}", "check the key and the network")
    if absent:
        how = f"--name {name}" if name == configured else f"--from-image {configured}"
        return problem("e2b template", f"{name} does not exist", f"build it: solver template build {how}")
    return ok("e2b template", name)


def _backend_check(settings: Settings, name: str, fix: str) -> Check:
    from solver_core.wiring import build_sandbox_backend

    try:
        backend = build_sandbox_backend(settings)
        backend.check()
    except Exception as exc:
        return problem(name, f"not reachable: {exc}", fix)
    return ok(name, "reachable")


def redacted_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def check_database(settings: Settings) -> list[Check]:
    """Reachable, and at the newest migration (the embedded SQLite file is created on first use)."""
    from solver_core.db.migrate import current_revision, head_revision

    url = redacted_url(settings)
    if not database_exists(settings):
        return [ok("database", f"{url} (created and migrated on first use)")]
    engine = probe_engine(settings)
    try:
        current = current_revision(engine)
    except Exception as exc:
        return [problem("database", f"{url} is not reachable: {exc}", "check SOLVER_DATABASE_URL and the server")]
    finally:
        engine.dispose()
    head = head_revision()
    if current != head:
        return [
            ok("database", url),
            problem("migrations", f"at {current or 'none'}, code expects {head}", "run `solver db upgrade`",
                    fatal=not settings.uses_sqlite),
        ]  # fmt: skip
    return [ok("database", url), ok("migrations", f"at head ({head})")]


def database_exists(settings: Settings) -> bool:
    """False for an embedded SQLite file not made yet (it is created and migrated on first use)."""
    if not settings.uses_sqlite:
        return True
    from sqlalchemy.engine import make_url

    path = make_url(settings.resolved_database_url).database
    return bool(path) and path != ":memory:" and Path(str(path)).exists()


def probe_engine(settings: Settings) -> Engine:
    """An engine that gives up on an unreachable PostgreSQL within seconds (doctor must not hang)."""
    from sqlalchemy.engine import make_url

    from solver_core.db.engine import make_engine

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(PROBE_TIMEOUT_S)})
    return make_engine(url.render_as_string(hide_password=False), pool_size=1)


def check_artifacts(settings: Settings) -> Check:
    if settings.artifacts_bucket:
        from solver_core.wiring import build_artifact_store

        where = f"s3://{settings.artifacts_bucket}/{settings.artifacts_prefix}"
        try:
            build_artifact_store(settings).check()
        except Exception as exc:
            return problem("artifacts", f"{where} is not reachable: {exc}", "check the bucket and AWS credentials")
        return ok("artifacts", where)
    folder = settings.resolved_artifacts_dir
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    try:  # the folder itself, or the nearest parent it will be created in
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".solver-doctor-{uuid.uuid4().hex[:8]}-"):
            pass
    except OSError as exc:
        return problem("artifacts", f"{folder} is not writable ({exc.strerror})",
                       "set SOLVER_HOME (or SOLVER_ARTIFACTS_DIR) to a writable folder")  # fmt: skip
    return ok("artifacts", f"{folder} (writable)" if existing == folder else f"{folder} (will be created)")


def check_repository(repo: str, settings: Settings) -> Check:
    """A local path is a git repository; a URL answers `git ls-remote` (network, host, token)."""
    if repo.startswith("/"):
        path = Path(repo.removeprefix("file://"))
        done = _run(["git", "-C", str(path), "rev-parse", "--git-dir"])
        if done is None or done.returncode != 0:
            return problem("repository", f"{path} is not a git repository", "give the path of a git checkout")
        return ok("repository", str(path))
    from solver_core.sandbox.repository import git_auth_env

    token = settings.host_token(repo)  # the preflight runs for the trusted owner (the CLI user)
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0"} | (git_auth_env(repo, token) if token else {})
    try:
        done = subprocess.run(["git", "ls-remote", "--exit-code", repo, "HEAD"], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, env=env, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return problem("repository", f"{repo} did not answer within {PROBE_TIMEOUT_S}s", "check the network")
    if done.returncode != 0:
        why = one_line(done.stderr.replace("fatal: ", ""), 160) or f"exit code {done.returncode}"
        fix = "check the URL and the network" + ("" if token else "; a private repository needs SOLVER_GITHUB_TOKEN")
        return problem("repository", f"{repo} cannot be read ({why})", fix)
    return ok("repository", f"{repo} (reachable)")
