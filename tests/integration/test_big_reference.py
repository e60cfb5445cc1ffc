"""A gigabyte reference through the cache and from the store in bounded memory: the process's
anonymous memory (RssAnon: heap, stacks, anonymous mappings; a mapped file's pages count as
RssFile) rises by no more than 64 MiB while the reference is written to the encrypted cache,
read back from it, and fetched from a store (SeaweedFS, and the local store) into the cache.
Sampled every few milliseconds by a thread, and read before and after. Without the spool, the
reference in the heap, the rise would be a gigabyte."""

from __future__ import annotations

import gc
import hashlib
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_conftest import make_config, s3_storage
from servers import Server

from deltaglider._engine.refs import References
from deltaglider.cache import FilesystemCache
from deltaglider.storage.base import Storage
from deltaglider.storage.local import LocalStorage

MiB = 1 << 20
SIZE = 1024 * MiB
BOUND = 64 * MiB
KEY = b"b" * 32


def rss_anon() -> int:
    with open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def peak_rise(work: Callable[[], Any]) -> tuple[Any, int]:
    """What ``work`` returns and the most RssAnon rose above where it started meanwhile."""
    gc.collect()
    start = rss_anon()
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, rss_anon())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    rise = max(peak, rss_anon()) - start
    print(f"\n{getattr(work, '__name__', 'work')}: RssAnon rose {rise / MiB:.1f} MiB")
    return result, rise


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A 1 GiB file of random blocks (one random MiB, numbered) and its sha256."""
    path = tmp_path_factory.mktemp("big") / "reference.bin"
    block = bytearray(os.urandom(MiB))
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(SIZE // MiB):
            block[:8] = i.to_bytes(8, "big")
            digest.update(block)
            fh.write(block)
    yield path, digest.hexdigest()
    path.unlink()


def check(data: Any, sha256: str) -> None:
    assert isinstance(data, memoryview) and len(data) == SIZE
    assert hashlib.sha256(data).hexdigest() == sha256


@pytest.mark.slow
def test_a_gigabyte_reference_through_the_cache(big_file: tuple[Path, str], tmp_path: Path) -> None:
    path, sha256 = big_file
    cache = FilesystemCache(tmp_path / "cache", 4 << 30, KEY)
    with (
        open(path, "rb") as fh,
        mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m,
        memoryview(m) as view,
    ):
        _, rise = peak_rise(lambda: cache.put(sha256, view))
    assert rise < BOUND, f"writing the entry: RssAnon rose {rise / MiB:.0f} MiB"
    (entry,) = (tmp_path / "cache").rglob("*.ref")
    assert entry.stat().st_size == 28 + SIZE + (SIZE // MiB) * 16

    def read() -> None:
        data = FilesystemCache(tmp_path / "cache", 4 << 30, KEY).get(sha256)
        check(data, sha256)

    _, rise = peak_rise(read)
    assert rise < BOUND, f"reading the entry: RssAnon rose {rise / MiB:.0f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["seaweedfs", "local"])
def test_a_gigabyte_reference_from_the_store(
    big_file: tuple[Path, str], tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    path, sha256 = big_file
    if kind == "local":
        storage: Storage = LocalStorage(tmp_path / "store")
    else:
        server: Server = request.getfixturevalue("seaweedfs")
        storage = s3_storage(server)
    bucket = f"dg-big-{os.getpid()}"
    storage.create_bucket(bucket)
    try:
        with open(path, "rb") as fh:
            storage.put(bucket, "big/reference.bin", fh, size=SIZE)
        # The store's read path once first: its first ranged GETs start the storage's threads
        # and their buffers (about 60 MiB on SeaweedFS, reused by every later GET), which are
        # the storage's to bound, not the reference's (tests/integration/test_big_memory.py
        # measures whole commands).
        _, body = storage.get(bucket, "big/reference.bin")
        while body.read(MiB):
            pass
        body.close()
        config = make_config(cache_backend="filesystem", cache_dir=tmp_path / "cache")
        cache = FilesystemCache(tmp_path / "cache", 4 << 30, KEY)
        refs = References(storage, cache, config)

        def fetch() -> None:  # fetched, verified, kept in the cache, handed out mapped
            check(refs.reference_bytes(bucket, "big/reference.bin", sha256), sha256)

        _, rise = peak_rise(fetch)
        assert rise < BOUND, f"fetching from {kind}: RssAnon rose {rise / MiB:.0f} MiB"
        assert len(list((tmp_path / "cache").rglob("*.ref"))) == 1
        # Another engine (a new command) takes it from the cache: no request for it.
        again = References(storage, FilesystemCache(tmp_path / "cache", 4 << 30, KEY), config)
        storage.delete(bucket, "big/reference.bin")

        def cached() -> None:
            check(again.reference_bytes(bucket, "big/reference.bin", sha256), sha256)

        _, rise = peak_rise(cached)
        assert rise < BOUND, f"from the cache: RssAnon rose {rise / MiB:.0f} MiB"
    finally:
        for obj in list(storage.iter_objects(bucket)):
            storage.delete(bucket, obj.key)
        storage.delete_bucket(bucket)
        storage.close()
