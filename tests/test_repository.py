"""The repository stands on its own: a clone with nothing beside it has every file its tests read.

These tests clone the committed HEAD of the checkout they live in, so they check what was committed,
not the working tree: a fixture added but not committed (or kept out by .gitignore) fails here.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

#: Collecting ~1,500 tests imports every test module (trimesh, playwright, SQLAlchemy …): seconds.
COLLECT_TIMEOUT_S = 240


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _committed_head() -> str:
    """HEAD of the checkout holding this file; a copy that isn't a git checkout fails, clearly."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to check that a fresh clone of the repository collects its tests")
    found = _git("rev-parse", "--show-toplevel", "HEAD", cwd=ROOT)
    if found.returncode != 0:
        pytest.fail(
            f"{ROOT} is not a git checkout ({found.stderr.strip()}). This test clones the repository's "
            "committed HEAD into an empty folder; run the suite from a git clone."
        )
    toplevel, head = found.stdout.split()
    if Path(toplevel).resolve() != ROOT:
        pytest.fail(f"{ROOT} is not the top of its git checkout ({toplevel} is)")
    return head


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD, cloned into a folder of its own with nothing beside it."""
    head = _committed_head()
    folder = tmp_path_factory.mktemp("alone") / "printlab"
    cloned = _git("clone", "--quiet", "--no-checkout", str(ROOT), str(folder), cwd=ROOT)
    assert cloned.returncode == 0, cloned.stderr
    if _git("cat-file", "-e", f"{head}^{{commit}}", cwd=folder).returncode != 0:
        # A detached HEAD on no branch isn't cloned: fetch that one commit.
        fetched = _git("fetch", "--quiet", "origin", head, cwd=folder)
        assert fetched.returncode == 0, fetched.stderr
    checkout = _git("checkout", "--quiet", "--detach", head, cwd=folder)
    assert checkout.returncode == 0, checkout.stderr
    assert sorted(p.name for p in folder.parent.iterdir()) == ["printlab"]
    return folder


def test_a_fresh_clone_collects_every_test(clone: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PRINTLAB_"))}
    env["PYTHONPATH"] = str(clone / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=COLLECT_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    tail = "\n".join(output.splitlines()[-40:])
    assert result.returncode == 0, f"collection failed in a fresh clone (exit {result.returncode}):\n{tail}"
    last = output.strip().splitlines()[-1]  # "1512 tests collected in 6.1s"
    assert "collected" in last and "error" not in last.lower(), tail

    # The clone's tests read the clone's own fixtures (printlab from its src/, too).
    probe = subprocess.run(
        [sys.executable, "-c", "import printlab, tests.conftest as c; print(printlab.__file__, c.FIXTURES)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    package, fixtures = probe.stdout.split()
    assert Path(package).resolve().is_relative_to(clone.resolve() / "src")
    assert Path(fixtures).resolve() == clone.resolve() / "tests" / "fixtures"


def test_the_clone_has_every_fixture_the_manifest_lists_byte_for_byte(clone: Path) -> None:
    fixtures = clone / "tests" / "fixtures"
    with (fixtures / "MANIFEST.tsv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows
    for row in rows:
        data = (fixtures / row["relative_path"]).read_bytes()
        assert len(data) == int(row["size_bytes"]), row["relative_path"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["relative_path"]

    listed = {row["relative_path"] for row in rows} | {"MANIFEST.tsv", "LICENSES.md"}
    texts = {f"licenses/{name}" for name in ("MIT.txt", "BSD.txt", "LGPL-2.1.txt")}  # the licences' own texts
    listed |= texts
    on_disk = {p.relative_to(fixtures).as_posix() for p in fixtures.rglob("*") if p.is_file()}
    assert on_disk == listed
    # Every source named in the manifest has its notice in LICENSES.md.
    notices = (fixtures / "LICENSES.md").read_text(encoding="utf-8")
    for row in rows:
        assert Path(row["relative_path"]).name in notices, row["relative_path"]


# -- the lock --------------------------------------------------------------------------------------


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line!r}"
            pins[_name(name)] = Version(version.strip())
    return pins


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def test_the_lock_pins_every_direct_dependency_within_pyprojects_ranges() -> None:
    locked = _locked()
    for requirement in _project_requirements():
        name = _name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements/constraints.txt: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside pyproject.toml's {requirement}: run make lock"
        )


def test_the_lock_pins_every_indirect_dependency() -> None:
    # Walk the installed packages' own requirements from pyproject.toml's (markers evaluated for
    # this interpreter): everything reached must be pinned.
    locked = _locked()
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in _project_requirements()]
    while todo:
        requirement, extras = todo.pop()
        name = _name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        assert name in locked, f"{name} (needed by PrintLab) is not pinned: run make lock"
        try:
            needs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in needs:
            need = Requirement(text)
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((need, frozenset(need.extras)))
    assert len(seen) > 20
