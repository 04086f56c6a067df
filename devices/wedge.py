"""Tell a keyboard-wedge scanner's burst from a person typing, from characters and their times.

A wedge scanner "types" its code as key presses a few milliseconds apart, usually ending with
Enter; a person types a key every 100 ms or more. The detector sees each character with its
time and answers with what to do: deliver it to the focused field now, keep it back for a
moment, take back characters already delivered, or report a whole scan. It knows nothing of
Qt, so ``ui.scan_filter`` drives it from key events and tests drive it from lists.

Every character is kept back while it could still be the start of a scan, except where the
caller asks for eager delivery (a text field, where typing must feel instant): then the first
character goes through at once and is taken back if a burst follows. Kept-back characters that
turn out to be typing are handed back in order, at most ``max_gap_ms`` late.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GS = "\x1d"
STX, ETX, CR, LF = "\x02", "\x03", "\r", "\n"


@dataclass(frozen=True)
class WedgeConfig:
    prefix: str = ""  # what the scanner sends first (STX, or "" when it sends nothing)
    suffix: str = CR  # what ends a scan (Enter = CR, CRLF, Tab, ETX); "" ends a scan by silence
    max_gap_ms: float = 50.0  # longest gap between two characters of one scan
    min_length: int = 4  # shorter bursts are typing, even when fast
    max_length: int = 4096
    # What a wedge may type for the GS1 separator (FNC1): GS itself (Ctrl+] on most layouts),
    # or a character the scanner was configured to substitute.
    gs_aliases: tuple[str, ...] = (GS,)

    def __post_init__(self) -> None:
        if self.max_gap_ms <= 0:
            raise ValueError("max_gap_ms must be positive")
        if self.min_length < 1:
            raise ValueError("min_length must be at least 1")
        if not self.suffix and self.max_gap_ms > 500:
            raise ValueError("a scanner without a suffix needs a gap threshold under 500 ms")


@dataclass(frozen=True)
class Deliver:
    """Characters for the focused widget, as if typed now."""
    text: str


@dataclass(frozen=True)
class Retract:
    """Take back the last ``count`` characters delivered early: they belonged to a scan."""
    count: int


@dataclass(frozen=True)
class Scan:
    """A whole scan, prefix and suffix removed, GS variants mapped to ASCII 29."""
    code: str
    started_ms: float
    finished_ms: float


Action = Deliver | Retract | Scan


@dataclass
class WedgeDetector:
    config: WedgeConfig = field(default_factory=WedgeConfig)
    _buf: list[str] = field(default_factory=list, init=False)
    _delivered: int = field(default=0, init=False)  # how many of _buf went through eagerly
    _start_ms: float = field(default=0.0, init=False)
    _last_ms: float = field(default=0.0, init=False)

    @property
    def busy(self) -> bool:
        """True while characters are held back or a burst is under way."""
        return bool(self._buf)

    @property
    def delivered_early(self) -> int:
        """Characters of the pending burst already handed to the widget (0 or 1)."""
        return self._delivered

    @property
    def pending(self) -> int:
        return len(self._buf)

    def deadline(self) -> float | None:
        """The time at which :meth:`tick` must be called if no other character arrives."""
        return self._last_ms + self.config.max_gap_ms if self._buf else None

    def feed(self, ch: str, t_ms: float, *, eager: bool = False) -> list[Action]:
        cfg = self.config
        actions: list[Action] = []
        if self._buf and t_ms - self._last_ms > cfg.max_gap_ms:
            actions += self._end_by_silence()
        if ch in cfg.gs_aliases:
            ch = GS
        if not self._buf:
            starts_scan = bool(cfg.prefix) and ch == cfg.prefix[0]
            if not starts_scan and cfg.suffix and ch == cfg.suffix[0]:
                actions.append(Deliver(ch))  # Enter on its own is a person pressing Enter
                return actions
            self._buf, self._start_ms, self._last_ms = [ch], t_ms, t_ms
            self._delivered = 0
            if eager and not starts_scan:
                self._delivered = 1
                actions.append(Deliver(ch))
            return actions
        self._buf.append(ch)
        self._last_ms = t_ms
        if cfg.suffix and self._ends_with(cfg.suffix):
            actions += self._finish(t_ms, len(cfg.suffix))
        elif len(self._buf) > cfg.max_length + len(cfg.prefix) + len(cfg.suffix):
            actions += self._release()  # no scanner sends this much: hand it back as typing
        return actions

    def tick(self, t_ms: float) -> list[Action]:
        """Call at :meth:`deadline`: a burst that went quiet ends here."""
        if self._buf and t_ms - self._last_ms >= self.config.max_gap_ms:
            return self._end_by_silence()
        return []

    def _ends_with(self, s: str) -> bool:
        n = len(s)
        return len(self._buf) >= n and "".join(self._buf[-n:]) == s

    def _end_by_silence(self) -> list[Action]:
        if not self.config.suffix:
            return self._finish(self._last_ms, 0)
        return self._release()

    def _finish(self, t_ms: float, suffix_len: int) -> list[Action]:
        cfg = self.config
        body = self._buf[: len(self._buf) - suffix_len] if suffix_len else list(self._buf)
        if cfg.prefix:
            if "".join(body[: len(cfg.prefix)]) != cfg.prefix:
                return self._release()
            body = body[len(cfg.prefix):]
        if len(body) < cfg.min_length:
            return self._release()
        actions: list[Action] = []
        if self._delivered:
            actions.append(Retract(self._delivered))
        actions.append(Scan("".join(body), self._start_ms, t_ms))
        self._reset()
        return actions

    def _release(self) -> list[Action]:
        held = "".join(self._buf[self._delivered:])
        self._reset()
        return [Deliver(held)] if held else []

    def _reset(self) -> None:
        self._buf = []
        self._delivered = 0


def replay(detector: WedgeDetector, keys: list[tuple[str, float]], *, eager: bool = False) -> list[Action]:
    """Feed ``(character, time_ms)`` pairs and flush at the end, for tests and the benchmark."""
    actions: list[Action] = []
    for ch, t in keys:
        actions += detector.feed(ch, t, eager=eager)
    if keys and (deadline := detector.deadline()) is not None:
        actions += detector.tick(deadline)
    return actions


def typed_text(actions: list[Action]) -> str:
    """What a text field would hold after these actions."""
    out: list[str] = []
    for a in actions:
        if isinstance(a, Deliver):
            out.extend(a.text)
        elif isinstance(a, Retract):
            del out[len(out) - a.count:]
    return "".join(out)


def scans(actions: list[Action]) -> list[str]:
    return [a.code for a in actions if isinstance(a, Scan)]
