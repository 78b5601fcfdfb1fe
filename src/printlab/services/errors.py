"""Typed errors the services raise; each carries a message a person can act on."""

from __future__ import annotations

from datetime import datetime

from printlab.clock import to_lab_time
from printlab.domain.statuses import InvalidTransition
from printlab.domain.text import TextError, clean_text

__all__ = [
    "ConflictError",
    "InvalidTransition",
    "JobLocked",
    "NotAllowed",
    "NotFound",
    "ServiceError",
    "StaleJob",
    "ValidationError",
]


class ServiceError(Exception):
    """Base of every error a page or command turns into a message."""


class NotFound(ServiceError):
    pass


class NotAllowed(ServiceError):
    """The workstation or person may not do this (e.g. an admin action from a staff workstation)."""


class ValidationError(ServiceError):
    """Input that can't be used; `errors` maps a field name to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


class ConflictError(ServiceError):
    """Someone else got there first; the caller should reload and look again."""


class StaleJob(ConflictError):
    def __init__(
        self, changed_by: str | None, changed_at: datetime | None, status_label: str, *, zone: str = "UTC"
    ):
        """`changed_at` is naive UTC, as stored; the message gives it in the lab's time `zone`."""
        self.changed_by = changed_by
        self.changed_at = changed_at
        who = changed_by or "someone else"
        when = f" at {to_lab_time(changed_at, zone):%Y-%m-%d %H:%M %Z}" if changed_at else ""
        super().__init__(
            f"This job was changed by {who}{when} and is now {status_label}. Reload and try again."
        )


class JobLocked(ConflictError):
    def __init__(self, locked_by: str, locked_until: datetime):
        self.locked_by = locked_by
        self.locked_until = locked_until
        super().__init__(f"This job is being edited by {locked_by}. Try again when they are done.")


def checked_text(value: object, field: str, label: str, *, multiline: bool = False) -> str:
    """`value` through the one text rule (domain/text.py); ValidationError({field: message}) if refused."""
    try:
        return clean_text(value, label, multiline=multiline)
    except TextError as exc:
        raise ValidationError({field: str(exc)}) from None
