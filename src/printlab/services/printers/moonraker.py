"""Moonraker, the API of Klipper printers (moonraker.readthedocs.io, "Web API"): server and printer info,
printer objects, file upload with print, cancel — with an API key when Moonraker asks for one.

Moonraker runs on the printer's computer and talks to Klipper; "Klippy" not ready (starting, shut
down after an error, not connected) is reported as such before anything is asked of the printer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from printlab.domain.printers import Activity, PrinterStatus, Temperature
from printlab.services.printers.connector import (
    DEFAULT_TIMEOUTS,
    Connector,
    HttpApi,
    NothingToCancel,
    PrinterBusy,
    Timeouts,
    UnexpectedAnswer,
)

#: The printer objects a status reads (`/printer/objects/query`).
_OBJECTS = ("print_stats", "virtual_sdcard", "extruder", "heater_bed")
#: print_stats.state → what the printer is doing.
_STATES = {
    "standby": Activity.IDLE,
    "complete": Activity.IDLE,
    "cancelled": Activity.IDLE,
    "printing": Activity.PRINTING,
    "paused": Activity.PAUSED,
    "error": Activity.ERROR,
}


class Moonraker(Connector):
    """One Klipper printer behind Moonraker (header X-Api-Key when a key is saved)."""

    software = "Moonraker"

    def __init__(self, address: str, api_key: str | None, *, timeouts: Timeouts = DEFAULT_TIMEOUTS):
        headers = {"X-Api-Key": api_key} if api_key else {}
        self.api = HttpApi(address, headers, "Moonraker", timeouts)

    def close(self) -> None:
        self.api.close()

    def connect(self) -> PrinterStatus:
        return self.status()

    def status(self, *, temperatures: bool = True) -> PrinterStatus:
        server = _result(self.api, self.api.json("GET", "/server/info"))
        software = f"Moonraker {server.get('moonraker_version') or ''}".strip()
        klippy = str(server.get("klippy_state") or "")
        if not server.get("klippy_connected") or klippy in ("disconnected", ""):
            return PrinterStatus(Activity.DISCONNECTED, software=software, detail="Klipper not connected")
        if klippy != "ready":
            info = _result(self.api, self.api.json("GET", "/printer/info"))
            message = str(info.get("state_message") or klippy).strip()
            activity = Activity.BUSY if klippy == "startup" else Activity.ERROR
            return PrinterStatus(activity, software=software, detail=klippy, message=message)
        query = _result(
            self.api, self.api.json("GET", "/printer/objects/query", params=dict.fromkeys(_OBJECTS, ""))
        )
        objects = query.get("status") if isinstance(query.get("status"), dict) else {}
        stats = objects.get("print_stats") if isinstance(objects.get("print_stats"), dict) else {}
        card = objects.get("virtual_sdcard") if isinstance(objects.get("virtual_sdcard"), dict) else {}
        state = str(stats.get("state") or "standby")
        activity = _STATES.get(state, Activity.BUSY)
        progress = None
        if state == "complete":
            progress = 100.0
        elif state in ("printing", "paused") and isinstance(card.get("progress"), int | float):
            progress = float(card["progress"]) * 100
        printed = _number(stats.get("print_duration"))
        left = None
        if activity is Activity.PRINTING and progress and printed:
            left = round(printed / (progress / 100) - printed)  # Moonraker reports no estimate of its own
        return PrinterStatus(
            activity,
            software=software,
            detail=state,
            file=str(stats.get("filename")) if stats.get("filename") else None,
            progress=progress,
            seconds_left=left,
            seconds_printed=round(printed) if printed is not None else None,
            filament_mm=_number(stats.get("filament_used")),
            temperatures=tuple(
                Temperature(name, _number(values.get("temperature")), _number(values.get("target")))
                for name, values in ((n, objects.get(n)) for n in ("extruder", "heater_bed"))
                if isinstance(values, dict)
            ),
            message=str(stats.get("message"))
            if activity is Activity.ERROR and stats.get("message")
            else None,
        )

    def upload_and_start(self, file_name: str, source: Path) -> PrinterStatus:
        now = self.status()
        if now.activity is not Activity.IDLE:
            raise PrinterBusy(f"The printer can't start a new print: it is {now.activity.label.lower()}.")
        name = Path(file_name).name
        with source.open("rb") as content:
            answer = self.api.json(
                "POST",
                "/server/files/upload",
                files={"file": (name, content, "application/octet-stream")},
                data={"root": "gcodes", "print": "true"},
                expect=(200, 201),
                upload=True,
            )
        answer = answer.get("result") if isinstance(answer.get("result"), dict) else answer
        if not answer.get("print_started"):
            raise PrinterBusy(
                f"Moonraker received {name} but didn't start it"
                + (
                    ": it was queued instead."
                    if answer.get("print_queued")
                    else ": the printer was not ready."
                )
            )
        return self.status()

    def cancel(self) -> None:
        if self.status().activity not in (Activity.PRINTING, Activity.PAUSED):
            raise NothingToCancel("The printer isn't printing anything, so there is nothing to cancel.")
        self.api.request("POST", "/printer/print/cancel")


def _result(api: HttpApi, data: dict[str, Any]) -> dict[str, Any]:
    """Moonraker wraps each answer in {"result": …}."""
    result = data.get("result")
    if not isinstance(result, dict):
        raise UnexpectedAnswer(api.not_this_software())
    return result


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
