"""Every change of a job's status, one function each: the only code that assigns `job.status`.

Each function validates the move against the one transition table, locks the job row, refuses a
stale view or another staff member's dialog lock, changes the row, moves the files crash-safely,
writes the event(s) and outbox emails, and commits — or changes nothing at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain import charging
from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of
from printlab.domain.pricing import PricingError, quote_cost, round_print_hours, to_decimal
from printlab.domain.printers import filament_grams
from printlab.domain.quotes import SLICER_EXTENSIONS as SLICER_EXTENSIONS  # re-exported for the pages
from printlab.domain.quotes import is_printable, is_slicer_file, quote_problems
from printlab.domain.statuses import (
    REVERT_WINDOW_HOURS,
    TRANSITIONS,
    Action,
    Status,
    Transition,
    transition_for,
)
from printlab.models import Job, Payment, PaymentKind, PrintRun, PrintRunState
from printlab.services.errors import ConflictError, ValidationError, checked_text
from printlab.services.files.storage import Storage
from printlab.services.jobs import payments
from printlab.services.jobs.quote_links import (
    ConfirmOutcome,
    find_by_token,
    issue_token,
    quote_context,
    token_state,
)
from printlab.services.jobs.records import (
    add_event,
    base_name,
    entered_status_at,
    job_folder,
    lock_job,
    rewrite_sidecar,
)
from printlab.services.jobs.status_change import (
    MAX_REASON,
    Change,
    Expected,
    by_table,
    check_dialog_lock,
    check_expected,
    checked_reason,
    checked_reasons,
    next_version,
    run_transition,
)
from printlab.services.lab import account_codes
from printlab.services.lab.actors import Actor, require_active_staff
from printlab.services.lab.catalog import load_catalog
from printlab.services.mail import outbox
from printlab.services.webhooks import events as webhook_events

log = logging.getLogger(__name__)


def candidate_files(storage: Storage, job: Job) -> list[str]:
    """The job's printable files (models and slicer outputs, never an OBJ's .mtl or a sidecar), in
    the order the approval offers them: the newest slicer file first, then the student's model,
    then any other model staff added."""
    folder = job_folder(job)
    if folder is None:
        return []
    model = student_model_name(job)
    files = [p for p in storage.job_files(folder, base_name(job)) if is_printable(p.name)]
    slicer = sorted(
        (p for p in files if is_slicer_file(p.name, model)), key=lambda p: p.stat().st_mtime, reverse=True
    )
    rest = sorted((p for p in files if p not in slicer), key=lambda p: (p.name != model, p.name))
    return [p.name for p in (*slicer, *rest)]


def _job_file_names(storage: Storage, job: Job) -> set[str]:
    folder = job_folder(job)
    return {p.name for p in storage.job_files(folder, base_name(job))} if folder else set()


def student_model_name(job: Job) -> str:
    """The stored name of the file the student sent."""
    return f"{job.display_name}{extension_of(job.original_filename or '')}"


# -- the transitions of SPEC §4 ----------------------------------------------------------------


#: The longest message to the student a quote email carries.
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class QuoteInput:
    """What staff type into the approval (or quote edit) form; None keeps the job's own value."""

    weight_g: object
    time_hours: object
    authoritative_file: str | None = None
    material: str | None = None
    color: str | None = None
    printer: str | None = None
    message: str | None = None


def _write_quote(
    session: Session, storage: Storage, job: Job, quote: QuoteInput, catalog: Catalog, now: datetime
) -> Change:
    """Check a quote against the catalog and the job's files, then price it, put it on the job, issue a
    fresh confirm link (the old one stops working) and say what the quote email needs.

    Nothing is changed unless every field is valid: raises ValidationError with a sentence per field.
    """
    errors: dict[str, str] = {}
    method = quote.material or job.material or ""
    color = quote.color or job.color or ""
    printer = quote.printer or job.printer or ""
    errors.update(quote_problems(catalog, method, color, printer))
    grams = hours = cost = None
    try:
        grams = to_decimal(quote.weight_g, "Weight")
        if grams <= 0:
            raise PricingError("Weight must be more than 0 g")
        if "material" not in errors:
            cost = quote_cost(grams, method, catalog.rates, catalog.minimum_charge)
    except PricingError as exc:
        errors["weight_g"] = str(exc)
    try:
        hours = round_print_hours(quote.time_hours)
        if hours <= 0:
            raise PricingError("Print time must be more than 0 h")
    except PricingError as exc:
        errors["time_hours"] = str(exc)
    chosen = quote.authoritative_file
    if chosen is not None and chosen not in candidate_files(storage, job):
        errors["authoritative_file"] = (
            f"{chosen} can't be printed: choose the model or a slicer file."
            if chosen in _job_file_names(storage, job)
            else "Choose one of the job's files."
        )
    message = checked_text(quote.message, "message", "The message to the student", multiline=True).strip()
    if len(message) > MAX_MESSAGE:
        errors["message"] = f"Keep the message under {MAX_MESSAGE} characters."
    if errors:
        raise ValidationError(errors)
    if chosen is not None:
        job.file_path = f"{job_folder(job)}/{chosen}"
    job.material, job.color, job.printer = method, color, printer
    job.weight_g = float(grams)  # type: ignore[arg-type]
    job.time_hours = hours
    job.cost_usd = cost
    job.student_confirmed, job.student_confirmed_at = False, None
    token = issue_token(job, catalog, now)
    details: dict[str, Any] = {
        "weight_g": float(grams),  # type: ignore[arg-type]
        "time_hours": hours,
        "cost_usd": str(cost),
        "material": method,
        "color": color,
        "printer": printer,
        # the part after the student's name: no personal data in events
        "authoritative_file": PurePosixPath(job.file_path or "").name.removeprefix(job.display_name or ""),
    }
    if message:
        details["message"] = message
    context = quote_context(job, token)
    if message:
        context["message"] = message
    return Change(details=details, email_context=context)


def approve(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    weight_g: object,
    time_hours: object,
    authoritative_file: str | None = None,
    material: str | None = None,
    color: str | None = None,
    printer: str | None = None,
    message: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """UPLOADED → PENDING: price the job, issue a confirm link and email the quote.

    The method, colour and printer (the job's own unless given) must belong together in the
    catalog, and the authoritative file must be one of the job's printable files. An optional
    message to the student goes into the quote email and the event.

    Raises InvalidTransition, StaleJob, JobLocked, ValidationError.
    """
    catalog = load_catalog(session)
    now = now or utcnow()
    quote = QuoteInput(weight_g, time_hours, authoritative_file, material, color, printer, message)
    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.APPROVE),
        change=lambda job, _t: _write_quote(session, storage, job, quote, catalog, now),
    )


def edit_quote(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    weight_g: object,
    time_hours: object,
    authoritative_file: str | None = None,
    material: str | None = None,
    color: str | None = None,
    printer: str | None = None,
    message: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PENDING or READYTOPRINT → PENDING with a new quote, checked as at approval.

    The student must agree to the new price: the old confirm link stops working, a confirmation
    already given is withdrawn, and a new quote email with a fresh link is sent. The event is
    StaffApproved with `"edited": true` and the quote it replaces.

    Raises InvalidTransition, StaleJob, JobLocked, ValidationError.
    """
    catalog = load_catalog(session)
    now = now or utcnow()
    quote = QuoteInput(weight_g, time_hours, authoritative_file, material, color, printer, message)

    def change(job: Job, _t: Transition) -> Change:
        previous = {
            "cost_usd": str(job.cost_usd) if job.cost_usd is not None else None,
            "weight_g": job.weight_g,
            "time_hours": job.time_hours,
            "material": job.material,
            "color": job.color,
            "printer": job.printer,
            "student_confirmed": bool(job.student_confirmed),
        }
        result = _write_quote(session, storage, job, quote, catalog, now)
        result.details = {"edited": True, **result.details, "previous": previous}
        result.email_context = {**(result.email_context or {}), "edited": True}  # "a new quote" in the email
        return result

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.EDIT_QUOTE),
        change=change,
    )


def cancel(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PENDING or READYTOPRINT → REJECTED by staff, with a reason the student reads in the email.

    The confirm link stops working; the files stay where they are until archived. The event is
    StaffRejected with `"cancelled": true`.
    """
    text = checked_reason(reason, what="a reason for the student", label="The reason")

    def change(job: Job, _t: Transition) -> Change:
        job.confirm_token = None  # the quote link must not confirm a cancelled job
        job.reject_reasons = {"reasons": [], "other": text, "cancelled": True}
        return Change(details={"cancelled": True, "reason": text})

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.CANCEL),
        change=change,
    )


def confirm_for_student(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    note: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PENDING → READYTOPRINT: the student agreed to the quote in person and staff record it.

    The event is StudentConfirmed with `"by_staff"` naming the staff member; the student gets the
    usual confirmation email. The student's own link then answers "already confirmed".
    """
    text = checked_text(note, "note", "The note", multiline=True).strip()
    if len(text) > MAX_REASON:
        raise ValidationError({"note": f"Keep it under {MAX_REASON} characters."})
    now = now or utcnow()

    def change(job: Job, _t: Transition) -> Change:
        job.student_confirmed = True
        job.student_confirmed_at = now
        return Change(details={"by_staff": actor.staff, **({"note": text} if text else {})})

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.CONFIRM_FOR_STUDENT),
        change=change,
    )


def reject(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reasons: list[str] | None = None,
    other_reason: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """UPLOADED → REJECTED with at least one catalog reason or a free-text one. Emails the reasons."""
    catalog = load_catalog(session)

    def change(job: Job, _t: Transition) -> Change:
        given = checked_reasons(
            catalog,
            reasons,
            other_reason,
            "The reason in your own words",
            "Give at least one reason for the student.",
        )
        job.reject_reasons = given
        return Change(details=dict(given))

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.REJECT),
        change=change,
    )


@dataclass(frozen=True)
class ConfirmResult:
    outcome: ConfirmOutcome
    job: Job | None


def confirm(session: Session, storage: Storage, token: str, *, now: datetime | None = None) -> ConfirmResult:
    """PENDING → READYTOPRINT by the student's link. Never moves a job that is not PENDING.

    Returns the outcome instead of raising: already-confirmed, expired and invalid links are
    ordinary answers for the quote page.
    """
    now = now or utcnow()
    job = find_by_token(session, token)
    state = token_state(job, now)
    if state is not None or job is None:
        return ConfirmResult(state or ConfirmOutcome.INVALID, job)
    job_id, token_hash = job.id, job.confirm_token

    def rule(locked: Job) -> Transition:
        # Re-checked under the row lock: the link may have been replaced or used meanwhile.
        if locked.confirm_token != token_hash or token_state(locked, now) is not None:
            raise _TokenChanged
        return transition_for(Action.CONFIRM, locked.status_enum)

    def change(locked: Job, _t: Transition) -> Change:
        locked.student_confirmed = True
        locked.student_confirmed_at = now
        return Change(details={})

    try:
        confirmed = run_transition(
            session,
            storage,
            job_id,
            actor=Actor.student(),
            expected=None,
            now=now,
            rule=rule,
            change=change,
            needs_staff=False,
            honour_dialog_lock=False,
        )
    except _TokenChanged:
        session.expire_all()
        again = find_by_token(session, token)
        return ConfirmResult(token_state(again, now) or ConfirmOutcome.INVALID, again)
    return ConfirmResult(ConfirmOutcome.CONFIRMED, confirmed)


class _TokenChanged(Exception):
    pass


def force_confirm(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    send_email: bool = False,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PENDING → READYTOPRINT by an admin (the student agreed in person). Writes AdminOverride."""
    text = checked_reason(reason)

    def change(job: Job, _t: Transition) -> Change:
        job.student_confirmed = True
        job.student_confirmed_at = now or utcnow()
        return Change(
            details={"override": "force_confirm", "reason": text}, email="confirmed" if send_email else ""
        )

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.FORCE_CONFIRM),
        change=change,
        needs_admin=True,
    )


def start_printing(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    printer: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
    sent_run: int | None = None,
) -> Job:
    """READYTOPRINT → PRINTING on a printer of the job's method (it may differ from the request).

    `sent_run`: the worker reporting that a connected printer started the print staff sent it from
    PrintLab (`printing.py`). The move is the requester's (`actor`), its event says it was sent from
    PrintLab, the run becomes PRINTING in the same transaction, and a dialog someone opened since
    doesn't hold it up (the print is already running).
    """
    catalog = load_catalog(session)

    def change(job: Job, _t: Transition) -> Change:
        chosen = printer or job.printer
        found = catalog.printer(chosen or "")
        if found is None or found.method != job.material:
            raise ValidationError(
                {"printer": f"Choose a {job.material or ''} printer the lab has.".replace("  ", " ")}
            )
        requested = job.printer
        job.printer = found.name
        details: dict[str, Any] = {
            "printer": found.name,
            **({"requested": requested} if requested != found.name else {}),
        }
        if sent_run is not None:
            run = _locked_run(session, sent_run, PrintRunState.SENDING)
            run.state, run.started_at, run.message = PrintRunState.PRINTING, now, None
            details["sent"] = True
        return Change(details=details)

    now = now or utcnow()
    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.START_PRINTING),
        change=change,
        honour_dialog_lock=sent_run is None,
    )


def _locked_run(session: Session, run_id: int, state: str) -> PrintRun:
    """The print run, row-locked, in `state`; ConflictError when something closed it meanwhile."""
    run = session.scalars(
        select(PrintRun)
        .where(PrintRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if run is None or run.state != state:
        raise ConflictError("The print on the connected printer was closed by a staff move in the meantime.")
    return run


def complete(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PRINTING → COMPLETED; emails the student that it is ready for pickup."""
    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.COMPLETE),
        change=lambda job, t: Change(details={}),
    )


@dataclass(frozen=True)
class PrinterReport:
    """What a connected printer reported at the end of a print, where it reports it."""

    seconds_printed: int | None = None
    filament_mm: float | None = None
    filament_g: float | None = None


def complete_from_printer(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    run_id: int,
    report: PrinterReport,
    now: datetime | None = None,
) -> Job:
    """PRINTING → COMPLETED by PrintLab itself: the connected printer reported the print it was sent
    finished. The event names the printer and who started it; the student gets the ready-for-pickup
    email as with "Mark complete"; the run becomes FINISHED with the printer's figures, which the job's
    milestone keeps for the reports — all in one transaction."""
    now = now or utcnow()
    catalog = load_catalog(session)

    def change(job: Job, _t: Transition) -> Change:
        run = _locked_run(session, run_id, PrintRunState.PRINTING)
        run.state, run.ended_at = PrintRunState.FINISHED, now
        run.seconds_printed = report.seconds_printed
        grams = report.filament_g
        method = catalog.method(job.material or "")
        if grams is None and report.filament_mm is not None and method is not None:
            grams = filament_grams(report.filament_mm, method.density_g_cm3)
        run.filament_mm, run.filament_g = report.filament_mm, grams
        hours = round(report.seconds_printed / 3600, 3) if report.seconds_printed is not None else None
        grams = round(grams, 1) if grams is not None else None
        details: dict[str, Any] = {"printer": run.printer_name, "finished_on_printer": True}
        if run.requested_by:
            details["started_by"] = run.requested_by
        if hours is not None:
            details["printed_hours"] = hours
        if grams is not None:
            details["printed_g"] = grams
        return Change(details=details, printed=(hours, grams))

    return run_transition(
        session,
        storage,
        job_id,
        actor=Actor.system(),
        expected=Expected(status=Status.PRINTING),
        now=now,
        rule=by_table(Action.COMPLETE),
        change=change,
        needs_staff=False,
        honour_dialog_lock=False,
    )


def print_failed(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PRINTING → READYTOPRINT: the lab's failure, reprinted without a new quote."""
    text = checked_reason(reason, what="what went wrong", label="What went wrong")
    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.PRINT_FAILED),
        change=lambda job, t: Change(details={"reason": text}),
    )


def record_pickup(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    method: str | None = None,
    weighed_g: object = None,
    payment_reference: str | None = None,
    picked_up_by: str | None = None,
    keep_quote: bool = False,
    account_code: str | None = None,
    discount_usd: object = None,
    reason: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """COMPLETED → PAIDPICKEDUP: record how the student paid and what (the weighed price or the quote
    kept, less any discount; a waiver takes off the whole price).

    `method` is a domain.charging.METHODS code and is required; an internal transfer (ACCOUNT) names
    an active account code; a discount or waiver needs a reason. The payment row holds who collected
    it; the event holds only amounts, the method, the reference and the discount's reason.
    """
    catalog = load_catalog(session)
    now = now or utcnow()

    def change(job: Job, _t: Transition) -> Change:
        errors: dict[str, str] = {}
        reference = checked_text(payment_reference, "payment_reference", "Payment reference").strip()
        collector = (
            " ".join(checked_text(picked_up_by, "picked_up_by", "Picked up by").split()) or job.student_name
        )
        why = checked_text(reason, "reason", "The reason", multiline=True).strip()
        if len(reference) > 100:
            errors["payment_reference"] = "Keep the payment reference under 100 characters."
        if collector and len(collector) > 100:
            errors["picked_up_by"] = "Keep the name under 100 characters."
        if len(why) > MAX_REASON:
            errors["reason"] = f"Keep the reason under {MAX_REASON} characters."
        code = None
        if method not in charging.METHODS:
            errors["method"] = "Choose how the student paid."
        elif method == charging.ACCOUNT:
            try:
                code = account_codes.usable_code(session, account_code).code
            except ValidationError as exc:
                errors.update(exc.errors)
        grams: Decimal | None = None
        price = job.cost_usd
        if weighed_g not in (None, ""):
            try:
                grams = to_decimal(weighed_g, "Weighed grams")
                if grams <= 0:
                    raise PricingError("Weighed grams must be more than 0")
                if not keep_quote:
                    price = quote_cost(grams, job.material or "", catalog.rates, catalog.minimum_charge)
            except PricingError as exc:
                errors["weighed_g"] = str(exc)
        elif not keep_quote:
            errors["weighed_g"] = "Enter the weighed grams, or keep the quoted price."
        if price is None and "weighed_g" not in errors:
            errors["weighed_g"] = "This job has no quote; enter the weighed grams."
        charge = None
        if price is not None and "weighed_g" not in errors and "method" not in errors:
            try:
                charge = charging.pickup_charge(price, str(method), discount_usd)
            except charging.ChargingError as exc:
                errors[exc.field] = str(exc)
        if charge is not None and charge.discounted and not why:
            errors["reason"] = (
                "Give the reason for the waiver, e.g. the course that covers its students' prints."
                if method == charging.WAIVER
                else "Give the reason for the discount."
            )
        if errors:
            raise ValidationError(errors)
        assert charge is not None
        row = Payment(
            job_id=job.id,
            weighed_g=float(grams) if grams is not None else None,
            quoted_usd=job.cost_usd,
            charged_usd=charge.charged_usd,
            list_usd=charge.list_usd,
            discount_usd=charge.discount_usd if charge.discounted else None,
            kept_quote=keep_quote,
            payment_reference=reference or None,
            picked_up_by=collector,
            recorded_by=actor.staff or "",
            workstation_id=actor.workstation,
            recorded_at=now,
            method=method,
            account_code=code,
            kind=PaymentKind.CHARGE,
            reason=why or None,
        )
        session.add(row)
        session.flush()  # the row's id, for the receipt
        webhook_events.payment_recorded(
            session, job, row, balance_usd=lambda: _paid(session, job.id), now=now
        )
        payment = {
            "charged_usd": str(charge.charged_usd),
            "quoted_usd": str(job.cost_usd) if job.cost_usd is not None else None,
            "weighed_g": float(grams) if grams is not None else None,
            "kept_quote": keep_quote,
            "reference": reference or None,
            "method": method,
            **({"account_code": code} if code else {}),
            **(
                {"list_usd": str(charge.list_usd), "discount_usd": str(charge.discount_usd)}
                if charge.discounted
                else {}
            ),
            **({"reason": why} if why else {}),
        }
        return Change(
            details={"payment": payment},
            email_context={"charged_usd": str(charge.charged_usd), "payment_id": row.id},
        )

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.RECORD_PICKUP),
        change=change,
    )


def revert(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """Undo a mistaken Complete or Record pickup within 24 hours (a pickup's payment is reversed)."""
    text = checked_reason(reason)
    now = now or utcnow()

    def rule(job: Job) -> Transition:
        transition = transition_for(Action.REVERT, job.status_enum)
        since = entered_status_at(job)
        if since is None or now - since > timedelta(hours=REVERT_WINDOW_HOURS):
            raise ValidationError(
                {
                    "reason": f"Only a change made in the last {REVERT_WINDOW_HOURS} hours can be reverted; "
                    "ask an admin for an override."
                }
            )
        return transition

    def change(job: Job, _t: Transition) -> Change:
        if job.status == Status.PAIDPICKEDUP:
            _reverse_payments(session, job, actor, text, now)
        return Change(details={"revert": True, "reason": text})

    return run_transition(
        session, storage, job_id, actor=actor, expected=expected, now=now, rule=rule, change=change
    )


def _reverse_payments(session: Session, job: Job, actor: Actor, reason: str, now: datetime) -> None:
    """Bring a reverted pickup's balance back to zero with a REVERSAL row (payments are append-only)."""
    paid = payments.balance(session, job.id)
    if paid is None or paid.paid_usd == 0:
        return
    charge = payments.latest_charge(session, job.id)
    reversal = Payment(
        job_id=job.id,
        quoted_usd=job.cost_usd,
        charged_usd=-paid.paid_usd,
        kind=PaymentKind.REVERSAL,
        method=charge.method if charge else None,
        account_code=charge.account_code if charge else None,
        reason=reason,
        refund_of=charge.id if charge else None,
        recorded_by=actor.staff or "",
        workstation_id=actor.workstation,
        recorded_at=now,
    )
    session.add(reversal)
    webhook_events.payment_recorded(session, job, reversal, balance_usd=lambda: Decimal("0.00"), now=now)


def _paid(session: Session, job_id: str) -> Decimal:
    """What the job's payments add up to now (its balance)."""
    paid = payments.balance(session, job_id)
    return paid.paid_usd if paid is not None else Decimal("0.00")


def archive(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """PAIDPICKEDUP or REJECTED → ARCHIVED, by the retention sweep (no staff) or an admin."""
    by_staff = actor.staff is not None
    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.ARCHIVE),
        change=lambda job, t: Change(details={"reason": reason.strip()} if (reason or "").strip() else {}),
        needs_staff=by_staff,
        needs_admin=by_staff,
        honour_dialog_lock=by_staff,
    )


def override_status(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    target: Status | str,
    reason: str,
    send_email: bool = False,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """Admin: move a job to any other status, with a reason; optionally email the student.

    Moving to PENDING issues a fresh confirm link (the quote must exist); leaving PENDING retires
    the old one.
    """
    text = checked_reason(reason)
    try:
        goal = Status.parse(str(target))
    except ValueError as exc:
        raise ValidationError({"target": str(exc)}) from None
    catalog = load_catalog(session)
    now = now or utcnow()

    def rule(job: Job) -> Transition:
        if job.status_enum == goal:
            raise ValidationError({"target": f"The job is already {goal.label}."})
        natural = next((t for t in _natural_emails() if t.target == goal), None)
        return Transition(
            Action.OVERRIDE, job.status_enum, goal, "AdminOverride", natural.email if natural else None
        )

    def change(job: Job, transition: Transition) -> Change:
        context: dict[str, Any] = {}
        if goal == Status.PENDING:
            if job.cost_usd is None:
                raise ValidationError({"target": "The job has no quote yet; approve it instead."})
            job.student_confirmed = False
            job.student_confirmed_at = None
            context = quote_context(job, issue_token(job, catalog, now))
        elif job.status == Status.PENDING:
            job.confirm_token = None  # the old link must not confirm a job that left PENDING
        if goal == Status.READYTOPRINT and not job.student_confirmed:
            job.student_confirmed, job.student_confirmed_at = True, now
        return Change(
            details={"override": "change_status", "reason": text},
            email=(transition.email or "") if send_email else "",
            email_context=context,
            also_events=("JobArchived",) if goal == Status.ARCHIVED else (),
        )

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=rule,
        change=change,
        needs_admin=True,
        honour_dialog_lock=False,
    )


def _natural_emails() -> list[Transition]:
    return [t for t in TRANSITIONS if t.email]


# -- changes that keep the status --------------------------------------------------------------


def resend_quote(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Job:
    """Email a fresh confirm link for a PENDING job; the previous link stops working (QuoteResent).

    Staff call it with their name and the page they saw: a stale page (StaleJob) or another staff
    member's open dialog (JobLocked) refuses it. The student's expired-link page calls it as
    Actor.student(), which is limited to once an hour per job. The job's version moves, so a page
    still showing the old link is out of date.
    """
    catalog = load_catalog(session)
    now = now or utcnow()
    with write_transaction(session):
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        if job.status != Status.PENDING:
            raise ValidationError(
                {"job": f"Only a Pending job has a quote to resend; this one is {job.status_enum.label}."}
            )
        if actor.staff:
            require_active_staff(session, actor)
            check_dialog_lock(job, actor, now)
        elif job.confirmation_last_sent_at and now - job.confirmation_last_sent_at < timedelta(hours=1):
            raise ValidationError(
                {"job": "A new link was sent less than an hour ago. Please check your email."}
            )
        token = issue_token(job, catalog, now)
        outbox.enqueue(session, job, "quote", now, **quote_context(job, token))
        add_event(
            session,
            job,
            "QuoteResent",
            {},
            triggered_by=actor.staff,
            workstation_id=actor.workstation,
            now=now,
        )
        if actor.staff:
            job.last_updated_by = actor.staff
            if job.locked_by == actor.staff:  # sent from their dialog: like any action, it ends it
                job.locked_by, job.locked_until = None, None
        job.updated_at = next_version(job, now)
        rewrite_sidecar(storage, job)  # the new link's expiry and when it was sent are in the record
    return job


def expire_quotes(session: Session, storage: Storage, *, now: datetime | None = None) -> int:
    """Sweep: mark PENDING quotes whose link has expired, once each (event + notice). Idempotent.

    The job's version (`updated_at`) stays: nobody changed the job, so a dialog open on it is not
    stale. Its sidecar is written again, so it still describes the row (a row rebuilt from it would
    otherwise expire, and email the student, a second time) and the integrity check stays clean.
    """
    now = now or utcnow()
    with write_transaction(session):
        due = session.scalars(
            select(Job)
            .where(
                Job.status == Status.PENDING.value,
                Job.is_confirmation_expired.is_(False),
                Job.confirm_token_expires <= now,
            )
            .with_for_update(skip_locked=True)
        ).all()
        for job in due:
            job.is_confirmation_expired = True
            job.updated_at = Job.updated_at  # set to itself in SQL, so the column's onupdate stays out
            expired_at = job.confirm_token_expires.isoformat() if job.confirm_token_expires else None
            add_event(
                session,
                job,
                "ConfirmationExpired",
                {"expired_at": expired_at},
                triggered_by=None,
                workstation_id=None,
                now=now,
            )
            outbox.enqueue(session, job, "quote_expired", now)
        session.flush()
        for job in due:  # still under the rows' locks: no move of these jobs is half-done
            rewrite_sidecar(storage, job)
    return len(due)
