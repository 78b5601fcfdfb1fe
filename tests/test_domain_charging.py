"""Charging rules with plain values: method words, discounts and waivers, refund and correction amounts, codes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from printlab.domain import charging
from printlab.domain.charging import ChargingError, adjustment_amount, code_problem, pickup_charge

D = Decimal


def test_methods_read_as_staff_say_them():
    assert [charging.method_label(m) for m in charging.METHODS] == [
        "Cash", "Card terminal", "Campus card", "Internal transfer (account code)", "Waiver",
    ]  # fmt: skip
    assert charging.method_label(None) == "Not recorded"
    assert charging.kind_label("REVERSAL") == "Reversed (pickup reverted)"
    assert charging.signed_usd(D("-1.5")) == "-$1.50" and charging.signed_usd(D("1234.5")) == "$1,234.50"


@pytest.mark.parametrize(
    ("price", "method", "typed", "expected"),
    [
        ("4.00", "CASH", "", ("4.00", "0.00", "4.00")),
        ("4.00", "CASH", None, ("4.00", "0.00", "4.00")),
        ("4.00", "CARD", "1.005", ("4.00", "1.01", "2.99")),  # half-up to the cent
        ("4.00", "CARD", "0.004", ("4.00", "0.00", "4.00")),
        ("4.00", "WAIVER", "", ("4.00", "4.00", "0.00")),
        ("4.00", "WAIVER", "1.00", ("4.00", "4.00", "0.00")),  # a waiver is always the whole price
        ("0.00", "CASH", "0", ("0.00", "0.00", "0.00")),  # a free print needs no waiver
    ],
)
def test_a_pickup_charge_is_the_price_less_the_discount(price, method, typed, expected):
    charge = pickup_charge(D(price), method, typed)
    assert (charge.list_usd, charge.discount_usd, charge.charged_usd) == tuple(D(v) for v in expected)


@pytest.mark.parametrize("typed", ["4.01", "4.00", "-0.01", "1e3", "NaN", "twelve", "99999"])
def test_a_discount_that_cant_be_given_is_refused(typed):
    with pytest.raises(ChargingError) as caught:
        pickup_charge(D("4.00"), "CASH", typed)
    assert caught.value.field == "discount_usd"


@pytest.mark.parametrize(
    ("kind", "typed", "balance", "stored"),
    [
        ("REFUND", "2", "4.00", "-2.00"),
        ("REFUND", "4.00", "4.00", "-4.00"),
        ("REFUND", "0.015", "4.00", "-0.02"),
        ("CORRECTION", "-1.50", "4.00", "-1.50"),
        ("CORRECTION", "1.25", "4.00", "1.25"),
        ("CORRECTION", "-4", "4.00", "-4.00"),
    ],
)
def test_refund_and_correction_amounts(kind, typed, balance, stored):
    assert adjustment_amount(kind, typed, D(balance)) == D(stored)


@pytest.mark.parametrize(
    ("kind", "typed", "balance", "field"),
    [
        ("REFUND", "4.01", "4.00", "amount_usd"),
        ("REFUND", "0", "4.00", "amount_usd"),
        ("REFUND", "-1", "4.00", "amount_usd"),
        ("REFUND", "", "4.00", "amount_usd"),
        ("REFUND", "1", "0.00", "amount_usd"),
        ("CORRECTION", "-4.01", "4.00", "amount_usd"),
        ("CORRECTION", "0.00", "4.00", "amount_usd"),
        ("CORRECTION", "9999.99", "4.00", "amount_usd"),
        ("REVERSAL", "1", "4.00", "kind"),
    ],
)
def test_amounts_that_are_refused(kind, typed, balance, field):
    with pytest.raises(ChargingError) as caught:
        adjustment_amount(kind, typed, D(balance))
    assert caught.value.field == field


@pytest.mark.parametrize("code", ["ENG-1042", "AB", "GRANT-NSF-2231", "A" * 40, "2026-ARCH-4010"])
def test_account_codes_in_the_labs_format(code):
    assert code_problem(code) is None


@pytest.mark.parametrize(
    "code", ["A", "A" * 41, "ENG--1", "-ENG", "ENG-", "ENG 1042", "ENG_1042", "eng-1042", ""]
)
def test_account_codes_that_are_refused(code):
    assert code_problem(code) is not None
    assert charging.normal_code("  eng-1042 ") == "ENG-1042"
