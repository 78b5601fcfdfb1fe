"""Rate limits for public forms and sign-in, counted per client address (and, for submissions, per
email address and per browser as well).

Counters live where PRINTLAB_RATELIMIT_STORAGE says (Redis when several web processes serve). When
that storage can't be reached, each process counts in its own memory instead and logs a warning, so
sign-in, submitting and confirming go on working with the limits still in force (per process, not
lab-wide); the shared counters are used again once the storage answers. /healthz reports it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

from flask import current_app, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage

from printlab.services.upkeep.health import CounterStore

limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[],
    headers_enabled=True,
    # Storage down: count in this process's memory (same limits) and check back now and then.
    in_memory_fallback_enabled=True,
    # Any other storage failure (e.g. mid-request) is logged, never turned into a 500.
    swallow_errors=True,
    # An unreachable Redis host fails fast instead of holding every request.
    storage_options={"socket_connect_timeout": 2, "socket_timeout": 2},
)


def counter_store() -> CounterStore | None:
    """Where this process's rate-limit counters live, for the health checks (None: limits are off)."""
    if not limiter.enabled:  # RATELIMIT_ENABLED=False: no counters, so nothing to report
        return None
    storage = limiter.storage
    return CounterStore(shared=not isinstance(storage, MemoryStorage), reachable=storage.check)


def browser_id() -> str:
    """This browser's id, kept in its (signed) session cookie; given on first use."""
    current = session.get("browser")
    if not isinstance(current, str) or not current:
        current = session["browser"] = secrets.token_urlsafe(16)
    return current


def per_browser() -> str:
    """The rate-limit key of the browser sending the request."""
    return f"browser:{browser_id()}"


def per_email() -> str:
    """The rate-limit key of the email address typed into the form (as the form stores it).

    Keyed by a keyed hash, never the address itself: the limiter logs and stores its keys.
    """
    typed = unicodedata.normalize("NFC", request.form.get("student_email", ""))
    address = " ".join(typed.split()).lower()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return f"email:{hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:32]}"
