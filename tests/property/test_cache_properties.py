"""Properties of the filesystem cache's entry format: any reference at any segment size reads
back exactly, as bytes or as a mapping; any edit of an entry's file (a changed byte, a cut, an
insertion, a deletion) is a miss that removes it, never wrong bytes."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from deltaglider.cache import FilesystemCache

KEY = b"p" * 32


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@given(
    data=st.binary(max_size=3000),
    segment=st.integers(min_value=1, max_value=700),
    in_memory_max=st.sampled_from([0, 1000, 1 << 20]),
)
def test_round_trip(data: bytes, segment: int, in_memory_max: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = FilesystemCache(
            Path(tmp), 1 << 20, KEY, segment_size=segment, in_memory_max=in_memory_max
        )
        cache.put(sha(data), data)
        got = cache.get(sha(data))
        assert got is not None and bytes(got) == data
        assert isinstance(got, bytes) == (len(data) <= in_memory_max)
        # Read with another segment size configured: the entry's header says its own.
        other = FilesystemCache(Path(tmp), 1 << 20, KEY, segment_size=segment + 1)
        again = other.get(sha(data))
        assert again is not None and bytes(again) == data


edits = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(min_value=0), st.integers(1, 64)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(0)),
)


@given(
    data=st.binary(max_size=400),
    segment=st.integers(min_value=1, max_value=100),
    edit=edits,
)
def test_any_edit_is_a_miss(data: bytes, segment: int, edit: tuple[str, int, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = FilesystemCache(Path(tmp), 1 << 20, KEY, segment_size=segment, in_memory_max=0)
        cache.put(sha(data), data)
        path = cache.directory / f"{sha(data)}.ref"
        raw = bytearray(path.read_bytes())
        kind, at, arg = edit
        at %= len(raw)
        if kind == "flip":
            assert isinstance(arg, int)
            raw[at] ^= arg
        elif kind == "cut":
            assert isinstance(arg, int)
            del raw[at : at + arg]
        elif kind == "insert":
            assert isinstance(arg, bytes)
            raw[at:at] = arg
        else:
            del raw[at:]
        path.write_bytes(bytes(raw))
        assert cache.get(sha(data)) is None
        assert not path.exists()
