"""Component states for /healthz and the admin health page: database, storage, and what runs behind them."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.models import Task, TaskStatus, WorkerHeartbeat
from printlab.services import mail
from printlab.services.files.storage import Storage, StorageError
from printlab.services.webhooks import delivery as webhook_delivery

log = logging.getLogger(__name__)

#: A worker that hasn't been heard from for this long is reported as stale.
WORKER_STALE = timedelta(minutes=2)
#: An email due for this long without being sent means delivery is stuck (server down, no worker).
OUTBOX_STALE = timedelta(minutes=15)


@dataclass(frozen=True)
class Health:
    ok: bool
    components: dict[str, dict[str, Any]]

    @property
    def degraded(self) -> bool:
        """Serving, but a component needs attention (failed emails, rate limits counted per process)."""
        return any(component["status"] == "degraded" for component in self.components.values())


@dataclass(frozen=True)
class CounterStore:
    """Where the rate-limit counters live, as the web layer sees it."""

    #: True for a server every web process shares (Redis); False for this process's memory.
    shared: bool
    reachable: Callable[[], bool]


def check(engine: Engine, storage: Storage, counters: CounterStore | None = None) -> Health:
    """Probe each component without raising; `ok` is False when the database or storage is down."""
    components: dict[str, dict[str, Any]] = {}
    try:
        with Session(engine) as session:
            session.execute(text("SELECT 1"))
            mail_backlog = mail.backlog(session)
            hooks = webhook_delivery.backlog(session)
            last_beat = session.scalar(select(func.max(WorkerHeartbeat.last_seen)))
            tasks_due = session.scalar(
                select(func.count()).select_from(Task).where(Task.status == TaskStatus.PENDING)
            )
        components["database"] = {"status": "ok", "backend": engine.dialect.name}
        components["outbox"] = _outbox_state(mail_backlog)
        # Like mail, webhooks that gave up never turn /healthz red; "degraded" is for monitoring.
        components["webhooks"] = {
            "status": "degraded" if hooks.failed else "ok", "waiting": hooks.waiting, "failed": hooks.failed,
        }  # fmt: skip
        components["worker"] = _worker_state(last_beat, tasks_due or 0)
    except SQLAlchemyError as exc:
        # /healthz is public: the driver's message (host, port, database name) goes to the log only.
        log.warning("health check: database unreachable: %s", str(getattr(exc, "orig", None) or exc).strip())
        components["database"] = {"status": "down", "error": "unreachable"}
    try:
        storage.check_writable()
        usage = shutil.disk_usage(storage.root)
        components["storage"] = {"status": "ok", "free_bytes": usage.free, "total_bytes": usage.total}
    except (StorageError, OSError) as exc:
        log.warning("health check: storage unusable: %s", exc)
        components["storage"] = {"status": "down", "error": "not writable"}
    if counters is not None:
        components["rate_limits"] = _rate_limit_state(counters)
    ok = all(components[name]["status"] == "ok" for name in ("database", "storage"))
    return Health(ok=ok, components=components)


def _worker_state(last_beat: datetime | None, tasks_due: int) -> dict[str, Any]:
    # The worker's absence doesn't make the site unusable (work queues up), so it never turns
    # /healthz red on its own; monitoring can alert on "stale".
    if last_beat is None:
        return {"status": "never seen", "tasks_pending": tasks_due}
    age = (utcnow() - last_beat).total_seconds()
    state = "ok" if age <= WORKER_STALE.total_seconds() else "stale"
    return {"status": state, "last_seen_seconds_ago": round(age), "tasks_pending": tasks_due}


def _outbox_state(backlog: mail.Backlog) -> dict[str, Any]:
    # Like the worker, mail trouble never turns /healthz red (staff can go on working and nothing
    # is lost); "degraded" is for monitoring: failed emails, or due ones not going out.
    stuck = backlog.oldest_due_seconds > OUTBOX_STALE.total_seconds()
    return {
        "status": "degraded" if backlog.failed or stuck else "ok",
        "pending": backlog.pending,
        "failed": backlog.failed,
        "oldest_due_seconds": backlog.oldest_due_seconds,
    }


def _rate_limit_state(counters: CounterStore) -> dict[str, Any]:
    # Without the shared counters every web process counts in its own memory: the site keeps
    # working and the limits still hold, per process instead of lab-wide, so this never turns
    # /healthz red either; "degraded" is for monitoring.
    if not counters.shared:
        return {"status": "ok", "counters": "this process"}
    try:
        reachable = counters.reachable()
    except Exception:  # a probe must answer, whatever the client library raises
        reachable = False
    if reachable:
        return {"status": "ok", "counters": "shared"}
    log.warning("health check: rate-limit storage unreachable; each web process counts on its own")
    return {"status": "degraded", "counters": "each process on its own", "error": "unreachable"}
