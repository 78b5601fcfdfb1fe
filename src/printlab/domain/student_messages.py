"""What each status means to a student, in plain words; shared by the status page and the emails."""

from __future__ import annotations

from printlab.domain.statuses import Status

#: One sentence per status, as a student would want it said.
STATUS_EXPLAINED: dict[Status, str] = {
    Status.UPLOADED: "We've received your model. Lab staff will check it and email you a quote.",
    Status.PENDING: "Your quote is ready. Confirm it from the email we sent so we can print it.",
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

#: Events that mean something to a student beyond "the status changed".
PRINT_FAILED_MILESTONE = "The print failed — we'll print it again at no extra cost"
