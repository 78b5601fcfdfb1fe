"""Price and print-time rules of SPEC §6: Decimal money, half-up to the cent, a minimum charge."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from printlab.domain.text import is_plain_number

CENT = Decimal("0.01")
#: cost_usd is Numeric(6, 2): the largest amount the column holds.
MAX_COST = Decimal("9999.99")


class PricingError(ValueError):
    """A weight, time or rate that no quote can be made from."""


def to_decimal(value: object, what: str) -> Decimal:
    """Read a number a person typed (str, int, float, Decimal) as a finite Decimal.

    Typed text must be plain decimal digits (domain/text.py), with a minus sign at most, so that
    a negative amount gets the caller's own message; Decimal() alone would also read 1e-400 (then
    stored as 0 g), 1_000, NaN, Infinity and -0.
    """
    if isinstance(value, str):
        value = value.strip()
        digits = value[1:] if value.startswith("-") else value
        if not is_plain_number(digits) or (digits != value and Decimal(digits) == 0):
            raise PricingError(f"{what} must be a number written in digits, like 42.5")
    try:
        # Going through str keeps 0.1 as 0.1 rather than its binary float expansion.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise PricingError(f"{what} must be a number") from None
    if not number.is_finite():
        raise PricingError(f"{what} must be a number")
    return number


def quote_cost(weight_g: object, method: str, rates: Mapping[str, Decimal], minimum: Decimal) -> Decimal:
    """cost = max(minimum, weight × rate for the print method), rounded half-up to the cent.

    Raises PricingError for a negative or absurd weight or an unknown print method.
    """
    grams = to_decimal(weight_g, "Weight")
    if grams < 0:
        raise PricingError("Weight can't be negative")
    try:
        rate = rates[method]
    except KeyError:
        raise PricingError(f"No price is set for print method {method!r}") from None
    try:
        cost = max(Decimal(minimum), grams * Decimal(rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    except ArithmeticError:  # decimal Overflow / InvalidOperation: a weight like 1e30 g
        raise PricingError(f"That weight costs more than the lab can record (${MAX_COST})") from None
    if cost > MAX_COST:
        raise PricingError(f"A cost of ${cost} is more than the lab can record (${MAX_COST})")
    return cost


def job_grams(parts: Sequence[tuple[float, int]]) -> float:
    """The grams of a whole job: each part's grams times its copies, added up (issue 13)."""
    total = Decimal(0)
    for grams, copies in parts:
        if copies < 1:
            raise PricingError("A part is printed at least once")
        total += to_decimal(grams, "Weight") * copies
    return float(total)


def job_cost(
    parts: Sequence[tuple[float, int]], method: str, rates: Mapping[str, Decimal], minimum: Decimal
) -> Decimal:
    """One price for a job of several parts: the parts' grams × copies added up, then priced with
    the minimum charge applied once for the whole job (never once per part)."""
    return quote_cost(job_grams(parts), method, rates, minimum)


def round_print_hours(hours: object) -> float:
    """Print time in hours, rounded up to the next half hour (0 stays 0)."""
    value = to_decimal(hours, "Print time")
    if value < 0:
        raise PricingError("Print time can't be negative")
    if value > 10_000:
        raise PricingError("Print time is more than any printer runs")
    rounded = math.ceil(value * 2) / 2
    # value * 2 is rounded to the context's 28 digits (and can underflow to 0): never round down.
    return rounded + 0.5 if Decimal(rounded) < value else rounded


def format_usd(amount: Decimal) -> str:
    """'$3.00' — the one way money is written for people."""
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,}"
