"""The model facts on the staff job page and the student's pages, for a model drawn in metres, in Chromium at desktop and 375 px."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from ..conftest import MODELS
from .conftest import DESKTOP, PHONE, Live, Tab, sign_in, submit_model

pytestmark = pytest.mark.browser


def metres_box(tmp_path: Path) -> Path:
    """A 24 × 18 × 10 mm block exported from a program working in metres: 0.024 × 0.018 × 0.01."""
    box = trimesh.creation.box(extents=(0.024, 0.018, 0.01))
    path = tmp_path / "bracket_in_metres.stl"
    box.export(path)
    return path


def facts(tab: Tab) -> dict[str, str]:
    rows = tab.page.locator("dl.facts").last.evaluate(
        "(dl) => Array.from(dl.querySelectorAll('dt')).map(dt => [dt.innerText, dt.nextElementSibling.innerText])"
    )
    return dict(rows)


def no_sideways_scroll(tab: Tab) -> None:
    width = tab.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_a_model_drawn_in_metres_shows_its_true_size_and_its_size_in_metres(
    live: Live, open_tab, tmp_path: Path, viewport: dict[str, int]
) -> None:
    student = open_tab("student", viewport)
    job = submit_model(student, live, metres_box(tmp_path))
    student.page.wait_for_selector("#analysis[data-state='DONE']", timeout=30_000)
    student.audit()
    seen = facts(student)
    assert seen["Size"].startswith("0.024 × 0.018 × 0.01 mm"), seen
    assert "If drawn in metres: 24 × 18 × 10 mm, 4.32 cm³" in seen["Size"]
    assert "inches" not in seen["Size"]  # 0.6 mm across in inches: not a reading worth offering
    assert seen["Volume"] == "0.0000043 mm³"
    assert "0.0 " not in student.page.inner_text("#analysis")
    assert "only 0.024 mm across" in student.page.inner_text("#analysis .problems")
    no_sideways_scroll(student)

    staff = open_tab("staff", viewport)
    sign_in(staff, live)
    staff.go(f"{live.url}/jobs/{job.id}")
    seen = facts(staff)
    assert seen["Size"].startswith("0.024 × 0.018 × 0.01 mm"), seen
    assert "If drawn in metres: 24 × 18 × 10 mm, 4.32 cm³" in seen["Size"]
    assert seen["Volume"] == "0.0000043 mm³"
    assert "Drawn in" not in seen  # an STL declares no unit
    # The facts fit the screen (the rest of the job page's width at 375 px is the files table's
    # business, tested with the page's layout).
    for part in ("dl.facts", "dl.facts dd.model-size"):
        element = staff.page.locator(f"section[aria-labelledby='preview-title'] {part}")
        box = element.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], part
        assert element.evaluate("(e) => e.scrollWidth <= e.clientWidth"), part
    staff.screenshot(f"model-facts-metres-{viewport['width']}")


def test_choosing_an_objs_material_file_says_it_is_not_needed_before_sending(live: Live, open_tab) -> None:
    student = open_tab("student", PHONE)
    page = student.page
    student.go(f"{live.url}/submit")
    page.get_by_label("Model file").set_input_files(MODELS / "box.mtl")
    assert page.locator(".field:has(#file) .field-error").inner_text() == (
        "A .mtl file is a material file (the colours of an OBJ model): you don't need to send it. "
        "Choose your model file (.stl, .obj, .3mf, .step, .stp) instead."
    )
    page.get_by_role("button", name="Send my model").click()  # refused in the page, nothing is sent
    assert page.url.endswith("/submit")
    page.get_by_label("Model file").set_input_files(MODELS / "box.obj")
    assert page.locator(".field:has(#file) .field-error").count() == 0
    no_sideways_scroll(student)
