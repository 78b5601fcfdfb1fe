"""Email: the outbox written in a change's transaction, and its delivery by SMTP or to the mail folder.

`outbox` (writing rows) imports only `models`; delivery, rendering and transport may import `jobs`,
`lab`, `domain`, `models`, `db` and `clock`; never `web`. This module is the worker's and pages' facade.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from printlab.config import Config
from printlab.services.mail.delivery import (
    BACKOFF,
    LEASE,
    Backlog,
    DeliveryReport,
    Mailer,
    Overview,
    backlog,
    claim,
    deliver_due,
    failed_for_job,
    overview,
    release,
    retry,
)
from printlab.services.mail.transport import FolderTransport, SmtpTransport, Transport, transport_for

__all__ = [
    "BACKOFF",
    "LEASE",
    "Backlog",
    "Deliverer",
    "DeliveryReport",
    "FolderTransport",
    "Mailer",
    "Overview",
    "SmtpTransport",
    "Transport",
    "backlog",
    "claim",
    "deliver_due",
    "failed_for_job",
    "overview",
    "release",
    "retry",
    "transport_for",
]

log = logging.getLogger(__name__)


@dataclass
class Deliverer:
    """The worker's periodic email job: delivers whatever is due, on every tick (cheap when nothing is).

    A run lasts at most delivery.RUN_SECONDS, so the worker's heartbeat, tasks and stop signal are
    never held up for long by a slow mail server.
    """

    mailer: Mailer

    @classmethod
    def from_config(cls, config: Config) -> Deliverer:
        identity = f"{socket.gethostname()}:{os.getpid()}:mail-{uuid.uuid4().hex[:6]}"
        return cls(Mailer.from_config(config, identity=identity))

    def __call__(self, session: Session, *, now: datetime | None = None) -> DeliveryReport | None:
        try:
            return deliver_due(session, self.mailer, now=now)
        except Exception:  # the database went away mid-run: leases bring the rows back; try next tick
            session.rollback()
            log.exception("email delivery run failed")
            return None
