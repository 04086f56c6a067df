"""Full garbage collections held off during a sync pass, and the collector's thresholds put back
after it, however the pass ends and however passes overlap."""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from scripts.dev.benchmarks.sync import decision_station
from db.bulk_gc import HELD_OFF_THRESHOLD2, full_collections_held_off
from db.engine import make_engine
from db.pull import pull_once
from db.push import ensure_central_schema, push_once


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


@pytest.fixture
def collections_seen() -> Iterator[list[tuple[int, tuple[int, int, int]]]]:
    """(generation, thresholds then) of every collection that starts while the test runs."""
    seen: list[tuple[int, tuple[int, int, int]]] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append((info["generation"], gc.get_threshold()))

    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)


def _churn() -> list[dict[str, int]]:
    # Enough young containers, kept alive, for the default thresholds to reach full collections.
    return [{"n": i} for i in range(300_000)]


def test_the_default_thresholds_reach_full_collections_where_held_off_ones_do_not(
        default_thresholds: tuple[int, int, int], collections_seen: list[tuple[int, tuple[int, int, int]]]) -> None:
    # What the test process already holds is set aside, so that how many collections run
    # depends on the workload, not on how many objects earlier tests left.
    gc.freeze()
    gc.collect()
    try:
        _compare_with_and_without(collections_seen)
    finally:
        gc.unfreeze()
    assert gc.get_threshold() == default_thresholds


def _compare_with_and_without(collections_seen: list[tuple[int, tuple[int, int, int]]]) -> None:
    collections_seen.clear()
    kept = _churn()
    full_before = sum(1 for generation, _ in collections_seen if generation == 2)
    collections_seen.clear()
    with full_collections_held_off():
        kept += _churn()
    young = [generation for generation, _ in collections_seen if generation == 0]
    full_held_off = [generation for generation, _ in collections_seen if generation == 2]
    assert full_before > 0  # the workload does what the defaults would pay for
    assert young and not full_held_off  # young collections still run


def test_the_thresholds_are_put_back_when_the_block_raises(default_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), full_collections_held_off():
        assert gc.get_threshold() == (700, 10, HELD_OFF_THRESHOLD2)
        raise RuntimeError("central went away")
    assert gc.get_threshold() == default_thresholds


def test_overlapping_passes_put_back_the_thresholds_from_before_the_first(
        default_thresholds: tuple[int, int, int]) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during: list[tuple[int, int, int]] = []

    def first() -> None:
        with full_collections_held_off():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with full_collections_held_off():
        second_in.set()
        first_out.wait(5)
        during.append(gc.get_threshold())  # the first pass has ended; this one is still running
    worker.join(5)
    assert during == [(700, 10, HELD_OFF_THRESHOLD2)]
    assert gc.get_threshold() == default_thresholds


def test_a_push_and_a_pull_run_with_full_collections_held_off_and_put_the_thresholds_back(
        tmp_path: Path, pg_central: Engine, default_thresholds: tuple[int, int, int],
        collections_seen: list[tuple[int, tuple[int, int, int]]]) -> None:
    station = make_engine(str(decision_station(tmp_path / "station.sqlite3", 300)))
    try:
        ensure_central_schema(pg_central)
        collections_seen.clear()
        report = push_once(station, pg_central, station_id="BENCH-01", batch_size=100)
        during_push = list(collections_seen)
        collections_seen.clear()
        pulled = pull_once(station, pg_central, echo_xids=report.echo_xids)
        during_pull = list(collections_seen)
    finally:
        station.dispose()
    assert report.pushed == 300 and not report.failed
    assert pulled.supported
    assert during_push and during_pull  # the passes allocate enough for young collections
    assert all(thresholds == (700, 10, HELD_OFF_THRESHOLD2) for _, thresholds in during_push + during_pull)
    assert gc.get_threshold() == default_thresholds
