"""Campus sign-in's rules: what an ID token's claims say about a person, and the role their groups give."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from printlab.domain.text import is_clean

#: The longest name and email PrintLab keeps from a campus account (the staff table's name column).
MAX_NAME = 100
MAX_EMAIL = 254
MAX_GROUP = 200
#: The most groups kept from one sign-in (Entra ID sends at most 200 in a token before it overflows).
MAX_GROUPS = 500


class Role(enum.StrEnum):
    """What a campus account may do in PrintLab; the value is stored in `campus_person.role`."""

    NONE = "NONE"  # signed in, but nothing in PrintLab yet (waiting for an admin, or refused)
    STAFF = "STAFF"
    ADMIN = "ADMIN"

    @property
    def label(self) -> str:
        return {"NONE": "No access", "STAFF": "Staff", "ADMIN": "Admin"}[self.value]

    @property
    def rank(self) -> int:
        return {"NONE": 0, "STAFF": 1, "ADMIN": 2}[self.value]


class Approval(enum.StrEnum):
    """An admin's decision about a person; the value is stored in `campus_person.approval`."""

    PENDING = "PENDING"  # first seen, no group gives a role: an admin decides
    APPROVED = "APPROVED"
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class ClaimNames:
    """Which claims hold the name, email and groups (Entra ID, Google and Okta differ)."""

    name: str = "name"
    email: str = "email"
    groups: str = "groups"


@dataclass(frozen=True)
class CampusIdentity:
    """A person as the campus provider vouched for them in a checked ID token."""

    issuer: str
    subject: str
    name: str
    email: str | None
    groups: tuple[str, ...]


class ClaimsProblem(ValueError):
    """The token lacks what PrintLab needs to name the person; the message says what, in words."""


def identity_from_claims(issuer: str, claims: Mapping[str, Any], names: ClaimNames) -> CampusIdentity:
    """The person named by a validated token's claims. Raises ClaimsProblem."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255 or not is_clean(subject):
        raise ClaimsProblem("The campus sign-in didn't say who you are.")
    email = _text(claims.get(names.email), MAX_EMAIL)
    if email is not None and "@" not in email:
        email = None
    name = _text(claims.get(names.name), MAX_NAME)
    if name is None:  # some tenants leave the display name out; the address still names the person
        name = _text(email.split("@")[0], MAX_NAME) if email else None
    if name is None or len(name) < 2:
        raise ClaimsProblem(
            "The campus sign-in didn't give your name; ask the lab's IT contact to release it to PrintLab."
        )
    return CampusIdentity(issuer, subject, name, email, tuple(groups_from(claims.get(names.groups))))


def groups_from(value: Any) -> list[str]:
    """The groups claim as a clean list: a list of names or ids, or one name."""
    if isinstance(value, str):
        items: Iterable[Any] = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        return []
    seen: dict[str, None] = {}
    for item in items:
        text = _text(item, MAX_GROUP)
        if text is not None:
            seen.setdefault(text, None)
        if len(seen) >= MAX_GROUPS:
            break
    return list(seen)


def role_from_groups(groups: Iterable[str], mapping: Mapping[str, Role]) -> Role:
    """The highest role any of the person's groups is given; NONE when no group is mapped."""
    best = Role.NONE
    for group in groups:
        role = mapping.get(group)
        if role is not None and role.rank > best.rank:
            best = role
    return best


def group_problem(group: str) -> str | None:
    """Why `group` can't be mapped to a role, or None. Expects it stripped."""
    if not group:
        return "Type the group's name or id as the campus sign-in sends it."
    if len(group) > MAX_GROUP:
        return f"Keep the group under {MAX_GROUP} characters."
    if not is_clean(group):
        return "Type the group's name or id as the campus sign-in sends it, without special characters."
    return None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not text or len(text) > limit or not is_clean(text):
        return None
    return text
