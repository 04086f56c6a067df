"""The keyboard-wedge detector, fed characters with times as a scanner or a person would type them."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.barcodes import interpret
from devices.wedge import GS, Deliver, Retract, Scan, WedgeConfig, WedgeDetector, replay, scans, typed_text


def keys(text: str, gap_ms: float, start: float = 1000.0) -> list[tuple[str, float]]:
    return [(ch, start + i * gap_ms) for i, ch in enumerate(text)]


def test_a_burst_at_2ms_is_one_scan_and_types_nothing() -> None:
    actions = replay(WedgeDetector(), keys("R-0001234X\r", 2))
    assert scans(actions) == ["R-0001234X"]
    assert typed_text(actions) == ""


def test_a_person_typing_at_120ms_gets_every_key_and_no_scan() -> None:
    actions = replay(WedgeDetector(), keys("SO-1000001\r", 120))
    assert scans(actions) == []
    assert typed_text(actions) == "SO-1000001\r"


def test_a_slow_scanner_at_40ms_is_still_a_scanner() -> None:
    actions = replay(WedgeDetector(WedgeConfig(max_gap_ms=50)), keys("4006381333931\r", 40))
    assert scans(actions) == ["4006381333931"]


def test_a_gap_threshold_below_the_scanner_speed_turns_it_into_typing() -> None:
    actions = replay(WedgeDetector(WedgeConfig(max_gap_ms=30)), keys("4006381333931\r", 40))
    assert scans(actions) == []
    assert typed_text(actions) == "4006381333931\r"


def test_a_dropped_character_fails_the_check_digit_and_asks_for_a_rescan() -> None:
    dropped = "400638133393"  # EAN-13 4006381333931 with its last digit lost on the wire
    [code] = scans(replay(WedgeDetector(), keys(dropped + "\r", 2)))
    reading = interpret(code)
    assert not reading.valid
    assert "rescan" in (reading.reason or "")
    rma_dropped = "R-000124X"  # R-0001234X with a digit lost
    [code] = scans(replay(WedgeDetector(), keys(rma_dropped + "\r", 2)))
    assert not interpret(code).valid


def test_stx_etx_framing_is_stripped_and_gs_aliases_map_to_ascii_29() -> None:
    cfg = WedgeConfig(prefix="\x02", suffix="\x03", gs_aliases=(GS, "|"))
    actions = replay(WedgeDetector(cfg), keys("\x02]C10109506000134352|10ABC\x03", 3))
    assert scans(actions) == [f"]C10109506000134352{GS}10ABC"]
    assert typed_text(actions) == ""


def test_an_aim_identifier_and_crlf_suffix() -> None:
    cfg = WedgeConfig(suffix="\r\n")
    actions = replay(WedgeDetector(cfg), keys("]E04006381333931\r\n", 2))
    assert scans(actions) == ["]E04006381333931"]


def test_without_a_suffix_a_scan_ends_by_silence() -> None:
    det = WedgeDetector(WedgeConfig(suffix=""))
    actions = []
    for ch, t in keys("1Z5R89390357567127", 2):
        actions += det.feed(ch, t)
    assert scans(actions) == []
    deadline = det.deadline()
    assert deadline is not None
    actions += det.tick(deadline)
    assert scans(actions) == ["1Z5R89390357567127"]


def test_a_fast_short_burst_is_typing() -> None:
    actions = replay(WedgeDetector(WedgeConfig(min_length=4)), keys("12\r", 5))
    assert scans(actions) == []
    assert typed_text(actions) == "12\r"


def test_eager_delivery_types_the_first_key_at_once_and_takes_it_back_for_a_scan() -> None:
    det = WedgeDetector()
    first = det.feed("L", 0.0, eager=True)
    assert first == [Deliver("L")]
    rest = []
    for ch, t in keys("PN0000000421\r", 2, start=2):
        rest += det.feed(ch, t, eager=True)
    assert rest[0] == Retract(1)
    assert isinstance(rest[1], Scan) and rest[1].code == "LPN0000000421"
    assert typed_text(first + rest) == ""


def test_eager_typing_goes_through_unchanged() -> None:
    actions = replay(WedgeDetector(), keys("abc", 150), eager=True)
    assert typed_text(actions) == "abc"
    assert all(not isinstance(a, Retract) for a in actions)


def test_enter_alone_is_passed_at_once() -> None:
    assert WedgeDetector().feed("\r", 5.0) == [Deliver("\r")]


def test_two_scans_back_to_back_and_typing_between() -> None:
    seq = keys("R-0001234X\r", 2, 0) + keys("ab", 200, 500) + keys("4006381333931\r", 2, 1000)
    actions = replay(WedgeDetector(), seq)
    assert scans(actions) == ["R-0001234X", "4006381333931"]
    assert typed_text(actions) == "ab"


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        WedgeConfig(max_gap_ms=0)
    with pytest.raises(ValueError):
        WedgeConfig(min_length=0)


_chars = st.sampled_from(list("ab1Z9-\r\x02\x03") + [GS])
_gaps = st.sampled_from([0.5, 2.0, 40.0, 49.0, 51.0, 120.0, 400.0])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_chars, _gaps), max_size=60), st.booleans(),
       st.sampled_from([WedgeConfig(), WedgeConfig(suffix=""), WedgeConfig(prefix="\x02", suffix="\x03")]))
def test_no_character_is_lost_or_invented(seq: list[tuple[str, float]], eager: bool, cfg: WedgeConfig) -> None:
    t = 0.0
    timed = []
    for ch, gap in seq:
        t += gap
        timed.append((ch, t))
    actions = replay(WedgeDetector(cfg), timed, eager=eager)
    typed = typed_text(actions)
    scanned = scans(actions)
    # Every character fed ends up typed or inside a scan (framing characters are removed).
    framing = sum(len(cfg.prefix) + len(cfg.suffix) for _ in scanned)
    assert len(typed) + sum(len(s) for s in scanned) + framing == len(seq)
    assert all(len(s) >= cfg.min_length for s in scanned)
