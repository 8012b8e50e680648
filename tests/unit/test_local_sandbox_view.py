"""What a local (bubblewrap) sandbox's commands see of the host, decided from the host's layout:
which directories are hidden as homes, and what of /run comes back (only DNS's resolv.conf)."""

from __future__ import annotations

import pwd
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.sandbox.local import home_roots, runtime_mounts

pytestmark = pytest.mark.unit


def account(name: str, home: str | Path) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", 990, 990, name, str(home), "/usr/sbin/nologin"))


@pytest.fixture
def var_tmp() -> Iterator[Path]:
    """Outside /tmp, which the sandbox replaces anyway (a home there needs no hiding)."""
    path = Path(tempfile.mkdtemp(prefix="solver-test-accounts-", dir="/var/tmp"))
    try:
        yield path
    finally:
        for child in sorted(path.rglob("*"), reverse=True):
            child.unlink() if child.is_symlink() or not child.is_dir() else child.rmdir()
        path.rmdir()


def test_every_accounts_home_is_hidden_not_only_home_and_root(var_tmp: Path) -> None:
    """A service account's home (postgres's /var/lib/postgresql, www-data's /var/www) holds its
    credentials and data like a user's: it is hidden wherever it is."""
    service = var_tmp / "lib" / "postgresql"
    service.mkdir(parents=True)
    (service / "nested").mkdir()  # an account whose home is inside another's: one tmpfs covers both
    (var_tmp / "real-www").mkdir()
    (var_tmp / "www").symlink_to(var_tmp / "real-www")
    roots = home_roots(
        [account("postgres", service), account("app", service / "nested"), account("www", var_tmp / "www")]
    )
    assert service in roots
    assert service / "nested" not in roots
    assert var_tmp / "www" in roots
    assert Path("/home") in roots or not Path("/home").is_dir()


def test_system_directories_used_as_homes_stay_visible(var_tmp: Path) -> None:
    """Debian's daemon, bin and sys accounts live in /usr/sbin, /bin and /dev, nobody in
    /nonexistent, systemd's in /: the sandbox needs those, so they are never hidden; nor what is
    missing, a file, under the private /tmp or /run, or a link into a system directory."""
    (var_tmp / "a-file").write_text("not a directory")
    (var_tmp / "to-usr").symlink_to("/usr/share")
    entries = [
        account("root-like", "/"), account("daemon", "/usr/sbin"), account("bin", "/bin"), account("sys", "/dev"),
        account("nobody", "/nonexistent"), account("sshd", "/var/empty"), account("whole-var", "/var"),
        account("games", "/usr/games"), account("irc", "/run/user"), account("temp", tempfile.gettempdir()),
        account("proc", "/proc"), account("etc", "/etc"), account("missing", var_tmp / "missing"),
        account("file", var_tmp / "a-file"), account("linked", var_tmp / "to-usr"), account("relative", "var/lib/x"),
    ]  # fmt: skip
    roots = home_roots(entries)
    for entry in entries:
        assert Path(entry.pw_dir) not in roots, entry.pw_name
    assert not any(root == Path("/") or Path("/usr").is_relative_to(root) for root in roots)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    etc, run = tmp_path / "etc", tmp_path / "run"
    etc.mkdir()
    run.mkdir()
    return etc / "resolv.conf", run


def test_run_is_hidden_and_a_resolv_conf_under_it_bound_back(layout: tuple[Path, Path]) -> None:
    """systemd-resolved's hosts: /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf,
    itself a link to the file beside it. DNS keeps working: the links are made again and the file
    is bound back read-only, after /run's tmpfs (a later mount lies over an earlier one)."""
    resolv, run = layout
    resolve = run / "systemd" / "resolve"
    resolve.mkdir(parents=True)
    (resolve / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    (resolve / "stub-resolv.conf").symlink_to("resolv.conf")
    (resolve / "io.systemd.Resolve").write_text("")  # anything else there stays hidden
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    argv = runtime_mounts(resolv, (run,))
    assert argv == [
        "--tmpfs", str(run),
        "--symlink", "resolv.conf", str(resolve / "stub-resolv.conf"),
        "--ro-bind", str(resolve / "resolv.conf"), str(resolve / "resolv.conf"),
    ]  # fmt: skip


def test_a_plain_resolv_conf_brings_nothing_back(layout: tuple[Path, Path]) -> None:
    resolv, run = layout
    resolv.write_text("nameserver 192.0.2.1\n")
    (run / "docker.sock").write_text("")
    assert runtime_mounts(resolv, (run,)) == ["--tmpfs", str(run)]


def test_a_socket_is_never_bound_back(layout: tuple[Path, Path]) -> None:
    """Whatever resolv.conf points to under /run, only a regular file comes back: a socket (or a
    directory full of them) would hand the sandbox a host service."""
    resolv, run = layout
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(run / "service.sock"))
    try:
        resolv.symlink_to(run / "service.sock")
        assert runtime_mounts(resolv, (run,)) == ["--tmpfs", str(run)]
        resolv.unlink()
        resolv.symlink_to(run)
        assert runtime_mounts(resolv, (run,)) == ["--tmpfs", str(run)]
    finally:
        server.close()


def test_run_shm_still_leads_to_the_sandboxs_own_shared_memory(layout: tuple[Path, Path]) -> None:
    resolv, run = layout
    resolv.write_text("nameserver 192.0.2.1\n")
    (run / "shm").symlink_to("/dev/shm")
    assert runtime_mounts(resolv, (run,)) == ["--tmpfs", str(run), "--symlink", "/dev/shm", str(run / "shm")]
