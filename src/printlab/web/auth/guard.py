"""Guards for staff pages: who is signed in, and whether this workstation may see admin pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from printlab.models import Workstation
from printlab.services.lab import workstations
from printlab.web.context import db

F = TypeVar("F", bound=Callable[..., Any])


#: Keys a sign-in puts into the session: which workstation, and the epoch the session was issued in.
SESSION_KEYS = ("workstation_id", "workstation_epoch")


def current_workstation() -> Workstation | None:
    """The signed-in workstation, re-checked against the database once per request.

    A session that has ended (signed out, password reset, workstation deactivated) is forgotten here,
    even when its cookie was saved and sent again.
    """
    if "workstation" not in g:
        workstation_id = session.get("workstation_id")
        found = db().get(Workstation, workstation_id) if workstation_id else None
        if workstation_id and not workstations.session_is_current(found, session.get("workstation_epoch")):
            for key in SESSION_KEYS:
                session.pop(key, None)
            found = None
        g.workstation = found
    return g.workstation


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_workstation() is None:
            if request.path.startswith("/api/"):
                abort(401, description="Sign in on a lab workstation first.")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        workstation = current_workstation()
        if workstation is None or not workstation.is_admin:
            abort(403, description="This page is for admin workstations. Ask the lab manager.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
