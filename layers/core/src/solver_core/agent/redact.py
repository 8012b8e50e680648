"""Secret redaction for everything Solver persists or shows: trajectories, logs, events, outputs.

Two layers: the exact values Solver knows are secret (configured keys, tokens from the environment)
and well-known credential shapes that may come from anywhere, such as a token a repository's own
test prints. Redacting twice gives the same text as redacting once, so already-redacted artifacts
can pass through again safely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

PLACEHOLDER = "[REDACTED]"
# Shorter values ("1", "true", "main") occur everywhere, so redacting them would wreck the text.
MIN_SECRET_LENGTH = 8
# Variable names are split on "_"; a word ending with one of these marks the value as secret.
_SECRET_WORD_ENDINGS = (
    "KEY", "KEYS", "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PASSPHRASE",
    "CREDENTIAL", "CREDENTIALS",
)  # fmt: skip
_SECRET_WORDS = frozenset({"AUTH", "PASS", "PWD", "CREDS", "COOKIE"})
# These name files, sockets or directories that hold secrets, not the secrets themselves.
_LOCATION_WORDS = frozenset({"FILE", "PATH", "DIR", "SOCK", "SOCKET"})
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})

# A URL's userinfo password; template placeholders in code (`${PASSWORD}`, `{password}`, `%s`) are kept.
_URL_PASSWORD = re.compile(r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}://[^\s/:@'\"<>]*):([^\s/@'\"<>]+)@", re.IGNORECASE)
_TEMPLATE_VALUE = re.compile(r"\$\{?\w+\}?|\{\{?[^{}]*\}?\}|%(?:\(\w+\))?s|\*+")
_AUTHORIZATION = re.compile(
    r"\b(authorization[\"']?[ \t]*[:=][ \t]*[\"']?[ \t]*(?:basic|bearer|token)[ \t]+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)
_AWS_SECRET = re.compile(r"\b(aws_secret_access_key[\"']?[ \t]*[:=][ \t]*[\"']?)[A-Za-z0-9/+=]{20,}", re.IGNORECASE)
# Tokens start only where a run of token characters starts: a long run is then scanned once, not
# once from every position inside it (quadratic on hostile output such as "eyJ-eyJ-eyJ-...").
_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    + "|".join(
        (
            r"sk-(?=[A-Za-z0-9_-]{0,300}[0-9])[A-Za-z0-9_-]{20,}",  # OpenAI sk-, sk-proj-, Anthropic sk-ant-
            r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",  # GitHub
            r"(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
            r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
            r"AIza[0-9A-Za-z_-]{35}",  # Google API key
            r"e2b_[0-9a-f]{20,}",  # e2b
            r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",  # JWT
        )
    )
    + ")"
)
_PEM_BEGIN = r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PEM_END = r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"


class Redactor:
    """Replaces secrets in text and in JSON-like data with a placeholder."""

    def __init__(self, secrets: Iterable[str] = (), *, placeholder: str = PLACEHOLDER) -> None:
        self.placeholder = placeholder
        # A value inside the placeholder would be re-redacted on every pass, breaking idempotence.
        unique = {value for value in secrets if value and value not in placeholder}
        self._secrets = tuple(sorted(unique, key=lambda value: (-len(value), value)))
        self._literals = re.compile(_trie_pattern(self._secrets)) if self._secrets else None
        self._pem = _pem_pattern(placeholder)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], extra: Iterable[str] = (), *, placeholder: str = PLACEHOLDER
    ) -> Redactor:
        """A redactor for the values of secret-looking variables, `extra`, and the passwords of URLs in both.

        `extra` values are kept whatever their length: the caller knows they are secret.
        """
        explicit = list(extra)
        found: set[str] = set()
        for name, value in environ.items():
            if _is_secret_name(name):
                found.update({value, value.strip()})
            found.update(_url_passwords(value))
        for value in explicit:
            found.update(_url_passwords(value))
        kept = (value for value in found if len(value) >= MIN_SECRET_LENGTH)
        return cls([*explicit, *kept], placeholder=placeholder)

    def with_secrets(self, values: Iterable[str]) -> Redactor:
        """This redactor plus more values (a run's model header values, say); itself when none are new."""
        extra = [value for value in values if value and value not in self._secrets]
        return Redactor([*self._secrets, *extra], placeholder=self.placeholder) if extra else self

    @property
    def secrets(self) -> tuple[str, ...]:
        """The configured values, longest first."""
        return self._secrets

    @property
    def secret_count(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"Redactor({self.secret_count} secrets, placeholder={self.placeholder!r})"  # never the values

    def redact(self, text: str) -> str:
        ph = self.placeholder
        if self._literals is not None:
            text = self._literals.sub(lambda _: ph, text)
        text = self._pem.sub(lambda m: m[1] + ph + (m[2] or ""), text)
        text = _URL_PASSWORD.sub(self._url_replacement, text)
        text = _AUTHORIZATION.sub(lambda m: m[1] + ph, text)
        text = _AWS_SECRET.sub(lambda m: m[1] + ph, text)
        return _TOKENS.sub(lambda _: ph, text)

    def redact_data(self, obj: Any) -> Any:
        """A redacted copy of JSON-like data: strings in dict keys and values, lists and tuples."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_data(key): self.redact_data(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.redact_data(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_data(item) for item in obj)
        return obj

    def _url_replacement(self, match: re.Match[str]) -> str:
        if _TEMPLATE_VALUE.fullmatch(match[2]):
            return match[0]
        return f"{match[1]}:{self.placeholder}@"


def _is_secret_name(name: str) -> bool:
    words = [word for word in name.upper().split("_") if word]
    if not words or name.upper() in _NOT_SECRET_NAMES or words[-1] in _LOCATION_WORDS:
        return False
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_WORD_ENDINGS) for word in words)


def _url_passwords(value: str) -> set[str]:
    passwords = {match[2] for match in _URL_PASSWORD.finditer(value) if not _TEMPLATE_VALUE.fullmatch(match[2])}
    return passwords | {unquote(password) for password in passwords}


def _pem_pattern(placeholder: str) -> re.Pattern[str]:
    # A block cut off before its END line (truncated output) still loses its base64 lines.
    unterminated = rf"(?:{re.escape(placeholder)})?(?:(?:\s|\\[rn])*+[A-Za-z0-9+/=]{{16,}}+)*+"
    # The body cannot run past another "-----", so each BEGIN scans only up to the next marker.
    body = r"[^-]*+(?:-(?!----)[^-]*+)*+"
    return re.compile(rf"({_PEM_BEGIN})(?:{body}({_PEM_END})|{unterminated})")


def _trie_pattern(values: Iterable[str]) -> str:
    """One regex for many literals, shaped as a prefix tree.

    A flat alternation makes the engine try every value at every position (seconds for a few
    thousand values over 1 MB); the tree tries only values sharing the prefix seen so far.
    Optional tails are greedy, so the longest value wins where several start at one position.
    """
    root: dict[str, Any] = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_pattern(root)


def _node_pattern(node: dict[str, Any]) -> str:
    branches = []
    for char in sorted(key for key in node if key):
        run, child = char, node[char]
        while len(child) == 1 and "" not in child:  # a chain without branches is one literal
            ((following, child),) = child.items()
            run += following
        branches.append(re.escape(run) + _node_pattern(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body
