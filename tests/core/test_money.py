"""Money is integer minor units with a currency; splits always add up exactly."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.money import CurrencyMismatch, Money, allocate, percent_of, split_even


def test_money_refuses_floats_and_mixed_currencies() -> None:
    with pytest.raises(TypeError):
        Money(10.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(1, "XXX")
    with pytest.raises(CurrencyMismatch):
        Money(1, "USD") + Money(1, "JPY")


@pytest.mark.parametrize(("money", "text"), [
    (Money(123450, "USD"), "USD 1,234.50"), (Money(1200, "JPY"), "JPY 1,200"),
    (Money(-5, "EUR"), "-EUR 0.05"), (Money(0, "GBP"), "GBP 0.00"),
])
def test_format(money: Money, text: str) -> None:
    assert money.format() == text


def test_allocate_largest_remainder_is_deterministic() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [0, 0]) == [5, 5]
    assert allocate(-7, [1, 1]) == [-4, -3]
    assert split_even(1001, 3) == [334, 334, 333]
    assert percent_of(595, 1000) == 60  # 59.5 rounds half up
    with pytest.raises(ValueError):
        allocate(1, [])


@given(st.integers(min_value=-10**12, max_value=10**12),
       st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30))
def test_allocate_sums_exactly_and_stays_proportional(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    if sum(weights):
        for part, weight in zip(parts, weights):
            exact = total * weight / sum(weights)
            assert abs(part - exact) < 1 + 1e-9 * abs(exact)
