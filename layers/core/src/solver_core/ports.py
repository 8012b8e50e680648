"""The ports: what services need from the outside world, as Protocols. Adapters are named by
technology (`LocalArtifactStore`, `S3ArtifactStore`, …); test fakes live in tests/fakes."""

from __future__ import annotations

from typing import Protocol


class ArtifactStore(Protocol):
    """Write-once blobs addressed by keys from `solver_core.artifacts.keys`."""

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ArtifactNotFound when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete_prefix(self, prefix: str) -> int: ...

    def url(self, key: str) -> str:
        """A link a user can open: a presigned GET URL on S3, a file:// URL locally."""
        ...

    def check(self) -> None:
        """Raise ArtifactError when the store cannot be reached (health checks)."""
        ...
