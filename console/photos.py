"""The bench camera's pictures: which files in its folder are new since a unit or parcel was opened."""
from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".webp")
MAX_PHOTOS = 20  # per unit, and per unidentified parcel


def new_photos(folder: Path, since: float, already: Collection[str]) -> list[str]:
    """Pictures in ``folder`` written at or after ``since`` (epoch seconds), oldest first, that are
    not attached yet. A missing or unreadable folder has none."""
    try:
        entries = [p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()]
    except OSError:
        return []
    fresh = []
    for path in entries:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if mtime >= since and str(path) not in already:
            fresh.append((mtime, str(path)))
    return [p for _, p in sorted(fresh)]
