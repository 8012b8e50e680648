"""The local sandbox: a scratch directory on this machine, isolated with bubblewrap when it exists.

Under bwrap the host is read-only, the sandbox directory is the only writable place, /tmp is
private, every account's home directory is hidden as a whole, /run (the host's sockets) is an
empty tmpfs but for the resolv.conf DNS needs, and everything dies with its parent.
Without bwrap commands run as plain subprocesses, with a visible warning. Either way commands get a
scrubbed environment: PATH, HOME and LANG plus what the caller passes — no AWS or LLM variables.

Home directories are an allow-list, not a list of credential folders: every command mounts an
empty tmpfs over /home, /root, the user's home and every other account's (so a `~/.ssh` created
after the sandbox started is as invisible as shell histories, `.env` files or browser profiles),
then binds back, read-only, only the toolchain: the PATH entries and Python interpreter prefixes
that live in a home, and the paths of `SOLVER_SANDBOX_READ_PATHS`. Secrets given to one command
(a clone's auth header) travel in bwrap's environment, never in its argv (which any local user can
read in /proc).

A sandbox's state lives on disk (`<root>/<id>/state`), so another process can reconnect to it,
list it by metadata or kill it, like the cloud providers' control planes allow.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from solver_core.errors import ConfigurationError, SandboxGone
from solver_core.sandbox.base import (
    BASE_ENV,
    SOLVER_SHELL,
    STARTUP_VARIABLES,
    CommandResult,
    SandboxEnvironment,
    SandboxEnvironmentConfig,
    SandboxInfo,
    SandboxSpec,
    _status_of,
)
from solver_core.sandbox.jobs import CONTROL_TIMEOUT_S, STATUS_OUTPUT_BYTES, JobStatus, check_job_id, runner_argv
from solver_core.sandbox.process import descendants, kill_group, run_process

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE_TIMEOUT_S = 10


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


# The sandbox needs these (or they are no home at all: /nonexistent, /var/empty), so an account whose
# home is one of them, inside one or above one (`/`, `/var`) keeps it visible. /tmp and /run get a
# tmpfs of their own: a home under them is hidden already.
KEPT_DIRS = tuple(
    Path(p)
    for p in (
        "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc", "/dev", "/proc", "/sys",
        "/boot", "/nix", "/nonexistent", "/var/empty", "/tmp", "/run", "/var/run",  # noqa: S108 - names, not files
    )
)  # fmt: skip
RUNTIME_DIRS = (Path("/run"), Path("/var/run"))  # the same directory where /var/run is a link
RESOLV_CONF = Path("/etc/resolv.conf")
SHM = "/dev/shm"  # noqa: S108 - bwrap's --dev gives every sandbox a private one
MAX_LINKS = 40


def home_roots(accounts: Iterable[pwd.struct_passwd] | None = None) -> tuple[Path, ...]:
    """The directories hidden as a whole: /home, /root, this user's home, and the home of every
    account in the password database (`pwd.getpwall()` when `accounts` is None) wherever it is:
    postgres's /var/lib/postgresql, www-data's /var/www. Only directories of their own count, never
    a system directory that doubles as a home (daemon's /usr/sbin, sys's /dev, a `/`)."""
    entries = pwd.getpwall() if accounts is None else list(accounts)
    if accounts is None:
        with contextlib.suppress(KeyError):
            entries.append(pwd.getpwuid(os.getuid()))  # NSS without enumeration (LDAP) lists no one
    candidates = [Path("/home"), Path("/root"), Path.home(), *(Path(e.pw_dir) for e in entries)]
    homes = {Path(os.path.normpath(c)) for c in candidates if c.is_absolute()}
    found = sorted(h for h in homes if h.is_dir() and not _kept(h) and not _kept(h.resolve()))
    return tuple(h for h in found if not _under(h.parent, found))  # one tmpfs covers a nested home


def _kept(path: Path) -> bool:
    return any(path.is_relative_to(kept) or kept.is_relative_to(path) for kept in KEPT_DIRS)


def runtime_dirs() -> tuple[Path, ...]:
    """/run, and /var/run where it is a directory of its own rather than a link to /run."""
    return tuple(dict.fromkeys(d.resolve() for d in RUNTIME_DIRS if d.is_dir()))


def runtime_mounts(resolv_conf: Path = RESOLV_CONF, runtime: tuple[Path, ...] | None = None) -> list[str]:
    """bwrap arguments that hide the runtime directories (the host's sockets: docker's, dbus's, the
    user's ssh/gpg agents in /run/user/UID; a read-only bind leaves a socket connectable) and bring
    back what commands need there: the resolv.conf that /etc/resolv.conf leads to (systemd-resolved,
    resolvconf and NetworkManager keep it under /run), the links on its way, and /run/shm (a link to
    the sandbox's own /dev/shm). Only a regular file is ever bound back, read-only."""
    roots = runtime_dirs() if runtime is None else runtime
    argv: list[str] = []
    for root in roots:
        argv += ["--tmpfs", str(root)]
        shm = root / "shm"
        if shm.is_symlink() and os.readlink(shm) == SHM:
            argv += ["--symlink", SHM, str(shm)]
    return argv + _resolv_conf_mounts(resolv_conf, roots)


def _resolv_conf_mounts(resolv_conf: Path, roots: tuple[Path, ...]) -> list[str]:
    argv: list[str] = []
    hop = resolv_conf
    for _ in range(MAX_LINKS):
        hop = hop.parent.resolve() / hop.name  # /var/run/x is /run/x where /var/run links to /run
        inside = _under(hop, roots)
        if hop.is_symlink():
            target = os.readlink(hop)
            if inside:
                argv += ["--symlink", target, str(hop)]
            hop = hop.parent / target  # resolved like the kernel does, at the next turn
            continue
        if inside and hop.is_file():  # is_file: never a socket, a directory or a device
            argv += ["--ro-bind", str(hop), str(hop)]
        break
    return argv


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


@functools.cache
def _python_prefix(path_env: str) -> Path | None:
    """The prefix of the `python3` a sandboxed command would run (through pyenv shims, say)."""
    try:
        done = subprocess.run(
            ["python3", "-c", "import sys; print(sys.base_prefix)"],
            env={"PATH": path_env, "HOME": str(Path.home())},
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    prefix = done.stdout.strip()
    return Path(prefix) if done.returncode == 0 and prefix.startswith("/") else None


@functools.cache
def toolchain(path_env: str, extra: tuple[Path, ...], roots: tuple[Path, ...]) -> tuple[tuple[Path, ...], str]:
    """What a sandboxed command may read inside the hidden homes, and the PATH it gets.

    Bound back read-only: each PATH entry inside a home (the directory itself, not its parent:
    `~/.cargo/bin`, never `~/.cargo` with its credentials), the prefix of the Python interpreter
    that `python3` resolves to and of Solver's own interpreter (pyenv keeps them in `~/.pyenv`),
    and `extra`. Interpreter prefixes inside a home go first on PATH, ahead of version-manager
    shims, which would need the manager's whole directory.
    """
    entries = [Path(p) for p in path_env.split(os.pathsep) if p.startswith("/")]
    found = shutil.which("python3", path=path_env)
    # Probed only when it lives in a home (pyenv's shims take a second); elsewhere it stays visible.
    probed = _python_prefix(path_env) if found and _under(Path(found), roots) else None
    prefixes = [p for p in (probed, Path(sys.base_prefix)) if p is not None]
    bound = [p for p in [*entries, *prefixes] if _under(p, roots) and p.is_dir()]
    bound += [p for p in extra if p.exists()]
    front = [str(p / "bin") for p in dict.fromkeys(prefixes) if _under(p, roots) and (p / "bin").is_dir()]
    path = os.pathsep.join(dict.fromkeys([*front, *(str(e) for e in entries)]))
    return tuple(dict.fromkeys(bound)), path or DEFAULT_PATH


class LocalSandboxBackend:
    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        isolation: str = "auto",
        hidden_paths: tuple[Path, ...] = (),
        read_paths: tuple[Path, ...] = (),
        agent_network: bool = True,
        env_config: SandboxEnvironmentConfig | None = None,
    ) -> None:
        self.root = root
        self.bwrap = bwrap_path() if isolation in {"auto", "bwrap"} else None
        if isolation == "bwrap" and self.bwrap is None:
            raise SandboxGone("bubblewrap isolation was requested but `bwrap` is not installed")
        if not agent_network and self.bwrap is None:
            raise ConfigurationError("SOLVER_SANDBOX_NETWORK=off needs bubblewrap (bwrap), which is not in use")
        self.hidden_paths = hidden_paths  # outside the homes (Solver's data, say): hidden too
        self.read_paths = read_paths
        self.agent_network = agent_network
        self.env_config = env_config or SandboxEnvironmentConfig()
        if self.bwrap is None and isolation == "auto":
            log.warning("bubblewrap (bwrap) not found: local sandboxes run as plain subprocesses without isolation")
        elif self.bwrap is None:
            log.warning("sandbox isolation is off: commands run as plain subprocesses on this machine")

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    def create(self, spec: SandboxSpec) -> LocalSandbox:
        sandbox_id = _sandbox_id(spec.idempotency_key)
        directory = self.root / sandbox_id
        if (directory / "state" / "meta.json").is_file():
            return self.connect(sandbox_id)  # the same idempotency key: the same sandbox
        (directory / "state" / "pids").mkdir(parents=True, exist_ok=True)
        (directory / "home").mkdir(exist_ok=True)
        meta = {
            "id": sandbox_id,
            "metadata": dict(spec.metadata),
            "envs": dict(spec.envs),
            "created_at": time.time(),
            "expires_at": time.time() + spec.lifetime_s,
        }
        (directory / "state" / "meta.json").write_text(json.dumps(meta))
        return LocalSandbox(self, sandbox_id, meta)

    def connect(self, sandbox_id: str) -> LocalSandbox:
        meta = self._meta(sandbox_id)
        if meta is None:
            raise SandboxGone(f"sandbox {sandbox_id} not found")
        sandbox = LocalSandbox(self, sandbox_id, meta)
        sandbox.ensure_alive()
        return sandbox

    def kill(self, sandbox_id: str) -> bool:
        directory = self.root / _safe(sandbox_id)
        if not directory.is_dir():
            return False
        state = directory / "state"
        with contextlib.suppress(OSError):
            (state / "killed").touch()
        for child in (state / "jobs").glob("*/child"):  # detached commands lead their own groups
            if not (child.parent / "exit").exists():
                with contextlib.suppress(OSError, ValueError):
                    kill_tree(int(child.read_text()))
        for pid_file in (state / "pids").glob("*"):
            kill_group(int(pid_file.name))
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def list(self, metadata: Mapping[str, str]) -> list[SandboxInfo]:
        found = []
        for meta_file in sorted(self.root.glob("*/state/meta.json")):
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(meta_file.read_text())
                if all(meta["metadata"].get(k) == v for k, v in metadata.items()):
                    found.append(SandboxInfo(meta["id"], meta["metadata"]))
        return found

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _meta(self, sandbox_id: str) -> dict[str, object] | None:
        path = self.root / _safe(sandbox_id) / "state" / "meta.json"
        try:
            meta: dict[str, object] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return meta


class LocalSandbox(SandboxEnvironment):
    backend_name = "local"

    def __init__(self, backend: LocalSandboxBackend, sandbox_id: str, meta: Mapping[str, object]) -> None:
        self._backend = backend
        self.id = sandbox_id
        self._dir = backend.root / sandbox_id
        self.home = str(self._dir / "home")
        self._state = self._dir / "state"
        self._envs = {str(k): str(v) for k, v in dict(meta.get("envs") or {}).items()}  # type: ignore[call-overload]
        self._expires_at = float(meta["expires_at"])  # type: ignore[arg-type]
        self.config = backend.env_config

    def ensure_alive(self) -> None:
        if (self._state / "killed").exists() or not self._state.is_dir():
            raise SandboxGone(f"sandbox {self.id} was killed")
        if time.time() > self._expires_at:
            self._backend.kill(self.id)
            raise SandboxGone(f"sandbox {self.id} reached the end of its lifetime")

    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float,
        login: bool = False,
        network: bool = True,
    ) -> CommandResult:
        """Run a command; `network=False` gives it a network namespace of its own (loopback only)."""
        self.ensure_alive()
        environment = self._environment(env)
        if not login:
            for name in STARTUP_VARIABLES:
                environment.pop(name, None)
        directory = cwd or self.home
        shell = ["bash", "-c"] if login else list(SOLVER_SHELL)
        argv = self._argv([*shell, command], directory, network=network)
        pids = self._state / "pids"
        result = run_process(
            argv,
            env=environment,  # bwrap passes its environment on: values never appear in an argv
            cwd=None if self._backend.bwrap else directory,
            timeout=timeout,
            max_output_bytes=self.config.max_output_bytes,
            on_start=lambda pid: (pids / str(pid)).touch(),
            on_exit=lambda pid: (pids / str(pid)).unlink(missing_ok=True),
        )
        self.ensure_alive()  # a kill during the command surfaces as SandboxGone, not as its output
        return result

    def run_action(self, command: str, *, cwd: str, env: Mapping[str, str], timeout: float) -> CommandResult:
        """An agent's command: on the network only when SOLVER_SANDBOX_NETWORK says so."""
        return self.run(command, cwd=cwd, env=env, timeout=timeout, network=self._backend.agent_network, login=True)

    def _environment(self, env: Mapping[str, str] | None) -> dict[str, str]:
        path = self._toolchain()[1] if self._backend.bwrap else os.environ.get("PATH", DEFAULT_PATH)
        return {"PATH": path, "HOME": self.home, **BASE_ENV, **self._envs, **(env or {})}

    # --- detached commands: the runner runs on the host, around bwrap ----------------------------

    def job_dir(self, job_id: str) -> str:
        # On the host beside the sandbox's home: under bubblewrap the sandbox sees it read-only, so
        # nothing it runs can forge a job's exit code or output.
        return str(self._state / "jobs" / check_job_id(job_id))

    def start_job(
        self, job_id: str, command: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None, timeout: float
    ) -> None:
        self.ensure_alive()
        environment = self._environment(env)
        for name in STARTUP_VARIABLES:  # Solver's own commands read no shell startup file
            environment.pop(name, None)
        directory = cwd or self.home
        inner = self._argv([*SOLVER_SHELL, command], directory, network=True)
        argv = runner_argv("run", self.job_dir(job_id), str(max(int(timeout), 1)), *inner)
        self._spawn_detached(argv, cwd=directory, env=environment)

    def _spawn_detached(self, argv: list[str], *, cwd: str, env: Mapping[str, str]) -> None:
        isolated = self._backend.bwrap is not None
        # A session of its own, not a child tied to this thread (bwrap's --die-with-parent would
        # follow a thread that ends with its Lambda-style invocation): `timeout` inside the runner is
        # bwrap's parent, and the sandbox's kill reaches the runner through its pid file.
        process = subprocess.Popen(
            argv,
            env=dict(env),  # through the runner and `timeout` to bwrap, which passes it on: never in argv
            cwd=None if isolated else cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        pid_file = self._state / "pids" / str(process.pid)
        pid_file.touch()
        threading.Thread(target=_reap, args=(process, pid_file), name=f"job-{process.pid}", daemon=True).start()

    def job_status(self, job_id: str) -> JobStatus:
        self.ensure_alive()
        return _status_of(job_id, self._control("status", job_id, str(STATUS_OUTPUT_BYTES)))

    def stop_job(self, job_id: str) -> None:
        directory = Path(self.job_dir(job_id))
        if not directory.is_dir():
            return
        (directory / "cancelled").touch()  # what the runner's `stop` does, then a kill of the whole tree
        with contextlib.suppress(OSError, ValueError):
            kill_tree(int((directory / "child").read_text()))

    def _control(self, action: str, job_id: str, *args: str) -> CommandResult:
        return run_process(
            runner_argv(action, self.job_dir(job_id), *args),
            env={"PATH": os.environ.get("PATH", DEFAULT_PATH), **BASE_ENV},
            cwd=None,
            timeout=CONTROL_TIMEOUT_S,
            max_output_bytes=STATUS_OUTPUT_BYTES + 4096,
        )

    def _argv(self, command: list[str], cwd: str, *, network: bool) -> list[str]:
        if not self._backend.bwrap:
            return command
        argv = [self._backend.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc"]
        argv += ["--unshare-uts", "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        if not network:
            argv += ["--unshare-net"]
        argv += ["--tmpfs", "/tmp"]  # noqa: S108 - a private /tmp, mounted before the sandbox (often under /tmp)
        argv += runtime_mounts()  # before the homes and the toolchain, which may bind back into /run
        argv += self._hide_homes()
        argv += ["--bind", str(self._dir / "home"), self.home]  # last: the sandbox may live in a hidden place
        return [*argv, "--chdir", cwd, "--", *command]

    def _hide_homes(self) -> list[str]:
        """Evaluated per command: whatever exists in the homes now is hidden, whenever it appeared."""
        argv: list[str] = []
        roots = home_roots()
        for root in roots:
            argv += ["--tmpfs", str(root)]
        for hidden in self._backend.hidden_paths:
            if _under(hidden, (*roots, *runtime_dirs())):
                continue  # already hidden with its home or /run
            if hidden.is_dir():
                argv += ["--tmpfs", str(hidden)]
            elif hidden.exists():
                argv += ["--ro-bind", "/dev/null", str(hidden)]
        for visible in self._toolchain()[0]:
            argv += ["--ro-bind", str(visible.resolve()), str(visible)]
        return argv

    def _toolchain(self) -> tuple[tuple[Path, ...], str]:
        hidden = (*home_roots(), *runtime_dirs())  # a PATH entry there (NixOS's /run/current-system) comes back
        return toolchain(os.environ.get("PATH", DEFAULT_PATH), self._backend.read_paths, hidden)

    def write_file(self, path: str, data: bytes) -> None:
        self.ensure_alive()
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        self.ensure_alive()
        with self._inside(path).open("rb") as stream:
            return stream.read() if limit is None else stream.read(limit + 1)

    def _inside(self, path: str) -> Path:
        target = Path(path if path.startswith("/") else f"{self.home}/{path}").resolve()
        if not target.is_relative_to(Path(self.home).resolve()):
            raise ValueError(f"{path} is outside the sandbox")
        return target

    def kill(self) -> bool:
        return self._backend.kill(self.id)


def kill_tree(root: int) -> None:
    """Kill a detached command's process group and everything below it. bubblewrap's inner process
    learns of its parent's death only once it has set itself up: a kill in that first instant would
    orphan it, so the tree is listed before anything is killed."""
    tree = [root, *descendants(root)]
    for pid in tree:
        kill_group(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _reap(process: subprocess.Popen[bytes], pid_file: Path) -> None:
    process.wait()
    pid_file.unlink(missing_ok=True)


def _sandbox_id(idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"local-{uuid.uuid4().hex[:16]}"
    return f"local-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"


def _safe(sandbox_id: str) -> str:
    if not sandbox_id.startswith("local-") or not sandbox_id[6:].isalnum():
        raise SandboxGone(f"sandbox {sandbox_id!r} is not a local sandbox id")
    return sandbox_id
