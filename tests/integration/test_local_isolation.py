"""What bubblewrap adds to the local sandbox: a read-only host, a private /tmp, hidden home
directories (whatever appears in them, every account's), no host sockets under /run, toolchains
and DNS that still work, and a network switch."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.errors import ConfigurationError
from solver_core.ports import Sandbox
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.local import LocalSandboxBackend
from tests.support.runtime import require_bwrap

pytestmark = pytest.mark.integration

MARKER = "PRIVATE-c2f1b7"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home directory of our own: the tests never read or write the one they find. Not under
    /tmp, which the sandbox replaces anyway: a home must be hidden for being a home."""
    path = Path(tempfile.mkdtemp(prefix="solver-test-home-", dir="/var/tmp"))
    monkeypatch.setenv("HOME", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def isolated(tmp_path: Path, home: Path) -> Iterator[tuple[Sandbox, Path]]:
    require_bwrap()
    secret_dir = tmp_path / "solver-home"
    secret_dir.mkdir()
    (secret_dir / "solver.db").write_text("private database")
    backend = LocalSandboxBackend(tmp_path / "sandboxes", isolation="bwrap", hidden_paths=(secret_dir,))
    box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=300))
    yield box, secret_dir
    backend.kill(box.id)


def test_the_host_is_read_only_and_the_sandbox_writable(isolated: tuple[Sandbox, Path]) -> None:
    box, _ = isolated
    denied = box.run("touch /usr/solver-was-here 2>&1; echo rc=$?", timeout=30)
    assert "rc=0" not in denied.output
    assert not Path("/usr/solver-was-here").exists()
    assert box.run("echo ok > mine.txt && cat mine.txt", timeout=30).output.strip() == "ok"


def test_tmp_is_private(isolated: tuple[Sandbox, Path]) -> None:
    box, _ = isolated
    marker = f"solver-private-{uuid.uuid4().hex}"
    box.run(f"echo inside > /tmp/{marker}", timeout=30)
    assert not Path(f"/tmp/{marker}").exists()
    host_marker = Path(f"/tmp/{marker}-host")
    host_marker.write_text("host")
    try:
        assert "absent" in box.run(f"test -e {host_marker} && echo present || echo absent", timeout=30).output
    finally:
        host_marker.unlink()


CREDENTIALS = (
    ".ssh/id_ed25519", ".bash_history", ".zsh_history", ".python_history", "work/project/.env",
    ".cargo/credentials.toml", ".docker/config.json", ".kube/config", ".netrc", ".aws/credentials",
    ".config/gh/hosts.yml", ".mozilla/firefox/abc.default/logins.json",
    ".config/google-chrome/Default/Login Data",
)  # fmt: skip


def test_credentials_and_solver_data_are_hidden(isolated: tuple[Sandbox, Path], home: Path) -> None:
    """Everything in the home directory is hidden, including what appears after the sandbox started."""
    box, secret_dir = isolated
    assert "private database" not in box.run(f"cat {secret_dir}/solver.db 2>&1", timeout=30).output
    assert box.run("true", timeout=30).ok  # the sandbox is in use before the credentials appear
    for name in CREDENTIALS:
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(MARKER)
    for name in CREDENTIALS:
        assert MARKER not in box.run(f"cat '{home / name}' 2>&1", timeout=30).output, name
    assert box.run(f"ls -A '{home}'", timeout=30).output.strip() == ""
    assert box.run("ls -A /home", timeout=30).output.strip() == ""


def test_the_python_toolchain_still_works(isolated: tuple[Sandbox, Path]) -> None:
    """Python may live in a home directory (pyenv's ~/.pyenv): the sandbox still runs it and a
    repository's tests, through a virtualenv as setup makes one."""
    box, _ = isolated
    host = subprocess.run(
        ["python3", "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True, check=True
    )
    inside = box.run("python3 -c 'import sys; print(sys.base_prefix)'", timeout=60)
    assert inside.ok, inside.output
    assert inside.output.strip() == host.stdout.strip()
    test = b"import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        pass\n"
    box.write_file("proj/test_one.py", test)
    venv = box.run("python3 -m venv .venv && .venv/bin/python -m unittest -q 2>&1", cwd=f"{box.home}/proj", timeout=120)
    assert venv.ok, venv.output
    has_pytest = subprocess.run(["python3", "-m", "pytest", "--version"], capture_output=True, check=False)
    if has_pytest.returncode == 0:  # the host's python3 has pytest: so does the sandbox's
        ran = box.run("python3 -m pytest -q -p no:cacheprovider test_one.py", cwd=f"{box.home}/proj", timeout=120)
        assert ran.ok, ran.output
        assert "1 passed" in ran.output


def test_toolchains_in_a_home_are_visible_but_nothing_next_to_them(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_bwrap()
    tool = home / ".tool" / "bin" / "mytool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o755)
    (home / ".tool" / "credentials").write_text(MARKER)
    extra = home / ".sdk"
    extra.mkdir()
    (extra / "version.txt").write_text("sdk-1.2")
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    backend = LocalSandboxBackend(tmp_path / "sandboxes", isolation="bwrap", read_paths=(extra,))
    box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=300))
    try:
        assert box.run("mytool", timeout=30).output.strip() == "tool-ran"
        assert MARKER not in box.run(f"cat '{home}/.tool/credentials' 2>&1", timeout=30).output
        assert box.run(f"cat '{extra}/version.txt'", timeout=30).output.strip() == "sdk-1.2"
        assert "Read-only" in box.run(f"touch '{extra}/x' 2>&1", timeout=30).output
    finally:
        backend.kill(box.id)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on the host's loopback that accepts connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize("agent_network", [True, False])
def test_the_network_switch_cuts_agent_commands_off(tmp_path: Path, listener: int, agent_network: bool) -> None:
    require_bwrap()
    backend = LocalSandboxBackend(tmp_path / "sandboxes", isolation="bwrap", agent_network=agent_network)
    box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=300))
    connect = f"(exec 3<>/dev/tcp/127.0.0.1/{listener}) 2>/dev/null && echo connected || echo refused"
    try:
        assert box.run(connect, timeout=30).output.strip() == "connected"  # setup: always on the network
        action = box.execute({"command": connect}, cwd=box.home)
        assert action["output"].strip() == ("connected" if agent_network else "refused")
    finally:
        backend.kill(box.id)


def test_the_network_cannot_be_switched_off_without_bubblewrap(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SOLVER_SANDBOX_NETWORK"):
        LocalSandboxBackend(tmp_path / "sandboxes", isolation="none", agent_network=False)


def test_processes_do_not_see_the_host(isolated: tuple[Sandbox, Path]) -> None:
    box, _ = isolated
    pids = box.run("ls /proc | grep -c '^[0-9]'", timeout=30).output.strip()
    assert int(pids) < 10  # a private PID namespace: only the command's own processes
    assert str(os.getpid()) not in box.run("ls /proc", timeout=30).output.split()


@pytest.fixture
def host_socket() -> Iterator[Path]:
    """A Unix socket listening where the host's services keep theirs (docker's, dbus's, the
    user's ssh-agent and gpg-agent): /run as root, the user's runtime directory under it otherwise."""
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    directory = next((d for d in (Path("/run"), runtime) if d.is_dir() and os.access(d, os.W_OK)), None)
    if directory is None:
        pytest.fail(f"neither /run nor {runtime} is writable: cannot listen where host services do", pytrace=False)
    path = directory / f"solver-test-{uuid.uuid4().hex[:12]}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    path.chmod(0o777)
    server.listen(8)
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)


CONNECT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')"


def test_host_sockets_under_run_are_out_of_reach(isolated: tuple[Sandbox, Path], host_socket: Path) -> None:
    """A read-only bind still lets a socket accept connections: /run's (and /var/run's) are hidden
    as a whole, so docker's, dbus's and the user's agents are neither reachable nor visible."""
    box, _ = isolated
    with socket.socket(socket.AF_UNIX) as probe:  # the host's side: it does listen
        probe.connect(str(host_socket))
    aliases = [host_socket, Path("/var/run") / host_socket.relative_to("/run")]
    for path in aliases:
        tried = box.run(f"python3 -c \"{CONNECT}\" '{path}' 2>&1", timeout=30)
        assert "connected" not in tried.output, path
        assert box.run(f"test -e '{path}' && echo present || echo absent", timeout=30).output.strip() == "absent"
    for docker in ("/run/docker.sock", "/var/run/docker.sock"):  # on CI, dockerd runs
        assert box.run(f"test -e {docker} && echo present || echo absent", timeout=30).output.strip() == "absent"
    sockets = box.run("find -L /run /var/run -type s 2>/dev/null", timeout=30)
    assert sockets.output.strip() == ""


SERVICE_ACCOUNTS = ("postgres", "www-data", "backup", "mysql", "redis", "gitlab-runner", "jenkins")


def _service_homes() -> dict[str, Path]:
    """Accounts whose home is outside /home and /root, with something in it to find: a marker we
    write (as root) or what is there already."""
    found = {}
    for entry in pwd.getpwall():
        home = Path(entry.pw_dir)
        if entry.pw_name in SERVICE_ACCOUNTS and home.is_dir() and not _under_any(home, ("/home", "/root")):
            found[entry.pw_name] = home
    return found


def _under_any(path: Path, roots: tuple[str, ...]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def test_every_accounts_home_is_hidden(isolated: tuple[Sandbox, Path]) -> None:
    """postgres's /var/lib/postgresql (its data, its .pgpass, its history) is as hidden as a
    user's home. CI installs postgresql (and runs as root): its home is checked there, with a marker."""
    box, _ = isolated
    homes = _service_homes()
    if "postgres" not in homes and (os.environ.get("CI") or not homes):
        if os.environ.get("CI"):
            pytest.fail("CI installs postgresql: the postgres account and its home must exist", pytrace=False)
        pytest.skip(f"none of the accounts {', '.join(SERVICE_ACCOUNTS)} has a home here")
    checked = []
    for name, home in homes.items():
        marker = home / f".solver-test-{uuid.uuid4().hex[:12]}"
        with contextlib.suppress(OSError):  # not ours to write (not root): what is there must be invisible
            marker.write_text(MARKER)
        try:
            if not any(home.iterdir()):
                continue
            assert MARKER not in box.run(f"cat '{marker}' 2>&1", timeout=30).output, name
            assert box.run(f"ls -A '{home}' 2>&1", timeout=30).output.strip() == "", name
            checked.append(name)
        finally:
            marker.unlink(missing_ok=True)
    assert "postgres" in checked if "postgres" in homes else checked, f"nothing to find in {homes}"


def test_dns_still_resolves_inside(isolated: tuple[Sandbox, Path]) -> None:
    """/run is hidden, but resolv.conf (under /run where systemd-resolved manages it) is read as
    on the host, and names resolve, for setup and for agent commands."""
    box, _ = isolated
    host = Path("/etc/resolv.conf")
    if host.exists():
        assert box.run("cat /etc/resolv.conf", timeout=30).output == host.read_text()
    lookup = "python3 -c \"import socket; print(socket.getaddrinfo('localhost', 80)[0][4][0])\""
    resolved = box.run(lookup, timeout=30)
    assert resolved.ok, resolved.output
    assert resolved.output.strip() in {"127.0.0.1", "::1"}
    action = box.execute({"command": "getent hosts localhost"}, cwd=box.home)
    assert action["returncode"] == 0, action
    assert "localhost" in action["output"]
