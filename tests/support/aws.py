"""Fake AWS credentials for tests against moto: botocore needs some, and none may be real."""

from __future__ import annotations

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's environment gets fake credentials and the region moto's resources live in."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
