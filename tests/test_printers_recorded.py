"""The Moonraker (Klipper) and PrusaLink connectors against their documented JSON answers.

Neither program runs here (Moonraker needs a Klipper host and its printer; PrusaLink runs in Prusa's
printer firmware), so a small real HTTP server on loopback plays a printer: it answers each request
with the response documented for it — Moonraker's "Web API" examples (`/server/info`,
`/printer/objects/query`, `/server/files/upload`, `/printer/print/cancel`) and the examples of
PrusaLink's OpenAPI (`/api/version`, `/api/v1/status`, `/api/v1/job`, `/api/v1/storage`, PUT
`/api/v1/files/…`, DELETE `/api/v1/job/{id}`) — moving from idle to printing to finished as a
printer would, and refusing a wrong API key with the documented 401. The connectors speak real HTTP
to it (multipart and PUT uploads, headers, timeouts); what is not tested is the printers' own
behaviour beyond those documents.
"""

from __future__ import annotations

import copy
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from printlab.domain.printers import Activity, describe
from printlab.services.printers.connector import NothingToCancel, PrinterBusy, PrinterKeyRefused
from printlab.services.printers.moonraker import Moonraker
from printlab.services.printers.prusalink import PrusaLink

from .servers import free_port
from .test_printers_octoprint import gcode

KEY = "b1a7c5d0e2f84c39a6e0d4b2c8f1a3e5"

# -- Moonraker's documented answers (moonraker.readthedocs.io, Web API) ------------------------------

MOONRAKER_SERVER_INFO = {"result": {
    "klippy_connected": True, "klippy_state": "ready", "components": ["database", "file_manager", "klippy_apis"],
    "failed_components": [], "registered_directories": ["config", "logs", "gcodes"], "warnings": [],
    "websocket_count": 2, "moonraker_version": "v0.9.3-24-g8ae1d5b", "missing_klippy_requirements": [],
    "api_version": [1, 5, 0], "api_version_string": "1.5.0",
}}  # fmt: skip
MOONRAKER_PRINTER_INFO = {"result": {
    "state": "ready", "state_message": "Printer is ready", "hostname": "voron", "software_version": "v0.12.0-85",
    "cpu_info": "4 core ARMv7 Processor rev 4 (v7l)", "klipper_path": "/home/pi/klipper",
    "python_path": "/home/pi/klippy-env/bin/python", "log_file": "/tmp/klippy.log", "config_file": "/home/pi/printer.cfg",
}}  # fmt: skip
MOONRAKER_OBJECTS = {"result": {"eventtime": 578243.57824499, "status": {
    "print_stats": {"filename": "", "total_duration": 0.0, "print_duration": 0.0, "filament_used": 0.0,
                    "state": "standby", "message": "", "info": {"total_layer": None, "current_layer": None}},
    "virtual_sdcard": {"file_path": None, "progress": 0.0, "is_active": False, "file_position": 0, "file_size": 0},
    "extruder": {"temperature": 23.0, "target": 0.0, "power": 0.0, "pressure_advance": 0.04, "smooth_time": 0.04},
    "heater_bed": {"temperature": 22.8, "target": 0.0, "power": 0.0},
}}}  # fmt: skip
MOONRAKER_UNAUTHORIZED = {"error": {"code": 401, "message": "Unauthorized", "traceback": ""}}

# -- PrusaLink's documented answers (OpenAPI "PrusaLink Web", /api/v1) -------------------------------

PRUSALINK_VERSION = {"api": "2.0.0", "server": "2.1.2", "nozzle_diameter": 0.4, "text": "PrusaLink",
                     "hostname": "prusa-mk4", "capabilities": {"upload-by-put": True}}  # fmt: skip
PRUSALINK_STATUS = {
    "storage": {"path": "/usb/", "name": "usb", "read_only": False},
    "printer": {"state": "IDLE", "temp_bed": 23.9, "target_bed": 0.0, "temp_nozzle": 24.4, "target_nozzle": 0.0,
                "axis_z": 0.0, "axis_x": 242.0, "axis_y": -9.0, "flow": 100, "speed": 100, "fan_hotend": 0,
                "fan_print": 0},
}  # fmt: skip
PRUSALINK_STORAGE = {"storage_list": [{"type": "USB", "path": "/usb/", "name": "usb", "read_only": False,
                                       "free_space": 3_000_000_000, "available": True}]}  # fmt: skip


@dataclass
class Printer:
    """What the played printer is doing; each status request moves a print on by a quarter."""

    state: str = "idle"  # idle, printing, paused, complete, cancelled
    file: str = ""
    progress: float = 0.0
    uploads: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def tick(self) -> None:
        if self.state == "printing":
            self.progress = min(1.0, self.progress + 0.25)
            if self.progress >= 1.0:
                self.state = "complete"


class Played(http.server.BaseHTTPRequestHandler):
    printer: Printer
    kind: str

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _allowed(self) -> bool:
        if self.headers.get("X-Api-Key") == KEY:
            return True
        self._body()
        self._send(401, MOONRAKER_UNAUTHORIZED if self.kind == "moonraker" else {"title": "Unauthorized"})
        return False

    def do_GET(self) -> None:
        if self._allowed():
            getattr(self, f"_{self.kind}_get")()

    def do_POST(self) -> None:
        if self._allowed():
            getattr(self, f"_{self.kind}_post")()

    def do_PUT(self) -> None:
        if self._allowed():
            self._prusalink_put()

    def do_DELETE(self) -> None:
        if self._allowed():
            self._prusalink_delete()

    # Moonraker

    def _moonraker_get(self) -> None:
        p = self.printer
        if self.path == "/server/info":
            return self._send(200, MOONRAKER_SERVER_INFO)
        if self.path == "/printer/info":
            return self._send(200, MOONRAKER_PRINTER_INFO)
        if self.path.startswith("/printer/objects/query?"):
            p.tick()
            answer = copy.deepcopy(MOONRAKER_OBJECTS)
            stats, card = (
                answer["result"]["status"]["print_stats"],
                answer["result"]["status"]["virtual_sdcard"],
            )
            stats["state"] = {"idle": "standby"}.get(p.state, p.state)
            stats["filename"], stats["print_duration"] = p.file, 600.0 * p.progress
            stats["filament_used"] = 1500.0 * p.progress  # millimetres of filament pushed so far
            card["progress"], card["is_active"] = p.progress, p.state == "printing"
            return self._send(200, answer)
        self._send(404, {"error": {"code": 404, "message": "Not Found"}})

    def _moonraker_post(self) -> None:
        p = self.printer
        body = self._body()
        if self.path == "/server/files/upload":
            name = body.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
            p.uploads.append((name, body, dict(self.headers)))
            started = b'name="print"\r\n\r\ntrue' in body and p.state in ("idle", "complete", "cancelled")
            if started:
                p.state, p.file, p.progress = "printing", name, 0.0
            item = {
                "path": name,
                "root": "gcodes",
                "modified": 1676938286.0,
                "size": len(body),
                "permissions": "rw",
            }
            return self._send(201, {"result": {"item": item, "print_started": started, "print_queued": False,
                                               "action": "create_file"}})  # fmt: skip
        if self.path == "/printer/print/cancel":
            p.state = "cancelled"
            return self._send(200, {"result": "ok"})
        self._send(404, {"error": {"code": 404, "message": "Not Found"}})

    # PrusaLink

    def _prusalink_get(self) -> None:
        p = self.printer
        job = {"id": 297, "progress": round(p.progress * 100), "time_remaining": round(600 * (1 - p.progress)),
               "time_printing": round(600 * p.progress)}  # fmt: skip
        state = {"idle": "IDLE", "printing": "PRINTING", "paused": "PAUSED", "complete": "FINISHED",
                 "cancelled": "STOPPED"}[p.state]  # fmt: skip
        if self.path == "/api/version":
            return self._send(200, PRUSALINK_VERSION)
        if self.path == "/api/v1/status":
            p.tick()
            state = {"complete": "FINISHED"}.get(p.state, state)
            answer = copy.deepcopy(PRUSALINK_STATUS)
            answer["printer"]["state"] = state
            if p.state != "idle":
                answer["job"] = job
            return self._send(200, answer)
        if self.path == "/api/v1/job":
            if p.state == "idle":
                return self._send(204)
            file = {
                "name": "PART~1.GCO",
                "display_name": p.file,
                "path": "/usb",
                "size": 1234,
                "m_timestamp": 1700000000,
            }
            return self._send(200, {**job, "state": state, "inaccurate_estimates": False, "serial_print": False,
                                    "file": file})  # fmt: skip
        if self.path == "/api/v1/storage":
            return self._send(200, PRUSALINK_STORAGE)
        self._send(404, {"title": "Not Found"})

    def _prusalink_put(self) -> None:
        p = self.printer
        body = self._body()
        if not self.path.startswith("/api/v1/files/usb/"):
            return self._send(404, {"title": "Not Found"})
        name = self.path.rsplit("/", 1)[1]
        p.uploads.append((name, body, dict(self.headers)))
        if self.headers.get("Print-After-Upload") == "?1":
            p.state, p.file, p.progress = "printing", name, 0.0
        self._send(201)

    def _prusalink_delete(self) -> None:
        self._body()
        if self.path == "/api/v1/job/297" and self.printer.state in ("printing", "paused"):
            self.printer.state = "cancelled"
            return self._send(204)
        self._send(409, {"title": "Conflict", "message": "Not printing"})


@pytest.fixture(params=["moonraker", "prusalink"])
def played(request) -> Iterator[tuple[str, Printer, str]]:  # type: ignore[no-untyped-def]
    printer = Printer()
    handler = type("Handler", (Played,), {"printer": printer, "kind": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield request.param, printer, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


CONNECTORS = {"moonraker": Moonraker, "prusalink": PrusaLink}
SOFTWARE = {"moonraker": "Moonraker v0.9.3-24-g8ae1d5b", "prusalink": "PrusaLink 2.1.2"}


def test_connect_status_print_to_the_end(played, tmp_path):
    kind, printer, url = played
    with CONNECTORS[kind](url, KEY) as connector:
        idle = connector.connect()
        assert idle.activity is Activity.IDLE and idle.software == SOFTWARE[kind]
        assert describe(idle) == f"Connected — {SOFTWARE[kind]}, printer operational, idle"
        assert [t.label for t in idle.temperatures] == ["Nozzle", "Bed"] and idle.temperatures[0].actual > 20

        source = gcode(tmp_path / "part.gcode", moves=20)
        started = connector.upload_and_start("JaneDoe_Filament_TrueRed_a1b2c3.gcode", source)
        assert (
            started.activity is Activity.PRINTING and started.file == "JaneDoe_Filament_TrueRed_a1b2c3.gcode"
        )
        [(name, body, _headers)] = printer.uploads
        assert name == "JaneDoe_Filament_TrueRed_a1b2c3.gcode" and source.read_bytes() in body
        assert ";PRINTER_MODEL=MK4S" in body.decode()
        with pytest.raises(PrinterBusy, match="it is printing"):
            connector.upload_and_start("second.gcode", source)

        seen = connector.status()
        assert seen.activity is Activity.PRINTING and 0 < (seen.progress or 0) < 100
        assert seen.seconds_left is not None and seen.seconds_left > 0
        done = connector.status()
        while not done.finished:
            done = connector.status()
        assert done.progress == 100
        # Klipper reports the filament a print used; the others don't.
        assert (done.filament_mm is not None and done.filament_mm > 0) is (kind == "moonraker")


def test_cancel_and_nothing_to_cancel(played, tmp_path):
    kind, _, url = played
    with CONNECTORS[kind](url, KEY) as connector:
        with pytest.raises(NothingToCancel, match="isn't printing anything"):
            connector.cancel()
        connector.upload_and_start("part.gcode", gcode(tmp_path / "part.gcode", moves=5))
        connector.cancel()
        after = connector.status()
        assert after.activity is Activity.IDLE and not after.finished


def test_a_wrong_key_is_refused_in_plain_words(played):
    kind, _, url = played
    with CONNECTORS[kind](url, "wrong-key-0123456") as connector, pytest.raises(PrinterKeyRefused) as refused:
        connector.connect()
    assert str(refused.value).startswith("The printer refused the API key.")


def test_requests_to_printers_are_not_logged_one_by_one(played, tmp_path, caplog):
    """A file sent to a printer carries the student's name in its own name; polling would log every few
    seconds. The HTTP library's own per-request lines stay out of the lab's log."""
    from printlab.logs import configure_logging

    configure_logging("INFO")
    caplog.set_level(logging.INFO)
    kind, _, url = played
    with CONNECTORS[kind](url, KEY) as connector:
        connector.upload_and_start(
            "JaneDoe_Filament_TrueRed_a1b2c3.gcode", gcode(tmp_path / "p.gcode", moves=5)
        )
        connector.status()
    assert "JaneDoe" not in caplog.text and "HTTP Request" not in caplog.text
