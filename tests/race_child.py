"""A second app process for the concurrency tests: one workflow call per stdin line, started at a given instant."""

from __future__ import annotations

import json
import sys
import time
import traceback
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from printlab import config
from printlab.db import make_engine, session_factory
from printlab.domain.statuses import InvalidTransition
from printlab.services.errors import ConflictError
from printlab.services.files.storage import Storage
from printlab.services.jobs import printing, student_actions, workflow
from printlab.services.jobs.quote_links import ConfirmOutcome
from printlab.services.jobs.status_change import Expected
from printlab.services.lab.actors import Actor, Student


class NotConfirmed(ConflictError):
    """The student's link no longer confirms the job (someone else moved it first)."""


def student_confirms(
    session: Session, storage: Storage, job_id: str, *, actor: Actor, expected: Expected | None, token: str
) -> None:
    """The student's click on the confirm link: no staff member, no page version, just the token."""
    result = workflow.confirm(session, storage, token)
    if result.outcome != ConfirmOutcome.CONFIRMED:
        raise NotConfirmed(f"The link answered {result.outcome.value}.")


def student_cancels(
    session: Session, storage: Storage, job_id: str, *, actor: Actor, expected: Expected | None
) -> None:
    """The student's "Yes, cancel my request" from their status page (its status and version)."""
    student_actions.cancel_by_student(
        session, storage, job_id, student=Student.by_status_link(job_id), expected=expected
    )


class NotSent(ConflictError):
    """This worker didn't send the print: another had claimed it (or it was closed)."""


def worker_sends(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    expected: Expected | None,
    run_id: int,
    secret: str,
) -> None:
    """A worker's send step for one print run waiting to go to its printer (the watch's unit of work)."""
    outcome = printing.send_run(session, storage, run_id, secret=secret)
    if outcome != "started":
        raise NotSent(f"The run was {outcome}.")


#: The calls a race may make; each takes (session, storage, job_id, *, actor, expected, **args).
ACTIONS = {
    "approve": workflow.approve,
    "complete": workflow.complete,
    "record_pickup": workflow.record_pickup,
    "override_status": workflow.override_status,
    "confirm": student_confirms,
    "student_cancel": student_cancels,
    "send_print": worker_sends,
}


def wait_until(instant: float) -> None:
    """Sleep until just before `instant` (wall clock, shared by every process), then spin onto it."""
    time.sleep(max(0.0, instant - time.time() - 0.002))
    while time.time() < instant:
        pass


def run(session: Session, storage: Storage, command: dict[str, Any]) -> dict[str, Any]:
    """Make the command's call as its staff member would from their page; report what happened."""
    actor = Actor(command["staff"], command["workstation"])
    seen = command.get("expected")
    expected = (
        Expected(status=seen["status"], updated_at=datetime.fromisoformat(seen["updated_at"]))
        if seen
        else None
    )
    call = ACTIONS[command["action"]]
    wait_until(command["at"])
    started = time.time()
    try:
        call(session, storage, command["job_id"], actor=actor, expected=expected, **command["args"])
    except Exception as exc:
        result: dict[str, Any] = {
            "ok": False,
            "error": type(exc).__name__,
            "bases": [cls.__name__ for cls in type(exc).__mro__],
            "message": str(exc),
        }
        if not isinstance(exc, ConflictError | InvalidTransition):  # anything else is a bug to show
            result["traceback"] = traceback.format_exc()
    else:
        result = {"ok": True}
    return {**result, "started": started, "ended": time.time()}


def main() -> None:
    settings = config.load()  # the PRINTLAB_* variables the test passed, as an app process reads them
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:  # connect now, so the first race doesn't start with a handshake
        connection.execute(text("SELECT 1"))
    sessions = session_factory(engine)
    storage = Storage(settings.storage_dir)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        with sessions() as session:
            print(json.dumps(run(session, storage, json.loads(line))), flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
