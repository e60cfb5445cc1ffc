"""deltaglider._spool: bytes gathered without the heap (references from the cache or the store,
deltas being encoded), in memory while small, beyond in a file with no name."""

from __future__ import annotations

import gc
import hashlib
import os
import stat
from pathlib import Path

import pytest

from deltaglider._spool import Spool, unnamed_file


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_fds() -> list[str]:
    return os.listdir("/proc/self/fd")


def test_unnamed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for where in (tmp_path, None):
        fd = unnamed_file(where)
        try:
            st = os.fstat(fd)
            assert st.st_nlink == 0 and stat.S_IMODE(st.st_mode) == 0o600
            os.write(fd, b"x")
            assert os.pread(fd, 1, 0) == b"x"
        finally:
            os.close(fd)
    assert list(tmp_path.iterdir()) == []
    # Where O_TMPFILE is unknown, a mkstemp file unlinked at once.
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    fd = unnamed_file(tmp_path)
    try:
        st = os.fstat(fd)
        assert st.st_nlink == 0 and stat.S_IMODE(st.st_mode) == 0o600
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []
    # A folder that refuses (gone): the system's temporary folder.
    fd = unnamed_file(tmp_path / "gone")
    os.close(fd)


def test_a_known_size_is_counted(tmp_path: Path) -> None:
    for in_memory_max in (0, 100):
        with Spool(10, directory=tmp_path, in_memory_max=in_memory_max, digest=True) as spool:
            spool.write(b"12345")
            with pytest.raises(ValueError):
                spool.write(b"123456")  # more than announced
            with pytest.raises(ValueError):
                spool.finish()  # fewer than announced
            spool.write(b"67890")
            data, digest = spool.finish()
        assert bytes(data) == b"1234567890" and digest == sha(b"1234567890")
    fds = set(open_fds())
    for _ in range(20):
        with Spool(10, directory=tmp_path, in_memory_max=0, digest=True) as spool:
            spool.write(b"abc")  # abandoned: its file and its hashing thread go
    assert set(open_fds()) <= fds


@pytest.mark.parametrize("in_memory_max", [0, 7, 1000, 1 << 20])
@pytest.mark.parametrize("digest", [False, True])
def test_an_unknown_size_moves_to_a_file_past_the_threshold(
    tmp_path: Path, in_memory_max: int, digest: bool
) -> None:
    chunks = [os.urandom(n) for n in (3, 0, 5, 1000, 64 << 10, 1)]
    whole = b"".join(chunks)
    with Spool(directory=tmp_path, in_memory_max=in_memory_max, digest=digest) as spool:
        for chunk in chunks:
            assert spool.write(memoryview(chunk)) == len(chunk)
        view = spool.view()
        assert bytes(view) == whole and spool.written == len(whole)
        with pytest.raises(ValueError, match="read already"):
            spool.write(b"more")
    with Spool(directory=tmp_path, in_memory_max=in_memory_max, digest=digest) as spool:
        for chunk in chunks:
            spool.write(chunk)
        data, got = spool.finish()
    assert bytes(data) == whole
    assert got == (sha(whole) if digest else "")
    # Past the threshold, the bytes are a mapping of a file with no name, not the heap.
    assert isinstance(data, bytes) == (len(whole) <= in_memory_max)
    assert list(tmp_path.iterdir()) == []


def test_a_finished_mapping_outlives_the_spool(tmp_path: Path) -> None:
    before = set(open_fds())
    with Spool(1 << 20, directory=tmp_path, in_memory_max=0, digest=True) as spool:
        spool.write(b"z" * (1 << 20))
        data, _ = spool.finish()
    assert isinstance(data, memoryview) and data.readonly and bytes(data[:3]) == b"zzz"
    del data
    gc.collect()
    assert set(open_fds()) <= before


def test_empty() -> None:
    for size in (0, None):
        with Spool(size, in_memory_max=0, digest=True) as spool:
            assert bytes(spool.view()) == b""
        with Spool(size, in_memory_max=0, digest=True) as spool:
            assert spool.finish() == (b"", sha(b""))


def test_background_hash() -> None:
    import threading

    from deltaglider._engine.verify import BACKGROUND_HASH, Verifier
    from deltaglider._spool import BackgroundHash

    chunks = [os.urandom(n) for n in (0, 1, 1000, 1 << 20)]
    bg = BackgroundHash()
    for chunk in chunks:
        bg.update(memoryview(bytearray(chunk)))  # mutable buffers are copied before queuing
    assert bg.hexdigest() == sha(b"".join(chunks))
    # Abandoned without a digest: its thread ends when it is collected.
    before = threading.active_count()
    for _ in range(5):
        BackgroundHash().update(b"x")
    gc.collect()
    for _ in range(100):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.01)
    assert threading.active_count() <= before
    # A large object's verifier hashes on that thread, and still catches a wrong byte.
    data = b"v" * 1000
    good = Verifier("k", sha(data), BACKGROUND_HASH)
    assert isinstance(good._hash, BackgroundHash)
    good.update(data)
    good.expected_size = len(data)
    assert good.check() == sha(data)
    bad = Verifier("k", sha(data), BACKGROUND_HASH)
    bad.expected_size = len(data)
    bad.update(b"w" + data[1:])
    with pytest.raises(Exception, match="sha256 mismatch"):
        bad.check()
