"""The lab's printers as machines: how each one connects, whether it is in service, what it reports, in words."""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Longest address and API key PrintLab keeps (an address with a path prefix behind a proxy still fits).
MAX_ADDRESS = 300
MAX_API_KEY = 200
MIN_API_KEY = 6


class Connection(enum.StrEnum):
    """How PrintLab talks to a printer; the value is the code stored in `printer.connection`."""

    NONE = "NONE"
    OCTOPRINT = "OCTOPRINT"
    MOONRAKER = "MOONRAKER"
    PRUSALINK = "PRUSALINK"

    @property
    def label(self) -> str:
        return _CONNECTION_LABELS[self]

    @property
    def needs_key(self) -> bool:
        """OctoPrint and PrusaLink refuse every request without a key; Moonraker may trust the network."""
        return self in (Connection.OCTOPRINT, Connection.PRUSALINK)

    @property
    def key_hint(self) -> str:
        """Where staff find the key, on the printer's own pages."""
        return _KEY_HINTS[self]


_CONNECTION_LABELS = {
    Connection.NONE: "Not connected",
    Connection.OCTOPRINT: "OctoPrint",
    Connection.MOONRAKER: "Moonraker (Klipper)",
    Connection.PRUSALINK: "PrusaLink",
}
_KEY_HINTS = {
    Connection.NONE: "",
    Connection.OCTOPRINT: "OctoPrint's Settings → Application Keys (or your user's API key)",
    Connection.MOONRAKER: "only if Moonraker asks for one; Mainsail and Fluidd show it",
    Connection.PRUSALINK: "the printer's Settings → Network → PrusaLink shows it",
}


class ServiceState(enum.StrEnum):
    """Whether the lab uses the printer; the value is the code stored in `printer.state`."""

    IN_SERVICE = "IN_SERVICE"
    PAUSED = "PAUSED"  # out of service for now (maintenance, a jam): nothing is sent to it
    RETIRED = "RETIRED"  # gone for good: its key is forgotten and it can't come back

    @property
    def label(self) -> str:
        return {"IN_SERVICE": "In service", "PAUSED": "Paused", "RETIRED": "Retired"}[self.value]


#: The moves between service states an admin may make (retired is final).
SERVICE_MOVES: dict[ServiceState, tuple[ServiceState, ...]] = {
    ServiceState.IN_SERVICE: (ServiceState.PAUSED, ServiceState.RETIRED),
    ServiceState.PAUSED: (ServiceState.IN_SERVICE, ServiceState.RETIRED),
    ServiceState.RETIRED: (),
}


class Activity(enum.StrEnum):
    """What a connected printer is doing, whichever software it runs."""

    IDLE = "idle"
    PRINTING = "printing"
    PAUSED = "paused"
    BUSY = "busy"  # pausing, cancelling, finishing, heating before a print, connecting
    ERROR = "error"
    DISCONNECTED = "disconnected"  # its software answers but has no printer attached
    OFFLINE = "offline"  # PrintLab can't reach it

    @property
    def label(self) -> str:
        return _ACTIVITY_LABELS[self]


_ACTIVITY_LABELS = {
    Activity.IDLE: "Idle",
    Activity.PRINTING: "Printing",
    Activity.PAUSED: "Paused",
    Activity.BUSY: "Busy",
    Activity.ERROR: "Error",
    Activity.DISCONNECTED: "Not connected to the printer",
    Activity.OFFLINE: "Offline",
}


@dataclass(frozen=True)
class Temperature:
    """One heater: "tool0", "bed", "chamber"; degrees Celsius, None when not reported."""

    heater: str
    actual: float | None
    target: float | None

    @property
    def label(self) -> str:
        if self.heater.startswith("tool") or self.heater.startswith("extruder"):
            number = self.heater.removeprefix("tool").removeprefix("extruder")
            return "Nozzle" if number in ("", "0") else f"Nozzle {int(number) + 1}"
        if self.heater in ("bed", "heater_bed"):  # OctoPrint and PrusaLink say bed, Klipper heater_bed
            return "Bed"
        return self.heater.replace("_", " ").capitalize()


@dataclass(frozen=True)
class PrinterStatus:
    """What a printer reported at one moment, the same for every kind of connection."""

    activity: Activity
    #: The software that answered, with its version ("OctoPrint 1.11.8"); "" when nothing answered.
    software: str = ""
    #: The printer software's own word for its state ("Operational", "standby"), shown beside ours.
    detail: str = ""
    file: str | None = None
    #: 0–100, None when nothing is loaded.
    progress: float | None = None
    seconds_left: int | None = None
    seconds_printed: int | None = None
    temperatures: tuple[Temperature, ...] = ()
    #: The printer's error, or why PrintLab could not reach it (OFFLINE).
    message: str | None = None
    #: Filament used by the current or last print, where the printer reports it (Klipper does).
    filament_mm: float | None = None

    @property
    def finished(self) -> bool:
        """Idle with its last file printed to the end (a cancelled print stops short of 100 %)."""
        return self.activity is Activity.IDLE and bool(self.file) and (self.progress or 0) >= 100


def time_left_words(seconds: int | None) -> str:
    """'about 40 minutes left', 'about 2 hours 5 minutes left', 'less than a minute left'."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return f"about {' '.join(parts)} left"


def temperatures_words(temperatures: tuple[Temperature, ...] | list[Temperature]) -> str:
    """The heaters in a few words: "Nozzle 215/215 °C · Bed 60/60 °C" (actual/target, target 0 or
    unknown: the actual alone)."""
    words = []
    for heater in temperatures:
        if heater.actual is None and heater.target is None:
            continue
        actual = "–" if heater.actual is None else f"{heater.actual:.0f}"
        target = f"/{heater.target:.0f}" if heater.target else ""
        words.append(f"{heater.label} {actual}{target} °C")
    return " · ".join(words)


def temperatures_from(stored: object) -> tuple[Temperature, ...]:
    """The heaters as `printer_poll.temperatures` keeps them ([{"heater", "actual", "target"}, …]);
    anything else in the list is left out."""
    if not isinstance(stored, list):
        return ()
    found = []
    for item in stored:
        if isinstance(item, dict) and isinstance(item.get("heater"), str):
            actual, target = item.get("actual"), item.get("target")
            found.append(
                Temperature(
                    item["heater"],
                    float(actual) if isinstance(actual, int | float) else None,
                    float(target) if isinstance(target, int | float) else None,
                )
            )
    return tuple(found)


class LaneState(enum.StrEnum):
    """A printer's lane on the board: what the lab sees of the machine, whichever way it connects."""

    IDLE = "idle"
    PRINTING = "printing"
    PAUSED = "paused"
    BUSY = "busy"
    ERROR = "error"
    OFFLINE = "offline"
    NO_ANSWER_YET = "no-answer-yet"  # connected, but the worker hasn't heard from it yet
    OUT_OF_SERVICE = "out-of-service"  # paused by the lab: nothing is sent to it
    NOT_CONNECTED = "not-connected"  # staff start its prints on the printer itself

    @property
    def label(self) -> str:
        return _LANE_LABELS[self]


_LANE_LABELS = {
    LaneState.IDLE: "Idle",
    LaneState.PRINTING: "Printing",
    LaneState.PAUSED: "Paused",
    LaneState.BUSY: "Busy",
    LaneState.ERROR: "Error",
    LaneState.OFFLINE: "Offline",
    LaneState.NO_ANSWER_YET: "Waiting for its first answer",
    LaneState.OUT_OF_SERVICE: "Out of service — paused by the lab",
    LaneState.NOT_CONNECTED: "Not connected",
}


def lane_state(
    service: ServiceState | None, connection: Connection | None, activity: Activity | None
) -> LaneState:
    """The lane's state from the printer's record (None: the catalog printer has none in use) and
    the worker's last poll (None: none yet). A paused printer is out of service whatever it reports."""
    if service is ServiceState.PAUSED:
        return LaneState.OUT_OF_SERVICE
    if service is not ServiceState.IN_SERVICE or connection in (None, Connection.NONE):
        return LaneState.NOT_CONNECTED
    if activity is None:
        return LaneState.NO_ANSWER_YET
    return {
        Activity.IDLE: LaneState.IDLE,
        Activity.PRINTING: LaneState.PRINTING,
        Activity.PAUSED: LaneState.PAUSED,
        Activity.BUSY: LaneState.BUSY,
        Activity.ERROR: LaneState.ERROR,
        Activity.DISCONNECTED: LaneState.ERROR,  # its software answers without a printer attached
        Activity.OFFLINE: LaneState.OFFLINE,
    }[activity]


def describe(status: PrinterStatus) -> str:
    """The status in one sentence for staff: "Connected — OctoPrint 1.11.8, printer operational, idle"."""
    if status.activity is Activity.OFFLINE:
        return f"Offline — {status.message}" if status.message else "Offline"
    start = f"Connected — {status.software}" if status.software else "Connected"
    file = status.file or "a file"
    done = f", {status.progress:.0f}% done" if status.progress is not None else ""
    left = f", {time_left_words(status.seconds_left)}" if status.seconds_left is not None else ""
    if status.activity is Activity.IDLE:
        return f"{start}, printer operational, idle"
    if status.activity is Activity.PRINTING:
        return f"{start}, printing {file}{done}{left}"
    if status.activity is Activity.PAUSED:
        return f"{start}, print of {file} paused{done}"
    if status.activity is Activity.BUSY:
        return f"{start}, printer busy" + (f" ({status.detail.lower()})" if status.detail else "")
    if status.activity is Activity.DISCONNECTED:
        return f"{start}, but it is not connected to the printer" + (
            f" ({status.detail.lower()})" if status.detail else ""
        )
    reason = status.message or status.detail or "no reason given"
    return f"{start}, but the printer reports an error: {reason}"


# -- what an admin types ----------------------------------------------------------------------------


def address_problem(address: str) -> str | None:
    """Why `address` can't be a printer's address, or None. Expects it stripped; "" is a problem."""
    example = "e.g. http://192.168.1.40 or http://octopi.local"
    if not address:
        return f"Type the printer's address, {example}."
    if len(address) > MAX_ADDRESS:
        return f"Keep the address under {MAX_ADDRESS} characters."
    if any(c.isspace() for c in address):
        return f"An address has no spaces, {example}."
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        return f"That isn't an address PrintLab can use, {example}."
    if parts.scheme.lower() not in ("http", "https"):
        return f"The address must start with http:// or https://, {example}."
    if parts.username is not None or parts.password is not None:
        return "Leave the user name and password out of the address; the API key has its own field."
    if not parts.hostname:
        return f"The address needs the printer's name or IP address after http://, {example}."
    if parts.query or parts.fragment:
        return "Leave anything after ? or # out of the address."
    if port == 0:
        return "The port after : must be between 1 and 65535."
    if not _host_looks_right(parts.hostname):
        return f"“{parts.hostname}” isn't a computer name or IP address, {example}."
    return None


def _host_looks_right(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ) and all(c.isascii() for c in host)


def normal_address(address: str) -> str:
    """An accepted address as stored: scheme and host lower-cased, no trailing slash."""
    parts = urlsplit(address.strip())
    netloc = parts.netloc.lower()
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{netloc}{path}"


def api_key_problem(key: str) -> str | None:
    """Why `key` can't be an API key (keys travel in an HTTP header: printable ASCII, no spaces)."""
    if not all("!" <= c <= "~" for c in key):
        return "An API key is letters, digits and punctuation without spaces; copy it again from the printer."
    if len(key) < MIN_API_KEY:
        return "That API key is too short; copy the whole key from the printer."
    if len(key) > MAX_API_KEY:
        return f"Keep the API key under {MAX_API_KEY} characters."
    return None


# -- sending a sliced file and following its print (issue 14) ---------------------------------------

#: The sliced files each kind of printer software takes, by extension (lower case). OctoPrint and
#: Klipper take plain G-code; PrusaLink (MK4, XL, MINI) takes Prusa's binary G-code as well.
SENDABLE = {
    Connection.OCTOPRINT: (".gcode", ".gco", ".g"),
    Connection.MOONRAKER: (".gcode",),
    Connection.PRUSALINK: (".gcode", ".bgcode"),
}


def takes_file(connection: Connection, name: str) -> bool:
    """True when a printer on `connection` can be sent the sliced file `name` as it is."""
    return name.lower().endswith(SENDABLE.get(connection, ()))


def file_kinds_words(connection: Connection) -> str:
    """ "a .gcode file", "a .gcode or .bgcode file": what a printer on `connection` is sent."""
    kinds = [kind for kind in SENDABLE.get(connection, ()) if kind in (".gcode", ".bgcode")]
    return "a " + " or ".join(kinds or [".gcode"]) + " file"


def _words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def model_matches(file_model: str, printer_name: str) -> bool:
    """Was a file sliced for this printer? The printer model the slicer wrote in the file ("MK4S",
    "Original Prusa MK4S 0.4 nozzle", "Creality Ender-3 Pro") matches the lab's name for the printer
    ("Prusa MK4S") when the words of one appear, in order and side by side, among the words of the
    other: "MK4S" is a Prusa MK4S, "MK4" and "MINI" are not."""
    model, name = _words_of(file_model), _words_of(printer_name)
    if not model or not name:
        return False
    short, long = (model, name) if len(model) <= len(name) else (name, model)
    return any(long[i : i + len(short)] == short for i in range(len(long) - len(short) + 1))


def same_file(reported: str | None, sent: str) -> bool:
    """Is the file a printer reports the file PrintLab sent it? Printer software tidies names (OctoPrint
    turns spaces into underscores, Moonraker reports a path), so letters and digits are compared."""
    if not reported:
        return False
    base = reported.replace("\\", "/").rsplit("/", 1)[-1]
    return _words_of(base) == _words_of(sent.rsplit("/", 1)[-1])


#: How often the worker asks a printer that answers, and the longest wait after failures (a printer
#: that comes back is seen within this), in seconds.
POLL_SECONDS = 5
POLL_BACKOFF_CAP_SECONDS = 30
#: Polls in a row without an answer before a printer is shown offline (one lost answer is a blip).
OFFLINE_AFTER_FAILURES = 2


def next_poll_seconds(failures: int) -> int:
    """Seconds until the next poll after `failures` polls in a row got no answer: 5, 10, 20, 30, 30…"""
    if failures <= 0:
        return POLL_SECONDS
    return min(POLL_SECONDS * 2 ** (failures - 1), POLL_BACKOFF_CAP_SECONDS)


class RunVerdict(enum.Enum):
    """What a poll says about a print PrintLab started."""

    GOING = "going"  # still printing it (or paused, or heating), or not reachable just now
    FINISHED = "finished"
    STOPPED = "stopped"  # an error, a cancel, or the printer doing something else


#: After a print is started, how long a printer may still look idle before that counts as a stop
#: (OctoPrint takes a moment to go from "file selected" to "Printing").
START_GRACE_SECONDS = 30


def follow_run(
    status: PrinterStatus, sent_file: str, *, seen_printing: bool, seconds_since_start: float
) -> tuple[RunVerdict, str | None]:
    """(verdict, the reason in words for a stop) for a run that sent `sent_file`, from one poll.

    Finished is idle with our file at 100 %. A cancel on OctoPrint leaves our file selected and never
    finished, which reads the same as a print that hasn't begun yet: it counts as stopped once the
    print was seen printing, or once the start's grace period is over. An unreachable printer decides
    nothing (it may finish while PrintLab can't see it; the next answer says).
    """
    ours = same_file(status.file, sent_file)
    if status.activity is Activity.OFFLINE:
        return RunVerdict.GOING, None
    if status.activity is Activity.ERROR:
        return RunVerdict.STOPPED, status.message or status.detail or "The printer reported an error."
    if status.activity is Activity.DISCONNECTED:
        return (
            RunVerdict.STOPPED,
            "The printer's software lost its connection to the printer during the print.",
        )
    if ours and status.finished:
        return RunVerdict.FINISHED, None
    settled = seen_printing or seconds_since_start >= START_GRACE_SECONDS
    if status.activity in (Activity.PRINTING, Activity.PAUSED, Activity.BUSY):
        if ours or not status.file or not settled:
            return RunVerdict.GOING, None
        return RunVerdict.STOPPED, f"The printer is printing {status.file} instead."
    # idle
    if not settled:
        return RunVerdict.GOING, None
    if ours:
        return RunVerdict.STOPPED, "The print was cancelled on the printer."
    return RunVerdict.STOPPED, "The printer stopped the print (it is idle without it)."


def filament_grams(length_mm: float, density_g_cm3: float, diameter_mm: float = 1.75) -> float:
    """The weight of a length of filament: a cylinder of `diameter_mm` of a material of that density."""
    radius_cm = diameter_mm / 20
    return round(math.pi * radius_cm * radius_cm * (length_mm / 10) * density_g_cm3, 1)
