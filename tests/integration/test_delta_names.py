"""The physical ``.delta`` name that the original DeltaGlider prints after an upload
(``upload: ... to s3://b/app/app-2.zip.delta``) is another name of its object: HEAD, GET and
DELETE take it, on every backend."""

from __future__ import annotations

import time

import pytest
from data import get_bytes, release

from deltaglider.engine import DeltaStore
from deltaglider.errors import ObjectNotFound


def test_a_delta_s_physical_name_reads_as_its_object(store: DeltaStore, bucket: str) -> None:
    v1, v2 = release(1), release(2)
    store.put(bucket, "app/app-1.zip", v1)
    store.put(bucket, "app/app-2.zip", v2)
    head = store.head(bucket, "app/app-2.zip.delta")
    assert head.key == "app/app-2.zip"
    assert head.is_delta and head.size == len(v2)
    assert head.physical_key == "app/app-2.zip.delta"
    assert get_bytes(store, bucket, "app/app-2.zip.delta") == v2
    with store.open_object(bucket, "app/app-1.zip.delta") as opened:
        assert opened.summary.key == "app/app-1.zip"
        assert opened.stream().read() == v1


def test_a_delta_s_physical_name_deletes_its_object(store: DeltaStore, bucket: str) -> None:
    store.put(bucket, "app/app-1.zip", release(1))
    store.put(bucket, "app/app-2.zip", release(2))
    assert store.delete(bucket, "app/app-2.zip.delta") is True
    assert [o.key for o in store.iter_objects(bucket)] == ["app/app-1.zip"]
    assert store.delete(bucket, "app/app-1.zip.delta") is True
    # the last delta went: its reference with it
    assert [o.key for o in store.storage.iter_objects(bucket)] == []


def test_an_object_really_named_dot_delta_keeps_its_name(store: DeltaStore, bucket: str) -> None:
    # A direct object whose logical name ends in .delta is stored escaped; its own name wins.
    store.put(bucket, "notes.delta", b"plain text, not a delta", delta=False)
    head = store.head(bucket, "notes.delta")
    assert head.key == "notes.delta" and not head.is_delta
    assert get_bytes(store, bucket, "notes.delta") == b"plain text, not a delta"


def test_a_missing_dot_delta_name_is_missing_under_the_name_given(
    store: DeltaStore, bucket: str
) -> None:
    store.put(bucket, "app/app-1.zip", release(1))
    with pytest.raises(ObjectNotFound) as caught:
        store.head(bucket, "app/other.zip.delta")
    assert caught.value.key == "app/other.zip.delta"
    with pytest.raises(ObjectNotFound):
        get_bytes(store, bucket, "app/app-9.zip.delta")
    assert store.delete(bucket, "app/app-9.zip.delta") is False
    assert [o.key for o in store.iter_objects(bucket)] == ["app/app-1.zip"]


def test_a_delta_older_than_its_direct_twin_is_no_name(store: DeltaStore, bucket: str) -> None:
    # x.zip written as a delta, then again as a direct object a second later (as another tool
    # would): the delta left beside it is not the object any more, so its name does not stand
    # for it.
    store.put(bucket, "app/app-1.zip", release(1))
    store.put(bucket, "app/x.zip", release(2))
    time.sleep(1.1)
    store.storage.put(bucket, "app/x.zip", b"direct and newer", metadata={})
    with pytest.raises(ObjectNotFound):
        store.head(bucket, "app/x.zip.delta")
    assert store.head(bucket, "app/x.zip").physical_key == "app/x.zip"
