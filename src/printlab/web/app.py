"""The Flask application factory: configuration, database, storage, security headers and error pages."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, make_response, render_template, request, session
from flask_openapi3 import OpenAPI
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from printlab import config as config_module
from printlab.clock import to_lab_time, utcnow
from printlab.config import Config, ConfigError
from printlab.db import check_database, make_engine, safe_url, schema_is_current, session_factory
from printlab.domain import printability
from printlab.domain.charging import kind_label, method_label, signed_usd
from printlab.domain.history import email_name
from printlab.domain.statuses import TAKES_FILES
from printlab.domain.text import is_clean
from printlab.logs import configure_logging
from printlab.models import Staff
from printlab.services.files.storage import JobTooLarge, Storage, StorageError, TooLarge
from printlab.services.lab.catalog import banner
from printlab.services.lab.staff import recently_added
from printlab.services.upkeep import health
from printlab.web.api.problems import from_validation, problem
from printlab.web.context import MAX_WHOLE, Lab, close_db, db, job_limit_bytes, lab, upload_limit_bytes
from printlab.web.context import forget_failed_session as _forget_failed_session
from printlab.web.job_version import version_of
from printlab.web.limits import counter_store, limiter
from printlab.web.uploads import FORM_OVERHEAD_BYTES, LabRequest, discard_incoming

log = logging.getLogger(__name__)
csrf = CSRFProtect()

_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class BoundedInt(IntegerConverter):
    """`<int:…>` in a route: an id no column could hold (…?page=99999999999999999999) is no page."""

    def __init__(self, url_map, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max", MAX_WHOLE)
        super().__init__(url_map, *args, **kwargs)


def _refuse_unusable_path_values(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A path part with NUL or another control character (/jobs/%00) names nothing: 404, not a lookup."""
    for value in (values or {}).values():
        if isinstance(value, str) and not is_clean(value):
            raise NotFound("There is no such page.")


def create_app(test_config: dict[str, Any] | None = None, *, config: Config | None = None) -> Flask:
    """Build the app. Reads PRINTLAB_* variables here (never at import time).

    Raises ConfigError with a one-line message when the configured database or storage root can't
    be used, or the database schema is behind: PrintLab never silently falls back to another one.
    """
    settings = config or config_module.load()
    configure_logging(settings.log_level)
    # flask-openapi3's Flask subclass: the API blueprint's pydantic models validate its requests and
    # make its OpenAPI document; every other blueprint is a plain Flask one and is unchanged.
    app = OpenAPI(
        __name__, doc_ui=False, validation_error_status=422, validation_error_callback=from_validation
    )
    app.request_class = LabRequest
    app.url_map.converters["int"] = BoundedInt
    app.url_value_preprocessor(_refuse_unusable_path_values)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        MAX_CONTENT_LENGTH=None,  # uploads are limited while streaming, with a friendly page
        WTF_CSRF_TIME_LIMIT=None,  # tied to the 12 h session instead
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        SESSION_COOKIE_NAME="printlab_session",
    )
    if test_config:
        app.config.update(test_config)

    engine = make_engine(settings.database_url)
    try:
        check_database(engine)
        if not schema_is_current(engine):
            raise ConfigError(
                f"database at {safe_url(settings.database_url)} needs migrating: run `printlab db upgrade`"
            )
        storage = Storage(settings.storage_dir)
        if settings.embedded_storage:
            storage.ensure_folders()
        try:
            storage.check_writable()
        except StorageError as exc:
            raise ConfigError(str(exc)) from None
    except ConfigError:
        engine.dispose()  # a refused start must not leave pooled connections open behind it
        raise

    if settings.is_production and not settings.secure_cookies:
        log.warning(
            "PRINTLAB_BASE_URL is %s: the session cookie is sent without Secure, so workstation "
            "sign-ins travel unencrypted. Serve PrintLab over HTTPS (docs/operations.md, Behind nginx) "
            "and set PRINTLAB_BASE_URL=https://…",
            settings.base_url,
        )
    app.extensions["printlab"] = Lab(
        config=settings, engine=engine, sessions=session_factory(engine), storage=storage
    )
    app.teardown_appcontext(close_db)
    app.teardown_request(discard_incoming)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage)
    # Said every time: the limiter is shared by every app in the process and would otherwise keep
    # the last app's choice (a test app that turned limits off would turn them off for the next).
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count)  # type: ignore[method-assign]
    if settings.worker == "thread" and not app.config.get("TESTING"):
        _start_worker(app)
    _register_blueprints(app)
    _register_campus_sign_in(app, settings)
    _register_errors(app)
    app.after_request(_security_headers)
    app.context_processor(_page_context)
    app.add_template_filter(_grams, "grams")
    app.add_template_filter(_volume, "volume")
    app.add_template_filter(printability.format_size, "model_size")
    app.add_template_global(printability.alternative_sizes, "alternative_sizes")
    app.add_template_global(printability.units_note, "units_note")
    app.add_template_filter(_lab_time, "lab_time")
    app.add_template_filter(email_name, "email_name")
    app.add_template_filter(signed_usd, "usd")  # "$4.00", "-$2.00"
    app.add_template_filter(method_label, "payment_method")
    app.add_template_filter(kind_label, "payment_kind")
    app.add_template_global(_is_new_staff, "is_new_staff")
    app.add_template_global(version_of, "job_version")
    app.add_template_global(TAKES_FILES, "statuses_taking_files")
    app.extensions["printlab.started"] = time.time()
    app.before_request(_refuse_oversized_uploads)
    return app


def _refuse_oversized_uploads():  # type: ignore[no-untyped-def]
    """Refuse an upload that announces more than the limit without parsing any of it.

    Under `printlab serve` waitress has refused these before reading them (web/serving.py); this
    covers other WSGI servers, and a limit lowered a moment ago on another app server.
    """
    length = request.content_length
    if request.method == "POST" and length is not None:
        limit = job_limit_bytes()
        if length > limit + FORM_OVERHEAD_BYTES:
            raise JobTooLarge(limit) if limit > upload_limit_bytes() else TooLarge(limit)
    return None


def _start_worker(app: Flask) -> None:
    from printlab.worker import build_worker

    context: Lab = app.extensions["printlab"]
    worker = build_worker(context.config, context.sessions, context.storage, kind="thread")
    worker.start_thread()
    app.extensions["printlab.worker"] = worker


def _register_campus_sign_in(app: Flask, settings: Config) -> None:
    from printlab.web.campus.routes import init_app

    init_app(app, settings.oidc)
    if settings.oidc is not None:
        # Signing out is a form whose answer sends the browser on to the campus provider's sign-out.
        parts = urlsplit(settings.oidc.issuer)
        provider = f"{parts.scheme}://{parts.netloc}"
        app.extensions["printlab.csp"] = _CSP.replace("form-action 'self'", f"form-action 'self' {provider}")


def _register_blueprints(app: Flask) -> None:
    from printlab.web.admin.routes import bp as admin_bp
    from printlab.web.admin_integrity.routes import bp as admin_integrity_bp
    from printlab.web.admin_mail.routes import bp as admin_mail_bp
    from printlab.web.admin_webhooks.routes import bp as admin_webhooks_bp
    from printlab.web.api.routes import api as api_bp
    from printlab.web.auth.routes import bp as auth_bp
    from printlab.web.campus.routes import bp as campus_bp
    from printlab.web.confirm.routes import bp as confirm_bp
    from printlab.web.dashboard.routes import bp as dashboard_bp
    from printlab.web.exports.routes import bp as exports_bp
    from printlab.web.home import bp as home_bp
    from printlab.web.jobs.routes import bp as jobs_bp
    from printlab.web.my.routes import bp as my_bp
    from printlab.web.printers.board import bp as printer_board_bp
    from printlab.web.printers.routes import bp as printers_bp
    from printlab.web.reports.routes import bp as reports_bp
    from printlab.web.student.routes import bp as student_bp
    from printlab.web.student_actions.routes import bp as student_actions_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(campus_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(printer_board_bp)
    app.register_blueprint(exports_bp)
    app.register_blueprint(jobs_bp)
    app.register_blueprint(student_bp)
    app.register_blueprint(confirm_bp)
    app.register_blueprint(my_bp)
    app.register_blueprint(student_actions_bp)
    app.register_blueprint(admin_mail_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_integrity_bp)
    app.register_blueprint(admin_webhooks_bp)
    app.register_blueprint(printers_bp)
    app.register_blueprint(reports_bp)
    app.register_api(api_bp)  # type: ignore[attr-defined]
    # The API's callers sign with a token or are a browser session that may only read (web/api/access.py).
    csrf.exempt(api_bp)
    app.add_url_rule("/healthz", "healthz", _healthz)
    csrf.exempt("printlab.web.app._healthz")


def _grams(value: float | None) -> str:
    """'42 g', '3.5 g', 'under 1 g' — as precise as a person needs."""
    if value is None:
        return "—"
    if value < 1:
        return "under 1 g"
    return f"{value:.1f} g" if value < 10 else f"{value:,.0f} g"


def _volume(mm3: float | None) -> str:
    """'0.0000043 mm³', '7.94 cm³': as many digits as make it true (domain rule)."""
    return "—" if mm3 is None else printability.format_volume(mm3)


def _lab_time(moment: datetime | None, zone: str) -> str:
    """A stored UTC time as the lab reads it: '26 Nov 2026 14:05 CST'."""
    return to_lab_time(moment, zone).strftime("%d %b %Y %H:%M %Z") if moment else ""


def _is_new_staff(member: Staff) -> bool:
    return recently_added(member, utcnow())


def _banner_or_nothing() -> str:
    # Error pages render this too, including when the database is what failed.
    if g.get("database_failed"):
        return ""
    try:
        return banner(db())
    except SQLAlchemyError:
        _forget_failed_session()
        return ""


def _workstation_or_nothing():  # type: ignore[no-untyped-def]
    """The signed-in workstation for the page header; None when the database can't say (an error
    page must render without it rather than fail a second time)."""
    from printlab.web.auth.guard import current_workstation

    if not session.get("workstation_id") or g.get("database_failed"):
        return g.get("workstation")
    try:
        return current_workstation()
    except SQLAlchemyError:
        _forget_failed_session()
        return None


def _signed_in_or_nothing():  # type: ignore[no-untyped-def]
    """Who is signed in, for the page header (a workstation, a campus account, or both); None when
    nobody is or the database can't say."""
    from printlab.web.auth.guard import SignedIn, current_person, current_pin_staff

    workstation = _workstation_or_nothing()
    person = pin_staff = None
    if not g.get("database_failed"):
        try:
            if session.get("person_id") is not None:
                person = current_person()
            if person is None and workstation is not None and session.get("pin_staff") is not None:
                pin_staff = current_pin_staff()
        except SQLAlchemyError:
            _forget_failed_session()
    if workstation is None and person is None:
        return None
    return SignedIn(workstation, person, pin_staff)


def _page_context() -> dict[str, Any]:
    return {
        "workstation": _workstation_or_nothing(),
        "signed_in": _signed_in_or_nothing(),
        "campus_sign_in": lab().config.oidc is not None,
        "banner": _banner_or_nothing(),
        "endpoints": current_app.view_functions,
    }


def _healthz():  # type: ignore[no-untyped-def]
    """The overall state for anyone (a load balancer, a monitor); each part's state for a signed-in lab
    computer only, since versions, paths and error texts help an attacker more than a passer-by."""
    state = health.check(lab().engine, lab().storage, counter_store())
    status = "down" if not state.ok else "degraded" if state.degraded else "ok"
    body: dict[str, Any] = {"status": status}
    if _signed_in_for_health():
        body["components"] = state.components
    return jsonify(body), 200 if state.ok else 503


def _signed_in_for_health() -> bool:
    from printlab.web.auth.guard import current_workstation  # the guard imports the app's context

    if not session.get("workstation_id"):
        return False
    try:
        return current_workstation() is not None
    except SQLAlchemyError:
        # The database is what's down, so the session can't be re-checked: its signed cookie is all
        # there is, and the staff member at that computer needs to see what failed.
        _forget_failed_session()
        return True


def _security_headers(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault("Content-Security-Policy", current_app.extensions.get("printlab.csp", _CSP))
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _error_page(status: int, title: str, message: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if request.path.startswith("/api/"):
        return problem(status, message, headers=headers)
    if _wants_json():
        return jsonify({"error": title, "message": message}), status
    return render_template("error.html", status=status, title=title, message=message), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_exc: CSRFError):  # type: ignore[no-untyped-def]
        return _error_page(
            400,
            "Form expired",
            "The page was open too long or in another tab. Go back, reload and try again.",
        )

    @app.errorhandler(TooLarge)
    def too_large(exc: TooLarge):  # type: ignore[no-untyped-def]
        if isinstance(exc, JobTooLarge):
            return _error_page(
                413, "Files too large", f"{exc} Send fewer files, or ask the lab staff for help."
            )
        return _error_page(
            413, "File too large", f"{exc} Make the model smaller or ask the lab staff for help."
        )

    @app.errorhandler(429)
    def too_many(_exc: HTTPException):  # type: ignore[no-untyped-def]
        # The submission form answers its own refusals (web/student/routes.py keeps the form).
        return _error_page(429, "Too many attempts", "Please wait a few minutes, then try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        titles = {
            400: "Form can't be used",
            404: "Not found",
            403: "Not allowed",
            405: "Not allowed",
            429: "Too many requests",
        }
        # A 405 says which methods the path takes (RFC 9110), whatever shape the page has.
        allow = {k: v for k, v in exc.get_headers() if k == "Allow"}
        page = _error_page(
            exc.code or 500, titles.get(exc.code or 500, exc.name), exc.description or "", allow
        )
        if allow and not request.path.startswith("/api/"):
            response = make_response(page)
            response.headers.update(allow)
            return response
        return page

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: SQLAlchemyError):  # type: ignore[no-untyped-def]
        # The database is unreachable, gone or refusing connections: say so, touch it no more.
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        _forget_failed_session()
        return _error_page(
            503,
            "PrintLab can't reach its database",
            "Nothing was changed. The lab's database isn't answering right now; please try again in a "
            "few minutes, and if it keeps happening, tell the lab manager.",
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        # Logged in full for the operator; the person sees a plain page, never a traceback.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if isinstance(exc, SQLAlchemyError):
            _forget_failed_session()  # the page itself must not ask the failed session again
        return _error_page(
            500,
            "Something went wrong",
            "Nothing was changed. Please try again; if it keeps happening, tell the lab staff.",
        )
