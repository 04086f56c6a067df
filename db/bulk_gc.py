"""Full garbage collections held off while a sync pass moves rows in bulk.

A push or pull holds a few thousand events' worth of small dicts and lists at a time. Under
CPython's default thresholds, every batch of them that outlives a few young collections brings
on a full collection, which walks every object the process holds (SQLAlchemy's metadata, the
modules, the batches themselves) to find no garbage: parsed rows refer to nothing cyclic. On
20,000 decision events, reading, parsing and merging the batches took 1.1-1.3 s of CPU under
the default thresholds and 0.5-0.6 s with full collections held off (the whole push: 5.6-8.2 s
of the process's CPU against 4.3-5.4 s, in turns). Young collections still run as usual, so
cycles a pass does make are freed as before, and none takes longer than it did.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections that pass before a full one is considered (CPython's default is 10): in
# practice none during a pass, a few after it.
HELD_OFF_THRESHOLD2 = 1000

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def full_collections_held_off() -> Iterator[None]:
    """Raise the threshold for full collections while the block runs, and put it back after.

    Process-wide, as the collector is: the console's sync worker and a pull may overlap, so the
    threshold set before the first of them is put back when the last one ends."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = gc.get_threshold()
            young, middle, full = _saved
            gc.set_threshold(young, middle, max(full, HELD_OFF_THRESHOLD2))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
