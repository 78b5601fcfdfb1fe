"""Benchmark: load + analyse and thumbnail a 1,000,000-triangle binary STL; time and peak memory per step."""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

TRIANGLES = 1_000_000
RADIUS_MM = 60.0


def write_sphere_stl(path: Path, segments: int = 1000, rings: int = 501, radius: float = RADIUS_MM) -> int:
    """A closed UV sphere as a binary STL: 2·segments·(rings − 1) triangles (1,000,000 by default)."""
    theta = np.linspace(0, math.pi, rings + 1)[1:-1]  # latitudes of the rings, poles excluded
    phi = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = np.stack(
        [
            np.outer(np.sin(theta), np.cos(phi)),
            np.outer(np.sin(theta), np.sin(phi)),
            np.outer(np.cos(theta), np.ones_like(phi)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    vertices = np.vstack([[0, 0, 1], ring, [0, 0, -1]]) * radius
    top, bottom = 0, len(vertices) - 1
    j = np.arange(segments)
    nxt = (j + 1) % segments
    faces = [np.stack([np.full(segments, top), 1 + j, 1 + nxt], axis=1)]
    for r in range(rings - 2):  # quads between ring r and r + 1, two triangles each
        a, b = 1 + r * segments + j, 1 + r * segments + nxt
        c, d = a + segments, b + segments
        faces += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = 1 + (rings - 2) * segments
    faces.append(np.stack([last + j, np.full(segments, bottom), last + nxt], axis=1))
    tris = vertices[np.concatenate(faces)]
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
    data = np.zeros(len(tris), dtype=record)
    data["vertices"] = tris
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    data["normal"] = normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    with path.open("wb") as file:
        file.write(b"PrintLab benchmark sphere".ljust(80, b" "))
        file.write(np.uint32(len(tris)).tobytes())
        data.tofile(file)
    return len(tris)


def _peak_rss_mb() -> float:
    """This process's resident-memory high-water mark. VmHWM starts afresh at exec, unlike ru_maxrss,
    which Linux carries over from the parent that forked us."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(path: Path, repeats: int) -> dict[str, object]:
    """Runs in a fresh interpreter so that its peak RSS belongs to the measured work alone."""
    from printlab.domain.catalog import DEFAULT_CATALOG
    from printlab.services.files.analysis import analyse_mesh
    from printlab.services.files.meshes import load_mesh
    from printlab.services.files.model_files import check_model
    from printlab.services.files.thumbnail import render_thumbnail

    def analyse(mesh):  # type: ignore[no-untyped-def]
        return analyse_mesh(mesh, catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")

    results: dict[str, object] = {"rss_after_imports_mb": _peak_rss_mb()}

    def measure(name: str, work, prepare=lambda: None):  # type: ignore[no-untyped-def]
        """Best time of `repeats` runs of work(prepare()), then one more run under tracemalloc
        (which slows allocation, so it is kept out of the timed runs) for the memory peak."""
        times = []
        for run in range(repeats + 1):
            argument = prepare()  # outside the timing (e.g. a fresh mesh: trimesh caches results)
            # trimesh meshes hold reference cycles: collect the last run's before measuring.
            gc.collect()
            traced = run == repeats
            if traced:
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            value = last = work(argument)
            elapsed = time.perf_counter() - start
            if traced:
                peak = (tracemalloc.get_traced_memory()[1] - before) / 2**20
                tracemalloc.stop()
            else:
                times.append(elapsed)
            del argument, value
        results[name] = {"seconds": min(times), "traced_peak_mb": peak, "max_rss_mb": _peak_rss_mb()}
        return last

    measure("check_model", lambda _: check_model(path, ".stl"))
    measure("load_mesh", lambda _: load_mesh(path, ".stl"))
    analysis = measure("analyse_mesh", analyse, lambda: load_mesh(path, ".stl"))
    measure("load+analyse", lambda _: analyse(load_mesh(path, ".stl")))
    png = measure("thumbnail", lambda mesh: render_thumbnail(mesh, size=256), lambda: load_mesh(path, ".stl"))
    results["analysis"] = analysis.to_dict()
    results["png_bytes"] = len(png)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="best-of-N timing per step (default 3)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="also save the thumbnail PNG here")
    args = parser.parse_args()
    if args.generate:
        print(write_sphere_stl(args.generate))
        return
    if args.child:
        results = child(args.child, args.repeats)
        if args.keep:
            from printlab.services.files.meshes import load_mesh
            from printlab.services.files.thumbnail import render_thumbnail

            args.keep.write_bytes(render_thumbnail(load_mesh(args.child, ".stl")))
        print(json.dumps(results))
        return

    load = os.getloadavg()
    # This process stays small: the sphere is made, and measured, in child processes.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sphere_1m.stl"
        start = time.perf_counter()
        count = int(_run("--generate", str(path)))
        generated = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        extra = ["--keep", str(args.keep)] if args.keep else []
        results = json.loads(_run("--child", str(path), "--repeats", str(args.repeats), *extra))
    analysis = results["analysis"]
    expected_volume = 4 / 3 * math.pi * RADIUS_MM**3
    print(
        f"Input: {count:,}-triangle binary STL sphere, r = {RADIUS_MM:g} mm, {size_mb:.1f} MiB "
        f"(written in {generated:.1f} s)"
    )
    print(
        f"Result: {analysis['triangles']:,} triangles, watertight={analysis['watertight']}, "
        f"volume {analysis['volume_mm3']:,.0f} mm³ (true sphere {expected_volume:,.0f}), "
        f"thumbnail {results['png_bytes']:,} bytes"
    )
    print(
        f"Child interpreter after importing numpy, trimesh, Pillow: {results['rss_after_imports_mb']:.0f} MiB RSS"
    )
    print()
    print(f"{'step':<14} {'time (s)':>9} {'traced peak (MiB)':>18} {'process peak RSS (MiB)':>23}")
    for name in ("check_model", "load_mesh", "analyse_mesh", "load+analyse", "thumbnail"):
        row = results[name]
        print(f"{name:<14} {row['seconds']:>9.3f} {row['traced_peak_mb']:>18.1f} {row['max_rss_mb']:>23.0f}")
    print()
    print(
        f"Time: best of {args.repeats} runs. Traced peak: the most memory numpy and Python allocated during"
    )
    print("the step beyond what was held before it (tracemalloc, in a separate run; for analyse_mesh and")
    print("thumbnail the mesh was loaded beforehand). Process peak RSS: the child's high-water mark so far,")
    print("so it only grows down the table. Other work on the machine slows every step: load average")
    print("when the run started: " + ", ".join(f"{x:.1f}" for x in load))


def _run(*arguments: str) -> str:
    return subprocess.run(
        [sys.executable, __file__, *arguments], check=True, capture_output=True, text=True
    ).stdout


if __name__ == "__main__":
    main()
