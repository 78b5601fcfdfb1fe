"""Which connector talks to which kind of printer software: the one table a new kind is added to."""

from __future__ import annotations

from collections.abc import Callable

from printlab.domain.printers import Connection
from printlab.services.printers.connector import DEFAULT_TIMEOUTS, Connector, PrinterProblem, Timeouts
from printlab.services.printers.moonraker import Moonraker
from printlab.services.printers.octoprint import OctoPrint
from printlab.services.printers.prusalink import PrusaLink

#: Each connected kind and how to make its connector from (address, API key, timeouts).
CONNECTORS: dict[Connection, Callable[..., Connector]] = {
    Connection.OCTOPRINT: OctoPrint,
    Connection.MOONRAKER: Moonraker,
    Connection.PRUSALINK: PrusaLink,
}


def open_connector(
    connection: Connection, address: str | None, api_key: str | None, *, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> Connector:
    """The connector for a printer. Raises PrinterProblem for a printer PrintLab doesn't connect to."""
    make = CONNECTORS.get(connection)
    if make is None or not address:
        if connection is Connection.NONE or not address:
            raise PrinterProblem(
                "This printer isn't connected to PrintLab: staff start its prints on the printer."
            )
        raise PrinterProblem(f"PrintLab can't talk to {connection.label} printers yet.")
    return make(address, api_key, timeouts=timeouts)
