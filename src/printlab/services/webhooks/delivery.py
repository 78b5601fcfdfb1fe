"""Sending webhook deliveries: claimed with a lease, signed, POSTed with no transaction open, recorded.

The steps are the mail outbox's (services/mail/delivery.py):

1. *Claim* (one short transaction): due PENDING rows of enabled endpoints, FOR UPDATE SKIP LOCKED on
   PostgreSQL; each gets `claimed_by`, one more attempt and a lease (`next_attempt_at` = now + LEASE).
2. *Start*: the row is re-read under its lock (skipped unless still ours), the endpoint's address is
   checked again — every address its name resolves to must be allowed — and `sending_at` is set.
3. *Send*, holding no transaction, to the address that was checked (the name is kept for the TLS
   certificate check and the Host header), with the Standard Webhooks headers: `webhook-id` (the
   same on every attempt), `webhook-timestamp` (this attempt's) and `webhook-signature`.
4. *Record*: DELIVERED on any 2xx; otherwise the failure in words and the next attempt on the
   Standard Webhooks schedule (`domain.webhooks.BACKOFF`), FAILED after the last one or at once for
   a failure no retry can mend (a refused address, a secret that can't be read).

A worker stopped between 3 and 4 leaves its row PENDING with `sending_at` set; once the lease runs out
another worker sends it again under the same `webhook-id` and marks it `interrupted`, so a receiver that
de-duplicates by `webhook-id` (as the convention asks) takes each event exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import httpx
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.config import Config
from printlab.db import write_transaction
from printlab.domain.webhooks import ATTEMPTS, WebhookRuleError, checked_url, next_attempt_after, signature
from printlab.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from printlab.services import leases, sealing
from printlab.services.webhooks import targets
from printlab.services.webhooks.endpoints import SECRET_PURPOSE as PURPOSE

log = logging.getLogger(__name__)

#: A claimed delivery is reserved this long for its worker: far longer than one attempt can take.
LEASE = timedelta(minutes=2)
#: Rows claimed at once; small, so a stopping worker hands few back.
BATCH = 10
#: One run stops claiming after this long, so the worker's heartbeat and tasks keep going.
RUN_SECONDS = 10.0
#: An endpoint must answer within this many seconds (connecting within CONNECT_SECONDS).
TIMEOUT_SECONDS = 10.0
CONNECT_SECONDS = 5.0
USER_AGENT = "PrintLab-Webhooks/1"


class AttemptFailed(Exception):
    """An attempt that didn't reach a 2xx answer, in words; `permanent` when retrying can't help."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        permanent: bool = False,
        unreachable: bool = False,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent
        #: No answer at all (refused, timed out): the endpoint's other messages now would fare the same.
        self.unreachable = unreachable


@dataclass
class Report:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Started:
    delivery_id: int
    endpoint_id: int
    url: str
    allow_private: bool
    secret: str
    message_id: str
    body: str


def ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificates checked against the public authorities, and the lab's own CA file when it has one."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class Sender:
    """POSTs one signed delivery to an endpoint; one per worker, its connections kept between attempts."""

    def __init__(self, identity: str, *, ca_file: Path | None = None, timeout: float = TIMEOUT_SECONDS):
        self.identity = identity
        self.timeout = timeout
        self._client = httpx.Client(
            verify=ssl_context(ca_file),
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_SECONDS, timeout)),
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would connect to addresses never checked here
        )

    def close(self) -> None:
        self._client.close()

    def post(self, started: _Started, *, now: datetime) -> int:
        """Send the delivery; its HTTP status when 2xx. Raises AttemptFailed."""
        try:
            target = checked_url(started.url)
            addresses = targets.checked_addresses(target, allow_private=started.allow_private)
        except targets.NameNotFound as exc:  # a resolver's blip, or a name not yet published: tried again
            raise AttemptFailed(f"Not sent: {exc}", unreachable=True) from None
        except WebhookRuleError as exc:
            raise AttemptFailed(f"Not sent: {exc}", permanent=True) from None
        timestamp = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
        body = started.body.encode("utf-8")
        host_header = target.host if target.port == 443 else f"{_literal(target.host)}:{target.port}"
        headers = {
            "Host": host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": started.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(started.secret, started.message_id, timestamp, body),
        }
        extensions = {} if target.is_ip else {"sni_hostname": target.host}
        response: httpx.Response | None = None
        for number, address in enumerate(addresses, 1):
            # Each address the name leads to, in the resolver's order, until one takes the connection.
            url = f"https://{_literal(address)}:{target.port}{target.path}"
            try:
                request = self._client.build_request(
                    "POST", url, content=body, headers=headers, extensions=extensions
                )
                response = self._client.send(request, stream=True)
                response.close()  # the answer's body is not wanted (and may be large)
                break
            except httpx.TimeoutException:
                raise AttemptFailed(
                    f"The endpoint didn't answer within {self.timeout:g} seconds.", unreachable=True
                ) from None
            except httpx.ConnectError as exc:
                if number == len(addresses) or "refused" not in str(exc).lower():
                    raise AttemptFailed(_connect_words(exc), unreachable=True) from None
            except httpx.HTTPError as exc:
                raise AttemptFailed(f"The connection to the endpoint failed: {type(exc).__name__}.") from None
        assert response is not None
        status = response.status_code
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise AttemptFailed(
                f"The endpoint answered {status} (a redirect); redirects aren't followed — register the "
                "address it points to.",
                status_code=status,
            )
        phrase = f" ({response.reason_phrase})" if response.reason_phrase else ""
        raise AttemptFailed(f"The endpoint answered {status}{phrase}.", status_code=status)


def _literal(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _connect_words(exc: httpx.ConnectError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
        return "The endpoint's HTTPS certificate couldn't be verified."
    if "refused" in text.lower():
        return "The endpoint refused the connection (nothing is listening there)."
    return "The endpoint couldn't be reached."


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:webhooks-{uuid.uuid4().hex[:6]}"


# -- the delivery run ----------------------------------------------------------------------------


def deliver_due(
    session: Session,
    sender: Sender,
    lab_secret: str,
    *,
    now: datetime | None = None,
    run_seconds: float = RUN_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
) -> Report:
    """Send every delivery that is due, until none is left, the run's time is up, or `should_stop()`.
    Raises only database errors; every sending problem ends up on its row."""
    report = Report()
    started = time.monotonic()
    #: Endpoints that didn't answer in this run, and how they failed.
    down: dict[int, AttemptFailed] = {}

    def clock() -> datetime:
        return now or utcnow()

    while not should_stop() and time.monotonic() - started < run_seconds:
        waiting = claim(session, sender.identity, now=clock())
        if not waiting:
            break
        try:
            while waiting and not should_stop() and time.monotonic() - started < run_seconds:
                delivery_id = waiting.pop(0)
                begun = _start(session, sender.identity, delivery_id, lab_secret, now=clock(), report=report)
                if begun is None:
                    continue
                failure = down.get(begun.endpoint_id)
                if failure is None:
                    try:
                        status = sender.post(begun, now=clock())
                    except AttemptFailed as exc:
                        failure = exc
                        if exc.unreachable:  # its other messages in this run wait for their next try unsent
                            down[begun.endpoint_id] = exc
                    else:
                        _record(
                            session, sender.identity, delivery_id, None, status, now=clock(), report=report
                        )
                        continue
                _record(session, sender.identity, delivery_id, failure, None, now=clock(), report=report)
        finally:
            release(session, sender.identity, waiting, now=clock())
    return report


def claim(session: Session, worker: str, *, now: datetime, limit: int = BATCH) -> list[int]:
    """Reserve up to `limit` due deliveries of enabled endpoints for this worker; their ids, oldest due first."""
    enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
    due = (
        (WebhookDelivery.status == WebhookDeliveryStatus.PENDING)
        & (WebhookDelivery.next_attempt_at <= now)
        & WebhookDelivery.endpoint_id.in_(enabled)
    )

    def resumed(row: WebhookDelivery) -> None:
        if row.sending_at is not None:  # its last worker stopped mid-send: the receiver may have it
            row.interrupted = True
            row.sending_at = None

    return leases.claim(
        session, WebhookDelivery, due, worker=worker, now=now, lease=LEASE, limit=limit, prepare=resumed
    )


def release(session: Session, worker: str, delivery_ids: list[int], *, now: datetime) -> None:
    """Hand back claimed deliveries this worker didn't start (it is stopping): due again at once."""
    leases.release(
        session, WebhookDelivery, delivery_ids, pending=WebhookDeliveryStatus.PENDING, worker=worker, now=now
    )


def _lock(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return leases.lock(session, WebhookDelivery, delivery_id)


def _start(
    session: Session, worker: str, delivery_id: int, lab_secret: str, *, now: datetime, report: Report
) -> _Started | None:
    """Mark the delivery as being sent, and what to send; None when it is no longer this worker's."""
    failure: AttemptFailed | None = None
    with write_transaction(session):
        row = _lock(session, delivery_id)
        if row is None or row.status != WebhookDeliveryStatus.PENDING or row.claimed_by != worker:
            return None
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is None:
            return None
        try:
            secret = sealing.unseal(lab_secret, endpoint.secret_sealed, PURPOSE)
        except sealing.Unreadable:
            failure = AttemptFailed(
                "Not sent: the endpoint's signing secret can't be read (the lab's secret key changed). "
                "Make a new signing secret on the endpoint's page.",
                permanent=True,
            )
        else:
            row.sending_at = now
            return _Started(
                row.id, endpoint.id, endpoint.url, endpoint.allow_private, secret, row.message_id, row.body
            )
    _record(session, worker, delivery_id, failure, None, now=now, report=report)
    return None


def _record(
    session: Session,
    worker: str,
    delivery_id: int,
    failure: AttemptFailed | None,
    status_code: int | None,
    *,
    now: datetime,
    report: Report,
) -> None:
    with write_transaction(session):
        row = _lock(session, delivery_id)
        if row is None or row.status != WebhookDeliveryStatus.PENDING or row.claimed_by != worker:
            return  # our lease ran out mid-send and another worker has it now
        row.sending_at = None
        row.last_attempt_at = now
        if failure is None:
            row.status = WebhookDeliveryStatus.DELIVERED
            row.delivered_at = now
            row.last_status_code = status_code
            row.last_error = None
            report.delivered += 1
            log.info("webhook %s (%s) delivered", row.message_id, row.kind)
            return
        row.last_status_code = failure.status_code
        row.last_error = str(failure)[:500]
        wait = None if failure.permanent else next_attempt_after(row.attempts)
        if wait is None or row.attempts >= ATTEMPTS:
            row.status = WebhookDeliveryStatus.FAILED
            report.failed += 1
            log.error("webhook %s (%s) failed for good: %s", row.message_id, row.kind, row.last_error)
        else:
            row.next_attempt_at = now + wait
            report.retrying += 1
            log.warning(
                "webhook %s (%s) attempt %s failed, retrying at %s: %s",
                row.message_id, row.kind, row.attempts, row.next_attempt_at.isoformat(timespec="seconds"),
                row.last_error,
            )  # fmt: skip


class Deliverer:
    """The worker's periodic webhook job: sends whatever is due on every tick (cheap when nothing is)."""

    def __init__(self, lab_secret: str, *, ca_file: Path | None = None, sender: Sender | None = None):
        self.lab_secret = lab_secret
        self.sender = sender or Sender(identity(), ca_file=ca_file)
        self._stopping = threading.Event()

    @classmethod
    def from_config(cls, config: Config) -> Deliverer:
        return cls(config.secret_key, ca_file=config.webhook_ca_file)

    def __call__(self, session: Session, *, now: datetime | None = None) -> Report | None:
        if self._stopping.is_set():
            return None
        try:
            return deliver_due(
                session, self.sender, self.lab_secret, now=now, should_stop=self._stopping.is_set
            )
        except Exception:  # the database went away mid-run: leases bring the rows back; try next tick
            session.rollback()
            log.exception("webhook delivery run failed")
            return None

    def stop(self) -> None:
        """Finish the delivery being sent, hand back the others claimed, send nothing more. The kept
        connections close when the process ends (closing them here could cut that last send short)."""
        self._stopping.set()

    def resume(self) -> None:
        """Send again: the worker started running after a stop."""
        self._stopping.clear()


@dataclass(frozen=True)
class Backlog:
    waiting: int
    failed: int


def backlog(session: Session) -> Backlog:
    """Deliveries waiting and failed, for /healthz and the health page (one query)."""
    waiting, failed = session.execute(
        select(
            func.sum(case((WebhookDelivery.status == WebhookDeliveryStatus.PENDING, 1), else_=0)),
            func.sum(case((WebhookDelivery.status == WebhookDeliveryStatus.FAILED, 1), else_=0)),
        ).where(WebhookDelivery.status.in_((WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.FAILED)))
    ).one()
    return Backlog(waiting=int(waiting or 0), failed=int(failed or 0))
