"""The console's Jinja environment and the headers every console response carries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from solver_core import __version__
from solver_core.status import state_label

# No inline script or style may run: scripts and stylesheets come from /ui/static only, so text
# from an agent or a repository that slipped into markup could still not execute.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HTML = "text/html; charset=utf-8"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("solver_core.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = age
    env.filters["when"] = when
    env.filters["usd"] = lambda value: f"${value:.4f}"
    env.filters["seconds"] = seconds
    env.filters["href"] = href
    env.filters["model_label"] = model_label
    env.filters["state_label"] = state_label
    env.globals["asset_version"] = asset_version()
    env.globals["version"] = __version__
    return env


def page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def static_file(name: str) -> bytes | None:
    """A file of the package's static folder by its plain name, else None (no paths, no dot files)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return None
    entry = resources.files("solver_core.console").joinpath("static", name)
    return entry.read_bytes() if entry.is_file() else None


@cache
def asset_version() -> str:
    """Changes with the static files, so browsers may cache them for long."""
    digest = hashlib.sha256(__version__.encode())
    folder = resources.files("solver_core.console").joinpath("static")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.name.encode() + entry.read_bytes())
    return digest.hexdigest()[:12]


def age(moment: datetime, now: datetime | None = None) -> str:
    delta = int(((now or datetime.now(UTC)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= size:
            return f"{delta // size} {unit}"
    return f"{max(delta, 0)} s"


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def href(url: str | None) -> str:
    """Only web links become links: a `javascript:` URL from a record would run when clicked."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return "#"


def model_label(model: str) -> str:
    """A replay model by its file's name ('replay:fix.yaml'); the full name stays in a tooltip."""
    if model.startswith("replay:"):
        return "replay:" + model.rsplit("/", 1)[-1]
    return model
