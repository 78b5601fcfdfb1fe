"""What payment methods and payment rows are called (the `payment.method` and `payment.kind` codes)."""

from __future__ import annotations

from decimal import Decimal

from printlab.domain.pricing import format_usd

METHOD_LABELS = {
    "CASH": "Cash",
    "CARD": "Card terminal",
    "CAMPUS_CARD": "Campus card",
    "ACCOUNT": "Account code (internal transfer)",
    "WAIVER": "Waiver",
}
KIND_LABELS = {"CHARGE": "Charge", "REFUND": "Refund", "CORRECTION": "Correction", "REVERSAL": "Reversal"}


def method_label(code: str | None) -> str:
    """The method in words; a payment recorded before methods existed has none ("")."""
    return METHOD_LABELS.get(code, code) if code else ""


def kind_label(code: str | None) -> str:
    return KIND_LABELS.get(code, code) if code else "Charge"


def signed_usd(amount: Decimal) -> str:
    """'$4.00', or '−$1.50' for money given back (format_usd keeps the one way of writing money)."""
    return f"−{format_usd(-amount)}" if amount < 0 else format_usd(amount)
