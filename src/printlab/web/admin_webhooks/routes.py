"""Admin routes for webhooks: list and add endpoints, edit, pause, test, new secret, remove, retry failed deliveries."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for

from printlab.domain.webhooks import ATTEMPTS, EVENT_WORDS, EVENTS, what_happened
from printlab.models import WebhookDelivery
from printlab.services.errors import NotAllowed, NotFound, ValidationError
from printlab.services.lab.staff import list_staff
from printlab.services.webhooks import endpoints
from printlab.web.auth.guard import admin_required, current_actor
from printlab.web.context import catalog, db, lab, whole_number

bp = Blueprint("admin_webhooks", __name__, template_folder="templates")


def _staff():  # type: ignore[no-untyped-def]
    return list_staff(db(), active_only=True)


def _index(
    errors: dict[str, str] | None = None, form: Any = None, made: endpoints.NewSecret | None = None
) -> tuple[str, int]:
    return render_template(
        "admin_webhooks/index.html", summaries=endpoints.summaries(db()), events=EVENTS, staff=_staff(),
        zone=catalog().lab.time_zone, errors=errors or {}, form=form, made=made,
    ), 422 if errors else 200  # fmt: skip


def _body(row: WebhookDelivery) -> tuple[str, str]:
    """The delivery's event in words, and its body laid out for reading."""
    try:
        payload = json.loads(row.body)
    except ValueError:
        return EVENT_WORDS.get(row.kind, row.kind), row.body
    return what_happened(row.kind, payload.get("data")), json.dumps(payload, indent=2, ensure_ascii=False)


def _endpoint_page(
    endpoint_id: int,
    errors: dict[str, str] | None = None,
    form: Any = None,
    secret: str | None = None,
    status: int = 200,
) -> Any:
    before = whole_number(request.args.get("before"))
    try:
        log = endpoints.endpoint_log(db(), endpoint_id, before=before)
    except NotFound:
        abort(404)
    rows = [(row, *_body(row)) for row in log.deliveries]
    page = render_template(
        "admin_webhooks/endpoint.html", log=log, rows=rows, events=EVENTS, event_words=EVENT_WORDS, staff=_staff(),
        zone=catalog().lab.time_zone, errors=errors or {}, form=form, secret=secret, before=before, attempts=ATTEMPTS,
    )  # fmt: skip
    response = make_response(page, 422 if errors else status)
    if secret:
        response.headers["Cache-Control"] = "no-store"
    return response


def _entry() -> dict[str, Any]:
    form = request.form
    return {
        "name": form.get("name", ""),
        "url": form.get("url", ""),
        "chosen": form.getlist("events"),
        "allow_private": form.get("allow_private", ""),
    }


@bp.get("/admin/webhooks")
@admin_required
def index():  # type: ignore[no-untyped-def]
    return _index()


@bp.post("/admin/webhooks")
@admin_required
def add():  # type: ignore[no-untyped-def]
    try:
        made = endpoints.create(db(), lab().config.secret_key, **_entry(), by=current_actor())
    except ValidationError as exc:
        return _index(exc.errors, request.form)
    # The secret is on this answer only (never redirected to, never stored readable): copy it now.
    response = make_response(_index(made=made))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/webhooks/<int:endpoint_id>")
@admin_required
def endpoint(endpoint_id: int):  # type: ignore[no-untyped-def]
    return _endpoint_page(endpoint_id)


@bp.post("/admin/webhooks/<int:endpoint_id>")
@admin_required
def save(endpoint_id: int):  # type: ignore[no-untyped-def]
    try:
        endpoints.update_endpoint(db(), endpoint_id, **_entry(), by=current_actor())
    except ValidationError as exc:
        return _endpoint_page(endpoint_id, exc.errors, request.form)
    except NotFound:
        abort(404)
    flash("Endpoint saved.")
    return redirect(url_for("admin_webhooks.endpoint", endpoint_id=endpoint_id), 303)


def _acted(endpoint_id: int, action: Any, done: str) -> Any:
    """Run one of the endpoint page's buttons; its outcome as a message on the page."""
    try:
        result = action()
    except ValidationError as exc:
        flash("Not done: " + " ".join(exc.errors.values()))
    except NotFound:
        abort(404)
    except NotAllowed as exc:
        flash(f"Not done: {exc}")
    else:
        flash(done.format(result=result))
    return redirect(url_for("admin_webhooks.endpoint", endpoint_id=endpoint_id), 303)


@bp.post("/admin/webhooks/<int:endpoint_id>/state")
@admin_required
def set_state(endpoint_id: int):  # type: ignore[no-untyped-def]
    enabled = request.form.get("enabled") == "1"
    return _acted(
        endpoint_id,
        lambda: endpoints.set_enabled(db(), endpoint_id, enabled, by=current_actor()),
        "Endpoint resumed: events are sent again, starting with those that waited."
        if enabled
        else "Endpoint paused: nothing is sent, and no new events are kept for it, until it is resumed.",
    )


@bp.post("/admin/webhooks/<int:endpoint_id>/test")
@admin_required
def send_test(endpoint_id: int):  # type: ignore[no-untyped-def]
    return _acted(
        endpoint_id,
        lambda: endpoints.send_test(db(), endpoint_id, by=current_actor()),
        "Test event queued; it appears below once it is sent.",
    )


@bp.post("/admin/webhooks/<int:endpoint_id>/retry")
@admin_required
def retry(endpoint_id: int):  # type: ignore[no-untyped-def]
    delivery_id = whole_number(request.form.get("delivery"))
    return _acted(
        endpoint_id,
        lambda: endpoints.retry(db(), endpoint_id, delivery_id, by=current_actor()),
        "{result} failed deliveries will be sent again."
        if delivery_id is None
        else "The delivery will be sent again.",
    )


@bp.post("/admin/webhooks/<int:endpoint_id>/secret")
@admin_required
def new_secret(endpoint_id: int):  # type: ignore[no-untyped-def]
    try:
        made = endpoints.replace_secret(db(), lab().config.secret_key, endpoint_id, by=current_actor())
    except ValidationError as exc:
        flash("Not done: " + " ".join(exc.errors.values()))
        return redirect(url_for("admin_webhooks.endpoint", endpoint_id=endpoint_id), 303)
    except NotFound:
        abort(404)
    return _endpoint_page(endpoint_id, secret=made.secret)


@bp.post("/admin/webhooks/<int:endpoint_id>/remove")
@admin_required
def remove(endpoint_id: int):  # type: ignore[no-untyped-def]
    if request.form.get("confirm") != "yes":
        flash("Not removed: tick the box to confirm removing the endpoint and its delivery log.")
        return redirect(url_for("admin_webhooks.endpoint", endpoint_id=endpoint_id), 303)
    try:
        name = endpoints.remove(db(), endpoint_id, by=current_actor())
    except ValidationError as exc:
        flash("Not removed: " + " ".join(exc.errors.values()))
        return redirect(url_for("admin_webhooks.endpoint", endpoint_id=endpoint_id), 303)
    except NotFound:
        abort(404)
    flash(f"Endpoint “{name}” removed with its delivery log.")
    return redirect(url_for("admin_webhooks.index"), 303)
