"""The worker's watch over the connected printers: polls every printer that is due, sends the prints staff
asked for, and follows each poll of a printing printer (`printing.follow`).

It runs in a thread of its own, started by the worker's first tick (the worker's own loop also runs
model checks that may take minutes, and the printers must not wait for them), with a small pool of
threads doing the talking: each poll or send is one unit of work with its own database session, so one
hung printer holds up only its own thread, never the others. Every unit is claimed in the database first
(`polling.claim_due`, `printing.send_run`), so any number of workers may run the watch at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from printlab.db import session_factory
from printlab.services.files.storage import Storage
from printlab.services.jobs import printing
from printlab.services.printers import polling

log = logging.getLogger(__name__)

#: How often the watch looks for due polls and prints to send.
TICK_SECONDS = 1.0
#: Threads talking to printers at once: a hung printer occupies one for a few seconds at most.
POOL_THREADS = 8


class PrintWatch:
    """The worker's periodic entry (`__call__(session)`) that keeps the watch's own thread running.

    `tick(sessions, now=…)` is one round, for tests that drive the watch with their own clock and
    `wait=True` to finish the round's units before it returns.
    """

    def __init__(self, storage: Storage, secret: str, *, threads: int = POOL_THREADS):
        self.storage = storage
        self.secret = secret
        self.connectors = polling.Connectors(secret)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="printlab-printers")
        self._busy: set[tuple[str, int]] = set()
        self._busy_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- as the worker's periodic ---------------------------------------------------------------------

    def __call__(self, session: Session) -> None:
        """Start the watch's thread on the worker's first tick (and again if it ever died)."""
        if self._thread is not None and self._thread.is_alive():
            return
        sessions = session_factory(session.get_bind())  # type: ignore[arg-type]
        self._thread = threading.Thread(
            target=self._run, args=(sessions,), name="printlab-print-watch", daemon=True
        )
        self._thread.start()

    def _run(self, sessions: sessionmaker[Session]) -> None:
        while not self._stop.is_set():
            try:
                self.tick(sessions)
            except Exception:  # a database blip must not end the watch; the next round tries again
                log.exception("printer watch round failed")
            self._stop.wait(TICK_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.connectors.close()

    # -- one round ------------------------------------------------------------------------------------

    def tick(
        self, sessions: sessionmaker[Session], *, now: datetime | None = None, wait: bool = False
    ) -> None:
        """Claim the polls that are due and the prints waiting to be sent, and hand each to the pool."""
        futures: list[Future[object]] = []
        with sessions() as session:
            with self._busy_lock:
                polling_now = {key for kind, key in self._busy if kind == "poll"}
                sending_now = {key for kind, key in self._busy if kind == "send"}
            for printer in polling.claim_due(session, now=now, skip=polling_now):
                futures.append(self._submit(("poll", printer.id), sessions, self._poll, printer, now))
            for run_id in printing.due_runs(session, now=now):
                if run_id not in sending_now:
                    futures.append(self._submit(("send", run_id), sessions, self._send, run_id, now))
        if wait:
            for future in futures:
                future.result()

    def _submit(
        self,
        key: tuple[str, int],
        sessions: sessionmaker[Session],
        unit: Callable[[Session, Any, datetime | None], object],
        item: object,
        now: datetime | None,
    ) -> Future[object]:
        with self._busy_lock:
            self._busy.add(key)

        def run() -> object:
            try:
                with sessions() as session:
                    return unit(session, item, now)
            except Exception:
                log.exception("printer work %s %s failed", *key)
                return None
            finally:
                with self._busy_lock:
                    self._busy.discard(key)

        return self._pool.submit(run)

    def _poll(self, session: Session, printer: polling.PrinterTarget, now: datetime | None) -> object:
        outcome = polling.poll_printer(session, printer, self.connectors, now=now)
        if outcome is not None:
            printing.follow(session, self.storage, outcome, now=now)
        return outcome

    def _send(self, session: Session, run_id: int, now: datetime | None) -> object:
        return printing.send_run(session, self.storage, run_id, secret=self.secret, now=now)
