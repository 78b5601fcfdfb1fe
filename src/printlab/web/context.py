"""What a request needs from the app: the lab's config, a database session per request, the storage root."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from printlab.config import Config
from printlab.domain.catalog import Catalog
from printlab.domain.text import is_clean
from printlab.services.files.storage import Storage
from printlab.services.lab.catalog import load_catalog

log = logging.getLogger(__name__)


@dataclass
class Lab:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage


def lab() -> Lab:
    return current_app.extensions["printlab"]


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = lab().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        try:
            session.close()
        except Exception:  # a lost connection: the pool discards it; the answer was already made
            log.warning("closing the request's database session failed", exc_info=True)


def catalog() -> Catalog:
    """The lab catalog in force, read once per request."""
    if "catalog" not in g:
        g.catalog = load_catalog(db())
        db().rollback()  # end the read so later writes start a fresh transaction
        body_limit = current_app.extensions.get("printlab.body_limit")
        if body_limit is not None:  # `printlab serve`: its HTTP server refuses larger bodies unread
            body_limit.note(request_limit_bytes(g.catalog))
    return g.catalog


def catalog_if_reachable() -> Catalog | None:
    """The catalog, or None when the database can't be reached (for pages that work without it)."""
    try:
        return catalog()
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        forget_failed_session()
        return None


def forget_failed_session() -> None:
    """After a database error: nothing more of this request asks the database, and its session is
    dropped (closing it may fail too when the connection is gone)."""
    g.database_failed = True
    failed = g.pop("db", None)
    if failed is not None:
        try:
            failed.close()
        except Exception:  # the connection is already gone; the pool discards it
            log.debug("closing the session after a database error failed", exc_info=True)


def upload_limit_bytes() -> int:
    """The largest one file may be."""
    return catalog().upload_limit_mb * 1024 * 1024


def job_limit_bytes() -> int:
    """The largest a request's files may be together: a whole job's limit (never below one file's)."""
    return request_limit_bytes(catalog())


def request_limit_bytes(cat: Catalog) -> int:
    return max(cat.upload_limit_mb, cat.job_upload_limit_mb) * 1024 * 1024


#: The largest id or count a request may name: PostgreSQL's integer (ids are SERIAL columns).
MAX_WHOLE = 2**31 - 1


def acting_as() -> str | None:
    """The staff name picked in "Acting as", or None when none was picked (or it can't be a name)."""
    name = (request.form.get("acting_as") or "").strip()
    return name if name and is_clean(name) else None


def whole_number(text: str | None) -> int | None:
    """A query or form value read as a whole number 0…MAX_WHOLE, or None: plain digits only.

    (int() would also take "1_000", " 12 ", "+5" and numbers larger than any column.)
    """
    text = (text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_WHOLE else None
