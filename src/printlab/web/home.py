"""The front page: what the lab offers and a way back to a job; signed-in lab computers go to the dashboard."""

from __future__ import annotations

import re

from flask import Blueprint, redirect, render_template, request, session, url_for

from printlab.services.jobs.references import read_reference
from printlab.web.context import catalog_if_reachable, lab

bp = Blueprint("home", __name__)

#: The reference in a status link as emails and the "sent" page give it (…/status/<reference>).
_IN_LINK = re.compile(r"/(?:status|submit/done)/([A-Za-z0-9_.-]+)")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    if session.get("workstation_id"):
        return redirect(url_for("dashboard.index"))
    return render_template("home.html", catalog=catalog_if_reachable(), errors={}, link="")


@bp.post("/find-my-job")
def find_job():  # type: ignore[no-untyped-def]
    """Open the status page of the link a student pastes; a job number alone never shows a job."""
    link = (request.form.get("link") or "").strip()
    found = _IN_LINK.search(link)
    reference = found.group(1) if found else link
    if reference and read_reference(lab().config.secret_key, reference):
        return redirect(url_for("student.status", reference=reference), 303)
    if found:
        message = "That link is incomplete or was changed. Copy the whole link from the email again."
    elif link and len(link) < 20:
        message = (
            "A job number alone can't open a job, so no one else can look at yours. Paste the link "
            "from one of PrintLab's emails to you instead."
        )
    else:
        message = "Paste the whole link from one of PrintLab's emails to you (it starts with http)."
    return render_template(
        "home.html", catalog=catalog_if_reachable(), errors={"link": message}, link=link
    ), 422
