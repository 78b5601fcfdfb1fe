"""Benchmark: dashboard pages, /api/v1/jobs, the 304 refresh poll and the printer board on seeded SQLite and PostgreSQL databases."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient
from seed import BACKENDS, bench_database, seed
from sqlalchemy import Engine, event, text

from printlab import config as config_module
from printlab.services.files.storage import Storage
from printlab.services.lab.workstations import add_workstation

WORKSTATION = "BENCH-PC"
PASSWORD = "bench-password-0123"
#: The targets at 100,000 jobs: the dashboard page, a search (any status or one tab), and growth
#: from 1,000 to 100,000 jobs for the dashboard, the search and the refresh poll.
TARGET_P50_MS = 50.0
SEARCH_TARGET_P50_MS = 30.0
GROWTH_LIMIT = 1.3
GROWTH_KEYS = ("uploaded", "archived", "search", "search-archived", "search-uploaded", "search-one", "poll")


@dataclass
class Scenario:
    key: str  # stable across sizes, for comparing statement counts
    name: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    expect: tuple[int, ...] = (200,)


@dataclass
class Result:
    backend: str
    jobs: int
    key: str
    scenario: str
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    sql_p50_ms: float
    statements_min: int
    statements_max: int
    statuses: dict[str, int]
    slowest_sql: str = ""
    slowest_sql_ms: float = 0.0


class StatementCounter:
    """Counts (and times) every statement the app's engine sends while `active`."""

    def __init__(self, engine: Engine):
        self.statements: list[tuple[str, Any, float]] = []
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        self._started.append(time.perf_counter())

    def _after(self, _conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        began = self._started.pop() if self._started else time.perf_counter()
        self.statements.append((statement, parameters, (time.perf_counter() - began) * 1000))

    def reset(self) -> None:
        self.statements = []


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    return {
        "cpus": os.cpu_count(),
        "cpu": model.group(1).strip() if model else platform.processor(),
        "ram_gib": round(int(total.group(1)) / 2**20, 1) if total else None,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


@contextmanager
def running_app(url: str) -> Iterator[tuple[Flask, FlaskClient, StatementCounter]]:
    """The real app on the bench database with a temporary storage root, signed in as a workstation."""
    from printlab.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="printlab-bench-app-") as folder:
        env = {
            "PRINTLAB_DATABASE_URL": url,
            "PRINTLAB_STORAGE_DIR": f"{folder}/storage",
            "PRINTLAB_MAIL_DIR": f"{folder}/mail",
            "PRINTLAB_INSTANCE_DIR": f"{folder}/instance",
            "PRINTLAB_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "PRINTLAB_BASE_URL": "http://printlab.bench",
            "PRINTLAB_WORKER": "off",  # no background thread competing for the CPU
            "PRINTLAB_LOG_LEVEL": "WARNING",
        }
        Storage(Path(folder) / "storage").ensure_folders()
        app = create_app(config=config_module.load(env))
        lab = app.extensions["printlab"]
        with lab.sessions() as session:
            add_workstation(session, WORKSTATION, PASSWORD)
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token, "no CSRF token on the sign-in form"
        signed_in = client.post(
            "/login", data={"csrf_token": token.group(1), "workstation": WORKSTATION, "password": PASSWORD}
        )
        assert signed_in.status_code == 303, signed_in.status_code
        counter = StatementCounter(lab.engine)
        try:
            yield app, client, counter
        finally:
            lab.engine.dispose()


def measured(
    backend: str, jobs: int, client: FlaskClient, counter: Any, scenario: Scenario, requests: int, warmup: int
) -> Result:
    """One scenario measured at one size, as the row the tables and the JSON show."""
    times, sql_times, counts, statuses, slowest = measure(client, counter, scenario, requests, warmup)
    return Result(
        backend=backend,
        jobs=jobs,
        key=scenario.key,
        scenario=scenario.name,
        path=scenario.path,
        requests=len(times),
        p50_ms=round(statistics.median(times), 1),
        p95_ms=round(percentile(times, 0.95), 1),
        mean_ms=round(statistics.fmean(times), 1),
        sql_p50_ms=round(statistics.median(sql_times), 1),
        statements_min=min(counts),
        statements_max=max(counts),
        statuses=statuses,
        slowest_sql=" ".join(slowest[0].split())[:160],
        slowest_sql_ms=round(slowest[1], 1),
    )


def scenarios(client: FlaskClient, engine: Engine, surname: str) -> list[Scenario]:
    with engine.connect() as connection:
        archived = connection.execute(text("SELECT count(*) FROM job WHERE status = 'ARCHIVED'")).scalar_one()
        deep = connection.execute(
            text(
                "SELECT created_at, id FROM job WHERE status = 'ARCHIVED' "
                "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET :n"
            ),
            {"n": archived // 2},
        ).one()
        any_job, its_email = connection.execute(
            text("SELECT id, student_email FROM job WHERE status = 'PRINTING' ORDER BY created_at LIMIT 1")
        ).one()
    created = deep[0] if not isinstance(deep[0], str) else deep[0].replace(" ", "T")
    after = f"{created.isoformat() if hasattr(created, 'isoformat') else created}~{deep[1]}"
    cards = "/dashboard/cards?" + urlencode({"status": "UPLOADED"})
    etag = client.get(cards).headers["ETag"]
    lanes_etag = client.get("/printers/lanes").headers["ETag"]
    return [
        Scenario("uploaded", "dashboard: Uploaded tab", "/dashboard?status=UPLOADED"),
        Scenario("archived", "dashboard: Archived tab, page 1", "/dashboard?status=ARCHIVED"),
        Scenario(
            "deep",
            f"dashboard: Archived, keyset page {archived // 2 // 24:,}",
            "/dashboard?" + urlencode({"status": "ARCHIVED", "after": after}),
        ),
        Scenario("search", f"search: '{surname}' in every status", "/dashboard?" + urlencode({"q": surname})),
        Scenario(
            "search-archived",
            f"search: '{surname}' in Archived",
            "/dashboard?" + urlencode({"status": "ARCHIVED", "q": surname}),
        ),
        Scenario(
            "search-uploaded",
            f"search: '{surname}' in Uploaded",
            "/dashboard?" + urlencode({"status": "UPLOADED", "q": surname}),
        ),
        # As many matches at every size (one student's address): how search grows with the jobs alone.
        Scenario("search-one", "search: one student's email", "/dashboard?" + urlencode({"q": its_email})),
        Scenario("api-uploaded", "api: /api/v1/jobs Uploaded", "/api/v1/jobs?status=UPLOADED"),
        Scenario("api-archived", "api: /api/v1/jobs Archived", "/api/v1/jobs?status=ARCHIVED"),
        Scenario("poll", "poll: /dashboard/cards 304", cards, {"If-None-Match": etag}, (304, 200)),
        Scenario("job", "job page /jobs/<id>", f"/jobs/{any_job}"),
        Scenario("printing", "dashboard: Printing tab (with progress)", "/dashboard?status=PRINTING"),
        # Every Ready-to-Print job of the seed is in a printer's queue (far more than a lab queues).
        Scenario("board", "printer board /printers", "/printers"),
        Scenario(
            "board-poll",
            "poll: /printers/lanes 304",
            "/printers/lanes",
            {"If-None-Match": lanes_etag},
            (304, 200),
        ),
    ]


def measure(
    client: FlaskClient, counter: StatementCounter, scenario: Scenario, requests: int, warmup: int
) -> tuple[list[float], list[float], list[int], dict[str, int], tuple[str, float]]:
    times: list[float] = []
    sql_times: list[float] = []
    counts: list[int] = []
    statuses: dict[str, int] = {}
    slowest = ("", 0.0)
    headers = dict(scenario.headers)
    for number in range(warmup + requests):
        counter.reset()
        began = time.perf_counter()
        response = client.get(scenario.path, headers=headers)
        response.get_data()
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code not in scenario.expect:
            raise RuntimeError(f"{scenario.path} answered {response.status_code}")
        if "If-None-Match" in headers and response.status_code == 200:
            # The board changed (a card's age ticked over a minute): poll on with the new ETag.
            headers["If-None-Match"] = response.headers["ETag"]
        if number < warmup:
            continue
        times.append(elapsed)
        sql_times.append(sum(ms for _, _, ms in counter.statements))
        counts.append(len(counter.statements))
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        for statement, _, ms in counter.statements:
            if ms > slowest[1]:
                slowest = (statement, ms)
    return times, sql_times, counts, statuses, slowest


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def explain(engine: Engine, client: FlaskClient, counter: StatementCounter, path: str) -> str:
    """The query plans of every SELECT a request runs (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE)."""
    counter.reset()
    client.get(path)
    captured = [(s, p) for s, p, _ in counter.statements if s.lstrip().upper().startswith("SELECT")]
    lines = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in captured:
            if engine.dialect.name == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = "\n".join(f"  {row[-1]}" for row in cursor.fetchall())
            else:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
                plan = "\n".join(f"  {row[0]}" for row in cursor.fetchall())
            lines.append(" ".join(statement.split())[:300] + "\n" + plan)
        raw.rollback()
    finally:
        raw.close()
    return "\n\n".join(lines)


def run(
    backend: str, jobs: int, requests: int, warmup: int, *, explain_paths: bool = False
) -> tuple[list[Result], dict[str, Any]]:
    results: list[Result] = []
    info: dict[str, Any] = {}
    with bench_database(backend) as url:
        seeded = seed(url, jobs, progress=lambda m: print(f"  [{backend} {jobs:,}] {m}", flush=True))
        info = {"seed_seconds": round(seeded.seconds, 1), "events": seeded.events, "counts": seeded.counts}
        with running_app(url) as (app, client, counter):
            engine = app.extensions["printlab"].engine
            if engine.dialect.name == "postgresql":
                with engine.connect() as connection:
                    info["postgresql"] = connection.execute(text("SHOW server_version")).scalar_one()
            for scenario in scenarios(client, engine, seeded.sample_surname):
                result = measured(backend, jobs, client, counter, scenario, requests, warmup)
                results.append(result)
                print(_row(result), flush=True)
                if explain_paths:
                    print(explain(engine, client, counter, scenario.path), flush=True)
    return results, info


HEADER = (
    f"{'backend':<10} {'jobs':>7}  {'request':<44} {'p50 ms':>7} {'p95 ms':>7} "
    f"{'SQL ms':>7} {'stmts':>5}  status"
)


def _row(r: Result) -> str:
    statements = (
        str(r.statements_min)
        if r.statements_min == r.statements_max
        else f"{r.statements_min}-{r.statements_max}"
    )
    codes = ",".join(f"{k}×{v}" for k, v in sorted(r.statuses.items()))
    return (
        f"{r.backend:<10} {r.jobs:>7,}  {r.scenario[:44]:<44} {r.p50_ms:>7.1f} {r.p95_ms:>7.1f} "
        f"{r.sql_p50_ms:>7.1f} {statements:>5}  {codes}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument(
        "--jobs", default="1000,100000", help="comma-separated job counts (default 1000,100000)"
    )
    parser.add_argument("--requests", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print the query plans of each request")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.jobs.split(",") if n.strip()]
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    about = machine()
    print(
        f"Machine: {about['cpus']} CPUs ({about['cpu']}), {about['ram_gib']} GiB RAM, Python {about['python']}, "
        f"SQLite {about['sqlite']}; load average {about['load_average']}; {about['date']}"
    )
    print(f"{args.requests} requests per row after {args.warmup} warm-up, in-process (Flask test client)")
    print(HEADER, flush=True)
    everything: list[Result] = []
    infos: dict[str, Any] = {}
    for backend in backends:
        for jobs in sizes:
            results, info = run(backend, jobs, args.requests, args.warmup, explain_paths=args.explain)
            everything += results
            infos[f"{backend}/{jobs}"] = info
    print()
    print(HEADER)
    for result in everything:
        print(_row(result))
    _verdict(everything, sizes)
    if args.json:
        about["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        args.json.write_text(
            json.dumps(
                {"machine": about, "seeds": infos, "results": [asdict(r) for r in everything]}, indent=2
            )
        )


def _verdict(results: list[Result], sizes: list[int]) -> None:
    """Statements must not grow with the data; the dashboard's p50 must meet the target at the largest size."""
    print()
    grows = False
    for backend in {r.backend for r in results}:
        for key in dict.fromkeys(r.key for r in results):
            rows = [r for r in results if r.backend == backend and r.key == key]
            if len({r.statements_max for r in rows}) > 1 and len({r.jobs for r in rows}) > 1:
                grows = True
                print(f"STATEMENTS GROW: {backend} {key}: {[(r.jobs, r.statements_max) for r in rows]}")
    if not grows:
        print(f"Statements per request are the same at {', '.join(f'{n:,}' for n in sizes)} jobs.")
    largest, smallest = max(sizes), min(sizes)
    for r in results:
        if r.jobs == largest and r.scenario.startswith("dashboard") and r.p50_ms >= TARGET_P50_MS:
            print(f"OVER TARGET: {r.backend} {r.scenario}: p50 {r.p50_ms} ms ≥ {TARGET_P50_MS} ms")
        if r.jobs == largest and r.key.startswith("search") and r.p50_ms >= SEARCH_TARGET_P50_MS:
            print(f"OVER TARGET: {r.backend} {r.scenario}: p50 {r.p50_ms} ms ≥ {SEARCH_TARGET_P50_MS} ms")
    if largest == smallest:
        return
    for r in results:
        if r.jobs != largest or r.key not in GROWTH_KEYS:
            continue
        base = next((b for b in results if (b.backend, b.key, b.jobs) == (r.backend, r.key, smallest)), None)
        if base is None:
            continue
        ratio = r.p50_ms / base.p50_ms if base.p50_ms else float("inf")
        verdict = "ok" if ratio <= GROWTH_LIMIT else f"OVER {GROWTH_LIMIT}×"
        print(
            f"growth {r.backend:<10} {r.key:<16} {base.p50_ms:>6.1f} → {r.p50_ms:>6.1f} ms  ×{ratio:.2f}  {verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
