"""Benchmark: the reports page and /reports.json for a semester (and 30 days) on seeded SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench_dashboard import HEADER, Result, Scenario, _row, machine, measured, running_app
from seed import BACKENDS, bench_database, seed
from sqlalchemy import text

#: The target at 100,000 jobs and 1,000,000 events: the reports page for a semester, last semester's
#: (75 days against the 75 before) and this semester's (139 against 139).
TARGET_P50_MS = 300.0
SCENARIOS = (
    Scenario("semester", "reports: last semester (admin)", "/reports?period=last-semester"),
    Scenario("semester-json", "reports.json: last semester", "/reports.json?period=last-semester"),
    Scenario("this-semester", "reports: this semester", "/reports?period=this-semester"),
    Scenario("30d", "reports: last 30 days", "/reports?period=30d"),
    Scenario("filtered", "reports: last semester, Filament", "/reports?period=last-semester&method=Filament"),
)


def run(backend: str, jobs: int, requests: int, warmup: int) -> list[Result]:
    results: list[Result] = []
    with bench_database(backend) as url:
        seed(url, jobs, progress=lambda m: print(f"  [{backend} {jobs:,}] {m}", flush=True))
        with running_app(url) as (app, client, counter):
            engine = app.extensions["printlab"].engine
            with engine.begin() as connection:  # the benchmark's workstation sees money, like an admin's
                connection.execute(text("UPDATE workstation SET is_admin = :yes"), {"yes": True})
            for scenario in SCENARIOS:
                result = measured(backend, jobs, client, counter, scenario, requests, warmup)
                results.append(result)
                print(_row(result), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--jobs", default="1000,100000", help="comma-separated job counts")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.jobs.split(",") if n.strip()]
    about = machine()
    print(
        f"Machine: {about['cpus']} CPUs ({about['cpu']}), {about['ram_gib']} GiB RAM, Python {about['python']}, "
        f"SQLite {about['sqlite']}; load average {about['load_average']}; {about['date']}"
    )
    print(HEADER, flush=True)
    everything: list[Result] = []
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        for jobs in sizes:
            everything += run(backend, jobs, args.requests, args.warmup)
    print()
    print(HEADER)
    for result in everything:
        print(_row(result))
    largest = max(sizes)
    for r in everything:
        if r.jobs == largest and r.key in ("semester", "this-semester") and r.p50_ms >= TARGET_P50_MS:
            print(f"OVER TARGET: {r.backend} {r.scenario}: p50 {r.p50_ms} ms ≥ {TARGET_P50_MS} ms")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": about, "results": [asdict(r) for r in everything]}, indent=2)
        )


if __name__ == "__main__":
    sys.exit(main())
