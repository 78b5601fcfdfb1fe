"""How model sizes, volumes and declared units read on a page: enough digits to be true, and the
size a model would have if it was drawn in other units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printlab.domain.printability import (
    alternative_sizes,
    format_length,
    format_size,
    format_volume,
    units_note,
    units_warning,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (355.6, "355.6"),
        (20.0, "20"),
        (19.999999, "20"),
        (62.04, "62"),
        (40.59, "40.6"),
        (3.175, "3.18"),
        (2.5, "2.5"),
        (4.99, "4.99"),
        (0.024, "0.024"),
        (0.0183, "0.018"),
        (0.01, "0.01"),
        (0.00049, "0.00049"),
        (2500.0, "2,500"),
    ],
)
def test_a_length_keeps_its_significant_digits(value: float, text: str) -> None:
    assert format_length(value) == text


@given(st.floats(min_value=1e-9, max_value=1e6, allow_nan=False))
def test_a_length_never_reads_as_zero_or_drifts_more_than_five_percent(value: float) -> None:
    text = format_length(value)
    shown = float(text.replace(",", ""))
    assert shown > 0
    assert abs(shown - value) <= 0.05 * value
    assert "e" not in text


def test_a_metres_scale_model_is_not_shown_as_zero() -> None:
    assert format_size((0.024, 0.018, 0.01)) == "0.024 × 0.018 × 0.01 mm"
    assert format_size((20, 20, 20)) == "20 × 20 × 20 mm"


@pytest.mark.parametrize(
    ("mm3", "text"),
    [
        (0, "0 mm³"),
        (4.32e-6, "0.0000043 mm³"),
        (2.34, "2.34 mm³"),
        (115.11, "115.1 mm³"),
        (7938.68, "7.94 cm³"),
        (347865.9, "347.9 cm³"),
        (4_320, "4.32 cm³"),
        (2_500_000, "2,500 cm³"),
    ],
)
def test_a_volume_keeps_its_significant_digits(mm3: float, text: str) -> None:
    assert format_volume(mm3) == text


def test_a_metres_scale_model_shows_its_size_in_metres_only() -> None:
    # 24 × 18 × 10 mm drawn in metres: read as millimetres it is 0.024 mm across. Read as inches
    # it would still be under a millimetre, so only the metres reading is offered.
    sizes = alternative_sizes((0.024, 0.018, 0.01), 4.32e-6)
    assert [(s.unit, s.size, s.volume) for s in sizes] == [("metres", "24 × 18 × 10 mm", "4.32 cm³")]


def test_an_inch_cube_read_as_millimetres_shows_both_readings() -> None:
    sizes = alternative_sizes((2.0, 2.0, 2.0), 8.0)
    assert [(s.unit, s.size) for s in sizes] == [
        ("inches", "50.8 × 50.8 × 50.8 mm"),
        ("metres", "2,000 × 2,000 × 2,000 mm"),
    ]
    assert sizes[0].volume == "131.1 cm³"


def test_a_huge_model_shows_its_size_in_micrometres() -> None:
    sizes = alternative_sizes((25_000, 18_000, 10_000), None)
    assert [(s.unit, s.size, s.volume) for s in sizes] == [("micrometres", "25 × 18 × 10 mm", None)]


def test_a_plausible_size_has_no_alternatives() -> None:
    assert alternative_sizes((20, 20, 20), 8000) == []
    assert alternative_sizes((5, 1, 1), 5) == []


def test_alternatives_start_from_the_numbers_the_file_declared() -> None:
    # A 3MF that said "inch" and holds 0.01 × 0.01 × 0.01: converted, 0.254 mm; had the numbers
    # been metres, 10 mm. The declared unit itself is never offered again.
    sizes = alternative_sizes((0.254, 0.254, 0.254), None, file_units="inch")
    assert [(s.unit, s.size) for s in sizes] == [("metres", "10 × 10 × 10 mm")]


def test_nothing_is_offered_when_no_reading_is_plausible() -> None:
    assert alternative_sizes((0.0001, 0.0001, 0.0001), None) == []
    assert alternative_sizes((0, 0, 0), 0) == []


@pytest.mark.parametrize(
    ("unit", "note"),
    [
        (None, None),
        ("millimeter", "millimetres"),
        ("inch", "inches, converted to mm"),
        ("meter", "metres, converted to mm"),
        ("micron", "micrometres, converted to mm"),
        ("centimeter", "centimetres, converted to mm"),
        ("foot", "feet, converted to mm"),
    ],
)
def test_the_declared_unit_reads_as_words(unit: str | None, note: str | None) -> None:
    assert units_note(unit) == note


@pytest.mark.parametrize(
    ("extents", "warning"),
    [
        ((0.024, 0.018, 0.01), "This model is only 0.024 mm across — was it drawn in inches or metres?"),
        ((4.99, 1, 1), "This model is only 4.99 mm across — was it drawn in inches or metres?"),
        ((0, 0, 0), "This model is only 0 mm across — was it drawn in inches or metres?"),
    ],
)
def test_the_units_warning_says_the_true_size(extents: tuple[float, float, float], warning: str) -> None:
    assert units_warning(extents) == warning
