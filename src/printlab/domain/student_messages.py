"""What each status means to a student, in plain words; shared by the status page and the emails."""

from __future__ import annotations

from dataclasses import dataclass

from printlab.domain.printers import time_left_words
from printlab.domain.statuses import Status

#: Each status as a student would name it (staff keep the seed's labels, e.g. "Pending").
STUDENT_LABEL: dict[Status, str] = {
    Status.UPLOADED: "Waiting for review",
    Status.PENDING: "Quote ready — please confirm",
    Status.READYTOPRINT: "Queued for printing",
    Status.PRINTING: "Printing",
    Status.COMPLETED: "Ready for pickup",
    Status.PAIDPICKEDUP: "Picked up",
    Status.REJECTED: "Not printed",
    Status.ARCHIVED: "Closed",
}

#: One sentence per status, as a student would want it said.
STATUS_EXPLAINED: dict[Status, str] = {
    Status.UPLOADED: "We've received your model. Lab staff will check it and email you a quote.",
    Status.PENDING: "Your quote is ready. Confirm it with the link in the quote email so we can print it.",
    Status.READYTOPRINT: "You confirmed the quote. Your print is in the queue.",
    Status.PRINTING: "Your model is printing now.",
    Status.COMPLETED: "Your print is ready for pickup.",
    Status.PAIDPICKEDUP: "Picked up and paid. Thanks for printing with us!",
    Status.REJECTED: "We couldn't print this model as sent. The reasons are below.",
    Status.ARCHIVED: "This job is closed.",
}

#: The milestone a student sees when a job reaches a status.
MILESTONE: dict[Status, str] = {
    Status.UPLOADED: "Submitted",
    Status.PENDING: "Quote sent",
    Status.READYTOPRINT: "Quote confirmed — in the print queue",
    Status.PRINTING: "Printing started",
    Status.COMPLETED: "Ready for pickup",
    Status.PAIDPICKEDUP: "Picked up",
    Status.REJECTED: "Not accepted",
    Status.ARCHIVED: "Closed",
}

#: A job the lab stopped after quoting ("Cancel job") is Rejected too, but not because of the model.
CANCELLED_LABEL = "Cancelled by the lab"
CANCELLED_EXPLAINED = (
    "The lab cancelled this print. The reason is below; reply to our email with any questions."
)

#: The reasons a job withdrawn by the student carries, worded alike on every page, email and report.
CANCELLED_BY_STUDENT = "Cancelled by the student"
DECLINED_BY_STUDENT = "Quote declined by the student"
WITHDRAWN_EXPLAINED = {
    CANCELLED_BY_STUDENT: "You cancelled this request, so it won't be printed. You haven't been charged anything.",
    DECLINED_BY_STUDENT: "You declined the quote, so this won't be printed. You haven't been charged anything.",
}
#: A job staff asked to be fixed, while it waits for the student's corrected file.
WAITING_LABEL = "Waiting for your corrected file"
WAITING_EXPLAINED = (
    "Lab staff asked for a change to your model. Use the link in our email to send a corrected file."
)
#: Rejected because no corrected file came in time.
NO_ANSWER_EXPLAINED = (
    "We asked for a corrected file and didn't receive one in time, so this request was closed. "
    "You're welcome to send the model again."
)

#: Events that mean something to a student beyond "the status changed".
PRINT_FAILED_MILESTONE = "The print failed — we'll print it again at no extra cost"

#: The steps of a print, in order, as the student's progress list names them.
STEPS: tuple[tuple[Status, str], ...] = (
    (Status.UPLOADED, "Review"),
    (Status.PENDING, "Quote"),
    (Status.READYTOPRINT, "Print queue"),
    (Status.PRINTING, "Printing"),
    (Status.COMPLETED, "Ready for pickup"),
    (Status.PAIDPICKEDUP, "Picked up"),
)


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # "done", "current" or "upcoming"


def progress(
    status: Status,
    before_archive: Status | None = None,
    *,
    cancelled: bool = False,
    cancelled_label: str = CANCELLED_LABEL,
) -> list[Step]:
    """The student's progress steps with the job's own marked current.

    A rejected job stops after review ("Not printed"), a cancelled one after the quote; an archived
    job shows where it ended (`before_archive`, the status it was archived from; unknown: it shows
    as closed after review).
    """
    if cancelled and Status.REJECTED in (status, before_archive):
        return [Step(STEPS[0][1], "done"), Step(STEPS[1][1], "done"), Step(cancelled_label, "current")]
    if status == Status.ARCHIVED:
        if before_archive is None or before_archive == Status.ARCHIVED:
            return [Step(STEPS[0][1], "done"), Step(STUDENT_LABEL[Status.ARCHIVED], "current")]
        status = before_archive
    if status == Status.REJECTED:
        return [Step(STEPS[0][1], "done"), Step(STUDENT_LABEL[Status.REJECTED], "current")]
    current = [code for code, _label in STEPS].index(status)
    return [
        Step(label, "done" if number < current else "current" if number == current else "upcoming")
        for number, (_code, label) in enumerate(STEPS)
    ]


def next_step(
    status: Status, *, cancelled: bool = False, quote_expired: bool = False, to_pay: str | None = None
) -> str:
    """What the student does next about a job, in a few words ("Confirm your quote",
    "Ready for pickup — $4.20 to pay"); `to_pay` is the quoted price, as the student will pay it."""
    if status == Status.PENDING:
        return "Ask for a new quote link — the last one expired" if quote_expired else "Confirm your quote"
    if status == Status.COMPLETED:
        return f"Ready for pickup — {to_pay} to pay" if to_pay and to_pay != "$0.00" else "Ready for pickup"
    if status == Status.REJECTED:
        return "Nothing to do" if cancelled else "Fix the model and send it again"
    return {
        Status.UPLOADED: "Nothing to do — we'll email you a quote",
        Status.READYTOPRINT: "Nothing to do — it's in the print queue",
        Status.PRINTING: "Nothing to do — we'll email you when it's ready",
    }.get(status, "Nothing more to do")


def printing_label(seconds_left: int | None) -> str:
    """The status while it prints: "Printing — about 40 minutes left" when the printer says how long
    it has to go, "Printing" otherwise."""
    left = time_left_words(seconds_left)
    return f"{STUDENT_LABEL[Status.PRINTING]} — {left}" if left else STUDENT_LABEL[Status.PRINTING]


def staff_have_decided(status: Status) -> bool:
    """Once staff approved or rejected a model, their decision replaces the automatic check's notes."""
    return status != Status.UPLOADED


def masked_email(address: str) -> str:
    """Enough of an address for its owner to recognise it: 'jane.doe@uni.edu' → 'j***@uni.edu'."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "your email address"
    return f"{local[0]}***@{domain}"
