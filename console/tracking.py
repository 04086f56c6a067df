"""Carrier tracking numbers: which formats a scanned or typed code fits, and whether it checks out.

The formats, their check-digit rules and their lookup tables come from the MIT-licensed
tracking_number_data specification (github.com/jkeen/tracking_number_data), vendored unchanged in
``console/tracking_data/`` (see the README there for the commits). Only its JSON data is used; the
checksum algorithms are written here from the spec's CHECKSUM_ALGORITHMS.md. Yamato Transport and
Sagawa Express, which the spec does not cover, are defined below in the same shape.

Decisions, so callers know what "valid" means:

* Input. Only ASCII letters and digits can be part of a tracking number. Spaces, tabs, CR/LF,
  dashes and the GS (ASCII 29, FNC1) separator a GS1-128 scan puts between the IMpb routing code
  and the tracking number are removed; letters are upper-cased. Anything else (other
  punctuation, control characters, non-ASCII) means "not a tracking number" and gives ``()``,
  as does input longer than ``MAX_INPUT_LENGTH`` -- checked before any pattern runs.
* Patterns. The spec's regexes are Ruby/PCRE and allow whitespace between every character
  (``[0-9]\\s*``). Because the input is whitespace-free by the time it is matched, ``\\s*`` tokens
  are dropped from the patterns (same result, and it gives every pattern a fixed length range, so
  a code is only tried against the formats its length allows). ``(?<Name>`` becomes
  ``(?P<Name>``, Ruby's ``\\h``/``\\z``/``\\Z`` are translated, an inline ``(?i)`` becomes a flag,
  a repeated group name is renamed; possessive quantifiers and atomic groups are native since
  Python 3.11. A construct Python cannot express makes loading fail loudly (the tests load all
  data). Patterns are compiled once (``re.ASCII``) and matched with ``fullmatch``.
* Valid. A match is valid when its check digit is right (after the spec's
  ``serial_number_format`` prepend rule) and every ``validation.additional.exists`` lookup finds
  an entry (e.g. the S10 country code is a known postal operator). A format for which the spec
  declares no checksum (DHL Piece ID and E-Commerce) is valid on its pattern alone -- the spec's
  own test numbers require it -- but ``details["checksum"]`` is ``"none"`` for it and it is ranked
  after every checksum-verified match, so ``best_tracking`` prefers a number whose check digit
  was actually verified. A checksum name this module does not know makes a match invalid, never
  valid.
* USPS IMpb routing code. The spec's USPS patterns accept the ``420`` + ZIP (5 digits, or ZIP+4)
  routing prefix of a scanned IMpb barcode; with the GS separator removed, that covers scans with
  and without FNC1. The prefix is kept out of ``value`` and reported as
  ``details["destination_zip"]`` (and ``destination_zip_plus4``).
* Several formats can fit one code (a 12-digit number can be FedEx Express, Yamato and Sagawa);
  ``match_tracking`` reports them all: valid ones first -- those that also recognised a 420 + ZIP
  routing prefix, then the other checksum-verified ones, then the pattern-only ones -- then the
  invalid ones; within each group in data order (spec files, then Yamato, Sagawa). The routing
  prefix goes first because a 34-digit IMpb scan whose last 14 digits happen to pass FedEx
  Express (34)'s check (one in ten do) is still a USPS label.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

SPEC_COURIERS = ("ups", "fedex", "usps", "dhl", "s10")  # console/tracking_data/<code>.json, in this order
MAX_INPUT_LENGTH = 256  # longer text is never a tracking number, however it is spaced

# Yamato and Sagawa 12-digit numbers: check digit = first 11 digits (as an integer) mod 7.
LOCAL_COURIERS: tuple[Mapping[str, Any], ...] = (
    {"name": "Yamato Transport", "courier_code": "yamato", "tracking_numbers": [{
        "name": "Yamato Transport (12)", "id": "yamato_12",
        "regex": "(?<SerialNumber>[0-9]{11})(?<CheckDigit>[0-9])",
        "validation": {"checksum": {"name": "mod7", "modulo": 7}},
    }]},
    {"name": "Sagawa Express", "courier_code": "sagawa", "tracking_numbers": [{
        "name": "Sagawa Express (12)", "id": "sagawa_12",
        "regex": "(?<SerialNumber>[0-9]{11})(?<CheckDigit>[0-9])",
        "validation": {"checksum": {"name": "mod7", "modulo": 7}},
    }]},
)


@dataclass(frozen=True)
class TrackingMatch:
    carrier: str            # short id: "ups", "fedex", "usps", "dhl", "s10", "yamato", "sagawa"
    carrier_name: str       # e.g. "UPS", "FedEx", "Yamato Transport"
    service: str            # the spec's tracking_number "name", e.g. "FedEx Express (12)"
    value: str              # the normalized tracking number (separators and IMpb routing prefix removed)
    valid: bool             # checksum + additional validation pass
    reason: str | None      # when not valid: a short human reason, e.g. "check digit is 3, expected 7"
    details: Mapping[str, str] = field(hash=False)  # snake_case regex groups, lookup names, "checksum", "format_id"


# --- input ---------------------------------------------------------------------------------------

_SEPARATORS = " \t\r\n\f\v-\x1d"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9 \t\r\n\f\v\-\x1d]*", re.ASCII)
_DROP_SEPARATORS = str.maketrans("", "", _SEPARATORS)


def normalize(text: object) -> str:
    """The code as the patterns see it, or "" when it cannot be a tracking number."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_LENGTH or not _ACCEPTABLE.fullmatch(text):
        return ""
    return text.translate(_DROP_SEPARATORS).upper()


# --- regex conversion ------------------------------------------------------------------------------

_UNSUPPORTED_ESCAPES = {"G": r"\G", "K": r"\K", "R": r"\R", "X": r"\X", "p": r"\p{...}", "P": r"\P{...}",
                        "g": r"\g<...> (a subexpression call)", "H": r"\H"}
_INLINE_FLAGS = {"i": re.IGNORECASE, "m": re.DOTALL, "x": re.VERBOSE}  # Ruby's (?m) is Python's DOTALL


def to_python_regex(pattern: str | Sequence[str], *, drop_whitespace: bool = True) -> tuple[str, int]:
    """Translate a spec (Ruby/PCRE) regex to Python ``re`` syntax; return it with the flags it needs.

    A JSON list is joined first. With ``drop_whitespace`` the spec's ``\\s*`` tokens (optional
    whitespace between characters) are removed, which is exact for whitespace-free input.
    Raises ValueError for a construct Python has no equivalent for.
    """
    src = "".join(pattern) if not isinstance(pattern, str) else pattern
    out: list[str] = []
    flags = 0
    seen: dict[str, int] = {}
    in_class = False
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"pattern ends with a backslash: {src!r}")
            e = src[i + 1]
            if e == "s" and drop_whitespace and not in_class and src.startswith("*", i + 2):
                i += 3 + (src.startswith("?", i + 3) or src.startswith("+", i + 3))  # lazy/possessive too
                continue
            if e == "h":
                out.append("0-9A-Fa-f" if in_class else "[0-9A-Fa-f]")
            elif e == "z":
                out.append(r"\Z")
            elif e == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")
            elif e == "k" and not in_class and (ref := re.match(r"\\k<([A-Za-z_]\w*)>", src[i:])):
                out.append(f"(?P={ref.group(1)})")  # a named backreference
                i += ref.end()
                continue
            elif e in _UNSUPPORTED_ESCAPES:
                raise ValueError(f"{_UNSUPPORTED_ESCAPES[e]} has no Python equivalent: {src!r}")
            else:
                out.append(src[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[" and src.startswith("[:", i):
                raise ValueError(f"POSIX bracket expressions are not supported: {src!r}")
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            if src.startswith("[^", i):
                out.append("[^")
                i += 2
            else:
                out.append("[")
                i += 1
            if i < n and src[i] == "]":  # a leading ] is a literal in both dialects
                out.append("]")
                i += 1
            continue
        if src.startswith("(?<", i) and i + 3 < n and (src[i + 3].isalpha() or src[i + 3] == "_"):
            end = src.find(">", i + 3)
            name = src[i + 3:end] if end > 0 else ""
            if not name.replace("_", "a").isalnum():
                raise ValueError(f"bad group name in {src!r}")
            seen[name] = seen.get(name, 0) + 1
            out.append(f"(?P<{name if seen[name] == 1 else f'{name}__{seen[name]}'}>")
            i = end + 1
            continue
        if src.startswith("(?~", i):
            raise ValueError(f"absent operator (?~...) has no Python equivalent: {src!r}")
        if src.startswith("(?", i):
            m = re.match(r"\(\?([imx]+)\)", src[i:])
            if m:  # a bare inline flag group: Python wants global flags, so apply it to the whole pattern
                for letter in m.group(1):
                    flags |= _INLINE_FLAGS[letter]
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out), flags


def pattern_width(compiled: re.Pattern[str]) -> tuple[int, int]:
    """(shortest, longest) text the pattern can fullmatch; (0, MAX_INPUT_LENGTH) if unknown."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # CPython's sre_parse; widths only
        lo, hi = _parser.parse(compiled.pattern, compiled.flags).getwidth()
    except Exception:  # a different regex engine: try the format at every length
        return 0, MAX_INPUT_LENGTH
    return int(lo), int(min(hi, MAX_INPUT_LENGTH))


# --- checksums -------------------------------------------------------------------------------------

_ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _digits(serial: str) -> list[int] | None:
    return [ord(c) - 48 for c in serial] if serial.isascii() and serial.isdigit() else None


def _mod10(serial: str, p: Mapping[str, Any]) -> str | None:
    """Spec mod10: letters fold to (ord - 3) % 10; odd/even positions (0-based, optionally counted
    from the right) are multiplied; the check digit is what tops the sum up to a multiple of 10."""
    chars = serial[::-1] if p.get("reverse") else serial
    odds, evens = p.get("odds_multiplier"), p.get("evens_multiplier")
    modulo = int(p.get("modulo", 10))
    total = 0
    for i, c in enumerate(chars):
        if "0" <= c <= "9":
            x = ord(c) - 48
        elif "A" <= c <= "Z":
            x = (ord(c) - 3) % 10
        else:
            return None
        if odds is not None and i % 2 == 1:
            x *= int(odds)
        elif evens is not None and i % 2 == 0:
            x *= int(evens)
        total += x
    check = total % modulo
    return str(0 if check == 0 else modulo - check)


def _mod7(serial: str, p: Mapping[str, Any]) -> str | None:
    return str(int(serial) % int(p.get("modulo", 7))) if _digits(serial) else None


def _s10(serial: str, p: Mapping[str, Any]) -> str | None:
    weights = p.get("weightings") or (8, 6, 4, 2, 3, 5, 9, 7)
    modulo = int(p.get("modulo", 11))
    digits = _digits(serial)
    if digits is None or len(digits) != len(weights):
        return None
    r = sum(d * int(w) for d, w in zip(digits, weights)) % modulo
    return str(0 if r == 1 else 5 if r == 0 else modulo - r)


def _sum_product(serial: str, p: Mapping[str, Any]) -> str | None:
    weights = p.get("weightings") or ()
    digits = _digits(serial)
    if digits is None or len(digits) != len(weights):
        return None
    return str(sum(d * int(w) for d, w in zip(digits, weights)) % int(p["modulo1"]) % int(p["modulo2"]))


def _mod_37_36(serial: str, p: Mapping[str, Any]) -> str | None:
    """ISO 7064 MOD 37,36 hybrid (DPD), as CHECKSUM_ALGORITHMS.md spells it; the check is 0-9A-Z."""
    mod = 36
    cd = mod
    for c in serial:
        if c not in _ALNUM36:
            return None
        cd += _ALNUM36.index(c)
        if cd > mod:
            cd -= mod
        cd *= 2
        if cd > mod:
            cd -= mod + 1
    cd = mod + 1 - cd
    return _ALNUM36[0 if cd == mod else cd]


def _luhn(serial: str, p: Mapping[str, Any]) -> str | None:
    """Luhn (ISO/IEC 7812-1) over digits; not defined in CHECKSUM_ALGORITHMS.md, standard form."""
    digits = _digits(serial)
    if digits is None:
        return None
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str(-total % 10)


CHECKSUMS: Mapping[str, Callable[[str, Mapping[str, Any]], str | None]] = MappingProxyType({
    "mod10": _mod10, "mod7": _mod7, "s10": _s10, "sum_product_with_weightings_and_modulo": _sum_product,
    "mod_37_36": _mod_37_36, "luhn": _luhn,
})
_NO_CHECKSUM = frozenset({"dummy"})  # the spec's placeholder that accepts everything


def expected_check_digit(checksum: Mapping[str, Any], serial: str) -> str | None:
    """The check character ``checksum`` (a spec ``validation.checksum`` object) gives ``serial``;
    None when the algorithm is unknown or cannot apply to these characters."""
    algorithm = CHECKSUMS.get(str(checksum.get("name")))
    if algorithm is None:
        return None
    try:
        return algorithm(serial, checksum)
    except (ValueError, TypeError, KeyError, ZeroDivisionError):  # malformed parameters in the data
        return None


# --- formats ---------------------------------------------------------------------------------------

_ROUTING_GROUPS = frozenset({"RoutingApplicationId", "DestinationZip", "DestinationZipPlus4"})  # USPS IMpb 420 + ZIP


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[\s\-]+", "_", name.split("__")[0]).lower()


@dataclass(frozen=True)
class Lookup:
    """One spec ``additional`` table: a regex group's value mapped to a named entry."""
    name: str
    group: str
    key: str  # details key prefix: snake_case of name
    exact: Mapping[str, Mapping[str, Any]]
    patterns: tuple[tuple[re.Pattern[str], Mapping[str, Any]], ...]

    def find(self, value: str | None) -> Mapping[str, Any] | None:
        if not value:
            return None
        entry = self.exact.get(value)
        if entry is None:
            entry = next((e for rx, e in self.patterns if rx.search(value)), None)
        return entry


@dataclass(frozen=True)
class Format:
    carrier: str
    carrier_name: str
    service: str
    format_id: str
    regex: re.Pattern[str]
    min_length: int
    max_length: int
    checksum: Mapping[str, Any] | None  # None: the spec declares no check digit
    prepend: tuple[re.Pattern[str], str] | None  # serial_number_format.prepend_if
    lookups: tuple[Lookup, ...]
    required: tuple[str, ...]  # names of lookups that must find an entry (validation.additional.exists)
    group_names: tuple[tuple[str, str, str], ...]  # (python group, spec group, details key)

    def prepare_serial(self, serial: str) -> str:
        """The serial number the check digit is computed over (spec serial_number_format)."""
        if self.prepend is not None and self.prepend[0].search(serial):
            return self.prepend[1] + serial
        return serial

    def evaluate(self, text: str, m: re.Match[str]) -> TrackingMatch:
        groups: dict[str, str] = {}
        details: dict[str, str] = {}
        routing_end = 0
        for py_name, spec_name, key in self.group_names:
            v = m.group(py_name)
            if v and spec_name not in groups:
                groups[spec_name] = details[key] = v
                if spec_name in _ROUTING_GROUPS:
                    routing_end = max(routing_end, m.end(py_name))
        if "RoutingApplicationId" not in groups:  # a DestinationZip alone (FedEx 34) is part of the number
            routing_end = 0
        details["format_id"] = self.format_id
        reason = None
        if self.checksum is None:
            details["checksum"] = "none"
        else:
            details["checksum"] = str(self.checksum.get("name"))
            check = groups.get("CheckDigit", "")
            expected = expected_check_digit(self.checksum, self.prepare_serial(groups.get("SerialNumber", "")))
            if expected is None:
                reason = f"cannot apply the {details['checksum']} check digit rule"
            elif check != expected:
                reason = f"check digit is {check or 'missing'}, expected {expected}"
        for lookup in self.lookups:
            value = groups.get(lookup.group)
            entry = lookup.find(value)
            if entry is None:
                if lookup.name in self.required and reason is None:
                    label = _snake(lookup.group).replace("_", " ")
                    reason = f"{label} {value or '(none)'} is not in the spec's {lookup.name.lower()} list"
                continue
            prefix = lookup.key
            name = entry.get("name") or entry.get("courier")
            if isinstance(name, str) and name:
                details[f"{prefix}_name"] = name
            description = entry.get("description")
            if isinstance(description, str) and description:
                details[f"{prefix}_description"] = description
            country = entry.get("country")
            if isinstance(country, str) and country:
                details["country"] = country
        return TrackingMatch(self.carrier, self.carrier_name, self.service, text[routing_end:], reason is None,
                             reason, MappingProxyType(details))


def _compile(pattern: str | Sequence[str]) -> re.Pattern[str]:
    source, flags = to_python_regex(pattern)
    return re.compile(source, flags | re.ASCII)


def _lookup(spec: Mapping[str, Any]) -> Lookup:
    exact: dict[str, Mapping[str, Any]] = {}
    patterns: list[tuple[re.Pattern[str], Mapping[str, Any]]] = []
    for entry in spec.get("lookup") or ():
        if isinstance(entry.get("matches"), str):
            exact.setdefault(entry["matches"], entry)
        elif isinstance(entry.get("matches_regex"), str):
            patterns.append((_compile(entry["matches_regex"]), entry))
    name = str(spec["name"])
    return Lookup(name, str(spec["regex_group_name"]), _snake(name), MappingProxyType(exact), tuple(patterns))


def _format(courier: Mapping[str, Any], spec: Mapping[str, Any]) -> Format:
    regex = _compile(spec["regex"])
    lo, hi = pattern_width(regex)
    validation = spec.get("validation") or {}
    checksum = validation.get("checksum")
    if checksum is not None and checksum.get("name") in _NO_CHECKSUM:
        checksum = None
    prepend = None
    if (rule := (validation.get("serial_number_format") or {}).get("prepend_if")) is not None:
        prepend = (_compile(rule["matches_regex"]), str(rule["content"]))
    lookups = tuple(_lookup(a) for a in spec.get("additional") or ())
    required = tuple((validation.get("additional") or {}).get("exists") or ())
    missing = set(required) - {lk.name for lk in lookups}
    if missing:
        raise ValueError(f"{spec['name']}: validation requires unknown lookups {sorted(missing)}")
    group_names = tuple((py, py.split("__")[0], _snake(py)) for py in regex.groupindex)
    return Format(str(courier["courier_code"]), str(courier["name"]), str(spec["name"]),
                  str(spec.get("id") or _snake(str(spec["name"]))), regex, lo, hi,
                  MappingProxyType(dict(checksum)) if checksum is not None else None, prepend, lookups,
                  required, group_names)


def spec_data(code: str) -> Mapping[str, Any]:
    """A vendored courier file of the spec, parsed."""
    text = (resources.files("console") / "tracking_data" / f"{code}.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class _Registry:
    formats: tuple[Format, ...]
    by_length: tuple[tuple[Format, ...], ...]


@functools.cache
def _registry() -> _Registry:
    couriers = [spec_data(code) for code in SPEC_COURIERS] + list(LOCAL_COURIERS)
    formats = tuple(_format(c, spec) for c in couriers for spec in c["tracking_numbers"])
    longest = max(f.max_length for f in formats)
    by_length = tuple(tuple(f for f in formats if f.min_length <= n <= f.max_length) for n in range(longest + 1))
    return _Registry(formats, by_length)


def formats() -> tuple[Format, ...]:
    """Every known format, spec files first (in file order), then Yamato and Sagawa."""
    return _registry().formats


# --- API -------------------------------------------------------------------------------------------

def _rank(fmt: Format, found: TrackingMatch) -> int:
    if not found.valid:
        return 3
    if fmt.checksum is None:
        return 2
    return 0 if "routing_application_id" in found.details else 1


def match_tracking(text: str) -> tuple[TrackingMatch, ...]:
    """Every spec format whose pattern matches the whole normalized text, valid ones first."""
    code = normalize(text)
    registry = _registry()
    if not code or len(code) >= len(registry.by_length):
        return ()
    ranked: list[tuple[int, int, TrackingMatch]] = []
    for order, fmt in enumerate(registry.by_length[len(code)]):
        m = fmt.regex.fullmatch(code)
        if m is not None:
            found = fmt.evaluate(code, m)
            ranked.append((_rank(fmt, found), order, found))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return tuple(r[2] for r in ranked)


def best_tracking(text: str) -> TrackingMatch | None:
    """The first valid match, else the first pattern match (invalid, with its reason), else None."""
    matches = match_tracking(text)
    return matches[0] if matches else None
