"""Admin routes for email and retention: read the outbox and mail folder, retry a failed email, archive old jobs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from printlab.clock import to_lab_time
from printlab.domain.history import EMAIL_NAMES
from printlab.models import OutboxStatus
from printlab.services import mail
from printlab.services.errors import NotAllowed, NotFound, ValidationError
from printlab.services.lab.actors import Actor
from printlab.services.lab.staff import list_staff
from printlab.services.mail import folder
from printlab.services.upkeep import prune, sweeps
from printlab.services.views.mail_list import STATES, MailSearch, mail_page
from printlab.web.auth.guard import admin_required, current_actor
from printlab.web.context import catalog, db, lab, whole_number

bp = Blueprint(
    "admin_mail",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/mail/static",
)

FOLDER_PAGE = 50
#: Failed emails wait for a person, so they are listed apart; more than this is a mail-server problem.
FAILED_SHOWN = 50
_URL = re.compile(r"https?://[^\s<>\"']+")
#: The HTML version of a mail-folder message is shown as its own document: no scripts, no requests
#: anywhere, inline styles only (as email clients allow), links open normally.
_MESSAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)


def _actor() -> Actor:
    return current_actor()


def _when() -> object:
    """Formats a naive-UTC time, or an email's Date header, in the lab's time zone, for the templates."""
    zone = catalog().lab.time_zone

    def when(moment: datetime | str | None) -> str:
        if isinstance(moment, str):
            try:
                moment = parsedate_to_datetime(moment).astimezone(UTC).replace(tzinfo=None)
            except (TypeError, ValueError):
                return moment or "—"
        return to_lab_time(moment, zone).strftime("%a %d %b %Y, %H:%M %Z") if moment else "—"

    return when


def linkify(text: str) -> Markup:
    """Plain text with its web addresses made clickable, everything else escaped."""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:)")
        parts.append(str(escape(text[position : match.start()])))
        parts.append(f'<a href="{escape(url)}">{escape(url)}</a>')
        position = match.start() + len(url)
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped


@bp.get("/admin/mail")
@admin_required
def index():  # type: ignore[no-untyped-def]
    page = max(1, min(whole_number(request.args.get("page")) or 1, 100_000))
    config = lab().config
    messages, total = folder.list_messages(
        config.mail_dir, limit=FOLDER_PAGE, offset=(page - 1) * FOLDER_PAGE
    )
    search = MailSearch.parse(request.args.get("q"), request.args.get("state"))
    before, after = whole_number(request.args.get("before")), whole_number(request.args.get("after"))
    return render_template(
        "admin_mail/index.html",
        backlog=mail.backlog(db()),
        failed=mail_page(db(), MailSearch(state=OutboxStatus.FAILED), size=FAILED_SHOWN),
        emails=mail_page(db(), search, before=before, after=None if before else after),
        search=search,
        states=STATES,
        transport=mail.transport_for(config).description,
        uses_folder=config.smtp is None,
        folder_messages=messages,
        folder_total=total,
        page=page,
        pages=max(1, -(-total // FOLDER_PAGE)),
        staff=list_staff(db(), active_only=True),
        when=_when(),
        template_names=EMAIL_NAMES,
    )


@bp.post("/admin/mail/<int:outbox_id>/retry")
@admin_required
def retry(outbox_id: int):  # type: ignore[no-untyped-def]
    try:
        message = mail.retry(db(), outbox_id, staff=_actor().staff)
    except NotFound:
        abort(404)
    except ValidationError as exc:
        flash(str(exc))
    else:
        flash(f"Email {message.id} will be sent again in a moment.")
    return redirect(url_for("admin_mail.index"), 303)


@bp.get("/admin/mail/folder/<name>")
@admin_required
def folder_message(name: str):  # type: ignore[no-untyped-def]
    message = folder.read_message(lab().config.mail_dir, name)
    if message is None:
        abort(404)
    return render_template("admin_mail/message.html", message=message, body=linkify(message.text))


@bp.get("/admin/mail/folder/<name>/html")
@admin_required
def folder_message_html(name: str):  # type: ignore[no-untyped-def]
    message = folder.read_message(lab().config.mail_dir, name)
    if message is None or message.html is None:
        abort(404)
    response = Response(message.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _MESSAGE_CSP
    return response


@bp.get("/admin/retention")
@admin_required
def retention():  # type: ignore[no-untyped-def]
    return render_template(
        "admin_mail/retention.html",
        preview=sweeps.archive_preview(db()),
        prune_plan=prune.plan(db()),
        prune_after_days=catalog().prune_after_days,
        batch=sweeps.ARCHIVE_BATCH,
        staff=list_staff(db(), active_only=True),
        when=_when(),
    )


@bp.post("/admin/retention/archive")
@admin_required
def archive():  # type: ignore[no-untyped-def]
    expected = whole_number(request.form.get("expected_total"))
    preview = sweeps.archive_preview(db())
    if expected is None or expected != preview.total:
        flash(
            f"The numbers changed since the page was shown: {preview.total} job(s) are due now. Check and try again."
        )
        return redirect(url_for("admin_mail.retention"), 303)
    try:
        archived = sweeps.archive_due(db(), lab().storage, actor=_actor())
    except (ValidationError, NotAllowed) as exc:
        flash(str(exc))
    else:
        flash(f"Archived {archived} job(s).")
    return redirect(url_for("admin_mail.retention"), 303)


@bp.post("/admin/retention/prune")
@admin_required
def prune_now():  # type: ignore[no-untyped-def]
    expected = whole_number(request.form.get("expected_total"))
    due = prune.plan(db())
    if expected is None or expected != due.count:
        flash(
            f"The numbers changed since the page was shown: {due.count} job(s) are due now. Check and try again."
        )
        return redirect(url_for("admin_mail.retention"), 303)
    try:
        pruned = prune.prune(db(), lab().storage, actor=_actor(), limit=due.count)
    except (ValidationError, NotAllowed) as exc:
        flash(str(exc))
    else:
        flash(f"Pruned {pruned} job(s): files deleted, the student's name and email removed.")
    return redirect(url_for("admin_mail.retention"), 303)
