"""One export of a period, by name and format: what the `printlab export` command and the download call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from sqlalchemy.orm import Session

from printlab.domain.periods import Period
from printlab.services.errors import ValidationError
from printlab.services.exports import writers
from printlab.services.exports.sheets import Sheet, events, jobs, payments
from printlab.services.exports.statement import statement_sheet
from printlab.services.lab.catalog import load_catalog

#: Every export by its name, as the command and the download address name it.
SHEETS = {"jobs": jobs, "payments": payments, "events": events, "statement": statement_sheet}
KINDS = tuple(SHEETS)
FORMATS = ("csv", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def sheet(session: Session, kind: str, period: Period) -> Sheet:
    """The export `kind` ("jobs", "payments", "events", "statement") of the period, rows not yet read."""
    if kind not in SHEETS:
        raise ValidationError({"kind": f"There is no {kind!r} export; choose one of {', '.join(KINDS)}."})
    return SHEETS[kind](session, period, load_catalog(session).lab.time_zone)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError({"format": "Choose CSV or XLSX."})
    return fmt


def file_name(kind: str, period: Period, fmt: str) -> str:
    """printlab-jobs-2026-11-01-to-2026-11-30.csv"""
    return f"printlab-{kind}-{period.first.isoformat()}-to-{period.last.isoformat()}.{fmt}"


def csv_stream(session: Session, kind: str, period: Period) -> Iterator[bytes]:
    """The CSV file in chunks, each sent on as soon as its rows are read."""
    return writers.csv_chunks(sheet(session, kind, period))


def write_xlsx(session: Session, kind: str, period: Period, target: str | IO[bytes]) -> int:
    """The XLSX file written to a path or binary file; returns the number of rows."""
    return writers.write_xlsx(sheet(session, kind, period), target)
