"""Demo data for a first look: staff, a workstation, account codes, and about 20 jobs in every status from real model files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.submission import validate_submission
from printlab.models import AccountCode, Job, OutboxMessage, Staff, Workstation
from printlab.services.files.storage import Storage
from printlab.services.jobs import submissions, workflow
from printlab.services.lab import account_codes, workstations
from printlab.services.lab import staff as staff_service
from printlab.services.lab.actors import Actor

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo_data"
DEMO_WORKSTATION = "FrontDesk"
DEMO_STAFF = ("Alex Rivera", "Sam Okafor", "Priya Natarajan")


@dataclass(frozen=True)
class DemoResult:
    summary: str
    workstation: str
    password: str


# (student, email, discipline, class, method, color, printer, model file, final status, age in hours)
_JOBS = (
    ("Jane Doe", "jane.doe@example.edu", "Engineering", "ME 2110", "Filament", "True Red", "Prusa MK4S", "stl_binary_20mm_xyz_cube.stl", "UPLOADED", 2),
    ("José Núñez", "jose.nunez@example.edu", "Architecture", "ARCH 4010", "Filament", "True White", "Prusa XL", "3mf_consortium_multiple_cylinders.3mf", "UPLOADED", 30),
    ("Siobhán O'Brien", "sobrien@example.edu", "Art", "ART 1200", "Resin", "Clear", "Formlabs Form 3", "stl_binary_nonwatertight_teapot.stl", "UPLOADED", 50),
    ("Mary-Jane Watson", "mj.watson@example.edu", "Interior Design", "N/A", "Filament", "Blue", "Prusa MK4S", "box.obj", "UPLOADED", 80),
    ("Wei Chen", "wei.chen@example.edu", "Engineering", "ECE 3000", "Filament", "Gray", "Raise3D Pro 2 Plus", "3mf_inch_featuretype.3MF", "UPLOADED", 5),
    ("Amara Okonkwo", "amara.o@example.edu", "Landscape Architecture", "LARC 3100", "Filament", "Forest Green", "Prusa MK4S", "obj_fandisk.obj", "PENDING", 20),
    ("Lucas Martin", "lucas.martin@example.edu", "Hobby/Personal", "N/A", "Resin", "Gray", "Formlabs Form 3", "stl_binary_solid_header_trailing_byte_HalfDonut.stl", "PENDING", 40),
    ("Hannah Schmidt", "h.schmidt@example.edu", "Engineering", "ME 3340", "Filament", "True Black", "Prusa MK4S", "stl_binary_20mm_xyz_cube.stl", "PENDING", 100),
    ("Diego Alvarez", "diego.a@example.edu", "Architecture", "ARCH 2020", "Filament", "True Orange", "Prusa XL", "3mf_consortium_multiple_cylinders.3mf", "READYTOPRINT", 26),
    ("Fatima Zahra", "fzahra@example.edu", "Art", "ART 3300", "Resin", "White", "Formlabs Form 3", "stl_binary_nonwatertight_teapot.stl", "READYTOPRINT", 60),
    ("Noah Williams", "noah.w@example.edu", "Other", "N/A", "Filament", "Lime Green", "Prusa MK4S", "box.obj", "READYTOPRINT", 12),
    ("Emma Johansson", "emma.j@example.edu", "Engineering", "AE 2010", "Filament", "Electric Blue", "Raise3D Pro 2 Plus", "obj_fandisk.obj", "PRINTING", 30),
    ("Kenji Tanaka", "kenji.t@example.edu", "Interior Design", "ID 1100", "Filament", "True Gold", "Prusa MK4S", "stl_binary_20mm_xyz_cube.stl", "PRINTING", 48),
    ("Olivia Brown", "olivia.b@example.edu", "Art", "ART 2210", "Filament", "Glow in the Dark", "Prusa XL", "3mf_inch_featuretype.3MF", "COMPLETED", 70),
    ("Mateo Rossi", "mateo.r@example.edu", "Engineering", "ME 4182", "Resin", "Black", "Formlabs Form 3", "stl_binary_solid_header_trailing_byte_HalfDonut.stl", "COMPLETED", 120),
    ("Aisha Bello", "aisha.b@example.edu", "Architecture", "ARCH 1010", "Filament", "Light Purple", "Prusa MK4S", "stl_binary_nonwatertight_teapot.stl", "COMPLETED", 200),
    ("Liam O'Connor", "liam.oc@example.edu", "Hobby/Personal", "N/A", "Filament", "Copper", "Prusa MK4S", "box.obj", "PAIDPICKEDUP", 150),
    ("Sofia García", "sofia.g@example.edu", "Engineering", "ISYE 3133", "Filament", "True Silver", "Prusa XL", "obj_fandisk.obj", "PAIDPICKEDUP", 300),
    ("Ethan Clarke", "ethan.c@example.edu", "Other", "N/A", "Filament", "True Yellow", "Prusa MK4S", "3mf_consortium_multiple_cylinders.3mf", "REJECTED", 90),
    ("Zoë Dubois", "zoe.d@example.edu", "Art", "ART 1000", "Resin", "Clear", "Formlabs Form 3", "3mf_inch_featuretype.3MF", "REJECTED", 180),
    ("Grace Lee", "grace.lee@example.edu", "Interior Design", "ID 2200", "Filament", "Bronze", "Prusa MK4S", "stl_binary_20mm_xyz_cube.stl", "ARCHIVED", 24 * 100),
)  # fmt: skip

# The workflow path to each status: (step, hours after upload).
_PATHS: dict[str, tuple[str, ...]] = {
    "UPLOADED": (),
    "PENDING": ("approve",),
    "READYTOPRINT": ("approve", "confirm"),
    "PRINTING": ("approve", "confirm", "start"),
    "COMPLETED": ("approve", "confirm", "start", "complete"),
    "PAIDPICKEDUP": ("approve", "confirm", "start", "complete", "pickup"),
    "REJECTED": ("reject",),
    "ARCHIVED": ("approve", "confirm", "start", "complete", "pickup", "archive"),
}


def load(session: Session, storage: Storage) -> DemoResult:
    """Add the demo data once; later runs only reset the demo workstation's password."""
    password = workstations.generate_password()
    if session.get(Workstation, DEMO_WORKSTATION) is None:
        workstations.add_workstation(session, DEMO_WORKSTATION, password, is_admin=True)
    else:
        workstations.reset_password(session, DEMO_WORKSTATION, password)
    for name in DEMO_STAFF:
        if session.get(Staff, name) is None:
            staff_service.add_staff(session, name)
    for code, title, active in _ACCOUNT_CODES:
        if session.get(AccountCode, code) is None:
            account_codes.add_code(session, code, title)
            if not active:
                account_codes.set_active(session, code, False)
    existing = session.scalar(select(func.count()).select_from(Job)) or 0
    if existing:
        return DemoResult(f"Demo data already loaded ({existing} jobs).", DEMO_WORKSTATION, password)
    now = utcnow()
    for index, row in enumerate(_JOBS):
        _make_job(session, storage, row, now, DEMO_STAFF[index % len(DEMO_STAFF)])
    return DemoResult(
        f"Loaded {len(_JOBS)} demo jobs, {len(DEMO_STAFF)} staff and workstation {DEMO_WORKSTATION}.",
        DEMO_WORKSTATION,
        password,
    )


def _make_job(session: Session, storage: Storage, row: tuple, now: datetime, staff: str) -> None:  # type: ignore[type-arg]
    name, email, discipline, class_number, method, color, printer, model, status, age = row
    form = {
        "student_name": name, "student_email": email, "discipline": discipline, "class_number": class_number,
        "print_method": method, "color": color, "printer": printer, "acknowledged_minimum_charge": "on",
    }  # fmt: skip
    submission, errors = validate_submission(form, model, DEFAULT_CATALOG)
    assert submission is not None, errors
    started = now - timedelta(hours=age)
    with open(DEMO_DIR / model, "rb") as handle:
        received = storage.receive(handle, 50 * 1024 * 1024)
    job = submissions.submit(session, storage, submission, received, now=started)
    if model == "box.obj":  # an OBJ's material library travels with it
        shutil.copyfile(DEMO_DIR / "box.mtl", storage.resolve(job.file_path).with_suffix(".mtl"))  # type: ignore[arg-type]
    actor = Actor(staff, DEMO_WORKSTATION)
    steps = _PATHS[status]
    moment = started
    for step in steps:
        moment += timedelta(hours=min(4.0, age / (len(steps) + 1)))
        _STEPS[step](session, storage, job.id, actor, moment, method, printer)
    if status == "UPLOADED" and model == "stl_binary_20mm_xyz_cube.stl":
        # A sliced file saved beside the upload, as staff do, so approval has a candidate to pick.
        target = storage.resolve(job.file_path).with_name(f"{job.display_name}.gcode")  # type: ignore[arg-type]
        shutil.copyfile(DEMO_DIR / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", target)


def _approve(
    session: Session, storage: Storage, job_id: str, actor: Actor, at: datetime, method: str, _p: str
) -> None:
    grams = 42.5 if method == "Filament" else 18.0
    workflow.approve(session, storage, job_id, actor=actor, weight_g=grams, time_hours=3.2, now=at)


def _confirm(
    session: Session, storage: Storage, job_id: str, actor: Actor, at: datetime, _m: str, _p: str
) -> None:
    # Confirm the way the student does: with the link from the quote email waiting in the outbox.
    quote = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.job_id == job_id, OutboxMessage.template == "quote")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert quote is not None and quote.context
    workflow.confirm(session, storage, quote.context["token"], now=at)


#: Account codes a lab keeps (the last one out of use), and how each demo pickup was paid.
_ACCOUNT_CODES = (
    ("ENG-1042", "Engineering — senior design projects", True),
    ("ARCH-4010", "Architecture — ARCH 4010 studio", True),
    ("GRANT-NSF-2231", "NSF grant 2231 (research prints)", True),
    ("ART-2019", "Art — 2019 exhibition (closed)", False),
)
_PAYMENTS: dict[str, dict[str, object]] = {
    "liam.oc@example.edu": {"method": "CASH"},
    "sofia.g@example.edu": {
        "method": "ACCOUNT", "account_code": "ENG-1042", "discount_usd": "1.00",
        "reason": "Senior design teams get $1 off each print",
    },
    "grace.lee@example.edu": {"method": "WAIVER", "reason": "Course ID 2200 covers its students' prints"},
}  # fmt: skip


def _pickup(session: Session, storage: Storage, job_id: str, actor: Actor, at: datetime) -> None:
    job = session.get(Job, job_id)
    paid = _PAYMENTS.get(
        job.student_email if job else "", {"method": "CARD", "payment_reference": "CARD-1042"}
    )
    workflow.record_pickup(session, storage, job_id, actor=actor, weighed_g=40.1, now=at, **paid)  # type: ignore[arg-type]


_STEPS: dict[str, Callable[..., None]] = {
    "approve": _approve,
    "confirm": _confirm,
    "start": lambda s, st, j, a, at, m, p: workflow.start_printing(s, st, j, actor=a, printer=p, now=at),
    "complete": lambda s, st, j, a, at, m, p: workflow.complete(s, st, j, actor=a, now=at),
    "pickup": lambda s, st, j, a, at, m, p: _pickup(s, st, j, a, at),
    "reject": lambda s, st, j, a, at, m, p: workflow.reject(
        s,
        st,
        j,
        actor=a,
        reasons=["Walls too thin"],
        other_reason="The thinnest wall is under 0.4 mm.",
        now=at,
    ),
    "archive": lambda s, st, j, a, at, m, p: workflow.archive(s, st, j, actor=Actor.system(), now=at),
}
