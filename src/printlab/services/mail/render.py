"""Turning an outbox row into the student's email: subject, plain text and HTML from the mail templates.

The worker has no Flask request, so the templates are rendered by a Jinja2 environment of their
own (HTML autoescaped); every link is absolute, built from PRINTLAB_BASE_URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from itertools import product
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from printlab.clock import to_lab_time
from printlab.domain.catalog import Catalog, LabDetails
from printlab.domain.charging import WAIVER, method_label
from printlab.models import Job, Payment
from printlab.services.jobs.references import make_reference

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "mail_templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,  # a missing value is a bug to see in the tests, not a blank in an email
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Links:
    """What absolute links are made of."""

    base_url: str
    secret_key: str

    def status(self, job_id: str) -> str:
        return f"{self.base_url}/status/{make_reference(self.secret_key, job_id)}"

    def confirm(self, token: str) -> str:
        return f"{self.base_url}/confirm/{token}"

    def submit(self) -> str:
        return f"{self.base_url}/submit"

    def page(self, path: str) -> str:
        """An absolute link to one of the lab's own pages (`path` starts with "/")."""
        return f"{self.base_url}{path}"


# -- words and numbers the way a student reads them ----------------------------------------------


def lab_datetime(moment: datetime, zone: str) -> str:
    """'Thursday, November 26, 2026 at 2:30 PM CST' for a naive-UTC time, in the lab's zone."""
    local = to_lab_time(moment, zone)
    hour = local.hour % 12 or 12
    noon = "AM" if local.hour < 12 else "PM"
    return f"{local:%A, %B} {local.day}, {local.year} at {hour}:{local:%M} {noon} {local:%Z}"


def lab_date(moment: datetime, zone: str) -> str:
    """'Friday, December 25, 2026' in the lab's zone."""
    local = to_lab_time(moment, zone)
    return f"{local:%A, %B} {local.day}, {local.year}"


def money(value: object) -> str:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"${amount:,}"


def _number(value: float | None, unit: str) -> str | None:
    if value is None:
        return None
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _first_name(full_name: str | None) -> str:
    words = (full_name or "").split()
    return words[0] if words else "there"


# -- subjects ------------------------------------------------------------------------------------

_SUBJECTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "receipt": lambda c: (
        f"We received your corrected file (job {c['simple_id']})"
        if c["replaced"]
        else f"We received your 3D print request (job {c['simple_id']})"
    ),
    "quote": lambda c: (
        f"Your {'new ' if c['edited'] else ''}3D print quote: {c['job']['cost']} — please confirm "
        f"(job {c['simple_id']})"
    ),
    "confirmed": lambda c: f"Thanks — your 3D print is in the queue (job {c['simple_id']})",
    "rejected": lambda c: (
        f"Your 3D print job was cancelled (job {c['simple_id']})"
        if c["cancelled"]
        else f"We couldn't print your model as sent (job {c['simple_id']})"
    ),
    "ready_for_pickup": lambda c: f"Your 3D print is ready for pickup (job {c['simple_id']})",
    "pickup_reminder": lambda c: (
        f"Last reminder: please pick up your 3D print by {c['hold_until_date']} (job {c['simple_id']})"
        if c["final"]
        else f"Reminder: your 3D print is waiting for you (job {c['simple_id']})"
    ),
    "quote_expired": lambda c: f"Your 3D print quote link has expired (job {c['simple_id']})",
    "payment_receipt": lambda c: f"Receipt: {c['charged']} for your 3D print (job {c['simple_id']})",
    "monthly_summary": lambda c: f"{c['lab'].name}: {c['month_name']} in numbers",
    "sign_in_link": lambda c: f"Your link to see your 3D print requests at {c['lab'].name}",
    "withdrawn": lambda c: (
        f"You declined the quote (job {c['simple_id']})"
        if c["declined"]
        else f"You cancelled your 3D print request (job {c['simple_id']})"
    ),
    "changes_needed": lambda c: f"Your model needs a change before we can print it (job {c['simple_id']})",
    "changes_expired": lambda c: f"We've closed your 3D print request (job {c['simple_id']})",
    "payment_refund": lambda c: (
        f"Refund: {c['amount']} for your 3D print (job {c['simple_id']})"
        if c["refund"]
        else f"Your 3D print payment was corrected (job {c['simple_id']})"
    ),
}

#: Emails to the lab itself (about no one job); the rest go to a student.
LAB_TEMPLATES = ("monthly_summary",)
#: Emails to a student about no one job (the "See my requests" sign-in link).
STUDENT_TEMPLATES = ("sign_in_link",)
#: Emails to a job's student.
TEMPLATES = tuple(t for t in _SUBJECTS if t not in LAB_TEMPLATES + STUDENT_TEMPLATES)
#: Stand-ins for a subject's changing parts, so its fixed words can be searched.
_OUTLINE = {
    "simple_id": "",
    "job": {"cost": ""},
    "hold_until_date": "",
    "charged": "",
    "amount": "",
    "lab": LabDetails(name=""),
    "month_name": "",
}
#: The switches that change a subject's words: the last pickup reminder, a cancellation, an edited
#: quote, a refund (rather than a correction), a corrected file's receipt, a declined quote.
_WORDING_FLAGS = ("final", "cancelled", "edited", "refund", "replaced", "declined")


def subject_outline(template: str) -> str:
    """The fixed words of an email's subject lines (every wording: the last pickup reminder, a cancellation)."""
    if template not in _SUBJECTS:
        return ""
    wordings = {
        _SUBJECTS[template]({**_OUTLINE, **dict(zip(_WORDING_FLAGS, flags, strict=True))})
        for flags in product((False, True), repeat=len(_WORDING_FLAGS))
    }
    return " ".join(sorted(wordings))


def message_context(
    template: str,
    *,
    job: Job,
    simple_id: str,
    catalog: Catalog,
    links: Links,
    extra: Mapping[str, Any] | None = None,
    completed_at: datetime | None = None,
    charged_usd: str | None = None,
    payment: Payment | None = None,
) -> dict[str, Any]:
    """Everything the template shows, from plain values (no database): the snapshot tests call it too.

    `extra` is the outbox row's context (the quote's raw token and expiry, a reminder's number, a
    refund's new balance); `completed_at` is when the job became ready for pickup; `charged_usd`
    what was paid; `payment` the pickup's charge row (a receipt) or the refund or correction row.
    """
    if template not in _SUBJECTS:
        raise ValueError(f"unknown email template {template!r}")
    extra = extra or {}
    lab = catalog.lab
    zone = lab.time_zone
    context: dict[str, Any] = {
        "lab": lab,
        "name": _first_name(job.student_name),
        "simple_id": simple_id,
        "status_url": links.status(job.id),
        "submit_url": links.submit(),
        "job": {
            "file": job.original_filename or job.display_name or "your model",
            "method": job.material,
            "color": job.color,
            "printer": job.printer,
            "weight": _number(job.weight_g, "g"),
            "hours": _number(job.time_hours, "h"),
            "cost": money(job.cost_usd) if job.cost_usd is not None else None,
            # A job sent in several parts (or copies) lists each file with its copies.
            "parts": [{"file": part.original_filename, "copies": part.copies} for part in job.parts],
        },
        "hold_days": lab.hold_days,
    }
    if template == "quote":
        expires = datetime.fromisoformat(str(extra["expires_at"]))
        context["confirm_url"] = links.confirm(str(extra["token"]))
        context["expires_at"] = lab_datetime(expires, zone)
        # staff's own words to the student (autoescaped in the HTML like every value)
        context["message"] = str(extra.get("message") or "").strip() or None
        context["edited"] = bool(extra.get("edited"))  # staff changed a quote the student already had
    if template == "receipt":
        context["replaced"] = bool(extra.get("replaced"))  # the corrected file staff asked for
    if template == "withdrawn":
        recorded = job.reject_reasons if isinstance(job.reject_reasons, dict) else {}
        context["declined"] = bool(recorded.get("declined"))
        context["student_reason"] = (recorded.get("other") or None) if context["declined"] else None
    if template in ("changes_needed", "changes_expired"):
        asked = extra if template == "changes_needed" else (job.reject_reasons or {})
        context["reasons"] = [
            *[str(r) for r in asked.get("reasons") or []],
            *filter(None, [asked.get("other")]),
        ]
    if template == "changes_needed":
        context["replace_url"] = links.page(f"/replace/{extra['token']}")
        context["reply_by"] = lab_date(datetime.fromisoformat(str(extra["expires_at"])), zone)
    if template == "changes_expired":
        asked_at = extra.get("requested_at")
        context["requested_date"] = (
            lab_date(datetime.fromisoformat(str(asked_at)), zone) if asked_at else "an earlier date"
        )
    if template == "rejected":
        recorded = job.reject_reasons if isinstance(job.reject_reasons, dict) else {}
        context["reasons"] = list(recorded.get("reasons") or [])
        context["other_reason"] = recorded.get("other") or None
        context["cancelled"] = bool(recorded.get("cancelled"))  # staff stopped a quoted job
    if template in ("ready_for_pickup", "pickup_reminder"):
        if completed_at is None:
            raise ValueError(f"{template} needs the time the print was completed")
        hold_until = completed_at + timedelta(days=lab.hold_days)
        context["hold_until_date"] = lab_date(hold_until, zone)
        context["completed_date"] = lab_date(completed_at, zone)
    if template == "pickup_reminder":
        context["final"] = bool(extra.get("final"))
        # what is owed at pickup: the quote (the weighed print may differ a little)
        context["nothing_to_pay"] = job.cost_usd is not None and Decimal(job.cost_usd) == 0
    if template == "payment_receipt":
        if charged_usd is None:
            raise ValueError("payment_receipt needs the amount charged")
        context["charged"] = money(charged_usd)
        context.update(_payment_lines(payment))
    if template == "payment_refund":
        if payment is None:
            raise ValueError("payment_refund needs the refund's payment row")
        amount = Decimal(payment.charged_usd)
        context.update(_payment_lines(payment))
        context["refund"] = payment.kind == "REFUND"
        context["amount"] = money(abs(amount))
        context["given_back"] = amount < 0
        context["balance"] = money(extra["balance_usd"]) if extra.get("balance_usd") is not None else None
    return context


def lab_message_context(
    template: str, *, catalog: Catalog, links: Links, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What an email to the lab itself shows: its stored snapshot (figures frozen when it was queued),
    with the lab's own page paths made into links."""
    if template not in LAB_TEMPLATES:
        raise ValueError(f"unknown lab email template {template!r}")
    context = {**(extra or {}), "lab": catalog.lab}
    context["reports_url"] = links.page(str(context.get("reports_path") or "/reports"))
    context["exports"] = [
        {"label": link["label"], "url": links.page(str(link["path"]))}
        for link in context.get("exports") or []
    ]
    return context


def student_message_context(
    template: str, *, catalog: Catalog, links: Links, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What an email to a student about no one job shows: the sign-in link made absolute from its raw
    token (scrubbed from the row once sent), and when it stops working, in the lab's time."""
    if template not in STUDENT_TEMPLATES:
        raise ValueError(f"unknown student email template {template!r}")
    extra = extra or {}
    lab = catalog.lab
    expires = datetime.fromisoformat(str(extra["expires_at"]))
    return {
        "lab": lab,
        "sign_in_url": links.page(f"/my/sign-in/{extra['token']}"),
        "ask_again_url": links.page("/my/sign-in"),
        "submit_url": links.submit(),
        "expires_at": lab_datetime(expires, lab.time_zone),
        "minutes": int(extra["minutes"]),
    }


def _payment_lines(payment: Payment | None) -> dict[str, Any]:
    """How a payment row reads in a receipt: how it was paid, the price before a discount, the
    discount or waiver and its reason (nothing for a payment recorded before methods existed)."""
    lines: dict[str, Any] = {"paid_by": None, "list_price": None, "discount": None, "waived": False}
    lines["reason"] = (payment.reason or "").strip() or None if payment is not None else None
    if payment is None or payment.method is None:
        return lines
    paid_by = method_label(payment.method)
    if payment.account_code:
        paid_by = f"Internal transfer to account {payment.account_code}"
    lines["paid_by"] = paid_by
    if payment.discount_usd is not None and Decimal(payment.discount_usd) > 0:
        lines["list_price"] = money(payment.list_usd) if payment.list_usd is not None else None
        lines["discount"] = money(payment.discount_usd)
        lines["waived"] = payment.method == WAIVER
    return lines


def render(template: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Subject, text and HTML of one message. Raises jinja2 errors for a broken template."""
    text = _environment.get_template(f"{template}.txt").render(context)
    html = _environment.get_template(f"{template}.html").render(context)
    return RenderedEmail(subject=_SUBJECTS[template](context), text=text, html=html)


def sender_for(mail_from: str | None, catalog: Catalog) -> tuple[str, str]:
    """(From header, envelope address): PRINTLAB_MAIL_FROM, or the lab's name and contact address."""
    header = mail_from or formataddr((catalog.lab.name, catalog.lab.contact_email))
    return header, parseaddr(header)[1]


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    reply_to: str,
    recipient: str,
    message_id: str,
    date: datetime,
    template: str,
    outbox_id: int,
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred by mail programs)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date.replace(tzinfo=UTC))
    message["Message-ID"] = message_id
    # RFC 3834: an automatic message; out-of-office robots shouldn't answer it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-PrintLab-Template"] = template
    message["X-PrintLab-Outbox-Id"] = str(outbox_id)
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message
