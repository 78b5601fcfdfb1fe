"""A student's submission in Chromium (desktop and 375 px): the form, its errors, keyboard-only use, upload progress; SQLite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from printlab.clock import utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.models import Job, LabSetting

from ..conftest import MODELS
from .conftest import DESKTOP, PHONE, Live, Tab, submit_model

pytestmark = pytest.mark.browser

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
LARGER = MODELS / "stl_binary_solid_header_rear_case.stl"  # ~940 KB
FILAMENT_COLORS = list(DEFAULT_CATALOG.method("Filament").colors)  # type: ignore[union-attr]
RESIN_COLORS = list(DEFAULT_CATALOG.method("Resin").colors)  # type: ignore[union-attr]

VISIBLE_OPTIONS = "(select) => Array.from(select.options).filter(o => o.value && !o.hidden && !o.disabled).map(o => o.value)"


def offered(tab: Tab, select_id: str) -> list[str]:
    return tab.page.eval_on_selector(f"#{select_id}", VISIBLE_OPTIONS)


def fill_about_me(tab: Tab, *, name: str = "Jane Doe", email: str = "jane.doe@example.edu") -> None:
    page = tab.page
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Discipline").select_option("Engineering")
    page.get_by_label("Class number").fill("ME 2110")


def fill_the_print(tab: Tab, *, color: str, printer: str, model: Path) -> None:
    """Filament in `color` on `printer`, the model file and the minimum-charge tick box."""
    page = tab.page
    page.get_by_label("Filament").check()
    page.get_by_label("Color").select_option(color)
    page.get_by_label("Printer").select_option(printer)
    page.get_by_label("Model file").set_input_files(model)
    page.get_by_label(re.compile("I understand every print costs at least")).check()


def no_sideways_scroll(tab: Tab) -> None:
    width = tab.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_student_fills_the_form_changes_method_and_sees_the_analysis(live: Live, open_tab, viewport):
    tab = open_tab("student", viewport)
    page = tab.page
    tab.go(f"{live.url}/submit")
    assert page.get_by_role("heading", level=1).inner_text() == "Send a model to print"
    assert "we don't repair models" in page.locator(".notice").inner_text()
    no_sideways_scroll(tab)
    tab.screenshot(f"submit-form-{viewport['width']}")

    fill_about_me(tab)
    # No method yet: the colour and printer lists wait for one.
    assert page.locator("#color").is_disabled() and page.locator("#printer").is_disabled()
    page.get_by_label("Filament").check()
    assert offered(tab, "color") == FILAMENT_COLORS
    assert offered(tab, "printer") == ["Prusa MK4S", "Prusa XL", "Raise3D Pro 2 Plus"]
    page.get_by_label("Color").select_option("True Red")
    page.get_by_label("Printer").select_option("Prusa XL")

    page.get_by_label("Resin").check()  # a colour and printer of the other method are cleared
    assert page.locator("#color").input_value() == ""
    assert page.locator("#printer").input_value() == ""
    assert offered(tab, "color") == RESIN_COLORS
    assert offered(tab, "printer") == ["Formlabs Form 3"]

    fill_the_print(tab, color="Electric Blue", printer="Prusa MK4S", model=CUBE)
    with live.worker_paused():  # so the page is seen before the analysis is ready
        page.get_by_role("button", name="Send my model").click()
        page.wait_for_url(re.compile(r"/submit/done/"))
        tab.audit()
        assert page.locator("#analysis").get_attribute("data-state") == "PENDING"
        assert "Checking your model" in page.locator("#analysis").inner_text()
    arrived = len(tab.navigations)
    job = live.newest_job()
    simple = job.display_name.rsplit("_", 1)[-1]  # type: ignore[union-attr]
    assert page.locator("#job-id").inner_text() == simple
    assert (job.material, job.color, job.printer) == ("Filament", "Electric Blue", "Prusa MK4S")
    assert job.original_filename == CUBE.name
    assert live.storage.resolve(job.file_path).read_bytes() == CUBE.read_bytes()  # type: ignore[arg-type]

    # The analysis arrives without a reload: the worker thread checks the model meanwhile.
    page.wait_for_selector("#analysis[data-state='DONE']", timeout=30_000)
    assert len(tab.navigations) == arrived
    analysis = page.locator("#analysis").inner_text()
    assert "20 × 20 × 20 mm" in analysis
    assert "Closed mesh" in analysis and "Yes" in analysis
    assert "Estimated cost" in analysis
    thumbnail = page.locator("#analysis img.thumbnail")
    thumbnail.wait_for()
    assert thumbnail.get_attribute("alt") == f"Preview of {CUBE.name}"
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", thumbnail.element_handle())
    tab.audit()
    no_sideways_scroll(tab)
    tab.screenshot(f"submitted-{viewport['width']}")

    page.locator("#status-link").click()
    page.wait_for_url(re.compile(r"/status/"))
    tab.audit()
    assert page.get_by_role("heading", level=1).inner_text() == f"Job {simple}: Waiting for review"
    assert "Submitted" in page.locator(".timeline").inner_text()


RED = "rgb(164, 14, 38)"  # --bad
GREY = "rgb(110, 119, 129)"  # a field's own border


def border_of(tab: Tab, element_id: str) -> str:
    return tab.page.eval_on_selector(f"#{element_id}", "(el) => getComputedStyle(el).borderTopColor")


def posts_to_submit(tab: Tab) -> list[Any]:
    """Every POST the page sends to /submit from now on (the list fills as they happen)."""
    sent: list[Any] = []
    tab.page.on(
        "request", lambda r: r.method == "POST" and urlsplit(r.url).path == "/submit" and sent.append(r)
    )
    return sent


def body_sizes_of_submissions(live: Live, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every form the server receives at POST /submit from now on, as the server reads it."""
    sizes: list[int] = []
    inner = live.app.wsgi_app

    def recording(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/submit":
            sizes.append(int(environ.get("CONTENT_LENGTH") or 0))
        return inner(environ, start_response)

    monkeypatch.setattr(live.app, "wsgi_app", recording)
    return sizes


def summary_targets(tab: Tab) -> list[str]:
    return [href.lstrip("#") for href in tab.page.eval_on_selector_all(
        "#error-summary a", "(links) => links.map(a => a.getAttribute('href'))")]  # fmt: skip


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_bad_answers_are_flagged_red_in_the_page_before_anything_is_uploaded(live: Live, open_tab, viewport):
    tab = open_tab("student", viewport)
    page = tab.page
    tab.go(f"{live.url}/submit")
    sent = posts_to_submit(tab)
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Email").fill("jane.doe@example")  # a typo: no .edu
    page.get_by_label("Discipline").select_option("Art")
    page.get_by_label("Resin").check()
    page.get_by_label("Printer").select_option("Formlabs Form 3")
    page.get_by_label("Model file").set_input_files(LARGER)

    # The browser checks the file at once: wrong type, then a good one.
    page.get_by_label("Model file").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a model"}]
    )
    assert (
        page.locator(".field:has(#file) .field-error").inner_text()
        == "Upload a model file (.stl, .obj, .3mf, .step, .stp)."
    )
    page.get_by_label("Model file").set_input_files(LARGER)
    assert page.locator(".field:has(#file) .field-error").count() == 0

    page.get_by_role("button", name="Send my model").click()

    # Flagged in the page by the server's own rules and words, in the form's order; nothing was sent.
    page.wait_for_selector("#error-summary")
    assert sent == []
    assert urlsplit(page.url).path == "/submit"
    errors = {
        field: page.locator(f".field:has(#{field}) .field-error").inner_text()
        for field in ("student_email", "class_number", "color", "acknowledged_minimum_charge")
    }
    assert errors == {
        "student_email": "Enter a valid email address, like name@university.edu.",
        "class_number": "Enter your class number, or N/A.",
        "color": "Choose a color available for Resin.",
        "acknowledged_minimum_charge": "Tick the box to accept the minimum charge.",
    }
    assert page.locator(".field-error").count() == 4
    assert summary_targets(tab) == ["student_email", "class_number", "color", "acknowledged_minimum_charge"]
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    # Invalid fields are red; the good ones keep their own border.
    assert page.locator("#student_email").get_attribute("aria-invalid") == "true"
    assert border_of(tab, "student_email") == RED
    assert border_of(tab, "class_number") == RED
    assert border_of(tab, "color") == RED
    assert border_of(tab, "student_name") == GREY
    no_sideways_scroll(tab)
    tab.audit()
    tab.screenshot(f"submit-errors-{viewport['width']}")

    # The summary links to the field; correcting a field clears its mark as it is typed.
    page.locator("#error-summary a[href='#student_email']").click()
    assert page.evaluate("() => document.activeElement.id") == "student_email"
    page.get_by_label("Email").fill("jane.doe@example.edu")
    assert page.locator("#student_email").get_attribute("aria-invalid") is None
    assert page.locator("#student_email").get_attribute("aria-describedby") == "student_email-hint"
    assert page.locator(".field:has(#student_email) .field-error").count() == 0
    assert border_of(tab, "student_email") == GREY

    page.get_by_label("Class number").fill("N/A")
    page.get_by_label("Color").select_option(
        element=page.locator("#color option:enabled[value='Gray']").element_handle()
    )
    page.get_by_label(re.compile("I understand every print costs at least")).check()
    page.get_by_role("button", name="Send my model").click()
    page.wait_for_url(re.compile(r"/submit/done/"), timeout=30_000)
    tab.audit()
    assert len(sent) == 1
    job = live.newest_job()
    assert (job.student_email, job.class_number, job.material, job.color) == (
        "jane.doe@example.edu",
        "N/A",
        "Resin",
        "Gray",
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_after_a_server_side_error_the_file_is_kept_for_the_retry(
    live: Live, open_tab, viewport, monkeypatch
):
    tab = open_tab("student", viewport)
    page = tab.page
    tab.go(f"{live.url}/submit")
    sizes = body_sizes_of_submissions(live, monkeypatch)
    # Pasted with a hidden right-to-left mark: only the server's text rule knows it.
    fill_about_me(tab, name="Jane \u202eDoe")
    fill_the_print(tab, color="Gray", printer="Prusa MK4S", model=LARGER)
    page.get_by_role("button", name="Send my model").click()

    page.wait_for_selector("#error-summary")
    tab.audit()
    assert len(sizes) == 1 and sizes[0] > LARGER.stat().st_size
    assert page.locator(".field:has(#student_name) .field-error").inner_text() == (
        "Your name contains a hidden character that changes the direction of text. "
        "Please type it again without it."
    )
    assert border_of(tab, "student_name") == RED
    kept = page.locator("#file-hint").inner_text()
    assert kept == f"Your file {LARGER.name} is kept — choose another file to replace it."
    assert "Your answers and your file are kept below." in page.locator("#error-summary").inner_text()
    assert page.get_by_label("Email").input_value() == "jane.doe@example.edu"
    assert page.get_by_label("Color").input_value() == "Gray"
    no_sideways_scroll(tab)
    tab.screenshot(f"submit-file-kept-{viewport['width']}")

    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_role("button", name="Send my model").click()  # no file chosen: the kept one is used
    page.wait_for_url(re.compile(r"/submit/done/"), timeout=30_000)
    tab.audit()
    assert len(sizes) == 2 and sizes[1] < 10_000  # the file wasn't sent again
    job = live.newest_job()
    assert (job.student_name, job.original_filename) == ("Jane Doe", LARGER.name)
    assert live.storage.resolve(job.file_path).read_bytes() == LARGER.read_bytes()  # type: ignore[arg-type]


def _press_tab_until(tab: Tab, element_id: str, limit: int = 30) -> None:
    page = tab.page
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_keyboard_only_submission(live: Live, open_tab):
    tab = open_tab("student")
    page = tab.page
    tab.go(f"{live.url}/submit")
    keys = page.keyboard

    _press_tab_until(tab, "student_name")
    keys.type("Kim Keyboard")
    keys.press("Tab")
    keys.type("kim@example.edu")
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "discipline"
    keys.type("Arch")  # type-ahead picks "Architecture"
    keys.press("Tab")
    keys.type("ARCH 4010")
    keys.press("Tab")  # into the print-method radios: the first one
    assert page.evaluate("() => document.activeElement.value") == "Filament"
    keys.press("Space")
    assert page.get_by_label("Filament").is_checked()
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "color"
    keys.type("Blue")
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "printer"
    keys.type("Prusa XL")
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "file"
    page.locator("#file").set_input_files(CUBE)  # a file chooser can't be typed into
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "acknowledged_minimum_charge"
    keys.press("Space")
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "submit-button"
    keys.press("Enter")

    page.wait_for_url(re.compile(r"/submit/done/"))
    tab.audit()
    job = live.newest_job()
    assert (job.student_name, job.discipline, job.class_number) == (
        "Kim Keyboard",
        "Architecture",
        "ARCH 4010",
    )
    assert (job.material, job.color, job.printer) == ("Filament", "Blue", "Prusa XL")


def test_skip_link_is_the_first_stop_and_jumps_to_the_content(live: Live, open_tab):
    tab = open_tab("student")
    page = tab.page
    tab.go(f"{live.url}/submit")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "student_name"


def test_upload_progress_shows_for_a_larger_file_and_a_double_click_sends_once(live: Live, open_tab):
    tab = open_tab("student")
    page = tab.page
    tab.go(f"{live.url}/submit")
    fill_about_me(tab)
    page.get_by_label("Filament").check()
    page.get_by_label("Color").select_option("Gray")
    page.get_by_label("Printer").select_option("Prusa MK4S")
    page.get_by_label(re.compile("I understand every print costs at least")).check()
    page.get_by_label("Model file").set_input_files(LARGER)
    assert page.locator("#upload-progress").is_hidden()

    # A slow uplink (about 300 KB/s) so the ~1 MB upload takes a few seconds.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 300 * 1024},
    )
    page.get_by_role("button", name="Send my model").dblclick()

    progress = page.locator("#upload-progress")
    progress.wait_for(state="visible")
    button = page.locator("#submit-button")
    assert button.is_disabled()
    assert button.inner_text() == "Sending…"
    page.wait_for_function("() => document.getElementById('upload-bar').value > 0")
    seen = page.evaluate("() => document.getElementById('upload-bar').value")
    assert 0 < seen <= 100
    tab.screenshot("upload-progress")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    page.wait_for_url(re.compile(r"/submit/done/"), timeout=30_000)
    tab.audit()
    session = live.fresh()
    assert session.scalar(select(func.count()).select_from(Job)) == 1  # the double click sent it once
    job = live.newest_job()
    assert live.storage.resolve(job.file_path).stat().st_size == LARGER.stat().st_size  # type: ignore[arg-type]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_refused_student_keeps_the_form_and_the_file_and_is_told_when_to_send_again(
    live: Live, open_tab, viewport
):
    session = live.fresh()
    session.add(LabSetting(key="submissions_per_hour", value=1, updated_at=utcnow(), updated_by=None))
    session.commit()
    tab = open_tab("student", viewport)
    page = tab.page
    submit_model(tab, live, CUBE)

    tab.go(f"{live.url}/submit")
    fill_about_me(tab, email="jane.other@example.edu")
    fill_the_print(tab, color="Blue", printer="Prusa XL", model=LARGER)
    page.get_by_role("button", name="Send my model").click()

    page.wait_for_selector("#send-again")
    tab.audit()
    assert re.fullmatch(r"You can send again after \d\d:\d\d\.", page.locator("#send-again").inner_text())
    assert "Your answers and your file are kept below." in page.locator("#error-summary").inner_text()
    assert page.get_by_label("Email").input_value() == "jane.other@example.edu"
    assert page.get_by_label("Printer").input_value() == "Prusa XL"
    assert (
        page.locator("#file-hint").inner_text()
        == f"Your file {LARGER.name} is kept — choose another file to replace it."
    )
    no_sideways_scroll(tab)
    tab.screenshot(f"submit-refused-{viewport['width']}")
    assert live.fresh().scalar(select(func.count()).select_from(Job)) == 1
