"""The staff actions offered on a job page: what each is called, when it applies, what it will do, and
how its form becomes one workflow call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services.files.storage import Storage
from printlab.services.jobs import printing, refunds, student_actions, workflow
from printlab.services.jobs.status_change import Expected
from printlab.services.lab.actors import Actor

Form = Mapping[str, Any]
#: A runner returns the job, or a sentence for staff when the action's result needs one (a print sent
#: to a connected printer is on its way, not done).
Runner = Callable[[Session, Storage, Job, Actor, Expected, Form], Job | str]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    statuses: frozenset[Status]
    consequence: str
    run: Runner
    danger: bool = False
    #: The sentence about the student's email, with {address} for their address (None: no email).
    email: str | None = None

    @property
    def edits_quote(self) -> bool:
        """The dialog is the quote form (files, method, colour, printer, weight, time, message)."""
        return self.name in ("approve", "edit_quote")

    @property
    def takes_payment(self) -> bool:
        """The dialog asks how money moved (method, account code): the pickup, a refund."""
        return self.name in ("record_pickup", "refund")


def _quote_fields(form: Form) -> dict[str, Any]:
    """The approval form's fields as the workflow takes them (blank: keep the job's own value)."""
    return {
        "weight_g": form.get("weight_g", ""),
        "time_hours": form.get("time_hours", ""),
        "authoritative_file": form.get("authoritative_file") or None,
        "material": form.get("material") or None,
        "color": form.get("color") or None,
        "printer": form.get("printer") or None,
        "message": form.get("message", ""),
    }


def _approve(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.approve(session, storage, job.id, actor=actor, expected=expected, **_quote_fields(form))


def _edit_quote(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.edit_quote(
        session, storage, job.id, actor=actor, expected=expected, **_quote_fields(form)
    )


def _cancel(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.cancel(
        session, storage, job.id, actor=actor, expected=expected, reason=form.get("reason", "")
    )


def _confirm_for_student(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.confirm_for_student(
        session, storage, job.id, actor=actor, expected=expected, note=form.get("note", "")
    )


def _reject(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    reasons = form.getlist("reasons") if hasattr(form, "getlist") else form.get("reasons", [])
    return workflow.reject(
        session, storage, job.id, actor=actor, expected=expected, reasons=list(reasons),
        other_reason=form.get("other_reason", ""),
    )  # fmt: skip


def _request_changes(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    reasons = form.getlist("reasons") if hasattr(form, "getlist") else form.get("reasons", [])
    return student_actions.request_changes(
        session, storage, job.id, actor=actor, expected=expected, reasons=list(reasons),
        other_reason=form.get("other_reason", ""),
    )  # fmt: skip


def _start(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job | str:
    started = printing.start_printing(
        session, storage, job.id, actor=actor, expected=expected, printer=form.get("printer") or None
    )
    if started.sending_to is None:
        return started.job
    return (
        f"Sending the file to the {started.sending_to}: the job moves to Printing when the printer starts it."
    )


def _complete(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.complete(session, storage, job.id, actor=actor, expected=expected)


def _failed(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.print_failed(
        session, storage, job.id, actor=actor, expected=expected, reason=form.get("reason", "")
    )


def _pickup(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.record_pickup(
        session, storage, job.id, actor=actor, expected=expected,
        weighed_g=form.get("weighed_g", ""), payment_reference=form.get("payment_reference", ""),
        picked_up_by=form.get("picked_up_by", ""), keep_quote=form.get("keep_quote") == "on",
        method=form.get("method") or None, account_code=form.get("account_code", ""),
        discount_usd=form.get("discount_usd", ""), reason=form.get("reason", ""),
    )  # fmt: skip


def _refund(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    refunds.refund_or_correct(
        session, storage, job.id, actor=actor, expected=expected, kind=form.get("kind", ""),
        amount_usd=form.get("amount_usd", ""), method=form.get("method") or None,
        account_code=form.get("account_code", ""), reason=form.get("reason", ""),
        payment_reference=form.get("payment_reference", ""),
    )  # fmt: skip
    return job


def _revert(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.revert(
        session, storage, job.id, actor=actor, expected=expected, reason=form.get("reason", "")
    )


def _resend(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.resend_quote(session, storage, job.id, actor=actor, expected=expected)


_QUOTED = frozenset({Status.PENDING, Status.READYTOPRINT})

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("approve", "Approve and send quote", frozenset({Status.UPLOADED}),
                   "The job moves to Pending, and its files to the Pending folder, until the student "
                   "confirms the quote.", _approve,
                   email="An email goes to {address} with the quote and a link to confirm it."),
        ActionSpec("reject", "Reject", frozenset({Status.UPLOADED}),
                   "The job is rejected. Its files stay where they are until the job is archived.", _reject,
                   danger=True, email="An email goes to {address} with the reasons you choose."),
        ActionSpec("request_changes", "Needs changes", frozenset({Status.UPLOADED}),
                   "The job stays Uploaded, marked “waiting for the student”, until the student sends a "
                   "corrected file. If none arrives within the lab's time limit, the job is rejected "
                   "automatically.", _request_changes,
                   email="An email goes to {address} with what to change and a link to send the corrected file."),
        ActionSpec("start_printing", "Start printing", frozenset({Status.READYTOPRINT}),
                   "The job moves to Printing on the printer you choose. A printer connected to PrintLab "
                   "is sent the job's sliced file and starts it; the job moves when the printer has started.",
                   _start),
        ActionSpec("complete", "Mark complete", frozenset({Status.PRINTING}),
                   "The job moves to Completed and waits for pickup.", _complete,
                   email="An email goes to {address} saying the print is ready for pickup."),
        ActionSpec("print_failed", "Print failed", frozenset({Status.PRINTING}),
                   "The job goes back to Ready to Print to be printed again. The student keeps the same "
                   "quote and isn't asked to confirm again.", _failed, danger=True),
        ActionSpec("record_pickup", "Record pickup and payment", frozenset({Status.COMPLETED}),
                   "The job moves to Paid & Picked Up and the payment is recorded.", _pickup,
                   email="A receipt for the payment goes to {address}."),
        ActionSpec("refund", "Refund or correct the payment", refunds.REFUNDABLE,
                   "A new payment row is added with your reason; the payment recorded at pickup stays "
                   "as it was. The job's status doesn't change.", _refund,
                   email="A receipt for the refund or correction goes to {address}."),
        ActionSpec("revert", "Revert (mistake)", frozenset({Status.COMPLETED, Status.PAIDPICKEDUP}),
                   "This undoes the job's last step, if it was made in the last 24 hours. A recorded "
                   "payment is reversed by a new payment row.", _revert, danger=True),
        ActionSpec("resend_quote", "Resend quote", frozenset({Status.PENDING}),
                   "A new confirm link is made and the old one stops working.", _resend,
                   email="The quote goes to {address} again, with the new link."),
        ActionSpec("confirm_for_student", "Confirm for student", frozenset({Status.PENDING}),
                   "The job moves to Ready to Print. The history records that you confirmed the quote on "
                   "the student's behalf (for example, they agreed at the desk).", _confirm_for_student,
                   email="An email goes to {address} saying the print is in the queue."),
        ActionSpec("edit_quote", "Edit quote", _QUOTED,
                   "The job gets the new quote and waits in Pending until the student confirms it. "
                   "The old confirm link stops working.", _edit_quote,
                   email="An email goes to {address} with the new quote and a new link to confirm it."),
        ActionSpec("cancel", "Cancel job", _QUOTED,
                   "The job is cancelled and moves to Rejected. The student's confirm link stops working, "
                   "and the files stay where they are until the job is archived.", _cancel, danger=True,
                   email="An email goes to {address} saying the job was cancelled, with your reason."),
    )
}  # fmt: skip


def actions_for(status: Status) -> list[ActionSpec]:
    return [spec for spec in ACTIONS.values() if status in spec.statuses]


def email_sentence(spec: ActionSpec, address: str) -> str | None:
    """The dialog's sentence about the student's email, e.g. "An email goes to jo@example.edu with …"."""
    return spec.email.format(address=address or "the student") if spec.email else None
