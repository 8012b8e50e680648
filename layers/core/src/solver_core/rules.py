"""Validation rules for what callers send: repository locations, git refs, model names, text.

Each rule raises `PydanticCustomError(rule, message)`, so a rejected request names the field (its
location) and the rule (the error type) it broke.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from solver_core.settings import Settings

REPLAY_PREFIX = "replay:"
MAX_URL_LENGTH = 2048
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
_HEX_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
# Control characters other than tab and newline, plus bidi overrides that disguise text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# Git allows these in a ref, but no plausible branch or tag carries them, and each reads as shell
# code (`$(id)`, backticks, `main;id`) wherever a ref is quoted carelessly. Refs are passed to git as
# data, never through a shell; refusing them keeps it that way for anything downstream.
_REF_SHELL = re.compile(r"[$`;|&<>()'\"!]")
# Unicode that is invisible or reorders text (format characters such as bidi overrides and
# zero-width joiners, separators, private use, unassigned): a ref that does not read as it is.
_REF_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})
_LINE_SEPARATORS = ("\n", "\t", "\u2028", "\u2029")


@dataclass(frozen=True)
class RequestPolicy:
    """What a caller may ask for; the API is strict by default, the local CLI is not."""

    allowed_repo_hosts: frozenset[str] = frozenset({"github.com", "gitlab.com", "bitbucket.org"})
    allowed_http_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_local_repos: bool = False
    allow_replay_models: bool = False
    allow_unregistered_models: bool = False
    max_runs: int = 16
    max_parallel: int = 8  # the deployment's bound on a solve's concurrent runs (SOLVER_MAX_PARALLEL)
    # The sandbox images a caller may name: glob patterns for everyone, and more per owner; any for
    # the trusted owner (SOLVER_ALLOWED_SANDBOX_IMAGES, SOLVER_OWNER_SANDBOX_IMAGES).
    sandbox_images: tuple[str, ...] = ("swebench/sweb.eval.*",)
    owner_sandbox_images: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    trusted_owner: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestPolicy:
        return cls(
            allowed_repo_hosts=frozenset(h.lower() for h in settings.allowed_repo_hosts),
            allowed_http_hosts=frozenset(h.lower() for h in settings.allowed_http_hosts),
            allow_local_repos=settings.allow_local_repos,
            allow_replay_models=settings.allow_replay_models,
            allow_unregistered_models=settings.allow_unregistered_models,
            max_runs=settings.max_runs_per_solve,
            max_parallel=settings.max_parallel,
            sandbox_images=(
                *settings.allowed_sandbox_images,
                *filter(None, [settings.sandbox_template, settings.docker_image]),
            ),
            owner_sandbox_images={o: tuple(p) for o, p in settings.owner_sandbox_images.items()},
            trusted_owner=settings.trusted_owner,
        )

    def image_allowed(self, owner: str, image: str) -> bool:
        """Whether `owner` may run its solve on `image` (a docker image or an e2b template)."""
        if self.trusted_owner is not None and owner == self.trusted_owner:
            return True
        patterns = (*self.sandbox_images, *self.owner_sandbox_images.get(owner, ()))
        return any(fnmatchcase(image, pattern) for pattern in patterns)


STRICT_POLICY = RequestPolicy()


def policy_of(info: ValidationInfo) -> RequestPolicy:
    context = info.context
    if isinstance(context, RequestPolicy):
        return context
    if isinstance(context, dict) and isinstance(policy := context.get("policy"), RequestPolicy):
        return policy
    return STRICT_POLICY


def fail(rule: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(rule, message)


def check_text(value: str, *, single_line: bool) -> str:
    if _CONTROL.search(value):
        raise fail("control_characters", "must not contain control or bidirectional-override characters")
    if single_line and any(separator in value for separator in _LINE_SEPARATORS):
        raise fail("single_line", "must be a single line")
    return value


def check_repo_location(value: str, policy: RequestPolicy) -> str:
    """An https URL on an allowed host, or (where allowed) an absolute local path."""
    if len(value) > MAX_URL_LENGTH:
        raise fail("too_long", f"must be at most {MAX_URL_LENGTH} characters")
    check_text(value, single_line=True)
    if value.startswith(("/", "file:")):
        return _check_local_repo(value, policy)
    return check_remote_url(value, policy, what="repository URL", needs_path=True)


def _check_local_repo(value: str, policy: RequestPolicy) -> str:
    if not policy.allow_local_repos:
        raise fail("local_repo_not_allowed", "local repository paths are not allowed here; use an https URL")
    path = Path(value.removeprefix("file://"))
    if not path.is_absolute() or ".." in path.parts:
        raise fail("local_repo_path", "a local repository must be an absolute path without '..'")
    if not (path / ".git").exists() and not (path / "HEAD").is_file():
        raise fail("local_repo_missing", f"no git repository at {path}")
    return str(path)


def check_remote_url(value: str, policy: RequestPolicy, *, what: str, needs_path: bool) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise fail("url_syntax", f"{what} is not a valid URL") from exc
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None:
        raise fail("url_credentials", f"{what} must not contain credentials; configure a token instead")
    insecure_ok = parts.scheme == "http" and host in policy.allowed_http_hosts
    if parts.scheme != "https" and not insecure_ok:
        raise fail("url_scheme", f"{what} must use https")
    if not host:
        raise fail("url_host", f"{what} has no host")
    if needs_path and host not in policy.allowed_repo_hosts and not insecure_ok:
        allowed = ", ".join(sorted(policy.allowed_repo_hosts)) or "none"
        raise fail("host_not_allowed", f"host '{host}' is not allowed (allowed: {allowed})")
    if needs_path:
        _check_repo_path(parts.path, parts.query, parts.fragment, what)
    del port  # parsed only so that a malformed port is rejected above
    return value


def _check_repo_path(path: str, query: str, fragment: str, what: str) -> None:
    if query or fragment:
        raise fail("url_query", f"{what} must not have a query or fragment")
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2 or not all(_SEGMENT.match(s) and s not in {".", ".."} for s in segments):
        raise fail("url_path", f"{what} must look like https://host/owner/repo")


def repository_key(location: str) -> str | None:
    """`https://github.com/Org/Repo.git` → `github.com/org/repo`; None for local paths and anything
    that is not a repository URL."""
    try:
        parts = urlsplit(location)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"https", "http"} or not host:
        return None
    host = host.removeprefix("www.") + (f":{port}" if port else "")
    segments = [s.lower() for s in parts.path.split("/") if s]
    if len(segments) < 2:
        return None
    segments[-1] = segments[-1].removesuffix(".git")
    return "/".join([host, *segments])


def check_git_ref(ref: str) -> str:
    """Git's check-ref-format rules for a branch or tag name, or a hex commit sha."""
    if _HEX_SHA.match(ref):
        return ref
    problem = _ref_problem(ref)
    if problem:
        raise fail("git_ref", f"'{ref[:80]}' is not a valid git ref: {problem}")
    return ref


def _ref_problem(ref: str) -> str | None:
    checks = (
        (not ref or len(ref) > 255, "must be 1 to 255 characters"),
        (ref.startswith("-"), "must not start with '-'"),
        (bool(_REF_FORBIDDEN.search(ref)), "must not contain spaces, control characters or ~^:?*[\\"),
        (bool(_REF_SHELL.search(ref)), "must not contain shell characters $`;|&<>()'\"!"),
        (any(unicodedata.category(c) in _REF_HIDDEN_CATEGORIES for c in ref), "must not contain invisible characters"),
        (".." in ref or "@{" in ref or ref == "@", "must not contain '..' or '@{' or be '@'"),
        (ref.startswith("/") or ref.endswith(("/", ".")) or "//" in ref, "bad '/' or trailing '.'"),
        (any(c.startswith(".") or c.endswith(".lock") for c in ref.split("/")), "bad component"),
    )
    return next((message for broken, message in checks if broken), None)


# A docker image reference or an e2b template name: registry/path:tag@digest characters only.
_IMAGE = re.compile(r"^[a-z0-9][A-Za-z0-9._/:@-]{0,511}$")


_REPO_PATH = re.compile(r"^[A-Za-z0-9._/+-]+$")


def check_repo_file(path: str) -> str:
    """A file path inside the repository (the reproduction script's): relative, no `..`, not in `.git`."""
    parts = path.split("/")
    if (
        not _REPO_PATH.match(path)
        or path.startswith("/")
        or any(part in {"", ".", ".."} for part in parts)
        or parts[0] == ".git"
        or path.startswith("-")
    ):
        raise fail("repo_file", f"'{path[:80]}' is not a relative file path inside the repository")
    return path


def check_image_name(name: str) -> str:
    """A sandbox image or template name; it reaches the engine as one argument, never a shell."""
    if not _IMAGE.match(name) or ".." in name or name.startswith("-"):
        raise fail("image_name", f"'{name[:80]}' is not a valid image or template name")
    return name


def check_model_name(name: str, policy: RequestPolicy) -> str:
    if name.startswith(REPLAY_PREFIX):
        if not policy.allow_replay_models:
            raise fail("replay_not_allowed", "replay models are not allowed here")
        path = name.removeprefix(REPLAY_PREFIX)
        if not path or "\x00" in path:
            raise fail("model_name", "replay model needs a file path: replay:PATH")
        return name
    if not _MODEL_NAME.match(name):
        raise fail("model_name", f"'{name[:80]}' is not a valid model name")
    return name
