"""The reference cache: bounded, encrypted at rest, self-healing."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from deltaglider.cache import FilesystemCache, MemoryCache, open_cache
from deltaglider.config import Config


def entry(n: int, seed: int = 0) -> tuple[str, bytes]:
    data = bytes([seed]) * n + os.urandom(16)
    return hashlib.sha256(data).hexdigest(), data


def test_memory_cache_is_a_bounded_lru() -> None:
    cache = MemoryCache(3100)  # three entries of 1016 bytes fit
    a, b, c = entry(1000, 1), entry(1000, 2), entry(1000, 3)
    for sha, data in (a, b, c):
        cache.put(sha, data)
    assert cache.get(a[0]) == a[1]  # a is now the most recent
    cache.put(*entry(500, 4))  # needs room: one entry goes
    assert cache.get(b[0]) is None  # the least recently used went
    assert cache.get(a[0]) == a[1] and cache.get(c[0]) == c[1]
    cache.put(*entry(5000, 5))  # larger than the whole cache: not kept
    assert cache.get(a[0]) == a[1]


def test_entries_must_match_their_sha256() -> None:
    cache = MemoryCache(1 << 20)
    sha, data = entry(100)
    cache.put(sha, data + b"x")
    assert cache.get(sha) is None


def test_filesystem_cache_never_writes_plaintext(tmp_path: Path) -> None:
    key = os.urandom(32)
    cache = FilesystemCache(tmp_path, 1 << 20, key)
    marker = b"PLAINTEXT-MARKER-" * 100
    sha = hashlib.sha256(marker).hexdigest()
    cache.put(sha, marker)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for p in files:
        content = p.read_bytes()
        assert b"PLAINTEXT-MARKER" not in content
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    for d in [tmp_path, *[p for p in tmp_path.rglob("*") if p.is_dir()]]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert cache.get(sha) == marker
    # Another process with the same key reads it; one with another key does not see it.
    assert FilesystemCache(tmp_path, 1 << 20, key).get(sha) == marker
    assert FilesystemCache(tmp_path, 1 << 20, os.urandom(32)).get(sha) is None


def test_tampered_entries_are_deleted_and_missed(tmp_path: Path) -> None:
    key = os.urandom(32)
    cache = FilesystemCache(tmp_path, 1 << 20, key)
    sha, data = entry(5000)
    cache.put(sha, data)
    (path,) = [p for p in tmp_path.rglob("*.ref")]
    blob = bytearray(path.read_bytes())
    blob[40] ^= 1
    path.write_bytes(bytes(blob))
    assert cache.get(sha) is None
    assert not path.exists()
    # An entry renamed to pass for another reference fails authentication too.
    cache.put(sha, data)
    other, _ = entry(10, 9)
    path.rename(path.with_name(f"{other}.ref"))
    assert cache.get(other) is None


def test_filesystem_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = FilesystemCache(tmp_path, 3500, os.urandom(32))
    a, b, c = entry(1000, 1), entry(1000, 2), entry(1000, 3)
    cache.put(*a)
    cache.put(*b)
    for p in tmp_path.rglob("*.ref"):  # make a and b look old
        os.utime(p, (1, 1))
    assert cache.get(a[0]) == a[1]  # touching a makes it recent
    cache.put(*c)
    cache.put(*entry(1000, 4))
    assert cache.get(b[0]) is None
    assert cache.get(a[0]) == a[1]


def test_ephemeral_key_uses_a_private_folder_removed_at_close(tmp_path: Path) -> None:
    cache = FilesystemCache(tmp_path, 1 << 20)
    sha, data = entry(100)
    cache.put(sha, data)
    assert cache.get(sha) == data
    folder = cache.directory
    assert folder.parent == tmp_path and folder.name.startswith(f"process-{os.getpid()}-")
    cache.close()
    assert not folder.exists()


def test_open_cache_follows_the_config(tmp_path: Path) -> None:
    assert isinstance(open_cache(Config.from_env({}, cache_backend="memory")), MemoryCache)
    cache = open_cache(Config.from_env({"DG_CACHE_DIR": str(tmp_path)}))
    assert isinstance(cache, FilesystemCache)
    cache.close()
    with pytest.raises(ValueError):
        Config.from_env({"DG_CACHE_BACKEND": "redis"})


_WORKER = """
import base64, hashlib, random, sys
from pathlib import Path
from deltaglider.cache import FilesystemCache
root, key, seed = Path(sys.argv[1]), base64.b64decode(sys.argv[2]), int(sys.argv[3])
cache = FilesystemCache(root, 64 << 10, key)  # room for about 8 of the 16 entries: eviction
rng = random.Random(seed)
entries = [bytes([i]) * (6000 + i) for i in range(16)]  # every process has the same entries
wrong = hits = 0
for _ in range(600):
    data = rng.choice(entries)
    sha = hashlib.sha256(data).hexdigest()
    if rng.random() < 0.5:
        cache.put(sha, data)
    else:
        got = cache.get(sha)
        if got is not None:
            hits += 1
            wrong += got != data
print(wrong, hits)
"""


def test_processes_share_a_filesystem_cache(tmp_path: Path) -> None:
    """Four processes with the same key write, read and evict in one folder at once: no read
    returns wrong bytes, none fails, entries are shared, nothing temporary is left behind."""
    import base64
    import subprocess
    import sys

    key = base64.b64encode(os.urandom(32)).decode()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path), key, str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    total_hits = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        wrong, hits = map(int, out.split())
        assert wrong == 0
        total_hits += hits
    assert total_hits > 0
    (shared,) = [p for p in tmp_path.iterdir() if p.name.startswith("shared-")]
    names = [p.name for p in shared.iterdir()]
    assert names and all(n.endswith(".ref") for n in names), names
    assert sum((shared / n).stat().st_size for n in names) <= (64 << 10) + 8 * 6100
    # Another process with the key reads what they left.
    cache = FilesystemCache(tmp_path, 64 << 10, base64.b64decode(key))
    sha = names[0][: -len(".ref")]
    data = cache.get(sha)
    assert data is not None and hashlib.sha256(data).hexdigest() == sha
