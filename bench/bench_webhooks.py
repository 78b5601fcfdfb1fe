"""Benchmark: what webhooks cost a change, and how fast one worker delivers them.

Goals (issue 15): a status change told to three endpoints takes under 2 ms more than one told to none
(the deliveries are written in the change's transaction), and one worker delivers at least 50 webhooks
a second to a receiver on the lab's network (signed, over HTTPS, one connection kept open).

1. *Cost to a change*: a write transaction that announces a job's status change, timed N times with no
   endpoint and with three endpoints that chose the event (p50/p95 ms).
2. *Delivery*: N test events queued for one endpoint, then `delivery.deliver_due` runs as the worker
   would, to the tests' HTTPS receiver on loopback (its certificate from a throwaway CA); deliveries a
   second, and the receiver's count to check nothing was lost or sent twice.

    PYTHONPATH=src .venv/bin/python bench/bench_webhooks.py [--changes 500] [--deliveries 1000]
        [--database-url postgresql://…]   (default: a fresh SQLite file)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

#: The tests' HTTPS receiver is the one the benchmark sends to: the repository's root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    from sqlalchemy import delete, func, select
    from tests.webhook_receiver import Receiver

    from printlab.clock import utcnow
    from printlab.db import make_engine, session_factory, upgrade, write_transaction
    from printlab.models import Job, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
    from printlab.services.webhooks import delivery, endpoints, events

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        receiver = Receiver(Path(folder)).start()
        try:
            with session_factory(engine)() as session:
                now = utcnow()
                job = Job(id="b" * 32, status="PENDING", display_name="BenchStudent_Filament_Red_bbbbbb",
                          material="Filament", color="Red", printer="Prusa MK4S", created_at=now, updated_at=now)  # fmt: skip
                session.add(job)
                session.commit()

                def changes() -> list[float]:
                    spent = []
                    for _ in range(args.changes):
                        started = time.perf_counter()
                        with write_transaction(session):
                            events.status_changed(
                                session, job, "UPLOADED", by="Bench", details={}, now=utcnow()
                            )
                        spent.append((time.perf_counter() - started) * 1000)
                    return spent

                alone = changes()
                for n in range(3):
                    made = endpoints.create(session, SECRET, name=f"Bench {n}", url=receiver.url,
                                            chosen=["job.status_changed"], allow_private=True)  # fmt: skip
                told = changes()
                queued = session.scalar(select(func.count()).select_from(WebhookDelivery))
                assert queued == 3 * args.changes, queued
                with write_transaction(session):
                    session.execute(delete(WebhookDelivery))
                    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id != made.endpoint.id))
                receiver.secret = made.secret

                with write_transaction(session):
                    for _ in range(args.deliveries):
                        events.test_event(session, made.endpoint.id, by="Bench", now=utcnow())
                sender = delivery.Sender("bench", ca_file=receiver.ca_file)
                started = time.perf_counter()
                while session.scalar(
                    select(func.count()).where(WebhookDelivery.status == WebhookDeliveryStatus.PENDING)
                ):
                    delivery.deliver_due(session, sender, SECRET, run_seconds=3600)
                spent = time.perf_counter() - started
                sender.close()
                ids = receiver.ids()
        finally:
            receiver.stop()
            engine.dispose()

    backend = "PostgreSQL" if args.database_url else "SQLite"
    extra = statistics.median(told) - statistics.median(alone)
    print(f"{backend}: a status change's transaction, no endpoint: p50 {statistics.median(alone):.2f} ms, "
          f"p95 {percentile(alone, 0.95):.2f} ms; three endpoints: p50 {statistics.median(told):.2f} ms, "
          f"p95 {percentile(told, 0.95):.2f} ms ({extra:+.2f} ms)")  # fmt: skip
    rate = args.deliveries / spent
    print(f"{backend}: {args.deliveries} webhooks delivered in {spent:.1f} s = {rate:.0f} a second; "
          f"received {len(ids)}, distinct {len(set(ids))}")  # fmt: skip
    print("goal: < 2 ms more a change —", "met" if extra < 2 else "NOT met")
    print("goal: ≥ 50 deliveries a second —", "met" if rate >= 50 else "NOT met")
    assert len(ids) == len(set(ids)) == args.deliveries, "a webhook was lost or sent twice"


if __name__ == "__main__":
    main()
