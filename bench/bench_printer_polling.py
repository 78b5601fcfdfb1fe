"""Benchmark: the worker's printer watch polling 50 connected OctoPrint printers every 5 s; its CPU share.

Goal (issue 14): polling 50 printers costs less than 5 % of one core. The printers are played by one
small local HTTP server answering OctoPrint's documented REST answers (`/api/version`, `/api/job`,
`/api/printer`, docs.octoprint.org) on 50 ports, in this (parent) process; the watch runs in a child
process with its own database connection and is measured alone: its user + system CPU seconds over the
measured window, divided by the window. Half the printers report a print in progress (so their poll
rows change every time), half are idle.

    PYTHONPATH=src .venv/bin/python bench/bench_printer_polling.py [--printers 50] [--seconds 60]
        [--database-url postgresql://…]   (default: a fresh SQLite file)
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
KEY = "BenchKey0123456789abcdef"


class OctoPrintAnswers(http.server.BaseHTTPRequestHandler):
    """OctoPrint 1.11's answers as its REST API documents them; `printing` per port."""

    protocol_version = "HTTP/1.1"  # keep-alive, as OctoPrint's Tornado server does
    started = time.monotonic()

    def do_GET(self) -> None:
        printing = self.server.server_address[1] % 2 == 0  # type: ignore[attr-defined]
        if self.headers.get("X-Api-Key") != KEY:
            return self._send(403, {"error": "Forbidden"})
        path = self.path.split("?")[0]
        if path == "/api/version":
            return self._send(200, {"api": "0.1", "server": "1.11.8", "text": "OctoPrint 1.11.8"})
        if path == "/api/job":
            done = ((time.monotonic() - self.started) % 600) / 6 if printing else None
            return self._send(200, {
                "job": {"file": {"name": "part.gcode", "display": "part.gcode", "origin": "local"},
                        "estimatedPrintTime": 600, "filament": {"tool0": {"length": 810, "volume": 1.9}}},
                "progress": {"completion": done, "filepos": 1, "printTime": 30 if printing else None,
                             "printTimeLeft": 570 if printing else None},
                "state": "Printing" if printing else "Operational",
            })  # fmt: skip
        if path == "/api/printer":
            return self._send(200, {
                "temperature": {"tool0": {"actual": 214.8, "target": 215.0, "offset": 0},
                                "bed": {"actual": 60.1, "target": 60.0, "offset": 0}},
                "state": {"text": "Printing" if printing else "Operational", "flags": {}},
            })  # fmt: skip
        return self._send(404, {"error": "Not found"})

    def _send(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_printers(count: int) -> list[str]:
    addresses = []
    for _ in range(count):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OctoPrintAnswers)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        addresses.append(f"http://127.0.0.1:{server.server_address[1]}")
    return addresses


def add_printers(url: str, addresses: list[str]) -> None:
    from printlab.clock import utcnow
    from printlab.db import make_engine, session_factory, upgrade
    from printlab.models import LabPrinter
    from printlab.services.printers import api_keys

    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        now = utcnow()
        for n, address in enumerate(addresses):
            # Records straight into the table: the catalog has four printers, the bench needs fifty.
            session.add(LabPrinter(name=f"Bench printer {n + 1}", connection="OCTOPRINT", address=address,
                                   api_key_sealed=api_keys.seal(SECRET, KEY), state="IN_SERVICE",
                                   added_at=now, changed_at=now))  # fmt: skip
        session.commit()
    engine.dispose()


def child(url: str, storage: str, warmup: float, seconds: float) -> None:
    """The watch alone in this process, as the worker runs it; prints its CPU seconds over the window."""
    from printlab.db import make_engine, session_factory
    from printlab.models import PrinterPoll
    from printlab.services.files.storage import Storage
    from printlab.services.jobs.print_watch import PrintWatch

    engine = make_engine(url)
    sessions = session_factory(engine)
    watch = PrintWatch(Storage(Path(storage)), SECRET)
    with sessions() as session:
        watch(session)  # starts the watch's own thread, as the worker's first tick does
    time.sleep(warmup)
    with sessions() as session:
        polls_before = session.query(PrinterPoll).count()
    before, wall = os.times(), time.monotonic()
    with sessions() as session:
        first = {p.printer_id: p.polled_at for p in session.query(PrinterPoll)}
    time.sleep(seconds)
    after, elapsed = os.times(), time.monotonic() - wall
    with sessions() as session:
        rows = list(session.query(PrinterPoll))
        last = {p.printer_id: p.polled_at for p in rows}
        offline = sum(1 for p in rows if p.activity == "offline")
    watch.stop()
    cpu = (after.user - before.user) + (after.system - before.system)
    spans = [(last[k] - first[k]).total_seconds() for k in last if first.get(k) and last[k]]
    print(json.dumps({"cpu_s": cpu, "wall_s": elapsed, "printers_polled": polls_before, "offline": offline,
                      "mean_poll_span_s": sum(spans) / len(spans) if spans else None}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--database-url")
    parser.add_argument("--child", nargs=2, metavar=("URL", "STORAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.warmup, args.seconds)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        addresses = serve_printers(args.printers)
        add_printers(url, addresses)
        env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "src")}
        command = [sys.executable, __file__, "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                   "--child", url, folder]  # fmt: skip
        result = json.loads(
            subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        )
    share = result["cpu_s"] / result["wall_s"] * 100
    polls = args.printers * result["wall_s"] / 5
    print(f"{args.printers} printers polled every 5 s for {result['wall_s']:.0f} s "
          f"({'SQLite' if not args.database_url else 'PostgreSQL'}): worker CPU {result['cpu_s']:.2f} s "
          f"= {share:.2f} % of one core ({result['cpu_s'] / polls * 1000:.2f} ms per poll); "
          f"{result['offline']} shown offline")  # fmt: skip
    print("goal: < 5 % of one core —", "met" if share < 5 else "NOT met")


if __name__ == "__main__":
    main()
