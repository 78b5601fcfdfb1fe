"""Structured logs: one JSON object per line on stderr, for the operator's log collector."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

#: Lines of a PostgreSQL error that quote the data being written ("Failing row contains (…)",
#: "Key (email)=(…)"): an operator needs the error and the statement, never a student's details.
_DATA_LINES = re.compile(r"^(DETAIL|CONTEXT):.*$", re.MULTILINE)


def redact(text: str) -> str:
    """Text for the log with the lines a database error uses to quote row data removed."""
    return _DATA_LINES.sub(r"\1: (hidden: it may quote personal data)", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


#: Short lines for a person at a terminal (the demo), instead of JSON for a log collector.
READABLE = logging.Formatter("%(levelname)s %(name)s: %(message)s")


def configure_logging(level: str = "INFO", *, readable: bool = False) -> None:
    """Install PrintLab's handler on the root logger once (JSON lines, or READABLE ones); set the level."""
    root = logging.getLogger()
    if not any(getattr(h, "printlab", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(READABLE if readable else JsonFormatter())
        handler.printlab = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # The HTTP client that talks to printers logs each request at INFO: a line every few seconds per
    # printer polled, naming the file sent (which starts with the student's name). Its warnings stay.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
