"""Artifacts in S3: server-side encrypted objects and presigned GET links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from solver_core.artifacts.keys import validate_key
from solver_core.errors import ArtifactError, ArtifactNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"NoSuchKey", "404", "NotFound"}


def make_s3_client(region: str | None = None, endpoint_url: str | None = None) -> S3Client:
    """An S3 client that presigns with SigV4, which SSE-KMS objects require and all regions accept."""
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


_DELETE_BATCH = 1000


class S3ArtifactStore:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        kms_key_id: str | None = None,
        presign_expiry_s: int = 3600,
    ) -> None:
        self._s3 = client
        self.bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._kms_key_id = kms_key_id
        self._expiry = presign_expiry_s

    def _key(self, key: str, *, prefix: bool = False) -> str:
        return self._prefix + validate_key(key, prefix=prefix)

    def _encryption(self) -> dict[str, Any]:
        if self._kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type, **self._encryption()
            )
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"could not write artifact {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ArtifactNotFound(f"artifact {key} not found") from exc
            raise ArtifactError(f"could not read artifact {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ArtifactError(f"could not read artifact {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise ArtifactError(f"could not stat artifact {key}: {exc}") from exc
        return True

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix, prefix=True) if prefix else self._prefix
        keys: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][len(self._prefix) :] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"could not list artifacts under {prefix}: {exc}") from exc
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": self._prefix + k} for k in keys[start : start + _DELETE_BATCH]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
        return len(keys)

    def url(self, key: str) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=self._expiry
        )

    def size(self, key: str) -> int:
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ArtifactNotFound(f"artifact {key} not found") from exc
            raise ArtifactError(f"could not stat artifact {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ArtifactError(f"could not stat artifact {key}: {exc}") from exc

    def download_url(self, key: str) -> str | None:
        return self.url(key)

    def check(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError(f"artifact bucket {self.bucket} is not reachable: {exc}") from exc
