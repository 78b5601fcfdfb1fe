"""/my: a student's requests behind a sign-in link by email (no password); thin routes over services.students.

Asking for a link answers the same for every well-formed address, with jobs or without. The link's
GET only shows a "Sign in" button (mail scanners fetch links); its POST uses it up. Every page here
is personal or carries a capability in its address: none is cached or sent on as a Referer.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from printlab.clock import to_lab_time
from printlab.domain.student_messages import masked_email
from printlab.services.errors import ValidationError
from printlab.services.students import sign_in
from printlab.services.students.sign_in import LinkRefused, LinkState, TooManyLinks
from printlab.services.views.my_requests import my_requests
from printlab.web.context import catalog, db, lab
from printlab.web.limits import browser_id, limiter, per_browser
from printlab.web.my.signed_in import forget, remember, session_token, student_email

bp = Blueprint("my", __name__, template_folder="templates")

#: Links asked for from one client address in an hour: a classroom behind one NAT asks together.
PER_ADDRESS = "60 per hour"
#: Links asked for from one browser in an hour (each address also has its own limit, in the service).
PER_BROWSER = "10 per hour"
#: Sign-in attempts with links from one client address in an hour.
LINK_POSTS = "30 per hour"


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.errorhandler(429)
def _too_many(_exc: Exception):  # type: ignore[no-untyped-def]
    return render_template("my/too_many.html", message=None, minutes=_minutes()), 429


def _ask(errors: dict[str, str] | None = None, email: str = "", status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("my/ask.html", errors=errors or {}, email=email, minutes=_minutes()), status


@bp.get("/my/sign-in")
def ask():  # type: ignore[no-untyped-def]
    if student_email():
        return redirect(url_for("my.index"), 303)
    browser_id()  # the per-browser limit counts by it
    return _ask()


@bp.post("/my/sign-in")
@limiter.limit(PER_ADDRESS, methods=["POST"])
@limiter.limit(PER_BROWSER, key_func=per_browser, methods=["POST"])
def send_link():  # type: ignore[no-untyped-def]
    typed = request.form.get("student_email", "")
    try:
        address = sign_in.request_link(db(), typed)
    except ValidationError as exc:
        return _ask(exc.errors, typed[:200], 422)
    except TooManyLinks as exc:
        when = to_lab_time(exc.retry_at, catalog().lab.time_zone).strftime("%H:%M")
        message = (
            f"We've already sent several links to this address in the last hour. Use the newest one, "
            f"or ask again after {when}."
        )
        return render_template("my/too_many.html", message=message, minutes=_minutes()), 429
    return render_template("my/sent.html", email=address, minutes=_minutes())


def _minutes() -> int:
    return int(sign_in.LINK_LIFETIME.total_seconds() // 60)


def _refused(state: LinkState):  # type: ignore[no-untyped-def]
    status = 404 if state == LinkState.INVALID else 410
    return render_template(
        "my/refused.html", state=state.value, minutes=_minutes(), errors={}, email=""
    ), status


@bp.get("/my/sign-in/<token>")
def link(token: str):  # type: ignore[no-untyped-def]
    state = sign_in.link_state(db(), token)
    if state != LinkState.USABLE:
        return _refused(state)
    return render_template("my/link.html", token=token)


@bp.post("/my/sign-in/<token>")
@limiter.limit(LINK_POSTS, methods=["POST"])
def use_link(token: str):  # type: ignore[no-untyped-def]
    try:
        signed_in = sign_in.sign_in(db(), token)
    except LinkRefused as exc:
        return _refused(exc.state)
    sign_in.sign_out(db(), session_token())  # a browser holds one session: the one it had ends
    return remember(redirect(url_for("my.index"), 303), signed_in)


@bp.get("/my")
def index():  # type: ignore[no-untyped-def]
    email = student_email()
    if email is None:
        return redirect(url_for("my.ask"), 303)
    found = my_requests(db(), email, lab().config.secret_key)
    return render_template(
        "my/list.html", email=email, requests=found.requests, more=found.more, zone=catalog().lab.time_zone
    )


@bp.post("/my/sign-out")
def sign_out():  # type: ignore[no-untyped-def]
    sign_in.sign_out(db(), session_token())
    flash("You're signed out of My requests in this browser.")
    return forget(redirect(url_for("my.ask"), 303))


@bp.post("/my/sign-out-everywhere")
def sign_out_everywhere():  # type: ignore[no-untyped-def]
    email = student_email()
    sign_in.sign_out_everywhere(db(), session_token())
    if email:
        flash(
            f"You're signed out everywhere: every browser signed in as {masked_email(email)} needs a new "
            "link to see your requests."
        )
    return forget(redirect(url_for("my.ask"), 303))
