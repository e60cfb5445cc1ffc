"""The local store's mapping of keys to files (its S3 behaviour runs in tests/integration)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from deltaglider.errors import BucketNotEmpty, BucketNotFound, InvalidKey, PreconditionFailed
from deltaglider.storage import open_storage
from deltaglider.storage.local import LocalStorage


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    st = LocalStorage(tmp_path)
    st.create_bucket("bkt")
    return st


def test_buckets_are_folders_and_metadata_sits_beside(local: LocalStorage, tmp_path: Path) -> None:
    local.put("bkt", "a/b.zip", b"data", metadata={"K": "v"}, content_type="application/zip")
    assert (tmp_path / "bkt" / "a" / "b.zip").read_bytes() == b"data"
    meta = json.loads((tmp_path / "bkt" / "a" / "b.zip.dgmeta").read_text())
    assert meta["metadata"] == {"k": "v"} and meta["content_type"] == "application/zip"
    assert [b.name for b in local.list_buckets()] == ["bkt"]


@pytest.mark.parametrize(
    "key",
    [
        "a//b",
        "./x",
        "../up",
        "a/../b",
        "x.dgmeta",
        "100%.zip",
        "tab\there",
        "trailing/",
        "/leading",
        "ünï/ćödé",
    ],
)
def test_awkward_keys_round_trip(local: LocalStorage, key: str, tmp_path: Path) -> None:
    local.put("bkt", key, key.encode())
    assert [o.key for o in local.iter_objects("bkt")] == [key]
    _, body = local.get("bkt", key)
    assert body.read() == key.encode()
    body.close()
    # Nothing escapes the bucket's folder.
    for path in tmp_path.rglob("*"):
        assert path.is_relative_to(tmp_path)
    assert not (tmp_path.parent / "up").exists()
    local.delete("bkt", key)
    assert list(local.iter_objects("bkt")) == []


def test_key_and_prefix_of_the_same_name(local: LocalStorage) -> None:
    local.put("bkt", "a", b"1")
    with pytest.raises(InvalidKey, match="prefix"):
        local.put("bkt", "a/b", b"2")
    local.delete("bkt", "a")
    local.put("bkt", "a/b", b"2")
    with pytest.raises(InvalidKey, match="prefix"):
        local.put("bkt", "a", b"1")


def test_lexicographic_order_across_folders(local: LocalStorage) -> None:
    for key in ("a/b", "a-c", "a.z", "a0", "b"):
        local.put("bkt", key, b"x")
    assert [o.key for o in local.iter_objects("bkt")] == ["a-c", "a.z", "a/b", "a0", "b"]
    page = local.list_objects("bkt", delimiter="/")
    assert [o.key for o in page.objects] == ["a-c", "a.z", "a0", "b"] and page.prefixes == ["a/"]


def test_conditional_writes(local: LocalStorage) -> None:
    first = local.put("bkt", "k", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        local.put("bkt", "k", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        local.put("bkt", "k", b"2", if_match='"nope"')
    local.put("bkt", "k", b"3", if_match=first.etag)
    with pytest.raises(PreconditionFailed):
        local.delete("bkt", "k", if_match=first.etag)


def test_files_dropped_in_by_hand_are_objects(local: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "bkt" / "hand.txt").write_bytes(b"by hand")
    info = local.head("bkt", "hand.txt")
    assert info.size == 7 and info.metadata == {}


def test_bucket_errors(local: LocalStorage) -> None:
    with pytest.raises(BucketNotFound):
        local.head_bucket("missing-bucket")
    with pytest.raises(BucketNotFound):
        local.put("Bad_Name", "k", b"")
    with pytest.raises(BucketNotFound):  # "$" would match before a final newline: not a name
        local.put("bkt\n", "k", b"")
    local.put("bkt", "k", b"1")
    with pytest.raises(BucketNotEmpty):
        local.delete_bucket("bkt")


def test_open_storage_file_url(tmp_path: Path) -> None:
    st = open_storage(f"file://{tmp_path}/store")
    assert isinstance(st, LocalStorage) and st.root == tmp_path / "store"
    with pytest.raises(ValueError):
        open_storage("file://remote-host/path")


def test_metadata_files_are_as_private_as_the_data(tmp_path: Path) -> None:
    """An object's metadata (its name, size, sha256, the user's fields) is readable by no one
    its data is not readable by."""
    store = LocalStorage(tmp_path / "store")
    store.create_bucket("bkt")
    store.put("bkt", "a/b.zip", b"secret bytes", metadata={"owner": "me"})
    data = tmp_path / "store" / "bkt" / "a" / "b.zip"
    meta = data.with_name("b.zip.dgmeta")
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert stat.S_IMODE(meta.stat().st_mode) == stat.S_IMODE(data.stat().st_mode)
