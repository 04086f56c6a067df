"""Money as integer minor units with an ISO 4217 currency; no float ever touches an amount."""
from __future__ import annotations

from dataclasses import dataclass

# Minor-unit exponents for the currencies the console trades in (ISO 4217).
MINOR_UNITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CNY": 2, "JPY": 0, "KRW": 0}


class CurrencyMismatch(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError(f"money must be integer minor units, got {type(self.minor).__name__}")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def max(self, other: Money) -> Money:
        return other if self <= other else self

    def format(self) -> str:
        """Human form for screens and receipts, e.g. 'USD 1,234.50' or 'JPY 1,200'."""
        exp = MINOR_UNITS[self.currency]
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**exp) if exp else (abs(self.minor), 0)
        text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
        return f"{sign}{self.currency} {text}"

    def __str__(self) -> str:
        return self.format()


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights`` so the parts sum exactly to it.

    Largest-remainder method; ties go to the earlier part, so the split is deterministic and
    the same order line always gets the same share of an order-level discount.
    """
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero amount over no parts")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("allocation weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [magnitude * w // weight_sum for w in weights]
    remainders = [(magnitude * w % weight_sum, -i) for i, w in enumerate(weights)]
    left = magnitude - sum(shares)
    for _, neg_i in sorted(remainders, reverse=True)[:left]:
        shares[-neg_i] += 1
    return [sign * s for s in shares]


def split_even(total: int, parts: int) -> list[int]:
    """``total`` over ``parts`` equal units (e.g. a line's paid amount per unit)."""
    return allocate(total, [1] * parts)


def percent_of(amount: int, basis_points: int) -> int:
    """``basis_points`` (1/100 of a percent) of ``amount``, rounded half up, in integers only."""
    return (amount * basis_points + 5000) // 10000
