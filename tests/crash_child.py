"""Child process of the crash tests: runs a workflow transition and SIGKILLs itself at a chosen point.

Usage: crash_child.py <transition> <job id>@<checkpoint:N | after-commit> ..., with the PRINTLAB_*
variables of the test's database and storage in the environment. Python and the app are imported
once; then one forked process per job runs the transition and, at its crash point, prints
"died <point> <step>" and kills itself. This process prints "exit <point> <code>" for each (-9: it
was killed as planned; 3: the crash point was never reached).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

from sqlalchemy.orm import Session

from printlab import config
from printlab.db import make_engine, session_factory
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services.files import storage as storage_module
from printlab.services.files.storage import FileMove, Storage
from printlab.services.jobs import workflow
from printlab.services.lab.actors import Actor

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
            session, storage, job_id, actor=STAFF, method="CARD", weighed_g=40, payment_reference="R-1"
        )
    raise ValueError(f"unknown transition {name!r}")


def _crash(name: str, job_id: str, point: str, settings: config.Config) -> int:
    """In the forked process: arm the crash point, run the transition; 3 if it never crashed."""

    def die(step: str) -> None:
        # A file per crash point, written and synced before the kill: the siblings die at the same
        # moments, and lines they all wrote to one pipe were seen to go missing under load.
        report = os.open(
            os.path.join(os.environ["PRINTLAB_CRASH_REPORTS"], point), os.O_WRONLY | os.O_CREAT, 0o600
        )
        os.write(report, step.encode())
        os.fsync(report)
        os.close(report)
        os.kill(os.getpid(), signal.SIGKILL)

    if point.startswith("checkpoint:"):
        target = int(point.removeprefix("checkpoint:"))
        seen: list[str] = []

        def checkpoint(step: str) -> None:
            seen.append(step)
            if len(seen) == target:
                die(step)

        storage_module._checkpoint = checkpoint
    elif point == "after-commit":
        # FileMove.finish runs right after the commit and removes the sources: die before it does.
        FileMove.finish = lambda self, *args, **kwargs: die("after-commit")  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown crash point {point!r}")
    engine = make_engine(settings.database_url)  # after the fork: no connection is shared
    with session_factory(engine)() as session:
        run_transition(name, session, Storage(settings.storage_dir), job_id)
    return 3


def main(argv: list[str]) -> int:
    name, *targets = argv
    settings = config.load()
    children: dict[int, str] = {}
    for target in targets:
        job_id, point = target.split("@", 1)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _crash(name, job_id, point, settings)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = point
    for pid, point in children.items():
        _, status = os.waitpid(pid, 0)
        print(f"exit {point} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
