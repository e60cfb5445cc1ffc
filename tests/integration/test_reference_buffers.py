"""How the engine holds a reference's bytes: past the cache's in-memory threshold, a read-only
mapping of a file with no name (fetched from the store, taken from the encrypted cache, or
copied from the upload that created it), never the whole reference in the heap; the mappings
go with the coders that hold them, and no descriptor is left behind.

The engines here use ``in_memory_max=0`` so that every reference is mapped (small references
keep the tests fast); one test uses the defaults with a reference past 4 MiB.
"""

from __future__ import annotations

import gc
import hashlib
import os
from pathlib import Path

from data import get_bytes, noise, release
from integration_conftest import make_config

from deltaglider.cache import IN_MEMORY_MAX, FilesystemCache, MemoryCache
from deltaglider.engine import DeltaStore
from deltaglider.storage.base import Storage

KEY = b"r" * 32


def mapped_from(folder: Path) -> list[str]:
    """The process's mappings of files in ``folder`` (each a line of /proc/self/maps)."""
    with open("/proc/self/maps") as fh:
        return [line.rstrip() for line in fh if f" {folder}/" in line]


def fds_in(folder: Path) -> list[str]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.startswith(f"{folder}/"):
            found.append(link)
    return found


def engine(storage: Storage, folder: Path, **cache: int) -> DeltaStore:
    config = make_config(cache_backend="filesystem", cache_dir=folder, cache_encryption_key=KEY)
    return DeltaStore(
        storage, FilesystemCache(folder, 1 << 30, KEY, **{"in_memory_max": 0, **cache}), config
    )


def test_references_are_mapped_files_with_no_name(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    gc.collect()
    writer_cache, reader_cache = tmp_path / "writer", tmp_path / "reader"
    store = engine(storage, writer_cache)
    store.put(bucket, "w/app-1.zip", release(1))  # creates the reference: copied, mapped
    store.put(bucket, "w/app-2.zip", release(2))
    held = mapped_from(writer_cache)
    assert held and all(line.endswith("(deleted)") for line in held), held
    # A cold cache in another engine: the reference is fetched into its own unnamed file.
    reader = engine(storage, reader_cache)
    assert get_bytes(reader, bucket, "w/app-2.zip") == release(2)
    fetched = mapped_from(reader_cache)
    assert fetched and all(line.endswith("(deleted)") for line in fetched), fetched
    # A third engine on the reader's (now warm) cache decrypts the entry into one too.
    third = engine(storage, reader_cache)
    assert get_bytes(third, bucket, "w/app-1.zip") == release(1)
    assert len(mapped_from(reader_cache)) > len(fetched)
    # Nothing but encrypted entries (and no plaintext) under names.
    for folder in (writer_cache, reader_cache):
        names = [p for p in folder.rglob("*") if p.is_file()]
        assert names and all(p.name.endswith(".ref") for p in names), names
        assert all(release(1)[:200] not in p.read_bytes() for p in names)
    for s in (store, reader, third):
        s.pools.shutdown()


def test_mappings_and_descriptors_go_with_their_coders(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    """The engine keeps the coders of two references; a third drops the oldest's mapping, and
    clearing the cache (or dropping the engine) drops them all: no descriptor is left."""
    gc.collect()
    folder = tmp_path / "cache"
    store = engine(storage, folder)
    for n, space in enumerate(("a", "b", "c", "d")):
        store.put(bucket, f"{space}/app-1.zip", release(1, seed=n))
        store.put(bucket, f"{space}/app-2.zip", release(2, seed=n))
        gc.collect()
        assert len(fds_in(folder)) <= 2, fds_in(folder)
        assert len(mapped_from(folder)) <= 2 * 2, mapped_from(folder)  # (a map line or two each)
    for n, space in enumerate(("a", "b", "c", "d")):
        assert get_bytes(store, bucket, f"{space}/app-2.zip") == release(2, seed=n)
    assert fds_in(folder)
    store.clear_cache()
    gc.collect()
    assert fds_in(folder) == [] and mapped_from(folder) == []
    assert get_bytes(store, bucket, "a/app-1.zip") == release(1, seed=0)  # fetched again
    assert fds_in(folder)
    store.pools.shutdown()
    del store
    gc.collect()
    assert fds_in(folder) == [] and mapped_from(folder) == []


def test_a_new_reference_does_not_follow_the_users_file(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    """The reference created from a file is a copy: the file rewritten in place afterwards
    (same inode, same size) changes nothing the engine encodes or decodes against."""
    folder = tmp_path / "cache"
    store = engine(storage, folder)
    path = tmp_path / "app-1.zip"
    original = release(1)
    path.write_bytes(original)
    store.put(bucket, "u/app-1.zip", str(path))
    with open(path, "r+b") as fh:  # the same file, other bytes
        fh.write(noise(len(original), 5))
    store.put(bucket, "u/app-2.zip", release(2))  # encoded against the kept reference
    assert get_bytes(store, bucket, "u/app-2.zip") == release(2)
    fresh = DeltaStore(storage, MemoryCache(64 << 20), make_config())
    assert get_bytes(fresh, bucket, "u/app-2.zip") == release(2)
    assert get_bytes(fresh, bucket, "u/app-1.zip") == original
    for s in (store, fresh):
        s.pools.shutdown()


def test_default_threshold_maps_large_references_only(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    gc.collect()
    big = noise(IN_MEMORY_MAX + 100_000, 1)
    edited = big[:1000] + b"edit" + big[1004:]
    small_folder, big_folder = tmp_path / "small", tmp_path / "big"
    small = DeltaStore(
        storage,
        FilesystemCache(small_folder, 1 << 30, KEY),
        make_config(cache_backend="filesystem", cache_dir=small_folder, cache_encryption_key=KEY),
    )
    small.put(bucket, "s/app-1.zip", release(1))
    small.put(bucket, "s/app-2.zip", release(2))
    assert mapped_from(small_folder) == []  # a small reference stays bytes
    large = DeltaStore(
        storage,
        FilesystemCache(big_folder, 1 << 30, KEY),
        make_config(cache_backend="filesystem", cache_dir=big_folder, cache_encryption_key=KEY),
    )
    large.put(bucket, "b/disk-1.img", big)
    result = large.put(bucket, "b/disk-2.img", edited)
    assert result.is_delta and result.stored_size < 10_000
    assert mapped_from(big_folder)
    assert hashlib.sha256(get_bytes(large, bucket, "b/disk-2.img")).digest() == (
        hashlib.sha256(edited).digest()
    )
    for s in (small, large):
        s.pools.shutdown()
