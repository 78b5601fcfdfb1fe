"""Campus sign-in's people: recorded at each sign-in, given a role by their groups or an admin, signed out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.campus import Approval, CampusIdentity, Role, group_problem, role_from_groups
from printlab.models import CampusGroupRole, CampusPerson, Staff
from printlab.services.errors import NotFound, ValidationError
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console
from printlab.services.lab.staff import MAX_NAME


def group_roles(session: Session) -> dict[str, Role]:
    """Every campus group an admin gave a role."""
    return {row.group: Role(row.role) for row in session.scalars(select(CampusGroupRole))}


def list_group_roles(session: Session) -> list[CampusGroupRole]:
    return list(session.scalars(select(CampusGroupRole).order_by(CampusGroupRole.group)))


def list_people(session: Session) -> list[CampusPerson]:
    """Everyone who signed in: those waiting for an admin first, then by name."""
    waiting_first = CampusPerson.approval != Approval.PENDING.value
    return list(session.scalars(select(CampusPerson).order_by(waiting_first, CampusPerson.name)))


def get_person(session: Session, person_id: int | str) -> CampusPerson:
    text = str(person_id)
    found = (
        session.get(CampusPerson, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else None
    )
    if found is None:
        raise NotFound("No such person.")
    return found


def may_work(person: CampusPerson | None, session: Session) -> bool:
    """Whether the person may use the staff pages now: approved, with a role, under an active staff name."""
    if person is None or person.approval != Approval.APPROVED.value or person.role == Role.NONE.value:
        return False
    staff = session.get(Staff, person.staff_name) if person.staff_name else None
    return bool(staff and staff.is_active)


def session_is_current(session: Session, person: CampusPerson | None, epoch: object) -> bool:
    """Whether a session issued at `epoch` still lets the person in (not signed out everywhere, still allowed)."""
    return (
        isinstance(epoch, int)
        and person is not None
        and epoch == person.session_epoch
        and may_work(person, session)
    )


def record_sign_in(
    session: Session, identity: CampusIdentity, *, now: datetime | None = None
) -> CampusPerson:
    """Note a checked sign-in: the person's name, email and groups as the provider sent them now, and
    their role — from their groups unless an admin set it by hand. A first sign-in that no group gives
    a role waits for an admin. Logged when someone is first seen or their groups change their role."""
    now = now or utcnow()
    with write_transaction(session):
        person = session.scalars(
            select(CampusPerson)
            .where(CampusPerson.issuer == identity.issuer, CampusPerson.subject == identity.subject)
            .with_for_update()
        ).first()
        if person is None:
            person = CampusPerson(
                issuer=identity.issuer,
                subject=identity.subject,
                name=identity.name,
                role=Role.NONE.value,
                approval=Approval.PENDING.value,
                role_set_by_admin=False,
                first_seen_at=now,
                session_epoch=0,
            )
            session.add(person)
            session.flush()
            admin_log.record(
                session, "CampusPersonSeen", {"person": identity.name, "email": identity.email},
                staff=None, workstation=None, now=now,
            )  # fmt: skip
        person.name, person.email, person.groups = identity.name, identity.email, list(identity.groups)
        person.last_sign_in_at = now
        if not person.role_set_by_admin and person.approval != Approval.REFUSED.value:
            from_groups = role_from_groups(identity.groups, group_roles(session))
            if from_groups.value != person.role:
                before = Role(person.role)
                person.role = from_groups.value
                person.approval = (
                    Approval.APPROVED if from_groups is not Role.NONE else Approval.PENDING
                ).value
                admin_log.record(
                    session, "CampusRoleFromGroups",
                    {"person": person.name, "from": before.value, "to": from_groups.value},
                    staff=None, workstation=None, now=now,
                )  # fmt: skip
        if person.role != Role.NONE.value and person.staff_name is None:
            person.staff_name = _staff_name_for(session, person, now)
    return person


def _staff_name_for(session: Session, person: CampusPerson, now: datetime) -> str:
    """The staff record the person acts under: the one with their name if no other campus account has it
    (labs already keep their staff list), else a new one told apart by the email address."""
    candidates = [person.name]
    if person.email:
        candidates.append(f"{person.name} ({person.email})"[:MAX_NAME])
    candidates.append(f"{person.name} ({person.id})"[:MAX_NAME])
    for name in candidates:
        taken = session.scalar(
            select(func.count())
            .select_from(CampusPerson)
            .where(CampusPerson.staff_name == name, CampusPerson.id != person.id)
        )
        if taken:
            continue
        if session.get(Staff, name) is None:
            session.add(Staff(name=name, is_active=True, added_at=now))
            session.flush()
            admin_log.record(
                session, "StaffAdded", {"name": name, "campus": True}, staff=None, workstation=None, now=now
            )
        return name
    raise ValidationError(
        {"person": "This person's name can't be told apart from other staff; ask an admin."}
    )


def approve(
    session: Session, person_id: int | str, role: str, *, by: Actor | None = None, now: datetime | None = None
) -> CampusPerson:
    """An admin lets the person in as staff or admin (from then on their groups don't change it). Logged."""
    try:
        chosen = Role(role)
    except ValueError:
        chosen = Role.NONE
    if chosen is Role.NONE:
        raise ValidationError({"role": "Choose staff or admin."})
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        person = get_person(session, person_id)
        person.role, person.approval, person.role_set_by_admin = chosen.value, Approval.APPROVED.value, True
        if person.staff_name is None:
            person.staff_name = _staff_name_for(session, person, now)
        admin_log.record(
            session, "CampusPersonApproved", {"person": person.name, "role": chosen.value},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip
    return person


def refuse(
    session: Session, person_id: int | str, *, by: Actor | None = None, now: datetime | None = None
) -> CampusPerson:
    """An admin removes the person's access (their sessions end now; their groups no longer give it). Logged."""
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        person = get_person(session, person_id)
        if by.person is not None and by.person == person.id:
            raise ValidationError({"person": "You can't remove your own access; ask another admin."})
        person.role, person.approval, person.role_set_by_admin = Role.NONE.value, Approval.REFUSED.value, True
        person.session_epoch += 1
        admin_log.record(
            session, "CampusPersonRefused", {"person": person.name},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip
    return person


def set_group_role(
    session: Session, group: str, role: str, *, by: Actor | None = None, now: datetime | None = None
) -> None:
    """Give a campus group a role ("STAFF", "ADMIN"), or take it away (""). Logged. People's roles follow
    at their next sign-in."""
    group = " ".join((group or "").split())
    problem = group_problem(group)
    if problem:
        raise ValidationError({"group": problem})
    chosen: Role | None
    try:
        chosen = Role(role) if role else None
    except ValueError:
        chosen = Role.NONE
    if chosen is Role.NONE:
        raise ValidationError({"role": "Choose staff, admin, or no role."})
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        row = session.get(CampusGroupRole, group, with_for_update=True)
        if chosen is None:
            if row is None:
                raise ValidationError({"group": f"{group} has no role to take away."})
            session.delete(row)
        elif row is None:
            session.add(CampusGroupRole(group=group, role=chosen.value, added_at=now, added_by=by.staff))
        else:
            row.role = chosen.value
        admin_log.record(
            session, "CampusGroupRoleSet", {"group": group, "role": chosen.value if chosen else None},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip


def end_sessions(session: Session, person_id: int, epoch: int | None) -> None:
    """Sign-out: end every session of the person, if `epoch` (the signing-out session's) is current."""
    with write_transaction(session):
        person = session.get(CampusPerson, person_id, with_for_update=True)
        if person is not None and epoch is not None and person.session_epoch == epoch:
            person.session_epoch += 1
