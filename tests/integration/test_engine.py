"""The delta engine against real stores: SeaweedFS, moto and the local backend."""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from data import get_bytes, noise, release
from integration_conftest import make_config

from deltaglider import format as fmt
from deltaglider.cache import FilesystemCache, MemoryCache
from deltaglider.engine import DeltaStore
from deltaglider.errors import (
    BucketNotFound,
    IntegrityError,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
)
from deltaglider.storage.base import Body, ListPage, ObjectInfo, Storage
from deltaglider.storage.s3 import S3Storage


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def physical_keys(storage: Storage, bucket: str) -> list[str]:
    return sorted(o.key for o in storage.iter_objects(bucket))


# --- storing and reading ---------------------------------------------------------------------


def test_first_upload_creates_reference_and_zero_diff_delta(store: DeltaStore, bucket: str) -> None:
    v1 = release(1)
    result = store.put(bucket, "releases/app-1.zip", v1)
    assert result.is_delta and result.created_reference
    assert result.ref_key == "releases/reference.bin"
    assert physical_keys(store.storage, bucket) == [
        "releases/app-1.zip.delta",
        "releases/reference.bin",
    ]
    ref = store.storage.head(bucket, "releases/reference.bin")
    assert ref.size == len(v1)
    assert ref.metadata is not None
    assert ref.metadata["dg-note"] == "reference"
    assert ref.metadata["dg-source-name"] == "app-1.zip"
    assert ref.metadata["dg-file-sha256"] == sha(v1)
    assert ref.metadata["dg-tool"] == fmt.TOOL
    delta = store.storage.head(bucket, "releases/app-1.zip.delta")
    meta = delta.metadata or {}
    # Everything the original DeltaGlider's reader requires on a delta.
    for field in (
        "dg-tool",
        "dg-original-name",
        "dg-file-sha256",
        "dg-file-size",
        "dg-created-at",
        "dg-ref-key",
        "dg-ref-sha256",
        "dg-delta-size",
    ):
        assert meta.get(field), field
    assert meta["dg-note"] == "zero-diff (reference identical)"
    assert meta["dg-ref-key"] == "releases/reference.bin"
    assert meta["dg-ref-sha256"] == sha(v1) == meta["dg-file-sha256"]
    assert int(meta["dg-file-size"]) == len(v1)
    assert int(meta["dg-delta-size"]) == delta.size
    assert meta["dg-created-at"].endswith("Z")
    assert get_bytes(store, bucket, "releases/app-1.zip") == v1


def test_later_versions_are_small_deltas(store: DeltaStore, bucket: str) -> None:
    versions = [release(v) for v in range(1, 6)]
    for v, data in enumerate(versions, 1):
        result = store.put(bucket, f"r/app-{v}.zip", data)
        assert result.is_delta and result.created_reference == (v == 1)
        if v > 1:
            assert result.stored_size < len(data) // 10
    for v, data in enumerate(versions, 1):
        assert get_bytes(store, bucket, f"r/app-{v}.zip") == data
        head = store.head(bucket, f"r/app-{v}.zip")
        assert head.is_delta and head.size == len(data) and head.sha256 == sha(data)
        assert head.stored_size < len(data)


def test_put_from_path_stream_and_bytes(store: DeltaStore, bucket: str, tmp_path: Path) -> None:
    data = release(2)
    path = tmp_path / "app.zip"
    path.write_bytes(data)
    store.put(bucket, "a/from-path.zip", path)
    store.put(bucket, "a/from-stream.zip", io.BytesIO(data))
    store.put(bucket, "a/from-bytes.zip", bytearray(data))
    for name in ("from-path", "from-stream", "from-bytes"):
        assert get_bytes(store, bucket, f"a/{name}.zip") == data


def test_direct_objects_keep_metadata_and_content_type(store: DeltaStore, bucket: str) -> None:
    result = store.put(
        bucket, "docs/readme.txt", b"hello", metadata={"Build": "42"}, content_type="text/plain"
    )
    assert not result.is_delta and result.physical_key == "docs/readme.txt"
    head = store.head(bucket, "docs/readme.txt")
    assert head.metadata == {"build": "42"}
    assert head.content_type == "text/plain"
    assert head.size == 5 and not head.is_delta
    info = store.storage.head(bucket, "docs/readme.txt")
    assert (info.metadata or {})["dg-compression"] == "none"
    store.put(
        bucket, "docs/app.zip", release(1), metadata={"team": "x"}, content_type="application/zip"
    )
    head = store.head(bucket, "docs/app.zip")
    assert head.is_delta and head.metadata == {"team": "x"}
    assert head.content_type == "application/zip"


def test_reserved_metadata_keys_are_refused(store: DeltaStore, bucket: str) -> None:
    with pytest.raises(InvalidKey, match="reserved"):
        store.put(bucket, "x.txt", b"1", metadata={"dg-file-sha256": "0" * 64})
    with pytest.raises(InvalidKey, match="ASCII"):
        store.put(bucket, "x.txt", b"1", metadata={"note": "héllo"})
    # Unprefixed names are the caller's own on our objects (legacy spellings are read only
    # from objects without any dg- field).
    store.put(bucket, "x.zip", release(1), metadata={"note": "mine", "file_size": "7"})
    head = store.head(bucket, "x.zip")
    assert head.metadata == {"note": "mine", "file_size": "7"}
    assert head.size == len(release(1))


def test_undeltable_file_is_stored_direct(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    blob = noise(2 << 20, 1)
    result = store.put(bucket, "r/other.zip", blob)
    assert not result.is_delta and result.direct_reason == "ratio"
    assert result.physical_key == "r/other.zip"
    assert get_bytes(store, bucket, "r/other.zip") == blob
    assert store.put(bucket, "r/app-2.zip", release(2), max_ratio=0.0001).direct_reason == "ratio"
    assert store.put(bucket, "r/app-3.zip", release(3), delta=False).direct_reason == ""
    assert not store.head(bucket, "r/app-3.zip").is_delta


def test_empty_file(store: DeltaStore, bucket: str) -> None:
    result = store.put(bucket, "r/empty.zip", b"")
    assert not result.is_delta
    assert get_bytes(store, bucket, "r/empty.zip") == b""
    assert store.head(bucket, "r/empty.zip").size == 0


def test_non_ascii_names(store: DeltaStore, bucket: str) -> None:
    key = "releases/ünïcödé 版本/app-1.0 ✓.zip"
    data = release(1)
    store.put(bucket, key, data)
    assert get_bytes(store, bucket, key) == data
    assert [o.key for o in store.list_objects(bucket, prefix="releases/").objects] == [key]
    meta = store.storage.head(bucket, fmt.delta_key(key)).metadata or {}
    assert meta["dg-original-name"].isascii()
    assert fmt.decode_name(meta["dg-original-name"]) == "app-1.0 ✓.zip"


@pytest.mark.parametrize("name", ["reference.bin", "notes.delta", "weird.direct", "x.zip.delta"])
def test_reserved_names_round_trip(store: DeltaStore, bucket: str, name: str) -> None:
    store.put(bucket, "d/app-1.zip", release(1))
    data = f"user file called {name}".encode()
    result = store.put(bucket, f"d/{name}", data)
    assert result.physical_key.endswith(".direct") or result.physical_key.endswith(".delta")
    assert get_bytes(store, bucket, f"d/{name}") == data
    assert get_bytes(store, bucket, "d/app-1.zip") == release(1)
    keys = [o.key for o in store.list_objects(bucket, prefix="d/").objects]
    assert keys == sorted(["d/app-1.zip", f"d/{name}"])
    store.delete(bucket, f"d/{name}")
    assert get_bytes(store, bucket, "d/app-1.zip") == release(1)


def test_invalid_keys(store: DeltaStore, bucket: str) -> None:
    for key in ("", ".deltaglider/x.zip", "dir/", "x" * 1100):
        with pytest.raises(InvalidKey):
            store.put(bucket, key, b"1")


def test_missing_objects(store: DeltaStore, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        store.head(bucket, "nope.zip")
    with pytest.raises(ObjectNotFound):
        store.get(bucket, "nope.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.delete(bucket, "nope.zip") is False


# --- ranges and integrity --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["r/app-2.zip", "r/notes.txt"])
def test_ranges(store: DeltaStore, bucket: str, key: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    data = release(2) if key.endswith(".zip") else noise(100_000, 3)
    store.put(bucket, key, data)
    for start, end in ((0, 10), (5, 5000), (len(data) - 7, None), (1000, len(data))):
        assert get_bytes(store, bucket, key, start=start, end=end) == data[start:end]
        _, reader = store.open(bucket, key, start=start, end=end)
        with reader:
            assert reader.read() == data[start:end]
    with pytest.raises(InvalidRange):
        get_bytes(store, bucket, key, start=len(data) + 5)


def _tamper(storage: Storage, bucket: str, key: str, change: Any) -> None:
    info, body = storage.get(bucket, key)
    data = body.read()
    body.close()
    storage.put(bucket, key, change(data), metadata=info.metadata, content_type=info.content_type)


def test_corrupt_delta_never_reaches_the_destination(
    store: DeltaStore, bucket: str, tmp_path: Path
) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    store.put(bucket, "r/app-2.zip", release(2))
    _tamper(
        store.storage,
        bucket,
        "r/app-2.zip.delta",
        lambda d: d[:-40] + bytes(b ^ 0x5A for b in d[-40:]),
    )
    dest = tmp_path / "out" / "app-2.zip"
    dest.parent.mkdir()
    with pytest.raises(IntegrityError):
        store.get(bucket, "r/app-2.zip", dest)
    assert list(dest.parent.iterdir()) == []
    _, reader = store.open(bucket, "r/app-2.zip")
    with pytest.raises(IntegrityError), reader:
        reader.read()


def test_corrupt_direct_object_is_detected(store: DeltaStore, bucket: str, tmp_path: Path) -> None:
    store.put(bucket, "d/notes.txt", b"the right bytes")
    _tamper(store.storage, bucket, "d/notes.txt", lambda d: d.replace(b"right", b"wrong"))
    with pytest.raises(IntegrityError, match="sha256"):
        store.get(bucket, "d/notes.txt", tmp_path / "notes.txt")
    assert not (tmp_path / "notes.txt").exists()


def test_replaced_reference_is_detected(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    store.put(bucket, "r/app-2.zip", release(2))
    _tamper(
        store.storage, bucket, "r/reference.bin", lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:]
    )
    fresh = DeltaStore(store.storage, MemoryCache(64 << 20), make_config())
    with pytest.raises(IntegrityError, match="reference"):
        get_bytes(fresh, bucket, "r/app-2.zip")


def test_foreign_objects_are_served_as_they_are(store: DeltaStore, bucket: str) -> None:
    store.storage.put(bucket, "f/plain.bin", b"written by another tool")
    store.storage.put(bucket, "f/report.zip", b"not a delta, no metadata")
    assert get_bytes(store, bucket, "f/plain.bin") == b"written by another tool"
    assert get_bytes(store, bucket, "f/report.zip") == b"not a delta, no metadata"
    head = store.head(bucket, "f/plain.bin")
    assert head.kind == "foreign" and head.size == len(b"written by another tool")
    assert {o.key for o in store.list_objects(bucket, prefix="f/").objects} == {
        "f/plain.bin",
        "f/report.zip",
    }


def test_names_ending_in_direct_read_back(store: DeltaStore, bucket: str) -> None:
    """Another tool's (or the original's) ``build.direct`` is listed and read under that name,
    and ours round-trip too, escaped only where the name could be taken for an escape."""
    store.storage.put(bucket, "d/build.direct", b"foreign")
    store.put(bucket, "d/mine.direct", b"ours, as is")
    store.put(bucket, "d/notes.delta", b"escaped", delta=False)
    store.put(bucket, "d/notes.delta.direct", b"escaped twice", delta=False)
    listed = {o.key: o for o in store.list_objects(bucket, prefix="d/", logical_sizes=True).objects}
    assert sorted(listed) == [
        "d/build.direct",
        "d/mine.direct",
        "d/notes.delta",
        "d/notes.delta.direct",
    ]
    assert get_bytes(store, bucket, "d/build.direct") == b"foreign"
    assert store.head(bucket, "d/build.direct").kind == "foreign"
    assert get_bytes(store, bucket, "d/mine.direct") == b"ours, as is"
    assert get_bytes(store, bucket, "d/notes.delta") == b"escaped"
    assert get_bytes(store, bucket, "d/notes.delta.direct") == b"escaped twice"
    assert listed["d/notes.delta.direct"].size == len(b"escaped twice")
    assert sorted(physical_keys(store.storage, bucket)) == [
        "d/build.direct",
        "d/mine.direct",
        "d/notes.delta.direct",
        "d/notes.delta.direct.direct",
    ]
    assert store.delete(bucket, "d/build.direct")
    assert get_bytes(store, bucket, "d/mine.direct") == b"ours, as is"


# --- listing ---------------------------------------------------------------------------------


def test_listing_is_the_logical_view(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    store.put(bucket, "r/app-2.zip", release(2))
    store.put(bucket, "r/notes.txt", b"notes")
    store.put(bucket, "r/sub/app-1.zip", release(1))
    store.storage.put(bucket, ".deltaglider/stats.json", b"{}")
    page = store.list_objects(bucket, prefix="r/", delimiter="/")
    assert [o.key for o in page.objects] == ["r/app-1.zip", "r/app-2.zip", "r/notes.txt"]
    assert page.prefixes == ["r/sub/"]
    assert [o.size for o in page.objects] == [None, None, 5]
    sized = store.list_objects(bucket, prefix="r/", delimiter="/", logical_sizes=True)
    assert [o.size for o in sized.objects] == [len(release(1)), len(release(2)), 5]
    assert all(o.stored_size <= (o.size or 0) for o in sized.objects)
    top = store.list_objects(bucket, delimiter="/")
    assert top.prefixes == ["r/"] and top.objects == []
    everything = [o.key for o in store.iter_objects(bucket)]
    assert everything == ["r/app-1.zip", "r/app-2.zip", "r/notes.txt", "r/sub/app-1.zip"]


@pytest.mark.slow
def test_pagination_lists_every_key_once(store: DeltaStore, bucket: str) -> None:
    keys = [f"p/file-{i:05d}.txt" for i in range(1040)]  # more than one page of the store
    puts = store.pools.operations.as_completed(
        lambda k: store.put(bucket, k, k.encode()), ((k,) for k in keys)
    )
    for item, _, exc in puts:
        assert exc is None, (item, exc)
    store.put(bucket, "p/app-1.zip", release(1))
    store.put(bucket, "p/app-2.zip", release(2))
    expected = sorted([*keys, "p/app-1.zip", "p/app-2.zip"])
    for max_keys in (1000, 333, 97):
        seen: list[str] = []
        token = None
        while True:
            page = store.list_objects(bucket, prefix="p/", max_keys=max_keys, token=token)
            assert len(page.objects) + len(page.prefixes) <= max_keys
            keys_in_page = [o.key for o in page.objects]
            assert keys_in_page == sorted(keys_in_page)
            seen += keys_in_page
            if not page.next_token:
                break
            token = page.next_token
        assert sorted(seen) == expected
        assert len(seen) == len(set(seen))


def test_both_representations_the_newer_wins(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "t/app-1.zip", release(1))
    store.put(bucket, "t/app-2.zip", release(2), delta=False)  # stored direct
    store.put(bucket, "t/app-2.zip", release(3))  # now a delta: the direct one is older
    assert sorted(physical_keys(store.storage, bucket)) == [
        "t/app-1.zip.delta",
        "t/app-2.zip",
        "t/app-2.zip.delta",
        "t/reference.bin",
    ]
    listed = [o.key for o in store.list_objects(bucket, prefix="t/").objects]
    assert listed == ["t/app-1.zip", "t/app-2.zip"]
    for max_keys in (1, 2):
        seen, token = [], None
        while True:
            page = store.list_objects(bucket, prefix="t/", max_keys=max_keys, token=token)
            seen += [o.key for o in page.objects]
            if not page.next_token:
                break
            token = page.next_token
        assert seen == ["t/app-1.zip", "t/app-2.zip"]
    assert get_bytes(store, bucket, "t/app-2.zip") == release(3)
    # the stale copy is removed in the background
    store.pools.requests.submit(lambda: None).result()
    store.delete(bucket, "t/app-2.zip")
    with pytest.raises(ObjectNotFound):
        store.head(bucket, "t/app-2.zip")


@pytest.mark.parametrize("skew", [0, -30], ids=["clocks-agree", "writer-clock-behind"])
def test_head_and_list_agree_on_the_newer_of_two_forms_within_a_second(
    store: DeltaStore, bucket: str, skew: int
) -> None:
    """Both stored forms of a key written within one second of the store's clock (a writer
    replacing a delta by a direct object, or the reverse, at once): a HEAD (dates to the
    second, the creation times deltaglider records) and a listing (finer dates on some stores,
    no metadata) must name the same one the object. ``skew``: seconds the second writer's
    clock is off, as recorded in its ``dg-created-at``."""
    store.put(bucket, "s/app-1.zip", release(1))
    for attempt in range(20):
        key = f"s/app-{attempt + 2}.zip"
        store.put(bucket, key, release(2))  # the delta form
        direct = release(3)
        meta = fmt.direct_metadata(
            original_name=fmt.basename(key),
            file_sha256=sha(direct),
            file_size=len(direct),
            created=datetime.now(timezone.utc) + timedelta(seconds=skew),
        )
        store.storage.put(bucket, key, direct, size=len(direct), metadata=meta)
        times = [store.storage.head(bucket, k).last_modified for k in (fmt.delta_key(key), key)]
        if times[0] and times[1] and int(times[0].timestamp()) == int(times[1].timestamp()):
            break
    else:
        pytest.fail("no two writes landed within one second of the store's clock in 20 tries")
    listed = {o.key: o.physical_key for o in store.list_objects(bucket, prefix="s/").objects}
    for max_keys in (1, 2, 3):  # the twins on one page, or across two
        token, seen = None, {}
        while True:
            page = store.list_objects(bucket, prefix="s/", max_keys=max_keys, token=token)
            seen.update({o.key: o.physical_key for o in page.objects})
            if not page.next_token:
                break
            token = page.next_token
        assert seen == listed, max_keys
    assert store.head(bucket, key).physical_key == listed[key]
    with store.open_object(bucket, key) as opened:
        assert opened.summary.physical_key == listed[key]


# --- delete and copy -------------------------------------------------------------------------


def test_reference_goes_with_the_last_delta(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    store.put(bucket, "r/app-2.zip", release(2))
    store.put(bucket, "r/notes.txt", b"direct files do not keep a reference alive")
    assert store.delete(bucket, "r/app-1.zip")
    assert "r/reference.bin" in physical_keys(store.storage, bucket)
    assert get_bytes(store, bucket, "r/app-2.zip") == release(2)
    assert store.delete(bucket, "r/app-2.zip")
    assert physical_keys(store.storage, bucket) == ["r/notes.txt"]
    # The deltaspace starts afresh.
    store.put(bucket, "r/app-3.zip", release(3))
    assert get_bytes(store, bucket, "r/app-3.zip") == release(3)


def test_delete_prefix_and_many(store: DeltaStore, bucket: str) -> None:
    for v in range(1, 4):
        store.put(bucket, f"a/app-{v}.zip", release(v))
        store.put(bucket, f"b/app-{v}.zip", release(v))
    store.put(bucket, "a/notes.txt", b"x")
    assert store.delete_prefix(bucket, "a/") == 4
    assert [o.key for o in store.iter_objects(bucket)] == [f"b/app-{v}.zip" for v in (1, 2, 3)]
    assert not [k for k in physical_keys(store.storage, bucket) if k.startswith("a/")]
    assert store.delete_many(bucket, [f"b/app-{v}.zip" for v in (1, 2, 3)]) == {}
    assert physical_keys(store.storage, bucket) == []


def test_unused_references_and_stale_bookkeeping_are_removed(
    store: DeltaStore, bucket: str
) -> None:
    """What a killed delete leaves: a reference whose deltas are gone (no listing shows it), a
    reference set aside under ``trash/``, a create-only probe. ``drop_unused_references``
    removes the first, under its prefix only; the others once they are older than any call
    that could still use them; other bookkeeping and every delta's reference stay."""
    for space in ("r", "s", "t/u"):
        store.put(bucket, f"{space}/app-1.zip", release(1))
        store.put(bucket, f"{space}/app-2.zip", release(2))
    for v in (1, 2):  # a run killed after the deltas of r and t/u, before their references
        store.storage.delete(bucket, f"r/app-{v}.zip.delta")
        store.storage.delete(bucket, f"t/u/app-{v}.zip.delta")
    left = [".deltaglider/trash/0123456789abcdef-000000000000.bin", ".deltaglider/probe/00"]
    kept = [".deltaglider/refs/keep.bin", ".deltaglider/stats/keep.json"]
    for key in left + kept:
        store.storage.put(bucket, key, b"bookkeeping")
    assert store.drop_unused_references(bucket, "t/") == ["t/u"]
    assert store.drop_unused_references(bucket, "") == ["r"]
    physical = physical_keys(store.storage, bucket)
    assert [k for k in physical if k.endswith("reference.bin")] == ["s/reference.bin"]
    assert set(left + kept) <= set(physical)  # fresh: maybe a call in flight still uses them
    assert get_bytes(store, bucket, "s/app-2.zip") == release(2)
    assert sorted(store.drop_stale_bookkeeping(bucket, older_than=timedelta(0))) == sorted(left)
    physical = physical_keys(store.storage, bucket)
    assert not set(left) & set(physical) and set(kept) <= set(physical)
    assert [o.key for o in store.iter_objects(bucket)] == ["s/app-1.zip", "s/app-2.zip"]


def test_copy(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "r/app-1.zip", release(1))
    store.put(bucket, "r/app-2.zip", release(2), metadata={"build": "7"})
    store.put(bucket, "r/notes.txt", b"notes", content_type="text/plain")
    # Same reference (the deltaspace itself): a server-side copy of the delta.
    same = store.copy(bucket, "r/app-2.zip", bucket, "r/app-2-copy.zip")
    assert same.is_delta
    assert get_bytes(store, bucket, "r/app-2-copy.zip") == release(2)
    assert store.head(bucket, "r/app-2-copy.zip").metadata == {"build": "7"}
    # Another deltaspace: rebuilt and stored against (or as) its reference.
    other = store.copy(bucket, "r/app-2.zip", bucket, "s/app-2.zip", metadata={"k": "v"})
    assert other.is_delta
    assert get_bytes(store, bucket, "s/app-2.zip") == release(2)
    assert store.head(bucket, "s/app-2.zip").metadata == {"k": "v"}
    direct = store.copy(bucket, "r/notes.txt", bucket, "s/notes.txt")
    assert not direct.is_delta
    assert get_bytes(store, bucket, "s/notes.txt") == b"notes"
    assert store.head(bucket, "s/notes.txt").content_type == "text/plain"


def test_copy_between_buckets(store: DeltaStore, bucket: str) -> None:
    other = f"{bucket}-b"
    store.storage.create_bucket(other)
    try:
        store.put(bucket, "r/app-1.zip", release(1))
        store.put(bucket, "r/app-2.zip", release(2), metadata={"build": "7"})
        store.put(bucket, "r/notes.txt", b"notes", content_type="text/plain")
        # The other bucket's deltaspace has no reference yet: the copy becomes it.
        first = store.copy(bucket, "r/app-2.zip", other, "r/app-2.zip")
        assert get_bytes(store, other, "r/app-2.zip") == release(2)
        assert store.head(other, "r/app-2.zip").metadata == {"build": "7"}
        # Then a delta against that reference, never against the source bucket's.
        second = store.copy(bucket, "r/app-1.zip", other, "r/app-1.zip")
        assert first.is_delta and second.is_delta
        got = store.head(other, "r/app-1.zip")
        ref = store.storage.head(other, "r/reference.bin")
        assert got.ref_key == "r/reference.bin"
        assert (
            got.ref_sha256
            == fmt.parse_metadata(ref.metadata, ref.key).file_sha256
            == sha(release(2))
        )
        assert get_bytes(store, other, "r/app-1.zip") == release(1)
        assert store.copy(bucket, "r/notes.txt", other, "n/notes.txt").is_delta is False
        assert store.head(other, "n/notes.txt").content_type == "text/plain"
        # The source is untouched; a fresh engine reads both buckets.
        fresh = DeltaStore(store.storage, MemoryCache(64 << 20), make_config())
        assert get_bytes(fresh, bucket, "r/app-2.zip") == release(2)
        assert get_bytes(fresh, other, "r/app-1.zip") == release(1)
        assert get_bytes(fresh, other, "n/notes.txt") == b"notes"
    finally:
        keys = [o.key for o in store.storage.iter_objects(other)]
        if keys:
            store.storage.delete_many(other, keys)
        store.storage.delete_bucket(other)


# --- requests --------------------------------------------------------------------------------


class CountingStorage(Storage):
    """A real store, with each request it receives counted."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.conditional_writes = inner.conditional_writes
        self.calls: Counter[str] = Counter()

    def _count(self, name: str) -> None:
        self.calls[name] += 1

    def head(self, bucket: str, key: str) -> ObjectInfo:
        self._count("head")
        return self.inner.head(bucket, key)

    def head_or_none(self, bucket: str, key: str) -> ObjectInfo | None:
        self._count("head")
        return self.inner.head_or_none(bucket, key)

    def get(self, bucket: str, key: str, **kw: Any) -> tuple[ObjectInfo, Body]:
        self._count("get")
        return self.inner.get(bucket, key, **kw)

    def put(self, bucket: str, key: str, body: bytes | BinaryIO, **kw: Any) -> ObjectInfo:
        self._count("put")
        return self.inner.put(bucket, key, body, **kw)

    def delete(self, bucket: str, key: str, **kw: Any) -> None:
        self._count("delete")
        self.inner.delete(bucket, key, **kw)

    def list_objects(self, bucket: str, **kw: Any) -> ListPage:
        self._count("list")
        return self.inner.list_objects(bucket, **kw)

    def copy(self, src_bucket: str, src_key: str, bucket: str, key: str, **kw: Any) -> ObjectInfo:
        self._count("copy")
        return self.inner.copy(src_bucket, src_key, bucket, key, **kw)

    def create_bucket(self, bucket: str) -> None:
        self.inner.create_bucket(bucket)

    def delete_bucket(self, bucket: str) -> None:
        self.inner.delete_bucket(bucket)

    def head_bucket(self, bucket: str) -> None:
        self._count("head_bucket")
        self.inner.head_bucket(bucket)

    def list_buckets(self) -> Any:
        return self.inner.list_buckets()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _warm_engines(storage: Storage, bucket: str, tmp_path: Path) -> tuple[DeltaStore, Any]:
    """An engine with w/app-1 and w/app-2 stored, and a maker of new engines (new processes)
    sharing its encrypted filesystem cache."""
    key = os.urandom(32)
    config = make_config(
        cache_backend="filesystem", cache_dir=tmp_path / "cache", cache_encryption_key=key
    )

    def engine() -> DeltaStore:
        return DeltaStore(storage, FilesystemCache(tmp_path / "cache", 1 << 30, key), config)

    store = engine()
    store.put(bucket, "w/app-1.zip", release(1))
    store.put(bucket, "w/app-2.zip", release(2))
    return store, engine


def test_warm_cache_costs_two_requests(storage: Storage, bucket: str, tmp_path: Path) -> None:
    counting = CountingStorage(storage)
    store, engine = _warm_engines(counting, bucket, tmp_path)
    counting.calls.clear()
    store.put(bucket, "w/app-3.zip", release(3))
    assert counting.total <= 2, counting.calls
    counting.calls.clear()
    assert get_bytes(store, bucket, "w/app-2.zip") == release(2)
    assert counting.total <= 2, counting.calls
    # A new process (a new engine) sharing the cache key fetches no reference either.
    fresh = engine()
    counting.calls.clear()
    assert get_bytes(fresh, bucket, "w/app-3.zip") == release(3)
    assert counting.total <= 2, counting.calls


@pytest.mark.parametrize("backend", ["seaweedfs", "moto"])  # the local store sends none
def test_warm_cache_request_counts_on_the_wire(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    """The same bar counted where it costs: HTTP requests botocore sends (a storage call may
    send more than one: a HEAD's bodyless 404 once asked the bucket whether it exists)."""
    assert isinstance(storage, S3Storage)
    sent: list[str] = []

    def count(request: Any, **_: Any) -> None:
        sent.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 2)[-1]}")

    storage.client.meta.events.register("before-send.s3", count)
    store, engine = _warm_engines(storage, bucket, tmp_path)
    sent.clear()
    store.put(bucket, "w/app-3.zip", release(3))  # PUT the delta, HEAD the reference after
    assert len(sent) <= 2, sent
    sent.clear()
    assert get_bytes(store, bucket, "w/app-2.zip") == release(2)  # GET the delta, HEAD the twin
    assert len(sent) <= 2, sent
    fresh = engine()
    sent.clear()
    assert get_bytes(fresh, bucket, "w/app-3.zip") == release(3)
    assert len(sent) <= 2, sent
    sent.clear()
    assert fresh.head(bucket, "w/app-3.zip").is_delta  # HEADs of both representations
    assert len(sent) <= 2, sent
    # A new process does not know the deltaspace's reference yet: one HEAD learns it (README,
    # "Requests"); the second upload of that process is back to two.
    sent.clear()
    fresh.put(bucket, "w/app-4.zip", release(4))
    assert len(sent) <= 3, sent
    sent.clear()
    fresh.put(bucket, "w/app-5.zip", release(5))
    assert len(sent) <= 2, sent
    # Not found still tells a missing key from a missing bucket (on the not-found path only).
    with pytest.raises(ObjectNotFound):
        fresh.head(bucket, "w/none.zip")
    with pytest.raises(BucketNotFound):
        fresh.head(f"{bucket}-none", "w/none.zip")
    with pytest.raises(BucketNotFound):
        get_bytes(fresh, f"{bucket}-none", "w/none.zip")
    with pytest.raises(BucketNotFound):
        fresh.delete(f"{bucket}-none", "w/none.zip")
    assert fresh.delete(bucket, "w/none.zip") is False


# --- concurrency (threads; processes in test_races.py) ---------------------------------------


def test_concurrent_writers_into_a_new_deltaspace(store: DeltaStore, bucket: str) -> None:
    versions = {f"n/app-{v}.zip": release(v) for v in range(1, 9)}
    barrier = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def upload(key: str, data: bytes) -> None:
        # Each writer has its own engine: nothing shared but the store.
        engine = DeltaStore(store.storage, MemoryCache(64 << 20), make_config())
        try:
            barrier.wait()
            engine.put(bucket, key, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=kv) for kv in versions.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert physical_keys(store.storage, bucket).count("n/reference.bin") == 1
    for key, data in versions.items():
        assert get_bytes(store, bucket, key) == data


def test_writer_recovers_when_the_reference_is_removed_meanwhile(
    store: DeltaStore, bucket: str
) -> None:
    """A cleanup removes the reference between a writer's encode and its check: the writer
    notices and stores again, so the acknowledged file stays readable."""
    store.put(bucket, "c/app-1.zip", release(1))
    writer = DeltaStore(store.storage, MemoryCache(64 << 20), make_config())
    writer.put(bucket, "c/app-2.zip", release(2))  # warm: knows the reference
    store.delete(bucket, "c/app-1.zip")
    store.delete(bucket, "c/app-2.zip")  # last delta: the reference goes
    assert physical_keys(store.storage, bucket) == []
    result = writer.put(bucket, "c/app-3.zip", release(3))
    assert result.is_delta
    fresh = DeltaStore(store.storage, MemoryCache(64 << 20), make_config())
    assert get_bytes(fresh, bucket, "c/app-3.zip") == release(3)


def test_metadata_of_original_spellings(store: DeltaStore, bucket: str) -> None:
    """Objects with legacy metadata names (5.x bare names, 6.0 underscores) read back."""
    data = release(1)
    s = sha(data)
    store.storage.put(bucket, "l/reference.bin", data, metadata={"file_sha256": s})
    delta = store.storage  # build a delta the way 5.x stored it: bare underscored names
    from deltaglider.codec import encode

    d = encode(data, release(2))
    delta.put(
        bucket,
        "l/app-2.zip.delta",
        d,
        metadata={
            "original_name": "app-2.zip",
            "file_sha256": sha(release(2)),
            "file_size": str(len(release(2))),
            "created_at": "2024-01-01T00:00:00",
            "ref_key": "l/reference.bin",
            "ref_sha256": s,
            "delta_size": str(len(d)),
            "tool": "deltaglider/5.0.0",
        },
    )
    delta.put(
        bucket,
        "l/notes.txt",
        b"legacy direct",
        metadata={
            "dg_original_name": "notes.txt",
            "dg_file_sha256": sha(b"legacy direct"),
            "dg_file_size": "13",
            "dg_compression": "none",
        },
    )
    assert get_bytes(store, bucket, "l/app-2.zip") == release(2)
    assert store.head(bucket, "l/app-2.zip").size == len(release(2))
    assert get_bytes(store, bucket, "l/notes.txt") == b"legacy direct"
    assert store.head(bucket, "l/notes.txt").metadata == {}


def test_many_operations_at_once_do_not_deadlock(storage: Storage, bucket: str) -> None:
    """Operations run on the engine's pool fan out requests of their own: with fewer workers
    than operations, that must still finish (a nested wait on the same pool would not)."""
    store = DeltaStore(storage, MemoryCache(64 << 20), make_config(max_workers=2))
    keys = [f"m/app-{v}.zip" for v in range(1, 9)]
    for key, v in zip(keys, range(1, 9), strict=True):
        store.put(bucket, key, release(v))
    outcome: dict[str, Any] = {}

    def work() -> None:
        got = {
            item[0]: result
            for item, result, exc in store.pools.operations.as_completed(
                lambda k: get_bytes(store, bucket, k), ((k,) for k in keys)
            )
        }
        outcome["got"] = got
        outcome["deleted"] = store.delete_many(bucket, keys)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), "deadlock: multi-file operations never finished"
    assert {k: sha(v) for k, v in outcome["got"].items()} == {
        k: sha(release(v)) for k, v in zip(keys, range(1, 9), strict=True)
    }
    assert outcome["deleted"] == {}
    store.close()


def test_put_many_makes_the_middle_release_the_reference(store: DeltaStore, bucket: str) -> None:
    names = [f"b/app-1.{v}.zip" for v in (1, 2, 3, 9, 10, 11, 12)]  # natural order, not ASCII
    data = {n: release(i + 1) for i, n in enumerate(names)}
    results = {k: (r, e) for k, r, e in store.put_many(bucket, data.items())}
    assert all(e is None for _, e in results.values()), results
    ref = store.storage.head(bucket, "b/reference.bin")
    assert (ref.metadata or {})["dg-source-name"] == "app-1.9.zip"
    assert results["b/app-1.9.zip"][0] is not None
    assert results["b/app-1.9.zip"][0].created_reference
    for name, blob in data.items():
        assert get_bytes(store, bucket, name) == blob
    # A deltaspace that has a reference keeps it.
    more = {"b/app-2.0.zip": release(9), "b/app-2.1.zip": release(10)}
    for _, _, exc in store.put_many(bucket, more.items()):
        assert exc is None
    ref_after = store.storage.head(bucket, "b/reference.bin")
    assert ref_after.etag == ref.etag


class NoConditionalWrites(Storage):
    """A real store that ignores create-only writes, as some S3-compatible stores do."""

    conditional_writes = False

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def put(self, bucket: str, key: str, body: Any, **kw: Any) -> ObjectInfo:
        kw.pop("if_none_match", None)
        return self.inner.put(bucket, key, body, **kw)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        return self.inner.head(bucket, key)

    def get(self, bucket: str, key: str, **kw: Any) -> tuple[ObjectInfo, Body]:
        return self.inner.get(bucket, key, **kw)

    def delete(self, bucket: str, key: str, **kw: Any) -> None:
        self.inner.delete(bucket, key, **kw)

    def list_objects(self, bucket: str, **kw: Any) -> ListPage:
        return self.inner.list_objects(bucket, **kw)

    def copy(self, *args: Any, **kw: Any) -> ObjectInfo:
        kw.pop("if_none_match", None)
        return self.inner.copy(*args, **kw)

    def create_bucket(self, bucket: str) -> None:
        self.inner.create_bucket(bucket)

    def delete_bucket(self, bucket: str) -> None:
        self.inner.delete_bucket(bucket)

    def head_bucket(self, bucket: str) -> None:
        self.inner.head_bucket(bucket)

    def list_buckets(self) -> Any:
        return self.inner.list_buckets()


def test_fallback_without_conditional_writes(storage: Storage, bucket: str) -> None:
    """Without create-only writes, racing creators overwrite each other's reference; each
    writer's check after storing its delta sees that and encodes again: nothing is lost."""
    plain = NoConditionalWrites(storage)
    versions = {f"f/app-{v}.zip": release(v) for v in range(1, 7)}
    for _round in range(3):
        barrier = threading.Barrier(len(versions))
        errors: list[BaseException] = []

        def upload(
            key: str,
            data: bytes,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            engine = DeltaStore(plain, MemoryCache(64 << 20), make_config())
            try:
                barrier.wait()
                engine.put(bucket, key, data)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=kv) for kv in versions.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        fresh = DeltaStore(storage, MemoryCache(64 << 20), make_config())
        for key, data in versions.items():
            assert get_bytes(fresh, bucket, key) == data
        fresh.delete_prefix(bucket, "f/")


def test_fallback_delete_against_upload(storage: Storage, bucket: str) -> None:
    """Without create-only writes: the last delta's deletion (which removes the reference)
    races uploads into the same deltaspace; every upload that returned reads back, the deleted
    key stays deleted."""
    plain = NoConditionalWrites(storage)
    rng = random.Random(11)
    for round_ in range(6):
        prefix = f"fd{round_}/"
        seed = DeltaStore(plain, MemoryCache(64 << 20), make_config())
        seed.put(bucket, prefix + "app-1.zip", release(1))
        uploads = {prefix + f"app-{v}.zip": release(v) for v in range(2, 2 + rng.randint(1, 4))}
        barrier = threading.Barrier(len(uploads) + 1)
        errors: list[BaseException] = []

        def run(
            fn: Any, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
        ) -> None:
            engine = DeltaStore(plain, MemoryCache(64 << 20), make_config())
            try:
                barrier.wait()
                fn(engine)
            except BaseException as exc:
                errors.append(exc)

        jobs = [lambda e, k=k, d=d: e.put(bucket, k, d) for k, d in uploads.items()]
        jobs.append(lambda e, k=prefix + "app-1.zip": e.delete(bucket, k))
        rng.shuffle(jobs)
        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        fresh = DeltaStore(storage, MemoryCache(64 << 20), make_config())
        for key, data in uploads.items():
            assert get_bytes(fresh, bucket, key) == data, key
        with pytest.raises(ObjectNotFound):
            get_bytes(fresh, bucket, prefix + "app-1.zip")
        fresh.delete_prefix(bucket, prefix)


def test_progress_reports_every_byte_once(store: DeltaStore, bucket: str) -> None:
    base = random.Random(7).randbytes(300_000)
    near = base[:1000] + b"changed" + base[1007:]
    far = random.Random(8).randbytes(300_000)  # over the max ratio: encoded part-way, then sent
    for name, data in (("p/a-1.zip", base), ("p/a-2.zip", near), ("p/a-3.zip", far)):
        seen: list[int] = []
        store.put(bucket, name, data, progress=seen.append)
        assert sum(seen) == len(data) and all(n > 0 for n in seen), name
        seen.clear()
        assert get_bytes(store, bucket, name) == data
        out = io.BytesIO()
        store.get(bucket, name, out, progress=seen.append)
        assert sum(seen) == len(data) and out.getvalue() == data
    by_key: dict[str, int] = {}
    items = [(f"q/b-{i}.zip", base[: 100_000 + i]) for i in range(4)]
    for _key, _, exc in store.put_many(
        bucket, items, progress=lambda k, n: by_key.__setitem__(k, by_key.get(k, 0) + n)
    ):
        assert exc is None
    assert by_key == {k: len(v) for k, v in items}


def test_put_many_takes_options_per_item(store: DeltaStore, bucket: str) -> None:
    items = [
        ("m/a.zip", b"a" * 5000, {"content_type": "application/zip"}),
        ("m/b.txt", b"b" * 5000, {"content_type": "text/plain", "metadata": {"k": "v"}}),
        ("m/c.zip", b"c" * 5000),
    ]
    results = {k: r for k, r, e in store.put_many(bucket, items, delta=False) if e is None}
    assert set(results) == {"m/a.zip", "m/b.txt", "m/c.zip"}
    assert not any(r.is_delta for r in results.values())
    assert store.head(bucket, "m/a.zip").content_type == "application/zip"
    b = store.head(bucket, "m/b.txt")
    assert (b.content_type, b.metadata) == ("text/plain", {"k": "v"})


def test_copy_with_no_delta_stores_whole_and_from_a_file_object(
    store: DeltaStore, bucket: str, tmp_path: Path
) -> None:
    base = random.Random(9).randbytes(200_000)
    store.put(bucket, "s/a-1.zip", base)
    store.put(bucket, "s/a-2.zip", base[:-10] + b"0123456789")
    r = store.copy(bucket, "s/a-2.zip", bucket, "t/a-2.zip", delta=False)
    assert not r.is_delta and get_bytes(store, bucket, "t/a-2.zip") == base[:-10] + b"0123456789"
    # A regular file object is mapped, not read into memory; its bytes are stored exactly.
    f = tmp_path / "f.zip"
    f.write_bytes(base[::-1])
    with f.open("rb") as fh:
        store.put(bucket, "u/f.zip", fh)
    assert get_bytes(store, bucket, "u/f.zip") == base[::-1]
