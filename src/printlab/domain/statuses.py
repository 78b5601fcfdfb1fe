"""The eight job statuses with their three spellings, and the one table of allowed moves."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    """A job's status. The value is the UPPERCASE code stored in the database."""

    UPLOADED = "UPLOADED"
    PENDING = "PENDING"
    READYTOPRINT = "READYTOPRINT"
    PRINTING = "PRINTING"
    COMPLETED = "COMPLETED"
    PAIDPICKEDUP = "PAIDPICKEDUP"
    REJECTED = "REJECTED"
    ARCHIVED = "ARCHIVED"

    @property
    def code(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """Title Case wording for people (dashboard, emails, status page)."""
        return _LABELS[self]

    @property
    def folder(self) -> str | None:
        """PascalCase storage folder, or None when the files stay where they are (REJECTED)."""
        return _FOLDERS[self]

    @classmethod
    def parse(cls, value: str) -> Status:
        """Accept a code (any case); raise ValueError with the valid codes otherwise."""
        try:
            return cls(value.strip().upper())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown status {value!r}; expected one of {valid}") from None


_LABELS = {
    Status.UPLOADED: "Uploaded",
    Status.PENDING: "Pending",
    Status.READYTOPRINT: "Ready to Print",
    Status.PRINTING: "Printing",
    Status.COMPLETED: "Completed",
    Status.PAIDPICKEDUP: "Paid & Picked Up",
    Status.REJECTED: "Rejected",
    Status.ARCHIVED: "Archived",
}

# REJECTED has no folder of its own: the seed says rejected files stay put until archived.
_FOLDERS: dict[Status, str | None] = {
    Status.UPLOADED: "Uploaded",
    Status.PENDING: "Pending",
    Status.READYTOPRINT: "ReadyToPrint",
    Status.PRINTING: "Printing",
    Status.COMPLETED: "Completed",
    Status.PAIDPICKEDUP: "PaidPickedUp",
    Status.REJECTED: None,
    Status.ARCHIVED: "Archived",
}

#: Every folder that exists under the storage root, in workflow order.
STATUS_FOLDERS: tuple[str, ...] = tuple(f for f in _FOLDERS.values() if f is not None)


class Action(enum.StrEnum):
    """A named way of moving a job; each maps to one function in services.workflow."""

    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    CONFIRM = "confirm"
    FORCE_CONFIRM = "force_confirm"
    START_PRINTING = "start_printing"
    COMPLETE = "complete"
    PRINT_FAILED = "print_failed"
    RECORD_PICKUP = "record_pickup"
    REVERT = "revert"
    ARCHIVE = "archive"
    OVERRIDE = "override"
    CANCEL = "cancel"
    EDIT_QUOTE = "edit_quote"
    CONFIRM_FOR_STUDENT = "confirm_for_student"
    # The student's own moves (issue 13), authorised by their status or quote link, and the
    # "needs changes" round trip: staff ask for a corrected file, the student sends it, or the
    # sweep closes the request when no answer came.
    STUDENT_CANCEL = "student_cancel"
    DECLINE_QUOTE = "decline_quote"
    REQUEST_CHANGES = "request_changes"
    REPLACE_FILE = "replace_file"
    NO_CORRECTED_FILE = "no_corrected_file"


@dataclass(frozen=True)
class Transition:
    action: Action
    source: Status | None
    target: Status
    event_type: str
    email: str | None  # outbox template written by the move, if any


# SPEC §4, one row per allowed move. Admin override (any → any) is not listed: it is the escape
# hatch, checked separately.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.SUBMIT, None, Status.UPLOADED, "JobCreated", "receipt"),
    Transition(Action.APPROVE, Status.UPLOADED, Status.PENDING, "StaffApproved", "quote"),
    Transition(Action.REJECT, Status.UPLOADED, Status.REJECTED, "StaffRejected", "rejected"),
    Transition(Action.CONFIRM, Status.PENDING, Status.READYTOPRINT, "StudentConfirmed", "confirmed"),
    Transition(Action.FORCE_CONFIRM, Status.PENDING, Status.READYTOPRINT, "AdminOverride", None),
    Transition(Action.START_PRINTING, Status.READYTOPRINT, Status.PRINTING, "StatusChanged", None),
    Transition(Action.COMPLETE, Status.PRINTING, Status.COMPLETED, "StatusChanged", "ready_for_pickup"),
    Transition(Action.PRINT_FAILED, Status.PRINTING, Status.READYTOPRINT, "PrintFailed", None),
    Transition(
        Action.RECORD_PICKUP, Status.COMPLETED, Status.PAIDPICKEDUP, "StatusChanged", "payment_receipt"
    ),
    Transition(Action.REVERT, Status.COMPLETED, Status.PRINTING, "StatusChanged", None),
    Transition(Action.REVERT, Status.PAIDPICKEDUP, Status.COMPLETED, "StatusChanged", None),
    Transition(Action.ARCHIVE, Status.PAIDPICKEDUP, Status.ARCHIVED, "JobArchived", None),
    Transition(Action.ARCHIVE, Status.REJECTED, Status.ARCHIVED, "JobArchived", None),
    # Staff actions that once needed an admin override (issue 11, item 6). They use the schema's own
    # event types, with details that say what happened: a cancellation is StaffRejected
    # {"cancelled": true}, a new quote StaffApproved {"edited": true}, a confirmation the student
    # gave at the desk StudentConfirmed {"by_staff": name}.
    Transition(Action.CANCEL, Status.PENDING, Status.REJECTED, "StaffRejected", "rejected"),
    Transition(Action.CANCEL, Status.READYTOPRINT, Status.REJECTED, "StaffRejected", "rejected"),
    Transition(Action.EDIT_QUOTE, Status.PENDING, Status.PENDING, "StaffApproved", "quote"),
    Transition(Action.EDIT_QUOTE, Status.READYTOPRINT, Status.PENDING, "StaffApproved", "quote"),
    Transition(
        Action.CONFIRM_FOR_STUDENT, Status.PENDING, Status.READYTOPRINT, "StudentConfirmed", "confirmed"
    ),
    # Issue 13. A student is not staff, so their moves have event types of their own (no
    # `triggered_by`; details say `"by": "student"`): the reports count both as cancellations.
    Transition(Action.STUDENT_CANCEL, Status.UPLOADED, Status.REJECTED, "StudentCancelled", "withdrawn"),
    Transition(Action.STUDENT_CANCEL, Status.PENDING, Status.REJECTED, "StudentCancelled", "withdrawn"),
    Transition(Action.DECLINE_QUOTE, Status.PENDING, Status.REJECTED, "QuoteDeclined", "withdrawn"),
    # "Needs changes" keeps the job Uploaded; the waiting is a row of `job_change_request`.
    Transition(
        Action.REQUEST_CHANGES, Status.UPLOADED, Status.UPLOADED, "ChangesRequested", "changes_needed"
    ),
    Transition(Action.REPLACE_FILE, Status.UPLOADED, Status.UPLOADED, "FileReplaced", "receipt"),
    # No corrected file within the catalog's days: a rejection by the sweep (no staff name), worded
    # as such in the email.
    Transition(
        Action.NO_CORRECTED_FILE, Status.UPLOADED, Status.REJECTED, "StaffRejected", "changes_expired"
    ),
)

#: Moves no staff member makes from a job page, left out of the "allowed now" hint staff read (the
#: student's own moves and the sweep's).
NOT_STAFF_ACTIONS = frozenset(
    {Action.STUDENT_CANCEL, Action.DECLINE_QUOTE, Action.REPLACE_FILE, Action.NO_CORRECTED_FILE}
)

_BY_ACTION_SOURCE = {(t.action, t.source): t for t in TRANSITIONS}


class InvalidTransition(Exception):
    """The move is not in the table for the job's current status."""

    def __init__(self, action: Action, current: Status):
        self.action = action
        self.current = current
        allowed = [a for a in allowed_actions(current) if a not in NOT_STAFF_ACTIONS]
        hint = ", ".join(a.value.replace("_", " ") for a in allowed) or "nothing"
        super().__init__(
            f"Can't {action.value.replace('_', ' ')} a job that is {current.label} (allowed now: {hint})."
        )


def transition_for(action: Action, current: Status) -> Transition:
    """Return the table row for doing `action` to a job in `current`, or raise InvalidTransition."""
    try:
        return _BY_ACTION_SOURCE[(action, current)]
    except KeyError:
        raise InvalidTransition(action, current) from None


def allowed_actions(current: Status) -> list[Action]:
    """Actions the table allows from `current`, in table order (the override is always possible)."""
    return [t.action for t in TRANSITIONS if t.source == current]


#: Statuses in which a job still blocks a duplicate upload of the same file by the same student.
DUPLICATE_BLOCKING = frozenset({Status.UPLOADED, Status.PENDING, Status.READYTOPRINT})

#: Work queues the dashboard sorts oldest first.
WORK_QUEUES = frozenset(
    {Status.UPLOADED, Status.PENDING, Status.READYTOPRINT, Status.PRINTING, Status.COMPLETED}
)

#: Statuses in which staff may still add sliced or project files to a job (a closed job takes none).
TAKES_FILES = WORK_QUEUES

#: How long after a move staff may still revert it as a mistake.
REVERT_WINDOW_HOURS = 24
