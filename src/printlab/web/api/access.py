"""Who is calling the API: a personal token (`Authorization: Bearer plt_…`) or a signed-in lab
workstation's browser (the pages' own calls, read only); the token's scope, and its rate limit.

A token acts as the staff member it was made for, so what it changes is attributed to that person.
A browser session may read (the dashboard's list and the approval form's price use it) but not move
jobs through the API: a page's changes go through its forms, which carry "Acting as" and CSRF tokens.
"""

from __future__ import annotations

import logging
import time

from flask import g, request
from limits import RateLimitItemPerMinute

from printlab.models import ApiToken
from printlab.services.api import tokens
from printlab.services.lab.actors import Actor
from printlab.web.api.problems import problem
from printlab.web.auth.guard import signed_in
from printlab.web.context import db
from printlab.web.limits import limiter

log = logging.getLogger(__name__)

#: Operations anyone may read: the document and its reference page describe the API, not the lab.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document", "api.reference"})


class Refused(Exception):
    """A request the API answers with a problem before running the operation."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}

    def response(self):  # type: ignore[no-untyped-def]
        return problem(self.status, self.detail, headers=self.headers)


_CHALLENGE = 'Bearer realm="PrintLab API"'


def identify() -> None:
    """Before every operation: who calls (a token, or a signed-in browser's session), within the token's rate."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Refused(
                401, "Send the token as `Authorization: Bearer <token>`.", {"WWW-Authenticate": _CHALLENGE}
            )
        try:
            token = tokens.authenticate(db(), secret.strip())
        except tokens.TokenRefused as exc:
            raise Refused(
                401, str(exc), {"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'}
            ) from None
        g.api_token = token
        _within_rate(token)
    elif signed_in() is None:  # a workstation's or a campus account's browser session reads
        raise Refused(
            401,
            "Send a PrintLab API token as `Authorization: Bearer <token>`, or sign in on a lab workstation.",
            {"WWW-Authenticate": _CHALLENGE},
        )
    else:
        g.api_token = None
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        acting()  # a move's caller may make it, before its body is even read


def _within_rate(token: ApiToken) -> None:
    """Count the request against the token's own limit (429 with Retry-After past it)."""
    if not limiter.enabled:
        return
    item = RateLimitItemPerMinute(token.rate_per_minute)
    try:
        allowed = limiter.limiter.hit(item, "api-token", str(token.id))
    except Exception:  # the counters' storage failed mid-request: serve rather than refuse
        log.warning("API rate-limit storage failed; request not counted", exc_info=True)
        return
    if not allowed:
        reset = limiter.limiter.get_window_stats(item, "api-token", str(token.id)).reset_time
        wait = max(1, int(reset - time.time()) + 1)
        raise Refused(
            429,
            f"This token may make {token.rate_per_minute} requests a minute. Wait {wait} s, then try again.",
            {"Retry-After": str(wait)},
        )


def acting() -> Actor:
    """The actor of a change: the calling token's staff member (write scope only; 403 otherwise)."""
    token: ApiToken | None = g.get("api_token")
    if token is None:
        raise Refused(
            403,
            "Changing a job through the API needs an API token with the write scope; pages use their forms.",
        )
    if token.scope != "write":
        raise Refused(
            403, f"The token “{token.name}” may only read. Ask an admin for a token that may change jobs."
        )
    return tokens.actor_for(token)
