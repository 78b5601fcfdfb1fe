"""Background tasks and the worker: claimed once, leased, retried with backoff, visible when they fail."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from printlab.clock import utcnow
from printlab.db import session_factory, write_transaction
from printlab.models import Task, TaskStatus, WorkerHeartbeat
from printlab.services import tasks
from printlab.worker import Worker, beat


def add_tasks(session, count, kind="probe", when=None):
    when = when or utcnow()
    with write_transaction(session):
        created = [tasks.enqueue(session, kind, payload={"n": i}, now=when) for i in range(count)]
    return [t.id for t in created]


def test_claim_finish_and_nothing_left(session):
    (task_id,) = add_tasks(session, 1)
    claimed = tasks.claim(session)
    assert claimed.id == task_id and claimed.attempts == 1
    assert tasks.claim(session) is None  # leased: not handed out twice
    tasks.finish(session, task_id)
    session.expire_all()
    assert session.get(Task, task_id).status == TaskStatus.DONE


def test_a_crashed_workers_task_comes_back_after_the_lease(session):
    (task_id,) = add_tasks(session, 1)
    assert tasks.claim(session).id == task_id
    assert tasks.claim(session, now=utcnow() + tasks.LEASE - timedelta(seconds=5)) is None
    again = tasks.claim(session, now=utcnow() + tasks.LEASE + timedelta(seconds=5))
    assert again.id == task_id and again.attempts == 2


def test_failures_back_off_then_end_failed_and_visible(session):
    (task_id,) = add_tasks(session, 1)

    def broken(_session, _task):
        raise RuntimeError("disk on fire")

    moment = utcnow()
    for attempt, wait in enumerate(tasks.BACKOFF, start=1):
        assert tasks.run_one(session, {"probe": broken}, now=moment)
        session.expire_all()
        task = session.get(Task, task_id)
        assert (task.status, task.attempts) == (TaskStatus.PENDING, attempt)
        assert task.run_after == moment + wait
        assert "disk on fire" in task.last_error
        moment = task.run_after
    assert tasks.run_one(session, {"probe": broken}, now=moment)
    session.expire_all()
    task = session.get(Task, task_id)
    assert task.status == TaskStatus.FAILED and task.finished_at is not None
    assert not tasks.run_one(session, {"probe": broken}, now=moment + timedelta(days=1))


def test_retry_later_is_not_logged_as_a_crash(session):
    (task_id,) = add_tasks(session, 1)

    def not_yet(_session, _task):
        raise tasks.RetryLater("file is moving")

    tasks.run_one(session, {"probe": not_yet})
    session.expire_all()
    task = session.get(Task, task_id)
    assert task.status == TaskStatus.PENDING and task.last_error == "file is moving"


def test_only_known_kinds_are_claimed(session):
    add_tasks(session, 1, kind="someone_elses")
    assert tasks.claim(session, kinds=("probe",)) is None


def test_two_workers_run_every_task_exactly_once(engine, session):
    ids = add_tasks(session, 60)
    seen: list[int] = []
    lock = threading.Lock()

    def record(_session, task):
        with lock:
            seen.append(task.id)

    factory = session_factory(engine)
    workers = [Worker(factory, {"probe": record}, identity=f"w{i}") for i in range(2)]
    threads = [threading.Thread(target=w.run_pending) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(seen) == sorted(ids)
    statuses = set(session.scalars(select(Task.status)))
    assert statuses == {TaskStatus.DONE}


def test_heartbeat_and_health(session, signed_in_client):
    beat(session, "test-host:1:thread")
    beat(session, "test-host:1:thread")
    assert session.scalars(select(WorkerHeartbeat.worker_id)).all() == ["test-host:1:thread"]
    body = signed_in_client.get("/healthz").get_json()
    assert body["components"]["worker"]["status"] == "ok"
