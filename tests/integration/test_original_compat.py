"""Buckets written by the original DeltaGlider read here, and ours read there.

The original (PyPI ``deltaglider``) runs from its own virtual environment, with Debian's
``xdelta3`` tool on PATH, against the same SeaweedFS server: 6.2.0 (the release we succeed),
and 6.1.1 and 5.2.0, which wrote the older metadata spellings.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from data import get_bytes, release
from integration_conftest import make_config, s3_storage
from originals import ORIGINAL_VERSIONS, build
from servers import Server

from deltaglider.cache import MemoryCache
from deltaglider.engine import DeltaStore

VERSIONS = list(ORIGINAL_VERSIONS)


@pytest.fixture(scope="session")
def originals() -> dict[str, Path]:
    assert subprocess.run(["xdelta3", "-V"], capture_output=True).returncode == 0, (
        "the original DeltaGlider needs the xdelta3 tool: apt-get install xdelta3"
    )
    with ThreadPoolExecutor(len(VERSIONS)) as pool:
        return dict(zip(VERSIONS, pool.map(build, VERSIONS), strict=True))


class Original:
    def __init__(self, exe: Path, server: Server, tmp: Path) -> None:
        self.exe = exe
        self.env = server.env(
            DG_SUPPRESS_DEPRECATION="1",
            DG_LOG_LEVEL="WARNING",
            DG_CACHE_DIR=str(tmp / "orig-cache"),
            HOME=str(tmp),
        )
        self.tmp = tmp

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [str(self.exe), *args], env=self.env, capture_output=True, text=True, cwd=self.tmp
        )
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout


@pytest.fixture
def seaweed_store(seaweedfs: Server) -> Iterator[tuple[DeltaStore, str]]:
    storage = s3_storage(seaweedfs)
    bucket = f"compat-{os.getpid()}-{os.urandom(3).hex()}"
    storage.create_bucket(bucket)
    store = DeltaStore(storage, MemoryCache(256 << 20), make_config())
    yield store, bucket
    store.delete_prefix(bucket, "")
    leftovers = [o.key for o in storage.iter_objects(bucket)]
    storage.delete_many(bucket, leftovers)
    storage.delete_bucket(bucket)


def files(tmp: Path) -> dict[str, bytes]:
    out = {f"app-{v}.zip": release(v, size=6000) for v in (1, 2, 3)}
    out["notes.txt"] = b"release notes\n" * 100
    for name, data in out.items():
        (tmp / name).write_bytes(data)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_we_read_what_the_original_wrote(
    version: str,
    originals: dict[str, Path],
    seaweedfs: Server,
    seaweed_store: tuple[DeltaStore, str],
    tmp_path: Path,
) -> None:
    store, bucket = seaweed_store
    original = Original(originals[version], seaweedfs, tmp_path)
    written = files(tmp_path)
    for name in written:
        original("cp", str(tmp_path / name), f"s3://{bucket}/rel/{name}")
    physical = sorted(o.key for o in store.storage.iter_objects(bucket))
    assert "rel/reference.bin" in physical and "rel/app-2.zip.delta" in physical
    listing = store.list_objects(bucket, prefix="rel/", logical_sizes=True)
    assert {o.key: o.size for o in listing.objects} == {
        f"rel/{n}": len(d) for n, d in written.items()
    }
    for name, data in written.items():
        head = store.head(bucket, f"rel/{name}")
        assert head.size == len(data)
        assert head.is_delta == name.endswith(".zip")
        assert get_bytes(store, bucket, f"rel/{name}") == data
        assert get_bytes(store, bucket, f"rel/{name}", start=7, end=900) == data[7:900]
    # Ours continues the deltaspace the original started, against its reference.
    v4 = release(4, size=6000)
    result = store.put(bucket, "rel/app-4.zip", v4)
    assert result.is_delta and not result.created_reference
    assert get_bytes(store, bucket, "rel/app-4.zip") == v4


@pytest.mark.slow
def test_the_original_reads_what_we_wrote(
    originals: dict[str, Path],
    seaweedfs: Server,
    seaweed_store: tuple[DeltaStore, str],
    tmp_path: Path,
) -> None:
    store, bucket = seaweed_store
    written = files(tmp_path)
    for name, data in written.items():
        store.put(bucket, f"ours/{name}", data)
    assert store.head(bucket, "ours/app-3.zip").is_delta
    original = Original(originals["6.2.0"], seaweedfs, tmp_path)
    listing = original("ls", f"s3://{bucket}/ours/")
    for name in written:
        assert name in listing
    assert "reference.bin" not in listing
    out = tmp_path / "downloads"
    out.mkdir()
    for name, data in written.items():
        original("cp", f"s3://{bucket}/ours/{name}", str(out / name))
        assert (out / name).read_bytes() == data, name
    # The original also adds to our deltaspace, against our reference; we read that back.
    v5 = release(5, size=6000)
    (tmp_path / "app-5.zip").write_bytes(v5)
    original("cp", str(tmp_path / "app-5.zip"), f"s3://{bucket}/ours/app-5.zip")
    assert get_bytes(store, bucket, "ours/app-5.zip") == v5
    assert store.head(bucket, "ours/app-5.zip").is_delta
