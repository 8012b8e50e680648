"""`solver template build`: the e2b templates that cloud sandboxes start from: Solver's own, or one
per image (`--from-image`, `--from-instances`) under the name the e2b backend asks for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.markup import escape

from solver_core.cli.common import console
from solver_core.errors import SolverError
from solver_core.settings import Settings

if TYPE_CHECKING:
    from solver_core.sandbox.template import ImageBuild

app = typer.Typer(no_args_is_help=True, help="The e2b sandbox templates: Solver's own, or one built from each image.")


@app.command("build")
def build(  # noqa: PLR0917 - the command's options
    name: str = typer.Option(
        "",
        help="Template name ('name' or 'name:tag'); default SOLVER_SANDBOX_TEMPLATE or 'solver', "
        "or with one --from-image the name derived from the image.",
    ),
    from_image: list[str] = typer.Option(  # noqa: B008 - typer's way of declaring a repeatable option
        [],
        "--from-image",
        metavar="IMAGE",
        help="Build a template from this image (repeatable), named as `--sandbox e2b` will ask for it.",
    ),
    from_instances: Path | None = typer.Option(  # noqa: B008
        None,
        "--from-instances",
        metavar="FILE",
        exists=True,
        dir_okay=False,
        help="Build the template of every instance of this batch file (its `image`, else SWE-bench's); "
        "templates that exist already are skipped.",
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="With --from-instances, build existing templates again."),
    parallel: int = typer.Option(4, min=1, max=64, help="Image templates built at once."),
    cpu: int = typer.Option(2, min=1, help="vCPUs of each sandbox."),
    memory_mb: int = typer.Option(4096, min=512, help="Memory of each sandbox."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each template as a Dockerfile and stop."),
) -> None:
    """Build Solver's e2b template (git, ripgrep, build tools, Python, Node), or templates from images."""
    from solver_core.sandbox import template

    settings = Settings()
    if from_image or from_instances is not None:
        images = _images(from_image, from_instances)
        if not images:
            _fail(f"{from_instances} has no instance to build a template for")
        builds = _named(images, name)
        if dry_run:
            for item in builds:
                typer.echo(f"# {item.image} -> {item.name}\n{template.dockerfile(template.image_template(item.image))}")
            return
        _build_images(settings, builds, skip_existing=from_instances is not None and not rebuild, options={
            "parallel": parallel, "cpu_count": cpu, "memory_mb": memory_mb,
        })  # fmt: skip
        return
    if dry_run:
        typer.echo(template.dockerfile())
        return
    target = name or settings.sandbox_template or template.DEFAULT_NAME
    key = _key(settings)
    console.print(f"building e2b template [bold]{escape(target)}[/] …")
    try:
        info = template.build(
            target,
            api_key=key,
            api_url=settings.e2b_api_url,
            cpu_count=cpu,
            memory_mb=memory_mb,
            on_log=lambda e: console.print(escape(str(e))),
        )
    except SolverError as exc:
        _fail(exc.message)
    console.print(f"built: {escape(str(info))}")


def _images(from_image: list[str], from_instances: Path | None) -> list[str]:
    """The images asked for, each once, in order: `--from-image`s, then the instances'."""
    from pydantic_core import PydanticCustomError

    from solver_core import rules

    images = list(from_image)
    if from_instances is not None:
        images += _instance_images(from_instances)
    for image in images:
        try:
            rules.check_image_name(image)
        except PydanticCustomError as exc:
            raise typer.BadParameter(exc.message(), param_hint="--from-image") from exc
    return list(dict.fromkeys(images))


def _instance_images(path: Path) -> list[str]:
    """The image each instance of a batch file runs on with `--sandbox e2b` (batch/instances.py)."""
    from solver_core.batch.instances import InstancesFileError, instance_image, load_instances

    try:
        loaded = load_instances(path)
    except (InstancesFileError, UnicodeDecodeError) as exc:
        _fail(str(exc))
    for problem in loaded.problems:
        console.print(f"[yellow]skipped {escape(str(problem))}[/]", soft_wrap=True)
    return [instance_image(instance) for _, instance in loaded.instances]


def _named(images: list[str], name: str) -> list[ImageBuild]:
    from solver_core.sandbox import template

    if name and len(images) != 1:
        raise typer.BadParameter("--name names one template: give exactly one image with it", param_hint="--name")
    if name and template.e2b_template_name(name) != name:
        raise typer.BadParameter(
            f"'{name}' is not an e2b template name (lowercase letters, digits, '-', '_', optionally ':tag')",
            param_hint="--name",
        )
    return [template.ImageBuild(image, name or template.e2b_template_name(image)) for image in images]


def _build_images(
    settings: Settings, builds: list[ImageBuild], *, skip_existing: bool, options: dict[str, Any]
) -> None:
    from solver_core.sandbox import template

    key = _key(settings)
    todo = []
    for item in builds:
        try:
            found = skip_existing and template.exists(item.name, api_key=key, api_url=settings.e2b_api_url)
        except SolverError as exc:
            _fail(exc.message)
        if found:
            typer.echo(f"{item.image} -> {item.name} (exists)")
        else:
            todo.append(item)

    def show(outcome: template.BuildOutcome) -> None:
        """`IMAGE -> TEMPLATE` on stdout, for scripts; a failure on stderr."""
        line = f"{outcome.image} -> {outcome.name}"
        if outcome.status == "failed":
            console.print(f"[red]{escape(line)}: build failed: {escape(outcome.error or '')}[/]", soft_wrap=True)
        else:
            typer.echo(line)

    def log(item: template.ImageBuild, entry: Any) -> None:
        console.print(f"[dim]{escape(item.name)}: {escape(str(entry))}[/]", soft_wrap=True)

    if todo:
        console.print(f"building {len(todo)} e2b template(s) from images …")
    try:
        outcomes = template.build_images(
            todo,
            api_key=key,
            api_url=settings.e2b_api_url,
            on_log=log if len(todo) == 1 else None,
            on_outcome=show,
            **options,
        )
    except SolverError as exc:
        _fail(exc.message)
    except KeyboardInterrupt:
        _fail("stopped following the builds; those already started go on at e2b", code=130)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        _fail(f"{len(failed)} of {len(todo)} template build(s) failed", code=1)


def _key(settings: Settings) -> str:
    if settings.e2b_api_key is None:
        _fail("building an e2b template needs SOLVER_E2B_API_KEY; set it to your e2b API key (e2b_…)")
    return settings.e2b_api_key.get_secret_value()


def _fail(message: str, *, code: int = 2) -> NoReturn:
    console.print(f"[red]{escape(message)}[/]", soft_wrap=True)
    raise typer.Exit(code)
