"""The retailer's returns policy, read from a TOML file; every decision records its version."""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from console.errors import EnvironmentProblem
from console.risk import RiskRules, parse_rules
from db.models import GRADES

DEFAULT_POLICY_NAME = "default_policy.toml"


@dataclass(frozen=True)
class WindowCheck:
    days_since_delivery: int
    window_days: int
    within: bool
    free_shipping_days: int
    free_shipping: bool

    def describe(self) -> str:
        state = "within" if self.within else "outside"
        return f"day {self.days_since_delivery} of a {self.window_days}-day window ({state})"


@dataclass(frozen=True)
class Policy:
    version: str
    default_window_days: int
    category_window_days: dict[str, int]
    tier_extra_days: dict[str, int]
    free_return_days: int
    return_fee: dict[str, int]
    fee_waived_for_reasons: frozenset[str]
    refund_shipping_for_reasons: frozenset[str]
    restocking_default: dict[str, int]
    restocking_categories: dict[str, dict[str, int]]
    store_credit_bonus_bp: int
    keep_it_max_unit_paid: dict[str, int]
    review_at_or_above: int
    always_review_amount: dict[str, int]
    weight_tolerance_bp: int
    weight_tolerance_min_g: int
    packaging_g: int
    reasons: dict[str, str]
    risk: RiskRules = field(default_factory=RiskRules)
    source: str = field(default="", compare=False, repr=False)

    @property
    def sha256(self) -> str:
        """The fingerprint of the policy's text: what central compares with the version it published."""
        return hashlib.sha256(self.source.encode()).hexdigest()

    # --- windows -------------------------------------------------------------------------
    def window_days(self, category: str, tier: str) -> int:
        base = self.category_window_days.get(category, self.default_window_days)
        return base + self.tier_extra_days.get(tier, 0)

    def check_window(self, delivered_at: datetime, now: datetime, category: str, tier: str,
                     tz: ZoneInfo) -> WindowCheck:
        """Calendar days in the station's zone: delivered at 23:50 on the 1st, the 31st is day 30."""
        days = days_between(delivered_at, now, tz)
        window = self.window_days(category, tier)
        return WindowCheck(days, window, days <= window, self.free_return_days, days <= self.free_return_days)

    # --- fees ----------------------------------------------------------------------------
    def restocking_bp(self, category: str, grade: str) -> int:
        table = self.restocking_categories.get(category, self.restocking_default)
        return table.get(grade, self.restocking_default.get(grade, 0))

    def return_fee_for(self, currency: str) -> int:
        return self.return_fee.get(currency, 0)

    def review_amount(self, currency: str) -> int | None:
        return self.always_review_amount.get(currency)

    def weight_tolerance_g(self, expected_g: int, division_g: int | None = None) -> int:
        """The larger of two scale divisions and a percentage of the expected weight.

        Without a known division (a weight typed by hand) the policy's minimum stands in for it.
        """
        floor = 2 * division_g if division_g else self.weight_tolerance_min_g
        return max(floor, expected_g * self.weight_tolerance_bp // 10000)

    def reason_label(self, code: str) -> str:
        return self.reasons[code]


def days_between(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    return (_local_date(end, tz) - _local_date(start, tz)).days


def _local_date(moment: datetime, tz: ZoneInfo) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times must be aware")
    return moment.astimezone(tz).date()


def _int_map(raw: Any, where: str) -> dict[str, int]:
    if not isinstance(raw, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                            for v in raw.values()):
        raise ValueError(f"{where} must be a table of whole, non-negative numbers")
    return {str(k): int(v) for k, v in raw.items()}


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EnvironmentProblem(f"policy file {source} is not valid TOML: {exc}") from None
    try:
        window = raw.get("window", {})
        shipping = raw.get("shipping", {})
        restocking = raw.get("restocking", {})
        risk = raw.get("risk", {})
        reasons = raw.get("reasons", {})
        default_restock = _int_map(restocking.get("default", {g: 0 for g in GRADES}), "restocking.default")
        missing = [g for g in GRADES if g not in default_restock]
        if missing:
            raise ValueError(f"restocking.default lacks grades {', '.join(missing)}")
        if not reasons or not all(isinstance(v, str) for v in reasons.values()):
            raise ValueError("[reasons] must list at least one reason code with its label")
        version = raw["version"]
        if not isinstance(version, str) or not version:
            raise ValueError("version must be a non-empty string")
        return Policy(
            version=version,
            default_window_days=int(window.get("default_days", 30)),
            category_window_days=_int_map(window.get("categories", {}), "window.categories"),
            tier_extra_days=_int_map(window.get("tier_extra_days", {}), "window.tier_extra_days"),
            free_return_days=int(shipping.get("free_return_days", 14)),
            return_fee=_int_map(shipping.get("return_fee", {}), "shipping.return_fee"),
            fee_waived_for_reasons=frozenset(shipping.get("fee_waived_for_reasons", [])),
            refund_shipping_for_reasons=frozenset(shipping.get("refund_original_for_reasons", [])),
            restocking_default=default_restock,
            restocking_categories={k: _int_map(v, f"restocking.categories.{k}")
                                   for k, v in restocking.get("categories", {}).items()},
            store_credit_bonus_bp=int(raw.get("store_credit", {}).get("bonus_bp", 0)),
            keep_it_max_unit_paid=_int_map(raw.get("keep_it", {}).get("max_unit_paid", {}), "keep_it.max_unit_paid"),
            review_at_or_above=parse_rules(risk).review_at_or_above,
            always_review_amount=_int_map(risk.get("always_review_amount", {}), "risk.always_review_amount"),
            weight_tolerance_bp=int(risk.get("weight_tolerance_bp", 500)),
            weight_tolerance_min_g=int(risk.get("weight_tolerance_min_g", 50)),
            packaging_g=int(risk.get("packaging_g", 150)),
            reasons={str(k): v for k, v in reasons.items()},
            risk=parse_rules(risk),
            source=text,
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise EnvironmentProblem(f"policy file {source} is not usable: {detail}") from None


def load_policy(path: Path | None = None) -> Policy:
    if path is None:
        text = resources.files("console").joinpath(DEFAULT_POLICY_NAME).read_text(encoding="utf-8")
        return parse_policy(text, DEFAULT_POLICY_NAME)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(f"cannot read policy file {path}: {exc}") from None
    return parse_policy(text, str(path))
