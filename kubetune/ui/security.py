"""Who may use the dashboard, checked on every request before any route runs.

- A token, when set, is required on every request, static files included: as the cookie the
  server sets after `?token=...`, or as `Authorization: Bearer TOKEN` (scripts). A bind to
  anything but a loopback address always has one (generated when not given).
- On a loopback bind the Host header must name a loopback host, so a web page cannot reach the
  dashboard through DNS rebinding.
- State-changing requests (POST, PUT, PATCH, DELETE) need the `X-CSRF-Token` header (the page
  has it; scripts read it from `/api/info`), and a browser's Origin, when sent, must be ours.
- Every answer carries a strict Content-Security-Policy: the page loads only its own files.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

TOKEN_COOKIE = "kubetune-ui-token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
NEEDS_TOKEN = (
    "kubetune ui: this dashboard needs its token: open the address printed when it started "
    "(it ends in ?token=...), or send the header 'Authorization: Bearer TOKEN'\n"
)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random token of 32 URL-safe characters."""
    return secrets.token_urlsafe(24)


@dataclass
class Access:
    """The rules of one dashboard server."""

    token: str | None
    loopback_only: bool
    csrf_token: str = field(default_factory=new_token)

    @classmethod
    def for_bind(cls, host: str, token: str | None) -> Access:
        """The rules for a server bound to `host`: a non-loopback bind gets a token (`token`,
        or a new one); a loopback bind needs one only when `token` is given."""
        loopback = is_loopback(host)
        if not loopback and not token:
            token = new_token()
        return cls(token=token or None, loopback_only=loopback)

    def token_ok(self, given: str | None) -> bool:
        """Whether `given` is the access token (always, when no token is required)."""
        return self.token is None or (
            given is not None and hmac.compare_digest(given.encode(), self.token.encode())
        )

    def csrf_ok(self, given: str | None) -> bool:
        """Whether `given` is the CSRF token of this server."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header counts as none
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel else None


def _host_name(host_header: str) -> str:
    """The host of a Host header value, without the port."""
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0]


class AccessMiddleware:
    """ASGI middleware that applies an `Access` to every HTTP request."""

    def __init__(self, app: Any, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, text, extra = refusal
            await _plain(send, status, text, extra)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(
        self, scope: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """(status, text, headers) of the answer that refuses the request, or None."""
        access = self.access
        host = headers.get("host", "")
        if access.loopback_only and not is_loopback(_host_name(host)):
            return 403, f"kubetune ui: Host {host!r} is not this machine\n", []

        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if access.token is not None:
            bearer = headers.get("authorization", "")
            given = bearer[7:] if bearer.lower().startswith("bearer ") else None
            given = given or _cookie(headers, TOKEN_COOKIE)
            if not access.token_ok(given):
                if scope["method"] == "GET" and access.token_ok(query.get("token")):
                    # The address printed at start: keep the token in a cookie, drop it from the URL.
                    rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                    location = scope["path"] + (f"?{rest}" if rest else "")
                    cookie = f"{TOKEN_COOKIE}={access.token}; Path=/; HttpOnly; SameSite=Strict"
                    return (
                        303,
                        "",
                        [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
                    )
                return 401, NEEDS_TOKEN, [(b"www-authenticate", b'Bearer realm="kubetune ui"')]

        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return 403, f"kubetune ui: a request from {origin} may not change anything\n", []
            if not access.csrf_ok(headers.get(CSRF_HEADER)):
                return (
                    403,
                    (
                        "kubetune ui: missing or wrong X-CSRF-Token header (the page sends it; "
                        "scripts read csrf_token from GET /api/info)\n"
                    ),
                    [],
                )
        return None


async def _plain(send: Any, status: int, text: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
