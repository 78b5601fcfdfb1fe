"""Benchmark data: a fresh migrated database (SQLite file or PostgreSQL) bulk-seeded with N jobs and ~10 events each."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from printlab.clock import utcnow
from printlab.db import alembic_config, upgrade
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.naming import stored_base_name
from printlab.domain.statuses import Status

POSTGRES_ADMIN_URL = os.environ.get(
    "PRINTLAB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: One database per benchmark process, so two benchmarks can run at once without dropping each other's.
BENCH_DATABASE = f"printlab_bench_{os.getpid()}"
BACKENDS = ("sqlite", "postgresql")
#: The migration that adds the search tables and their triggers, and the one before it.
SEARCH_TABLES, BEFORE_SEARCH_TABLES = "0008", "0007"

#: Work-queue sizes at 100,000 jobs ("a few hundred in each"); scaled down, to at least 30, for smaller runs.
QUEUES: dict[Status, int] = {
    Status.UPLOADED: 320,
    Status.PENDING: 260,
    Status.READYTOPRINT: 210,
    Status.PRINTING: 40,
    Status.COMPLETED: 300,
}
HISTORY_DAYS = 730
ARCHIVE_AFTER_DAYS = DEFAULT_CATALOG.archive_after_days
ANALYSED_DAYS = 120  # the upload analysis is newer than most of the history: only recent jobs have one


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Jane Ana Liam Noah Olivia Emma Ava Sophia Mia Amelia Harper Evelyn Abigail Emily Ella Elizabeth "
    "Camila Luna Sofia Avery Mila Aria Scarlett Penelope Layla Chloe Victoria Madison Eleanor Grace "
    "Nora Riley Zoey Hannah Hazel Lily Ellie Violet Lillian Zoe Stella Aurora Natalie Emilia Everly "
    "Leah Aubrey Willow Addison Lucy James Oliver Elijah William Henry Lucas Benjamin Theodore Mateo "
    "Levi Sebastian Daniel Jack Michael Alexander Owen Asher Samuel Ethan Leo Jackson Mason Ezra John "
    "Hudson Luca Aiden Joseph David Jacob Logan Luke Julian Gabriel Grayson Wyatt Matthew Maverick "
    "Dylan Isaac Elias Anthony Thomas Jayden Carter Santiago Ezekiel Charles Josiah Caleb Cooper "
    "Lincoln Miles Christopher Nathan Isaiah Kai Joshua Andrew Angel Aaron Ryan José Zoë Chloé Björn "
    "Siobhán Nguyễn Wei Priya Arjun Fatima Yusuf Aisha Hiro Yuki Min-jun Seo-yeon"
)
LAST = _words(
    "Doe Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders "
    "Patel Myers Long Ross Foster O'Brien O’Neill Müller Søren-Larsen Zhang Wang Chen Singh Kumar "
    "Okafor Mensah Kowalski Novak Ivanova Haddad Tanaka Suzuki Park Choi"
)
MODEL_WORDS = _words(
    "bracket gear housing vase figurine chess knight phone stand enclosure hinge clip hook tile bust "
    "skull dragon planter lamp shade lattice bridge column arch joint prototype wheel drone frame "
    "mount adapter knob case lid cup coaster model site topo terrain facade mask helmet"
)
DEPARTMENTS = ("ME", "ARCH", "ART", "LA", "ID", "EE", "CS", "BIO", "PHYS", "DES")
STAFF = (
    "Alex Rivera",
    "Sam Chen",
    "Jordan Patel",
    "Taylor Brooks",
    "Casey Morgan",
    "Riley Nguyen",
    "Morgan Lee",
    "Jamie Ortiz",
    "Drew Kim",
    "Avery Walsh",
    "Quinn Foster",
    "Parker Hall",
)
INACTIVE_STAFF = {"Parker Hall", "Quinn Foster"}
WORKSTATIONS = ("LAB-PC-1", "LAB-PC-2", "FRONT-DESK")
NOTES = (
    "Student asked for the brim to be removed.",
    "Called the student about thin walls; they'll re-upload if it fails.",
    "Use the 0.6 mm nozzle.",
    "Pickup delayed - student abroad until next week.",
    "Supports on the underside, please.",
)


@dataclass
class Seeded:
    """What was written, and how long it took."""

    url: str
    jobs: int
    events: int
    analyses: int
    payments: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    #: A few real rows the benchmark uses: a surname to search for, an archived job halfway down.
    sample_surname: str = ""
    sample_job_id: str = ""


# -- databases ----------------------------------------------------------------------------------


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(database: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@contextmanager
def bench_database(backend: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh, migrated, empty database: a temporary SQLite file or PostgreSQL `printlab_bench`.

    Dropped (or deleted) afterwards unless `keep`.
    """
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="printlab-bench-")
        path = Path(folder) / "bench.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        try:
            yield url
        finally:
            if not keep:
                for leftover in Path(folder).iterdir():
                    leftover.unlink()
                Path(folder).rmdir()
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    url = _pg_url(BENCH_DATABASE)
    try:
        upgrade(url)
        yield url
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        admin.dispose()


# -- generated rows -----------------------------------------------------------------------------

JOB_COLUMNS = (
    "id",
    "student_name",
    "student_email",
    "discipline",
    "class_number",
    "original_filename",
    "display_name",
    "file_path",
    "metadata_path",
    "status",
    "printer",
    "color",
    "material",
    "weight_g",
    "time_hours",
    "cost_usd",
    "acknowledged_minimum_charge",
    "student_confirmed",
    "student_confirmed_at",
    "confirm_token",
    "confirm_token_expires",
    "is_confirmation_expired",
    "confirmation_last_sent_at",
    "reject_reasons",
    "staff_viewed_at",
    "last_updated_by",
    "notes",
    "locked_by",
    "locked_until",
    "file_hash",
    "created_at",
    "updated_at",
)
EVENT_COLUMNS = ("job_id", "timestamp", "event_type", "details", "triggered_by", "workstation_id")
ANALYSIS_COLUMNS = ("job_id", "state", "results", "error", "thumbnail_png", "analysed_at")
PAYMENT_COLUMNS = (
    "job_id",
    "weighed_g",
    "quoted_usd",
    "charged_usd",
    "kept_quote",
    "payment_reference",
    "picked_up_by",
    "recorded_by",
    "workstation_id",
    "recorded_at",
    "voided_at",
    "void_reason",
)
STAFF_COLUMNS = ("name", "is_active", "added_at", "deactivated_at")

#: Status path of each final status, as (event type, status after it) after JobCreated.
_APPROVED_PATH = (
    ("StaffApproved", Status.PENDING),
    ("StudentConfirmed", Status.READYTOPRINT),
    ("StatusChanged", Status.PRINTING),
    ("StatusChanged", Status.COMPLETED),
    ("StatusChanged", Status.PAIDPICKEDUP),
    ("JobArchived", Status.ARCHIVED),
)
_REJECTED_PATH = (("StaffRejected", Status.REJECTED), ("JobArchived", Status.ARCHIVED))
_EXTRA_EVENTS = ("EmailSent", "EmailSent", "EmailSent", "NotesUpdated", "FileAttached", "PrintFailed")


def _thumbnail_png() -> bytes:
    """A small real PNG (a shaded square), about the size the analysis stores per job."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    pixels = image.load()
    for y in range(16, 80):
        for x in range(16, 80):
            pixels[x, y] = (90 + x, 110 + y // 2, 200 - y, 255)  # type: ignore[index]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _analysis_results(rng: random.Random, method: str, printer: str) -> str:
    """An upload analysis as the worker stores it (the shape of Analysis.to_dict())."""
    extents = [round(rng.uniform(8, 180), 2) for _ in range(3)]
    volume = round(extents[0] * extents[1] * extents[2] * rng.uniform(0.05, 0.4), 1)
    weight = volume / 1000 * 1.24
    rate = 0.2 if method == "Resin" else 0.1
    others = [p.name for p in DEFAULT_CATALOG.printers_for(method) if p.name != printer]
    return json.dumps(
        {
            "kind": "stl-binary",
            "triangles": rng.randint(500, 900_000),
            "extents_mm": extents,
            "bounds_mm": [[0.0, 0.0, 0.0], extents],
            "volume_mm3": volume,
            "watertight": rng.random() < 0.8,
            "file_units": "mm",
            "units_warning": None,
            "method": method,
            "printer": printer,
            "fits_printer": True,
            "fits_other_printers": others,
            "fits_printers": [printer, *others],
            "weight_range_g": [round(weight * 0.3, 1), round(weight * 0.6, 1)],
            "cost_range_usd": [f"{max(3, weight * 0.3 * rate):.2f}", f"{max(3, weight * 0.6 * rate):.2f}"],
            "problems": [],
        }
    )


def _queue_sizes(jobs: int) -> dict[Status, int]:
    return {status: min(size, max(30, size * jobs // 100_000), jobs // 20) for status, size in QUEUES.items()}


@dataclass
class Rows:
    jobs: list[dict[str, Any]]
    events: list[tuple[Any, ...]]
    analyses: list[tuple[Any, ...]]
    payments: list[tuple[Any, ...]]
    staff: list[tuple[Any, ...]]


def generate(jobs: int, events_per_job: int = 10, *, seed: int = 1, now: datetime | None = None) -> Rows:
    """Deterministic rows for `jobs` jobs over two years ending `now` (naive UTC)."""
    rng = random.Random(seed)
    now = now or utcnow()
    start = now - timedelta(days=HISTORY_DAYS)
    span = (now - start).total_seconds()
    created = sorted(
        (start + timedelta(seconds=rng.random() * span) for _ in range(jobs)), reverse=True
    )  # newest first
    status_of: list[Status | None] = [None] * jobs
    taken = 0
    for status, size in _queue_sizes(jobs).items():
        # Each queue takes from the newest jobs not yet placed, so later stages hold older jobs.
        window = [i for i in range(taken, jobs) if status_of[i] is None][: size * 2]
        for index in rng.sample(window, min(size, len(window))):
            status_of[index] = status
        taken = window[len(window) // 2] if window else jobs
    archive_before = now - timedelta(days=ARCHIVE_AFTER_DAYS)
    for index in range(jobs):
        if status_of[index] is None:
            if created[index] < archive_before:
                status_of[index] = Status.ARCHIVED
            else:
                status_of[index] = Status.REJECTED if rng.random() < 0.07 else Status.PAIDPICKEDUP

    methods = {m.name: m for m in DEFAULT_CATALOG.methods}
    thumbnail = _thumbnail_png()
    analysed_after = now - timedelta(days=ANALYSED_DAYS)
    rows = Rows(jobs=[], events=[], analyses=[], payments=[], staff=[])
    for name in STAFF:
        inactive = name in INACTIVE_STAFF
        rows.staff.append((name, not inactive, start, now - timedelta(days=200) if inactive else None))
    active_staff = [s for s in STAFF if s not in INACTIVE_STAFF]
    live_locks = set(rng.sample([i for i in range(jobs) if status_of[i] in QUEUES], k=min(5, jobs)))
    budget = events_per_job * jobs

    for index in range(jobs):
        status = status_of[index]
        assert status is not None
        job_id = f"{rng.getrandbits(128):032x}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        method = methods["Resin" if rng.random() < 0.2 else "Filament"]
        color = rng.choice(method.colors)
        printer = rng.choice(DEFAULT_CATALOG.printers_for(method.name)).name
        extension = rng.choices((".stl", ".3mf", ".obj"), (70, 20, 10))[0]
        original = f"{rng.choice(MODEL_WORDS)}_{rng.choice(MODEL_WORDS)}_v{rng.randint(1, 9)}{extension}"
        display = stored_base_name(name, method.name, color, job_id[:6])
        when = created[index]

        # The job's history: each step a while after the one before.
        rejected = status in (Status.REJECTED,) or (status == Status.ARCHIVED and rng.random() < 0.07)
        path = _REJECTED_PATH if rejected else _APPROVED_PATH
        if status == Status.UPLOADED:
            steps: Sequence[tuple[str, Status]] = ()
        else:
            stop = next(i for i, (_, s) in enumerate(path) if s == status)
            steps = path[: stop + 1]
        moments = [when]
        for _ in steps:
            moments.append(min(now, moments[-1] + timedelta(hours=rng.uniform(2, 70))))
        staff_for = [rng.choice(active_staff if when > archive_before else STAFF) for _ in moments]
        station = rng.choice(WORKSTATIONS)
        events = [(job_id, when, "JobCreated", None, None, None)]
        previous = Status.UPLOADED
        for (event_type, after), moment, who in zip(steps, moments[1:], staff_for[1:], strict=True):
            details = json.dumps({"from": previous.value, "to": after.value})
            by = None if event_type in ("StudentConfirmed", "JobArchived") else who
            events.append((job_id, moment, event_type, details, by, station if by else None))
            if event_type == "StaffApproved":
                events.append((job_id, moment, "StatusChanged", details, by, station))
            previous = after
        # Emails, notes, sliced files and failed prints fill the history up to ~events_per_job.
        extras = max(0, round(events_per_job - len(events) + rng.uniform(-1.5, 1.5)))
        extras = min(extras, budget - len(rows.events) - len(events) - (jobs - index - 1))
        last_moment = moments[-1]
        for _ in range(max(0, extras)):
            event_type = rng.choice(_EXTRA_EVENTS)
            moment = when + (last_moment - when) * rng.random()
            who = rng.choice(STAFF) if event_type != "EmailSent" else None
            details = json.dumps({"template": "receipt"}) if event_type == "EmailSent" else None
            events.append((job_id, moment, event_type, details, who, station if who else None))
        rows.events.extend(events)

        approved = not rejected and status not in (Status.UPLOADED,)
        weight = round(rng.lognormvariate(3.4, 0.8), 1) if approved else None
        cost = (
            max(DEFAULT_CATALOG.minimum_charge, (Decimal(str(weight)) * method.rate_per_gram)).quantize(
                Decimal("0.01")
            )
            if weight is not None
            else None
        )
        confirmed_at = moments[2] if approved and len(moments) > 2 else None
        token = f"{rng.getrandbits(256):064x}" if status == Status.PENDING else None
        token_expires = moments[1] + timedelta(hours=72) if token else None
        locked = index in live_locks
        stale_lock = not locked and status in QUEUES and rng.random() < 0.05
        rows.jobs.append(
            {
                "id": job_id,
                "student_name": name,
                "student_email": f"{first}.{last}{rng.randint(1, 99)}@example.edu".lower().replace("'", ""),
                "discipline": rng.choice(DEFAULT_CATALOG.disciplines),
                "class_number": f"{rng.choice(DEPARTMENTS)} {rng.randint(1000, 4999)}",
                "original_filename": original,
                "display_name": display,
                "file_path": f"{status.folder or 'Uploaded'}/{display}{extension}",
                "metadata_path": f"{status.folder or 'Uploaded'}/{display}.metadata.json",
                "status": status.value,
                "printer": printer,
                "color": color,
                "material": method.name,
                "weight_g": weight,
                "time_hours": round(weight / 12 + rng.uniform(0.3, 2), 1) if weight else None,
                "cost_usd": cost,
                "acknowledged_minimum_charge": True,
                "student_confirmed": confirmed_at is not None,
                "student_confirmed_at": confirmed_at,
                "confirm_token": token,
                "confirm_token_expires": token_expires,
                "is_confirmation_expired": bool(token_expires and token_expires < now),
                "confirmation_last_sent_at": moments[1] if approved else None,
                "reject_reasons": json.dumps(["Walls too thin"]) if rejected else None,
                "staff_viewed_at": None
                if status == Status.UPLOADED and rng.random() < 0.4
                else when + timedelta(minutes=rng.randint(5, 600)),
                "last_updated_by": staff_for[-1] if steps else None,
                "notes": rng.choice(NOTES) if rng.random() < 0.03 else None,
                "locked_by": rng.choice(active_staff) if locked or stale_lock else None,
                "locked_until": now + timedelta(minutes=15)
                if locked
                else (when + timedelta(hours=1) if stale_lock else None),
                "file_hash": f"{rng.getrandbits(256):064x}",
                "created_at": when,
                "updated_at": moments[-1],
            }
        )
        if when > analysed_after:
            failed = rng.random() < 0.03
            pending = status == Status.UPLOADED and index < 3
            state = "PENDING" if pending else ("FAILED" if failed else "DONE")
            results = _analysis_results(rng, method.name, printer) if state == "DONE" else None
            rows.analyses.append(
                (
                    job_id,
                    state,
                    results,
                    "mesh has no faces" if state == "FAILED" else None,
                    thumbnail if state == "DONE" else None,
                    None if pending else when + timedelta(seconds=rng.randint(2, 30)),
                )
            )
        picked_up = approved and (
            status == Status.PAIDPICKEDUP or (status == Status.ARCHIVED and len(moments) > 5)
        )
        if picked_up and cost is not None and weight is not None:
            rows.payments.append(
                (
                    job_id,
                    round(weight * rng.uniform(0.9, 1.05), 1),
                    cost,
                    cost,
                    True,
                    f"R-{rng.randint(10000, 99999)}",
                    name,
                    staff_for[5],
                    station,
                    moments[5],
                    None,
                    None,
                )
            )
    # Event ids grow with time, as they do in a real lab.
    rows.events.sort(key=lambda event: event[1])
    return rows


# -- writers ------------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    """The value as SQLAlchemy's SQLite types store it (DateTime as text with microseconds)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_rows(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(_sqlite_value(v) for v in row)


def _write_sqlite(url: str, rows: Rows) -> None:
    path = make_url(url).database
    assert path
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("BEGIN")
        tables: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = [
            ("staff", STAFF_COLUMNS, rows.staff),
            ("job", JOB_COLUMNS, ([job[c] for c in JOB_COLUMNS] for job in rows.jobs)),
            ("event", EVENT_COLUMNS, rows.events),
            ("job_analysis", ANALYSIS_COLUMNS, rows.analyses),
            ("payment", PAYMENT_COLUMNS, rows.payments),
        ]
        for table, columns, values in tables:
            marks = ", ".join("?" * len(columns))
            connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", _sqlite_rows(values)
            )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _write_postgresql(url: str, rows: Rows) -> None:
    import psycopg

    target = make_url(url)
    with psycopg.connect(
        host=target.host, port=target.port, user=target.username, dbname=target.database
    ) as connection:
        tables: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = [
            ("staff", STAFF_COLUMNS, rows.staff),
            ("job", JOB_COLUMNS, ([job[c] for c in JOB_COLUMNS] for job in rows.jobs)),
            ("event", EVENT_COLUMNS, rows.events),
            ("job_analysis", ANALYSIS_COLUMNS, rows.analyses),
            ("payment", PAYMENT_COLUMNS, rows.payments),
        ]
        with connection.cursor() as cursor:
            for table, columns, values in tables:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
        connection.commit()


def _vacuum_postgresql(url: str) -> None:
    """What autovacuum would do shortly after a bulk load: statistics and the visibility map."""
    import psycopg

    target = make_url(url)
    with psycopg.connect(
        host=target.host, port=target.port, user=target.username, dbname=target.database, autocommit=True
    ) as connection:
        connection.execute("VACUUM ANALYZE")


def seed(
    url: str,
    jobs: int = 100_000,
    events_per_job: int = 10,
    *,
    seed: int = 1,
    analyze_sqlite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Seeded:
    """Fill the freshly migrated database at `url`. SQLite is left without ANALYZE statistics unless
    asked, as a lab's SQLite file has none; PostgreSQL is vacuumed and analysed as autovacuum would."""
    say = progress or (lambda _message: None)
    began = time.perf_counter()
    rows = generate(jobs, events_per_job, seed=seed)
    say(
        f"generated {len(rows.jobs):,} jobs, {len(rows.events):,} events in {time.perf_counter() - began:.1f} s"
    )
    backend = make_url(url).get_backend_name()
    # Loaded under the schema before the search tables, then migrated: migration 0008 fills them
    # (and the tab counts) from the loaded jobs in one statement each, as it would for a lab's
    # existing database, instead of a trigger firing for every one of 100,000 rows.
    command.downgrade(alembic_config(url), BEFORE_SEARCH_TABLES)
    if backend == "sqlite":
        _write_sqlite(url, rows)
    else:
        _write_postgresql(url, rows)
    loaded = time.perf_counter()
    upgrade(url)
    say(f"migration {SEARCH_TABLES} filled the search tables in {time.perf_counter() - loaded:.1f} s")
    if backend == "sqlite":
        if analyze_sqlite:
            connection = sqlite3.connect(make_url(url).database or "")
            connection.execute("ANALYZE")
            connection.close()
    else:
        _vacuum_postgresql(url)
    counts: dict[str, int] = {}
    for job in rows.jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    archived = [job for job in rows.jobs if job["status"] == Status.ARCHIVED.value]
    sample = archived[len(archived) // 2] if archived else rows.jobs[len(rows.jobs) // 2]
    result = Seeded(
        url=url,
        jobs=len(rows.jobs),
        events=len(rows.events),
        analyses=len(rows.analyses),
        payments=len(rows.payments),
        seconds=time.perf_counter() - began,
        counts=counts,
        sample_surname=str(sample["student_name"]).split()[-1],
        sample_job_id=str(sample["id"]),
    )
    say(f"seeded {backend} in {result.seconds:.1f} s: {counts}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events-per-job", type=int, default=10)
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (prints its URL) instead of dropping it"
    )
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE on SQLite after seeding")
    args = parser.parse_args()
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        with bench_database(backend, keep=args.keep) as url:
            result = seed(url, args.jobs, args.events_per_job, analyze_sqlite=args.analyze, progress=print)
            print(
                f"{backend}: {result.jobs:,} jobs, {result.events:,} events, {result.analyses:,} analyses, "
                f"{result.payments:,} payments in {result.seconds:.1f} s"
                + (f" — kept at {url}" if args.keep else "")
            )


if __name__ == "__main__":
    main()
