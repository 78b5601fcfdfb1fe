"""`printlab serve`: PrintLab under waitress, refusing an upload that announces more than the lab's limit.

Waitress reads a request's whole body before the app sees any of it, so the app can't refuse a
too-large upload early: waitress must. It answers 413 and closes the connection as soon as the
headers announce `max_request_body_size` bytes or more (and stops a chunked body there too). That
size follows the lab's upload limit, an admin setting: every page that reads the lab's settings
passes the limit on, and a thread reads it again every REFRESH_S seconds, so a change made through
another app server arrives here as well.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

import waitress
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from printlab.config import ConfigError
from printlab.web.context import Lab, job_limit_bytes
from printlab.web.uploads import FORM_OVERHEAD_BYTES

log = logging.getLogger(__name__)

#: How often a running server reads the lab's upload limit again.
REFRESH_S = 15


class BodyLimit:
    """The largest request body waitress reads: the lab's limit for a job's files plus the form around them."""

    def __init__(self, adjustments: Any):
        # Waitress's settings object, shared by every connection; each new request reads the limit
        # from it when its headers are in.
        self._adjustments = adjustments

    def note(self, upload_limit_bytes: int) -> None:
        """Use the lab's current upload limit. Waitress refuses this many bytes or more; the app, more
        than the upload limit plus FORM_OVERHEAD_BYTES: the two agree to the byte."""
        self._adjustments.max_request_body_size = upload_limit_bytes + FORM_OVERHEAD_BYTES + 1

    def read(self, app: Flask) -> None:
        """Read the lab's upload limit from the database now."""
        with app.app_context():
            self.note(job_limit_bytes())

    def watch(self, app: Flask, stop: threading.Event) -> None:
        while not stop.wait(REFRESH_S):
            try:
                self.read(app)
            except SQLAlchemyError as exc:  # keep the last limit; /healthz reports the database
                log.warning("could not read the upload limit: %s", str(getattr(exc, "orig", None) or exc))
            except Exception:  # keep the last limit, and keep watching
                log.exception("could not read the upload limit")


class PortInUse(ConfigError):
    """Another program (or another PrintLab) already listens on the port."""

    def __init__(self, port: int):
        super().__init__(f"port {port} is already in use; choose another with --port or PRINTLAB_PORT")


def serve(
    app: Flask, *, host: str, port: int, threads: int, when_listening: Callable[[], None] | None = None
) -> None:
    """Serve `app` until interrupted; `when_listening` runs once the port is taken. Raises PortInUse."""
    lab: Lab = app.extensions["printlab"]
    try:
        server = _create_server(app, lab, host=host, port=port, threads=threads)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port) from None
        raise
    limit = BodyLimit(server.adj)
    app.extensions["printlab.body_limit"] = limit
    limit.read(app)
    stop = threading.Event()
    watcher = threading.Thread(
        target=limit.watch, args=(app, stop), name="printlab-upload-limit", daemon=True
    )
    watcher.start()
    if when_listening is not None:
        when_listening()
    try:
        server.run()
    finally:
        stop.set()


def _create_server(app: Flask, lab: Lab, *, host: str, port: int, threads: int) -> Any:
    return waitress.create_server(
        app, host=host, port=port, threads=threads, ident="PrintLab",
        # Forwarded headers are read in one place, the app's ProxyFix, which trusts only the last
        # PRINTLAB_PROXY_COUNT hops; waitress passes them on to it then, and drops them without a proxy.
        clear_untrusted_proxy_headers=not lab.config.proxy_count,
    )  # fmt: skip
