"""The e2b template Solver's sandboxes start from, built with e2b's v2 Template builder.

Everything repository preparation may need: git, ripgrep, compilers and build tools, Python with
venv and pip, Node.js with npm. The agent's commands run as e2b's default user in /home/user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from e2b import Template
from e2b.template.main import TemplateBuilder

from solver_core.errors import SandboxUnavailable

DEFAULT_NAME = "solver"
PYTHON_VERSION = "3.12"
APT_PACKAGES = [
    "git", "ripgrep", "build-essential", "pkg-config", "curl", "ca-certificates", "jq", "patch", "procps",
    "less", "unzip", "nodejs", "npm",
]  # fmt: skip


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


def dockerfile() -> str:
    """The template as a Dockerfile, to review what a build will install."""
    return str(Template.to_dockerfile(solver_template()))


def build(
    name: str,
    *,
    api_key: str | None,
    cpu_count: int = 2,
    memory_mb: int = 4096,
    on_log: Callable[[Any], None] | None = None,
) -> Any:
    """Build (or rebuild) the template under `name` (e.g. "solver" or "solver:v2")."""
    if not api_key:
        raise SandboxUnavailable("building an e2b template needs SOLVER_E2B_API_KEY")
    return Template.build(
        solver_template(), name=name, cpu_count=cpu_count, memory_mb=memory_mb, on_build_logs=on_log, api_key=api_key
    )
