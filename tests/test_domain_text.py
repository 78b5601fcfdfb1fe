"""The one rule for typed text (domain/text.py): control and bidi characters refused, NFC kept."""

from __future__ import annotations

import pytest

from printlab.domain.text import TextError, clean_text, is_email, is_plain_number


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\x00b", "an invisible control character"),
        ("a\x1bb", "an invisible control character"),
        ("a\x7fb", "an invisible control character"),
        ("a\x85b", "an invisible control character"),  # C1 "next line"
        ("a\tb", "a tab or line break (this field is one line)"),
        ("a\nb", "a tab or line break (this field is one line)"),
        ("a\u202eb", "a hidden character that changes the direction of text"),
        ("a\u202ab", "a hidden character that changes the direction of text"),
        ("a\u2066b\u2069", "a hidden character that changes the direction of text"),
        ("a\ud800b", "a broken character"),
    ],
)
def test_refused_characters_name_the_field(value, reason):
    with pytest.raises(TextError) as caught:
        clean_text(value, "Class number")
    assert str(caught.value) == f"Class number contains {reason}. Please type it again without it."
    assert caught.value.reason == reason


def test_multi_line_fields_keep_tabs_and_line_breaks_but_not_nul():
    assert clean_text("one\r\ntwo\rthree\tfour", "Notes", multiline=True) == "one\ntwo\nthree\tfour"
    with pytest.raises(TextError):
        clean_text("one\x00two", "Notes", multiline=True)
    with pytest.raises(TextError):
        clean_text("one\u202etwo", "Notes", multiline=True)


def test_text_is_normalised_to_nfc_and_otherwise_left_alone():
    assert clean_text("Jose\u0301", "Name") == "Jos\u00e9"
    assert clean_text("  two  spaces ", "Name") == "  two  spaces "
    assert clean_text(None, "Name") == ""
    # Right-to-left text itself is fine; only the invisible reordering controls are refused.
    assert clean_text("\u05e9\u05dc\u05d5\u05dd \u200f", "Name") == "\u05e9\u05dc\u05d5\u05dd \u200f"


@pytest.mark.parametrize(
    "address", ["first.last+tag@sub.example.ac.uk", "jane.doe@example.edu", "o'brien@example.edu", "a@b.co"]
)
def test_real_email_addresses_pass(address):
    assert is_email(address)


@pytest.mark.parametrize(
    "address",
    [".a@b.com", "a.@b.com", "a..b@c.com", "a@b", "a b@c.com", "a@b..com", "a@-b.com", "a@b.com.", "@b.com",
     "a@@b.com", "a" * 65 + "@b.com", "a@" + "b" * 100 + ".com"],
)  # fmt: skip
def test_email_lookalikes_fail(address):
    assert not is_email(address)


@pytest.mark.parametrize("text", ["42", "42.5", "0.25", ".5", "5.", "999999999.999999", "2.0000001"])
def test_plain_numbers(text):
    assert is_plain_number(text)


@pytest.mark.parametrize(
    "text", ["1e5", "1e-400", "1_000", "1,000", "NaN", "Infinity", "-0", "+1", "", ".", "1.2.3", "\u0663",
             "1234567890", "0." + "1" * 41],
)  # fmt: skip
def test_numbers_a_person_would_not_write_are_not_plain(text):
    assert not is_plain_number(text)
