"""The barcode interpreter: every code a returns desk meets, and everything else, without a crash."""
from __future__ import annotations

import io
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import cli
from console.barcodes import GS, KINDS, interpret, is_really_valid
from console.checkdigits import fedex12_check_digit, gs1_check_digit, mod7_check_digit
from console.codes import lpn, order_number, rma_number


def with_gs1_check(body: str) -> str:
    return body + str(gs1_check_digit(body))


def s10(prefix: str, serial8: str, country: str) -> str:
    """UPU S10 check digit, written out independently of the code under test."""
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    check = 11 - sum(int(d) * w for d, w in zip(serial8, weights)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"{prefix}{serial8}{check}{country}"


def upc_and_fedex_12() -> str:
    """A 12-digit string that is both a valid UPC-A and a valid FedEx Express number."""
    for n in range(10**10, 10**10 + 10_000):
        body = f"{n:011d}"
        if gs1_check_digit(body) == fedex12_check_digit(body):
            return body + str(gs1_check_digit(body))
    raise AssertionError("no such number in range")


# --- GS1 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, gtin14, fmt", [
    ("96385074", "00000096385074", "GTIN-8"),
    ("012345678905", "00012345678905", "GTIN-12"),
    ("4006381333931", "04006381333931", "GTIN-13"),
    ("10012345678902", "10012345678902", "GTIN-14"),
])
def test_gtins_normalize_to_gtin14(code: str, gtin14: str, fmt: str) -> None:
    r = interpret(code)
    assert (r.kind, r.value, r.valid, r.service) == ("gtin", gtin14, True, fmt)


def test_aim_ean_identifier_makes_a_12_digit_string_a_upc_not_a_fedex_number() -> None:
    code = upc_and_fedex_12()
    bare = interpret(code)
    assert bare.kind == "gtin" and bare.valid
    assert any(a.kind == "tracking" and a.carrier == "fedex" for a in bare.alternatives)  # ambiguous bare
    after_e0 = interpret("]E0" + code)
    assert (after_e0.kind, after_e0.symbology, after_e0.aim_id) == ("gtin", "EAN/UPC", "]E0")
    assert after_e0.alternatives == ()
    assert interpret("]E4" + "96385074").value == "00000096385074"


def test_a_misread_digit_in_a_gtin_is_invalid_and_says_rescan() -> None:
    r = interpret("]E04006381333932")
    assert r.kind == "gtin" and not r.valid and "expected 1" in (r.reason or "") and "rescan" in (r.reason or "")


@pytest.mark.parametrize("separator", [GS, "#", "^]"])
@pytest.mark.parametrize("aim", ["]C1", "]d2", "]Q3", ""])
def test_gs1_element_strings_with_every_fnc1_spelling(separator: str, aim: str) -> None:
    gtin = with_gs1_check("0950600013435")
    r = interpret(f"{aim}01{gtin}10ABC123{separator}17261231")
    assert (r.kind, r.value, r.valid) == ("gtin", gtin, True)
    assert r.details["ai_10"] == "ABC123" and r.details["ai_17"] == "261231"
    if aim:
        assert r.symbology in ("GS1-128", "GS1 DataMatrix", "GS1 QR Code")


def test_sscc_bare_and_in_gs1_128() -> None:
    sscc = with_gs1_check("10614141" + "123456789")
    assert (interpret(sscc).kind, interpret(sscc).valid) == ("sscc", True)
    r = interpret(f"]C100{sscc}")
    assert (r.kind, r.value, r.valid, r.symbology) == ("sscc", sscc, True, "GS1-128")
    bad = interpret(f"]C100{sscc[:-1]}{(int(sscc[-1]) + 1) % 10}")
    assert bad.kind == "sscc" and not bad.valid and "rescan" in (bad.reason or "")


def test_gs1_digital_link_from_a_qr_code() -> None:
    gtin = with_gs1_check("0950600013435")
    r = interpret(f"]Q1https://id.gs1.org/01/{gtin}/21/SER123")
    assert (r.kind, r.value, r.valid, r.service) == ("gtin", gtin, True, "GS1 Digital Link")
    assert r.details["ai_21"] == "SER123"
    web = interpret("https://example.com/returns?id=7")
    assert not web.valid and "web address" in (web.reason or "")


def test_broken_gs1_data_in_a_gs1_symbology_is_invalid() -> None:
    for broken in ("]C10112345", "]C1" + "17" + "261399", "]d2" + "X" * 10):  # short GTIN, 13th month, no AI
        r = interpret(broken)
        assert not r.valid and r.reason, broken


# --- carriers --------------------------------------------------------------------------------

def test_ups_and_a_misread_ups_number() -> None:
    r = interpret("]C01Z5R89390357567127")
    assert (r.kind, r.carrier, r.valid, r.value) == ("tracking", "ups", True, "1Z5R89390357567127")
    bad = interpret("1Z5R89390357567128")
    assert bad.kind == "tracking" and not bad.valid and "rescan" in (bad.reason or "")


def test_upu_s10_international_number() -> None:
    good = s10("EJ", "12345678", "JP")
    r = interpret(good)
    assert (r.kind, r.carrier, r.valid) == ("tracking", "s10", True)
    wrong = good[:10] + str((int(good[10]) + 1) % 10) + good[11:]
    assert not interpret(wrong).valid


def test_yamato_sagawa_12_digit_mod7() -> None:
    body = "12345678901"
    good = body + str(mod7_check_digit(body))
    r = interpret(good)
    readings = [r, *r.alternatives]
    assert {x.carrier for x in readings if x.kind == "tracking"} >= {"yamato", "sagawa"}
    wrong = body + str((mod7_check_digit(body) + 1) % 7)
    assert all(x.carrier not in ("yamato", "sagawa") for x in [interpret(wrong), *interpret(wrong).alternatives]
               if x.valid)


@pytest.mark.parametrize("separator", ["", GS])
@pytest.mark.parametrize("zip_code", ["37221", "372211234"])
def test_usps_impb_with_420_zip_routing(separator: str, zip_code: str) -> None:
    tracking = with_gs1_check("920559123456781234567")  # 22-digit IMpb: 92 + ... + check digit
    assert interpret(tracking).valid
    for aim in ("", "]C1"):
        r = interpret(f"{aim}420{zip_code}{separator}{tracking}")
        assert (r.kind, r.carrier, r.value, r.valid) == ("tracking", "usps", tracking, True), r
        assert r.details.get("destination_zip") == zip_code[:5]


# --- the console's own codes ------------------------------------------------------------------

def test_rma_lpn_order_and_serials() -> None:
    rma, plate, order = rma_number(1234), lpn(421), order_number(1000001)
    assert (interpret(rma).kind, interpret(rma).value, interpret(rma).valid) == ("rma", rma, True)
    assert (interpret("]C0" + plate).kind, interpret(plate).valid) == ("lpn", True)
    assert (interpret(order).kind, interpret(order).value) == ("order", order)
    assert interpret(rma.lower()).value == rma  # typed in lower case
    assert not interpret(rma[:-1] + ("0" if rma[-1] != "0" else "1")).valid
    assert not interpret(rma[:-2] + rma[-1]).valid  # a dropped digit
    sn = interpret("SNAB1234567")
    assert (sn.kind, sn.valid) == ("serial_or_sku", True)


@pytest.mark.parametrize("raw, words", [
    ("", "Nothing was scanned"),
    ("   \r\n", "Nothing was scanned"),
    ("12345\x07", "control character"),
    ("]C1", "no data"),
    ("x" * 5000, "characters long"),
    ("日本語のテキスト", "not a code"),
    ("4006381333930", "rescan"),
])
def test_garbage_gets_a_clear_reason(raw: str, words: str) -> None:
    r = interpret(raw)
    assert not r.valid and words in (r.reason or "")
    assert r.kind in KINDS


# --- the command ------------------------------------------------------------------------------

def test_barcode_command_prints_one_json_object_per_code(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["barcode", "4006381333931", "1Z5R89390357567127"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["gtin", "tracking"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        b"]C10109506000134352\x1d10AB\r\n\xff\xfe garbled\nR-0000001\n")))
    assert cli.main(["barcode", "-"]) == 1  # some were invalid
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["valid"] for r in rows] == [False, False, False] or rows[0]["kind"] == "gtin"
    assert len(rows) == 3 and rows[0]["details"]["ai_10"] == "AB" and not rows[1]["valid"]


# --- never raises, never calls an invalid code valid -------------------------------------------

_AIMS = st.sampled_from(["", "]C0", "]C1", "]E0", "]E4", "]E3", "]I1", "]d2", "]Q3", "]e0", "]Q1", "]X0", "]"])
_code_alphabet = string.digits * 3 + string.ascii_uppercase + "-#]^/" + GS
_codes = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=_code_alphabet, max_size=40),
    st.tuples(_AIMS, st.text(alphabet=_code_alphabet, max_size=40)).map("".join),
    st.tuples(st.sampled_from(["1Z", "420", "92", "R-", "LPN", "SO-", "01", "00", "https://id.gs1.org/01/"]),
              st.text(alphabet=string.digits + string.ascii_uppercase + "/" + GS, max_size=36)).map("".join),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)


def _check(raw: str) -> None:
    r = interpret(raw)
    assert r.kind in KINDS
    assert r.valid or r.reason
    assert is_really_valid(r), r
    for alt in r.alternatives:
        assert is_really_valid(alt), alt
    json.dumps(r.to_dict(), ensure_ascii=False)


# Batches of strings per example: Hypothesis's own cost per example would otherwise dominate.
# 4,000 x 20 + 2,000 x 10 = 100,000 strings per run.
@settings(max_examples=4_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(_codes, min_size=20, max_size=20))
def test_arbitrary_strings_never_crash_and_are_never_wrongly_valid(batch: list[str]) -> None:
    for raw in batch:
        _check(raw)


@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(lambda s: s * 40),
                min_size=10, max_size=10))
def test_long_and_unicode_strings_never_crash(batch: list[str]) -> None:
    for raw in batch:
        _check(raw)


def test_very_long_input() -> None:
    _check("9" * 1_000_000)
    _check(GS * 100_000)
