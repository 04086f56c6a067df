"""Tracking numbers: every test number the vendored tracking_number_data spec publishes, our own
carriers and IMpb handling, and fuzzing for "never raises, never calls a bad number valid"."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.tracking import (
    SPEC_COURIERS, TrackingMatch, best_tracking, expected_check_digit, formats, match_tracking, normalize,
    to_python_regex,
)

DATA = resources.files("console") / "tracking_data"
SPEC = {code: json.loads((DATA / f"{code}.json").read_text(encoding="utf-8")) for code in SPEC_COURIERS}
FORMAT = {(f.carrier, f.service): f for f in formats()}


def _spec_numbers(kind: str) -> list[pytest.param]:
    return [pytest.param(code, fmt["name"], number, id=f"{code}|{fmt['name']}|{number.strip()}")
            for code, courier in SPEC.items() for fmt in courier["tracking_numbers"]
            for number in fmt.get("test_numbers", {}).get(kind, ())]


VALID_SPEC_NUMBERS = _spec_numbers("valid")
INVALID_SPEC_NUMBERS = _spec_numbers("invalid")


def _s10_check_digit(serial: str) -> int:
    """Independent UPU S10 check digit: weights 8 6 4 2 3 5 9 7, mod 11, 10 -> 0 and 11 -> 5."""
    r = sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True)) % 11
    return {0: 5, 1: 0}.get(r, 11 - r)


def _valid_for(text: str, carrier: str, service: str | None = None) -> list[TrackingMatch]:
    return [m for m in match_tracking(text) if m.valid and m.carrier == carrier
            and (service is None or m.service == service)]


# --- the vendored data -----------------------------------------------------------------------------

PINNED_SHA256 = {  # the files exactly as copied from upstream; see console/tracking_data/README.md
    "LICENSE": "034d04308dece297c2c09839df0683845237e78b81a1eccf57843390861a78ef",
    "dhl.json": "070569222eb9af227947d64112ae1266774dcfb60f815c0fda0d426296c1befb",
    "fedex.json": "4b34c8de6deb932c1561b0a22324835723cf90c65b7078843323a20a634c550b",
    "s10.json": "0042cd427bcb3418f7541dda9e1812481e5520415e76986aa4a0679f7f119053",
    "ups.json": "b266efb5df196d8b9528212d3fe67cf9aecb70b5e940afebcca2524ef2520fd0",
    "usps.json": "24f8b954fdde173e3eeb894b1faad5de16eb55855519bf703151994ecc6e2390",
}


@pytest.mark.parametrize("name", sorted(PINNED_SHA256))
def test_vendored_files_are_unchanged(name: str) -> None:
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == PINNED_SHA256[name]


def test_licence_and_provenance_ship_with_the_data() -> None:
    licence = (DATA / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Copyright (c) 2017 Jeff Keen" in licence
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "jkeen/tracking_number_data" in readme and "MIT" in readme


def test_every_vendored_format_is_loaded_in_file_order() -> None:
    for code, courier in SPEC.items():
        loaded = [f.service for f in formats() if f.carrier == code]
        assert loaded == [fmt["name"] for fmt in courier["tracking_numbers"]]
        assert {f.carrier_name for f in formats() if f.carrier == code} == {courier["name"]}
    assert [f.carrier for f in formats()][-2:] == ["yamato", "sagawa"]


def test_the_spec_publishes_test_numbers() -> None:
    assert len(VALID_SPEC_NUMBERS) > 80 and len(INVALID_SPEC_NUMBERS) > 40


@pytest.mark.parametrize(("code", "service", "number"), VALID_SPEC_NUMBERS)
def test_spec_valid_number_is_valid_for_its_format(code: str, service: str, number: str) -> None:
    found = _valid_for(number, code, service)
    assert found, f"{number!r} not valid as {service}: {match_tracking(number)}"
    m = found[0]
    routing = ("routing_application_id", "destination_zip", "destination_zip_plus4")
    prefix = "".join(m.details.get(k, "") for k in routing) if "routing_application_id" in m.details else ""
    assert normalize(number) == prefix + m.value  # separators and a 420 + ZIP routing prefix are all that go


@pytest.mark.parametrize(("code", "service", "number"), INVALID_SPEC_NUMBERS)
def test_spec_invalid_number_is_not_valid_for_its_format(code: str, service: str, number: str) -> None:
    assert not _valid_for(number, code, service), match_tracking(number)


# --- specific carriers ------------------------------------------------------------------------------

def test_ups() -> None:
    best = best_tracking("1Z5R89390357567127")
    assert best is not None and best.valid and best.reason is None
    assert (best.carrier, best.carrier_name, best.service, best.value) == ("ups", "UPS", "UPS", "1Z5R89390357567127")
    assert best.details["service_type"] == "03"
    assert best.details["service_type_name"] == "UPS United States Ground"
    assert best_tracking("1z5r8939-0357 5671 27") == best  # typed: lower case, dashes, spaces
    wrong = best_tracking("1Z5R89390357567128")
    assert wrong is not None and not wrong.valid and wrong.reason == "check digit is 8, expected 7"


@pytest.mark.parametrize(("service", "country", "operator"), [
    ("EJ", "JP", "Japan Post"), ("RR", "GB", "Royal Mail Group plc"), ("CP", "US", "United States Postal Service"),
])
def test_s10(service: str, country: str, operator: str) -> None:
    serial = "98765432"
    check = _s10_check_digit(serial)
    number = f"{service}{serial}{check}{country}"
    best = best_tracking(number)
    assert best is not None and best.valid, match_tracking(number)
    assert (best.carrier, best.service, best.value) == ("s10", "S10", number)
    assert best.details["country_code"] == country and best.details["courier_name"] == operator

    wrong = (check + 1) % 10
    bad = best_tracking(f"{service}{serial}{wrong}{country}")
    assert bad is not None and not bad.valid and bad.carrier == "s10"
    assert bad.reason == f"check digit is {wrong}, expected {check}"


def test_s10_unknown_country_is_invalid_with_a_reason() -> None:
    serial = "12345678"
    bad = best_tracking(f"EJ{serial}{_s10_check_digit(serial)}XX")
    assert bad is not None and not bad.valid
    assert bad.reason is not None and "XX" in bad.reason and "courier" in bad.reason


def test_s10_independent_check_digit_agrees_with_the_spec_example() -> None:
    assert _s10_check_digit("12345678") == 5  # RB123456785GB in the spec


@pytest.mark.parametrize("body", ["12345678901", "40000000001", "31415926535", "00000000000", "99999999999"])
def test_yamato_and_sagawa(body: str) -> None:
    number = body + str(int(body) % 7)
    matches = match_tracking(number)
    valid = {m.carrier: m for m in matches if m.valid}
    assert {"yamato", "sagawa"} <= set(valid), matches
    assert valid["yamato"].carrier_name == "Yamato Transport" and valid["sagawa"].carrier_name == "Sagawa Express"
    assert valid["yamato"].service == "Yamato Transport (12)" and valid["yamato"].value == number
    # 12 digits is also the FedEx Express shape: both readings are reported, valid or not
    assert any(m.carrier == "fedex" and m.service == "FedEx Express (12)" for m in matches)

    wrong = body + str((int(body) % 7 + 1) % 7)
    assert not _valid_for(wrong, "yamato") and not _valid_for(wrong, "sagawa")
    reasons = {m.carrier: m.reason for m in match_tracking(wrong)}
    assert reasons["yamato"] == f"check digit is {wrong[-1]}, expected {int(body) % 7}"


@pytest.mark.parametrize("last", "789")
def test_mod7_check_digit_can_never_be_seven_to_nine(last: str) -> None:
    assert not _valid_for("1234567890" + "1" + last, "yamato")


def test_fedex_12_and_yamato_both_valid_are_both_reported() -> None:
    body = next(b for b in (f"{n:011d}" for n in range(10**10, 10**10 + 5000))
                if str(int(b) % 7) == expected_check_digit(FORMAT["fedex", "FedEx Express (12)"].checksum or {}, b))
    number = body + str(int(body) % 7)
    assert {m.carrier for m in match_tracking(number) if m.valid} >= {"fedex", "yamato", "sagawa"}


IMPB_N = "9400111206206406260787"  # spec: USPS IMpb N
IMPB_C = "9261292700768711948021"  # spec: USPS IMpb C (22 digits)


@pytest.mark.parametrize("base", [IMPB_N, IMPB_C])
@pytest.mark.parametrize(("routing", "zip5", "plus4"), [
    ("42012345", "12345", None), ("42012345\x1d", "12345", None),
    ("420123456789", "12345", "6789"), ("420123456789\x1d", "12345", "6789"),
    ("420 12345 ", "12345", None),
])
def test_usps_impb_routing_prefix_is_stripped(base: str, routing: str, zip5: str, plus4: str | None) -> None:
    found = _valid_for(routing + base, "usps")
    assert found, match_tracking(routing + base)
    best = found[0]
    assert best.value == base and best.details["destination_zip"] == zip5
    assert best.details.get("destination_zip_plus4") == plus4
    assert best_tracking(routing + base) == best
    assert _valid_for(best.value, "usps", best.service)  # the stripped number reads on its own


def test_a_recognised_impb_routing_prefix_outranks_a_fedex_34_reading() -> None:
    # an IMpb N number whose last 14 digits also pass FedEx Express (34)'s check digit
    bodies = (f"940011120620{n:09d}" for n in range(1000))
    base = next(n for n in (b + str(_gs1(b)) for b in bodies) if _valid_for("420123456789" + n, "fedex"))
    scan = "420123456789\x1d" + base
    valid = [m for m in match_tracking(scan) if m.valid]
    assert {m.carrier for m in valid} == {"usps", "fedex"}
    assert valid[0].carrier == "usps" and valid[0].value == base


def _gs1(body: str) -> int:
    return -sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body))) % 10


def test_usps_impb_with_prefix_and_wrong_check_digit_says_so() -> None:
    bad = IMPB_N[:-1] + "8"
    found = [m for m in match_tracking("42012345\x1d" + bad) if m.carrier == "usps"]
    assert found and not any(m.valid for m in found)
    assert found[0].value == bad and found[0].reason == "check digit is 8, expected 7"


def test_usps_26_digit_impb_with_zip5_and_the_spec_420_examples() -> None:
    assert _valid_for("420 12345 " + "92748931507708513018050063", "usps", "USPS IMpb C")[0].value == \
        "92748931507708513018050063"
    legacy = _valid_for("420 22153 9101026837331000039521", "usps", "USPS Legacy")[0]
    assert legacy.value == "9101026837331000039521" and legacy.details["destination_zip"] == "22153"


FEDEX_LENGTHS_ASKED = (12, 15, 20, 22, 34)
FEDEX_LENGTHS_NOT_IN_SPEC = {20}  # the v2.0.0 spec moved the 20/22-digit SmartPost numbers to USPS IMpb C


def _fedex_spec_valid_by_length() -> dict[int, list[tuple[str, str]]]:
    by_length: dict[int, list[tuple[str, str]]] = {}
    for fmt in SPEC["fedex"]["tracking_numbers"]:
        for number in fmt["test_numbers"]["valid"]:
            by_length.setdefault(len(normalize(number)), []).append((fmt["name"], number))
    return by_length


@pytest.mark.parametrize("length", [n for n in FEDEX_LENGTHS_ASKED if n not in FEDEX_LENGTHS_NOT_IN_SPEC])
def test_fedex_length_has_a_valid_spec_number(length: int) -> None:
    numbers = _fedex_spec_valid_by_length().get(length)
    assert numbers
    for service, number in numbers:
        assert _valid_for(number, "fedex", service)


def test_fedex_lengths_the_spec_does_not_cover() -> None:
    covered = set(_fedex_spec_valid_by_length())
    assert {n for n in FEDEX_LENGTHS_ASKED if n not in covered} == FEDEX_LENGTHS_NOT_IN_SPEC
    assert covered >= {12, 15, 18, 22, 32, 34}


def test_dhl_express() -> None:
    for number in ("3318810025", "73891051146", "8487135506"):
        found = _valid_for(number, "dhl", "DHL Express")
        assert found and found[0].carrier_name == "DHL" and found[0].value == number
    bad = "3318810034"
    expected = int(bad[:-1]) % 7
    miss = [m for m in match_tracking(bad) if m.service == "DHL Express"]
    assert miss and not miss[0].valid and miss[0].reason == f"check digit is 4, expected {expected}"


def test_formats_without_a_check_digit_say_so_and_rank_last() -> None:
    piece = best_tracking("JJD0099999999")
    assert piece is not None and piece.valid and piece.details["checksum"] == "none"
    ecommerce = best_tracking("GM2951173225174494")
    assert ecommerce is not None and ecommerce.service == "DHL E-Commerce"
    assert ecommerce.details["checksum"] == "none"
    assert FORMAT["dhl", "DHL E-Commerce (14)"].checksum is None
    assert FORMAT["dhl", "DHL Express"].checksum is not None


# --- input handling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "", " ", "\x1d", "1Z5R89390357567127\x00", "1Z5R8939\u00a00357567127", "１Z5R89390357567127",
    "1Z5R89390357567127!", "日本郵便", "1" * 100_000, "1Z5R89390357567127" + " " * 300, "\ud800",
])
def test_not_a_tracking_number(text: str) -> None:
    assert match_tracking(text) == ()
    assert best_tracking(text) is None


def test_rejects_long_and_odd_input_fast() -> None:
    long = "9" * 100_000
    start = time.perf_counter()
    for _ in range(1000):
        assert match_tracking(long) == ()
    assert time.perf_counter() - start < 1.0
    assert match_tracking(None) == ()  # type: ignore[arg-type]
    assert match_tracking(12345) == ()  # type: ignore[arg-type]


def test_scanner_noise_around_a_number_is_ignored() -> None:
    assert _valid_for("1Z5R89390357567127\r\n", "ups") and _valid_for("\t986578788855 ", "fedex")


def test_tracking_match_shape() -> None:
    assert [f.name for f in dataclasses.fields(TrackingMatch)] == \
        ["carrier", "carrier_name", "service", "value", "valid", "reason", "details"]
    m = best_tracking("1Z5R89390357567127")
    assert m is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.valid = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.details["carrier"] = "x"  # type: ignore[index]
    assert hash(m) == hash(best_tracking("1Z5R89390357567127"))


# --- regex translation and the extra checksums -----------------------------------------------------

@pytest.mark.parametrize(("spec", "python", "flags"), [
    (r"\s*(?<A>[0-9]\s*){2}(?<=1)(?<!2)", r"(?P<A>[0-9]){2}(?<=1)(?<!2)", 0),
    (["(?<X>a)", "(?<X>b)"], "(?P<X>a)(?P<X__2>b)", 0),
    (r"\h[\h]\z", r"[0-9A-Fa-f][0-9A-Fa-f]\Z", 0),
    (r"ab(?i)c[\s*]", r"abc[\s*]", re.IGNORECASE),
    (r"(?>a++)b*+", r"(?>a++)b*+", 0),
    (r"(?<X>a)\k<X>(?m)", r"(?P<X>a)(?P=X)", re.DOTALL),
])
def test_regex_translation(spec: str | list[str], python: str, flags: int) -> None:
    assert to_python_regex(spec) == (python, flags)
    re.compile(python, flags)


@pytest.mark.parametrize("spec", [r"\K", r"\p{Alpha}", r"[[:alpha:]]", r"a\G", "(?~abc)", "abc\\"])
def test_regex_translation_refuses_what_python_cannot_do(spec: str) -> None:
    with pytest.raises(ValueError):
        to_python_regex(spec)


def test_spec_patterns_with_spaces_agree_with_the_whitespace_free_translation() -> None:
    for (code, service, number) in (p.values for p in VALID_SPEC_NUMBERS + INVALID_SPEC_NUMBERS):
        spec_fmt = next(f for f in SPEC[code]["tracking_numbers"] if f["name"] == service)
        source, flags = to_python_regex(spec_fmt["regex"], drop_whitespace=False)
        faithful = re.compile(source, flags | re.ASCII)
        ours = FORMAT[code, service].regex
        assert bool(faithful.fullmatch(number)) == bool(ours.fullmatch(normalize(number))), (service, number)


def test_mod10_reverse_counts_positions_from_the_right() -> None:
    # Every IMpb serial in the spec has an odd length, where counting from either end is the same;
    # an even-length body (the GTIN-13 4006381333931) tells the two apart.
    gs1 = {"name": "mod10", "modulo": 10, "evens_multiplier": 3, "odds_multiplier": 1}
    assert expected_check_digit({**gs1, "reverse": True}, "400638133393") == "1"
    assert expected_check_digit({**gs1, "reverse": False}, "400638133393") == "7"


def test_checksums_not_used_by_the_vendored_files() -> None:
    assert expected_check_digit({"name": "luhn"}, "7992739871") == "3"
    assert expected_check_digit({"name": "mod_37_36"}, "A12425GABC1234002") == "M"  # ISO 7064 example
    assert expected_check_digit({"name": "no_such_rule"}, "123") is None
    assert expected_check_digit({"name": "sum_product_with_weightings_and_modulo", "weightings": [1]}, "1") is None


# --- fuzzing ---------------------------------------------------------------------------------------

def _rank(m: TrackingMatch) -> int:
    if not m.valid:
        return 3
    if FORMAT[m.carrier, m.service].checksum is None:
        return 2
    return 0 if "routing_application_id" in m.details else 1


def _assert_sound(text: str) -> None:
    matches = match_tracking(text)
    assert isinstance(matches, tuple)
    assert best_tracking(text) == (matches[0] if matches else None)
    ranks = [_rank(m) for m in matches]
    assert ranks == sorted(ranks)
    for m in matches:
        fmt = FORMAT[m.carrier, m.service]
        assert re.fullmatch(r"[0-9A-Z]+", m.value), m
        if not m.valid:
            assert m.reason
            continue
        assert m.reason is None
        if fmt.checksum is not None:
            serial = fmt.prepare_serial(m.details["serial_number"])
            assert expected_check_digit(fmt.checksum, serial) == m.details["check_digit"], m
        for name in fmt.required:
            lookup = next(lk for lk in fmt.lookups if lk.name == name)
            assert lookup.find(m.details[re.sub(r"(?<=[a-z])(?=[A-Z])", "_", lookup.group).lower()]) is not None
        assert any(v.valid and v.service == m.service and v.value == m.value for v in match_tracking(m.value))


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    _assert_sound(text)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_fuzz_binary_ish(text: str) -> None:
    _assert_sound(text)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ -\x1d", min_size=8, max_size=48)
       | st.text(alphabet="0123456789", min_size=10, max_size=42)
       | st.builds(lambda prefix, rest: prefix + rest,
                  st.sampled_from(["1Z", "420", "9400", "92", "GM", "96", "RB", "J", "420123456789\x1d"]),
                  st.text(alphabet="0123456789", min_size=8, max_size=38)))
def test_fuzz_tracking_shaped(text: str) -> None:
    _assert_sound(text)
