"""Which student this browser is signed in as: a random id in its own cookie, checked against the database.

The cookie holds only the session's random id (the table keeps its SHA-256), lasts as long as the
session (30 days) and is HttpOnly and SameSite=Lax, Secure when the lab is served over HTTPS.
"""

from __future__ import annotations

from flask import Response, g, request

from printlab.services.students import sign_in
from printlab.services.students.sign_in import SignedIn
from printlab.web.context import db, lab

COOKIE = "printlab_student"


def session_token() -> str | None:
    """The raw session id this browser sent, if any."""
    return request.cookies.get(COOKIE) or None


def student_email() -> str | None:
    """The address this browser is signed in as (None: not signed in, or its session ended); once per request."""
    if "student_email" not in g:
        token = session_token()
        g.student_email = sign_in.signed_in_as(db(), token) if token else None
    return g.student_email


def remember(response: Response, signed_in: SignedIn) -> Response:
    """Give the browser its session id, for as long as the session lasts."""
    response.set_cookie(
        COOKIE,
        signed_in.session_token,
        max_age=int(sign_in.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=lab().config.secure_cookies,
        path="/",
    )
    return response


def forget(response: Response) -> Response:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="Lax", secure=lab().config.secure_cookies
    )
    return response
