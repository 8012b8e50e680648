"""Errors that say what to do: every SolverError, the API's error codes and wrapped library
messages come out as one line, what happened first and then what to do (docs/architecture.md)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import solver_core
from solver_core.errors import ModelNotConfigured, SolverError
from solver_core.messages import MAX_WHAT, summarize_exception

pytestmark = pytest.mark.unit

MAX_LINE = MAX_WHAT + 200
LONG = "the first line of what happened\n" + "and a long tail of detail " * 100 + "\n`mini-extra config set KEY VALUE`"


def every_module() -> None:
    """Import the whole package, so that every SolverError subclass (the API's too) exists."""
    for module in pkgutil.walk_packages(solver_core.__path__, "solver_core."):
        # Scripts, not modules: the CLI's entry and Alembic's migration environment run on import.
        if not module.name.endswith("__main__") and ".db.migrations" not in module.name:
            importlib.import_module(module.name)


def subclasses() -> list[type[SolverError]]:
    every_module()
    found, pending = [], [SolverError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__qualname__)


def instance(cls: type[SolverError], message: str) -> SolverError:
    """The error with `message` and harmless values for any other required argument."""
    extra: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if name != "message" and parameter.default is inspect.Parameter.empty:
            extra[name] = {"allowed": {"GET"}, "retry_after_s": 30}.get(name, 1)
    return cls(message, **extra)


def test_the_audit_sees_every_family_of_errors() -> None:
    names = {cls.__name__ for cls in subclasses()}
    assert {"ValidationFailed", "ModelNotConfigured", "PreflightFailed", "Unauthorized", "GitHubRateLimited"} <= names


@pytest.mark.parametrize("cls", subclasses(), ids=lambda c: c.__name__)
def test_every_error_is_one_line_what_happened_then_what_to_do(cls: type[SolverError]) -> None:
    error = instance(cls, LONG)
    assert "\n" not in error.message
    assert len(error.message) <= MAX_LINE
    what, _, todo = error.message.partition("; ")
    assert what.startswith("the first line of what happened")
    assert todo.endswith(cls.hint)
    assert cls.hint
    assert cls.hint[0].islower()
    assert "\n" not in cls.hint
    assert not cls.hint.endswith(".")
    assert "mini-extra" not in error.message
    assert str(error) == error.message  # what the state machine records as the cause
    # A message that passes through a process boundary and is raised again keeps one hint.
    assert instance(cls, error.message).message == error.message


def test_a_raiser_can_give_a_better_hint_than_the_class() -> None:
    error = ModelNotConfigured("model anthropic/x has no API key: set ANTHROPIC_API_KEY", hint="run `solver doctor`")
    assert error.message == "model anthropic/x has no API key: set ANTHROPIC_API_KEY; run `solver doctor`"


class FakeProviderError(Exception):
    """Shaped like an SDK error: an HTTP status and a JSON body in its text."""

    status_code = 429


def test_wrapped_library_messages_are_shortened_and_keep_the_provider_code() -> None:
    text = (
        'litellm.RateLimitError: AnthropicException - {"type":"error","error":{"type":"rate_limit_error",'
        '"message":"Number of request tokens has exceeded your per-minute rate limit"}}\n' + "x" * 600
        + "\nYou can permanently set your API key with `mini-extra config set KEY VALUE`."
    )  # fmt: skip
    summary = summarize_exception(FakeProviderError(text))
    assert summary.startswith("FakeProviderError HTTP 429 rate_limit_error: Number of request tokens")
    assert "\n" not in summary
    assert len(summary) <= 160
    assert "mini-extra" not in summary


def test_a_code_on_the_wrapped_exception_is_kept() -> None:
    class SdkError(Exception):
        code = "invalid_api_key"

    outer = RuntimeError("litellm.AuthenticationError: OpenAIException - Incorrect API key provided")
    outer.__cause__ = SdkError("Incorrect API key provided")
    assert summarize_exception(outer) == "RuntimeError invalid_api_key: Incorrect API key provided"
