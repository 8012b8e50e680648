"""User-visible messages: one line, what happened first and then what to do (docs/architecture.md,
"Errors that say what to do"). Wrapped library messages are shortened here, keeping the provider's
own error code, and advice meant for other tools is dropped."""

from __future__ import annotations

import json
import re

MAX_WHAT = 240
# Advice that libraries append for their own command-line tools (mini-swe-agent's `mini-extra`,
# litellm's debug hints): never shown by Solver, whose own advice follows instead.
_FOREIGN_ADVICE = re.compile(
    r"(mini-extra[^\n]*|You can permanently set[^\n]*|Give Feedback / Get Help[^\n]*|"
    r"LiteLLM\.Info:[^\n]*|set litellm\._turn_on_debug\(\)[^\n]*|Provider List:[^\n]*)",
    re.IGNORECASE,
)
_CODE_FIELDS = re.compile(r"""["']?(?:code|type)["']?\s*[:=]\s*["']([A-Za-z0-9_.\-]{3,64})["']""")
_GENERIC_CODES = frozenset({"error", "invalid_request", "object", "message"})


def one_line(text: str, limit: int = MAX_WHAT) -> str:
    """`text` on one line, without foreign advice, at most `limit` characters."""
    cleaned = _FOREIGN_ADVICE.sub(" ", text)
    flat = " ".join(cleaned.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip(" ,;:") + "…"


def join(what: str, hint: str, *, limit: int = MAX_WHAT) -> str:
    """'what happened; what to do' (idempotent: a message that already ends with the hint is kept)."""
    what = one_line(what, limit)
    if not hint or what.endswith(hint):
        return what
    return f"{what.rstrip('. ')}; {hint}"


def provider_code(text: str) -> str | None:
    """The provider's own error code in a wrapped message (`authentication_error`, `invalid_api_key`,
    `rate_limit_exceeded`, …), when it carries one."""
    for match in _CODE_FIELDS.finditer(text):
        code = match.group(1)
        if code.lower() not in _GENERIC_CODES:
            return code
    return None


def summarize_exception(exc: BaseException, limit: int = 160) -> str:
    """A library's exception as a short phrase: its class, the HTTP status and provider code when it
    has them, and the start of its message."""
    text = str(exc)
    parts = [type(exc).__name__]
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        parts.append(f"HTTP {status}")
    if code := next(filter(None, map(_attribute_code, _chain(exc))), None) or provider_code(text):
        parts.append(code)
    head = _message_head(text)
    summary = f"{' '.join(parts)}: {head}" if head else " ".join(parts)
    return one_line(summary, limit)


def _chain(exc: BaseException, depth: int = 5) -> list[BaseException]:
    """The exception and what it wraps (litellm re-raises the SDK's error, which has the code)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < depth and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _attribute_code(exc: BaseException) -> str | None:
    """The code an SDK exception carries (the OpenAI SDK's `code`, or its error `body`)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        for field in ("code", "type"):
            value = inner.get(field) if isinstance(inner, dict) else None
            if isinstance(value, str) and value.lower() not in _GENERIC_CODES:
                return value
    return None


def _message_head(text: str) -> str:
    """The informative start of a library message: the provider's own `message` when the text
    embeds a JSON error, else the text without its repeated `litellm.XError:` prefixes."""
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start : text.rfind("}") + 1])
        except ValueError:
            body = None
        inner = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    head = re.sub(r"^(?:litellm\.\w+:\s*|\w+Error:\s*|\w+Exception\s*-\s*)+", "", text.strip())
    return one_line(head, 120)
