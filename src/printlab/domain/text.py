"""The one rule for text a person types into PrintLab, whichever form it comes from (pure).

Every text field goes through `clean_text()` before it is checked any further or stored:

- NUL and other control characters are refused (tab and line breaks only in multi-line fields:
  notes, reasons, lists with one item per line); they can't be seen, and PostgreSQL can't even
  store NUL;
- the characters that reorder text on screen are refused: the bidi embeddings and overrides
  U+202A–U+202E (the right-to-left override makes ``gpj.exe`` look like ``exe.jpg``) and the
  isolates U+2066–U+2069;
- lone surrogates (half of a character) are refused;
- what is left is normalised to Unicode NFC, so the same name typed on two computers is stored,
  compared and searched as the same text.

The message names the field in the words of the form it came from.
"""

from __future__ import annotations

import re
import unicodedata

#: Embeddings, overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MULTILINE_ALLOWED = frozenset("\t\n")


class TextError(ValueError):
    """Text a field can't accept; the message names the field and says what to do.

    `reason` is what was found ("an invisible control character"), for callers that word the
    advice differently (a file's name is renamed, not typed again).
    """

    def __init__(self, field_label: str, reason: str):
        self.field_label = field_label
        self.reason = reason
        super().__init__(f"{field_label} contains {reason}. Please type it again without it.")


def _refused(char: str, multiline: bool) -> str | None:
    """Why `char` can't be in a field, or None when it can."""
    if char in BIDI_CONTROLS:
        return "a hidden character that changes the direction of text"
    category = unicodedata.category(char)
    if category == "Cc" and not (multiline and char in _MULTILINE_ALLOWED):
        if char in "\t\n":
            return "a tab or line break (this field is one line)"
        return "an invisible control character"
    if category == "Cs":
        return "a broken character"
    return None


def clean_text(value: object, field_label: str, *, multiline: bool = False) -> str:
    """`value` as text a field may hold: checked and NFC-normalised. Raises TextError.

    `None` reads as "". Multi-line text has its line breaks made plain ``\\n`` first (browsers
    send ``\\r\\n``). Nothing is trimmed or collapsed here: each field decides that itself.
    """
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char in text:
        reason = _refused(char, multiline)
        if reason:
            raise TextError(field_label, reason)
    return unicodedata.normalize("NFC", text)


def is_clean(value: object, *, multiline: bool = False) -> bool:
    """Whether `value` would pass `clean_text()` (for identifiers that are looked up, not stored)."""
    try:
        clean_text(value, "", multiline=multiline)
    except TextError:
        return False
    return True


# -- email addresses -------------------------------------------------------------------------------

#: The rule PrintLab holds an email address to, simpler than RFC 5322 on purpose:
#: - one @, nothing around the address, no spaces;
#: - the part before @ (at most 64 characters) uses letters, digits and ! # $ % & ' * + / = ? ^ _ `
#:   { | } ~ - and dots, but doesn't start or end with a dot or have two dots in a row;
#: - the part after @ is two or more labels of letters, digits and hyphens separated by dots (so it
#:   has at least one dot), each label 1–63 characters, not starting or ending with a hyphen.
#: first.last+tag@sub.example.ac.uk passes; .a@b.com, a..b@c.com, a@b and a b@c.com don't.
#: Written so that Python and a browser's `pattern` attribute (JavaScript's strict `v` mode, where
#: - { } | / ^ inside brackets must be escaped) read it alike: the form checks the same rule.
_CHARS = r"A-Za-z0-9!#$%&'*+\/=?\^_`\{\|\}~\-"
_LOCAL = rf"[{_CHARS}]+(?:\.[{_CHARS}]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
#: The whole rule as one pattern (the local part's 64 characters as a look-ahead).
EMAIL_PATTERN = rf"(?=[^@]{{1,64}}@){_LOCAL}@{_LABEL}(?:\.{_LABEL})+"
_EMAIL = re.compile(EMAIL_PATTERN)
MAX_EMAIL = 100


def is_email(text: str) -> bool:
    """Whether `text` is an email address by PrintLab's rule (above)."""
    return len(text) <= MAX_EMAIL and _EMAIL.fullmatch(text) is not None


# -- numbers ---------------------------------------------------------------------------------------

#: Plain decimal digits with at most one decimal point: 42, 42.5, 0.25, .5. No sign, exponent
#: (1e5, 1e-400), digit separator (1_000, 1,000), NaN or Infinity: what a person writes on a form.
#: At most 9 digits before the point (no lab quantity needs more) and 40 after it.
_PLAIN_NUMBER = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})")


def is_plain_number(text: str) -> bool:
    """Whether `text` (already stripped) is written in plain decimal digits (see above)."""
    return bool(_PLAIN_NUMBER.fullmatch(text))
