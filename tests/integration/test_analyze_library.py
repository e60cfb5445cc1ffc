"""The library's estimate (:func:`deltaglider.analyze.analyze`) against real stores: what it
reports to a progress sink, and objects that go away while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from data import release
from integration_conftest import make_config

from deltaglider.analyze import analyze, reference_of, spread
from deltaglider.cache import MemoryCache
from deltaglider.engine import DeltaStore
from deltaglider.errors import ObjectNotFound
from deltaglider.storage.base import Storage


class Recorder:
    """A progress sink that adds up what it is told; ``on_total`` runs once the sample is
    chosen, before anything is downloaded (where a concurrent writer can strike)."""

    def __init__(self, on_total: Callable[[], None] | None = None) -> None:
        self.on_total = on_total
        self.total_files = self.total_bytes = 0
        self.files = self.failed = self.bytes = 0
        self._lock = threading.Lock()

    def add_total(self, *, files: int = 0, size: int = 0) -> None:
        self.total_files += files
        self.total_bytes += size
        if self.on_total is not None:
            self.on_total()

    def advance(self, count: int) -> None:
        assert count > 0
        with self._lock:
            self.bytes += count

    def file_done(self, *, failed: bool = False) -> None:
        with self._lock:
            self.files += 1
            self.failed += failed

    def note(self, text: str) -> None:
        pass

    def check(self) -> None:
        assert (self.files, self.bytes) == (self.total_files, self.total_bytes)


def releases(storage: Storage, bucket: str, count: int = 5) -> dict[str, bytes]:
    items = {f"rel/app-{v}.zip": release(v) for v in range(1, count + 1)}
    for key, data in items.items():
        storage.put(bucket, key, data, size=len(data))
    return items


def test_progress_adds_up(storage: Storage, bucket: str) -> None:
    items = releases(storage, bucket)
    for v in (1, 2):
        storage.put(bucket, f"lib/lib-{v}.tar.gz", release(v, seed=4))
    sink = Recorder()
    result = analyze(storage, bucket, config=make_config(), sample=2, progress=sink)
    sink.check()
    assert sink.failed == 0 and result.errors == ()
    assert sink.total_files == result.sampled_objects == 3 + 2
    # A reference counts once (downloaded), a sample twice (downloaded, encoded).
    rel = next(s for s in result.spaces if s.deltaspace == "rel")
    assert rel.reference == "rel/app-3.zip"
    ref = len(items["rel/app-3.zip"])
    lib = next(s for s in result.spaces if s.deltaspace == "lib")
    assert sink.total_bytes == ref + 2 * rel.sample_size + lib.sampled_bytes + lib.sample_size


def test_a_sample_that_goes_away_is_skipped(storage: Storage, bucket: str) -> None:
    items = releases(storage, bucket)
    sink = Recorder(lambda: storage.delete(bucket, "rel/app-5.zip"))
    errors: list[tuple[str, BaseException]] = []
    result = analyze(
        storage,
        bucket,
        config=make_config(),
        sample=100,
        progress=sink,
        on_error=lambda key, exc: errors.append((key, exc)),
    )
    sink.check()
    assert sink.failed == 1
    assert [k for k, _ in errors] == ["rel/app-5.zip"] and isinstance(errors[0][1], ObjectNotFound)
    assert [k for k, _ in result.errors] == ["rel/app-5.zip"]
    (rel,) = result.spaces
    assert rel.errors == 1 and rel.sampled == 4 and rel.deltas == 3
    # It was listed: it is in the estimate, extrapolated from the others.
    assert rel.size == sum(len(v) for v in items.values())
    assert rel.sample_size == sum(len(items[f"rel/app-{v}.zip"]) for v in (1, 2, 4))
    assert rel.sample_stored < rel.estimated_stored - len(items["rel/app-3.zip"])


def test_a_reference_that_goes_away_leaves_its_deltaspace_whole(
    storage: Storage, bucket: str
) -> None:
    items = releases(storage, bucket)
    sink = Recorder(lambda: storage.delete(bucket, "rel/app-3.zip"))
    result = analyze(storage, bucket, config=make_config(), sample=100, progress=sink)
    sink.check()
    assert sink.failed == 5  # the reference, and its 4 samples never fetched
    assert [k for k, _ in result.errors] == ["rel/app-3.zip"]
    (rel,) = result.spaces
    assert rel.errors == 1 and rel.sampled == 0
    assert rel.estimated_stored == rel.size == sum(len(v) for v in items.values())
    assert result.savings == 0


def test_settings(storage: Storage, bucket: str) -> None:
    releases(storage, bucket, 3)
    store = DeltaStore(storage, MemoryCache(1 << 20), make_config(max_ratio=0.25))
    try:
        assert analyze(store, bucket).max_ratio == 0.25  # the store's config
        assert analyze(store, bucket, config=make_config()).max_ratio == 0.5
    finally:
        store.pools.shutdown()
    with pytest.raises(ValueError):
        analyze(storage, bucket, sample=0)
    with pytest.raises(ValueError):
        analyze(storage, bucket, max_sample_bytes=-1)


def test_reference_and_spread() -> None:
    assert reference_of(["a-10.zip", "a-9.zip", "a-1.zip"]) == "a-9.zip"  # version order
    assert reference_of(["a-1.zip", "a-2.zip"]) == "a-2.zip"  # as put_many: len // 2
    items = list(range(10))
    assert spread(items, 0) == []
    assert sorted(spread(items, 10)) == items
    picks = spread(items, 3)
    assert sorted(picks) == [1, 5, 8] and picks[0] == 5  # the most central first
    assert spread(items, 50) == spread(items, 10)
