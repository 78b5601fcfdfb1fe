"""The background worker: runs due tasks and records a heartbeat; a thread in the web process or its own process."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from printlab.clock import utcnow
from printlab.config import Config
from printlab.db import write_transaction
from printlab.models import WorkerHeartbeat
from printlab.services import tasks
from printlab.services.files.storage import Storage

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15


def worker_id(kind: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{kind}"


def beat(session: Session, identity: str) -> None:
    now = utcnow()
    with write_transaction(session):
        row = session.scalars(
            select(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == identity).with_for_update()
        ).first()
        if row is None:
            session.add(WorkerHeartbeat(worker_id=identity, last_seen=now, started_at=now))
        else:
            row.last_seen = now


def handlers_for(storage: Storage) -> dict[str, tasks.Handler]:
    """Every task kind the worker knows, bound to the storage root."""
    from printlab.services.files import model_analysis

    return {model_analysis.TASK_KIND: lambda session, task: model_analysis.run(session, storage, task)}


def periodic_for(config: Config, storage: Storage) -> list[Callable[[Session], object]]:
    """Work the worker does on every tick besides tasks: the lab's sweeps (at most once a minute),
    email and webhook delivery (every tick, cheap when nothing is due), and the watch over the connected
    printers (its own thread, started on the first tick: polls, prints sent from PrintLab, their ends).
    Each catches its own errors."""
    from printlab.services import mail
    from printlab.services.jobs.print_watch import PrintWatch
    from printlab.services.upkeep import sweeps
    from printlab.services.webhooks.delivery import Deliverer as WebhookDeliverer

    return [
        sweeps.Sweeper(storage),
        mail.Deliverer.from_config(config),
        WebhookDeliverer.from_config(config),
        PrintWatch(storage, config.secret_key),
    ]


def build_worker(config: Config, sessions: sessionmaker[Session], storage: Storage, *, kind: str) -> Worker:
    """The one way a worker is assembled, for the web process's thread and `printlab worker` alike."""
    return Worker(
        sessions, handlers_for(storage), identity=worker_id(kind), periodic=periodic_for(config, storage)
    )


class Worker:
    """Runs tasks until stopped. Several workers (threads or processes, any machine) may run at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: dict[str, tasks.Handler],
        *,
        identity: str,
        poll_seconds: float = 1.0,
        periodic: list[Callable[[Session], object]] | None = None,
    ):
        self.sessions = sessions
        self.handlers = handlers
        self.identity = identity
        self.poll_seconds = poll_seconds
        self.periodic = periodic or []
        self.stop_event = threading.Event()
        self._last_beat = 0.0

    def run_pending(self) -> int:
        """Run every task that is due now; returns how many ran."""
        ran = 0
        with self.sessions() as session:
            while not self.stop_event.is_set() and tasks.run_one(session, self.handlers):
                ran += 1
        return ran

    def tick(self) -> None:
        with self.sessions() as session:
            now = utcnow().timestamp()
            if now - self._last_beat >= HEARTBEAT_SECONDS:
                beat(session, self.identity)
                self._last_beat = now
            for job in self.periodic:
                job(session)
        self.run_pending()

    def run_forever(self) -> None:
        log.info("worker %s started", self.identity)
        for job in self.periodic:  # work told to stop by an earlier stop() runs again
            resume = getattr(job, "resume", None)
            if callable(resume):
                resume()
        while not self.stop_event.is_set():
            try:
                self.tick()
            except Exception:  # a database blip must not kill the worker; it retries next tick
                log.exception("worker tick failed")
            self.stop_event.wait(self.poll_seconds)
        log.info("worker %s stopped", self.identity)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="printlab-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
        for job in self.periodic:  # work with threads of its own (the printer watch) ends with the worker
            stop = getattr(job, "stop", None)
            if callable(stop):
                stop()
