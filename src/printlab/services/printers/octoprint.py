"""OctoPrint's REST API (docs.octoprint.org, "REST API"): version, connection, job, printer, files — with an API key.

OctoPrint runs beside the printer and drives it over a serial cable, so besides "is OctoPrint there"
there is "is OctoPrint connected to the printer" (`/api/connection`); `connect()` opens that
connection with OctoPrint's saved port when it is closed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from printlab.domain.printers import Activity, PrinterStatus, Temperature
from printlab.services.printers.connector import (
    DEFAULT_TIMEOUTS,
    Connector,
    HttpApi,
    NothingToCancel,
    PrinterBusy,
    PrinterProblem,
    Timeouts,
    UnexpectedAnswer,
)

#: OctoPrint's state words (`/api/job` "state", `/api/connection` "current.state") and what they mean.
_STATES = {
    "Operational": Activity.IDLE,
    "Printing": Activity.PRINTING,
    "Printing from SD": Activity.PRINTING,
    "Paused": Activity.PAUSED,
    "Offline": Activity.DISCONNECTED,
    "Closed": Activity.DISCONNECTED,
}
#: Connection states that end by themselves (OctoPrint is opening the serial port).
_CONNECTING = ("Opening serial connection", "Detecting serial connection", "Detecting baudrate", "Connecting")
#: How long `connect()` waits for OctoPrint to finish opening the printer's serial port.
CONNECT_WAIT_S = 15.0


class OctoPrint(Connector):
    """One printer behind OctoPrint, reached with an application key (header X-Api-Key)."""

    software = "OctoPrint"

    def __init__(self, address: str, api_key: str | None, *, timeouts: Timeouts = DEFAULT_TIMEOUTS):
        self.api = HttpApi(address, {"X-Api-Key": api_key or ""}, "OctoPrint", timeouts)
        self._version: str | None = None

    def close(self) -> None:
        self.api.close()

    # -- the interface -----------------------------------------------------------------------------

    def connect(self) -> PrinterStatus:
        self._version = None  # ask again: a test of the connection says which version answers now
        self._software()
        connection = self.api.json("GET", "/api/connection")
        state = str(_get(connection, "current", "state") or "")
        if state in ("Closed", "Offline") or state.startswith(("Error", "Offline after error")):
            options = connection.get("options") if isinstance(connection.get("options"), dict) else {}
            port = options.get("portPreference") or _only(options.get("ports"))
            if port:
                command: dict[str, Any] = {"command": "connect", "port": port}
                if options.get("baudratePreference"):
                    command["baudrate"] = options["baudratePreference"]
                self.api.request("POST", "/api/connection", json=command, expect=(204,))
                self._wait_while_connecting()
        return self.status()

    def status(self, *, temperatures: bool = True) -> PrinterStatus:
        software = self._software()
        job = self.api.json("GET", "/api/job")
        state = str(job.get("state") or "")
        progress = job.get("progress") if isinstance(job.get("progress"), dict) else {}
        file = _get(job, "job", "file", "display") or _get(job, "job", "file", "name")
        activity = _STATES.get(state)
        message = None
        if activity is None:
            if state.startswith(("Error", "Offline after error")):
                activity = Activity.ERROR
                message = str(job.get("error") or state)
            else:  # starting, pausing, resuming, cancelling, finishing, connecting, SD transfers
                activity = Activity.BUSY
        heaters: tuple[Temperature, ...] = ()
        if temperatures and activity not in (Activity.DISCONNECTED, Activity.ERROR):
            heaters = self._temperatures()
        return PrinterStatus(
            activity,
            software=software,
            detail=state,
            file=str(file) if file else None,
            progress=_number(progress.get("completion")),
            seconds_left=_whole(progress.get("printTimeLeft")),
            seconds_printed=_whole(progress.get("printTime")),
            temperatures=heaters,
            message=message,
        )

    def upload_and_start(self, file_name: str, source: Path) -> PrinterStatus:
        now = self.status()
        if now.activity is not Activity.IDLE:
            raise PrinterBusy(f"The printer can't start a new print: it is {_now_words(now)}.")
        name = Path(file_name).name
        with source.open("rb") as content:
            answer = self.api.json(
                "POST",
                "/api/files/local",
                files={"file": (name, content, "application/octet-stream")},
                data={"select": "true", "print": "true"},
                expect=(200, 201),
                upload=True,
            )
        if not answer.get("effectivePrint"):
            # OctoPrint keeps the file but starts nothing when the printer became busy meanwhile.
            raise PrinterBusy(
                f"OctoPrint received {name} but didn't start it: the printer was not ready. "
                "Check the printer, then start again."
            )
        return self.status()

    def cancel(self) -> None:
        try:
            self.api.request("POST", "/api/job", json={"command": "cancel"}, expect=(204,))
        except PrinterBusy:
            raise NothingToCancel(
                "The printer isn't printing anything, so there is nothing to cancel."
            ) from None

    # -- pieces --------------------------------------------------------------------------------------

    def _software(self) -> str:
        """ "OctoPrint 1.11.8", asked once per connector; proves the address and the key."""
        if self._version is None:
            data = self.api.json("GET", "/api/version")
            if "server" not in data:
                raise UnexpectedAnswer(self.api.not_this_software())
            self._version = str(data.get("text") or f"OctoPrint {data['server']}")
        return self._version

    def _temperatures(self) -> tuple[Temperature, ...]:
        try:
            printer = self.api.json("GET", "/api/printer", params={"history": "false"})
        except PrinterBusy:  # 409 "Printer is not operational": no temperatures to read
            return ()
        reported = printer.get("temperature") if isinstance(printer.get("temperature"), dict) else {}
        return tuple(
            Temperature(heater, _number(values.get("actual")), _number(values.get("target")))
            for heater, values in sorted(reported.items())
            if isinstance(values, dict) and heater != "history"
        )

    def _wait_while_connecting(self) -> None:
        deadline = time.monotonic() + CONNECT_WAIT_S
        while time.monotonic() < deadline:
            state = str(_get(self.api.json("GET", "/api/connection"), "current", "state") or "")
            if not state.startswith(_CONNECTING):
                return
            time.sleep(0.25)
        raise PrinterProblem(
            f"OctoPrint is still opening the connection to the printer after {CONNECT_WAIT_S:g} seconds. "
            "Check the printer's cable and power, then test again."
        )


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _only(values: Any) -> str | None:
    return values[0] if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return round(number) if number is not None else None


def _now_words(status: PrinterStatus) -> str:
    if status.activity is Activity.PRINTING:
        return f"printing {status.file}" if status.file else "printing"
    if status.activity is Activity.DISCONNECTED:
        return "not connected to OctoPrint"
    return status.activity.label.lower() + (f" ({status.detail})" if status.detail else "")
