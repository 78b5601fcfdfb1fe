"""Child process of the crash tests: runs one workflow transition and SIGKILLs itself at a chosen point.

Usage: crash_child.py <transition> <job id> <checkpoint:N | after-commit>, with the PRINTLAB_* variables
of the test's database and storage in the environment. Prints where it died, then dies; exits 3 if the
chosen point was never reached.
"""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy.orm import Session

from printlab import config
from printlab.db import make_engine, session_factory
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services import storage as storage_module
from printlab.services import workflow
from printlab.services.storage import FileMove, Storage
from printlab.services.workflow import Actor

STAFF = Actor("Alex Rivera", "LAB-PC-1")  # the factories' staff member

#: The transitions the crash tests run: name → (status before, status after).
TRANSITIONS: dict[str, tuple[Status, Status]] = {
    "approve": (Status.UPLOADED, Status.PENDING),
    "reject": (Status.UPLOADED, Status.REJECTED),
    "start_printing": (Status.READYTOPRINT, Status.PRINTING),
    "record_pickup": (Status.COMPLETED, Status.PAIDPICKEDUP),
}


def run_transition(name: str, session: Session, storage: Storage, job_id: str) -> Job:
    """Do `name` to the job as staff would from the dashboard."""
    if name == "approve":
        job = session.get(Job, job_id)
        assert job is not None
        recommended = workflow.candidate_files(storage, job)[0]  # the newest slicer file
        return workflow.approve(
            session, storage, job_id, actor=STAFF, weight_g=42, time_hours=2.2, authoritative_file=recommended
        )
    if name == "reject":
        return workflow.reject(session, storage, job_id, actor=STAFF, reasons=["Walls too thin"])
    if name == "start_printing":
        return workflow.start_printing(session, storage, job_id, actor=STAFF)
    if name == "record_pickup":
        return workflow.record_pickup(
            session, storage, job_id, actor=STAFF, weighed_g=40, payment_reference="R-1"
        )
    raise ValueError(f"unknown transition {name!r}")


def _die(where: str) -> None:
    print(where, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    name, job_id, crash_at = argv
    settings = config.load()
    storage = Storage(settings.storage_dir)
    if crash_at.startswith("checkpoint:"):
        target = int(crash_at.removeprefix("checkpoint:"))
        seen: list[str] = []

        def checkpoint(step: str) -> None:
            seen.append(step)
            if len(seen) == target:
                _die(step)

        storage_module._checkpoint = checkpoint
    elif crash_at == "after-commit":
        # FileMove.finish runs right after the commit and removes the sources: die before it does.
        FileMove.finish = lambda self, *args, **kwargs: _die("after-commit")  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown crash point {crash_at!r}")
    engine = make_engine(settings.database_url)
    with session_factory(engine)() as session:
        run_transition(name, session, storage, job_id)
    print("not reached", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
