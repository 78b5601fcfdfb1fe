"""The Exports page in Chromium: an admin downloads a month's jobs as CSV and XLSX; a backwards period is explained."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from openpyxl import load_workbook

from printlab.clock import to_lab_time, utcnow
from printlab.domain.statuses import Status
from printlab.services.lab import workstations

from ..factories import make_job
from .conftest import PASSWORD, Live, sign_in

pytestmark = pytest.mark.browser

ADMIN_PC = "ADMIN-PC"


def test_an_admin_downloads_this_months_jobs(live: Live, open_tab: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with live.worker_paused():
        job = make_job(
            live.session, live.storage, Status.PAIDPICKEDUP, student_name='=HYPERLINK("http://x","y")'
        )
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    tab = open_tab("admin")
    sign_in(tab, live, ADMIN_PC)
    page = tab.page
    page.get_by_role("link", name="Admin").click()
    tab.audit()
    page.get_by_role("link", name="Exports").click()
    tab.audit()
    today = to_lab_time(utcnow(), "America/Chicago").date().isoformat()
    page.get_by_label("Jobs").check()
    page.get_by_label("Last day").fill(today)
    page.get_by_label("CSV").check()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download").click()
    download = downloading.value
    first = to_lab_time(utcnow(), "America/Chicago").date().replace(day=1).isoformat()
    assert download.suggested_filename == f"printlab-jobs-{first}-to-{today}.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"), newline="")))
    assert rows[0][:3] == ["Job", "Submitted", "Student"]
    assert [(row[2], row[9], row[-1]) for row in rows[1:]] == [
        ('\'=HYPERLINK("http://x","y")', "Paid & Picked Up", job.id)
    ]

    page.get_by_label("XLSX (Excel)").check()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(saved)
    sheet = load_workbook(saved).active
    assert sheet["C2"].value == '=HYPERLINK("http://x","y")' and sheet["N2"].data_type == "n"

    page.get_by_label("First day").fill(today)
    page.get_by_label("Last day").fill("2000-01-01")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Download").click()
    assert navigation.value.status == 400
    tab.audit()
    assert "ends before it starts" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Last day").input_value() == "2000-01-01"
