"""The filesystem cache's entry format: AES-256-GCM segments bound to the reference's sha256,
their index and the last one; read into a mapped file that has no name.

Small segments (16 bytes) keep entries small enough to tamper with every byte of them.
"""

from __future__ import annotations

import gc
import hashlib
import mmap
import os
import stat
import struct
from pathlib import Path

import pytest

from deltaglider.cache import (
    IN_MEMORY_MAX,
    SEGMENT_SIZE,
    FilesystemCache,
    MemoryCache,
)

SEG = 16
HEADER = 28
TAG = 16


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(tmp_path: Path, *, key: bytes | None = None, in_memory_max: int = 0) -> FilesystemCache:
    return FilesystemCache(
        tmp_path / "cache",
        1 << 30,
        key or b"k" * 32,
        segment_size=SEG,
        in_memory_max=in_memory_max,
    )


def entry_path(cache: FilesystemCache, digest: str) -> Path:
    return cache.directory / f"{digest}.ref"


def segments(n: int) -> int:
    return max(1, -(-n // SEG))


def open_fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return found


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 5 * SEG + 3])
@pytest.mark.parametrize("in_memory_max", [0, 1 << 20])
def test_round_trip(tmp_path: Path, size: int, in_memory_max: int) -> None:
    cache = make(tmp_path, in_memory_max=in_memory_max)
    data = os.urandom(size)
    cache.put(sha(data), data)
    path = entry_path(cache, sha(data))
    # The header, then each segment's ciphertext and tag: an empty reference is one empty
    # segment (authenticated too).
    assert path.stat().st_size == HEADER + size + segments(size) * TAG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert raw[:5] == b"DGRC\x02"
    assert struct.unpack(">IQ", raw[8:20]) == (SEG, size)
    if size >= 8:
        assert data not in raw
    got = cache.get(sha(data))
    assert got is not None and bytes(got) == data
    if size == 0 or size <= in_memory_max:
        assert isinstance(got, bytes)
    else:
        assert isinstance(got, memoryview) and got.readonly
    # Another process with the key (another instance) reads it too.
    again = make(tmp_path, in_memory_max=in_memory_max).get(sha(data))
    assert again is not None and bytes(again) == data


def test_default_segment_size_and_threshold(tmp_path: Path) -> None:
    """The defaults: 1 MiB segments, references past 4 MiB mapped."""
    cache = FilesystemCache(tmp_path, 1 << 30, b"k" * 32)
    small = os.urandom(1000) * 4096  # 4000 KiB: bytes
    big = small + os.urandom(SEGMENT_SIZE + 7)  # past the threshold: mapped
    for data in (small, big):
        cache.put(sha(data), data)
        n = len(data)
        assert entry_path(cache, sha(data)).stat().st_size == (
            HEADER + n + -(-n // SEGMENT_SIZE) * TAG
        )
    got_small, got_big = cache.get(sha(small)), cache.get(sha(big))
    assert isinstance(got_small, bytes) and got_small == small
    assert len(small) <= IN_MEMORY_MAX < len(big)
    assert isinstance(got_big, memoryview) and got_big == big


def test_every_changed_byte_is_a_miss_and_removes_the_entry(tmp_path: Path) -> None:
    cache = make(tmp_path)
    data = os.urandom(2 * SEG + 5)
    digest = sha(data)
    cache.put(digest, data)
    path = entry_path(cache, digest)
    good = path.read_bytes()
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        path.write_bytes(bad)
        assert cache.get(digest) is None, i
        assert not path.exists(), i
    path.write_bytes(good)
    assert cache.get(digest) == data


def _cut(raw: bytes, size: int) -> tuple[bytes, list[bytes]]:
    head, rest = raw[:HEADER], raw[HEADER:]
    pieces = []
    for i in range(segments(size)):
        n = min(SEG, size - i * SEG) + TAG
        pieces.append(rest[:n])
        rest = rest[n:]
    assert rest == b""
    return head, pieces


def test_segments_cannot_be_dropped_reordered_truncated_or_moved(tmp_path: Path) -> None:
    cache = make(tmp_path)
    a, b = os.urandom(4 * SEG), os.urandom(4 * SEG)
    for data in (a, b):
        cache.put(sha(data), data)
    raw_a = entry_path(cache, sha(a)).read_bytes()
    raw_b = entry_path(cache, sha(b)).read_bytes()
    head, pieces = _cut(raw_a, len(a))
    head_b, pieces_b = _cut(raw_b, len(b))
    forged = {
        "dropped last": head + b"".join(pieces[:-1]),
        "dropped middle": head + b"".join(pieces[:1] + pieces[2:]),
        "swapped": head + b"".join([pieces[1], pieces[0], *pieces[2:]]),
        "truncated": raw_a[:-1],
        "truncated at a segment": raw_a[: HEADER + 2 * (SEG + TAG)],
        "header only": head,
        "appended": raw_a + pieces[-1],
        "a segment of another entry": head + b"".join([pieces_b[0], *pieces[1:]]),
        "another entry's header": head_b + b"".join(pieces),
        "empty": b"",
        "old format (one blob)": os.urandom(12) + os.urandom(len(a) + 16),
    }
    for what, blob in forged.items():
        entry_path(cache, sha(a)).write_bytes(blob)
        assert cache.get(sha(a)) is None, what
        assert not entry_path(cache, sha(a)).exists(), what
    # An entry renamed to pass for another reference fails authentication (the sha256 is bound).
    entry_path(cache, sha(b)).rename(entry_path(cache, sha(a)))
    assert cache.get(sha(a)) is None
    assert not entry_path(cache, sha(a)).exists()
    # Entries of another key are misses too; rewritten, the entry reads again.
    other = FilesystemCache(tmp_path / "cache", 1 << 30, b"o" * 32, segment_size=SEG)
    other.put(sha(a), a)
    os.replace(entry_path(other, sha(a)), entry_path(cache, sha(a)))
    assert cache.get(sha(a)) is None
    cache.put(sha(a), a)
    assert cache.get(sha(a)) == a


def test_nonces_are_never_reused(tmp_path: Path) -> None:
    """Every entry gets a new random nonce prefix: the same reference written twice (or by two
    processes) shares no nonce, so no keystream is reused."""
    cache = make(tmp_path)
    data = os.urandom(3 * SEG)
    prefixes = set()
    for _ in range(20):
        cache.put(sha(data), data)
        prefixes.add(entry_path(cache, sha(data)).read_bytes()[20:28])
    assert len(prefixes) == 20


def test_a_reference_is_mapped_from_a_file_with_no_name(tmp_path: Path) -> None:
    cache = make(tmp_path)
    data = os.urandom(10 * SEG)
    cache.put(sha(data), data)
    gc.collect()
    before = open_fds()
    got = cache.get(sha(data))
    assert isinstance(got, memoryview) and got.readonly and got == data
    assert isinstance(got.obj, mmap.mmap)
    new = {fd: link for fd, link in open_fds().items() if fd not in before}
    # The mapping holds one descriptor: its file has no name (O_TMPFILE: "/dir/#ino (deleted)"),
    # is the owner's only, and lives in the cache's folder.
    assert len(new) == 1, new
    ((fd, link),) = new.items()
    assert link.endswith("(deleted)"), link
    assert link.startswith(str(cache.directory)), link
    st = os.fstat(fd)
    assert st.st_nlink == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == len(data)
    # The mapping is in the process's maps, backed by that deleted file.
    with open("/proc/self/maps") as fh:
        maps = [line for line in fh if str(cache.directory) in line]
    assert maps and all(line.rstrip().endswith("(deleted)") for line in maps), maps
    # No plaintext reaches a file with a name.
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert data[:32] not in p.read_bytes()
    # When the last view goes, the mapping and its descriptor go.
    del got
    gc.collect()
    assert set(open_fds()) <= set(before)
    with open("/proc/self/maps") as fh:
        assert not [line for line in fh if str(cache.directory) in line]


def test_put_streams_a_mapped_buffer(tmp_path: Path) -> None:
    """A reference held as a mapping goes into the cache as it is (a memoryview of an mmap)."""
    data = os.urandom(7 * SEG + 1)
    source = tmp_path / "ref.bin"
    source.write_bytes(data)
    with open(source, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        cache = make(tmp_path)
        cache.put(sha(data), view)
        cache.put(sha(b"other"), view)  # not its sha256: not kept
        memory = MemoryCache(1 << 20)
        memory.put(sha(data), view)
        view.release()
    assert cache.get(sha(data)) == data
    assert not entry_path(cache, sha(b"other")).exists()
    assert memory.get(sha(data)) == data


def test_memory_cache_never_takes_more_than_its_cap() -> None:
    cache = MemoryCache(1000)
    data = os.urandom(1001)
    cache.put(sha(data), memoryview(data))
    assert cache.get(sha(data)) is None
    data = data[:1000]
    cache.put(sha(data), memoryview(data))
    assert cache.get(sha(data)) == data


@pytest.mark.parametrize("name", ["../escape", "A" * 64, "0" * 63, "", "0" * 64 + "/x"])
def test_names_that_are_not_sha256_are_ignored(tmp_path: Path, name: str) -> None:
    cache = make(tmp_path)
    (tmp_path / "escape.ref").write_bytes(b"not ours")
    cache.put(name, b"data")
    assert cache.get(name) is None
    cache.discard(name)
    assert (tmp_path / "escape.ref").read_bytes() == b"not ours"
    assert [p.name for p in cache.directory.iterdir()] == []
