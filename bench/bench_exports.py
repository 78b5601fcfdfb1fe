"""Benchmark: the finance exports at 100,000 jobs — CSV and XLSX time, and a real server's memory while it streams."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench_dashboard import machine
from bench_submission import server, vm_kib
from seed import BACKENDS, HISTORY_DAYS, bench_database, seed

from printlab.clock import to_lab_time, utcnow
from printlab.db import make_engine, session_factory
from printlab.domain.periods import Period
from printlab.services.exports import export
from printlab.services.lab.workstations import add_workstation

#: The issue's targets at 100,000 jobs.
CSV_TARGET_S, XLSX_TARGET_S, RSS_GROWTH_TARGET_MIB = 5.0, 20.0, 50.0
WORKSTATION, PASSWORD = "BENCH-ADMIN", "bench-admin-password-0123"


def whole_history() -> Period:
    """Every lab day the seed spreads its jobs over (two years up to today), with a day to spare."""
    today = to_lab_time(utcnow(), "America/Chicago").date()
    return Period(today - timedelta(days=HISTORY_DAYS + 1), today + timedelta(days=1))


def in_process(url: str, period: Period, kinds: list[str]) -> dict[str, Any]:
    """Each export written to a temporary file by the service itself: seconds, rows, bytes."""
    engine = make_engine(url)
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="printlab-bench-exports-") as folder:
            for kind in kinds:
                for fmt in export.FORMATS:
                    if kind != "jobs" and fmt == "xlsx":
                        continue  # XLSX is timed for the jobs export, the target
                    target = Path(folder) / f"{kind}.{fmt}"
                    with session_factory(engine)() as session:
                        began, cpu = time.perf_counter(), time.process_time()
                        if fmt == "csv":
                            with target.open("wb") as out:
                                rows = -1  # the header row
                                for chunk in export.csv_stream(session, kind, period):
                                    out.write(chunk)
                                    rows += chunk.count(b"\r\n")
                        else:
                            rows = export.write_xlsx(session, kind, period, str(target))
                        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
                    results[f"{kind}.{fmt}"] = {
                        "rows": rows,
                        "seconds": round(seconds, 2),
                        "cpu_seconds": round(cpu, 2),
                        "mib": round(target.stat().st_size / 2**20, 1),
                    }
                    print(
                        f"    {kind}.{fmt:<5} {rows:>9,} rows  {seconds:7.2f} s (CPU {cpu:6.2f} s)  {results[f'{kind}.{fmt}']['mib']:6.1f} MiB",
                        flush=True,
                    )
    finally:
        engine.dispose()
    return results


def _sign_in(port: int) -> str:
    """The admin workstation's session cookie, through the real /login form."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/login")
    answer = connection.getresponse()
    page = answer.read()
    cookie = (answer.getheader("Set-Cookie") or "").split(";", 1)[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    body = urlencode(
        {"workstation": WORKSTATION, "password": PASSWORD}
        | ({"csrf_token": token.group(1).decode()} if token else {})
    )
    connection.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    answer = connection.getresponse()
    answer.read()
    connection.close()
    if answer.status != 303:
        raise RuntimeError(f"sign-in answered {answer.status}")
    return (answer.getheader("Set-Cookie") or cookie).split(";", 1)[0]


def through_the_server(url: str, period: Period, kinds: list[str]) -> dict[str, Any]:
    """`printlab serve` in a child process: each download streamed to nowhere while the server's
    resident memory is sampled; growth = the peak during the download less the resident size before."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        add_workstation(session, WORKSTATION, PASSWORD, is_admin=True)
    engine.dispose()
    results: dict[str, Any] = {}
    with server(url, threads=4) as running:
        cookie = _sign_in(running.port)
        query = urlencode({"from": period.first.isoformat(), "to": period.last.isoformat()})
        # A warm-up: a short export loads every module and template the download needs.
        warm = Period(period.last - timedelta(days=2), period.last)
        for fmt in export.FORMATS:
            _download(running.port, f"/reports/export/jobs.{fmt}?from={warm.first}&to={warm.last}", cookie)
        for kind in kinds:
            for fmt in export.FORMATS:
                if kind != "jobs" and fmt == "xlsx":
                    continue
                before = vm_kib(running.pid, "VmRSS")
                cpu_before = cpu_seconds(running.pid)
                peak = [before]
                done = threading.Event()

                def sample(done: threading.Event = done, peak: list[int] = peak) -> None:
                    while not done.wait(0.05):
                        peak[0] = max(peak[0], vm_kib(running.pid, "VmRSS"))

                sampler = threading.Thread(target=sample)
                sampler.start()
                began = time.perf_counter()
                status, size, first_byte = _download(
                    running.port, f"/reports/export/{kind}.{fmt}?{query}", cookie
                )
                seconds = time.perf_counter() - began
                server_cpu = cpu_seconds(running.pid) - cpu_before
                done.set()
                sampler.join()
                peak[0] = max(peak[0], vm_kib(running.pid, "VmRSS"))
                row = {
                    "status": status,
                    "seconds": round(seconds, 2),
                    "first_byte_s": round(first_byte, 2),
                    "server_cpu_seconds": round(server_cpu, 2),
                    "mib": round(size / 2**20, 1),
                    "rss_before_mib": round(before / 1024, 1),
                    "rss_peak_mib": round(peak[0] / 1024, 1),
                    "growth_mib": round((peak[0] - before) / 1024, 1),
                    "vmhwm_mib": round(vm_kib(running.pid, "VmHWM") / 1024, 1),
                }
                results[f"{kind}.{fmt}"] = row
                print(
                    f"    GET {kind}.{fmt:<5} {status}  {seconds:6.2f} s (first byte {first_byte:5.2f} s, server CPU {server_cpu:6.2f} s)  "
                    f"{row['mib']:6.1f} MiB  server RSS {row['rss_before_mib']:.0f} → {row['rss_peak_mib']:.0f} MiB "
                    f"(+{row['growth_mib']:.1f})",
                    flush=True,
                )
    return results


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (/proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _download(port: int, path: str, cookie: str) -> tuple[int, int, float]:
    """(status, bytes, seconds to the first byte), reading the body in 64 KiB pieces and keeping none."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    began = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie})
    answer = connection.getresponse()
    first = time.perf_counter() - began
    size = 0
    while piece := answer.read(64 * 1024):
        size += len(piece)
    connection.close()
    if answer.status != 200:
        raise RuntimeError(f"{path} answered {answer.status}")
    return answer.status, size, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--kinds",
        default="jobs,payments,events",
        help="exports to time (jobs also as XLSX; default all three)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    about = machine()
    print(
        f"Machine: {about['cpus']} CPUs ({about['cpu']}), {about['ram_gib']} GiB RAM, Python {about['python']}, "
        f"SQLite {about['sqlite']}; load average {about['load_average']}; {about['date']}"
    )
    results: dict[str, Any] = {"machine": about}
    period = whole_history()
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        with bench_database(backend) as url:
            seeded = seed(url, args.jobs)
            print(f"{backend}: {seeded.jobs:,} jobs, {seeded.events:,} events, {seeded.payments:,} payments")
            print("  in process (the service writing a file):")
            direct = in_process(url, period, kinds)
            print("  through `printlab serve` (waitress), downloaded by a client:")
            served = through_the_server(url, period, kinds)
        results[backend] = {"in_process": direct, "served": served}
        csv_s, xlsx_s = direct["jobs.csv"]["seconds"], direct["jobs.xlsx"]["seconds"]
        load = os.getloadavg()[0]
        growth = max(row["growth_mib"] for row in served.values())
        print(
            f"  targets: jobs CSV {csv_s:.2f} s (< {CSV_TARGET_S:.0f}), XLSX {xlsx_s:.2f} s (< {XLSX_TARGET_S:.0f}), "
            f"server RSS growth {growth:.1f} MiB (< {RSS_GROWTH_TARGET_MIB:.0f}); load average now {load:.1f}"
            + (
                ""
                if csv_s < CSV_TARGET_S and xlsx_s < XLSX_TARGET_S and growth < RSS_GROWTH_TARGET_MIB
                else "  MISSED"
            ),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
