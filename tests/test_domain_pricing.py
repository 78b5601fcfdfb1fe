"""Price and print-time rules (SPEC §6) as plain values: exact examples and hypothesis properties."""

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.pricing import (
    CENT,
    MAX_COST,
    PricingError,
    format_usd,
    quote_cost,
    round_print_hours,
    to_decimal,
)

RATES = DEFAULT_CATALOG.rates
MINIMUM = DEFAULT_CATALOG.minimum_charge


def cost(weight, method="Filament"):
    return quote_cost(weight, method, RATES, MINIMUM)


def test_default_prices_are_the_specs():
    assert DEFAULT_CATALOG.rates == {"Filament": Decimal("0.10"), "Resin": Decimal("0.20")}
    assert DEFAULT_CATALOG.minimum_charge == Decimal("3.00")


@pytest.mark.parametrize(
    ("weight", "method", "expected"),
    [
        (42, "Filament", "4.20"),
        (10, "Filament", "3.00"),  # the minimum charge
        (0, "Filament", "3.00"),
        (30, "Filament", "3.00"),
        ("30.01", "Filament", "3.00"),  # 3.001 rounds down to the minimum
        ("30.05", "Filament", "3.01"),  # 3.005: half-up, where banker's rounding would give 3.00
        (42.45, "Filament", "4.25"),  # 4.245: half-up, not half-even
        (40.05, "Filament", "4.01"),  # the typed 40.05, not its binary float 40.04999…
        ("100.125", "Resin", "20.03"),  # 20.025 → half-up
        (15, "Resin", "3.00"),
        (15.1, "Resin", "3.02"),
        ("  42 ", "Filament", "4.20"),  # as typed in a form
        (Decimal("42.0"), "Filament", "4.20"),
        (99999, "Filament", "9999.90"),  # the most the cost column holds is 9999.99
    ],
)
def test_exact_quotes(weight, method, expected):
    result = cost(weight, method)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)
    assert str(result) == expected  # always two places, ready for Numeric(6, 2)


def test_half_up_to_the_cent_with_an_eighth_of_a_cent():
    rates = {"Test": Decimal("1")}
    assert quote_cost("0.125", "Test", rates, Decimal(0)) == Decimal("0.13")
    assert quote_cost("0.135", "Test", rates, Decimal(0)) == Decimal("0.14")
    assert quote_cost("0.1249", "Test", rates, Decimal(0)) == Decimal("0.12")
    assert quote_cost(0.125, "Test", rates, Decimal(0)) == Decimal("0.13")


@pytest.mark.parametrize(
    "weight",
    [
        -1,
        "-0.01",
        float("nan"),
        "NaN",
        "sNaN",
        Decimal("NaN"),
        float("inf"),
        "-inf",
        "Infinity",
        "",
        "  ",
        "forty two",
        "42g",
        "4,2",
        None,
        True,
        [42],
        "1e30",  # absurd: more than the cost column can hold
        "1e999999999",
        100_000,
    ],
)
def test_weights_no_quote_can_be_made_from_are_refused(weight):
    with pytest.raises(PricingError):
        cost(weight)


def test_an_unknown_method_is_refused_by_name():
    with pytest.raises(PricingError, match="No price is set for print method 'Glitter'"):
        cost(42, "Glitter")


def test_refusals_say_what_was_wrong():
    with pytest.raises(PricingError, match="Weight must be a number"):
        cost("abc")
    with pytest.raises(PricingError, match="Weight can't be negative"):
        cost(-3)
    with pytest.raises(PricingError, match=r"more than the lab can record \(\$9999\.99\)"):
        cost(1_000_000)


# Weights as staff enter them: whole grams, a scale's decimals, or a float from a form.
weights = st.one_of(
    st.integers(min_value=0, max_value=50_000),
    st.decimals(min_value=0, max_value=50_000, places=3),
    st.floats(min_value=0, max_value=50_000, allow_nan=False, allow_infinity=False),
)
methods = st.sampled_from(sorted(RATES))


def exact_cost(weight, method):
    """The rule of SPEC §6, computed with enough precision that nothing is rounded before the cent."""
    with localcontext() as context:
        context.prec = 100
        grams = Decimal(str(weight))
        return max(MINIMUM, grams * RATES[method]).quantize(CENT, rounding=ROUND_HALF_UP)


@given(weights, methods)
@example(Decimal("42.45"), "Filament")
@example(Decimal("0.005"), "Filament")
def test_cost_is_max_of_minimum_and_grams_times_rate_half_up(weight, method):
    expected = exact_cost(weight, method)
    if expected > MAX_COST:
        with pytest.raises(PricingError):
            cost(weight, method)
        return
    result = cost(weight, method)
    assert isinstance(result, Decimal)
    assert result == expected
    assert result.as_tuple().exponent == -2
    assert result >= MINIMUM


@given(weights, weights, methods)
def test_cost_never_decreases_with_weight(a, b, method):
    light, heavy = sorted((Decimal(str(a)), Decimal(str(b))))
    try:
        heavy_cost = cost(heavy, method)
    except PricingError:
        return  # beyond the column: the heavier one is refused, which is not a lower price
    assert cost(light, method) <= heavy_cost


@given(st.one_of(st.integers(max_value=-1), st.decimals(max_value=Decimal("-0.000001"), allow_nan=False)))
def test_negative_weights_are_always_refused(weight):
    with pytest.raises(PricingError):
        cost(weight)


@given(st.text())
def test_any_text_is_either_a_finite_non_negative_number_or_refused(text):
    try:
        result = cost(text)
    except PricingError:
        return
    number = Decimal(text.strip())
    assert number.is_finite()
    assert number >= 0
    assert result >= MINIMUM


def test_to_decimal_keeps_what_was_typed():
    assert to_decimal(0.1, "x") == Decimal("0.1")
    assert to_decimal("2.50", "x") == Decimal("2.50")
    with pytest.raises(PricingError, match="Print time must be a number"):
        to_decimal("soon", "Print time")


# -- print time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (0, 0.0),
        (0.1, 0.5),
        (0.5, 0.5),
        (0.51, 1.0),
        (2.2, 2.5),
        (2.5, 2.5),
        ("2.0000001", 2.5),
        (3, 3.0),
        ("7.75", 8.0),
        (10_000, 10_000.0),
        ("0.50000000000000000000000000001", 1.0),  # more digits than Decimal's default precision
        (Decimal("1e-999999999"), 0.5),  # so small that doubling it underflows to 0 (typed, it's refused)
    ],
)
def test_hours_round_up_to_the_next_half_hour(hours, expected):
    assert round_print_hours(hours) == expected


@pytest.mark.parametrize("hours", [-0.5, "-1", "nan", float("inf"), "", "two", None, 10_000.5, "1e9"])
def test_impossible_print_times_are_refused(hours):
    with pytest.raises(PricingError):
        round_print_hours(hours)


@given(
    st.one_of(
        st.decimals(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False),
        st.floats(min_value=0, max_value=10_000, allow_nan=False),
        st.integers(min_value=0, max_value=10_000),
    )
)
def test_rounded_hours_are_the_smallest_half_hour_not_below_the_input(hours):
    exact = Decimal(str(hours))
    result = round_print_hours(hours)
    assert isinstance(result, float)
    assert Decimal(result) >= exact
    assert Decimal(result) - Decimal("0.5") < exact  # comparisons are exact; subtraction would round
    assert (result * 2).is_integer()
    assert math.isfinite(result)


def test_money_is_written_one_way():
    assert format_usd(Decimal("3")) == "$3.00"
    assert format_usd(Decimal("4.245")) == "$4.25"
    assert format_usd(Decimal("1234.5")) == "$1,234.50"
