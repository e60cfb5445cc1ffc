"""``deltaglider.stats.bucket_stats`` on every backend: what the CLI tests do not reach
(objects no deltaglider wrote, broken deltaspaces, prefixes through a deltaspace, progress,
the cache document)."""

from __future__ import annotations

import json

import pytest
from data import release

from deltaglider import format as fmt
from deltaglider.engine import DeltaStore
from deltaglider.errors import BucketNotFound
from deltaglider.stats import CACHE_VERSION, bucket_stats, cache_key


def put_series(store: DeltaStore, bucket: str, folder: str, versions: range) -> dict[str, int]:
    sizes = {}
    for v in versions:
        data = release(v)
        store.put(bucket, f"{folder}/app-{v}.zip", data)
        sizes[f"{folder}/app-{v}.zip"] = len(data)
    return sizes


def stored(store: DeltaStore, bucket: str, prefix: str = "") -> dict[str, int]:
    return {
        o.key: o.size
        for o in store.storage.iter_objects(bucket, prefix=prefix)
        if not o.key.startswith(fmt.RESERVED_PREFIX)
    }


class Phases:
    """A progress sink that records what it is told as ``(phase, done, total)``: ``"list"``
    (objects listed so far, from the note) or ``"head"`` (HEADs done so far, of ``total``)."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int, int | None]] = []
        self._total = self._done = 0

    def add_total(self, *, files: int = 0, size: int = 0) -> None:
        self._total += files
        self.phases.append(("head", self._done, self._total))

    def advance(self, count: int) -> None:
        pass

    def file_done(self, *, failed: bool = False) -> None:
        self._done += 1
        self.phases.append(("head", self._done, self._total))

    def note(self, text: str) -> None:
        if text:
            self.phases.append(("list", int(text.split()[1]), None))


def test_detailed_exact_and_the_cache_document(store: DeltaStore, bucket: str) -> None:
    sizes = put_series(store, bucket, "r", range(1, 5))
    sink = Phases()
    phases = sink.phases
    stats = bucket_stats(store, bucket, mode="detailed", progress=sink)
    assert stats.exact and stats.objects == 4 and stats.deltas == 4
    assert stats.logical_bytes == sum(sizes.values())
    assert stats.stored_bytes == sum(stored(store, bucket).values())
    assert stats.heads == 4 and stats.cache.status == "miss" and stats.cache.written
    # Progress: the HEADs, from none to all.
    assert phases[0] == ("head", 0, 4) and phases[-1] == ("head", 4, 4)
    _, body = store.storage.get(bucket, cache_key("", "detailed"))
    doc = json.loads(body.read())
    body.close()
    assert doc["version"] == CACHE_VERSION and doc["mode"] == "detailed" and doc["prefix"] == ""
    assert doc["validation"]["object_count"] == 5  # the reference too
    assert len(doc["validation"]["fingerprint"]) == 64
    assert doc["stats"]["logical_bytes"] == stats.logical_bytes
    assert doc["stats"]["deltaspaces"][0]["fingerprint"] == stats.deltaspaces[0].fingerprint
    again = bucket_stats(store, bucket, mode="detailed")
    assert again.cache.status == "hit" and again.heads == 0
    assert again.to_dict()["deltaspaces"] == stats.to_dict()["deltaspaces"]
    assert again.computed_at == stats.computed_at


def test_cache_keys() -> None:
    assert cache_key("", "sampled") == ".deltaglider/stats_sampled.json"
    a, b = cache_key("r/", "detailed"), cache_key("r", "detailed")
    assert a != b and a.startswith(".deltaglider/stats/") and a.endswith("_detailed.json")


def test_prefix_through_a_deltaspace(store: DeltaStore, bucket: str) -> None:
    sizes = put_series(store, bucket, "r", range(1, 4))
    keys = stored(store, bucket)
    # Deltas without their reference: the reference is counted (HEADed, as it is not listed).
    one = bucket_stats(store, bucket, "r/app-3", mode="detailed")
    assert (one.objects, one.references, one.heads) == (1, 1, 2)
    assert one.logical_bytes == sizes["r/app-3.zip"]
    assert one.stored_bytes == keys["r/app-3.zip.delta"] + keys["r/reference.bin"]
    assert one.exact and one.warnings == ()
    # The reference without its deltas: not counted, and no orphan.
    ref = bucket_stats(store, bucket, "r/ref", mode="detailed")
    assert (ref.objects, ref.stored_bytes, ref.references, ref.orphans) == (0, 0, 0, 0)
    assert ref.deltaspaces == () and ref.warnings == ()
    # The whole folder, with or without its slash.
    for prefix in ("r/", "r"):
        whole = bucket_stats(store, bucket, prefix, mode="detailed", cache=False)
        assert whole.logical_bytes == sum(sizes.values())
        assert whole.stored_bytes == sum(keys.values()) and whole.heads == 3


def test_objects_no_deltaglider_wrote(store: DeltaStore, bucket: str) -> None:
    storage = store.storage
    sizes = put_series(store, bucket, "r", range(1, 3))
    # A plain object named like a delta, a reference no delta uses, a delta whose metadata has
    # no original size, deltas whose reference is gone.
    storage.put(bucket, "r/plain.delta", b"x" * 100)
    storage.put(bucket, "orphan/reference.bin", b"y" * 300)
    sha = "ab" * 32
    meta = {"dg-ref-key": "r/reference.bin", "dg-ref-sha256": sha, "dg-file-sha256": sha}
    storage.put(bucket, "r/sizeless.zip.delta", b"s" * 70, metadata=meta)
    lost_sizes = put_series(store, bucket, "lost", range(1, 3))
    storage.delete(bucket, "lost/reference.bin")
    stats = bucket_stats(store, bucket, mode="detailed")
    spaces = {s.prefix: s for s in stats.deltaspaces}
    r = spaces["r"]
    # As stored, the plain one exactly so, the sizeless one as an estimate.
    assert r.logical_bytes == sum(sizes.values()) + 100 + 70 and not r.exact
    assert r.deltas == 4 and r.measured == 2
    orphan = spaces["orphan"]
    assert orphan.orphan and orphan.objects == 0 and orphan.stored_bytes == 300
    assert orphan.logical_bytes == 0 and orphan.exact
    assert stats.orphans == 1 and stats.references == 2
    lost = spaces["lost"]
    assert not lost.has_reference and lost.deltas == 2 and lost.reference_bytes == 0
    assert lost.logical_bytes == sum(lost_sizes.values()) and lost.exact
    assert not stats.exact
    text = "\n".join(stats.warnings)
    assert "r/plain.delta" in text and "no deltaglider metadata" in text
    assert "orphan reference" in text and "orphan/reference.bin" in text
    assert "2 delta(s) in lost/ but no lost/reference.bin" in text
    assert "r/sizeless.zip.delta" in text and "no readable original size" in text
    # Quick mode: deltas without a reference count as stored, the orphan as nothing.
    quick = {s.prefix: s for s in bucket_stats(store, bucket).deltaspaces}
    assert quick["lost"].logical_bytes == quick["lost"].stored_bytes
    assert quick["orphan"].logical_bytes == 0 and quick["orphan"].exact


def test_bad_arguments(store: DeltaStore, bucket: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        bucket_stats(store, bucket, mode="fast")  # type: ignore[arg-type]
    with pytest.raises(BucketNotFound):
        bucket_stats(store, bucket + "-missing")
