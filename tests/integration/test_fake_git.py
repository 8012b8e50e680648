"""Clone and fetch with real ``git`` from ``GitHTTPServer``.

The token reaches git only as an ``http.extraHeader`` set through ``GIT_CONFIG_COUNT`` /
``GIT_CONFIG_KEY_0`` / ``GIT_CONFIG_VALUE_0``: unlike a URL with credentials or ``-c`` it is neither
on the command line (visible in ``ps``) nor written to ``.git/config``.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.git_server import GitHTTPServer, isolated_git_env

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-token-for-tests"
AUTHOR = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        env=env or isolated_git_env() | AUTHOR,
        capture_output=True,
        text=True,
        check=check,
        timeout=30,
    )


def config_env(config: dict[str, str]) -> dict[str, str]:
    """Pass git config through the environment, where neither ``ps`` nor ``.git/config`` sees it."""
    env = isolated_git_env() | {"GIT_CONFIG_COUNT": str(len(config))}
    for index, (key, value) in enumerate(config.items()):
        env |= {f"GIT_CONFIG_KEY_{index}": key, f"GIT_CONFIG_VALUE_{index}": value}
    return env


def header_env(header: str) -> dict[str, str]:
    return config_env({"http.extraHeader": header})


def rev(repo: Path, ref: str) -> str:
    return git("-C", str(repo), "rev-parse", ref).stdout.strip()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """main: first -> second; branch feature and annotated tag v1.0 at second; first is no tip."""
    repo = tmp_path / "source"
    git("init", "--quiet", "--initial-branch=main", str(repo))
    for name in ("first", "second"):
        (repo / f"{name}.txt").write_text(f"{name}\n")
        git("-C", str(repo), "add", ".")
        git("-C", str(repo), "commit", "--quiet", "-m", name)
    git("-C", str(repo), "branch", "feature")
    git("-C", str(repo), "tag", "-a", "v1.0", "-m", "release")
    return repo


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv", token=TOKEN) as fake:
        yield fake


def test_unauthenticated_request_is_challenged(server: GitHTTPServer, source: Path, tmp_path: Path) -> None:
    url = server.add_repo("org/project", source)

    result = git("clone", url, str(tmp_path / "clone"), env=isolated_git_env(), check=False)

    assert result.returncode != 0
    assert "terminal prompts disabled" in result.stderr
    assert server.requests == ["/org/project.git/info/refs?service=git-upload-pack"]
    assert server.auth_headers_seen == []
    assert not (tmp_path / "clone").exists()


def test_wrong_token_is_rejected(server: GitHTTPServer, source: Path, tmp_path: Path) -> None:
    url = server.add_repo("project", source)

    result = git(
        "clone", url, str(tmp_path / "clone"), env=header_env("Authorization: Basic d3Jvbmc6d3Jvbmc="), check=False
    )

    assert result.returncode != 0
    assert server.auth_headers_seen == ["Basic d3Jvbmc6d3Jvbmc="]


def test_clone_with_header_from_environment_leaves_no_token(
    server: GitHTTPServer, source: Path, tmp_path: Path
) -> None:
    url = server.add_repo("project", source)
    clone = tmp_path / "clone"

    git("clone", "--quiet", url, str(clone), env=header_env(f"Authorization: {server.auth_header()}"))

    assert rev(clone, "HEAD") == rev(source, "main")
    assert rev(clone, "origin/feature") == rev(source, "feature")
    assert rev(clone, "HEAD~1") == rev(source, "main~1")
    assert rev(clone, "v1.0^{commit}") == rev(source, "main")
    assert set(server.auth_headers_seen) == {server.auth_header()}
    secrets = (TOKEN.encode(), server.auth_header().split()[1].encode())
    leaks = [p for p in clone.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in secrets)]
    assert leaks == []


@pytest.mark.parametrize("protocol", ["2", "0"])
def test_fetch_tag_and_sha(server: GitHTTPServer, source: Path, tmp_path: Path, protocol: str) -> None:
    url = server.add_repo("project", source)
    repo = tmp_path / "fetcher"
    git("init", "--quiet", str(repo))
    env = config_env({"http.extraHeader": f"Authorization: {server.auth_header()}", "protocol.version": protocol})
    first = rev(source, "main~1")

    git("-C", str(repo), "fetch", "--quiet", "--depth=1", url, "refs/tags/v1.0:refs/tags/v1.0", env=env)
    git("-C", str(repo), "fetch", "--quiet", "--depth=1", url, first, env=env)

    assert rev(repo, "v1.0^{commit}") == rev(source, "main")
    assert rev(repo, "FETCH_HEAD") == first


def test_public_server_needs_no_credentials(source: Path, tmp_path: Path) -> None:
    with GitHTTPServer(tmp_path / "srv", token=None) as public:
        url = public.add_repo("project", source)
        clones = [tmp_path / f"clone{i}" for i in range(3)]
        results: list[int] = []

        def clone(target: Path) -> None:
            results.append(git("clone", "--quiet", url, str(target), env=isolated_git_env(), check=False).returncode)

        threads = [threading.Thread(target=clone, args=(target,)) for target in clones]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert results == [0, 0, 0]
    assert public.auth_headers_seen == []
    assert all(rev(target, "HEAD") == rev(source, "main") for target in clones)
