"""Publishing credentials: a GitHub App's installation token (a signed JWT buys a token scoped to the
one repository, cached until it nears expiry), a token from settings, and refusing what cannot work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from solver_core.errors import ConfigurationError, GitHubPermissionDenied, PublishNotConfigured
from solver_core.github_urls import RepoRef
from solver_core.publish.auth import GitHubAppCredentials, StaticToken
from solver_core.publish.client import RetryPolicy
from solver_core.publish.github import GitHubPublisher, build_publisher, credentials_from
from solver_core.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.support.publishing import REPO, Reports, every_kind_of_change, seeded

pytestmark = pytest.mark.integration


def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().serve() as served:
        yield served


def test_a_github_app_publishes_with_an_installation_token_scoped_to_the_repository(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    champion = every_kind_of_change(tmp_path / "calc")
    seeded(fake, champion)
    fake.add_repo("org", "elsewhere")
    private, public = rsa_pair()
    fake.add_app(4242, public, installation_id=77, repos={REPO, "org/elsewhere"})
    # An environment variable often carries the PEM with literal "\n"s.
    credentials = GitHubAppCredentials(4242, private.replace("\n", "\\n"), fake.url)
    publisher = GitHubPublisher(fake.url, credentials, sleep=lambda _s: None)

    report = Reports().report(champion)
    first = publisher.comment(report, None, None)
    publisher.comment(report, first, None)
    assert fake.calls("GET", r"/repos/org/calc/installation$") == 1
    assert fake.calls("POST", r"/app/installations/77/access_tokens$") == 1  # cached for the second
    (token,) = [t for t in fake.tokens if t.startswith("ghs_")]
    assert fake.tokens[token].repos == frozenset({REPO})  # never org/elsewhere


def test_a_wrong_app_key_is_refused(fake: FakeGitHub, tmp_path: Path) -> None:
    champion = every_kind_of_change(tmp_path / "calc")
    seeded(fake, champion)
    fake.add_app(4242, rsa_pair()[1], installation_id=77, repos={REPO})
    publisher = GitHubPublisher(fake.url, GitHubAppCredentials(4242, rsa_pair()[0], fake.url))
    with pytest.raises(GitHubPermissionDenied, match="401"):
        publisher.comment(Reports().report(champion), None, None)


def test_credentials_come_from_settings(tmp_path: Path) -> None:
    policy = RetryPolicy()
    repo = RepoRef("org", "calc")
    token = credentials_from(Settings(home=tmp_path, github_token="ghp_x"), policy)
    assert isinstance(token, StaticToken)
    assert token.token_for(repo) == "ghp_x"
    by_host = Settings(home=tmp_path, git_tokens={"github.com": "ghp_y"})
    assert credentials_from(by_host, policy).token_for(repo) == "ghp_y"
    app = Settings(home=tmp_path, github_app_id=1, github_app_private_key="pem", github_token="ghp_x")
    assert isinstance(credentials_from(app, policy), GitHubAppCredentials)  # the App wins
    with pytest.raises(PublishNotConfigured, match="SOLVER_GITHUB_TOKEN"):
        credentials_from(Settings(home=tmp_path), policy)
    with pytest.raises(ConfigurationError, match="https"):
        build_publisher(Settings(home=tmp_path, github_token="t", github_api_url="http://api.example"))
    local = Settings(
        home=tmp_path, github_token="t", github_api_url="http://127.0.0.1:1", allowed_http_hosts="127.0.0.1"
    )
    assert isinstance(build_publisher(local), GitHubPublisher)
