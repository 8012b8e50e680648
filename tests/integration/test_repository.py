"""Repository preparation, patches and verification inside every kind of sandbox."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from solver_core.errors import PatchTooLarge, RepositoryError
from solver_core.ports import Sandbox, SandboxBackend
from solver_core.sandbox import repository
from solver_core.sandbox.base import SandboxSpec
from tests.fakes.git_server import GitHTTPServer
from tests.support.runtime import BACKENDS, commit_files, git, host_address_for, make_repo, sandbox_backend

pytestmark = pytest.mark.integration

TOKEN = "ghp_privateToken1234567890abcdefABCDEF"


@pytest.fixture(params=[*BACKENDS, "docker"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxBackend]:
    with sandbox_backend(request.param, tmp_path) as (made, _service):
        yield made


@pytest.fixture
def sandbox(backend: SandboxBackend) -> Iterator[Sandbox]:
    box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=600))
    yield box
    backend.kill(box.id)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "origin", {"app.py": "print('v1')\n", "logo.bin": b"\x89PNG\x00\x01", "old.txt": "x\n"})
    git(path, "tag", "v1")
    commit_files(path, {"app.py": "print('v2')\n"}, "second")
    git(path, "branch", "feature", "HEAD~1")
    return path


def prepare(sandbox: Sandbox, repo: Path | str, ref: str | None = None, setup: str | None = None) -> str:
    return repository.prepare(sandbox, repo=str(repo), ref=ref, setup_command=setup, issue_text="# t\n").base_commit


@pytest.mark.parametrize(("ref", "expected"), [(None, "v2"), ("main", "v2"), ("v1", "v1"), ("feature", "v1")])
def test_checkout_of_default_branch_tag_and_branch(
    sandbox: Sandbox, repo: Path, ref: str | None, expected: str
) -> None:
    base = prepare(sandbox, repo, ref)
    assert base == git(repo, "rev-parse", f"{ref or 'HEAD'}^{{commit}}")
    assert sandbox.run("cat app.py", cwd=sandbox.workdir, timeout=30).output.strip() == f"print('{expected}')"


def test_checkout_of_a_sha(sandbox: Sandbox, repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD~1")
    assert prepare(sandbox, repo, sha[:10]) == sha


def test_an_unknown_ref_is_a_clear_error(sandbox: Sandbox, repo: Path) -> None:
    with pytest.raises(RepositoryError) as caught:
        prepare(sandbox, repo, "no-such-branch")
    assert caught.value.message == f"ref 'no-such-branch' not found in {repo}; {RepositoryError.hint}"


def test_a_failing_setup_command_is_a_clear_error(sandbox: Sandbox, repo: Path) -> None:
    with pytest.raises(RepositoryError, match="setup command failed with exit code 4"):
        prepare(sandbox, repo, setup="echo installing; exit 4")


def test_the_patch_has_new_deleted_and_binary_files_but_not_setup_output(sandbox: Sandbox, repo: Path) -> None:
    base = prepare(sandbox, repo, setup="mkdir -p .venv/lib build && echo x > .venv/lib/site.py && echo o > build/out")
    script = "printf 'print(3)\\n' > app.py && rm old.txt && printf '\\x00\\x02' > logo.bin && echo hi > new.txt"
    sandbox.run(script + " && echo y >> .venv/lib/site.py", cwd=sandbox.workdir, timeout=30)
    sandbox.run("git add app.py", cwd=sandbox.workdir, timeout=30)  # the agent's own staging is irrelevant
    patch = repository.diff(sandbox, base)
    text = patch.decode()
    assert "+print(3)" in text
    assert "deleted file mode" in text
    assert "GIT binary patch" in text
    assert "new.txt" in text
    assert ".venv" not in text
    assert "build/out" not in text
    assert repository.patch_stats(patch) == repository.PatchStats(files=4, added=2, removed=2)
    staged = sandbox.run("git diff --cached --name-only", cwd=sandbox.workdir, timeout=30).output.split()
    assert staged == ["app.py"]


def test_a_same_size_edit_in_the_second_of_the_checkout_is_in_the_patch(backend: SandboxBackend, repo: Path) -> None:
    """Git trusts an unchanged size and mtime unless the index is as new as the file ("racily clean"):
    the patch's private index keeps the checkout's timestamp, so a quick agent's edit is not missed."""
    for _ in range(10):  # until the edit lands in the same second as the checkout's index
        box = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=600))
        try:
            base = prepare(box, repo)
            edit = "printf \"print('v3')\\n\" > app.py && stat -c %Y app.py .git/index"
            stamps = box.run(edit, cwd=box.workdir, timeout=30).output.split()
            if len(set(stamps)) != 1:
                continue
            time.sleep(1.1)  # the patch's index is written a second later
            patch = repository.diff(box, base).decode()
            assert "+print('v3')" in patch
            assert "-print('v2')" in patch
            return
        finally:
            backend.kill(box.id)
    pytest.fail("the edit never landed in the second of the checkout")


def test_the_reproduction_script_is_left_out_of_the_patch_and_read_apart(sandbox: Sandbox, repo: Path) -> None:
    base = prepare(sandbox, repo)
    assert repository.diff_without(sandbox, base, "checks/reproduce_issue.py")[1] is False  # nothing written there
    script = "mkdir -p checks && printf 'import sys\\nsys.exit(1)\\n' > checks/reproduce_issue.py"
    sandbox.run(f"{script} && printf 'print(3)\\n' > app.py", cwd=sandbox.workdir, timeout=30)
    patch, wrote = repository.diff_without(sandbox, base, "checks/reproduce_issue.py")
    assert wrote
    assert "app.py" in patch.decode()
    assert "reproduce_issue" not in patch.decode()
    assert repository.read_script(sandbox, "checks/reproduce_issue.py") == b"import sys\nsys.exit(1)\n"
    assert "reproduce_issue" in repository.diff(sandbox, base).decode()  # the partial diffs keep it (a resume needs it)
    # A tracked file as the script's path: the agent's change stays out of the patch, as on the base commit.
    patch, wrote = repository.diff_without(sandbox, base, "app.py")
    assert wrote
    assert "app.py" not in patch.decode()
    sandbox.run("head -c 70000 /dev/zero > big.py", cwd=sandbox.workdir, timeout=30)
    assert repository.read_script(sandbox, "big.py") is None  # over the size of a script


@pytest.mark.parametrize("kind", ["local-bwrap", "local-plain", "docker"])
def test_a_reproduction_script_linked_out_of_the_sandbox_is_not_read(kind: str, repo: Path, tmp_path: Path) -> None:
    """The agent controls the script's path: a link to a file of the machine running Solver yields no
    script (and no error), never that file's content. (Not on e2b: the loopback fake runs its commands
    on this machine, where a real e2b sandbox is a machine of its own.)"""
    secret = tmp_path / "host-only.txt"
    secret.write_text("host secret 7f3a\n")
    with sandbox_backend(kind, tmp_path) as (backend, _service):
        sandbox = backend.create(SandboxSpec(metadata={"app": "solver"}, lifetime_s=600))
        try:
            _linked_script_is_not_read(sandbox, repo, secret)
        finally:
            backend.kill(sandbox.id)


def _linked_script_is_not_read(sandbox: Sandbox, repo: Path, secret: Path) -> None:
    base = prepare(sandbox, repo)
    sandbox.run(f"ln -s {secret} reproduce_issue.py && printf 'print(3)\\n' > app.py", cwd=sandbox.workdir, timeout=30)
    patch, _wrote = repository.diff_without(sandbox, base, "reproduce_issue.py")
    assert "app.py" in patch.decode()
    assert b"host secret" not in (repository.read_script(sandbox, "reproduce_issue.py") or b"")


@pytest.mark.parametrize("mode", ["fresh_sandbox", "same_sandbox"])
def test_the_patch_applies_to_a_fresh_checkout_and_verify_runs_tests_there(
    backend: SandboxBackend, sandbox: Sandbox, repo: Path, mode: str
) -> None:
    base = prepare(sandbox, repo)
    sandbox.run("printf 'print(3)\\n' > app.py && printf '\\x00\\x02' > logo.bin", cwd=sandbox.workdir, timeout=30)
    patch = repository.diff(sandbox, base)
    # Something outside the patch must not count: the fresh checkout does not have it.
    sandbox.run("echo leftover > untracked-helper.txt && git rm -q --cached old.txt", cwd=sandbox.workdir, timeout=30)

    def verify(command: str, timeout_s: int = 60) -> repository.Verification:
        job = repository.VerifyJob(
            base=base, patch=patch, test_command=command, setup_command=None, timeout_s=timeout_s
        )
        if mode == "same_sandbox":
            return repository.verify_same(sandbox, job)
        fresh = backend.create(SandboxSpec(metadata={"app": "solver", "purpose": "verify"}, lifetime_s=600))
        try:
            return repository.verify_fresh(fresh, job, repo=str(repo))
        finally:
            backend.kill(fresh.id)

    passed = verify("python3 app.py | grep -q 3 && test ! -e untracked-helper.txt && od -An -tx1 logo.bin")
    assert passed.passed
    assert passed.exit_code == 0
    assert "00 02" in passed.output
    # The test command names the two files the patch changes: a patch that edits them is flagged.
    assert passed.test_changes == ["app.py (named by the test command)", "logo.bin (named by the test command)"]
    failing = verify("exit 3")
    assert (failing.passed, failing.exit_code) == (False, 3)
    slow = verify("sleep 30", timeout_s=1)
    assert slow.timed_out
    assert not slow.passed
    # The same-sandbox checkout and its HOME are gone afterwards; the agent's checkout is untouched.
    left = sandbox.run("ls -a $HOME; git worktree list", cwd=sandbox.workdir, timeout=30).output
    assert ".solver-verify-" not in left
    assert "print(3)" in sandbox.read_file(f"{sandbox.workdir}/app.py").decode()


def test_a_patch_over_the_limit_is_measured_in_the_sandbox_and_never_read(sandbox: Sandbox, repo: Path) -> None:
    base = prepare(sandbox, repo)
    # A change far larger than the limit, in a new file and in a tracked one.
    sandbox.run("head -c 3000000 /dev/urandom > big.bin", cwd=sandbox.workdir, timeout=60)
    with pytest.raises(PatchTooLarge, match=r"big\.bin"):
        repository.diff(sandbox, base, max_bytes=100_000)
    sandbox.run("rm big.bin && head -c 3000000 /dev/urandom | base64 >> app.py", cwd=sandbox.workdir, timeout=60)
    with pytest.raises(PatchTooLarge, match=r"app\.py"):
        repository.diff(sandbox, base, max_bytes=100_000)
    # Many small changes that add up: the rendered patch is cut at the limit in the sandbox.
    sandbox.run(
        "git checkout -q app.py && for i in $(seq 40); do head -c 4000 /dev/urandom | base64 > f$i.txt; done",
        cwd=sandbox.workdir,
        timeout=60,
    )
    with pytest.raises(PatchTooLarge, match="bytes or more"):
        repository.diff(sandbox, base, max_bytes=100_000)
    assert len(repository.diff(sandbox, base, max_bytes=1_000_000)) > 100_000
    digest, data = repository.diff_if_changed(sandbox, base, None, max_bytes=1_000_000)
    assert data is not None
    assert repository.diff_if_changed(sandbox, base, digest, max_bytes=1_000_000) == (digest, None)
    with pytest.raises(PatchTooLarge):
        repository.diff_if_changed(sandbox, base, digest, max_bytes=100_000)


def test_a_private_clone_leaves_its_token_nowhere(sandbox: Sandbox, repo: Path, tmp_path: Path) -> None:
    with GitHTTPServer(tmp_path / "git", token=TOKEN, host=host_address_for(sandbox)).start() as server:
        url = server.add_repo("org/private", repo)
        with pytest.raises(RepositoryError, match="could not clone"):
            repository.prepare(sandbox, repo=url, ref="main", setup_command=None, issue_text="#t\n")
        base = repository.prepare(sandbox, repo=url, ref="main", setup_command=None, issue_text="# t\n", token=TOKEN)
        assert base.base_commit == git(repo, "rev-parse", "main")
        assert any(TOKEN in base64.b64decode(h.split()[-1]).decode() for h in server.auth_headers_seen if h)
    encoded = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    files_with_token = sandbox.run(f"grep -rl -e '{TOKEN}' -e '{encoded}' . || true", timeout=60).output
    assert files_with_token.strip() == ""
    environment = sandbox.run("env", timeout=30).output
    assert TOKEN not in environment
    assert encoded not in environment
    config = sandbox.run("cat .git/config", cwd=sandbox.workdir, timeout=30).output
    assert "extraHeader" not in config
    assert url in config  # the remote is recorded without credentials


def test_setup_detects_node_projects_and_warns_about_missing_tools(sandbox: Sandbox, tmp_path: Path) -> None:
    project = make_repo(
        tmp_path / "node", {"package.json": '{"name": "x", "version": "1.0.0"}', "go.mod": "module x\n"}
    )
    prepared = repository.prepare(sandbox, repo=str(project), ref=None, setup_command=None, issue_text="# t\n")
    assert repository.diff(sandbox, prepared.base_commit) == b""  # a generated package-lock.json stays out
    if shutil.which("go") is None:
        assert any("go" in warning for warning in prepared.warnings)


def test_setup_detects_python_projects(sandbox: Sandbox, tmp_path: Path) -> None:
    project = make_repo(tmp_path / "py", {"requirements.txt": "", "main.py": "print(1)\n"})
    prepared = repository.prepare(sandbox, repo=str(project), ref=None, setup_command=None, issue_text="# t\n")
    assert (
        sandbox.run("test -x .venv/bin/python && echo venv", cwd=sandbox.workdir, timeout=30).output.strip() == "venv"
    )
    assert repository.diff(sandbox, prepared.base_commit) == b""  # the virtualenv never enters a patch


def test_the_consensus_group_comes_from_the_files_the_patch_leaves(sandbox: Sandbox, tmp_path: Path) -> None:
    """The same change written differently (a comment, spacing, quotes) is one group; another change
    is another; a deleted file counts as deleted."""
    from solver_core.workflow.steps import consensus_group

    origin = make_repo(tmp_path / "calc", {"calc.py": "def mean(v):\n    return sum(v) // len(v)\n", "old.txt": "x\n"})
    base = prepare(sandbox, origin)

    def group_of(script: str) -> str:
        sandbox.run(f"git checkout -q -- . && {script}", cwd=sandbox.workdir, timeout=30)
        return consensus_group(sandbox, repository.diff(sandbox, base))

    plain = group_of("sed -i 's|//|/|' calc.py")
    commented = group_of("sed -i 's|sum(v) // len(v)|sum(v)/len(v)  # true division|' calc.py")
    other = group_of("sed -i 's|//|/ 1.0 /|' calc.py")
    with_deletion = group_of("sed -i 's|//|/|' calc.py && rm old.txt")
    assert plain == commented
    assert len({plain, other, with_deletion}) == 3
