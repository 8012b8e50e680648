"""What bubblewrap adds to the local sandbox: a read-only host, a private /tmp, hidden credentials."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.ports import Sandbox
from solver_core.sandbox.base import SandboxSpec
from solver_core.sandbox.local import LocalSandboxBackend
from tests.support.runtime import require_bwrap

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
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


def test_credentials_and_solver_data_are_hidden(isolated: tuple[Sandbox, Path]) -> None:
    box, secret_dir = isolated
    assert "private database" not in box.run(f"cat {secret_dir}/solver.db 2>&1", timeout=30).output
    ssh = Path.home() / ".ssh"
    created = not ssh.exists()
    ssh.mkdir(exist_ok=True)
    key = ssh / "solver_test_key"
    key.write_text("PRIVATE")
    try:
        assert "PRIVATE" not in box.run(f"cat {key} 2>&1", timeout=30).output
    finally:
        key.unlink()
        if created:
            ssh.rmdir()


def test_processes_do_not_see_the_host(isolated: tuple[Sandbox, Path]) -> None:
    box, _ = isolated
    pids = box.run("ls /proc | grep -c '^[0-9]'", timeout=30).output.strip()
    assert int(pids) < 10  # a private PID namespace: only the command's own processes
    assert str(os.getpid()) not in box.run("ls /proc", timeout=30).output.split()
