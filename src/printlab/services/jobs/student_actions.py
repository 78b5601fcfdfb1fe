"""The student's own moves and the "needs changes" round trip, each one status change through the engine.

A student cancels a request (Uploaded or Pending), declines a quote, or sends a corrected file that
staff asked for; staff ask for that file instead of rejecting; the sweep rejects a job whose
student never answered. Every one goes through `status_change.run_transition` (row lock, stale
view, dialog lock, event, email, sidecar) like the staff transitions in `workflow.py`.

Students have no account: a `Student` value says how they showed the job is theirs (today its
status link or quote link; a signed-in session later) and is checked under the row lock. Their
events carry no staff name (`triggered_by` names staff only); the details say `"by": "student"`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.naming import extension_of
from printlab.domain.statuses import Action, InvalidTransition, Transition, transition_for
from printlab.domain.student_messages import CANCELLED_BY_STUDENT, DECLINED_BY_STUDENT, STUDENT_LABEL
from printlab.models import ChangeOutcome, Job, JobChangeRequest
from printlab.services.errors import ConflictError, NotAllowed, ValidationError, checked_text
from printlab.services.files import model_analysis
from printlab.services.files.storage import FileReplacement, ReceivedFile, Storage
from printlab.services.jobs import change_requests, quote_links
from printlab.services.jobs.change_requests import LinkState
from printlab.services.jobs.records import base_name, job_folder, sidecar_record
from printlab.services.jobs.status_change import Change, Expected, by_table, checked_reasons, run_transition
from printlab.services.lab.actors import Actor, Student
from printlab.services.lab.catalog import load_catalog

log = logging.getLogger(__name__)

#: The longest reason a student may give for declining a quote.
MAX_STUDENT_REASON = 1000


class NotPossibleNow(ConflictError):
    """The student's action no longer applies to the job as it is now (the message says why, in their words)."""


def _student_rule(action: Action, student: Student, what: str) -> Any:
    """The table row for a student's `action`, after checking the job is theirs; their words if refused."""

    def rule(job: Job) -> Transition:
        if not student.may_act_on(job.id, job.student_email):
            raise NotAllowed("This link doesn't let you change this job.")
        try:
            return transition_for(action, job.status_enum)
        except InvalidTransition:
            raise NotPossibleNow(
                f"This request is now “{STUDENT_LABEL[job.status_enum]}”, so it can't be {what} here. "
                "Write to the lab if you need to change it."
            ) from None

    return rule


def cancel_by_student(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    student: Student,
    expected: Expected | None,
    now: datetime | None = None,
) -> Job:
    """UPLOADED or PENDING → REJECTED at the student's request ("Cancelled by the student").

    The quote link stops working; the files stay where they are until archived, as for any
    rejection. The event is StudentCancelled with `"by": "student"`; the student gets a
    confirmation email. Raises NotAllowed (not their job), NotPossibleNow (the job moved past
    Pending), StaleJob (the page they saw is out of date), JobLocked (staff have it open).
    """

    def change(job: Job, _t: Transition) -> Change:
        job.confirm_token = None  # the quote link must not confirm a cancelled job
        job.reject_reasons = {
            "reasons": [CANCELLED_BY_STUDENT],
            "other": None,
            "cancelled": True,
            "by_student": True,
        }
        return Change(details={**student.details, "cancelled": True, "reason": CANCELLED_BY_STUDENT})

    return run_transition(
        session,
        storage,
        job_id,
        actor=student.actor,
        expected=expected,
        now=now,
        rule=_student_rule(Action.STUDENT_CANCEL, student, "cancelled"),
        change=change,
        needs_staff=False,
    )


def student_reason(reason: str | None) -> str:
    """An optional reason typed by a student, through the one text rule."""
    text = checked_text(reason, "reason", "Your reason", multiline=True).strip()
    if len(text) > MAX_STUDENT_REASON:
        raise ValidationError({"reason": f"Keep it under {MAX_STUDENT_REASON} characters."})
    return text


@dataclass(frozen=True)
class DeclineResult:
    """What the quote page shows after "Decline": declined, or what the link does now instead."""

    declined: bool
    state: quote_links.ConfirmOutcome | None
    job: Job | None


def decline_quote(
    session: Session, storage: Storage, token: str, *, reason: str | None = None, now: datetime | None = None
) -> DeclineResult:
    """PENDING → REJECTED by the quote link ("Quote declined by the student"), with an optional reason.

    Like confirming, a link that no longer confirms (used, replaced, expired, the job moved on)
    changes nothing and is an ordinary answer. Raises ValidationError for a reason the text rule
    refuses, JobLocked while staff have the job's dialog open.
    """
    now = now or utcnow()
    text = student_reason(reason)
    job = quote_links.find_by_token(session, token)
    state = quote_links.token_state(job, now)
    # An expired quote may still be declined: the student is saying no, which needs no valid price.
    if job is None or state not in (None, quote_links.ConfirmOutcome.EXPIRED):
        return DeclineResult(False, state or quote_links.ConfirmOutcome.INVALID, job)
    job_id, token_hash = job.id, job.confirm_token
    student = Student.by_quote_link(job_id)
    table_rule = _student_rule(Action.DECLINE_QUOTE, student, "declined")

    def rule(locked: Job) -> Transition:
        if locked.confirm_token != token_hash or locked.student_confirmed:
            raise _LinkChanged  # re-checked under the row lock: replaced or used meanwhile
        return table_rule(locked)

    def change(locked: Job, _t: Transition) -> Change:
        locked.confirm_token = None
        locked.reject_reasons = {
            "reasons": [DECLINED_BY_STUDENT],
            "other": text or None,
            "cancelled": True,
            "declined": True,
            "by_student": True,
        }
        details: dict[str, Any] = {**student.details, "cancelled": True, "reason": DECLINED_BY_STUDENT}
        if text:
            details["student_reason"] = text
        return Change(details=details)

    try:
        declined = run_transition(
            session,
            storage,
            job_id,
            actor=student.actor,
            expected=None,
            now=now,
            rule=rule,
            change=change,
            needs_staff=False,
        )
    except (_LinkChanged, NotPossibleNow):
        session.expire_all()
        again = quote_links.find_by_token(session, token)
        return DeclineResult(
            False, quote_links.token_state(again, now) or quote_links.ConfirmOutcome.INVALID, again
        )
    return DeclineResult(True, None, declined)


class _LinkChanged(Exception):
    pass


# -- "needs changes" ----------------------------------------------------------------------------


def request_changes(
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
    """Staff ask for a corrected file instead of rejecting: the job stays UPLOADED, waiting for the student.

    Reasons from the catalog's rejection list and/or in staff's own words (at least one). The
    student gets an email with a link to send the corrected file, valid for the catalog's
    `changes_reply_days`; the event is ChangesRequested. Raises ValidationError (no reason, or the
    job already waits for a file), InvalidTransition, StaleJob, JobLocked.
    """
    catalog = load_catalog(session)
    now = now or utcnow()

    def change(job: Job, _t: Transition) -> Change:
        asked = checked_reasons(
            catalog,
            reasons,
            other_reason,
            "What to change, in your own words",
            "Say what the student should change.",
        )
        if change_requests.open_request(session, job.id) is not None:
            raise ValidationError(
                {"reasons": "This job is already waiting for the student's corrected file."}
            )
        request, token = change_requests.issue(
            session, job, staff=actor.staff or "", reasons=asked, catalog=catalog, now=now
        )
        return Change(
            details={**asked, "reply_by": request.expires_at.isoformat()},
            email_context={"token": token, "expires_at": request.expires_at.isoformat(), **asked},
        )

    return run_transition(
        session,
        storage,
        job_id,
        actor=actor,
        expected=expected,
        now=now,
        rule=by_table(Action.REQUEST_CHANGES),
        change=change,
    )


#: What the replacement page says for a link that no longer takes a file.
LINK_MESSAGES = {
    LinkState.USED: "We already have your corrected file from this link. The status page shows where your request is.",
    LinkState.EXPIRED: "The time to send a corrected file has passed, so this link no longer works. "
    "You're welcome to submit your model again.",
    LinkState.CLOSED: "This request no longer needs a corrected file. The status page shows where it is now.",
    LinkState.INVALID: "This link isn't valid. Check that you copied the whole link from our email.",
}


class LinkNotUsable(ConflictError):
    """A reply link that takes no file now; `state` says why (the message is the student's words)."""

    def __init__(self, state: LinkState):
        self.state = state
        super().__init__(LINK_MESSAGES[state])


def version_name(storage: Storage, job: Job, extension: str) -> str:
    """The next free name for a replaced file: the job's stored name plus `_v1`, `_v2`, …"""
    folder = job_folder(job)
    taken = {p.name for p in storage.job_files(folder, base_name(job))} if folder else set()
    number = 1
    while any(name.startswith(f"{base_name(job)}_v{number}.") for name in taken):
        number += 1
    return f"{base_name(job)}_v{number}{extension}"


def replace_file(
    session: Session,
    storage: Storage,
    token: str,
    received: ReceivedFile,
    original_filename: str,
    *,
    now: datetime | None = None,
) -> Job:
    """The student's corrected file, sent from the "needs changes" email's link (UPLOADED → UPLOADED).

    The caller has checked the file like a submission (`model_files.check_model`). The old file is
    kept beside the new one as `<stored name>_v<n><ext>`; the new one takes the job's stored name
    (with its own extension), so `file_path`, the analysis and the slicer helper find it as they
    found the first; the analysis is queued again. The FileReplaced event records both names (the
    part after the student's name). All or nothing: a refusal or failure leaves no row, event or
    file behind, and the received file is always consumed.

    Raises LinkNotUsable (used, expired, closed or unknown link), ValidationError (the same file
    as before), JobLocked, NotAllowed.
    """
    now = now or utcnow()
    replacement: FileReplacement | None = None
    try:
        link = change_requests.find_link(session, token, now)
        if link.state != LinkState.OPEN or link.job is None or link.request is None:
            raise LinkNotUsable(link.state)
        job_id, request_id = link.job.id, link.request.id
        student = Student("reply_link", job_id=job_id)
        table_rule = _student_rule(Action.REPLACE_FILE, student, "changed")

        def rule(job: Job) -> Transition:
            request = session.get(JobChangeRequest, request_id, populate_existing=True)
            state = (
                change_requests.link_state(request, job, now) if request is not None else LinkState.INVALID
            )
            if state != LinkState.OPEN:
                raise LinkNotUsable(state)
            return table_rule(job)

        def change(job: Job, _t: Transition) -> Change:
            with session.no_autoflush:  # one UPDATE of the job row, with the version the engine sets
                return place(job)

        def place(job: Job) -> Change:
            nonlocal replacement
            if received.sha256 == job.file_hash:
                raise ValidationError(
                    {"file": "This is the same file you sent before. Choose your corrected file."}
                )
            folder = job_folder(job)
            if folder is None or not job.file_path or not job.metadata_path:
                raise LinkNotUsable(LinkState.CLOSED)  # files deleted by an admin: nothing to replace
            old_name = f"{base_name(job)}{extension_of(job.original_filename or '')}"
            new_extension = extension_of(original_filename)
            kept = version_name(storage, job, extension_of(old_name))
            new_name = f"{base_name(job)}{new_extension}"
            job.original_filename = original_filename
            job.file_hash = received.sha256
            job.file_path = f"{folder}/{new_name}"
            request = session.get(JobChangeRequest, request_id)
            assert request is not None
            request.closed_at, request.outcome = now, ChangeOutcome.REPLACED
            model_analysis.request_again(session, job, now)
            replacement = storage.replace_file(
                f"{folder}/{old_name}",
                received.path,
                job.file_path,
                f"{folder}/{kept}",
                (job.metadata_path, storage.encode_sidecar(sidecar_record(job))),
            )
            prefix = base_name(job)
            return Change(
                details={
                    **student.details,
                    # the part after the student's name: no personal data in events
                    "old_file": kept.removeprefix(prefix),
                    "new_file": new_name.removeprefix(prefix),
                    "size_bytes": received.size,
                },
                email_context={"replaced": True},
            )

        job = run_transition(
            session,
            storage,
            job_id,
            actor=student.actor,
            expected=None,
            now=now,
            rule=rule,
            change=_swapping(change, lambda: replacement),
            needs_staff=False,
            # The file is the answer staff are waiting for, and uploading it again is a chore: an open
            # staff dialog doesn't refuse it; that dialog's own action is then refused as stale.
            honour_dialog_lock=False,
        )
    except BaseException:
        if replacement is not None:
            replacement.abort()
        raise
    finally:
        received.discard()
    if replacement is not None:
        replacement.finish()
    return job


def _swapping(change: Any, replacement: Any) -> Any:
    """The change, then the file swap as its very last step (after it only the flush and commit)."""

    def wrapped(job: Job, transition: Transition) -> Change:
        result = change(job, transition)
        current = replacement()
        if current is not None:
            current.swap()
        return result

    return wrapped


def reject_unanswered(session: Session, storage: Storage, *, now: datetime | None = None) -> int:
    """Sweep: reject each job whose "needs changes" request ran out without a corrected file.

    UPLOADED → REJECTED by PrintLab itself (StaffRejected with `"no_answer": true` and the reasons
    staff gave, no staff name), with a polite email. Each job is its own transition, so a job
    answered or moved meanwhile is skipped (its request is then no longer open). Returns how many.
    """
    now = now or utcnow()
    due = session.execute(
        select(JobChangeRequest.id, JobChangeRequest.job_id).where(
            JobChangeRequest.closed_at.is_(None), JobChangeRequest.expires_at <= now
        )
    ).all()
    session.rollback()  # the read ends here; each job below is locked on its own
    done = 0
    for request_id, job_id in due:
        if _reject_one(session, storage, request_id, job_id, now):
            done += 1
    return done


def _reject_one(session: Session, storage: Storage, request_id: int, job_id: str, now: datetime) -> bool:
    def rule(job: Job) -> Transition:
        request = session.get(JobChangeRequest, request_id, populate_existing=True)
        if request is None or request.closed_at is not None or request.expires_at > now:
            raise _NothingDue
        return transition_for(Action.NO_CORRECTED_FILE, job.status_enum)

    def change(job: Job, _t: Transition) -> Change:
        request = session.get(JobChangeRequest, request_id)  # loaded by the rule: no query, no flush
        assert request is not None
        asked = request.reasons if isinstance(request.reasons, dict) else {}
        reasons = [str(r) for r in asked.get("reasons") or []]
        other = asked.get("other") or None
        request.closed_at, request.outcome = now, ChangeOutcome.NO_ANSWER
        job.confirm_token = None
        job.reject_reasons = {"reasons": reasons, "other": other, "no_answer": True}
        return Change(
            details={"reasons": reasons, "other": other, "no_answer": True},
            email_context={"requested_at": request.requested_at.isoformat()},
        )

    try:
        run_transition(
            session,
            storage,
            job_id,
            actor=Actor.system(),
            expected=None,
            now=now,
            rule=rule,
            change=change,
            needs_staff=False,
            honour_dialog_lock=False,
        )
    except (_NothingDue, InvalidTransition):
        return False
    return True


class _NothingDue(Exception):
    pass
