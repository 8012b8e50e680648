"""envd's ``filesystem.Filesystem`` Connect service and its plain-HTTP ``/files`` endpoint."""

from __future__ import annotations

import grp
import gzip
import pwd
import re
import shutil
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from e2b.envd.filesystem import filesystem_pb
from protobuf.wkt import Timestamp

from .connect import JsonMessage, RpcError, decode_unary
from .httpio import Request, Responder
from .paths import is_inside, to_host, to_virtual
from .state import Sandbox

_FileType = filesystem_pb.FileType


class FilesystemService:
    def unary(self, method: str) -> Callable[[Sandbox, Request], JsonMessage] | None:
        routes: dict[str, Callable[[Sandbox, Request], JsonMessage]] = {
            "Stat": self._stat,
            "ListDir": self._list_dir,
            "MakeDir": self._make_dir,
            "Remove": self._remove,
            "Move": self._move,
        }
        return routes.get(method)

    def _stat(self, sandbox: Sandbox, request: Request) -> filesystem_pb.StatResponse:
        path = _existing(sandbox, decode_unary(request, filesystem_pb.StatRequest).path)
        return filesystem_pb.StatResponse(entry=entry_info(sandbox.home, path))

    def _list_dir(self, sandbox: Sandbox, request: Request) -> filesystem_pb.ListDirResponse:
        message = decode_unary(request, filesystem_pb.ListDirRequest)
        root = _existing(sandbox, message.path)
        if not root.is_dir():
            raise RpcError("invalid_argument", f"path '{message.path}' is not a directory")
        entries = [entry_info(sandbox.home, p) for p in _walk(root, max(1, message.depth))]
        return filesystem_pb.ListDirResponse(entries=entries)

    def _make_dir(self, sandbox: Sandbox, request: Request) -> filesystem_pb.MakeDirResponse:
        path = _writable(sandbox, decode_unary(request, filesystem_pb.MakeDirRequest).path)
        if path.exists():
            raise RpcError("already_exists", f"directory '{to_virtual(sandbox.home, path)}' already exists")
        path.mkdir(parents=True)
        return filesystem_pb.MakeDirResponse(entry=entry_info(sandbox.home, path))

    def _remove(self, sandbox: Sandbox, request: Request) -> filesystem_pb.RemoveResponse:
        raw = decode_unary(request, filesystem_pb.RemoveRequest).path
        path = _writable(sandbox, raw)
        if not path.exists() and not path.is_symlink():
            raise RpcError("not_found", f"path '{raw}' does not exist")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        return filesystem_pb.RemoveResponse()

    def _move(self, sandbox: Sandbox, request: Request) -> filesystem_pb.MoveResponse:
        message = decode_unary(request, filesystem_pb.MoveRequest)
        source = _writable(sandbox, message.source)
        if not source.exists():
            raise RpcError("not_found", f"path '{message.source}' does not exist")
        destination = _writable(sandbox, message.destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.rename(destination)
        return filesystem_pb.MoveResponse(entry=entry_info(sandbox.home, destination))


def entry_info(home: Path, path: Path) -> filesystem_pb.EntryInfo:
    link = path.lstat()
    is_symlink = stat.S_ISLNK(link.st_mode)
    target = path.stat() if is_symlink and path.exists() else link
    return filesystem_pb.EntryInfo(
        name=path.name,
        type=_FileType.DIRECTORY if stat.S_ISDIR(target.st_mode) else _FileType.FILE,
        path=to_virtual(home, path),
        size=target.st_size,
        mode=stat.S_IMODE(target.st_mode),
        permissions=stat.filemode(target.st_mode),
        owner=_user_name(target.st_uid),
        group=_group_name(target.st_gid),
        modified_time=Timestamp.from_datetime(datetime.fromtimestamp(target.st_mtime, UTC)),
        symlink_target=str(path.readlink()) if is_symlink else None,
        is_symlink=is_symlink,
    )


def _walk(root: Path, depth: int) -> list[Path]:
    found: list[Path] = []
    for child in sorted(root.iterdir()):
        found.append(child)
        if depth > 1 and child.is_dir() and not child.is_symlink():
            found.extend(_walk(child, depth - 1))
    return found


def _existing(sandbox: Sandbox, raw: str) -> Path:
    path = to_host(sandbox.home, raw)
    if not path.exists() and not path.is_symlink():
        raise RpcError("not_found", f"path '{raw}' does not exist")
    return path


def _writable(sandbox: Sandbox, raw: str) -> Path:
    path = to_host(sandbox.home, raw)
    if not is_inside(sandbox.home, path):
        raise RpcError("permission_denied", f"the fake sandbox only writes under /home/user, not '{raw}'")
    return path


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# --- the plain-HTTP /files endpoint used by files.read and files.write ---------------------------


def serve_files(sandbox: Sandbox, request: Request, out: Responder) -> None:
    if request.method == "GET":
        _download(sandbox, request, out)
    elif request.method == "POST":
        _upload(sandbox, request, out)
    else:
        out.send_json(405, {"code": 405, "message": "method not allowed"})


def _download(sandbox: Sandbox, request: Request, out: Responder) -> None:
    raw = request.param("path") or ""
    path = to_host(sandbox.home, raw)
    if not path.exists():
        out.send_json(404, {"code": 404, "message": f"path '{raw}' does not exist"})
    elif path.is_dir():
        out.send_json(400, {"code": 400, "message": f"path '{raw}' is a directory"})
    else:
        out.send(200, path.read_bytes(), "application/octet-stream")


def _upload(sandbox: Sandbox, request: Request, out: Responder) -> None:
    content_type = request.header("Content-Type") or ""
    body = request.body
    if request.header("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    if content_type.startswith("multipart/form-data"):
        files = _multipart_files(content_type, body, request.param("path"))
    else:
        files = [(request.param("path") or "", body)]
    written: list[dict[str, str]] = []
    for raw, data in files:
        path = to_host(sandbox.home, raw)
        if not raw or not is_inside(sandbox.home, path):
            out.send_json(400, {"code": 400, "message": f"cannot write '{raw}' in the fake sandbox"})
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append({"name": path.name, "type": "file", "path": to_virtual(sandbox.home, path)})
    out.send_json(200, written)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_FILENAME = re.compile(rb'filename="((?:[^"\\]|\\.)*)"')


def _multipart_files(content_type: str, body: bytes, path_param: str | None) -> list[tuple[str, bytes]]:
    """The ``file`` parts of a form; the SDK puts each file's sandbox path in its filename."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        return []
    files: list[tuple[str, bytes]] = []
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = _FILENAME.search(head)
        filename = name.group(1).decode().replace("%22", '"') if name else ""
        files.append((filename, data.removesuffix(b"\r\n")))
    if path_param and len(files) == 1:
        files = [(path_param, files[0][1])]
    return files
