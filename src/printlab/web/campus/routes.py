"""Campus sign-in's pages: off to the campus provider and back (state, nonce, PKCE and the ID token
checked by Authlib), sign-out there too, and the admin page for people and groups."""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from printlab.config import OidcSettings
from printlab.domain.campus import CampusIdentity, ClaimNames, ClaimsProblem, Role, identity_from_claims
from printlab.services.errors import NotFound, ServiceError, ValidationError
from printlab.services.lab import campus, pins
from printlab.services.lab.staff import list_staff
from printlab.services.students import sign_in as student_sign_in
from printlab.web.auth.guard import PERSON_KEYS, admin_required, current_actor, current_person
from printlab.web.auth.routes import safe_next
from printlab.web.context import catalog, db, lab
from printlab.web.limits import limiter
from printlab.web.my.signed_in import remember
from printlab.web.my.signed_in import session_token as student_session_token

log = logging.getLogger(__name__)

bp = Blueprint("campus", __name__, template_folder="templates")

#: Seconds PrintLab waits for the campus provider (discovery, keys, token exchange).
PROVIDER_TIMEOUT = 10
#: Where the session keeps the page to return to, the ID token (for signing out at the provider), and
#: who is signing in: staff (the default) or a student opening "My requests".
NEXT_KEY, ID_TOKEN_KEY, PURPOSE_KEY = "campus_next", "campus_id_token", "campus_purpose"


def init_app(app: Flask, settings: OidcSettings | None) -> None:
    """Register the campus provider with Authlib when campus sign-in is configured."""
    if settings is None:
        return
    oauth = OAuth(app)
    oauth.register(
        "campus",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=settings.discovery_url,
        client_kwargs={
            "scope": settings.scopes,
            "code_challenge_method": "S256",
            "default_timeout": PROVIDER_TIMEOUT,
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    app.extensions["printlab.campus"] = oauth


def _client() -> Any:
    oauth = current_app.extensions.get("printlab.campus")
    if oauth is None:
        abort(404)
    return oauth.campus


def _settings() -> OidcSettings:
    settings = lab().config.oidc
    if settings is None:
        abort(404)
    return settings


def _done_url() -> str:
    return lab().config.base_url + url_for("campus.done")


def _problem(message: str, status: int = 400, *, student: bool | None = None):  # type: ignore[no-untyped-def]
    """Why the sign-in didn't happen, with the ways on: a student's (the email link), or staff's."""
    if student is None:
        student = session.get(PURPOSE_KEY) == "student"
    return render_template("campus/problem.html", message=message, student=student), status


@bp.get("/login/campus")
@limiter.limit("30 per minute")
def start():  # type: ignore[no-untyped-def]
    """Off to the campus provider's sign-in, with a fresh state, nonce and PKCE verifier."""
    client = _client()
    try:
        _check_issuer(client, _settings())
    except (requests.RequestException, ValueError, OAuthError) as exc:
        log.warning("campus provider unreachable: %s", exc)
        student = request.args.get("for") == "student"
        other_way = (
            "have a sign-in link emailed to you" if student else "sign in with the workstation password"
        )
        return _problem(
            f"The campus sign-in service isn't answering. Try again in a minute, or {other_way}.",
            503,
            student=student,
        )
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    session[PURPOSE_KEY] = "student" if request.args.get("for") == "student" else "staff"
    return client.authorize_redirect(_done_url())


def _check_issuer(client: Any, settings: OidcSettings) -> None:
    """The provider's discovery document must name the issuer PrintLab was configured with."""
    metadata = client.load_server_metadata()
    if metadata.get("issuer") != settings.issuer:
        raise ValueError(f"the provider says its issuer is {metadata.get('issuer')!r}")


@bp.get("/login/campus/done")
@limiter.limit("30 per minute")
def done():  # type: ignore[no-untyped-def]
    """Back from the provider: check everything, then sign the person in (or say why not)."""
    client, settings = _client(), _settings()
    try:
        token = client.authorize_access_token()
        claims = token.get("userinfo")
        if not claims:
            raise MissingClaimError("id_token")
        identity = identity_from_claims(
            settings.issuer,
            dict(claims),
            ClaimNames(settings.name_claim, settings.email_claim, settings.groups_claim),
        )
    except MismatchingStateError:
        return _problem("This sign-in link was already used or has expired. Start the campus sign-in again.")
    except OAuthError as exc:
        log.info("campus sign-in refused by the provider: %s", exc.error)
        if exc.error == "access_denied":
            return _problem("The campus sign-in was cancelled. Start it again when you're ready.")
        return _problem("The campus sign-in didn't complete. Start it again.")
    except ExpiredTokenError:
        return _problem(
            "The campus sign-in answered with an expired token (is this computer's clock right?). "
            "Start the sign-in again."
        )
    except (InvalidClaimError, MissingClaimError, JoseError) as exc:
        log.warning("campus sign-in token refused: %s", exc)
        return _problem("The campus sign-in's answer couldn't be trusted, so you weren't signed in.")
    except ClaimsProblem as exc:
        return _problem(str(exc))
    except requests.RequestException as exc:
        log.warning("campus provider unreachable: %s", exc)
        return _problem("The campus sign-in service isn't answering. Try again in a minute.", 503)
    if session.pop(PURPOSE_KEY, "staff") == "student":
        return _student_signed_in(identity, claims)
    person = campus.record_sign_in(db(), identity)
    if not campus.may_work(person, db()):
        return render_template("campus/waiting.html", person=person), 403
    target = session.pop(NEXT_KEY, None) or url_for("dashboard.index")
    # A person signing in at a signed-in workstation keeps the workstation (a per-person switch);
    # everything else from before the sign-in is dropped.
    kept = {key: session[key] for key in ("workstation_id", "workstation_epoch") if key in session}
    session.clear()
    session.update(kept)
    session.permanent = True
    session["person_id"], session["person_epoch"] = person.id, person.session_epoch
    session[ID_TOKEN_KEY] = token.get("id_token")
    flash(f"Signed in as {person.name}.")
    return redirect(safe_next(target), 303)


def _student_signed_in(identity: CampusIdentity, claims: Any):  # type: ignore[no-untyped-def]
    """A student's "My requests" opened by their campus account: its address, as the email link would."""
    session.pop(NEXT_KEY, None)
    if identity.email is None or claims.get("email_verified") is False:
        return _problem(
            "Your campus account didn't give PrintLab a confirmed email address. Use the email link instead.",
            student=True,
        )
    try:
        signed_in = student_sign_in.sign_in_vouched(db(), identity.email)
    except ValidationError:
        return _problem(
            "Your campus account's email address can't be used. Use the email link instead.", student=True
        )
    student_sign_in.sign_out(db(), student_session_token())  # a browser holds one session
    return remember(redirect(url_for("my.index"), 303), signed_in)


@bp.post("/login/campus/sign-out")
def sign_out():  # type: ignore[no-untyped-def]
    """End the person's PrintLab sessions; at a shared workstation the workstation stays signed in.
    Elsewhere, the campus provider is asked to sign them out too."""
    person = current_person()
    id_token = session.pop(ID_TOKEN_KEY, None)
    if person is not None:
        campus.end_sessions(db(), person.id, session.get("person_epoch"))
    for key in PERSON_KEYS:
        session.pop(key, None)
    if session.get("workstation_id"):
        flash("Signed out. This computer stays signed in for the next person.")
        return redirect(url_for("dashboard.index"), 303)
    session.clear()
    flash("Signed out.")
    client = current_app.extensions.get("printlab.campus")
    if client is None or id_token is None:
        return redirect(url_for("auth.login"), 303)
    try:
        return client.campus.logout_redirect(
            post_logout_redirect_uri=lab().config.base_url + url_for("auth.login"), id_token_hint=id_token
        )
    except (requests.RequestException, RuntimeError) as exc:  # no end-session endpoint, or unreachable
        log.info("campus sign-out at the provider skipped: %s", exc)
        return redirect(url_for("auth.login"), 303)


# -- admin: people and groups ------------------------------------------------------------------------


@bp.get("/admin/campus")
@admin_required
def admin():  # type: ignore[no-untyped-def]
    return _admin_page()


def _admin_page(errors: dict[str, str] | None = None, form: dict[str, str] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template(
        "campus/admin.html",
        people=campus.list_people(db()),
        groups=campus.list_group_roles(db()),
        configured=lab().config.oidc is not None,
        staff=list_staff(db(), active_only=True),
        zone=catalog().lab.time_zone,
        with_pins=pins.names_with_pins(db()),
        roles=[Role.STAFF, Role.ADMIN],
        errors=errors or {},
        form=form or {},
    ), status


@bp.post("/admin/campus/groups")
@admin_required
def set_group():  # type: ignore[no-untyped-def]
    form = {"group": request.form.get("group", ""), "role": request.form.get("role", "")}
    try:
        campus.set_group_role(db(), form["group"], form["role"], by=current_actor())
    except ValidationError as exc:
        db().rollback()
        return _admin_page(exc.errors, form, 400)
    except ServiceError as exc:
        db().rollback()
        flash(str(exc))
        return redirect(url_for("campus.admin"), 303)
    flash(
        f"{' '.join(form['group'].split())}: {Role(form['role']).label.lower() if form['role'] else 'no role'}."
    )
    return redirect(url_for("campus.admin"), 303)


@bp.post("/admin/campus/people/<person_id>")
@admin_required
def decide(person_id: str):  # type: ignore[no-untyped-def]
    decision = request.form.get("decision", "")
    try:
        if decision == "refuse":
            person = campus.refuse(db(), person_id, by=current_actor())
            flash(f"{person.name} can no longer sign in.")
        else:
            person = campus.approve(db(), person_id, decision, by=current_actor())
            flash(f"{person.name} can sign in as {Role(person.role).label.lower()}.")
    except NotFound:
        abort(404)
    except ValidationError as exc:
        db().rollback()
        return _admin_page(exc.errors, None, 400)
    except ServiceError as exc:
        db().rollback()
        flash(str(exc))
    return redirect(url_for("campus.admin"), 303)


@bp.post("/admin/campus/pins")
@admin_required
def set_staff_pin():  # type: ignore[no-untyped-def]
    name = (request.form.get("staff") or "").strip()
    try:
        pins.set_pin(db(), name, request.form.get("pin") or "", by=current_actor())
    except ValidationError as exc:
        db().rollback()
        return _admin_page(exc.errors, {"staff": name}, 400)
    except ServiceError as exc:
        db().rollback()
        flash(str(exc))
        return redirect(url_for("campus.admin"), 303)
    flash(f"{name}'s PIN is set.")
    return redirect(url_for("campus.admin"), 303)
