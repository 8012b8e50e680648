"""Both artifact stores behave the same; S3 encrypts objects and hands out expiring links (moto)."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from solver_core.artifacts import keys
from solver_core.artifacts.local import LocalArtifactStore
from solver_core.artifacts.s3 import S3ArtifactStore, make_s3_client
from solver_core.errors import ArtifactError, ArtifactNotFound
from solver_core.ports import ArtifactStore

pytestmark = pytest.mark.integration

BUCKET = "solver-artifacts-test"


@pytest.fixture
def s3_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = make_s3_client("us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    client = request.getfixturevalue("s3_client")
    return S3ArtifactStore(client, BUCKET, prefix="stage/", presign_expiry_s=900)


SOLVE, RUN = uuid.uuid4(), uuid.uuid4()


def test_put_get_exists_and_list_under_a_prefix(store: ArtifactStore) -> None:
    store.put(keys.patch(SOLVE, RUN), b"diff --git a b\n", content_type="text/x-diff")
    for step in (2, 1, 10):
        store.put(keys.checkpoint_part(SOLVE, RUN, step), f"part {step}".encode())
    assert store.get(keys.patch(SOLVE, RUN)) == b"diff --git a b\n"
    assert store.exists(keys.patch(SOLVE, RUN))
    assert not store.exists(keys.log(SOLVE, RUN))
    parts = store.list(keys.checkpoint_prefix(SOLVE, RUN))
    assert parts == [keys.checkpoint_part(SOLVE, RUN, s) for s in (1, 2, 10)]  # key order is step order
    assert [store.get(p) for p in parts] == [b"part 1", b"part 2", b"part 10"]
    assert len(store.list(keys.run_prefix(SOLVE, RUN))) == 4


def test_overwrite_replaces_the_whole_object(store: ArtifactStore) -> None:
    store.put(keys.log(SOLVE, RUN), b"first version, longer")
    store.put(keys.log(SOLVE, RUN), b"second")
    assert store.get(keys.log(SOLVE, RUN)) == b"second"


def test_missing_objects_are_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get(keys.trajectory(SOLVE, RUN))
    assert store.list(keys.run_prefix(uuid.uuid4(), RUN)) == []


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs/key", "a/../../b", "a//b", "", "a\\b", "solves/x/\x00"])
def test_keys_cannot_escape_the_store(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(ArtifactError, match="invalid artifact key"):
        store.put(bad, b"x")


def test_delete_prefix_removes_a_runs_artifacts_only(store: ArtifactStore) -> None:
    other = uuid.uuid4()
    store.put(keys.patch(SOLVE, RUN), b"a")
    store.put(keys.log(SOLVE, RUN), b"b")
    store.put(keys.patch(SOLVE, other), b"c")
    assert store.delete_prefix(keys.run_prefix(SOLVE, RUN)) == 2
    assert store.list(keys.solve_prefix(SOLVE)) == [keys.patch(SOLVE, other)]


def test_health_check_passes_on_a_working_store(store: ArtifactStore) -> None:
    store.check()


def test_local_urls_are_file_urls_to_the_bytes(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    store.put(keys.patch(SOLVE, RUN), b"patch")
    url = store.url(keys.patch(SOLVE, RUN))
    assert url.startswith("file://")
    assert Path(urllib.parse.urlparse(url).path).read_bytes() == b"patch"


def test_s3_objects_are_encrypted_at_rest(s3_client: Any) -> None:
    S3ArtifactStore(s3_client, BUCKET).put("solves/a/patch.diff", b"x")
    assert s3_client.head_object(Bucket=BUCKET, Key="solves/a/patch.diff")["ServerSideEncryption"] == "AES256"
    s3_client_kms = S3ArtifactStore(s3_client, BUCKET, kms_key_id="alias/solver")
    s3_client_kms.put("solves/a/log.txt", b"y")
    head = s3_client.head_object(Bucket=BUCKET, Key="solves/a/log.txt")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_s3_links_are_presigned_with_the_configured_expiry(s3_client: Any) -> None:
    store = S3ArtifactStore(s3_client, BUCKET, prefix="stage", presign_expiry_s=900)
    store.put("solves/a/patch.diff", b"x")
    url = urllib.parse.urlparse(store.url("solves/a/patch.diff"))
    query = urllib.parse.parse_qs(url.query)
    assert url.path.endswith("/stage/solves/a/patch.diff")
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Signature"]


def test_s3_failures_are_artifact_errors(s3_client: Any) -> None:
    store = S3ArtifactStore(s3_client, "no-such-bucket")
    with pytest.raises(ArtifactError):
        store.put("solves/a/patch.diff", b"x")
    with pytest.raises(ArtifactError, match="not reachable"):
        store.check()
