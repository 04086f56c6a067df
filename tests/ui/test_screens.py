"""The screenshot command and the sounds' tones: real files, read back."""
from __future__ import annotations

import wave
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from scripts.dev.screenshots import SCREENS, render_screens
from ui.sounds import RATE, TONES, write_tone


@pytest.mark.parametrize("kind", sorted(TONES))
def test_each_tone_is_a_wav_of_its_notes_length(tmp_path: Path, kind: str) -> None:
    path = write_tone(tmp_path / f"{kind}.wav", TONES[kind])
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        frames = wav.readframes(wav.getnframes())
    expected_ms = sum(ms for _, ms in TONES[kind])
    assert abs(len(frames) / 2 / RATE * 1000 - expected_ms) < 1
    assert max(frames[1::2]) > 0x20  # not silence


def test_the_good_and_the_bad_sound_differ_in_pitch() -> None:
    assert min(f for f, _ in TONES["good"]) > 2 * max(f for f, _ in TONES["bad"])


def test_screenshots_render_the_chosen_screens_on_fresh_demo_data(qtbot, tmp_path: Path) -> None:
    written = render_screens(tmp_path, ["sign-in", "parcel", "history"])
    assert [p.name for p in written] == ["sign-in.png", "parcel.png", "history.png"]
    for path in written:
        image = QImage(str(path))
        assert image.width() >= 1180 and image.height() >= 600, path.name
        colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
        assert len(colours) > 5, f"{path.name} looks blank"
    assert {name for name, _ in SCREENS} >= {"sign-in", "parcel", "history", "review", "unexpected-parcel"}
