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
from printlab.services.jobs import workflow
from printlab.services.jobs.status_change import Expected
from printlab.services.lab.actors import Actor

Form = Mapping[str, Any]
Runner = Callable[[Session, Storage, Job, Actor, Expected, Form], Job]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    statuses: frozenset[Status]
    consequence: str
    run: Runner
    danger: bool = False
    email: str | None = None  # said in the dialog: "an email … will be sent"


def _approve(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    return workflow.approve(
        session, storage, job.id, actor=actor, expected=expected,
        weight_g=form.get("weight_g", ""), time_hours=form.get("time_hours", ""),
        authoritative_file=form.get("authoritative_file") or None, material=form.get("material") or None,
    )  # fmt: skip


def _reject(
    session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form
) -> Job:
    reasons = form.getlist("reasons") if hasattr(form, "getlist") else form.get("reasons", [])
    return workflow.reject(
        session, storage, job.id, actor=actor, expected=expected, reasons=list(reasons),
        other_reason=form.get("other_reason", ""),
    )  # fmt: skip


def _start(session: Session, storage: Storage, job: Job, actor: Actor, expected: Expected, form: Form) -> Job:
    return workflow.start_printing(
        session, storage, job.id, actor=actor, expected=expected, printer=form.get("printer") or None
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
    )  # fmt: skip


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


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("approve", "Approve and send quote", frozenset({Status.UPLOADED}),
                   "The job moves to Pending and its files to the Pending folder.", _approve,
                   email="a quote with a link to confirm it"),
        ActionSpec("reject", "Reject", frozenset({Status.UPLOADED}),
                   "The job is rejected; its files stay where they are until archived.", _reject, danger=True,
                   email="the reasons it was rejected"),
        ActionSpec("start_printing", "Start printing", frozenset({Status.READYTOPRINT}),
                   "The job moves to Printing on the printer you choose.", _start),
        ActionSpec("complete", "Mark complete", frozenset({Status.PRINTING}),
                   "The job moves to Completed and waits for pickup.", _complete,
                   email="that the print is ready for pickup"),
        ActionSpec("print_failed", "Print failed", frozenset({Status.PRINTING}),
                   "The job goes back to Ready to Print to be printed again, without a new quote.", _failed,
                   danger=True),
        ActionSpec("record_pickup", "Record pickup and payment", frozenset({Status.COMPLETED}),
                   "The job moves to Paid & Picked Up and the payment is recorded.", _pickup,
                   email="a receipt for the payment"),
        ActionSpec("revert", "Revert (mistake)", frozenset({Status.COMPLETED, Status.PAIDPICKEDUP}),
                   "Undoes the last step if it was made in the last 24 hours; a recorded payment is voided.",
                   _revert, danger=True),
        ActionSpec("resend_quote", "Resend quote", frozenset({Status.PENDING}),
                   "A fresh confirm link is made; the old link stops working.", _resend,
                   email="the quote again with a new confirm link"),
    )
}  # fmt: skip


def actions_for(status: Status) -> list[ActionSpec]:
    return [spec for spec in ACTIONS.values() if status in spec.statuses]
