"""Fraud risk as a score with reasons a person can check. Pure functions over plain values.

Issue 7 grows the rule set; these are the signals the scan bench can already see.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

RULES_VERSION = "risk-2026.11-1"


@dataclass(frozen=True)
class Signal:
    code: str
    weight: int
    message: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class RiskInputs:
    weight_g: int | None
    expected_weight_g: int | None
    weight_tolerance_g: int
    flagged_scans: list[tuple[str, str]]  # (result, message) of item scans that did not match
    missing_units_refunded: int
    refund_minor: int
    review_amount_minor: int | None
    outside_window_refund: bool
    customer_returns: int
    customer_orders: int


def weight_message(weight_g: int, expected_g: int, tolerance_g: int) -> str:
    return f"parcel weighs {weight_g:,} g, expected {expected_g:,} g ± {tolerance_g:,} g"


def weight_mismatch(weight_g: int | None, expected_g: int | None, tolerance_g: int) -> bool:
    return weight_g is not None and bool(expected_g) and abs(weight_g - (expected_g or 0)) > tolerance_g


def assess(inputs: RiskInputs) -> tuple[int, list[Signal]]:
    signals: list[Signal] = []
    if weight_mismatch(inputs.weight_g, inputs.expected_weight_g, inputs.weight_tolerance_g):
        assert inputs.weight_g is not None and inputs.expected_weight_g is not None
        signals.append(Signal("weight_mismatch", 45, weight_message(inputs.weight_g, inputs.expected_weight_g,
                                                                    inputs.weight_tolerance_g)))
    weights = {"serial_not_shipped": 50, "not_on_order": 40, "over_quantity": 25}
    for result, message in inputs.flagged_scans:
        signals.append(Signal(result, weights.get(result, 20), message))
    if inputs.missing_units_refunded:
        signals.append(Signal("refund_for_missing_items", 50,
                              f"{inputs.missing_units_refunded} unit(s) refunded that were not in the parcel"))
    if inputs.outside_window_refund:
        signals.append(Signal("outside_window", 20, "refund asked for outside the return window"))
    if inputs.review_amount_minor and inputs.refund_minor * 2 >= inputs.review_amount_minor:
        signals.append(Signal("high_value", 10, "refund is at least half the amount that always needs review"))
    if inputs.customer_returns >= 5 and inputs.customer_returns * 2 > inputs.customer_orders:
        signals.append(Signal("frequent_returner", 15,
                              f"customer returned {inputs.customer_returns} of {inputs.customer_orders} orders"))
    return min(100, sum(s.weight for s in signals)), signals
