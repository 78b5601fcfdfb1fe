"""Charging rules: how a payment was made (in staff's words), discounts and waivers, refunds and corrections.

Pure rules on Decimal money, rounded half-up to the cent like every price (domain/pricing.py). The
services check the facts only the database knows (the account codes, a job's balance) and write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from printlab.domain.pricing import CENT, MAX_COST, PricingError, format_usd, to_decimal

#: Payment methods staff choose at pickup: the `payment.method` code and the words staff use for it.
METHODS: dict[str, str] = {
    "CASH": "Cash",
    "CARD": "Card terminal",
    "CAMPUS_CARD": "Campus card",
    "ACCOUNT": "Internal transfer (account code)",
    "WAIVER": "Waiver",
}
ACCOUNT = "ACCOUNT"
WAIVER = "WAIVER"

#: What each kind of payment row is called on the job page's ledger.
KINDS: dict[str, str] = {
    "CHARGE": "Payment at pickup",
    "REFUND": "Refund",
    "CORRECTION": "Correction",
    "REVERSAL": "Reversed (pickup reverted)",
}
#: The kinds staff can add after a pickup ("Refund or correct the payment").
ADJUSTMENTS = ("REFUND", "CORRECTION")

#: An account code: letters and digits, in groups joined by single dashes, 2 to 40 characters.
_CODE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
MIN_CODE, MAX_CODE = 2, 40
MAX_CODE_NAME = 200


class ChargingError(ValueError):
    """A payment that can't be recorded; `field` names the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def method_label(code: str | None) -> str:
    """ "Card terminal" for CARD; payments recorded before methods existed say so."""
    if code is None:
        return "Not recorded"
    return METHODS.get(code, code.replace("_", " ").capitalize())


def kind_label(code: str | None) -> str:
    return KINDS.get(code or "CHARGE", (code or "").capitalize())


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def signed_usd(amount: Decimal) -> str:
    """ "-$1.50" for money given back, "$2.00" otherwise (format_usd would write "$-1.50")."""
    return ("-" if amount < 0 else "") + format_usd(abs(amount))


def normal_code(text: str) -> str:
    """An account code as the lab writes it: trimmed and in capitals ("eng-1042" → "ENG-1042")."""
    return text.strip().upper()


def code_problem(code: str) -> str | None:
    """Why `code` (already normalised) can't be an account code, or None."""
    if not MIN_CODE <= len(code) <= MAX_CODE or not _CODE.fullmatch(code):
        return (
            f"An account code is {MIN_CODE} to {MAX_CODE} letters and digits, in groups joined by "
            "single dashes, like ENG-1042."
        )
    return None


def _amount(value: object, field: str, what: str) -> Decimal:
    try:
        amount = to_decimal(value, what)
    except PricingError as exc:
        raise ChargingError(field, str(exc)) from None
    if abs(amount) > MAX_COST:
        raise ChargingError(field, f"{what} can be at most {format_usd(MAX_COST)}.")
    return cents(amount)


@dataclass(frozen=True)
class Charge:
    """What a pickup charges: the price before any discount, what was taken off, what was paid."""

    list_usd: Decimal
    discount_usd: Decimal
    charged_usd: Decimal

    @property
    def discounted(self) -> bool:
        return self.discount_usd > 0


def pickup_charge(list_usd: Decimal, method: str, discount: object) -> Charge:
    """The charge for a price and a typed discount (blank: none). A waiver takes off the whole price.

    Raises ChargingError for a negative discount, one larger than the price, or a discount of the
    whole price under another method (that is a waiver: staff choose Waiver so the reports say so).
    """
    price = cents(Decimal(list_usd))
    if method == WAIVER:
        return Charge(price, price, Decimal("0.00"))
    off = Decimal("0.00") if discount in (None, "") else _amount(discount, "discount_usd", "The discount")
    if off < 0:
        raise ChargingError("discount_usd", "The discount can't be negative.")
    if off > price:
        raise ChargingError(
            "discount_usd", f"The discount ({format_usd(off)}) is more than the price ({format_usd(price)})."
        )
    if off == price and price > 0:
        raise ChargingError(
            "discount_usd", "A discount of the whole price is a waiver: choose Waiver as the payment method."
        )
    return Charge(price, off, price - off)


def adjustment_amount(kind: str, typed: object, balance: Decimal) -> Decimal:
    """The signed amount a refund or correction row holds, for what staff typed.

    A refund is typed as the money given back (positive) and stored negative; it can't be more than
    the job's balance. A correction is typed signed (-1.50 gives money back, 2.00 takes more) and
    can't take the balance below zero. Raises ChargingError.
    """
    if kind not in ADJUSTMENTS:
        raise ChargingError("kind", "Choose a refund or a correction.")
    if typed in (None, ""):
        raise ChargingError("amount_usd", "Enter the amount.")
    amount = _amount(typed, "amount_usd", "The amount")
    if kind == "REFUND":
        if amount <= 0:
            raise ChargingError("amount_usd", "Enter the amount given back, more than $0.00.")
        if amount > balance:
            raise ChargingError(
                "amount_usd",
                f"A refund of {format_usd(amount)} is more than the job's balance of {format_usd(balance)}.",
            )
        return -amount
    if amount == 0:
        raise ChargingError("amount_usd", "A correction of $0.00 changes nothing.")
    if balance + amount < 0:
        raise ChargingError(
            "amount_usd",
            f"A correction of {signed_usd(amount)} would take the job's balance of {format_usd(balance)} "
            "below $0.00.",
        )
    if balance + amount > MAX_COST:
        raise ChargingError("amount_usd", f"The balance can be at most {format_usd(MAX_COST)}.")
    return amount
