"""Sounds a clerk hears from arm's length: one rising chirp for a good scan, a low double buzz
for a bad scan or a flag.

The tones are written as WAV files once (no sound files to license) and played by QSoundEffect
on a thread of their own: loading Qt Multimedia and opening the audio device take a tenth of a
second or more, which the GUI thread must never wait for. A machine without audio (or without
Qt Multimedia's libraries) just stays quiet; the colours still say everything.
"""
from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

RATE = 22_050
# kind -> [(frequency Hz, milliseconds)], 0 Hz is a pause
TONES: dict[str, list[tuple[int, int]]] = {
    "good": [(1046, 60), (1568, 90)],
    "bad": [(220, 160), (0, 60), (220, 160)],
}
# Which feedback level sounds like what; info is silent.
LEVEL_SOUND = {"success": "good", "error": "bad", "warning": "bad"}


def write_tone(path: Path, notes: list[tuple[int, int]], volume: float = 0.5) -> Path:
    frames = bytearray()
    for freq, ms in notes:
        n = RATE * ms // 1000
        fade = max(1, RATE // 200)  # 5 ms ramps: no clicks
        for i in range(n):
            env = min(1.0, i / fade, (n - i) / fade)
            sample = 0.0 if freq == 0 else math.sin(2 * math.pi * freq * i / RATE) * env * volume
            frames += struct.pack("<h", int(sample * 32767))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path


class _Player(QObject):
    """Lives on the sound thread; loads Qt Multimedia on the first sound."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self._effects: dict[str, Any] | None = None
        self._broken = False

    @Slot(str)
    def play(self, kind: str) -> None:
        if self._broken:
            return
        if self._effects is None:
            try:
                from PySide6.QtCore import QUrl
                from PySide6.QtMultimedia import QMediaDevices, QSoundEffect

                self._effects = {}
                if QMediaDevices.defaultAudioOutput().isNull():
                    log.warning("sounds are off: this machine has no audio output")
                    self._broken = True
                    return
                for name, notes in TONES.items():
                    effect = QSoundEffect(self)
                    effect.setSource(QUrl.fromLocalFile(str(write_tone(self.folder / f"{name}.wav", notes))))
                    self._effects[name] = effect
            except (ImportError, OSError) as exc:  # no audio libraries or no disk: stay quiet
                log.warning("sounds are off: %s", exc)
                self._broken = True
                return
        effect = self._effects.get(kind)
        if effect is not None:
            effect.play()


class Sounds(QObject):
    """``play(kind)`` from the GUI thread; ``played`` keeps what was asked for (tests read it)."""

    _request = Signal(str)

    def __init__(self, folder: Path, parent: QObject | None = None, *, enabled: bool = True) -> None:
        super().__init__(parent)
        self.played: list[str] = []
        self.enabled = enabled
        self._thread: QThread | None = None
        self._player: _Player | None = None
        self._folder = folder

    def play(self, kind: str) -> None:
        self.played.append(kind)
        del self.played[:-50]
        if not self.enabled:
            return
        if self._thread is None:
            self._thread = QThread()
            self._thread.setObjectName("sounds")
            self._player = _Player(self._folder)
            self._player.moveToThread(self._thread)
            self._thread.finished.connect(self._player.deleteLater)
            self._request.connect(self._player.play)
            self._thread.start()
        self._request.emit(kind)

    def for_level(self, level: str) -> None:
        kind = LEVEL_SOUND.get(level)
        if kind:
            self.play(kind)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait(5_000)
            self._thread = None
