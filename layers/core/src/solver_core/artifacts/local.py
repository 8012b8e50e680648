"""Artifacts as files under a directory: the embedded default."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from solver_core.artifacts.keys import validate_key
from solver_core.errors import ArtifactError, ArtifactNotFound


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        return self.root / validate_key(key, prefix=prefix)

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write to a sibling then rename, so a reader never sees half an object.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise ArtifactError(f"could not write artifact {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {key} not found") from exc
        except OSError as exc:
            raise ArtifactError(f"could not read artifact {key}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix, prefix=True) if prefix else self.root
        directory = base if prefix.endswith("/") or not prefix else base.parent
        if not directory.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in directory.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith(".tmp-"))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        directory = self._path(prefix, prefix=True)
        if prefix.endswith("/") and directory.is_dir():
            shutil.rmtree(directory, ignore_errors=True)
        return len(keys)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {key} not found") from exc

    def download_url(self, key: str) -> str | None:
        return None  # a file:// URL is no place to redirect an HTTP client to

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".health"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ArtifactError(f"artifact directory {self.root} is not writable: {exc.strerror}") from exc
