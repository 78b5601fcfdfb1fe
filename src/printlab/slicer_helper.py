"""`printlab-open`: opens a dashboard's `3dprint://open?path=…` link in this lab computer's slicer."""

# Standard library only: lab computers run this file with a bare Python 3.11+, without the rest of
# PrintLab's dependencies (it also runs as a single copied file: `python slicer_helper.py URL`).
#
# A link is trusted for nothing. It is parsed strictly, decoded once, mapped from the server's
# storage root to this computer's, and the file is opened only when its real path (every symlink,
# '..', junction, drive mapping and letter case resolved by the OS) is a regular file of a slicer
# type inside the real storage root. The slicer gets the path as one argument of its own; no shell
# ever sees it.

from __future__ import annotations

import configparser
import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import unquote_to_bytes

#: `3dprint` is the scheme of SPEC §5. It starts with a digit, which RFC 3986 and the WHATWG URL
#: standard don't allow, so browsers resolve `href="3dprint://…"` as a relative link to the
#: server. `printlab` is the same link under a valid scheme; the helper is registered for both.
SCHEMES = ("3dprint", "printlab")
ACTION = "open"
CONFIG_ENV = "PRINTLAB_OPEN_CONFIG"
CONFIG_NAMES = ("printlab-open.toml", "printlab-open.ini")
LOG_NAME = "printlab-open.log"
LOG_MAX_BYTES = 1024 * 1024
#: Far longer than any lab path, short enough that nothing below has to care about size.
MAX_URL_LENGTH = 4096
#: The files a slicer may be asked to open: the lab's model files and the slicer files saved
#: beside them (`services/jobs/job_desk.py` ATTACHABLE; a test keeps the two in step). Longest first,
#: so '.gcode.3mf' is found before '.3mf'.
ALLOWED_EXTENSIONS = tuple(
    sorted(
        (
            ".stl",
            ".obj",
            ".3mf",
            ".step",
            ".stp",
            ".gcode",
            ".bgcode",
            ".gcode.3mf",
            ".form",
            ".ctb",
            ".sl1",
            ".sl1s",
        ),
        key=len,
        reverse=True,
    )
)
#: The dashboard percent-encodes every byte except letters, digits and `_.-~`; unencoded `/` and
#: `:` are tolerated. Anything else (a raw '+', '&', '=', '%' not followed by two hex digits) means
#: the link was not made by the dashboard.
_ENCODED_VALUE = re.compile(r"(?:[A-Za-z0-9_.~/:-]|%[0-9A-Fa-f]{2})+")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
#: Batch files run through cmd.exe, which re-parses its command line: a file name containing '&'
#: would become a second command.
_BATCH_SUFFIXES = (".bat", ".cmd")

USAGE = """usage: printlab-open '3dprint://open?path=<url-encoded absolute path>'
       printlab-open --check     show the configuration and whether each slicer is installed

Opens a file under the lab's storage root in the slicer configured for its type.
Config: the file named by {env}, else printlab-open.toml or .ini in {dirs}.
Exit status: 0 slicer started, 1 link or file refused, 2 configuration problem, 3 slicer failed to start."""


class HelperError(Exception):
    """A link that can't be opened; the message is short and safe to show the staff member."""

    exit_code = 1
    label = "refused"


class Refused(HelperError):
    """The link, or the file it names, is not one this helper opens."""


class ConfigError(HelperError):
    """The config file is missing or wrong, or names a storage root or slicer that isn't there."""

    exit_code = 2
    label = "configuration"


class LaunchError(HelperError):
    """The operating system could not start the configured slicer."""

    exit_code = 3
    label = "could not start the slicer"


@dataclass(frozen=True)
class Slicer:
    name: str
    exe: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    #: The storage root as this computer sees it (a mount point, a mapped drive or a UNC path).
    storage_root: str
    #: The storage root as the server sees it: the prefix of the paths in the dashboard's links.
    server_root: str
    #: Extension ('.stl') → the slicer that opens it.
    slicers: Mapping[str, Slicer]


# -- the link ------------------------------------------------------------------------------------


def parse_link(url: str) -> str:
    """The absolute path that `3dprint://open?path=<encoded path>` names, decoded exactly once.

    Raises Refused for anything else: another scheme or action, a user, port, path or fragment,
    any parameter but one `path`, malformed encoding, non-UTF-8 bytes, NUL or control characters.
    """
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the link is longer than {MAX_URL_LENGTH} characters")
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise Refused("the link contains spaces, control or non-ASCII characters")
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        raise Refused(f"not a {SCHEMES[0]}:// link")
    target, question_mark, query = rest.partition("?")
    if target.lower() not in (ACTION, ACTION + "/"):
        raise Refused(f"the link's action is not '{ACTION}'")
    if not question_mark or "#" in query:
        raise Refused("the link must end in ?path=<encoded path>")
    name, equals, value = query.partition("=")
    if name != "path" or not equals or "&" in value or not value:
        raise Refused("the link must carry exactly one parameter, path")
    if not _ENCODED_VALUE.fullmatch(value):
        raise Refused("the path in the link is not percent-encoded")
    try:
        # One pass only: '%252e' becomes the three characters '%2e', never '.'.
        path = unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the path in the link is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise Refused("the path contains a NUL or control character")
    return path


# -- the file ------------------------------------------------------------------------------------


def pure_path(text: str) -> PurePath:
    """`text` in its own convention: Windows for a drive letter or UNC path, POSIX otherwise."""
    if re.match(r"[A-Za-z]:[\\/]", text) or text.startswith("\\\\"):
        return PureWindowsPath(text)
    return PurePosixPath(text)


def map_to_local(path: str, server_root: str, storage_root: str, local: type[PurePath] = Path) -> PurePath:
    """Where the server's `path` is on this computer: its part below `server_root`, under `storage_root`.

    Only names are carried over, so nothing of the server's path but the folder and file names
    reaches this computer's file system. Raises Refused for a relative path, a '..' anywhere, a
    path not below `server_root` (compared without case for a Windows root), and a name this
    computer could read as a separator, a drive or a stream ('\\', '/', ':').
    """
    server = pure_path(server_root)
    requested = type(server)(path)
    if not requested.is_absolute():
        raise Refused("the path in the link is not absolute")
    if ".." in requested.parts:
        raise Refused("the path contains '..'")
    try:
        below = requested.relative_to(server)
    except ValueError:
        raise Refused(f"{path} is outside the storage root {server_root}") from None
    if not below.parts:
        raise Refused("the link names the storage root, not a file")
    for name in below.parts:
        if name in (".", "..") or any(c in name for c in "\\/:"):
            raise Refused(f"unsafe name {name!r} in the path")
    return local(storage_root).joinpath(*below.parts)


def real_storage_root(storage_root: str) -> Path:
    """The storage root with every link and drive mapping resolved; ConfigError when it isn't reachable."""
    root = Path(storage_root)
    if not root.is_absolute():
        raise ConfigError(f"storage_root {storage_root!r} is not an absolute path")
    try:
        real = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConfigError(
            f"the storage root {storage_root} is not reachable (is the shared drive connected?)"
        ) from None
    if not real.is_dir():
        raise ConfigError(f"the storage root {storage_root} is not a folder")
    return real


def resolve_target(path: str, config: Config) -> Path:
    """The real path of the file that the decoded link `path` names, if this helper may open it.

    Raises Refused (outside the storage root, by '..' or by a symlink; missing; not a regular
    file; not a model or slicer file) or ConfigError (the storage root isn't reachable).
    """
    root = real_storage_root(config.storage_root)
    local = Path(map_to_local(path, config.server_root, config.storage_root))
    if extension_of(local.name) is None:
        raise Refused(f"{local.name} is not a model or slicer file")
    try:
        # The OS resolves every symlink, junction, '..', 8.3 name, drive mapping and letter case
        # (on Windows); where the file really is decides, not what the link says.
        real = local.resolve(strict=True)
    except FileNotFoundError:
        raise Refused(f"{local} does not exist") from None
    except (OSError, RuntimeError, ValueError):
        raise Refused(f"{local} can't be resolved (a symlink loop or an unreadable folder)") from None
    if real == root or not real.is_relative_to(root):
        raise Refused(f"{local} leads outside the storage root")
    try:
        mode = real.stat().st_mode
    except OSError:
        raise Refused(f"{local} can't be read") from None
    if not stat.S_ISREG(mode):
        raise Refused(f"{local} is not a file")
    if extension_of(real.name) is None:  # a link named '.stl' pointing at another type
        raise Refused(f"{local} is not a model or slicer file")
    return real


def extension_of(name: str) -> str | None:
    """The allowed extension `name` ends with ('.gcode.3mf' before '.3mf'), any case; None for others."""
    lower = name.lower()
    for extension in ALLOWED_EXTENSIONS:
        if lower.endswith(extension) and len(lower) > len(extension):
            return extension
    return None


def slicer_for(target: Path, config: Config) -> Slicer:
    """The slicer configured for the file's type ('.gcode.3mf' falls back to '.3mf'); ConfigError if none."""
    lower = target.name.lower()
    for extension in ALLOWED_EXTENSIONS:
        if lower.endswith(extension) and extension in config.slicers:
            return config.slicers[extension]
    raise ConfigError(f"no slicer is configured for {extension_of(target.name)} files on this computer")


# -- the slicer ----------------------------------------------------------------------------------


def executable(slicer: Slicer) -> Path:
    """The slicer's program; ConfigError unless it is an absolute path to a file that is not a batch file."""
    exe = Path(slicer.exe)
    if not exe.is_absolute():
        raise ConfigError(f"slicer {slicer.name}: exe must be an absolute path, not {slicer.exe!r}")
    if exe.suffix.lower() in _BATCH_SUFFIXES:
        raise ConfigError(f"slicer {slicer.name}: a batch file can't be used safely, name the program")
    if not exe.is_file():
        raise ConfigError(f"slicer {slicer.name} is not installed at {exe}")
    return exe


def launch(slicer: Slicer, target: Path) -> subprocess.Popen[bytes]:
    """Start `slicer` on `target`, passed as one argument of its own after the configured ones; no shell.

    Raises ConfigError for a missing or unsuitable program, LaunchError when the OS can't start it.
    """
    exe = executable(slicer)
    # `target` is absolute, so it can never be read as an option; a list means no shell and no
    # quoting of ours (on Windows, subprocess quotes each argument for the program's parser).
    argv = [str(exe), *slicer.args, str(target)]
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # the slicer outlives the helper and the browser's launcher
        )
    except OSError as exc:
        raise LaunchError(f"{exe}: {exc.strerror or exc}") from None


# -- configuration -------------------------------------------------------------------------------


def config_dirs(
    platform: str = sys.platform, env: Mapping[str, str] | None = None, home: Path | None = None
) -> list[Path]:
    """Where the config is looked for without PRINTLAB_OPEN_CONFIG: the user's folder, then the computer's."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform == "win32":
        bases = [env.get("APPDATA"), env.get("PROGRAMDATA") or "C:\\ProgramData"]
        return [Path(base) / "PrintLab" for base in bases if base]
    if platform == "darwin":
        return [
            home / "Library" / "Application Support" / "PrintLab",
            Path("/Library/Application Support/PrintLab"),
        ]
    return [Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "printlab", Path("/etc/printlab")]


def find_config(env: Mapping[str, str] | None = None, dirs: Sequence[Path] | None = None) -> Path:
    """The config file: PRINTLAB_OPEN_CONFIG, else the first printlab-open.toml/.ini found. ConfigError if none."""
    env = os.environ if env is None else env
    override = env.get(CONFIG_ENV)
    if override:
        if not Path(override).is_file():
            raise ConfigError(f"{CONFIG_ENV} names {override}, which is not a file")
        return Path(override)
    dirs = config_dirs(env=env) if dirs is None else dirs
    for folder in dirs:
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                return folder / name
    places = ", ".join(str(folder) for folder in dirs)
    raise ConfigError(f"no printlab-open.toml or printlab-open.ini in {places} (or set {CONFIG_ENV})")


def load_config(path: Path) -> Config:
    """Read a TOML (`.toml`) or INI (any other suffix) config; ConfigError names the file and the problem.

    Paths in it are checked when used (storage root reachable, slicer installed), so one file can
    be written for several computers.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad may add a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"can't read {path}: {exc}") from None
    try:
        raw = _parse_toml(text) if path.suffix.lower() == ".toml" else _parse_ini(text, path)
        return _build_config(path, raw)
    except (tomllib.TOMLDecodeError, configparser.Error, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _parse_toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def _parse_ini(text: str, path: Path) -> dict[str, Any]:
    # No interpolation ('%' is a file-name character) and no inline comments (nor is ';').
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.read_string(text, source=str(path))
    raw: dict[str, Any] = {}
    slicers: dict[str, Any] = {}
    for section in parser.sections():
        values = dict(parser.items(section))
        if section == "printlab-open":
            raw.update(values)
        elif section.startswith("slicer ") and section[7:].strip():
            if "args" in values:  # one argument per line: nothing to split, nothing to quote
                values["args"] = [line.strip() for line in values["args"].splitlines() if line.strip()]
            if "extensions" in values:
                values["extensions"] = values["extensions"].replace(",", " ").split()
            slicers[section[7:].strip()] = values
        else:
            raise ValueError(f"unknown section [{section}]; expected [printlab-open] and [slicer NAME]")
    raw["slicer"] = slicers
    return raw


def _build_config(path: Path, raw: dict[str, Any]) -> Config:
    unknown = set(raw) - {"storage_root", "server_root", "slicer"}
    if unknown:
        raise ValueError(f"unknown setting {sorted(unknown)[0]!r}")
    storage_root = raw.get("storage_root")
    if not isinstance(storage_root, str) or not storage_root.strip():
        raise ValueError("storage_root is missing")
    server_root = raw.get("server_root") or storage_root
    if not isinstance(server_root, str) or not pure_path(server_root).is_absolute():
        raise ValueError(f"server_root {server_root!r} is not an absolute path")
    sections = raw.get("slicer")
    if not isinstance(sections, dict) or not sections:
        raise ValueError("no slicer is configured")
    slicers: dict[str, Slicer] = {}
    for name, table in sections.items():
        slicer, extensions = _build_slicer(name, table)
        for extension in extensions:
            if extension in slicers:
                raise ValueError(f"{extension} has two slicers: {slicers[extension].name} and {name}")
            slicers[extension] = slicer
    return Config(
        path=path, storage_root=storage_root.strip(), server_root=server_root.strip(), slicers=slicers
    )


def _build_slicer(name: str, table: Any) -> tuple[Slicer, list[str]]:
    if not isinstance(table, dict):
        raise ValueError(f"slicer {name}: expected a section")
    unknown = set(table) - {"exe", "args", "extensions"}
    if unknown:
        raise ValueError(f"slicer {name}: unknown setting {sorted(unknown)[0]!r}")
    exe, args, extensions = table.get("exe"), table.get("args", []), table.get("extensions")
    if not isinstance(exe, str) or not exe.strip():
        raise ValueError(f"slicer {name}: exe is missing")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"slicer {name}: args must be a list of strings")
    if not isinstance(extensions, list) or not extensions or not all(isinstance(e, str) for e in extensions):
        raise ValueError(f"slicer {name}: extensions must list the file types it opens")
    normalised = []
    for extension in extensions:
        dotted = "." + extension.strip().lower().lstrip(".")
        if dotted not in ALLOWED_EXTENSIONS:
            raise ValueError(
                f"slicer {name}: {extension!r} is not a type the helper opens ({' '.join(ALLOWED_EXTENSIONS)})"
            )
        normalised.append(dotted)
    return Slicer(name=name, exe=exe.strip(), args=tuple(args)), normalised


# -- reporting -----------------------------------------------------------------------------------


def log_dirs(config_path: Path | None, platform: str = sys.platform) -> list[Path]:
    """Where the log goes: beside the config, else (not writable, or no config) the user's own folder."""
    home = Path.home()
    if platform == "win32":
        user = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "PrintLab"
    elif platform == "darwin":
        user = home / "Library" / "Logs" / "PrintLab"
    else:
        user = Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "printlab"
    return [config_path.parent, user] if config_path is not None else [user]


def _log(config_path: Path | None, message: str, url: str) -> None:
    """Append one line to the log; a log that can't be written never stops the helper."""
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    line = f"{stamp} {message} | link {url[:300]!r}\n"
    for folder in log_dirs(config_path):
        path = folder / LOG_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if path.is_file() and path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(LOG_NAME + ".1"))
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)
            return
        except OSError:
            continue


def _say(message: str) -> None:
    if sys.stderr is not None:  # None under pythonw.exe, which has no console
        print(f"printlab-open: {message}", file=sys.stderr)


def _check() -> int:
    """`--check`: the config, the storage root and each slicer, for whoever sets a computer up."""
    try:
        path = find_config()
        config = load_config(path)
        root = real_storage_root(config.storage_root)
    except HelperError as exc:
        _say(f"{exc.label}: {exc}")
        return exc.exit_code
    print(f"config:       {path}")
    print(f"storage root: {config.storage_root} (really {root})")
    print(f"server root:  {config.server_root}")
    ok = True
    for extension, slicer in sorted(config.slicers.items()):
        try:
            state = f"ok: {executable(slicer)} {' '.join(slicer.args)}".rstrip()
        except ConfigError as exc:
            ok, state = False, f"PROBLEM: {exc}"
        print(f"{extension:<11} {slicer.name}: {state}")
    return 0 if ok else ConfigError.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Open the one link given; exit 0 when the slicer started, 1 refused, 2 configuration, 3 launch failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        print(USAGE.format(env=CONFIG_ENV, dirs=" or ".join(map(str, config_dirs()))))
        return 0
    if args == ["--check"]:
        return _check()
    if len(args) != 1:
        _say("expected one 3dprint:// link (see --help)")
        return ConfigError.exit_code
    url = args[0]
    config_path: Path | None = None
    try:
        config_path = find_config()  # first, so that even a malformed link is logged beside it
        path = parse_link(url)
        config = load_config(config_path)
        target = resolve_target(path, config)
        slicer = slicer_for(target, config)
        launch(slicer, target)
    except HelperError as exc:
        _say(f"{exc.label}: {exc}")
        _log(config_path, f"{exc.label}: {exc}", url)
        return exc.exit_code
    except Exception as exc:  # a bug: still leave a trace, since under pythonw nobody sees stderr
        _say(f"unexpected error: {exc!r}")
        _log(config_path, f"unexpected error: {exc!r}", url)
        return LaunchError.exit_code
    _log(config_path, f"opened {target} with {slicer.name} ({slicer.exe})", url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
