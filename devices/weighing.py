"""From a scale's exact reading to what a parcel receipt records: whole grams and a division."""
from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from devices.scale_protocols import WeightReading


def whole_grams(grams: Decimal) -> int:
    """Parcels are recorded in whole grams; the scale's exact reading rounds half to even."""
    return int(grams.to_integral_value(rounding=ROUND_HALF_EVEN))


def division_grams(reading: WeightReading, configured_g: int | None = None) -> int | None:
    """The division for the weight tolerance: the configured one, else the step the reply shows
    (rounded up to a whole gram, so the tolerance is never narrower than the scale can tell)."""
    if configured_g:
        return configured_g
    if reading.division_g:
        return max(1, int(reading.division_g.to_integral_value(rounding=ROUND_CEILING)))
    return None
