"""printlab-open: which dashboard links open a file in the slicer, which are refused, and what gets launched."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote, urljoin

import pytest

from printlab import slicer_helper
from printlab.domain.catalog import Catalog
from printlab.services.jobs.job_desk import ATTACHABLE
from printlab.slicer_helper import (
    ALLOWED_EXTENSIONS,
    ConfigError,
    LaunchError,
    Refused,
    Slicer,
    config_dirs,
    find_config,
    load_config,
    map_to_local,
)

PROJECT = Path(__file__).resolve().parents[1]
HELPER = PROJECT / "src" / "printlab" / "slicer_helper.py"
DEPLOY = PROJECT / "deploy" / "slicer-helper"
SERVER_ROOT = "/srv/printlab/storage"
BASE = "JaneDoe_Filament_TrueRed_a1b2c3"
ODD_NAME = "Jane Doe & Co $(touch pwned);'x'.stl"
posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="symlinks and FIFOs as on the lab's POSIX hosts"
)

#: A stand-in slicer: records the arguments it was started with (renamed into place, so a reader
#: never sees half of it).
RECORDER = """import json, os, sys
with open(sys.argv[1] + ".tmp", "w", encoding="utf-8") as out:
    out.write(json.dumps(sys.argv[2:]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


def link(path: str, scheme: str = "3dprint") -> str:
    """A link as the job page makes it (routes.py: quote(path, safe=''))."""
    return f"{scheme}://open?path=" + quote(path, safe="")


def server(relative: str) -> str:
    return f"{SERVER_ROOT}/{relative}"


@dataclass
class Lab:
    root: Path
    config_path: Path
    record: Path
    recorder: Path


@pytest.fixture(autouse=True)
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback log folder of whoever runs the tests stays untouched."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """A storage root with model, slicer and awkward files, a fake slicer, and a config naming both."""
    root = tmp_path / "storage"
    for folder in ("Pending", "Completed"):
        (root / folder).mkdir(parents=True)
    for name in (
        f"Pending/{BASE}.3mf",
        f"Pending/{BASE}.gcode.3mf",
        f"Pending/{BASE}.STL",
        f"Pending/{ODD_NAME}",
        f"Pending/{BASE}.form",
        "Pending/notes.txt",
        "Pending/tool.exe",
        "Pending/noext",
        "Pending/x.3mf.exe",
        "Completed/done.stl",
    ):
        (root / name).write_bytes(b"solid x\nendsolid x\n")
    (root / "Pending" / "folder.stl").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.stl").write_bytes(b"not the lab's")
    if sys.platform != "win32":
        (root / "Pending" / "escape.stl").symlink_to(outside / "secret.stl")
        (root / "Pending" / "linked").symlink_to(outside, target_is_directory=True)
        (root / "Pending" / "alias.stl").symlink_to(root / "Completed" / "done.stl")
        (root / "Pending" / "sneaky.stl").symlink_to(root / "Pending" / "tool.exe")
        (root / "Pending" / "loop.stl").symlink_to(root / "Pending" / "loop.stl")
        os.mkfifo(root / "Pending" / "pipe.stl")
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER, encoding="utf-8")
    record = tmp_path / "argv.json"
    config_path = tmp_path / "printlab-open.toml"
    exe, script, rec = (json.dumps(str(p)) for p in (sys.executable, recorder, record))
    config_path.write_text(
        f"""storage_root = {json.dumps(str(root))}
server_root = '{SERVER_ROOT}'

[slicer.mesh]
exe = {exe}
args = [{script}, {rec}, '--single-instance']
extensions = ['.stl', 'OBJ', '3mf']

[slicer.bambu]
exe = {exe}
args = [{script}, {rec}]
extensions = ['.gcode.3mf', '.gcode']
""",
        encoding="utf-8",
    )
    monkeypatch.setenv(slicer_helper.CONFIG_ENV, str(config_path))
    return Lab(root=root, config_path=config_path, record=record, recorder=recorder)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, Any]]]:
    """Every Popen call the helper makes, instead of starting anything."""
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(slicer_helper.subprocess, "Popen", lambda argv, **kw: calls.append((argv, kw)))
    return calls


def _ids(table: list) -> list[str]:
    return [row.values[0] if hasattr(row, "marks") else row[0] for row in table]


# -- accepted ------------------------------------------------------------------------------------

ACCEPTED = [
    ("as the job page links it", link(server(f"Pending/{BASE}.3mf")), f"Pending/{BASE}.3mf", "mesh"),
    ("compound type first", link(server(f"Pending/{BASE}.gcode.3mf")), f"Pending/{BASE}.gcode.3mf", "bambu"),
    ("type in capitals", link(server(f"Pending/{BASE}.STL")), f"Pending/{BASE}.STL", "mesh"),
    ("valid scheme", link(server(f"Pending/{BASE}.3mf"), "printlab"), f"Pending/{BASE}.3mf", "mesh"),
    (
        "scheme, action any case",
        "3DPRINT://OPEN?path=" + quote(server(f"Pending/{BASE}.3mf"), safe=""),
        f"Pending/{BASE}.3mf",
        "mesh",
    ),
    (
        "slash after action",
        "3dprint://open/?path=" + quote(server(f"Pending/{BASE}.3mf"), safe=""),
        f"Pending/{BASE}.3mf",
        "mesh",
    ),
    (
        "slashes unencoded",
        "3dprint://open?path=" + server(f"Pending/{BASE}.3mf"),
        f"Pending/{BASE}.3mf",
        "mesh",
    ),
    ("a '.' folder", link(server(f"Pending/./{BASE}.3mf")), f"Pending/{BASE}.3mf", "mesh"),
    ("shell characters in the name", link(server(f"Pending/{ODD_NAME}")), f"Pending/{ODD_NAME}", "mesh"),
    pytest.param(
        "symlink within the root",
        link(server("Pending/alias.stl")),
        "Completed/done.stl",
        "mesh",
        marks=posix_only,
    ),
]


@pytest.mark.parametrize(("case", "url", "opened", "slicer"), ACCEPTED, ids=_ids(ACCEPTED))
def test_an_accepted_link_launches_the_configured_slicer_with_the_real_path_as_its_own_argument(
    lab: Lab, launched: list, case: str, url: str, opened: str, slicer: str
) -> None:
    assert slicer_helper.main([url]) == 0

    real = str((lab.root / opened).resolve())
    extra = ["--single-instance"] if slicer == "mesh" else []
    assert launched == [
        (
            [sys.executable, str(lab.recorder), str(lab.record), *extra, real],
            {
                "stdin": subprocess.DEVNULL,
                "stdout": subprocess.DEVNULL,
                "stderr": subprocess.DEVNULL,
                "close_fds": True,
                "start_new_session": True,
            },
        )
    ]
    assert "opened" in (lab.config_path.parent / "printlab-open.log").read_text(encoding="utf-8")


# -- refused -------------------------------------------------------------------------------------

GOOD = quote(server(f"Pending/{BASE}.3mf"), safe="")

REFUSED_LINKS = [
    ("http scheme", f"http://open?path={GOOD}", "not a 3dprint:// link"),
    ("file scheme", "file://" + server(f"Pending/{BASE}.3mf"), "not a 3dprint:// link"),
    ("no //", f"3dprint:open?path={GOOD}", "not a 3dprint:// link"),
    ("other action", f"3dprint://view?path={GOOD}", "action is not 'open'"),
    ("action with a path", f"3dprint://open/extra?path={GOOD}", "action is not 'open'"),
    ("user in the link", f"3dprint://jane@open?path={GOOD}", "action is not 'open'"),
    ("port in the link", f"3dprint://open:80?path={GOOD}", "action is not 'open'"),
    ("no query", "3dprint://open", "must end in ?path="),
    ("fragment", f"3dprint://open?path={GOOD}#top", "must end in ?path="),
    ("empty query", "3dprint://open?", "exactly one parameter"),
    ("empty path", "3dprint://open?path=", "exactly one parameter"),
    ("path without value", "3dprint://open?path", "exactly one parameter"),
    ("path twice", f"3dprint://open?path={GOOD}&path={GOOD}", "exactly one parameter"),
    ("extra parameter after", f"3dprint://open?path={GOOD}&slicer=x", "exactly one parameter"),
    ("extra parameter before", f"3dprint://open?slicer=x&path={GOOD}", "exactly one parameter"),
    ("parameter name case", f"3dprint://open?PATH={GOOD}", "exactly one parameter"),
    ("raw plus", f"3dprint://open?path={GOOD}+x", "not percent-encoded"),
    ("bad escape", "3dprint://open?path=%2Fsrv%2", "not percent-encoded"),
    ("non-hex escape", "3dprint://open?path=%2Fsrv%zz.stl", "not percent-encoded"),
    (
        "raw space",
        "3dprint://open?path=/srv/printlab/storage/Pending/a b.stl",
        "spaces, control or non-ASCII",
    ),
    ("raw newline", f"3dprint://open?path={GOOD}\n", "spaces, control or non-ASCII"),
    ("raw tab", f"3dprint://open?path=\t{GOOD}", "spaces, control or non-ASCII"),
    ("raw NUL", f"3dprint://open?path={GOOD}\x00.stl", "spaces, control or non-ASCII"),
    (
        "raw non-ASCII",
        "3dprint://open?path=/srv/printlab/storage/Pending/é.stl",
        "spaces, control or non-ASCII",
    ),
    ("encoded NUL", link(server(f"Pending/{BASE}.3mf\x00.txt")), "NUL or control"),
    ("encoded newline", link(server("Pending/a\nb.stl")), "NUL or control"),
    ("not UTF-8", "3dprint://open?path=%2Fsrv%2F%FF.stl", "not UTF-8"),
    ("very long", "3dprint://open?path=" + "%2Fa" * 100_000, "longer than 4096"),
]

REFUSED_PATHS = [
    ("traversal", link(server("Pending/../../../outside/secret.stl")), "contains '..'"),
    (
        "traversal, slashes unencoded",
        "3dprint://open?path=/srv/printlab/storage/../outside/secret.stl",
        "contains '..'",
    ),
    (
        "traversal, encoded dots",
        "3dprint://open?path=%2Fsrv%2Fprintlab%2Fstorage%2F%2e%2e%2Foutside%2Fsecret.stl",
        "contains '..'",
    ),
    (
        "traversal, capital escapes",
        "3dprint://open?path=%2Fsrv%2Fprintlab%2Fstorage%2F%2E%2E%2Foutside%2Fsecret.stl",
        "contains '..'",
    ),
    (
        "traversal, double-encoded",
        link(server("Pending/%2e%2e%2f%2e%2e%2foutside%2fsecret.stl")),
        "does not exist",
    ),
    ("traversal, backslashes", link(server("Pending\\..\\..\\outside\\secret.stl")), "unsafe name"),
    ("stream or drive in a name", link(server(f"Pending/{BASE}.3mf:evil.stl")), "unsafe name"),
    ("outside the root", link("/srv/printlab/outside/secret.stl"), "outside the storage root"),
    (
        "a sibling sharing the prefix",
        link("/srv/printlab/storage2/Pending/x.stl"),
        "outside the storage root",
    ),
    ("relative path", link(f"Pending/{BASE}.3mf"), "not absolute"),
    ("Windows path to a POSIX server", link(f"C:\\PrintLab\\Pending\\{BASE}.3mf"), "not absolute"),
    ("the root itself", link(SERVER_ROOT), "the storage root, not a file"),
    ("a folder", link(server("Pending")), "not a model or slicer file"),
    ("a folder named like a model", link(server("Pending/folder.stl")), "is not a file"),
    ("missing file", link(server("Pending/missing.stl")), "does not exist"),
    ("text file", link(server("Pending/notes.txt")), "not a model or slicer file"),
    ("program", link(server("Pending/tool.exe")), "not a model or slicer file"),
    ("no extension", link(server("Pending/noext")), "not a model or slicer file"),
    ("double extension", link(server("Pending/x.3mf.exe")), "not a model or slicer file"),
    ("trailing dot", link(server(f"Pending/{BASE}.3mf.")), "not a model or slicer file"),
    ("only an extension", link(server("Pending/.stl")), "not a model or slicer file"),
    pytest.param("symlink out", link(server("Pending/escape.stl")), "leads outside", marks=posix_only),
    pytest.param(
        "through a linked folder",
        link(server("Pending/linked/secret.stl")),
        "leads outside",
        marks=posix_only,
    ),
    pytest.param(
        "symlink to another type",
        link(server("Pending/sneaky.stl")),
        "not a model or slicer file",
        marks=posix_only,
    ),
    pytest.param("symlink loop", link(server("Pending/loop.stl")), "can't be resolved", marks=posix_only),
    pytest.param("FIFO", link(server("Pending/pipe.stl")), "is not a file", marks=posix_only),
]


@pytest.mark.parametrize(
    ("case", "url", "reason"), REFUSED_LINKS + REFUSED_PATHS, ids=_ids(REFUSED_LINKS + REFUSED_PATHS)
)
def test_a_refused_link_launches_nothing_and_says_why(
    lab: Lab, launched: list, capsys: pytest.CaptureFixture[str], case: str, url: str, reason: str
) -> None:
    started = time.perf_counter()
    assert slicer_helper.main([url]) == 1

    assert launched == []
    message = capsys.readouterr().err
    assert message.startswith("printlab-open: refused: ") and reason in message
    log = (lab.config_path.parent / "printlab-open.log").read_text(encoding="utf-8")
    assert "refused: " in log and reason in log and len(log.splitlines()) == 1  # one line, whatever the link
    assert time.perf_counter() - started < 2  # even for 400 kB of link


def test_a_type_without_a_slicer_here_is_a_configuration_problem(
    lab: Lab, launched: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert slicer_helper.main([link(server(f"Pending/{BASE}.form"))]) == 2

    assert launched == []
    assert "no slicer is configured for .form files" in capsys.readouterr().err


def test_a_disconnected_storage_root_is_reported_as_such(
    lab: Lab, launched: list, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.root.rename(lab.root.with_name("unplugged"))

    assert slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))]) == 2
    assert launched == []
    assert "is not reachable (is the shared drive connected?)" in capsys.readouterr().err


def test_the_check_is_against_the_real_root_so_a_linked_root_still_works(
    lab: Lab, launched: list, tmp_path: Path
) -> None:
    if sys.platform == "win32":
        pytest.skip("symlinks")
    alias = tmp_path / "mounted-here"
    alias.symlink_to(lab.root, target_is_directory=True)
    text = lab.config_path.read_text(encoding="utf-8")
    lab.config_path.write_text(
        text.replace(json.dumps(str(lab.root)), json.dumps(str(alias))), encoding="utf-8"
    )

    assert slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))]) == 0
    assert launched[0][0][-1] == str(lab.root.resolve() / "Pending" / f"{BASE}.3mf")


def test_without_server_root_links_carry_this_computers_own_paths(
    lab: Lab, launched: list, tmp_path: Path
) -> None:
    text = lab.config_path.read_text(encoding="utf-8")
    lab.config_path.write_text(text.replace(f"server_root = '{SERVER_ROOT}'\n", ""), encoding="utf-8")

    assert slicer_helper.main([link(str(lab.root / "Pending" / f"{BASE}.3mf"))]) == 0
    assert slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))]) == 1
    assert slicer_helper.main([link(str(tmp_path / "outside" / "secret.stl"))]) == 1
    assert len(launched) == 1


# -- launching -----------------------------------------------------------------------------------


def test_end_to_end_on_a_bare_python_the_slicer_gets_the_file_name_verbatim(lab: Lab, tmp_path: Path) -> None:
    """The helper file run alone (`-S`: no site-packages, as on a lab computer) starts a real process."""
    env = {**os.environ, slicer_helper.CONFIG_ENV: str(lab.config_path)}
    result = subprocess.run(
        [sys.executable, "-S", str(HELPER), link(server(f"Pending/{ODD_NAME}"))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr

    deadline = time.monotonic() + 10  # the slicer runs on after the helper exits
    while not lab.record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    real = str((lab.root / "Pending" / ODD_NAME).resolve())
    assert json.loads(lab.record.read_text(encoding="utf-8")) == ["--single-instance", real]
    assert not list(tmp_path.rglob("pwned"))  # no shell ever read the name

    refused = subprocess.run(
        [sys.executable, "-S", str(HELPER), link(server("Pending/../../etc/passwd"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1
    assert refused.stderr == "printlab-open: refused: the path contains '..'\n"


def test_the_helper_imports_nothing_outside_the_standard_library() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import printlab.slicer_helper; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask', 'sqlalchemy', 'trimesh', 'numpy', 'PIL', 'alembic', 'werkzeug', 'jinja2'}))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(PROJECT / "src")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("exe", "reason"),
    [
        ("prusa-slicer", "must be an absolute path"),
        ("{tmp}/slicer.bat", "a batch file can't be used safely"),
        ("{tmp}/SLICER.CMD", "a batch file can't be used safely"),
        ("{tmp}/not-installed", "is not installed at"),
    ],
)
def test_an_unsuitable_slicer_program_is_not_started(
    lab: Lab, launched: list, tmp_path: Path, capsys: pytest.CaptureFixture[str], exe: str, reason: str
) -> None:
    exe = exe.format(tmp=tmp_path.as_posix())
    if not exe.endswith("not-installed") and "/" in exe:
        Path(exe).write_text("@echo off\n", encoding="utf-8")
    text = lab.config_path.read_text(encoding="utf-8")
    lab.config_path.write_text(
        text.replace(f"exe = {json.dumps(sys.executable)}", f"exe = {json.dumps(exe)}", 1), encoding="utf-8"
    )

    assert slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))]) == 2
    assert launched == []
    assert reason in capsys.readouterr().err


def test_a_program_the_os_cannot_start_exits_3(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(argv: list[str], **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(slicer_helper.subprocess, "Popen", refuse)

    assert slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))]) == 3
    assert "could not start the slicer: " in capsys.readouterr().err and "Permission denied" in (
        lab.config_path.parent / "printlab-open.log"
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize("argv", [[], ["a", "b"], ["--open", "x"]])
def test_anything_but_one_link_is_a_usage_error(launched: list, argv: list[str]) -> None:
    assert slicer_helper.main(argv) == 2
    assert launched == []


def test_check_lists_each_type_and_flags_a_missing_program(
    lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert slicer_helper.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert f"config:       {lab.config_path}" in out and ".gcode.3mf  bambu: ok: " in out

    with open(lab.config_path, "a", encoding="utf-8") as handle:
        handle.write(
            f"[slicer.preform]\nexe = {json.dumps(str(tmp_path / 'PreForm.exe'))}\nextensions = ['.form']\n"
        )
    assert slicer_helper.main(["--check"]) == 2
    assert ".form       preform: PROBLEM: slicer preform is not installed at" in capsys.readouterr().out


def test_the_log_is_kept_small(lab: Lab, launched: list) -> None:
    log = lab.config_path.parent / "printlab-open.log"
    log.write_text("x" * (slicer_helper.LOG_MAX_BYTES + 1), encoding="utf-8")

    slicer_helper.main([link(server(f"Pending/{BASE}.3mf"))])

    assert log.with_name("printlab-open.log.1").stat().st_size > slicer_helper.LOG_MAX_BYTES
    assert log.read_text(encoding="utf-8").count("\n") == 1


# -- mapping the server's paths to this computer's ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "server_root", "expected"),
    [
        ("C:\\PrintLab\\Storage\\Pending\\x.3mf", "C:\\PrintLab\\Storage", "Pending/x.3mf"),
        ("c:\\printlab\\STORAGE\\Pending\\x.3mf", "C:\\PrintLab\\Storage", "Pending/x.3mf"),
        ("C:/PrintLab/Storage/Pending/x.3mf", "C:\\PrintLab\\Storage\\", "Pending/x.3mf"),
        ("\\\\FILESERVER\\PrintLab\\Pending\\x.3mf", "\\\\fileserver\\printlab", "Pending/x.3mf"),
        ("/srv/printlab/storage/Pending/x.3mf", "/srv/printlab/storage/", "Pending/x.3mf"),
    ],
)
def test_a_windows_or_unc_server_root_is_matched_without_case(
    path: str, server_root: str, expected: str
) -> None:
    assert map_to_local(path, server_root, "/mnt/printlab", PurePosixPath) == PurePosixPath(
        "/mnt/printlab", expected
    )


@pytest.mark.parametrize(
    ("path", "server_root", "reason"),
    [
        ("D:\\PrintLab\\Storage\\Pending\\x.3mf", "C:\\PrintLab\\Storage", "outside the storage root"),
        ("\\\\otherserver\\printlab\\Pending\\x.3mf", "\\\\fileserver\\printlab", "outside the storage root"),
        ("C:\\PrintLab\\Storage\\..\\Secrets\\x.3mf", "C:\\PrintLab\\Storage", "contains '..'"),
        ("C:\\PrintLab\\Storage\\Pending\\x.3mf:evil", "C:\\PrintLab\\Storage", "unsafe name"),
        ("C:PrintLab\\Storage\\Pending\\x.3mf", "C:\\PrintLab\\Storage", "not absolute"),
        ("\\PrintLab\\Storage\\Pending\\x.3mf", "C:\\PrintLab\\Storage", "not absolute"),
        ("/srv/printlab/storage/Pending/x.3mf", "C:\\PrintLab\\Storage", "not absolute"),
        ("/srv/printlab/storage/C:x.3mf", "/srv/printlab/storage", "unsafe name"),
        ("/SRV/printlab/storage/Pending/x.3mf", "/srv/printlab/storage", "outside the storage root"),
    ],
)
def test_a_path_the_server_root_does_not_cover_is_refused(path: str, server_root: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        map_to_local(path, server_root, "/mnt/printlab", PurePosixPath)


@pytest.mark.parametrize("storage_root", ["S:\\PrintLab", "\\\\fileserver\\printlab"])
def test_a_lab_pc_on_windows_gets_the_names_under_its_drive_or_share(storage_root: str) -> None:
    local = map_to_local(server(f"Pending/{BASE}.3mf"), SERVER_ROOT, storage_root, PureWindowsPath)

    assert local == PureWindowsPath(storage_root, "Pending", f"{BASE}.3mf")
    assert local.drive == PureWindowsPath(storage_root).drive


# -- configuration -------------------------------------------------------------------------------


def test_ini_and_toml_configs_say_the_same_thing(tmp_path: Path) -> None:
    ini = tmp_path / "printlab-open.ini"
    ini.write_text(
        """; comment
[printlab-open]
storage_root = S:\\PrintLab
server_root = /srv/printlab/storage

[slicer prusaslicer]
exe = C:\\Program Files\\50%\\prusa-slicer.exe
args =
    --single-instance
    --datadir
    C:\\Lab Profiles;v2
extensions = .stl, obj .3MF
""",
        encoding="utf-8-sig",
    )
    toml = tmp_path / "printlab-open.toml"
    toml.write_text(
        """storage_root = 'S:\\PrintLab'
server_root = '/srv/printlab/storage'
[slicer.prusaslicer]
exe = 'C:\\Program Files\\50%\\prusa-slicer.exe'
args = ['--single-instance', '--datadir', 'C:\\Lab Profiles;v2']
extensions = ['.stl', 'obj', '.3MF']
""",
        encoding="utf-8",
    )
    from_ini, from_toml = load_config(ini), load_config(toml)

    assert dataclasses.replace(from_ini, path=toml) == from_toml
    assert from_toml.storage_root == "S:\\PrintLab"
    slicer = Slicer(
        "prusaslicer",
        "C:\\Program Files\\50%\\prusa-slicer.exe",
        ("--single-instance", "--datadir", "C:\\Lab Profiles;v2"),
    )
    assert from_toml.slicers == {".stl": slicer, ".obj": slicer, ".3mf": slicer}


@pytest.mark.parametrize(
    ("suffix", "text", "reason"),
    [
        (
            ".toml",
            "storage_rot = '/mnt/p'\n[slicer.a]\nexe = '/a'\nextensions = ['stl']\n",
            "unknown setting 'storage_rot'",
        ),
        (".toml", "[slicer.a]\nexe = '/a'\nextensions = ['stl']\n", "storage_root is missing"),
        (
            ".toml",
            "storage_root = '/mnt/p'\nserver_root = 'srv/p'\n[slicer.a]\nexe = '/a'\nextensions = ['stl']\n",
            "not an absolute path",
        ),
        (".toml", "storage_root = '/mnt/p'\n", "no slicer is configured"),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\nextensions = ['igs']\n",
            "'igs' is not a type the helper opens",
        ),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\nextensions = ['exe']\n",
            "'exe' is not a type the helper opens",
        ),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\nextensions = ['stl']\n[slicer.b]\nexe = '/b'\nextensions = ['.STL']\n",
            ".stl has two slicers: a and b",
        ),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\nargs = '--x'\nextensions = ['stl']\n",
            "args must be a list",
        ),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\nextensions = []\n",
            "extensions must list",
        ),
        (
            ".toml",
            "storage_root = '/mnt/p'\n[slicer.a]\nexe = '/a'\ncommand = 'x'\nextensions = ['stl']\n",
            "unknown setting 'command'",
        ),
        (
            ".toml",
            'storage_root = "S:\\PrintLab"\n',
            "printlab-open.toml",
        ),  # a backslash escape in double quotes
        (
            ".ini",
            "[printlab-open]\nstorage_root = /mnt/p\n[slicers a]\nexe = /a\n",
            "unknown section [slicers a]",
        ),
        (".ini", "[DEFAULT]\nstorage_root = /mnt/p\n", "unknown section [DEFAULT]"),
        (".ini", "storage_root = /mnt/p\n", "printlab-open.ini"),
        (".ini", "[printlab-open]\nstorage_root = /mnt/p\nstorage_root = /mnt/q\n", "printlab-open.ini"),
    ],
)
def test_a_wrong_config_is_refused_with_the_file_and_the_problem(
    tmp_path: Path, suffix: str, text: str, reason: str
) -> None:
    path = tmp_path / f"printlab-open{suffix}"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=reason.replace(".", r"\.").replace("[", r"\[")) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_the_config_is_found_in_the_users_folder_before_the_computers(tmp_path: Path) -> None:
    user, machine = tmp_path / "user", tmp_path / "machine"
    machine.mkdir()
    (machine / "printlab-open.ini").write_text("", encoding="utf-8")
    assert find_config(env={}, dirs=[user, machine]) == machine / "printlab-open.ini"

    user.mkdir()
    (user / "printlab-open.ini").write_text("", encoding="utf-8")
    (user / "printlab-open.toml").write_text("", encoding="utf-8")
    assert find_config(env={}, dirs=[user, machine]) == user / "printlab-open.toml"

    override = tmp_path / "elsewhere.ini"
    override.write_text("", encoding="utf-8")
    assert find_config(env={"PRINTLAB_OPEN_CONFIG": str(override)}, dirs=[user]) == override


def test_a_missing_config_names_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no printlab-open\.toml or printlab-open\.ini in .*nowhere"):
        find_config(env={}, dirs=[tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match=r"PRINTLAB_OPEN_CONFIG names .*gone\.toml, which is not a file"):
        find_config(env={"PRINTLAB_OPEN_CONFIG": str(tmp_path / "gone.toml")})


def test_config_folders_follow_each_platforms_convention() -> None:
    home = Path("/home/jane")
    assert config_dirs("linux", {}, home) == [Path("/home/jane/.config/printlab"), Path("/etc/printlab")]
    assert config_dirs("linux", {"XDG_CONFIG_HOME": "/xdg"}, home)[0] == Path("/xdg/printlab")
    assert config_dirs("darwin", {}, home) == [
        Path("/home/jane/Library/Application Support/PrintLab"),
        Path("/Library/Application Support/PrintLab"),
    ]
    windows = config_dirs(
        "win32", {"APPDATA": "C:\\Users\\jane\\AppData\\Roaming", "PROGRAMDATA": "C:\\ProgramData"}, home
    )
    assert [str(p) for p in windows] == [
        str(Path("C:\\Users\\jane\\AppData\\Roaming") / "PrintLab"),
        str(Path("C:\\ProgramData") / "PrintLab"),
    ]


# -- what is shipped -----------------------------------------------------------------------------


def test_the_example_configs_load_and_map_the_servers_storage_root() -> None:
    env_example = (PROJECT / "deploy" / "printlab.env.example").read_text(encoding="utf-8")
    for name in ("printlab-open.example.ini", "printlab-open.example.toml"):
        config = load_config(DEPLOY / name)
        assert f"PRINTLAB_STORAGE_DIR={config.server_root}\n" in env_example
        assert {".stl", ".obj", ".3mf", ".gcode", ".bgcode", ".gcode.3mf"} <= set(config.slicers)


def test_the_helper_opens_every_file_type_the_lab_keeps() -> None:
    model_extensions = {f.name: f.default for f in dataclasses.fields(Catalog)}["model_extensions"]
    assert set(ALLOWED_EXTENSIONS) == set(ATTACHABLE) | set(model_extensions)


def test_the_console_script_and_the_registrations_run_the_helper_for_both_schemes() -> None:
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["printlab-open"] == "printlab.slicer_helper:main"

    reg = (DEPLOY / "printlab-open.reg").read_bytes().decode("ascii")
    assert reg.startswith("Windows Registry Editor Version 5.00\r\n") and "\n" not in reg.replace("\r\n", "")
    desktop = (DEPLOY / "printlab-open.desktop").read_text(encoding="utf-8")
    applescript = (DEPLOY / "PrintLabOpen.applescript").read_text(encoding="utf-8")
    for scheme in slicer_helper.SCHEMES:
        assert f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\{scheme}]\r\n" in reg
        assert f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\{scheme}\\shell\\open\\command]" in reg
        assert f"x-scheme-handler/{scheme};" in desktop
    assert reg.count('slicer_helper.py\\" \\"%1\\""') == 2  # the link is one quoted argument
    assert "Exec=/usr/bin/python3 /usr/local/lib/printlab/slicer_helper.py %u\n" in desktop
    assert "quoted form of theURL" in applescript


def test_3dprint_links_resolve_relative_to_the_page_so_the_printlab_scheme_is_accepted_too() -> None:
    """A scheme must start with a letter (RFC 3986 §3.1); browsers, like urljoin, treat `3dprint://` as a path."""
    page = "https://printlab.example.edu/jobs/abc"
    assert urljoin(page, "3dprint://open?path=x").startswith("https://printlab.example.edu/jobs/")
    assert urljoin(page, "printlab://open?path=x") == "printlab://open?path=x"
    assert slicer_helper.parse_link("printlab://open?path=%2Fx.stl") == slicer_helper.parse_link(
        "3dprint://open?path=%2Fx.stl"
    )


def test_launch_error_and_config_error_exit_codes_differ_from_a_refusal() -> None:
    assert (Refused.exit_code, ConfigError.exit_code, LaunchError.exit_code) == (1, 2, 3)
