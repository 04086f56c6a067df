"""What the customer paid for each unit, and what a decision gives back under the policy.

Pure functions over small value objects: no database, no Qt. The rules:
- a unit's paid amount is its share of the line after line discounts, after the order-level
  discount prorated across lines by net value, plus the tax charged on it (tax as paid);
- shares are split with the largest-remainder method, so returning every unit of an order gives
  back exactly what was charged, never a cent more;
- deductions never make a refund negative, and no unit is refunded above what was paid for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from console.money import allocate, percent_of, split_even
from console.policy import Policy, WindowCheck


@dataclass(frozen=True)
class LineCharge:
    order_line_id: int
    quantity: int
    unit_price_minor: int
    line_discount_minor: int
    tax_minor: int

    @property
    def net_minor(self) -> int:
        return self.quantity * self.unit_price_minor - self.line_discount_minor


def paid_per_unit(lines: list[LineCharge], order_discount_minor: int) -> dict[int, list[int]]:
    """Per order line, the amount paid for each of its units, in unit order."""
    nets = [max(0, line.net_minor) for line in lines]
    if order_discount_minor > sum(nets):
        raise ValueError("order discount exceeds the value of the order's lines")
    order_shares = allocate(order_discount_minor, nets)
    result: dict[int, list[int]] = {}
    for line, net, share in zip(lines, nets, order_shares):
        result[line.order_line_id] = split_even(net - share + line.tax_minor, line.quantity)
    return result


@dataclass(frozen=True)
class ItemToRefund:
    return_item_id: int
    order_line_id: int
    category: str
    reason_code: str
    grade: str | None
    paid_minor: int


@dataclass(frozen=True)
class DeductionLine:
    code: str
    label: str
    amount_minor: int
    return_item_id: int | None = None


@dataclass(frozen=True)
class ItemOutcome:
    return_item_id: int
    paid_minor: int
    refund_minor: int
    grade: str | None


@dataclass(frozen=True)
class Quote:
    kind: str
    currency: str
    items: list[ItemOutcome]
    deductions: list[DeductionLine]
    shipping_refund_minor: int
    store_credit_bonus_minor: int
    policy_version: str
    notes: list[str] = field(default_factory=list)

    @property
    def paid_minor(self) -> int:
        return sum(i.paid_minor for i in self.items)

    @property
    def deductions_minor(self) -> int:
        return sum(d.amount_minor for d in self.deductions)

    @property
    def amount_minor(self) -> int:
        """What goes back to the customer (card or store credit), bonus excluded."""
        return sum(i.refund_minor for i in self.items) + self.shipping_refund_minor


KINDS_THAT_PAY = ("full_refund", "partial_refund", "store_credit")


def quote(kind: str, items: list[ItemToRefund], *, currency: str, policy: Policy, window: WindowCheck,
          shipping_paid_minor: int, shipping_already_refunded: bool, return_fee_already_charged: bool,
          extra_deductions: list[DeductionLine] | None = None) -> Quote:
    """The refund for ``items`` if decided as ``kind``.

    ``full_refund`` waives restocking fees (a supervisor's call when policy would charge them);
    ``partial_refund`` applies restocking fees by grade and category plus any itemized damage
    deductions; ``store_credit`` applies restocking fees, waives the return-shipping fee and adds
    the policy's bonus; ``exchange`` and ``deny`` pay nothing back.
    """
    notes: list[str] = []
    if kind not in (*KINDS_THAT_PAY, "exchange", "deny"):
        raise ValueError(f"unknown decision kind {kind!r}")
    if kind not in KINDS_THAT_PAY:
        outcomes = [ItemOutcome(i.return_item_id, i.paid_minor, 0, i.grade) for i in items]
        return Quote(kind, currency, outcomes, [], 0, 0, policy.version, notes)

    deductions: list[DeductionLine] = []
    remaining = {i.return_item_id: i.paid_minor for i in items}

    def take(item_id: int, code: str, label: str, wanted: int) -> None:
        # Fees are capped at what is left of the unit's refund: never below zero.
        amount = min(wanted, remaining[item_id])
        if amount > 0:
            remaining[item_id] -= amount
            deductions.append(DeductionLine(code, label, amount, item_id))

    if kind in ("partial_refund", "store_credit"):
        for item in items:
            bp = policy.restocking_bp(item.category, item.grade or "A")
            if bp:
                pct = f"{bp / 100:g} %"
                take(item.return_item_id, "restocking_fee", f"Restocking fee, grade {item.grade} ({pct})",
                     percent_of(item.paid_minor, bp))
    if kind == "partial_refund":
        for extra in extra_deductions or []:
            if extra.return_item_id not in remaining:
                raise ValueError(f"deduction for return item {extra.return_item_id}, which is not in this decision")
            take(extra.return_item_id, extra.code, extra.label, extra.amount_minor)

    fault_of_retailer = any(i.reason_code in policy.fee_waived_for_reasons for i in items)
    if (kind != "store_credit" and not window.free_shipping and not fault_of_retailer
            and not return_fee_already_charged):
        fee = policy.return_fee_for(currency)
        # Charged once per return, taken from the units in order until it is covered.
        for item in items:
            if fee <= 0:
                break
            before = remaining[item.return_item_id]
            take(item.return_item_id, "return_shipping_fee",
                 f"Return shipping (day {window.days_since_delivery}, free until day {window.free_shipping_days})",
                 fee)
            fee -= before - remaining[item.return_item_id]
        if fee > 0:
            notes.append("return shipping fee not fully charged: it would have made the refund negative")

    shipping_refund = 0
    if (not shipping_already_refunded and shipping_paid_minor > 0
            and any(i.reason_code in policy.refund_shipping_for_reasons for i in items)):
        shipping_refund = shipping_paid_minor
        notes.append("original shipping refunded: the return is the retailer's fault")

    outcomes = [ItemOutcome(i.return_item_id, i.paid_minor, remaining[i.return_item_id], i.grade) for i in items]
    bonus = 0
    if kind == "store_credit":
        bonus = percent_of(sum(o.refund_minor for o in outcomes) + shipping_refund, policy.store_credit_bonus_bp)
    return Quote(kind, currency, outcomes, deductions, shipping_refund, bonus, policy.version, notes)


def proposed_kind(items: list[ItemToRefund], window: WindowCheck, policy: Policy) -> str:
    """What policy proposes before the clerk confirms or changes it."""
    if not window.within:
        return "deny"
    if items and all(i.grade == "F" for i in items):
        return "deny"
    fees = any(policy.restocking_bp(i.category, i.grade or "A") for i in items)
    return "partial_refund" if fees else "full_refund"
