"""Who acts: a staff name picked in "Acting as" and the workstation it was picked on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from printlab.domain.text import is_clean
from printlab.models import CampusPerson, Staff, Workstation
from printlab.services.errors import NotAllowed, ValidationError

#: Workstation id used for actions typed at the server's console (`printlab` commands). Whoever can
#: run them already holds the database, so the console counts as an admin workstation.
CONSOLE = "console"


@dataclass(frozen=True)
class Actor:
    """A staff member at a workstation. Students and scheduled sweeps act with staff=None; their
    events have no `triggered_by`."""

    staff: str | None
    workstation: str | None
    #: The campus account signed in (campus_person.id), when the person signed in with it.
    person: int | None = None

    @classmethod
    def student(cls) -> Actor:
        return cls(None, None)

    @classmethod
    def system(cls) -> Actor:
        return cls(None, None)


CONSOLE_ACTOR = Actor(None, CONSOLE)


@dataclass(frozen=True)
class Student:
    """A student acting on their own job, and what shows it is theirs.

    Students have no account: today a job's status link (or its quote link) names the one job it
    opens (`job_id`); a signed-in session would name the student's email address instead. The
    workflow asks `may_act_on` under the job's row lock and records `via` in the event's details.
    """

    via: str
    job_id: str | None = None
    email: str | None = None

    @classmethod
    def by_status_link(cls, job_id: str) -> Student:
        return cls("status_link", job_id=job_id)

    @classmethod
    def by_quote_link(cls, job_id: str) -> Student:
        return cls("quote_link", job_id=job_id)

    @classmethod
    def by_session(cls, email: str) -> Student:
        return cls("session", email=email)

    def may_act_on(self, job_id: str, student_email: str | None) -> bool:
        if self.job_id is not None:
            return self.job_id == job_id
        if self.email and student_email:
            return self.email.strip().lower() == student_email.strip().lower()
        return False

    @property
    def actor(self) -> Actor:
        """Events a student causes carry no staff name (`triggered_by` names staff only)."""
        return Actor.student()

    @property
    def details(self) -> dict[str, str]:
        """What an event records about who acted (never the address itself)."""
        return {"by": "student", "via": self.via}


def require_active_staff(session: Session, actor: Actor) -> None:
    """Raise ValidationError unless the actor names an active staff member."""
    if not actor.staff:
        raise ValidationError({"acting_as": "Choose who is acting."})
    staff = session.get(Staff, actor.staff) if is_clean(actor.staff) else None
    if staff is None or not staff.is_active:
        raise ValidationError({"acting_as": f"{actor.staff} is not on the active staff list."})


def is_admin_workstation(session: Session, workstation_id: str | None) -> bool:
    if workstation_id == CONSOLE:
        return True
    workstation = session.get(Workstation, workstation_id) if workstation_id else None
    return bool(workstation and workstation.is_active and workstation.is_admin)


def is_admin(session: Session, actor: Actor) -> bool:
    """At an admin workstation (or the console), or signed in with a campus account that is an admin."""
    if actor.person is not None:
        person = session.get(CampusPerson, actor.person)
        if (
            person is not None
            and (person.role, person.approval) == ("ADMIN", "APPROVED")
            and person.staff_name == actor.staff
        ):
            return True
    return is_admin_workstation(session, actor.workstation)


def require_admin(session: Session, actor: Actor) -> None:
    """Raise NotAllowed unless the actor is at an admin workstation (or the server console), or is a
    campus account an admin made an admin."""
    if not is_admin(session, actor):
        raise NotAllowed("Only an admin workstation can do this.")


def admin_or_console(session: Session, by: Actor | None) -> Actor:
    """The actor of an admin change: from a page, an active staff member at an admin workstation
    (else ValidationError / NotAllowed); None is the server console, which is trusted."""
    if by is None:
        return CONSOLE_ACTOR
    require_active_staff(session, by)
    require_admin(session, by)
    return by
