"""The front page: students go to the form, signed-in lab computers go to the dashboard."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, session, url_for

bp = Blueprint("home", __name__)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    if session.get("workstation_id"):
        return redirect(url_for("dashboard.index"))
    return render_template("home.html")
