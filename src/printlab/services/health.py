"""Component states for /healthz and the admin health page: database, storage, and what runs behind them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from printlab.models import OutboxMessage, OutboxStatus
from printlab.services.storage import Storage, StorageError


@dataclass(frozen=True)
class Health:
    ok: bool
    components: dict[str, dict[str, Any]]


def check(engine: Engine, storage: Storage) -> Health:
    """Probe each component without raising; `ok` is False when the database or storage is down."""
    components: dict[str, dict[str, Any]] = {}
    try:
        with Session(engine) as session:
            session.execute(text("SELECT 1"))
            backlog = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
            )
        components["database"] = {"status": "ok", "backend": engine.dialect.name}
        components["outbox"] = {"status": "ok", "pending": backlog}
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        components["database"] = {"status": "down", "error": first[0] if first else type(exc).__name__}
    try:
        storage.check_writable()
        usage = shutil.disk_usage(storage.root)
        components["storage"] = {"status": "ok", "free_bytes": usage.free}
    except (StorageError, OSError) as exc:
        components["storage"] = {"status": "down", "error": str(exc)}
    ok = all(components[name]["status"] == "ok" for name in ("database", "storage"))
    return Health(ok=ok, components=components)
