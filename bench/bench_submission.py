"""Benchmark: /submit through a real `printlab serve` — a 50 MB STL's wall time and server peak RSS, and 20 concurrent submissions."""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from seed import BACKENDS, bench_database

from printlab.services.files.storage import TEMP_FOLDER, Storage

MiB = 1024 * 1024
#: The largest binary STL under the default 50 MB upload limit: 84 + 50·n ≤ 50 MiB.
LARGE_BYTES = 50 * MiB
SMALL_BYTES = 1 * MiB
TINY_BYTES = 20 * 1024
FORM = {
    "student_name": "Bench Student",
    "discipline": "Engineering",
    "class_number": "ME 2110",
    "print_method": "Filament",
    "color": "True Red",
    "printer": "Prusa MK4S",
    "acknowledged_minimum_charge": "on",
}
_emails = itertools.count(1)


#: Maps CR and LF to neighbouring bytes (see --no-crlf).
_NO_CRLF = bytes.maketrans(b"\n\r", b"\x0b\x0c")


def write_binary_stl(path: Path, max_bytes: int, *, no_crlf: bool = False) -> int:
    """A valid binary STL of as many triangles as fit in `max_bytes`: a wavy sheet, written in chunks.

    `no_crlf` nudges every CR or LF byte of the triangle data to a neighbouring value (the file
    stays a valid STL of the same size), which keeps werkzeug's multipart parser from holding a
    possible boundary over between reads.
    """
    count = (max_bytes - 84) // 50
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
    with path.open("wb") as file:
        file.write(b"PrintLab benchmark sheet".ljust(80, b" "))
        file.write(np.uint32(count).tobytes())
        side = 1024  # triangles per row of the sheet
        for start in range(0, count, 200_000):
            index = np.arange(start, min(count, start + 200_000))
            x, y = (index % side).astype(np.float32) * 0.1, (index // side).astype(np.float32) * 0.1
            z = np.sin(x) * np.cos(y)
            data = np.zeros(len(index), dtype=record)
            data["normal"][:, 2] = 1
            data["vertices"][:, 0] = np.stack([x, y, z], axis=1)
            data["vertices"][:, 1] = np.stack([x + 0.1, y, z], axis=1)
            data["vertices"][:, 2] = np.stack([x, y + 0.1, z], axis=1)
            file.write(data.tobytes().translate(_NO_CRLF) if no_crlf else data.tobytes())
    return count


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def vm_kib(pid: int, field: str) -> int:
    """VmHWM (peak resident set) or VmRSS of a process, in KiB (psutil isn't a dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    storage: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def server(url: str, *, threads: int = 8) -> Iterator[Server]:
    """`printlab serve` (waitress) in a child process on a free port, temporary storage, no worker thread."""
    folder = Path(tempfile.mkdtemp(prefix="printlab-bench-serve-"))
    Storage(folder / "storage").ensure_folders()
    port = free_port()
    env = {
        **os.environ,
        "PRINTLAB_DATABASE_URL": url,
        "PRINTLAB_STORAGE_DIR": str(folder / "storage"),
        "PRINTLAB_MAIL_DIR": str(folder / "mail"),
        "PRINTLAB_INSTANCE_DIR": str(folder / "instance"),
        "PRINTLAB_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "PRINTLAB_BASE_URL": f"http://127.0.0.1:{port}",
        "PRINTLAB_SUBMIT_RATE_LIMIT": "1000 per hour",
        # The analysis runs in a worker; bench_analysis.py measures it. Here: the upload path alone.
        "PRINTLAB_WORKER": "off",
        "PRINTLAB_LOG_LEVEL": "WARNING",
        "TMPDIR": str(folder),  # where waitress spools large request bodies
    }
    command = [str(Path(sys.executable).parent / "printlab"), "serve", "--port", str(port)]
    command += ["--threads", str(threads)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"printlab serve did not start: {error[-2000:]}")
            time.sleep(0.1)
        yield Server(process, port, folder / "storage")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def submit(port: int, model: Path) -> tuple[int, float]:
    """One student: GET the form (cookie + CSRF token), POST the file streamed from disk. (status, seconds)"""
    status, headers, page = request(port, "GET", "/submit")
    assert status == 200, status
    cookie = headers.get("set-cookie", "").split(";", 1)[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on /submit"
    boundary = "----printlab-bench-" + secrets.token_hex(8)
    fields = {
        **FORM,
        "student_email": f"bench{next(_emails)}@example.edu",
        "csrf_token": token.group(1).decode(),
    }
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{model.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head.encode()) + model.stat().st_size + len(tail)

    def body() -> Iterator[bytes]:
        yield head.encode()
        with model.open("rb") as file:
            while chunk := file.read(256 * 1024):
                yield chunk
        yield tail

    began = time.perf_counter()
    status, _, answer = request(
        port,
        "POST",
        "/submit",
        body=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length),
            "Cookie": cookie,
        },
    )
    elapsed = time.perf_counter() - began
    if status == 413 and b"Request Entity Too Large" in answer:
        raise RuntimeError(
            "/submit answered 413 Request Entity Too Large from werkzeug's multipart parser, not PrintLab's "
            "size limit: LabRequest.max_form_memory_size (64 KiB) is no larger than the parser's 64 KiB "
            "reads, so a file whose data has a CR or LF near the end of a read is refused "
            "(docs/performance.md). Run with --no-crlf to measure the streaming path anyway."
        )
    if status != 303:
        message = re.findall(rb'class="field-error"[^>]*>([^<]*)<', answer) or [answer[:300]]
        raise RuntimeError(f"/submit answered {status}: {message}")
    return status, elapsed


def large_upload(url: str, model: Path, tiny: Path, repeats: int) -> dict[str, Any]:
    """A fresh server per file size: warm it up with a tiny upload, then measure; VmHWM is per process."""
    with server(url) as running:
        submit(running.port, tiny)
        before = vm_kib(running.pid, "VmHWM")
        times = [submit(running.port, model)[1] for _ in range(repeats)]
        peak = vm_kib(running.pid, "VmHWM")
        left = sorted(p.name for p in (running.storage / TEMP_FOLDER).glob("*"))
        return {
            "file_mib": model.stat().st_size / MiB,
            "seconds_best": min(times),
            "seconds_median": statistics.median(times),
            "rss_after_warmup_mib": before / 1024,
            "peak_rss_mib": peak / 1024,
            "growth_mib": (peak - before) / 1024,
            "left_in_incoming": left,
        }


def concurrent(url: str, model: Path, clients: int, threads: int) -> dict[str, Any]:
    with server(url, threads=threads) as running:
        submit(running.port, model)  # warm-up
        latencies: list[float] = []
        errors: list[str] = []
        gate = threading.Barrier(clients + 1)

        def student() -> None:
            gate.wait()
            try:
                latencies.append(submit(running.port, model)[1])
            except Exception as exc:  # reported below, never silently dropped
                errors.append(str(exc))

        workers = [threading.Thread(target=student) for _ in range(clients)]
        for worker in workers:
            worker.start()
        gate.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - began
        return {
            "clients": clients,
            "server_threads": threads,
            "ok": len(latencies),
            "errors": errors,
            "wall_seconds": wall,
            "per_second": len(latencies) / wall,
            "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
            "max_ms": max(latencies) * 1000 if latencies else None,
            "peak_rss_mib": vm_kib(running.pid, "VmHWM") / 1024,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="sqlite")
    parser.add_argument("--repeats", type=int, default=3, help="uploads per file size (default 3)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent submissions (default 20)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--no-crlf", action="store_true", help="generate STL data without CR/LF bytes (see write_binary_stl)"
    )
    args = parser.parse_args()
    model_check = Path(__file__).resolve().parents[1] / "src/printlab/services/files/model_files.py"
    if not model_check.exists():
        sys.exit("services/files/model_files.py (the content check /submit calls) isn't there yet")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="printlab-bench-models-") as folder:
        large, small, tiny = (Path(folder) / f"{n}.stl" for n in ("sheet_50mb", "sheet_1mb", "sheet_20kb"))
        triangles = {
            "large": write_binary_stl(large, LARGE_BYTES, no_crlf=args.no_crlf),
            "small": write_binary_stl(small, SMALL_BYTES, no_crlf=args.no_crlf),
            "tiny": write_binary_stl(tiny, TINY_BYTES, no_crlf=args.no_crlf),
        }
        results["triangles"] = triangles
        results["no_crlf"] = args.no_crlf
        for backend in BACKENDS if args.backend == "both" else (args.backend,):
            with bench_database(backend) as url:
                one = large_upload(url, small, tiny, args.repeats)
                fifty = large_upload(url, large, tiny, args.repeats)
                many = concurrent(url, tiny, args.clients, threads=8)
            results[backend] = {"1mb": one, "50mb": fifty, "concurrent": many}
            print(f"{backend}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
            print(
                f"  {'upload':<10} {'wall s (best/median)':>22} {'server RSS after warm-up':>25} {'peak':>8} {'growth':>8}"
            )
            for name, row in (("1 MB", one), ("50 MB", fifty)):
                print(
                    f"  {name:<10} {row['seconds_best']:>10.2f} / {row['seconds_median']:<9.2f} "
                    f"{row['rss_after_warmup_mib']:>22.1f} MiB {row['peak_rss_mib']:>6.1f} {row['growth_mib']:>+8.1f}"
                )
            print(
                f"  {many['ok']}/{many['clients']} concurrent {TINY_BYTES // 1024} KB submissions in "
                f"{many['wall_seconds']:.2f} s = {many['per_second']:.1f}/s (p50 {many['p50_ms']:.0f} ms, "
                f"slowest {many['max_ms']:.0f} ms, {many['server_threads']} server threads)"
            )
            if many["errors"]:
                print("  errors:", many["errors"][:3])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as error:
        sys.exit(f"bench_submission: {error}")
