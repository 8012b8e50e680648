"""Batch input: instances in SWE-bench's fields plus Solver's optional ones, read from JSONL or JSON
and validated as a whole (every problem with its line) before anything runs (docs/architecture.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from solver_core import rules

DEFAULT_EVAL_COMMAND = "python -m pytest -rA -p no:cacheprovider {tests}"
SWEBENCH_NAMESPACE = "swebench"
# Instance ids name folders and files of the output: no separators, no leading dot.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_REPO = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _json_list(value: Any) -> Any:
    """FAIL_TO_PASS / PASS_TO_PASS are lists, or JSON-encoded lists as in the published datasets."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise rules.fail("json_list", "must be a list of test ids or a JSON-encoded list") from exc
    return value


TestIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=2000)]], BeforeValidator(_json_list)]


class Instance(BaseModel):
    """One instance. Other fields of the datasets (the gold `patch`, `created_at`, …) are ignored:
    nothing but these reaches a solve, so the gold patch can never leak to an agent."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str = Field(min_length=1)
    hints_text: str = ""
    version: str | None = None
    environment_setup_commit: str | None = None
    test_patch: str = ""
    fail_to_pass: TestIds = Field(default_factory=list, alias="FAIL_TO_PASS")
    pass_to_pass: TestIds = Field(default_factory=list, alias="PASS_TO_PASS")
    # Solver's own fields.
    repo_url: str | None = None
    setup_command: str | None = None
    test_command: str | None = None
    image: str | None = None
    eval_command: str = Field(
        default=DEFAULT_EVAL_COMMAND,
        description=(
            "--evaluate's command, `{tests}` replaced by FAIL_TO_PASS + PASS_TO_PASS; results are read per test "
            "from the JUnit XML the runner writes: pytest's through PYTEST_ADDOPTS, jest-junit's through "
            'JEST_JUNIT_OUTPUT_FILE, any other to $SOLVER_JUNIT_XML (`gotestsum --junitfile "$SOLVER_JUNIT_XML" '
            "-- {tests}`)"
        ),
    )

    @field_validator("instance_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _INSTANCE_ID.match(value) or ".." in value:
            raise rules.fail("instance_id", "must be letters, digits, '.', '_' or '-' (it names a folder)")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _REPO.match(value):
            raise rules.fail("repo", "must be owner/name")
        return value

    @field_validator("base_commit", "environment_setup_commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        if value is not None and not _COMMIT.match(value):
            raise rules.fail("commit", "must be a commit sha")
        return value

    @field_validator("problem_statement")
    @classmethod
    def _statement(cls, value: str) -> str:
        if not value.strip():
            raise rules.fail("blank", "must not be blank")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else rules.check_image_name(value)

    @field_validator("eval_command")
    @classmethod
    def _eval(cls, value: str) -> str:
        if "{tests}" not in value:
            raise rules.fail("eval_command", "must contain {tests}")
        return value

    @property
    def source(self) -> str:
        return self.repo_url or f"https://github.com/{self.repo}"

    @property
    def hidden_tests(self) -> list[str]:
        return [*self.fail_to_pass, *self.pass_to_pass]


def swebench_image(instance_id: str, namespace: str = SWEBENCH_NAMESPACE) -> str:
    """The image SWE-bench publishes for an instance: `__` becomes `_1776_` (Docker Hub refuses
    double underscores), lowercased."""
    key = f"sweb.eval.x86_64.{instance_id}:latest".lower()
    return f"{namespace}/{key}".replace("__", "_1776_")


def instance_image(instance: Instance) -> str:
    """The image an instance runs on with the docker and e2b backends: its own, else SWE-bench's
    (on e2b, the template `solver template build --from-image` makes of it)."""
    return instance.image or swebench_image(instance.instance_id)


@dataclass(frozen=True)
class Problem:
    """A bad instance: where it is (`line N` of JSONL, `item N` of a JSON list) and what is wrong."""

    where: str
    instance_id: str | None
    message: str

    def __str__(self) -> str:
        named = f" ({self.instance_id})" if self.instance_id else ""
        return f"{self.where}{named}: {self.message}"


@dataclass(frozen=True)
class Loaded:
    instances: list[tuple[str, Instance]]  # (where, instance), in file order
    problems: list[Problem]


class InstancesFileError(ValueError):
    """The file itself cannot be read as instances (not JSON, not a list)."""


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "instance"
        message = "is required" if error["type"] == "missing" else error["msg"]
        parts.append(f"{field} {message}")
    return "; ".join(parts)


def _records(text: str, *, as_list: bool, name: str) -> list[tuple[str, Any]]:
    if as_list:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InstancesFileError(f"{name}: not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise InstancesFileError(f"{name}: a JSON file of instances must hold a list")
        return [(f"item {i}", item) for i, item in enumerate(data, start=1)]
    records: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"line {number}", json.loads(line)))
        except ValueError as exc:
            records.append((f"line {number}", exc))
    return records


def load_instances(path: Path) -> Loaded:
    """Every instance of the file, validated; problems are collected, not raised."""
    text = path.read_text(encoding="utf-8")
    as_list = path.suffix == ".json" or text.lstrip().startswith("[")
    return parse_instances(_records(text, as_list=as_list, name=str(path)))


def parse_jsonl(text: str, name: str) -> Loaded:
    """JSONL text (an uploaded file of a cloud batch), validated like a file."""
    return parse_instances(_records(text, as_list=False, name=name))


def parse_items(items: list[Any]) -> Loaded:
    """A JSON list of instances (a cloud batch's inline `instances`), validated like a file."""
    return parse_instances([(f"item {i}", item) for i, item in enumerate(items, start=1)])


def parse_instances(records: list[tuple[str, Any]]) -> Loaded:
    instances: list[tuple[str, Instance]] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for where, record in records:
        if isinstance(record, Exception):
            problems.append(Problem(where, None, f"not valid JSON: {record}"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(where, None, "an instance must be a JSON object"))
            continue
        named = record.get("instance_id") if isinstance(record.get("instance_id"), str) else None
        try:
            instance = Instance.model_validate(record)
        except ValidationError as exc:
            problems.append(Problem(where, named, _describe(exc)))
            continue
        if instance.instance_id in seen:
            problems.append(Problem(where, named, f"instance_id repeats the one at {seen[instance.instance_id]}"))
            continue
        seen[instance.instance_id] = where
        instances.append((where, instance))
    return Loaded(instances, problems)


def select(instances: list[Instance], *, pattern: str | None, window: str | None) -> list[Instance]:
    """`--filter REGEX` (matched against the instance id) then `--slice A:B` (Python slice bounds)."""
    chosen = [i for i in instances if pattern is None or re.search(pattern, i.instance_id)]
    if window is None:
        return chosen
    start, _, stop = window.partition(":")
    return chosen[slice(int(start) if start else None, int(stop) if stop else None)]


def parse_slice(window: str) -> str:
    """Checks `A:B` (either bound may be empty); raises ValueError otherwise."""
    start, colon, stop = window.partition(":")
    if not colon or any(part and not re.fullmatch(r"-?\d+", part) for part in (start, stop)):
        raise ValueError("must be A:B, with A and B integers or empty (e.g. 0:10, :5, 20:)")
    return window
