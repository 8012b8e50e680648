"""Secret redaction: configured values, well-known token shapes, and no damage to ordinary text."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import minisweagent
import pytest

from solver_core.agent.redact import PLACEHOLDER, Redactor

pytestmark = pytest.mark.unit

R = PLACEHOLDER
PEM_BODY = "MIIEpAIBAAKCAQEA7bq98s3fGh2kLmN0pQrStUvWxYz\nAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/==\n"

# (text with a secret, the redacted text)
PATTERNS = {
    "openai": ("OPENAI_API_KEY=sk-AbCdEf0123456789GhIjKlMnOpQrStUvWxYz0123456789AbCd", f"OPENAI_API_KEY={R}"),
    "openai_project": ('key: "sk-proj-Ab3_dEf-0123456789ghIJklMNopQRstUVwx"', f'key: "{R}"'),
    "anthropic": ("x-api-key: sk-ant-api03-AbCdEf0123456789-GhIj_KlMnOpQrStUv", f"x-api-key: {R}"),
    "github_classic": ("token ghp_0123456789abcdefghijABCDEFGHIJ0123456789", f"token {R}"),
    "github_app": ("x-access-token ghs_0123456789abcdefghijABCDEFGHIJ012345", f"x-access-token {R}"),
    "github_oauth_user_refresh": ("gho_0123456789abcdefghijABCDEFGHIJ0123 ghu_0123456789abcdefghijABCDEFGHIJ0123 "
                                  "ghr_0123456789abcdefghijABCDEFGHIJ0123", f"{R} {R} {R}"),
    "github_fine_grained": ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123", R),
    "aws_access_key_id": ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE; ASIAABCDEFGHIJKLMNOP",
                          f"aws_access_key_id = {R}; {R}"),
    "aws_secret": ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"aws_secret_access_key = {R}"),
    "aws_secret_env": ('AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
                       f'AWS_SECRET_ACCESS_KEY="{R}"'),
    "slack": ("SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKl", f"SLACK={R}"),
    "google": ("key=AIzaSyA1234567890abcdefghijklmnopqrstuv&q=1", f"key={R}&q=1"),
    "e2b": ("E2B_API_KEY=e2b_0123456789abcdef0123456789abcdef01234567", f"E2B_API_KEY={R}"),
    "jwt": ("cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P end",
            f"cookie {R} end"),
    "private_key": (f"x\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\ny",
                    f"x\n-----BEGIN RSA PRIVATE KEY-----{R}-----END RSA PRIVATE KEY-----\ny"),
    "private_key_json_escaped": ('"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'
                                 '\\n-----END PRIVATE KEY-----\\n"',
                                 f'"-----BEGIN PRIVATE KEY-----{R}-----END PRIVATE KEY-----\\n"'),
    "private_key_truncated": (f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}(output truncated)",
                              f"-----BEGIN OPENSSH PRIVATE KEY-----{R}\n(output truncated)"),
    "url_password": ("postgresql://solver:pA55w0rd@db:5432/solver", f"postgresql://solver:{R}@db:5432/solver"),
    "url_token_password": ("git clone https://x-access-token:abc123@github.com/o/r.git",
                           f"git clone https://x-access-token:{R}@github.com/o/r.git"),
    "authorization_bearer": ("curl -H 'Authorization: Bearer abc.def-ghi_123'", f"curl -H 'Authorization: Bearer {R}'"),
    "authorization_basic": ('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', f'{{"authorization": "Basic {R}"}}'),
    "authorization_git_header": ("http.extraheader=AUTHORIZATION: basic eC1hY2Nlc3M6dG9r",
                                 f"http.extraheader=AUTHORIZATION: basic {R}"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), PATTERNS.values(), ids=PATTERNS.keys())
def test_well_known_secret_shapes_are_redacted_without_configuration(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize("text", [text for text, _ in PATTERNS.values()], ids=PATTERNS.keys())
def test_redacting_twice_is_redacting_once(text: str) -> None:
    redactor = Redactor(["wJalrXUtnFEMI", "dozjgNryP4J3"])
    once = redactor.redact(text)
    assert redactor.redact(once) == once


def test_configured_values_are_redacted_wherever_they_occur() -> None:
    redactor = Redactor(["hunter2-hunter2", "a.b*c+d?e(f)[g]{2}|h\\1$"])
    text = "pw=hunter2-hunter2;x=hunter2-hunter2\nweird a.b*c+d?e(f)[g]{2}|h\\1$ end; near miss aXb*c+d?e(f)"
    assert redactor.redact(text) == f"pw={R};x={R}\nweird {R} end; near miss aXb*c+d?e(f)"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor(["abcdefgh", "abcdefgh-and-more", "xyz-abcdefgh"])
    assert redactor.redact("abcdefgh-and-more | xyz-abcdefgh | abcdefgh") == f"{R} | {R} | {R}"
    assert redactor.secrets == ("abcdefgh-and-more", "xyz-abcdefgh", "abcdefgh")
    assert redactor.secret_count == 3


def test_the_placeholder_is_used_literally_and_never_redacted_itself() -> None:
    redactor = Redactor(["REDACTED", "s3cr3t-value"], placeholder=r"<\1 hidden>")
    assert redactor.redact("s3cr3t-value") == r"<\1 hidden>"
    assert Redactor(["REDACTED"]).redact("[REDACTED] REDACTED") == "[REDACTED] REDACTED"
    assert Redactor(["", "s3cr3t-value"]).secret_count == 1


def test_template_placeholders_in_urls_are_not_redacted() -> None:
    text = 'f"postgresql://{user}:{password}@{host}/db" "postgres://u:${PGPASSWORD}@h" "mysql://u:%s@h" "s://u:***@h"'
    assert Redactor().redact(text) == text


def test_the_environment_gives_secret_looking_variables_and_url_passwords() -> None:
    environ = {
        "OPENAI_API_KEY": "opaque-openai-value",
        "SOLVER_E2B_APIKEY": "opaque-e2b-value",
        "GITHUB_TOKEN": "opaque-github-value\n",
        "DB_PASSWORD": "opaque-db-password",
        "MY_CLIENT_SECRET": "opaque-client-secret",
        "BASIC_AUTH": "opaque-auth-value",
        "DATABASE_URL": "postgresql://solver:Url%2Fpassw0rd@db/solver",
        "SHORT_TOKEN": "1234567",
        "FEATURE_SECRET_ENABLED": "true",
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
        "PASSWORD_STORE_DIR": "/home/ada/.password-store",
        "TOKENIZERS_PARALLELISM": "false-or-whatever",
        "PWD": "/home/ada/project",
        "HOME": "/home/ada",
    }
    redactor = Redactor.from_environment(environ, extra=["per-run-value", "https://u:extra-url-pw@h", "short"])
    assert set(redactor.secrets) == {
        "opaque-openai-value",
        "opaque-e2b-value",
        "opaque-github-value\n",
        "opaque-github-value",
        "opaque-db-password",
        "opaque-client-secret",
        "opaque-auth-value",
        "Url%2Fpassw0rd",
        "Url/passw0rd",
        "per-run-value",
        "https://u:extra-url-pw@h",
        "extra-url-pw",
        "short",
    }
    assert redactor.redact("Ada Lovelace in /home/ada/project used opaque-db-password") == (
        f"Ada Lovelace in /home/ada/project used {R}"
    )


def test_nested_data_is_copied_with_every_string_redacted() -> None:
    redactor = Redactor(["s3cr3t-value"])
    data = {
        "messages": [
            {"role": "tool", "content": "echo s3cr3t-value", "extra": {"returncode": 0, "ok": True, "x": None}},
            ("tuple s3cr3t-value", 1.5),
        ],
        "s3cr3t-value": ["s3cr3t-value"],
    }
    redacted = redactor.redact_data(data)
    assert redacted == {
        "messages": [
            {"role": "tool", "content": f"echo {R}", "extra": {"returncode": 0, "ok": True, "x": None}},
            (f"tuple {R}", 1.5),
        ],
        R: [R],
    }
    assert data["messages"][0]["content"] == "echo s3cr3t-value"  # type: ignore[index]


PYTHON_SOURCE = '''
import os

API_KEY_ENV = "OPENAI_API_KEY"
token = os.environ.get("GITHUB_TOKEN", "")
headers = {"Authorization": f"Bearer {token}"}
fallback = {"Authorization": "Bearer " + token}
url = f"https://{user}:{password}@{host}/repo.git"


def tokenize(text: str, max_tokens: int = 512) -> list[str]:
    """Split text into tokens; sk-learn style names and task-ids are fine."""
    return [word for word in text.split() if word != "password"][:max_tokens]
'''

GIT_DIFF = """diff --git a/calculator.py b/calculator.py
index 3b18e51..a9c2f47 100644
--- a/calculator.py
+++ b/calculator.py
@@ -10,7 +10,7 @@ def mean(values: list[float]) -> float:
     if not values:
         raise ValueError("mean() of an empty list")
-    return sum(values) // len(values)
+    return sum(values) / len(values)
"""

ORDINARY_TEXT = {
    "python": PYTHON_SOURCE,
    "git_diff": GIT_DIFF,
    "words": "the token was refreshed; enter your password; api key rotation is documented",
    "git_log": "commit 3b18e51f0c9d4e2a8b7c6d5e4f3a2b1c0d9e8f7a\nAuthor: Ada <ada@example.com>",
    "paths_and_urls": "https://github.com/org/repo http://localhost:8080/path@v1 ssh://git@github.com:22/o/r",
    "kebab_case": "sk-learn-is-a-library-name-not-a-key task-0123456789abcdef0123 e2b_not_hex_at_all_here_zz",
    "pytest_output": "FAILED tests/test_x.py::test_token_refresh - AssertionError: assert 1 == 2\n1 failed in 0.1s",
}


@pytest.mark.parametrize("text", ORDINARY_TEXT.values(), ids=ORDINARY_TEXT.keys())
def test_ordinary_code_and_output_are_left_alone(text: str) -> None:
    assert Redactor(["s3cr3t-value"]).redact(text) == text


def test_short_configured_values_from_the_environment_do_not_redact_common_words() -> None:
    redactor = Redactor.from_environment({"API_TOKEN": "true", "DEBUG_KEY": "1", "AUTH": "main"})
    assert redactor.secret_count == 0
    assert redactor.redact("true 1 main") == "true 1 main"


def test_mini_swe_agent_source_comes_out_unchanged() -> None:
    redactor = Redactor(["s3cr3t-value"])
    for source in sorted(Path(minisweagent.__file__).parent.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        assert redactor.redact(text) == text, source


def test_a_megabyte_with_many_configured_secrets_is_quick() -> None:
    values = [secrets.token_urlsafe(24) for _ in range(1000)]
    redactor = Redactor(values)
    text = (GIT_DIFF * (1_000_000 // len(GIT_DIFF) + 1))[:1_000_000] + values[-1]
    started = time.perf_counter()
    redacted = redactor.redact(text)
    elapsed = time.perf_counter() - started
    assert redacted.endswith(R)
    assert elapsed < 10  # only catches gross regressions; it takes well under a second here


def test_hostile_repetitive_output_is_linear() -> None:
    redactor = Redactor(["s3cr3t-value"])
    for unit in ("eyJ-", "sk-", "-----BEGIN RSA PRIVATE KEY-----\n", "a.", "x://u:"):
        text = unit * (200_000 // len(unit))
        started = time.perf_counter()
        redactor.redact(text)
        assert time.perf_counter() - started < 10, unit


def test_repr_never_shows_the_values() -> None:
    assert "s3cr3t-value" not in repr(Redactor(["s3cr3t-value"]))
