"""Stored file names (SPEC §3) and the submission validator, as plain values, with hypothesis for odd input."""

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.naming import (
    FALLBACK_PERSON,
    extension_of,
    name_part,
    new_job_id,
    sidecar_name,
    simple_job_id,
    stored_base_name,
    stored_file_name,
)
from printlab.domain.submission import clean_filename, validate_submission

STORED = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+_[0-9a-f]{6,32}(\.[a-z0-9]{1,10}|\.gcode\.3mf)?")
#: Longest stored name: three 60-character parts, a full uuid as simple id, the longest extension.
MAX_STORED = 3 * 60 + 3 + 32 + 11
SAFE_CHARS = set(string.ascii_letters + string.digits + "_.")


def test_the_spec_example():
    assert stored_file_name("Jane Doe", "Filament", "True Red", "a1b2c3", "cube.STL") == (
        "JaneDoe_Filament_TrueRed_a1b2c3.stl"
    )
    assert sidecar_name("JaneDoe_Filament_TrueRed_a1b2c3.stl") == (
        "JaneDoe_Filament_TrueRed_a1b2c3.stl.metadata.json"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("José Núñez", "JoseNunez"),
        ("O'Brien", "OBrien"),
        ("o'brien", "OBrien"),  # as the student typed it: the part after an apostrophe is a word too
        ("Sinéad O’Connor", "SineadOConnor"),  # typographic apostrophe
        ("siobhán o’brien", "SiobhanOBrien"),
        ("Mary-Jane Watson", "MaryJaneWatson"),
        ("mary-jane o'brien", "MaryJaneOBrien"),
        ("  jane   doe ", "JaneDoe"),
        ("Zoë Saldaña", "ZoeSaldana"),
        ("Ｊａｎｅ Ｄｏｅ", "JaneDoe"),  # full-width letters fold to ASCII
        ("Jane Doe, Jr.", "JaneDoeJr"),
        ("jane/doe\\..", "JaneDoe"),
        ("3d printing club", "3dPrintingClub"),
        ("McDonald", "McDonald"),  # inner capitals are kept
        ("😀🎉", FALLBACK_PERSON),
        ("王小明", FALLBACK_PERSON),
        ("Иван Петров", FALLBACK_PERSON),
        ("...", FALLBACK_PERSON),
        ("", FALLBACK_PERSON),
        ("Jane 😀 Doe", "JaneDoe"),
    ],
)
def test_student_name_part(name, expected):
    assert name_part(name, FALLBACK_PERSON) == expected


def test_emoji_or_cjk_names_still_give_a_complete_stored_name():
    assert stored_file_name("😀😀", "Resin", "Black", "a1b2c3", "x.obj") == "Student_Resin_Black_a1b2c3.obj"
    assert stored_base_name("李雷", "Filament", "Glow in the Dark", "0f0f0f") == (
        "Student_Filament_GlowInTheDark_0f0f0f"
    )


@pytest.mark.parametrize(
    ("original", "extension"),
    [
        ("cube.STL", ".stl"),
        ("Cube.Stl", ".stl"),
        ("part.3MF", ".3mf"),
        ("plate.GCODE.3MF", ".gcode.3mf"),
        ("body.bgcode", ".bgcode"),
        ("C:\\Users\\jane\\model.OBJ", ".obj"),
        ("../../etc/model.stl", ".stl"),
        ("archive.tar.gz", ".gz"),
        ("README", ""),
        (".hidden", ""),
        ("model.", ""),
        ("model.st l", ""),
        ("model.stl\x00.txt", ".txt"),
        ("model.averyveryverylongextension", ""),
    ],
)
def test_extension_is_lower_case_and_plain(original, extension):
    assert extension_of(original) == extension


def test_simple_id_is_the_start_of_a_uuid4_hex():
    job_id = new_job_id()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert job_id[12] == "4"  # uuid version 4
    assert simple_job_id(job_id) == job_id[:6]
    assert simple_job_id(job_id, 8) == job_id[:8]
    assert new_job_id() != job_id


simple_ids = st.integers(min_value=6, max_value=32).flatmap(
    lambda n: st.text(alphabet="0123456789abcdef", min_size=n, max_size=n)
)


@given(st.text(), st.text(), st.text(), simple_ids, st.text())
def test_any_unicode_gives_a_safe_stored_name(student, method, color, simple_id, original):
    stored = stored_file_name(student, method, color, simple_id, original)
    assert stored.isascii()
    assert STORED.fullmatch(stored), stored
    assert set(stored) <= SAFE_CHARS
    assert "/" not in stored and "\\" not in stored and "\x00" not in stored
    assert ".." not in stored
    assert not stored.startswith(".")
    assert stored.endswith(simple_id + extension_of(original))
    assert len(stored) <= MAX_STORED
    assert len(sidecar_name(stored).encode()) <= 255  # the usual file-name limit, sidecar included


@given(st.text())
def test_name_part_is_one_capitalised_ascii_word_or_the_fallback(text):
    part = name_part(text, FALLBACK_PERSON)
    assert re.fullmatch(r"[A-Z0-9][A-Za-z0-9]{0,59}", part)
    assert name_part(part, FALLBACK_PERSON) == part  # cleaning twice changes nothing


@given(st.lists(st.text(alphabet=string.ascii_letters, min_size=1, max_size=12), min_size=1, max_size=4))
def test_plain_ascii_words_are_capitalised_and_joined(words):
    for separator in (" ", "-", "  ", " - "):
        expected = "".join(w[0].upper() + w[1:] for w in words)[:60]
        assert name_part(separator.join(words)) == expected


@given(st.text())
def test_extension_is_empty_or_a_short_lower_case_suffix(original):
    extension = extension_of(original)
    assert extension == "" or re.fullmatch(r"\.[a-z0-9]{1,10}|\.gcode\.3mf", extension)


@given(st.text())
def test_stored_name_can_be_created_on_disk(tmp_path_factory, name):
    folder = tmp_path_factory.getbasetemp()
    stored = stored_file_name(name, name, name, "abcdef", name)
    path = folder / stored
    path.write_bytes(b"x")
    try:
        assert path.parent == folder
        assert [p.name for p in folder.iterdir() if p.name == stored] == [stored]
    finally:
        path.unlink()


# -- the submission form's validator (a full bad-input suite lives with the web tests) -----------


def form(**overrides):
    values = {
        "student_name": "Jane Doe",
        "student_email": "Jane.Doe@Example.edu",
        "discipline": "Engineering",
        "class_number": "ME 2110",
        "print_method": "Filament",
        "color": "True Red",
        "printer": "Prusa MK4S",
        "acknowledged_minimum_charge": "on",
    }
    values.update(overrides)
    return values


def test_a_good_submission_is_cleaned():
    submission, errors = validate_submission(
        form(student_name="  Jane   Doe ", class_number="N/A"), "C:\\fakepath\\Cube.STL", DEFAULT_CATALOG
    )
    assert errors == {}
    assert submission is not None
    assert submission.student_name == "Jane Doe"
    assert submission.student_email == "jane.doe@example.edu"
    assert submission.class_number == "N/A"
    assert submission.original_filename == "Cube.STL"
    assert submission.acknowledged_minimum_charge is True


@pytest.mark.parametrize(
    ("overrides", "filename", "field"),
    [
        ({"student_name": "J"}, "cube.stl", "student_name"),
        ({"student_name": "J" * 101}, "cube.stl", "student_name"),
        ({"student_name": "Jane\x00Doe"}, "cube.stl", "student_name"),
        ({"student_name": "Jane \t Doe"}, "cube.stl", "student_name"),  # one-line fields: no tabs
        ({"student_email": ""}, "cube.stl", "student_email"),
        ({"student_email": "jane@"}, "cube.stl", "student_email"),
        ({"student_email": "jane doe@example.edu"}, "cube.stl", "student_email"),
        ({"student_email": "j" * 90 + "@example.edu"}, "cube.stl", "student_email"),
        ({"discipline": "Alchemy"}, "cube.stl", "discipline"),
        ({"class_number": ""}, "cube.stl", "class_number"),
        ({"class_number": "C" * 51}, "cube.stl", "class_number"),
        ({"print_method": "Clay"}, "cube.stl", "print_method"),
        (
            {"print_method": "Resin", "printer": "Formlabs Form 3"},
            "cube.stl",
            "color",
        ),  # True Red is filament
        ({"printer": "Formlabs Form 3"}, "cube.stl", "printer"),  # a resin printer for filament
        ({"printer": "Ultimaker 9000"}, "cube.stl", "printer"),
        ({"acknowledged_minimum_charge": ""}, "cube.stl", "acknowledged_minimum_charge"),
        ({"acknowledged_minimum_charge": "no"}, "cube.stl", "acknowledged_minimum_charge"),
        ({}, "", "file"),
        ({}, "notes.txt", "file"),
        ({}, "cube.stl.exe", "file"),
        ({}, "folder/", "file"),
    ],
)
def test_each_bad_field_gets_its_own_message(overrides, filename, field):
    submission, errors = validate_submission(form(**overrides), filename, DEFAULT_CATALOG)
    assert submission is None
    assert set(errors) == {field}
    assert errors[field].endswith(".")  # a sentence for the student


def test_every_missing_field_is_reported_at_once():
    submission, errors = validate_submission({}, "", DEFAULT_CATALOG)
    assert submission is None
    assert set(errors) == {
        "student_name",
        "student_email",
        "discipline",
        "class_number",
        "print_method",
        "acknowledged_minimum_charge",
        "file",
    }


@given(st.text())
def test_clean_filename_keeps_only_a_bounded_last_part(filename):
    cleaned = clean_filename(filename)
    assert "/" not in cleaned and "\\" not in cleaned
    assert not re.search(r"[\x00-\x1f\x7f]", cleaned)
    assert len(cleaned) <= 256


def test_the_simple_id_is_the_one_the_stored_name_ends_with():
    from printlab.domain.naming import simple_id_in_name

    job_id = "a1b2c3d4" + "0" * 24
    assert (
        simple_id_in_name("JaneDoe_Filament_TrueRed_a1b2c3d", job_id) == "a1b2c3d"
    )  # lengthened at submission
    assert simple_id_in_name("JaneDoe_Filament_TrueRed_a1b2c3.stl", job_id) == "a1b2c3"
    assert simple_id_in_name(None, job_id) == simple_id_in_name("", job_id) == "a1b2c3"
