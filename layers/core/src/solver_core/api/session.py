"""How a browser signs in to `solver serve` when it requires a token: POST /ui/login with the token
sets a session cookie (HttpOnly, SameSite=Strict) that stands for the token on this server.

The cookie is accepted on reads, and on writes only from the server's own pages: a same-origin
`Origin` header and a JSON body, which a cross-site form cannot send (a form posts
`application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`; a cross-site fetch with
JSON needs a CORS preflight this server never grants). SameSite=Strict alone would not do: another
port of the same host is the same *site*.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

COOKIE = "solver_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FAILED_LOGIN_DELAY_S = 0.5  # slows guessing a token through the login form
MAX_LOGIN_BODY = 4096


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the token itself never sits in a cookie jar."""
    return hmac.new(token.encode(), b"solver console session v1", hashlib.sha256).hexdigest()


def cookie_of(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("Cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(headers: Mapping[str, str]) -> bool:
    """The request comes from a page of this server (its Origin is this Host), as browsers say."""
    host, origin = headers.get("Host"), headers.get("Origin")
    if not host or not origin or origin == "null":
        return False
    if headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
        return False
    return origin in {f"http://{host}", f"https://{host}"}


def is_json(headers: Mapping[str, str]) -> bool:
    media = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return media == "application/json"


def cookie_authorizes(headers: Mapping[str, str], method: str, token: str) -> bool:
    value = cookie_of(headers)
    if value is None or not hmac.compare_digest(value.encode(), session_value(token).encode()):
        return False
    if method.upper() in SAFE_METHODS:
        return True
    return same_origin(headers) and is_json(headers)


def login_token(body: bytes, content_type: str) -> str | None:
    """The token a login form (urlencoded) or a script (JSON) sent."""
    if len(body) > MAX_LOGIN_BODY:
        return None
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if media == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        token = data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) else None
    if media == "application/x-www-form-urlencoded":
        values = parse_qs(text).get("token")
        return values[-1] if values else None
    return None


def login(headers: Mapping[str, str], body: bytes, token: str | None, base: str = "") -> tuple[int, dict[str, str]]:
    """The answer to POST /ui/login: a redirect to the console with the cookie, or back to the form."""
    given = login_token(body, headers.get("Content-Type") or "")
    origin = headers.get("Origin")
    cross_site = origin is not None and not same_origin(headers)
    if token is None:  # no token to sign in with: the loopback interface is trusted as it is
        return 303, {"Location": f"{base}/ui"}
    if cross_site or given is None or not hmac.compare_digest(given.encode(), token.encode()):
        time.sleep(FAILED_LOGIN_DELAY_S)
        return 303, {"Location": f"{base}/ui/login?failed=1", "Cache-Control": "no-store"}
    cookie = f"{COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Strict"
    return 303, {"Location": f"{base}/ui", "Set-Cookie": cookie, "Cache-Control": "no-store"}


def logout(base: str = "") -> tuple[int, dict[str, str]]:
    cookie = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    return 303, {"Location": f"{base}/ui/login", "Set-Cookie": cookie, "Cache-Control": "no-store"}
