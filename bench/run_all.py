"""Run every benchmark in turn (`make bench`): dashboard, submission, analysis, exports; each prints its own table."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, script, arguments for a full run, arguments for --quick)
BENCHMARKS: tuple[tuple[str, str, list[str], list[str]], ...] = (
    (
        "dashboard",
        "bench_dashboard.py",
        ["--backend", "both", "--jobs", "1000,100000"],
        ["--backend", "both", "--jobs", "1000,10000", "--requests", "50"],
    ),
    (
        "reports",
        "bench_reports.py",
        ["--backend", "both", "--jobs", "1000,100000"],
        ["--backend", "both", "--jobs", "1000,10000", "--requests", "5"],
    ),
    ("submission", "bench_submission.py", ["--backend", "both"], ["--backend", "sqlite", "--repeats", "1"]),
    ("analysis", "bench_analysis.py", [], ["--repeats", "1"]),
    ("exports", "bench_exports.py", ["--backend", "both"], ["--backend", "sqlite", "--jobs", "5000"]),
    ("polling", "bench_printer_polling.py", [], ["--seconds", "20", "--warmup", "5"]),
    ("webhooks", "bench_webhooks.py", [], ["--changes", "100", "--deliveries", "200"]),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=[name for name, *_ in BENCHMARKS], help="run just this one"
    )
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer repeats (a smoke run)")
    parser.add_argument("--json-dir", type=Path, help="also write each benchmark's results as JSON here")
    args = parser.parse_args()
    failed = []
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} — close other work for steady numbers"
    )
    for name, script, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        if not (HERE / script).exists():
            print(f"\n== {name}: {script} is missing, skipped")
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        if args.json_dir and name not in (
            "analysis",
            "polling",
            "webhooks",
        ):  # these print their figures only
            args.json_dir.mkdir(parents=True, exist_ok=True)
            command += ["--json", str(args.json_dir / f"{name}.json")]
        print(f"\n== {name}: {' '.join(command[1:])}", flush=True)
        began = time.perf_counter()
        code = subprocess.call(command, cwd=HERE)
        print(
            f"== {name}: {'done' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - began:.0f} s"
        )
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
