"""Writing a sheet as CSV (chunks of UTF-8 bytes, safe to open in a spreadsheet) or XLSX (XlsxWriter's
constant-memory mode: each row goes to disk as it is read)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any

import xlsxwriter

from printlab.clock import to_lab_time
from printlab.services.exports.sheets import Kind, Sheet

#: A CSV chunk is handed on once it holds this many characters.
CHUNK = 64 * 1024
#: What a spreadsheet may read as the start of a formula (OWASP's list, with tab and carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_WHEN = "yyyy-mm-dd hh:mm"
XLSX_MONEY = "#,##0.00"
XLSX_NUMBER = "0.0##"


def neutralised(text: str) -> str:
    """Text a spreadsheet would take for a formula, with a single quote before it (it shows as text)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_converter(kind: Kind, zone: str) -> Callable[[Any], str]:
    """How a column's values become CSV text (chosen once per column, not per cell)."""
    if kind is Kind.WHEN:
        return lambda value: to_lab_time(value, zone).isoformat(sep=" ", timespec="seconds")
    if kind is Kind.MONEY:
        return lambda value: f"{Decimal(value):.2f}"
    if kind is Kind.NUMBER:
        return str
    return lambda value: neutralised(str(value))


def csv_chunks(sheet: Sheet) -> Iterator[bytes]:
    """The sheet as CSV: a byte-order mark (so Excel reads accents right), a header row in words, then
    the rows; times ISO in the lab's zone, money as plain decimals. Yields as the rows are read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(sheet.headings)
    converters = [_csv_converter(column.kind, sheet.zone) for column in sheet.columns]
    for row in sheet.rows:
        writer.writerow(
            ["" if value is None else convert(value) for convert, value in zip(converters, row, strict=True)]
        )
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(sheet: Sheet, target: str | IO[bytes]) -> int:
    """Write the sheet as an XLSX workbook to a path or a binary file; returns the rows written.

    Cells are typed: times are Excel dates in the lab's zone, money numbers with two decimals, grams
    and hours numbers; text is always text (never read as a formula). The header row is frozen.
    """
    workbook = xlsxwriter.Workbook(
        target, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        workbook.set_properties(
            {"title": f"PrintLab {sheet.name}, {sheet.period.words}", "comments": f"Times in {sheet.zone}."}
        )
        header = workbook.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
        formats = {
            Kind.WHEN: workbook.add_format({"num_format": XLSX_WHEN}),
            Kind.MONEY: workbook.add_format({"num_format": XLSX_MONEY}),
            Kind.NUMBER: workbook.add_format({"num_format": XLSX_NUMBER}),
        }
        worksheet = workbook.add_worksheet(sheet.title)
        for index, column in enumerate(sheet.columns):
            worksheet.set_column(index, index, column.width)
        worksheet.freeze_panes(1, 0)
        for index, heading in enumerate(sheet.headings):
            worksheet.write_string(0, index, heading, header)
        count = 0
        kinds = [column.kind for column in sheet.columns]
        for count, row in enumerate(sheet.rows, start=1):
            for index, (kind, value) in enumerate(zip(kinds, row, strict=True)):
                if value is None:
                    continue
                if kind is Kind.WHEN:
                    local = to_lab_time(value, sheet.zone).replace(tzinfo=None)
                    worksheet.write_datetime(count, index, local, formats[kind])
                elif kind is Kind.MONEY or kind is Kind.NUMBER:
                    worksheet.write_number(count, index, float(value), formats[kind])
                else:
                    worksheet.write_string(count, index, str(value))
        worksheet.autofilter(0, 0, max(count, 1), len(sheet.columns) - 1)
    finally:
        workbook.close()
    return count
