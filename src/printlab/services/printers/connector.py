"""The one interface every kind of printer connection implements, its typed failures, and the HTTP they share.

A connector talks to one printer. Each call either returns what the printer said, as a
`domain.printers.PrinterStatus`, or raises a `PrinterProblem` whose message a technician can act
on ("The printer refused the API key …"). Nothing here touches the database: the admin page, the
worker's polling and "Start printing" all hold a connector and decide what an answer means for a job.

Adding a kind of printer (Bambu LAN, say) is a new module with a `Connector` subclass and a line in
`connections.CONNECTORS`; nothing that uses connectors changes.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from printlab.domain.printers import Activity, PrinterStatus
from printlab.services.errors import ServiceError


class PrinterProblem(ServiceError):
    """A printer didn't do what PrintLab asked; the message says why in plain words."""

    #: True when PrintLab couldn't reach the printer at all: it is shown offline and tried again.
    offline = False


class PrinterUnreachable(PrinterProblem):
    offline = True


class PrinterTimedOut(PrinterProblem):
    offline = True


class PrinterKeyRefused(PrinterProblem):
    """401/403: the key is wrong, was revoked, or lacks the permission asked for."""


class PrinterBusy(PrinterProblem):
    """409 or a printer that isn't idle: it is printing, paused, or not ready for a new print."""


class NothingToCancel(PrinterProblem):
    """Cancel asked of a printer that is printing nothing."""


class PrinterFault(PrinterProblem):
    """5xx: the printer's software failed while answering."""


class UnexpectedAnswer(PrinterProblem):
    """Something answered, but not as this kind of printer does (a wrong address or connection kind)."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds PrintLab waits: short, so a slow printer never holds up a page for long."""

    connect: float = 3.0
    read: float = 8.0
    #: Sending a sliced file (tens of megabytes over a lab's Wi-Fi): per chunk, not for the whole file.
    upload: float = 60.0


DEFAULT_TIMEOUTS = Timeouts()
#: How long an idle connection to a printer is kept for the next request.
KEEPALIVE_SECONDS = 60.0


class Connector(abc.ABC):
    """One printer, reached over its own software's API. Use it as a context manager, or `close()` it."""

    #: The software's name in messages ("OctoPrint").
    software: str = ""

    @abc.abstractmethod
    def connect(self) -> PrinterStatus:
        """Check that PrintLab can talk to the printer (address, key, the software answering), and where
        the software drives the printer over a cable (OctoPrint), ask it to open that connection if it
        is closed. Returns the printer's status. Raises PrinterProblem."""

    @abc.abstractmethod
    def status(self, *, temperatures: bool = True) -> PrinterStatus:
        """What the printer is doing now: state, current file, progress, time left, temperatures,
        errors. Raises PrinterProblem (callers that poll use `status_or_offline`).

        `temperatures=False` lets a frequent poll skip them where they cost a request of their own
        (OctoPrint); software that reports them with the rest reports them anyway."""

    @abc.abstractmethod
    def upload_and_start(self, file_name: str, source: Path) -> PrinterStatus:
        """Send the sliced file at `source` under `file_name` and start printing it, in one action.
        Refuses (PrinterBusy) unless the printer is idle. Returns the status after starting."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Cancel the print in progress. Raises NothingToCancel when nothing is printing."""

    def close(self) -> None:  # noqa: B027 — a connector without connections has nothing to close
        """Let go of network connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def status_or_offline(connector: Connector) -> PrinterStatus:
    """The printer's status; a printer that can't be reached is reported OFFLINE with the reason, and any
    other problem (a refused key, a failing server) as ERROR with its message, instead of raising."""
    try:
        return connector.status()
    except PrinterProblem as exc:
        activity = Activity.OFFLINE if exc.offline else Activity.ERROR
        return PrinterStatus(activity, software=connector.software, message=str(exc))


class HttpApi:
    """The HTTP every connector shares: one keep-alive client, short timeouts, and each failure turned
    into the PrinterProblem a person understands. Never logs or repeats the headers (they hold the key)."""

    def __init__(
        self, address: str, headers: dict[str, str], software: str, timeouts: Timeouts = DEFAULT_TIMEOUTS
    ):
        self.address = address
        self.software = software
        self.timeouts = timeouts
        self.client = httpx.Client(
            base_url=address,
            headers=headers,
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            follow_redirects=False,
            # Kept open between the worker's polls (every 5 s, httpx's default keep-alive): a new TCP
            # connection per poll would cost more than the poll.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )

    def request(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), upload: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """The response, when its status is one of `expect`; raises PrinterProblem otherwise."""
        if upload:
            t = self.timeouts
            kwargs["timeout"] = httpx.Timeout(t.read, connect=t.connect, write=t.upload, pool=t.connect)
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.ConnectTimeout:
            raise PrinterTimedOut(
                f"Nothing answered at {self.address} within {self.timeouts.connect:g} seconds: the printer "
                "or its network is off, or the address is wrong."
            ) from None
        except httpx.TimeoutException:
            raise PrinterTimedOut(
                f"The printer at {self.address} stopped answering: nothing came back within "
                f"{self.timeouts.read:g} seconds."
            ) from None
        except httpx.ConnectError:
            raise PrinterUnreachable(
                f"Nothing answered at {self.address}: the printer or its network is off, or the address is wrong."
            ) from None
        except httpx.TransportError:
            raise PrinterUnreachable(f"The connection to the printer at {self.address} broke off.") from None
        if response.status_code in expect:
            return response
        raise self._problem(response, path)

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The response's JSON object (see `request`); anything else is an UnexpectedAnswer."""
        response = self.request(method, path, **kwargs)
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise UnexpectedAnswer(self.not_this_software())
        return data

    def close(self) -> None:
        self.client.close()

    def not_this_software(self) -> str:
        return (
            f"Something answered at {self.address}, but not the way {self.software} does. "
            "Check the address and the kind of connection."
        )

    def _problem(self, response: httpx.Response, path: str) -> PrinterProblem:
        code = response.status_code
        said = _said(response)
        if code in (401, 403):
            return PrinterKeyRefused(
                "The printer refused the API key. Copy the key from the printer again and save it here."
            )
        if code == 409:
            return PrinterBusy(f"The printer is busy{': ' + said if said else ''}.")
        if code >= 500:
            return PrinterFault(
                f"The printer's software ran into an error of its own (HTTP {code})"
                f"{': ' + said if said else ''}. Try again; if it keeps failing, restart {self.software}."
            )
        if code == 404:
            return UnexpectedAnswer(self.not_this_software())
        return UnexpectedAnswer(
            f"The printer answered {path} with HTTP {code}{': ' + said if said else ''}. "
            "Check the address and the kind of connection."
        )


def _said(response: httpx.Response) -> str:
    """The printer's own short explanation of a refusal, when it gave one."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(data, dict):
        for key in ("error", "message", "title", "detail"):
            value = data.get(key)
            if isinstance(value, dict):  # Moonraker: {"error": {"code": 400, "message": "…"}}
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value.strip()[:200]
    return ""
