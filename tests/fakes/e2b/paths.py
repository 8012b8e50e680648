"""Virtual sandbox paths: ``/home/user`` inside a fake sandbox is its directory on the host."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

VIRTUAL_HOME = PurePosixPath("/home/user")


def to_host(home: Path, path: str | None) -> Path:
    """Map a path as the SDK sends it (absolute, ``~``-relative or relative) to the host.

    Relative paths resolve against the user's home, as envd does. Absolute paths outside
    ``/home/user`` are passed through unchanged: commands run on the host, so they see it.
    """
    if not path:
        return home
    if path == "~" or path.startswith("~/"):
        path = str(VIRTUAL_HOME) + path[1:]
    virtual = PurePosixPath(path)
    if not virtual.is_absolute():
        return home / virtual
    if virtual == VIRTUAL_HOME or VIRTUAL_HOME in virtual.parents:
        return home / virtual.relative_to(VIRTUAL_HOME)
    return Path(virtual)


def to_virtual(home: Path, host_path: Path) -> str:
    """The path the sandbox would report for ``host_path`` (inverse of :func:`to_host`)."""
    try:
        relative = host_path.relative_to(home)
    except ValueError:
        return str(host_path)
    return str(VIRTUAL_HOME / relative) if relative.parts else str(VIRTUAL_HOME)


def is_inside(home: Path, host_path: Path) -> bool:
    """Whether a (resolved) path stays inside the sandbox directory.

    The filesystem API only mutates files inside it, so a test cannot damage the host.
    """
    resolved = host_path.resolve()
    root = home.resolve()
    return resolved == root or root in resolved.parents
