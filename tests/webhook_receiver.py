"""A webhook receiver on loopback for the tests: a real HTTPS server (its certificate from a throwaway CA,
which the sender is told to trust) that records every request and checks each signature with the
Standard Webhooks library itself, as a lab's receiving system would.

It can be stopped and started again on the same port (an outage), answer with a chosen status, or take
its time before answering (so a worker can be stopped mid-send).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.servers import free_port


@dataclass
class Received:
    message_id: str
    timestamp: str
    headers: dict[str, str]
    body: bytes
    #: True when the Standard Webhooks library accepted the signature with the endpoint's secret.
    verified: bool

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Start with `start()`; `url` is where an endpoint should point; `ca_file` is the CA to trust."""

    folder: Path
    port: int = field(default_factory=free_port)
    #: The endpoint's signing secret ("whsec_…"), set once the endpoint is made.
    secret: str | None = None
    status: int = 204
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.ca = trustme.CA()
        self.ca_file = self.folder / "webhook-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._certificate = self.ca.issue_cert("127.0.0.1", "localhost")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/printlab"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection open between messages, as web servers do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(headers, body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._certificate.configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        verified = False
        if self.secret:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            self.received.append(
                Received(
                    headers.get("webhook-id", ""),
                    headers.get("webhook-timestamp", ""),
                    headers,
                    body,
                    verified,
                )
            )

    def ids(self) -> list[str]:
        with self._lock:
            return [r.message_id for r in self.received]

    def wait_for(self, count: int, *, bound: float = 30.0) -> None:
        """Until `count` distinct messages have arrived (a failure bound, not a timing)."""
        deadline = time.monotonic() + bound
        while len(set(self.ids())) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(set(self.ids()))} of {count} webhooks arrived")
            time.sleep(0.05)
