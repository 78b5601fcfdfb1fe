"""PrusaLink, the API of Prusa's own printers (OpenAPI "PrusaLink Web", `/api/v1/…`): version, status, job,
file upload with Print-After-Upload, and stopping the job — with the API key the printer shows.

Newer Prusa firmware can ask for HTTP Digest (user "maker" and a password) instead of a key; only the
API key is supported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

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

#: printer.state → what the printer is doing.
_STATES = {
    "IDLE": Activity.IDLE,
    "READY": Activity.IDLE,
    "FINISHED": Activity.IDLE,
    "STOPPED": Activity.IDLE,
    "PRINTING": Activity.PRINTING,
    "PAUSED": Activity.PAUSED,
    "BUSY": Activity.BUSY,
    "ERROR": Activity.ERROR,
    "ATTENTION": Activity.ERROR,
}


class PrusaLink(Connector):
    """One Prusa printer running PrusaLink (header X-Api-Key)."""

    software = "PrusaLink"

    def __init__(self, address: str, api_key: str | None, *, timeouts: Timeouts = DEFAULT_TIMEOUTS):
        self.api = HttpApi(address, {"X-Api-Key": api_key or ""}, "PrusaLink", timeouts)
        self._version: str | None = None

    def close(self) -> None:
        self.api.close()

    def connect(self) -> PrinterStatus:
        self._version = None
        return self.status()

    def status(self, *, temperatures: bool = True) -> PrinterStatus:
        software = self._software()
        now = self.api.json("GET", "/api/v1/status")
        printer = now.get("printer") if isinstance(now.get("printer"), dict) else None
        if printer is None:
            raise UnexpectedAnswer(self.api.not_this_software())
        state = str(printer.get("state") or "")
        activity = _STATES.get(state, Activity.BUSY)
        job = now.get("job") if isinstance(now.get("job"), dict) else {}
        file = None
        if job:  # the status names no file; the job does
            details = self.api.request("GET", "/api/v1/job", expect=(200, 204))
            data = details.json() if details.status_code == 200 else {}
            named = data.get("file") if isinstance(data, dict) and isinstance(data.get("file"), dict) else {}
            file = named.get("display_name") or named.get("name")
        progress = _number(job.get("progress"))
        if state == "FINISHED":
            progress = 100.0
        elif state == "STOPPED":
            progress = None
        return PrinterStatus(
            activity,
            software=software,
            detail=state.capitalize(),
            file=str(file) if file else None,
            progress=progress,
            seconds_left=_whole(job.get("time_remaining")),
            seconds_printed=_whole(job.get("time_printing")),
            temperatures=(
                Temperature(
                    "tool0", _number(printer.get("temp_nozzle")), _number(printer.get("target_nozzle"))
                ),
                Temperature("bed", _number(printer.get("temp_bed")), _number(printer.get("target_bed"))),
            ),
            message="The printer needs attention at its screen." if state == "ATTENTION" else None,
        )

    def upload_and_start(self, file_name: str, source: Path) -> PrinterStatus:
        now = self.status()
        if now.activity is not Activity.IDLE:
            raise PrinterBusy(f"The printer can't start a new print: it is {now.activity.label.lower()}.")
        storage = self._storage()
        name = Path(file_name).name
        with source.open("rb") as content:
            self.api.request(
                "PUT",
                f"/api/v1/files/{quote(storage)}/{quote(name)}",
                content=content,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Print-After-Upload": "?1",
                    "Overwrite": "?1",
                },
                expect=(201,),
                upload=True,
            )
        return self.status()

    def cancel(self) -> None:
        now = self.api.request("GET", "/api/v1/job", expect=(200, 204))
        job = now.json() if now.status_code == 200 else {}
        if not isinstance(job, dict) or job.get("state") not in ("PRINTING", "PAUSED") or "id" not in job:
            raise NothingToCancel("The printer isn't printing anything, so there is nothing to cancel.")
        self.api.request("DELETE", f"/api/v1/job/{int(job['id'])}", expect=(204,))

    def _software(self) -> str:
        if self._version is None:
            data = self.api.json("GET", "/api/version")
            if "server" not in data:
                raise UnexpectedAnswer(self.api.not_this_software())
            self._version = f"PrusaLink {data['server']}"
        return self._version

    def _storage(self) -> str:
        """The storage a print is sent to (the USB stick on most Prusa printers): its path without slashes."""
        listed = self.api.json("GET", "/api/v1/storage").get("storage_list")
        for storage in listed if isinstance(listed, list) else []:
            if isinstance(storage, dict) and storage.get("available") and not storage.get("read_only"):
                path = str(storage.get("path") or "").strip("/")
                if path:
                    return path
        raise PrinterBusy("The printer has no storage to print from: put its USB stick in, then try again.")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return round(number) if number is not None else None
