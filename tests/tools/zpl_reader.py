"""A small ZPL II reader for tests: what a label printer would make of a ZPL string.

It reads the UTF-8 bytes the printer receives, splits them into ``^XX``/``~XX`` commands exactly
where a printer would (so field data that leaks a ``^`` or ``~`` shows up as a broken field or
a stray command), undoes ``^FH`` hex escapes, and returns every field with its origin: text
fields with their font, barcode fields with their module width, height and the data the bars
carry (``^BC`` field data decoded through ZPL's Code 128 invocation codes, as the printer would).

Only what ``printing/zpl.py`` writes is understood; anything else raises :class:`ZplError`, so a
test never passes over something it did not read.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

QUIET_MODULES = 10  # Code 128


class ZplError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    prefix: str  # "^" or "~"
    name: str  # two characters, upper case: "FO", "A0", "A@", "FD", ...
    params: bytes


@dataclass(frozen=True)
class TextField:
    x: int
    y: int
    font: str  # "0" (resident CG Triumvirate) or a font file name from ^A@, e.g. "E:ANMDJ.TTF"
    h: int
    w: int
    text: str
    hex_escaped: bool  # went through ^FH
    reverse: bool  # ^FR

    @property
    def approx_width(self) -> float:
        """An upper estimate of the printed width: 3/4 of the cell for Latin, all of it for wide."""
        return sum(self.w if unicodedata.east_asian_width(c) in ("W", "F") else 0.75 * self.w for c in self.text)


@dataclass(frozen=True)
class BarcodeField:
    x: int  # the first bar (ZPL does not draw quiet zones)
    y: int
    kind: str  # "code128"
    module: int  # ^BY, dots
    height: int  # bars, dots
    interpretation: bool  # human-readable line under the bars
    font_h: int  # its height
    data: str  # what the bars carry
    values: tuple[int, ...]  # Code 128 values, start character first, no check character
    params: str  # the ^BC parameters as written

    @property
    def modules(self) -> int:
        # Each value and the check character are 11 modules; the stop pattern is 13.
        return (len(self.values) + 1) * 11 + 13

    @property
    def width(self) -> int:
        return self.modules * self.module


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    thickness: int


@dataclass
class Label:
    commands: list[Command]
    width: int | None = None  # ^PW
    length: int | None = None  # ^LL
    charset: int | None = None  # ^CI
    texts: list[TextField] = field(default_factory=list)
    barcodes: list[BarcodeField] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    def text_values(self) -> list[str]:
        return [t.text for t in self.texts]

    def off_label(self) -> list[str]:
        """Every field that reaches past the label's edges, described; empty if none does."""
        assert self.width is not None and self.length is not None
        problems = []
        for t in self.texts:
            if t.x < 0 or t.y < 0 or t.x + t.approx_width > self.width or t.y + t.h > self.length:
                problems.append(f"text {t.text!r} at {t.x},{t.y} ~{t.approx_width:.0f}x{t.h}")
        for b in self.barcodes:
            quiet = QUIET_MODULES * b.module
            bottom = b.y + b.height + (b.font_h + b.font_h // 4 if b.interpretation else 0)
            if b.x - quiet < 0 or b.x + b.width + quiet > self.width or b.y < 0 or bottom > self.length:
                problems.append(f"barcode {b.data!r} at {b.x},{b.y} {b.width}x{bottom - b.y} + quiet {quiet}")
        for box in self.boxes:
            if box.x < 0 or box.y < 0 or box.x + box.w > self.width or box.y + box.h > self.length:
                problems.append(f"box at {box.x},{box.y} {box.w}x{box.h}")
        return problems


def split_commands(zpl: bytes) -> list[Command]:
    """Commands as a printer splits them: a command runs from ``^`` or ``~`` to the next one."""
    starts = [m.start() for m in re.finditer(rb"[\^~]", zpl)]
    if zpl[: starts[0] if starts else len(zpl)].strip():
        raise ZplError(f"data before the first command: {zpl[:40]!r}")
    commands = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(zpl)
        chunk = zpl[start:end]
        if len(chunk) < 3:
            raise ZplError(f"truncated command {chunk!r}")
        commands.append(Command(chr(chunk[0]), chunk[1:3].decode("ascii").upper(), chunk[3:]))
    return commands


def parse(zpl: str) -> Label:
    commands = split_commands(zpl.encode("utf-8"))
    if not commands or (commands[0].prefix, commands[0].name) != ("^", "XA"):
        raise ZplError("a label starts with ^XA")
    if (commands[-1].prefix, commands[-1].name) != ("^", "XZ") or commands[-1].params.strip():
        raise ZplError("a label ends with ^XZ")
    label = Label(commands)
    module = 2  # ^BY default
    current: dict[str, object] = {}
    for cmd in commands[1:-1]:
        p = cmd.params.decode("utf-8") if cmd.name != "FD" else ""
        if cmd.prefix != "^":
            raise ZplError(f"unexpected control command ~{cmd.name}")
        if cmd.name == "CI":
            label.charset = int(p)
        elif cmd.name == "PW":
            label.width = int(p)
        elif cmd.name == "LL":
            label.length = int(p)
        elif cmd.name == "LH":
            if p != "0,0":
                raise ZplError(f"label home {p} not understood")
        elif cmd.name == "BY":
            module = int(p.split(",")[0])
        elif cmd.name == "FO":
            x, y = (int(v) for v in p.split(","))
            current["origin"] = (x, y)
        elif cmd.name == "A0":
            o, h, w = p.split(",")
            current["font"] = ("0", int(h), int(w), o)
        elif cmd.name == "A@":
            o, h, w, name = p.split(",")
            current["font"] = (name, int(h), int(w), o)
        elif cmd.name == "FH":
            current["fh"] = p or "_"
        elif cmd.name == "FR":
            current["reverse"] = True
        elif cmd.name == "BC":
            current["bc"] = p
        elif cmd.name == "GB":
            current["gb"] = tuple(int(v) for v in p.split(","))
        elif cmd.name == "FD":
            if "data" in current:
                raise ZplError("two ^FD in one field")
            current["data"] = _unescape(cmd.params, current.get("fh"))  # type: ignore[arg-type]
        elif cmd.name == "FS":
            _finish_field(label, current, module)
            current = {}
        else:
            raise ZplError(f"command ^{cmd.name} not understood")
    if current:
        raise ZplError(f"field not closed with ^FS: {current}")
    return label


def _unescape(raw: bytes, indicator: str | None) -> str:
    if indicator is not None:
        marker = re.escape(indicator.encode("ascii"))
        if re.search(marker + rb"(?![0-9A-Fa-f]{2})", raw):
            raise ZplError(f"{indicator} not followed by two hex digits in {raw!r}")
        raw = re.sub(marker + rb"([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode("utf-8")  # ^CI28: strict UTF-8


def _finish_field(label: Label, current: dict[str, object], module: int) -> None:
    if "origin" not in current:
        raise ZplError(f"field without ^FO: {current}")
    x, y = current["origin"]  # type: ignore[misc]
    if "gb" in current:
        w, h, t = current["gb"]  # type: ignore[misc]
        label.boxes.append(Box(x, y, w, h, t))
        return
    data = current.get("data")
    if not isinstance(data, str):
        raise ZplError(f"field at {x},{y} without ^FD")
    font = current.get("font")
    if "bc" in current:
        params = str(current["bc"])
        orientation, height, line, above, check = params.split(",")[:5]
        if (orientation, above, check) != ("N", "N", "N") or len(params.split(",")) > 5:
            raise ZplError(f"^BC{params} not understood")
        values, text = decode_bc(data)
        label.barcodes.append(BarcodeField(x, y, "code128", module, int(height), line == "Y",
                                           font[1] if font else 0, text, values, params))  # type: ignore[index]
        return
    if font is None:
        raise ZplError(f"text field {data!r} without a font")
    name, h, w, orientation = font  # type: ignore[misc]
    if orientation != "N":
        raise ZplError("only normal orientation is understood")
    label.texts.append(TextField(x, y, name, h, w, data, "fh" in current, bool(current.get("reverse"))))


# ZPL ^BC (mode N) invocation codes: ZPL II Programming Guide, "Code 128 Invocation Characters".
_SET_B_INVOCATIONS = {"<": 62, "0": 30, "=": 94, "1": 95, "5": 99, "8": 102}
_SET_C_INVOCATIONS = {"6": 100, "8": 102}


def decode_bc(data: str) -> tuple[tuple[int, ...], str]:
    """``^BC`` field data -> (Code 128 values from the start character, the text they carry)."""
    values: list[int] = []
    text: list[str] = []
    i = 0
    if data.startswith((">:", ">;")):
        code_set = "B" if data[1] == ":" else "C"
        i = 2
    elif data.startswith(">9"):
        raise ZplError("code set A is not understood")
    else:
        code_set = "B"  # ZPL's default
    values.append(104 if code_set == "B" else 105)
    while i < len(data):
        ch = data[i]
        if ch == ">":
            if i + 1 >= len(data):
                raise ZplError(f"dangling > in {data!r}")
            table = _SET_B_INVOCATIONS if code_set == "B" else _SET_C_INVOCATIONS
            value = table.get(data[i + 1])
            if value is None:
                raise ZplError(f"invocation >{data[i + 1]} not understood in code set {code_set}")
            values.append(value)
            if value == 99:
                code_set = "C"
            elif value == 100:
                code_set = "B"
            elif value == 102:
                text.append("\x1d")
            elif value < 96:
                text.append(chr(value + 32))
            i += 2
        elif code_set == "C":
            pair = data[i:i + 2]
            if not re.fullmatch(r"\d\d", pair):
                raise ZplError(f"code set C needs digit pairs, got {pair!r} in {data!r}")
            values.append(int(pair))
            text.append(pair)
            i += 2
        else:
            if not " " <= ch <= "~" or ch in "^~":
                raise ZplError(f"{ch!r} cannot be written directly in code set B")
            values.append(ord(ch) - 32)
            text.append(ch)
            i += 1
    return tuple(values), "".join(text)
