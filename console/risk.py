"""Fraud risk as a score with reasons a person can check. Pure functions over plain values.

``RiskFacts`` holds everything the signals look at, gathered once at the bench
(console.risk_facts) and stored with the assessment; ``assess`` turns facts and the policy's
``[risk]`` table into signals, a score 0–100 and an outcome. Because the facts are stored, a
candidate policy can be back-tested on what was known when each return was decided.

Each signal has a weight and thresholds from the policy file and one sentence with the numbers,
so a supervisor can check it against the parcel in front of them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

RULES_VERSION = "risk-2026.12-1"

OUTCOMES = ("auto", "review", "suggest_deny")

# Every signal the engine knows, with its default weight and thresholds. The policy's
# [risk.signals.<code>] tables override any of these keys; weight 0 switches a signal off.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "weight_mismatch": {"weight": 45},
    "not_on_order": {"weight": 40},
    "serial_not_shipped": {"weight": 50},
    "over_quantity": {"weight": 25},
    "duplicate_serial": {"weight": 40},
    "grade_f": {"weight": 25},
    "outside_window": {"weight": 20},
    "refund_for_missing_items": {"weight": 50},
    "overstated_quantity": {"weight": 30},
    "return_rate": {"weight": 15, "min_returns": 4, "times_all_customers": 2.0},
    "customer_claims": {"weight": 20, "at_least": 2},
    "address_claims": {"weight": 20, "at_least": 3},
    "linked_accounts": {"weight": 25, "at_least": 2},
    "before_delivery": {"weight": 35},
    "high_order_value": {"weight": 10, "amount": {"USD": 100000, "EUR": 100000, "GBP": 80000,
                                                   "JPY": 15000000, "CNY": 700000}},
    "wardrobing": {"weight": 30, "categories": ["apparel", "footwear"]},
    "new_account": {"weight": 10, "days": 14},
    "in_store_without_order": {"weight": 30},
    "other_refund_method": {"weight": 25},
    "clerk_overrides": {"weight": 20, "min_decisions": 20, "rate_pct": 25},
    "clerk_no_receipt_refunds": {"weight": 20, "min_refunds": 10, "rate_pct": 30},
}
# How far back the history signals look (days); part of the facts, not re-applied by a back-test.
HISTORY_DAYS = 365
CLERK_DAYS = 90
SCAN_RESULTS = ("not_on_order", "serial_not_shipped", "over_quantity", "duplicate_serial")
REFUND_METHODS = ("original_payment", "store_credit", "gift_card", "cash", "other_card")


@dataclass(frozen=True)
class Signal:
    code: str
    weight: int
    message: str
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class UnitFacts:
    sku: str
    category: str
    grade: str | None
    tags_attached: bool | None  # None: not checked at inspection
    signs_of_use: bool | None


@dataclass(frozen=True)
class RiskFacts:
    """What the signals look at; plain values only (stored as JSON with the assessment)."""

    currency: str
    pays: bool = False  # the decision refunds money or credit
    refund_minor: int = 0
    refund_method: str | None = None
    # The parcel
    weight_g: int | None = None
    expected_weight_g: int | None = None
    weight_tolerance_g: int = 0
    flagged_scans: list[tuple[str, str]] = field(default_factory=list)  # (result, message)
    parcel_received: bool = False
    units_declared: int = 0
    units_scanned: int = 0
    missing_units_refunded: int = 0
    units: list[UnitFacts] = field(default_factory=list)
    # The order and its return
    channel: str = "mail"
    order_found_by: str | None = None
    order_value_minor: int = 0
    within_window: bool = True
    days_since_delivery: int | None = None
    window_days: int | None = None
    return_started_at: str | None = None  # ISO 8601, UTC
    delivered_at: str | None = None
    account_age_days: int | None = None  # from account opened to the order placed
    # The customer's history (last HISTORY_DAYS days) and everyone's
    customer_orders: int = 0
    customer_returns: int = 0
    all_orders: int = 0
    all_returns: int = 0
    customer_claims: int = 0
    address_claims: int = 0
    linked_by_address: int = 0
    linked_by_phone: int = 0
    linked_by_payment: int = 0
    # The clerk's own record (last CLERK_DAYS days)
    clerk_name: str = ""
    clerk_decisions: int = 0
    clerk_overrides: int = 0
    clerk_in_store_refunds: int = 0
    clerk_no_receipt_refunds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RiskFacts:
        """Facts as stored; keys this version does not know are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["units"] = [UnitFacts(**{k: u.get(k) for k in ("sku", "category", "grade", "tags_attached",
                                                             "signs_of_use")}) for u in raw.get("units", [])]
        values["flagged_scans"] = [(str(r), str(m)) for r, m in raw.get("flagged_scans", [])]
        return cls(**values)


@dataclass(frozen=True)
class RiskRules:
    """The policy's [risk] thresholds and signal table, merged over ``DEFAULT_RULES``."""

    review_at_or_above: int = 40  # below: decided at the bench; at or above: a supervisor reviews
    suggest_deny_at_or_above: int = 80
    signals: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RULES.items()})

    def weight(self, code: str) -> int:
        return int(self.signals.get(code, {}).get("weight", 20))

    def param(self, code: str, name: str) -> Any:
        return self.signals[code][name]


def parse_rules(risk: dict[str, Any]) -> RiskRules:
    """The [risk] table of a policy file. Raises ValueError with the offending key."""
    review = _whole(risk.get("review_at_or_above", 40), "risk.review_at_or_above")
    # "auto_approve_below" says the same threshold from the other side (DESIGN.md's wording);
    # two different numbers would leave a band of scores that is neither, so they must agree.
    auto = _whole(risk.get("auto_approve_below", review), "risk.auto_approve_below")
    if auto != review:
        raise ValueError(f"risk.auto_approve_below ({auto}) and risk.review_at_or_above ({review}) are one "
                         "threshold: give the same number, or only one of them")
    deny = _whole(risk.get("suggest_deny_at_or_above", 80), "risk.suggest_deny_at_or_above")
    if not review <= deny <= 101:
        raise ValueError("risk.suggest_deny_at_or_above must be between review_at_or_above and 101 (101: never)")
    raw = risk.get("signals", {})
    if not isinstance(raw, dict):
        raise ValueError("[risk.signals] must be a table of signals")
    unknown = set(raw) - set(DEFAULT_RULES)
    if unknown:
        raise ValueError(f"unknown risk signal(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_RULES)}")
    merged: dict[str, dict[str, Any]] = {}
    for code, defaults in DEFAULT_RULES.items():
        given = raw.get(code, {})
        if not isinstance(given, dict):
            raise ValueError(f"risk.signals.{code} must be a table (e.g. {{ weight = 20 }})")
        extra = set(given) - set(defaults)
        if extra:
            raise ValueError(f"risk.signals.{code} has no setting {', '.join(sorted(extra))}; "
                             f"it has {', '.join(defaults)}")
        rule = {**defaults, **given}
        rule["weight"] = _whole(rule["weight"], f"risk.signals.{code}.weight")
        for key, default in defaults.items():
            if key == "weight":
                continue
            if isinstance(default, dict):
                if not isinstance(rule[key], dict) or not all(_is_whole(v) for v in rule[key].values()):
                    raise ValueError(f"risk.signals.{code}.{key} must be a table of whole numbers per currency")
            elif isinstance(default, list):
                if not isinstance(rule[key], list) or not all(isinstance(v, str) for v in rule[key]):
                    raise ValueError(f"risk.signals.{code}.{key} must be a list of names")
            elif not isinstance(rule[key], (int, float)) or isinstance(rule[key], bool) or rule[key] < 0:
                raise ValueError(f"risk.signals.{code}.{key} must be a non-negative number")
        merged[code] = rule
    return RiskRules(review, deny, merged)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _whole(value: Any, where: str) -> int:
    if not _is_whole(value):
        raise ValueError(f"{where} must be a whole, non-negative number")
    return int(value)


@dataclass(frozen=True)
class Assessment:
    score: int
    signals: list[Signal]
    outcome: str  # one of OUTCOMES


def weight_message(weight_g: int, expected_g: int, tolerance_g: int) -> str:
    return f"parcel weighs {weight_g:,} g, expected {expected_g:,} g ± {tolerance_g:,} g"


def weight_mismatch(weight_g: int | None, expected_g: int | None, tolerance_g: int) -> bool:
    return weight_g is not None and bool(expected_g) and abs(weight_g - (expected_g or 0)) > tolerance_g


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "n/a"


def _money(minor: int, currency: str) -> str:
    from console.money import Money  # plain formatting; kept local so this module stays leaf-light

    return str(Money(minor, currency))


def _day(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d %b %Y")


def assess(facts: RiskFacts, rules: RiskRules | None = None) -> Assessment:
    """Every signal that fires, the score (sum of weights, at most 100) and the outcome."""
    rules = rules or RiskRules()
    out: list[Signal] = []

    def fire(code: str, message: str, **inputs: Any) -> None:
        weight = rules.weight(code)
        if weight > 0:
            out.append(Signal(code, weight, message, inputs))

    f = facts
    if weight_mismatch(f.weight_g, f.expected_weight_g, f.weight_tolerance_g):
        assert f.weight_g is not None and f.expected_weight_g is not None
        diff = f.weight_g - f.expected_weight_g
        hint = "empty box or a lighter item swapped in?" if diff < 0 else "something else in the box?"
        fire("weight_mismatch", f"{weight_message(f.weight_g, f.expected_weight_g, f.weight_tolerance_g)}: "
             f"{abs(diff):,} g {'light' if diff < 0 else 'heavy'} ({hint})",
             weight_g=f.weight_g, expected_g=f.expected_weight_g, tolerance_g=f.weight_tolerance_g)
    for result, message in f.flagged_scans:
        code = result if result in SCAN_RESULTS else "not_on_order"
        fire(code, message, result=result)
    graded_f = [u.sku for u in f.units if u.grade == "F"]
    if f.pays and graded_f:
        fire("grade_f", f"{len(graded_f)} unit(s) graded F (unsellable or not the item) and refunded: "
             f"{', '.join(graded_f)}", units=graded_f)
    if f.pays and not f.within_window:
        fire("outside_window", f"refund asked for on day {f.days_since_delivery} after delivery, "
             f"the return window is {f.window_days} days", days_since_delivery=f.days_since_delivery,
             window_days=f.window_days)
    if f.missing_units_refunded:
        fire("refund_for_missing_items", f"{f.missing_units_refunded} unit(s) refunded that were not in the parcel",
             units=f.missing_units_refunded)
    if f.parcel_received and f.units_scanned < f.units_declared:
        fire("overstated_quantity", f"customer declared {f.units_declared} unit(s), "
             f"{f.units_scanned} {'was' if f.units_scanned == 1 else 'were'} in the parcel",
             declared=f.units_declared, scanned=f.units_scanned)

    rule = rules.signals["return_rate"]
    if f.customer_returns >= rule["min_returns"] and f.customer_orders and f.all_orders:
        mine = f.customer_returns / f.customer_orders
        everyone = f.all_returns / f.all_orders
        if mine >= rule["times_all_customers"] * everyone:
            fire("return_rate", f"customer returned {f.customer_returns} of {f.customer_orders} orders in the last "
                 f"12 months ({_pct(f.customer_returns, f.customer_orders)}); all customers "
                 f"{_pct(f.all_returns, f.all_orders)}", returns=f.customer_returns, orders=f.customer_orders,
                 all_returns=f.all_returns, all_orders=f.all_orders)
    if f.customer_claims >= rules.param("customer_claims", "at_least"):
        fire("customer_claims", f"customer made {f.customer_claims} delivery claims in the last 12 months "
             f"(at {rules.param('customer_claims', 'at_least')} or more this is flagged)", claims=f.customer_claims)
    if f.address_claims >= rules.param("address_claims", "at_least"):
        fire("address_claims", f"{f.address_claims} delivery claims in the last 12 months on orders to this "
             f"delivery address, from any account", claims=f.address_claims)
    linked = f.linked_by_address + f.linked_by_phone + f.linked_by_payment
    if linked >= rules.param("linked_accounts", "at_least"):
        parts = [f"{n} other account(s) share the {what}" for n, what in
                 ((f.linked_by_address, "delivery address"), (f.linked_by_phone, "phone number"),
                  (f.linked_by_payment, "payment card (token)")) if n]
        fire("linked_accounts", "; ".join(parts), by_address=f.linked_by_address, by_phone=f.linked_by_phone,
             by_payment=f.linked_by_payment)
    if f.return_started_at and (f.delivered_at is None or f.return_started_at < f.delivered_at):
        when = _day(f.return_started_at)
        fire("before_delivery", f"return started on {when}, before the parcel was delivered"
             + (f" ({_day(f.delivered_at)})" if f.delivered_at else " (no delivery is recorded)"),
             return_started_at=f.return_started_at, delivered_at=f.delivered_at)
    limit = rules.param("high_order_value", "amount").get(f.currency)
    if limit is not None and f.order_value_minor >= limit:
        fire("high_order_value", f"order value {_money(f.order_value_minor, f.currency)} is at or above "
             f"{_money(limit, f.currency)}", order_value_minor=f.order_value_minor, limit_minor=limit)
    worn = [u.sku for u in f.units if u.category in rules.param("wardrobing", "categories")
            and u.tags_attached is False and u.signs_of_use is True]
    if f.pays and worn:
        fire("wardrobing", f"{len(worn)} {'unit' if len(worn) == 1 else 'units'} of clothing came back without "
             f"tags and with signs of use (worn, then returned?): {', '.join(worn)}", units=worn)
    if f.account_age_days is not None and f.account_age_days <= rules.param("new_account", "days"):
        fire("new_account", f"account opened {f.account_age_days} day(s) before the order",
             account_age_days=f.account_age_days)
    if f.channel == "in_store" and f.order_found_by == "search":
        fire("in_store_without_order", "in-store return without a receipt or order code: the order was found by "
             "searching the customer's details", order_found_by=f.order_found_by)
    if f.pays and f.refund_method not in (None, "original_payment", "store_credit"):
        fire("other_refund_method", f"refund to {f.refund_method.replace('_', ' ')}, not to the original payment",
             refund_method=f.refund_method)
    rule = rules.signals["clerk_overrides"]
    if f.clerk_decisions >= rule["min_decisions"] and f.clerk_overrides * 100 >= rule["rate_pct"] * f.clerk_decisions:
        fire("clerk_overrides", f"{f.clerk_name or 'the clerk'} overrode the policy's proposal in {f.clerk_overrides} "
             f"of {f.clerk_decisions} decisions in the last {CLERK_DAYS} days "
             f"({_pct(f.clerk_overrides, f.clerk_decisions)}; flagged from {rule['rate_pct']} %)",
             overrides=f.clerk_overrides, decisions=f.clerk_decisions)
    rule = rules.signals["clerk_no_receipt_refunds"]
    if (f.clerk_in_store_refunds >= rule["min_refunds"]
            and f.clerk_no_receipt_refunds * 100 >= rule["rate_pct"] * f.clerk_in_store_refunds):
        fire("clerk_no_receipt_refunds", f"{f.clerk_name or 'the clerk'} refunded {f.clerk_no_receipt_refunds} of "
             f"{f.clerk_in_store_refunds} in-store returns without a receipt in the last {CLERK_DAYS} days "
             f"({_pct(f.clerk_no_receipt_refunds, f.clerk_in_store_refunds)}; flagged from {rule['rate_pct']} %)",
             no_receipt=f.clerk_no_receipt_refunds, in_store=f.clerk_in_store_refunds)

    score = min(100, sum(s.weight for s in out))
    outcome = ("auto" if score < rules.review_at_or_above
               else "suggest_deny" if score >= rules.suggest_deny_at_or_above else "review")
    return Assessment(score, out, outcome)
