"""Template builds of the fake control plane: what e2b's v2 Template builder calls.

``POST /v3/templates`` asks for a build (the name is checked as e2b's API checks it),
``POST /v2/templates/{id}/builds/{build}`` starts it with the serialized steps (base image
included), ``GET /templates/{id}/builds/{build}/status`` reports it (``building`` once, with a log
line, then ``ready`` or ``error`` with a reason), ``GET /templates/aliases/{name}`` says whether a
template of that name exists. Nothing is built: a build is recorded, and fails only when a test
said so (``fail_build``).
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from .httpio import Json, Request, Responder

# e2b's API: a name is lowercased and trimmed, then must be `[a-z0-9-_]+`; a tag `[a-z0-9-_.]+`.
_NAME = re.compile(r"^[a-z0-9_-]+$")
_TAG = re.compile(r"^[a-z0-9_.-]+$")
_BUILD_START = re.compile(r"^/v2/templates/(?P<template>[^/]+)/builds/(?P<build>[^/]+)$")
_BUILD_STATUS = re.compile(r"^/templates/(?P<template>[^/]+)/builds/(?P<build>[^/]+)/status$")
_ALIAS = re.compile(r"^/templates/aliases/(?P<alias>[^/]+)$")
DEFAULT_TAG = "default"


def is_template_path(path: str) -> bool:
    return path.startswith(("/templates", "/v2/templates", "/v3/templates"))


def parse_name(reference: str) -> tuple[str, str] | None:
    """(name, tag) of `name[:tag]` as e2b's API reads it, or None when it is not a template name."""
    name, _, tag = reference.strip().partition(":")
    name, tag = name.strip().lower(), (tag.strip().lower() or DEFAULT_TAG)
    if not _NAME.match(name) or not _TAG.match(tag):
        return None
    return name, tag


@dataclass
class Build:
    template_id: str
    build_id: str
    name: str
    tag: str
    cpu_count: int | None
    memory_mb: int | None
    status: str = "waiting"
    from_image: str | None = None
    steps: list[Json] = field(default_factory=list)
    start_body: Json | None = None
    failure: str | None = None
    polls: int = 0
    log_entries: list[Json] = field(default_factory=list)


class TemplateBuilds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builds: dict[str, Build] = {}
        self._template_ids: dict[str, str] = {}
        self._ready: set[tuple[str, str]] = set()
        self._failures: dict[str, str] = {}
        self.max_running: int | None = None  # builds at once, beyond which e2b answers 429
        self.refused = 0

    # --- what tests set up and inspect -------------------------------------------------------

    def fail_build(self, name: str, reason: str) -> None:
        """Builds of template `name` end in `error` with `reason`."""
        with self._lock:
            self._failures[name] = reason

    def add_ready(self, reference: str) -> None:
        parsed = parse_name(reference)
        assert parsed is not None, reference
        with self._lock:
            self._template_ids.setdefault(parsed[0], uuid.uuid4().hex[:20])
            self._ready.add(parsed)

    def builds(self) -> list[Build]:
        """Every build that was started (its steps received), in order."""
        with self._lock:
            return [b for b in self._builds.values() if b.start_body is not None]

    def is_ready(self, reference: str) -> bool:
        parsed = parse_name(reference)
        with self._lock:
            return parsed is not None and parsed in self._ready

    # --- routes ------------------------------------------------------------------------------

    def handle(self, request: Request, out: Responder) -> None:
        if request.method == "POST" and request.path == "/v3/templates":
            self._request_build(request, out)
        elif request.method == "POST" and (match := _BUILD_START.match(request.path)):
            self._start(match["template"], match["build"], request, out)
        elif request.method == "GET" and (match := _BUILD_STATUS.match(request.path)):
            self._status(match["template"], match["build"], request, out)
        elif request.method == "GET" and (match := _ALIAS.match(request.path)):
            self._alias(unquote(match["alias"]), out)
        else:
            out.send_json(404, _error(404, f"No route for {request.method} {request.path}"))

    def _request_build(self, request: Request, out: Responder) -> None:
        body = request.json()
        parsed = parse_name(str(body.get("name") or ""))
        if parsed is None:
            out.send_json(400, _error(400, f"invalid template name: {body.get('name')}"))
            return
        name, tag = parsed
        with self._lock:
            running = sum(1 for b in self._builds.values() if b.status in ("waiting", "building"))
            if self.max_running is not None and running >= self.max_running:
                self.refused += 1
                out.send_json(429, _error(429, "too many concurrent builds"), {"Retry-After": "0"})
                return
            template_id = self._template_ids.setdefault(name, uuid.uuid4().hex[:20])
            build = Build(template_id, str(uuid.uuid4()), name, tag, body.get("cpuCount"), body.get("memoryMB"))
            self._builds[build.build_id] = build
        answer = {"templateID": template_id, "buildID": build.build_id, "public": False, "names": [name]}
        out.send_json(202, answer | {"tags": [tag], "aliases": [name]})

    def _start(self, template_id: str, build_id: str, request: Request, out: Responder) -> None:
        body = request.json()
        with self._lock:
            build = self._builds.get(build_id)
            if build is None or build.template_id != template_id or build.start_body is not None:
                out.send_json(404, _error(404, f"build {build_id} not found or already started"))
                return
            build.start_body = body
            build.from_image = body.get("fromImage")
            build.steps = list(body.get("steps") or [])
            build.status = "building"
            build.failure = self._failures.get(build.name)
        out.send_empty(202)

    def _status(self, template_id: str, build_id: str, request: Request, out: Responder) -> None:
        offset = int(request.param("logsOffset") or 0)
        with self._lock:
            build = self._builds.get(build_id)
            if build is None or build.template_id != template_id:
                out.send_json(404, _error(404, f"build {build_id} not found"))
                return
            self._advance(build)
            answer: Json = {
                "templateID": build.template_id,
                "buildID": build.build_id,
                "status": build.status,
                "logs": [e["message"] for e in build.log_entries[offset:]],
                "logEntries": build.log_entries[offset:],
            }
            if build.status == "error":
                answer["reason"] = {"message": build.failure, "step": "1"}
        out.send_json(200, answer)

    def _advance(self, build: Build) -> None:
        """Building at the first poll after the start, done at the next."""
        if build.status != "building":
            return
        build.polls += 1
        if build.polls == 1:
            build.log_entries.append(_log("info", f"FROM {build.from_image}"))
            return
        if build.failure is not None:
            build.status = "error"
            build.log_entries.append(_log("error", build.failure))
            return
        build.status = "ready"
        build.log_entries.append(_log("info", "Build finished"))
        self._ready.add((build.name, build.tag))

    def _alias(self, alias: str, out: Responder) -> None:
        parsed = parse_name(alias)
        with self._lock:
            template_id = self._template_ids.get(parsed[0]) if parsed else None
            exists = parsed is not None and any(name == parsed[0] for name, _ in self._ready)
        if template_id is None or not exists:
            out.send_json(404, _error(404, f"template '{alias}' not found"))
            return
        out.send_json(200, {"templateID": template_id, "public": False})


def _log(level: str, message: str) -> Json:
    return {"timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "level": level, "message": message}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}
