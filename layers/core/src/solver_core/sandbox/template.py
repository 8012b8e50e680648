"""e2b templates: Solver's own (built with e2b's v2 Template builder), templates made from an image
(`solver template build --from-image`), and the rule that names the template of an image.

Solver's template has everything repository preparation may need: git, ripgrep, compilers and build
tools, Python with venv and pip, Node.js with npm. The agent's commands run as e2b's default user in
/home/user. An image's template is the image itself plus a check that it has what Solver's own
commands call (docs/architecture.md, "e2b templates from images").
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from e2b import Template
from e2b import exceptions as e2b_errors
from e2b.template.main import TemplateBuilder
from e2b.template.types import BuildInfo, TemplateBuildStatus

from solver_core.errors import SandboxCapacityExceeded, SandboxUnavailable, SolverError, TemplateBuildFailed
from solver_core.messages import one_line

DEFAULT_NAME = "solver"
PYTHON_VERSION = "3.12"
APT_PACKAGES = [
    "git", "ripgrep", "build-essential", "pkg-config", "curl", "ca-certificates", "jq", "patch", "procps",
    "less", "unzip", "nodejs", "npm",
]  # fmt: skip

# e2b's template names (its API lowercases and checks `[a-z0-9_-]+`, a tag `[a-z0-9._-]+`).
_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(?::[a-z0-9][a-z0-9._-]*)?")
_UNSAFE_RUN = re.compile(r"[^a-z0-9_-]+")
_DIGEST = re.compile(r"@([a-z0-9]+):([0-9a-f]{12})[0-9a-f]*$")
MAX_NAME_LENGTH = 63
HASH_LENGTH = 16  # 64 bits of the reference's SHA-256

# What Solver's commands call in every sandbox: `bash --noprofile --norc`, `/usr/bin/env`, coreutils'
# `timeout` around each command (sandbox/e2b.py), git in the repository scripts (sandbox/scripts).
REQUIRED_TOOLS = ("bash", "env", "timeout", "git")
_TOOLS_CHECK = (
    "missing=''; for tool in " + " ".join(REQUIRED_TOOLS) + "; do "
    'command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done; '
    'if [ -n "$missing" ]; then echo "SOLVER_ERROR: the image lacks$missing, which Solver\'s commands need" >&2; '
    "exit 1; fi"
)

BUILD_POLL_S = (0.2, 2.0)  # the first wait between status polls, then doubling up to the last
BUILD_TIMEOUT_S = 3600


def e2b_template_name(image: str) -> str:
    """The e2b template that stands for `image` (docs/architecture.md, "e2b templates from images").

    A valid e2b template name (`name` or `name:tag`, lowercase letters, digits, `-` and `_`) is kept
    as it is. Any other reference (a registry host, `/`, `.`, uppercase, a digest) becomes: the
    reference lowercased, without a `:latest` tag, a digest cut to 12 hex digits, each run of other
    characters replaced by `-`, its end (from a word's start) kept when too long, then `-` and 16
    hex digits of the SHA-256 of the whole reference (so two images never share a template); at
    most 63 characters."""
    if _TEMPLATE_NAME.fullmatch(image):
        return image
    reference = _DIGEST.sub(r"@\1-\2", image.strip().lower())
    if "@" not in reference:
        reference = reference.removesuffix(":latest")
    room = MAX_NAME_LENGTH - HASH_LENGTH - 1
    slug = _UNSAFE_RUN.sub("-", reference).strip("-_")
    if len(slug) > room:  # keep the end, from a word's start: the image's own name and tag
        cut = slug[-room:]
        slug = (cut if slug[-room - 1] in "-_" else re.sub(r"^[^-_]*", "", cut)).lstrip("-_")
    digest = hashlib.sha256(image.encode()).hexdigest()[:HASH_LENGTH]
    return f"{slug}-{digest}" if slug else digest


def solver_template() -> TemplateBuilder:
    return (
        Template()
        .from_python_image(PYTHON_VERSION)
        .apt_install(APT_PACKAGES, no_install_recommends=True)
        .run_cmd("python -m pip install --no-cache-dir --upgrade pip virtualenv", user="root")
        .run_cmd(
            "git config --system init.defaultBranch main && git config --system advice.detachedHead false", user="root"
        )
        .set_workdir("/home/user")
    )


def image_template(image: str) -> TemplateBuilder:
    """The image as it is (SWE-bench's images have bash, coreutils and git), checked at build time
    for the tools Solver's commands call, so a lacking image fails its build rather than a batch."""
    return Template().from_image(image).run_cmd(_TOOLS_CHECK)


def dockerfile(template: TemplateBuilder | None = None) -> str:
    """The template as a Dockerfile, to review what a build will install."""
    return str(Template.to_dockerfile(template or solver_template()))


def _connection(api_key: str | None, api_url: str | None) -> dict[str, Any]:
    if not api_key:
        raise SandboxUnavailable(
            "building an e2b template needs SOLVER_E2B_API_KEY", hint="set it to your e2b API key (e2b_…)"
        )
    return {"api_key": api_key, **({"api_url": api_url} if api_url else {})}


@contextlib.contextmanager
def _mapped(name: str) -> Iterator[None]:
    """The SDK's build and transport errors as ours, each one line."""
    try:
        yield
    except SolverError:
        raise
    except e2b_errors.AuthenticationException as exc:
        raise SandboxUnavailable(f"e2b rejected the API key: {exc}", hint="check SOLVER_E2B_API_KEY") from exc
    except e2b_errors.RateLimitException as exc:
        raise SandboxCapacityExceeded(
            f"e2b template {name}: e2b refused more builds for now: {one_line(str(exc))}",
            hint="build fewer at once (--parallel)",
        ) from exc
    except (e2b_errors.BuildException, e2b_errors.TemplateException, e2b_errors.InvalidArgumentException) as exc:
        raise TemplateBuildFailed(f"e2b template {name}: {one_line(str(exc) or type(exc).__name__)}") from exc
    except (e2b_errors.SandboxException, e2b_errors.ServiceBusyException, httpx.TransportError) as exc:
        raise SandboxUnavailable(
            f"e2b template {name}: {one_line(str(exc) or type(exc).__name__)}",
            hint="check the e2b service and try again",
        ) from exc


def build(
    name: str,
    *,
    api_key: str | None,
    api_url: str | None = None,
    template: TemplateBuilder | None = None,
    cpu_count: int = 2,
    memory_mb: int = 4096,
    on_log: Callable[[Any], None] | None = None,
) -> Any:
    """Build (or rebuild) a template under `name` (e.g. "solver" or "solver:v2") and wait for it;
    Solver's own template unless `template` is given."""
    connection = _connection(api_key, api_url)
    with _mapped(name):
        return Template.build(
            template or solver_template(),
            name=name,
            cpu_count=cpu_count,
            memory_mb=memory_mb,
            on_build_logs=on_log,
            **connection,
        )


@dataclass(frozen=True)
class ImageBuild:
    image: str
    name: str  # the e2b template name


@dataclass(frozen=True)
class BuildOutcome:
    image: str
    name: str
    status: Literal["built", "exists", "failed"]
    error: str | None = None


@dataclass
class _InFlight:
    build: ImageBuild
    info: BuildInfo
    deadline: float
    logs_offset: int = 0


def exists(name: str, *, api_key: str | None, api_url: str | None = None) -> bool:
    connection = _connection(api_key, api_url)
    with _mapped(name):
        return bool(Template.exists(name, **connection))


def missing(names: Sequence[str], *, api_key: str | None, api_url: str | None = None, workers: int = 8) -> list[str]:
    """The names, among `names`, of templates e2b does not have (a tagged name: its template)."""
    connection = _connection(api_key, api_url)

    def absent(name: str) -> bool:
        with _mapped(name):
            return not Template.exists(name.partition(":")[0], **connection)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        flags = list(pool.map(absent, names))
    return [name for name, flag in zip(names, flags, strict=True) if flag]


def build_images(
    builds: Sequence[ImageBuild],
    *,
    api_key: str | None,
    api_url: str | None = None,
    cpu_count: int = 2,
    memory_mb: int = 4096,
    parallel: int = 1,
    timeout_s: float = BUILD_TIMEOUT_S,
    poll_s: tuple[float, float] = BUILD_POLL_S,
    on_log: Callable[[ImageBuild, Any], None] | None = None,
    on_outcome: Callable[[BuildOutcome], None] | None = None,
) -> list[BuildOutcome]:
    """Build a template from each image, at most `parallel` at once (e2b builds them; this only
    starts them and follows their status). A build that fails, or is not ready within `timeout_s`,
    is a `failed` outcome and the others go on; a build e2b refuses for its rate limit waits until
    one of those running ends (fails when none runs); a rejected key or an unreachable service raises
    (`SandboxUnavailable`). e2b's SDK cannot cancel a build: one left behind by a timeout, an error or
    Ctrl-C ends on e2b's side."""
    connection = _connection(api_key, api_url)
    waiting = list(builds)
    running: list[_InFlight] = []
    outcomes: list[BuildOutcome] = []
    wait = poll_s[0]

    def finish(outcome: BuildOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    while waiting or running:
        while waiting and len(running) < max(parallel, 1):
            item = waiting.pop(0)
            try:
                with _mapped(item.name):
                    info = Template.build_in_background(
                        image_template(item.image),
                        name=item.name,
                        cpu_count=cpu_count,
                        memory_mb=memory_mb,
                        **connection,
                    )
            except SandboxCapacityExceeded as exc:  # e2b's limit of builds at once: after one ends
                if not running:
                    finish(BuildOutcome(item.image, item.name, "failed", exc.message))
                    continue
                waiting.insert(0, item)
                break
            except TemplateBuildFailed as exc:  # this build; a rejected key or an outage stops them all
                finish(BuildOutcome(item.image, item.name, "failed", exc.message))
                continue
            running.append(_InFlight(item, info, time.monotonic() + timeout_s))
        for flight in list(running):
            outcome = _poll(flight, connection, on_log)
            if outcome is not None:
                running.remove(flight)
                finish(outcome)
        if running:
            time.sleep(wait)
            wait = min(wait * 2, poll_s[1])
    return outcomes


def _poll(
    flight: _InFlight, connection: dict[str, Any], on_log: Callable[[ImageBuild, Any], None] | None
) -> BuildOutcome | None:
    item = flight.build
    try:
        with _mapped(item.name):
            status = Template.get_build_status(flight.info, logs_offset=flight.logs_offset, **connection)
    except TemplateBuildFailed as exc:
        return BuildOutcome(item.image, item.name, "failed", exc.message)
    flight.logs_offset += len(status.log_entries)
    if on_log is not None:
        for entry in status.log_entries:
            on_log(item, entry)
    if status.status == TemplateBuildStatus.READY:
        return BuildOutcome(item.image, item.name, "built")
    if status.status == TemplateBuildStatus.ERROR:
        reason = status.reason.message if status.reason else "the build failed"
        return BuildOutcome(item.image, item.name, "failed", one_line(reason))
    if time.monotonic() > flight.deadline:
        return BuildOutcome(item.image, item.name, "failed", "not ready in time; the build goes on at e2b")
    return None
