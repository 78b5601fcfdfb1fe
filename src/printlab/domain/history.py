"""The audit trail in sentences: what a job event or an admin-log entry says, in the lab's own words."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from printlab.domain.catalog_edit import LABELS
from printlab.domain.charging import method_label, signed_usd
from printlab.domain.printers import Connection
from printlab.domain.statuses import Status

#: What staff and students call each email PrintLab sends.
EMAIL_NAMES = {
    "receipt": "Receipt",
    "quote": "Quote",
    "confirmed": "Confirmation received",
    "rejected": "Rejection",
    "ready_for_pickup": "Ready for pickup",
    "pickup_reminder": "Pickup reminder",
    "quote_expired": "Quote expired",
    "payment_receipt": "Payment receipt",
    "payment_refund": "Refund receipt",
    "monthly_summary": "Monthly summary",
    "sign_in_link": "Sign-in link (my requests)",
    "withdrawn": "Cancellation by the student",
    "changes_needed": "Needs changes",
    "changes_expired": "No corrected file",
}

#: Events an unattributed entry of which was the student's doing (the rest were PrintLab's own).
BY_STUDENT = (
    "JobCreated",
    "StudentConfirmed",
    "QuoteResent",
    "StudentCancelled",
    "QuoteDeclined",
    "FileReplaced",
)


def email_name(template: str | None) -> str:
    """The email's name in words ("Ready for pickup"), also for one this list doesn't know yet."""
    if not template:
        return "An"
    return EMAIL_NAMES.get(template, template.replace("_", " ").capitalize())


def status_label(code: object) -> str:
    """The status's label ("Ready to Print") from its code, or the text as it is when it is none."""
    try:
        return Status(str(code)).label
    except ValueError:
        return str(code)


def _words(code: str) -> str:
    """ "QuoteEdited" → "Quote edited": a readable fallback for a code this module doesn't know."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", code) or [code]
    text = " ".join(p.lower() for p in parts)
    return text[:1].upper() + text[1:]


def _money(value: object) -> str:
    return f"${value}"


def _reason(details: Mapping[str, Any]) -> str:
    reason = details.get("reason")
    return f" — {reason}" if isinstance(reason, str) and reason.strip() else ""


def _move(details: Mapping[str, Any]) -> str:
    start, end = details.get("from"), details.get("to")
    if start and start == end:
        return ""
    if start and end:
        return f"from {status_label(start)} to {status_label(end)}"
    return f"to {status_label(end)}" if end else ""


def job_event_sentence(event_type: str, details: Mapping[str, Any] | None, by: str | None) -> str:
    """One History line: what happened and who did it. `by` is the staff member's name (None: the
    student or PrintLab itself, depending on the event)."""
    d: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    who = by or ("the student" if event_type in BY_STUDENT else "PrintLab")
    if event_type == "JobCreated":
        again = " (a corrected version of a rejected job)" if d.get("resubmission_of") else ""
        return f"Submitted by {who}{again}"
    if event_type == "StaffApproved":
        cost = d.get("cost_usd")
        return f"Approved by {who}" + (f" — quote {_money(cost)} emailed" if cost is not None else "")
    if event_type == "StaffRejected":
        reasons = [r for r in (d.get("reasons") or []) if isinstance(r, str)]
        if isinstance(d.get("other"), str) and d["other"]:
            reasons.append(d["other"])
        if d.get("no_answer"):
            return "Rejected automatically: no corrected file arrived in time" + (
                f" — asked for: {'; '.join(reasons)}" if reasons else ""
            )
        return f"Rejected by {who}" + (f" — {'; '.join(reasons)}" if reasons else "")
    if event_type in ("StudentCancelled", "QuoteDeclined"):
        said = d.get("student_reason")
        words = (
            "Quote declined by the student" if event_type == "QuoteDeclined" else "Cancelled by the student"
        )
        return words + _via(d) + (f" — “{said}”" if isinstance(said, str) and said else "")
    if event_type == "ChangesRequested":
        reasons = [r for r in (d.get("reasons") or []) if isinstance(r, str)]
        if isinstance(d.get("other"), str) and d["other"]:
            reasons.append(d["other"])
        return f"Changes asked for by {who}, waiting for the student's corrected file" + (
            f" — {'; '.join(reasons)}" if reasons else ""
        )
    if event_type == "FileReplaced":
        old, new = d.get("old_file"), d.get("new_file")
        kind = new.rsplit(".", 1)[-1] if isinstance(new, str) and "." in new else ""
        kept = f"; the earlier file is kept beside it (…{old})" if isinstance(old, str) and old else ""
        return f"Corrected {'.' + kind + ' ' if kind else ''}file sent by the student" + kept
    if event_type == "StatusChanged":
        return _status_changed(d, who)
    if event_type == "StudentConfirmed":
        return f"Confirmed for the student by {by}" if by else "Confirmed by the student"
    if event_type == "ConfirmationExpired":
        return "The quote link expired without a confirmation"
    if event_type == "NotesUpdated":
        return f"Notes cleared by {who}" if d.get("length") == 0 else f"Notes edited by {who}"
    if event_type == "AdminOverride":
        return _override(d, who)
    if event_type == "PrinterStopped":
        printer = f"The {d['printer']}" if isinstance(d.get("printer"), str) else "The printer"
        started = (
            f" (started from PrintLab by {d['started_by']})" if isinstance(d.get("started_by"), str) else ""
        )
        return f"{printer} stopped the print{started}{_reason(d)}"
    if event_type == "PrintFailed":
        return f"Print failed; moved back to Ready to Print by {who}{_reason(d)}"
    if event_type == "EmailSent":
        return _email_sent(d)
    if event_type == "FileDeleted":
        if d.get("retention") == "pruned":
            return "Files and the student's details removed at the end of the retention period"
        count = len(d["files"]) if isinstance(d.get("files"), list) else d.get("files")
        files = "1 file" if count == 1 else f"{count} files" if count else "Files"
        return f"{files} deleted by {who}{_reason(d)}"
    if event_type == "JobArchived":
        return (f"Archived by {by}" if by else "Archived automatically") + _reason(d)
    if event_type == "QuoteResent":
        if by:
            return f"Quote sent again by {by} with a new confirm link"
        return "A new quote link sent at the student's request"
    if event_type == "FileAttached":
        name = d.get("file") if isinstance(d.get("file"), str) else ""
        kind = name.rsplit(".", 1)[-1] if "." in name else ""
        return f"A .{kind} file added by {who}" if kind else f"A file added by {who}"
    if event_type in ("PaymentRefunded", "PaymentCorrected"):
        return _adjustment(event_type, d, who)
    move = _move(d)
    return f"{_words(event_type)} by {who}" + (f" ({move})" if move else "") + _reason(d)


_VIA = {
    "status_link": "from the status page",
    "quote_link": "from the quote page",
    "session": "signed in",
    "reply_link": "from the emailed link",
}


def _via(d: Mapping[str, Any]) -> str:
    """How the student reached the action, in words (" from the status page")."""
    via = _VIA.get(str(d.get("via")))
    return f" ({via})" if via else ""


def _adjustment(event_type: str, d: Mapping[str, Any], who: str) -> str:
    """ "Refunded $2.00 by Alex Rivera (Cash) — Print had a defect"."""
    try:
        amount = Decimal(str(d.get("amount_usd")))
    except ArithmeticError:
        amount = None
    how = f" ({method_label(d['method'])})" if isinstance(d.get("method"), str) else ""
    if event_type == "PaymentRefunded":
        what = f"Refunded {_money(abs(amount))}" if amount is not None else "Refunded"
    else:
        what = f"Payment corrected by {signed_usd(amount)}" if amount is not None else "Payment corrected"
    return f"{what} by {who}{how}{_reason(d)}"


def _status_changed(d: Mapping[str, Any], who: str) -> str:
    if d.get("finished_on_printer"):
        return _finished_on_printer(d)
    verb = "Moved back" if d.get("revert") else "Moved"
    sentence = f"{verb} {_move(d)} by {who}".replace("  ", " ")
    if isinstance(d.get("printer"), str):
        sentence += f" — on the {d['printer']}"
        if d.get("sent"):
            sentence += ", sent to the printer from PrintLab"
    payment = d.get("payment")
    if isinstance(payment, Mapping) and payment.get("charged_usd") is not None:
        sentence += f" — paid {_money(payment['charged_usd'])}"
        if payment.get("kept_quote"):
            sentence += " (the quote)"
        if isinstance(payment.get("method"), str):
            sentence += f" by {method_label(payment['method'])}"
            if isinstance(payment.get("account_code"), str):
                sentence += f" {payment['account_code']}"
        if payment.get("discount_usd") is not None:
            off = "waived" if payment.get("method") == "WAIVER" else f"{_money(payment['discount_usd'])} off"
            sentence += f" (price {_money(payment.get('list_usd'))}, {off}{_reason(payment)})"
    return sentence + _reason(d)


def _finished_on_printer(d: Mapping[str, Any]) -> str:
    """ "Moved from Printing to Completed by PrintLab — the Prusa MK4S reported the print finished
    (started by Alex Rivera; printed in 1.5 h)"."""
    printer = f"the {d['printer']}" if isinstance(d.get("printer"), str) else "the printer"
    facts = []
    if isinstance(d.get("started_by"), str):
        facts.append(f"started by {d['started_by']}")
    if isinstance(d.get("printed_hours"), int | float):
        facts.append(f"printed in {_duration(float(d['printed_hours']))}")
    if isinstance(d.get("printed_g"), int | float):
        facts.append(f"{d['printed_g']:g} g of filament")
    extra = f" ({'; '.join(facts)})" if facts else ""
    return f"Moved {_move(d)} by PrintLab — {printer} reported the print finished{extra}".replace("  ", " ")


def _duration(hours: float) -> str:
    """ "1 h 30 min", "4 min", "under a minute"."""
    minutes = round(hours * 60)
    if minutes < 1:
        return "under a minute"
    whole, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{whole} h" if whole else "", f"{rest} min" if rest else "") if part)


_REPAIRS = {
    "rebuilt_from_sidecar": "Job record rebuilt from its sidecar by {who} (integrity repair)",
    "restore_file": "Missing file put back by {who} (integrity repair)",
    "rewrite_sidecar": "Sidecar written again from the database by {who} (integrity repair)",
}


def _override(d: Mapping[str, Any], who: str) -> str:
    kind = d.get("override")
    if kind == "force_confirm":
        return f"Confirmed for the student by {who} (admin override){_reason(d)}"
    if kind == "break_lock":
        holder = d.get("was_locked_by") or "someone"
        return f"{holder}'s open dialog released by {who} (admin override){_reason(d)}"
    if kind in _REPAIRS:
        return _REPAIRS[str(kind)].format(who=who)
    if kind == "move_to_status_folder":
        return f"Files moved to the {d.get('to_folder')} folder by {who} (integrity repair)"
    move = _move(d)
    return f"Moved {move} by {who} (admin override){_reason(d)}" if move else f"Admin override by {who}"


def _email_sent(d: Mapping[str, Any]) -> str:
    name = email_name(d.get("template"))
    if d.get("template") == "pickup_reminder" and isinstance(d.get("reminder"), int):
        name = "Last pickup reminder" if d["reminder"] >= 2 else "First pickup reminder"
    sentence = f"{name} email sent"
    if d.get("requested_by"):
        sentence += f" again at {d['requested_by']}'s request"
    elif d.get("retried_by"):
        sentence += f" after {d['retried_by']} retried it"
    if d.get("possible_duplicate"):
        sentence += " (it may have arrived twice)"
    return sentence


def same_change(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> bool:
    """True when `later` is a second event the same change wrote (approving writes StaffApproved and
    StatusChanged; an override to Archived also writes JobArchived): History shows it once."""
    return (
        later.get("event_type") in ("StatusChanged", "JobArchived")
        and earlier.get("event_type") != later.get("event_type")
        and earlier.get("timestamp") == later.get("timestamp")
        and earlier.get("triggered_by") == later.get("triggered_by")
        and earlier.get("details") == later.get("details")
    )


def without_repeats(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events with the second event of any one change left out (see `same_change`)."""
    kept: list[Mapping[str, Any]] = []
    for event in events:
        if kept and same_change(kept[-1], event):
            continue
        kept.append(event)
    return kept


# -- the admin log ---------------------------------------------------------------------------------


def admin_log_sentence(action: str, details: Mapping[str, Any] | None, by: str | None) -> str:
    """One admin-log line: what the admin did, in words. `by` says who ("the server console")."""
    d: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    who = by or "PrintLab"
    name, station = d.get("name"), d.get("workstation")
    staff_changes = {
        "StaffAdded": "added",
        "StaffDeactivated": "taken off the staff list",
        "StaffReactivated": "put back on the staff list",
    }
    if action in staff_changes:
        return f"Staff member {name} {staff_changes[action]} by {who}"
    if action == "StaffPinSet":
        return f"{name} set their own PIN" if d.get("own") else f"PIN for {name} set by {who}"
    station_changes = {
        "WorkstationAdded": "added" + (" as an admin workstation" if d.get("admin") else ""),
        "WorkstationPasswordReset": "given a new password",
        "WorkstationDeactivated": "switched off",
        "WorkstationReactivated": "switched on again",
        "WorkstationAdminChanged": "made an admin workstation"
        if d.get("admin")
        else "made an ordinary workstation",
        "WorkstationSignInReleased": "allowed to sign in again",
    }
    if action in station_changes:
        return f"Workstation {station} {station_changes[action]} by {who}"
    if action == "SignInFailed":
        where = f" from {d['address']}" if d.get("address") else ""
        return f"Wrong password for workstation {station}{where}"
    if action == "CatalogChanged":
        fields = [f for f in d.get("fields") or [] if isinstance(f, str)] or [str(d.get("section") or "")]
        words = ", ".join(LABELS.get(f, f.replace("_", " ")).lower() for f in fields if f)
        return f"Catalog changed by {who}" + (f": {words}" if words else "")
    if action == "BannerChanged":
        banner = d.get("banner")
        return f"Banner set to “{banner}” by {who}" if banner else f"Banner removed by {who}"
    if action in ("AccountCodeAdded", "AccountCodeDeactivated", "AccountCodeReactivated"):
        verb = {"AccountCodeAdded": "added", "AccountCodeDeactivated": "taken out of use",
                "AccountCodeReactivated": "put back in use"}[action]  # fmt: skip
        return f"Account code {d.get('code')} ({d.get('name')}) {verb} by {who}"
    if action == "IntegrityRepair":
        return _repair_sentence(d, who)
    if action == "ApiTokenCreated":
        scope = "read and change jobs" if d.get("scope") == "write" else "read only"
        return f"API token “{name}” for {d.get('staff')} ({scope}) made by {who}"
    if action == "ApiTokenRevoked":
        return f"API token “{name}” for {d.get('staff')} revoked by {who}"
    if action.startswith("Webhook"):
        return _webhook_sentence(action, d, who)
    if action.startswith("Printer"):
        return _printer_sentence(action, d, who)
    if action.startswith("Campus"):
        return _campus_sentence(action, d, who)
    return f"{_words(action)} by {who}"


#: A campus sign-in role in the log's words.
_ROLE_WORDS = {"STAFF": "staff", "ADMIN": "an admin", "NONE": "no access"}


def _campus_sentence(action: str, d: Mapping[str, Any], who: str) -> str:
    person = d.get("person") or "Someone"
    if action == "CampusPersonSeen":
        email = f" ({d['email']})" if d.get("email") else ""
        return f"{person}{email} signed in with a campus account for the first time"
    if action == "CampusRoleFromGroups":
        return f"{person} is now {_ROLE_WORDS.get(str(d.get('to')), 'no access')}, from their campus groups"
    if action == "CampusPersonApproved":
        return f"{person} let in as {_ROLE_WORDS.get(str(d.get('role')), 'staff')} by {who}"
    if action == "CampusPersonRefused":
        return f"{person}'s access removed by {who}"
    if action == "CampusGroupRoleSet":
        group, role = d.get("group"), d.get("role")
        if not role:
            return f"Campus group {group} no longer gives a role (changed by {who})"
        return f"Members of campus group {group} made {_ROLE_WORDS.get(str(role), 'staff')} by {who}"
    return f"{_words(action)} by {who}"


#: What each change to a printer record's fields is called in the log ("connection, API key replaced").
_PRINTER_FIELDS = {
    "name": "catalog printer",
    "connection": "connection",
    "address": "address",
    "api_key": "API key replaced",
    "api_key_removed": "API key removed",
}


def _printer_sentence(action: str, d: Mapping[str, Any], who: str) -> str:
    name = d.get("name") or "a printer"
    try:
        connection = Connection(str(d.get("connection")))
    except ValueError:
        connection = Connection.NONE
    where = (
        f", connected through {connection.label} at {d.get('address')}"
        if connection is not Connection.NONE
        else ""
    )
    if action == "PrinterAdded":
        return f"Printer {name} added by {who}{where}"
    if action == "PrinterChanged":
        fields = [_PRINTER_FIELDS.get(str(f), str(f)) for f in d.get("fields") or []]
        return f"Printer {name} changed by {who}" + (f": {', '.join(fields)}" if fields else "")
    verb = {
        "PrinterPaused": "paused",
        "PrinterBackInService": "put back in service",
        "PrinterRetired": "retired",
    }
    return f"Printer {name} {verb.get(action, _words(action).lower())} by {who}"


def _repair_sentence(d: Mapping[str, Any], who: str) -> str:
    path, to = d.get("path"), d.get("to")
    what = {
        "stale_copy_removed": f"Stale copy {path} removed",
        "stale_copy_to_lost_and_found": f"Stale copy {path} moved to {to or 'Lost+Found'}",
        "orphan_to_lost_and_found": f"File {path}, which belongs to no job, moved to {to or 'Lost+Found'}",
        "leftover_upload_removed": "An abandoned upload removed",
        "leftover_upload_to_lost_and_found": f"An abandoned upload moved to {to or 'Lost+Found'}",
    }.get(str(d.get("repair")), "Storage repaired")
    return f"{what} by {who} (integrity repair)"


def _webhook_sentence(action: str, d: Mapping[str, Any], who: str) -> str:
    name = d.get("name")
    if action == "WebhookEndpointAdded":
        return f"Webhook endpoint “{name}” ({d.get('url')}) added by {who}"
    if action == "WebhookEndpointChanged":
        return f"Webhook endpoint “{name}” changed by {who}"
    if action == "WebhookEndpointPaused":
        return f"Webhook endpoint “{name}” paused by {who}"
    if action == "WebhookEndpointResumed":
        return f"Webhook endpoint “{name}” resumed by {who}"
    if action == "WebhookEndpointRemoved":
        return f"Webhook endpoint “{name}” removed by {who}"
    if action == "WebhookSecretReplaced":
        return f"A new signing secret for webhook endpoint “{name}” made by {who}"
    if action == "WebhookDeliveriesRetried":
        count = d.get("count")
        what = "1 failed delivery" if count == 1 else f"{count} failed deliveries"
        return f"{what} to webhook endpoint “{name}” sent again by {who}"
    return f"{_words(action)} by {who}"
