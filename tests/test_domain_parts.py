"""The rules for a job sent in parts: part names, how many files and how large, copies, and one price
with one minimum charge for the whole job."""

from __future__ import annotations

from decimal import Decimal

import pytest

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.naming import part_file_name, part_number_of, part_suffix, stored_file_name
from printlab.domain.pricing import PricingError, job_cost, job_grams, quote_cost
from printlab.domain.submission import (
    MAX_COPIES,
    MAX_PARTS,
    checked_file_name,
    choose_model_files,
    parts_problem,
    read_copies,
)

BASE = "JaneDoe_Filament_TrueRed_a1b2c3"
MB = 1024 * 1024


def test_the_first_part_keeps_the_jobs_name_and_the_others_add_a_part_suffix():
    assert part_file_name(BASE, 1, "bracket.STL") == stored_file_name(
        "Jane Doe", "Filament", "True Red", "a1b2c3", "x.stl"
    )
    assert part_file_name(BASE, 2, "lid.obj") == f"{BASE}_p2.obj"
    assert part_file_name(BASE, 10, "gear.3mf") == f"{BASE}_p10.3mf"
    assert part_suffix(1) == "" and part_suffix(3) == "_p3"
    with pytest.raises(ValueError):
        part_suffix(0)


def test_a_stored_name_says_which_part_it_is():
    assert part_number_of(f"{BASE}.stl", BASE) == 1
    assert part_number_of(f"{BASE}_p2.stl", BASE) == 2
    assert part_number_of(f"{BASE}_p10.3mf", BASE) == 10
    assert part_number_of(f"{BASE}_p1.stl", BASE) is None  # part 1 has no suffix
    assert part_number_of(f"{BASE}_v2.stl", BASE) is None
    assert part_number_of("Other_Filament_TrueRed_a1b2c3_p2.stl", BASE) is None


@pytest.mark.parametrize(("typed", "copies"), [("", 1), ("1", 1), (" 3 ", 3), (str(MAX_COPIES), MAX_COPIES)])
def test_copies_are_a_whole_number_from_one_up(typed, copies):
    assert read_copies(typed) == copies


@pytest.mark.parametrize("typed", ["0", "-1", str(MAX_COPIES + 1), "2.5", "two", "1e1", "٣", "+2"])
def test_other_copies_are_refused(typed):
    assert read_copies(typed) is None


def test_up_to_ten_files_within_each_files_and_the_jobs_limit():
    catalog = DEFAULT_CATALOG.with_changes(upload_limit_mb=2, job_upload_limit_mb=5)
    names = [f"part{n}.stl" for n in range(MAX_PARTS)]
    assert parts_problem(names, [MB // 2] * MAX_PARTS, catalog) is None
    eleven = parts_problem([*names, "extra.stl"], [1] * (MAX_PARTS + 1), catalog)
    assert eleven == (
        "One job can have up to 10 model files; you chose 11. "
        "Send the others as another job, or join parts in your design program."
    )
    assert (
        parts_problem(["big.stl"], [2 * MB + 1], catalog) == "big.stl is 2.0 MB; each file can be up to 2 MB."
    )
    assert parts_problem(["a.stl", "b.stl", "c.stl"], [2 * MB, 2 * MB, 2 * MB], catalog) == (
        "Your files add up to 6.0 MB; one job can be up to 5 MB. Send the others as another job."
    )


def test_a_zip_stands_for_models_only_where_parts_are_allowed():
    assert checked_file_name("parts.zip", DEFAULT_CATALOG, zip_allowed=True) == ("parts.zip", None)
    name, problem = checked_file_name("parts.zip", DEFAULT_CATALOG)
    assert name == "" and problem == "Upload a model file (.stl, .obj, .3mf, .step, .stp)."
    assert checked_file_name("notes.txt", DEFAULT_CATALOG, zip_allowed=True)[1] == (
        "Upload a model file (.stl, .obj, .3mf, .step, .stp). Several parts may come in a .zip."
    )


def test_every_model_is_kept_and_only_files_the_lab_doesnt_need_are_left_out():
    assert choose_model_files(["a.stl", "b.obj", "b.mtl"], DEFAULT_CATALOG) == ([0, 1], ["b.mtl"])
    assert choose_model_files(["a.stl", "parts.zip"], DEFAULT_CATALOG) == ([0, 1], [])
    # Something unknown: nothing is guessed, every file is checked (and refused) as sent.
    assert choose_model_files(["a.stl", "notes.txt"], DEFAULT_CATALOG) == ([0, 1], [])


def test_a_job_in_parts_pays_the_minimum_charge_once():
    rates, minimum = DEFAULT_CATALOG.rates, DEFAULT_CATALOG.minimum_charge
    parts = [(6.0, 2), (4.5, 1), (2.0, 3)]  # 12 + 4.5 + 6 = 22.5 g → $2.25, under the minimum
    assert job_grams(parts) == 22.5
    assert job_cost(parts, "Filament", rates, minimum) == Decimal("3.00")
    # Each part priced on its own would have paid the minimum three times.
    assert sum(quote_cost(g * c, "Filament", rates, minimum) for g, c in parts) == Decimal("9.00")
    # Above the minimum the parts' grams add up, copies included.
    assert job_cost([(20.0, 2), (15.05, 1)], "Filament", rates, minimum) == Decimal("5.51")
    with pytest.raises(PricingError):
        job_cost([(5.0, 0)], "Filament", rates, minimum)


def test_the_admin_sets_the_job_limit_beside_the_file_limit():
    from printlab.domain.catalog_edit import CatalogError, parse_section

    limits = {"minimum_charge": "3", "upload_limit_mb": "50", "confirm_link_hours": "72",
              "archive_after_days": "90", "prune_after_days": "365"}  # fmt: skip
    assert "job_upload_limit_mb" not in parse_section("limits", limits, DEFAULT_CATALOG)  # an older form
    assert (
        parse_section("limits", {**limits, "job_upload_limit_mb": "300"}, DEFAULT_CATALOG)[
            "job_upload_limit_mb"
        ]
        == 300
    )
    with pytest.raises(CatalogError) as refused:
        parse_section("limits", {**limits, "job_upload_limit_mb": "40"}, DEFAULT_CATALOG)
    assert refused.value.errors == {
        "job_upload_limit_mb": "A whole job can't be smaller than one file's limit."
    }
