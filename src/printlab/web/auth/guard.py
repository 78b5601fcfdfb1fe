"""Guards for staff pages: who is signed in (a workstation, a campus account, or both), and whether they
may see admin pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from printlab.clock import utcnow
from printlab.domain.campus import Role
from printlab.domain.sign_in import PIN_IDLE
from printlab.models import CampusPerson, Workstation
from printlab.services.lab import campus, pins, workstations
from printlab.services.lab.actors import Actor
from printlab.web.context import acting_as, db

F = TypeVar("F", bound=Callable[..., Any])


#: Keys a sign-in puts into the session: which workstation, and the epoch the session was issued in.
SESSION_KEYS = ("workstation_id", "workstation_epoch")
#: Keys a campus sign-in adds: which person, and their epoch.
PERSON_KEYS = ("person_id", "person_epoch")
#: Keys a PIN switch at a workstation adds: who, their PIN's epoch, and their last click (idle timeout).
PIN_KEYS = ("pin_staff", "pin_epoch", "pin_seen")


@dataclass(frozen=True)
class SignedIn:
    """Who is at the keyboard: a lab workstation, a campus account, or a campus account at a workstation."""

    workstation: Workstation | None
    person: CampusPerson | None
    #: A staff member switched in at the workstation with their PIN.
    pin_staff: str | None = None

    @property
    def who(self) -> str | None:
        """The staff name every action is recorded under, when a person signed in (campus or PIN);
        None when the workstation alone is signed in and each form says who acts."""
        if self.person is not None:
            return self.person.staff_name
        return self.pin_staff

    @property
    def is_admin(self) -> bool:
        if self.person is not None and self.person.role == Role.ADMIN.value:
            return True
        return bool(self.workstation and self.workstation.is_admin)

    @property
    def label(self) -> str:
        """How the header names who is signed in."""
        if self.person is not None:
            return self.person.name
        return self.workstation.id if self.workstation else ""

    def actor(self) -> Actor:
        """Who acts: the campus account's staff name when a person signed in, else "Acting as"."""
        workstation = self.workstation.id if self.workstation else None
        if self.person is not None:
            return Actor(self.person.staff_name, workstation, person=self.person.id)
        if self.pin_staff is not None:
            return Actor(self.pin_staff, workstation)
        return Actor(acting_as(), workstation)


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


def current_person() -> CampusPerson | None:
    """The person signed in with their campus account, re-checked once per request: signed out
    everywhere, refused, or no longer staff ends the session here."""
    if "campus_person" not in g:
        person_id = session.get("person_id")
        found = db().get(CampusPerson, person_id) if isinstance(person_id, int) else None
        if person_id is not None and not campus.session_is_current(db(), found, session.get("person_epoch")):
            for key in PERSON_KEYS:
                session.pop(key, None)
            found = None
        g.campus_person = found
    return g.campus_person


def current_pin_staff() -> str | None:
    """The person switched in with their PIN at this signed-in workstation, re-checked once per request:
    a PIN changed since, a person off the staff list, or PIN_IDLE without a click hands it back."""
    if "pin_staff" not in g:
        name = session.get("pin_staff")
        found = None
        if name is not None:
            seen = session.get("pin_seen")
            now = utcnow().timestamp()
            idle = not isinstance(seen, int | float) or now - seen > PIN_IDLE.total_seconds()
            if (
                current_workstation() is None
                or idle
                or not pins.switch_is_current(db(), name, session.get("pin_epoch"))
            ):
                for key in PIN_KEYS:
                    session.pop(key, None)
            else:
                found = name
                session["pin_seen"] = now
        g.pin_staff = found
    return g.pin_staff


def signed_in() -> SignedIn | None:
    """Who is signed in, or None."""
    workstation, person = current_workstation(), current_person()
    if workstation is None and person is None:
        return None
    return SignedIn(workstation, person, None if person is not None else current_pin_staff())


def current_actor() -> Actor:
    """The actor of a staff page's form (its "Acting as", or the campus account signed in)."""
    who = signed_in()
    return who.actor() if who else Actor(acting_as(), None)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if signed_in() is None:
            if request.path.startswith("/api/"):
                abort(401, description="Sign in on a lab workstation first.")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        who = signed_in()
        if who is None or not who.is_admin:
            abort(403, description="This page is for admin workstations. Ask the lab manager.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
