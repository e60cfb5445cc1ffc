"""Large references (``_codec/plan.py``): anchors find where the target's bytes are, long
matches become COPY windows, the rest is encoded against exactly indexed local stretches.

Most tests shrink the thresholds (:func:`local_mode`) so that references of a few MiB take the
large-reference path; ``test_real_thresholds`` runs it at its real size.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from codec_modes import local_mode

from deltaglider import _xdelta3
from deltaglider._codec import encode as _encode
from deltaglider._codec import tuning
from deltaglider.codec import Decoder, Encoder
from deltaglider.errors import DeltaTooLargeError, EncodeError


def _text(n: int, seed: int) -> bytes:
    """Compressible bytes: words from a small vocabulary."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex().encode() for _ in range(400)]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choices(words, k=64)) + b"\n"
    return bytes(out[:n])


def _edited(ref: bytes, seed: int) -> bytes:
    """``ref`` with scattered small edits, an insert, a deletion, a moved block and a tail."""
    rng = random.Random(seed)
    b = bytearray(ref)
    for _ in range(40):
        p = rng.randrange(len(b) - 16)
        b[p : p + 8] = rng.randbytes(8)
    p = rng.randrange(len(b))
    b[p:p] = _text(30_000, seed + 1)
    p = rng.randrange(len(b) - 50_000)
    del b[p : p + 40_000]
    p, k = rng.randrange(len(b) - 200_000), 150_000
    block = b[p : p + k]
    del b[p : p + k]
    b[10_000:10_000] = block
    return bytes(b + _text(100_000, seed + 2) + rng.randbytes(20_000))


@pytest.fixture(scope="module")
def series() -> tuple[bytes, bytes]:
    ref = _text(2 << 20, 1) + random.Random(2).randbytes(1 << 20) + _text(1 << 20, 3)
    return ref, _edited(ref, 4)


@pytest.mark.parametrize("secondary", ["none", "djw", "lzma"])
def test_roundtrip(series: tuple[bytes, bytes], secondary: str) -> None:
    ref, tgt = series
    with local_mode():
        enc = Encoder(ref, secondary=secondary)  # type: ignore[arg-type]
        assert enc._windows.local
        delta = enc.encode(tgt)
    assert Decoder(ref).decode(delta, max_output_size=len(tgt)) == tgt
    # What the edits added is about 150 KB, the tail's text compressing well with LZMA.
    assert len(delta) < {"none": 260_000, "djw": 240_000, "lzma": 120_000}[secondary]


def test_self_delta_is_copies_only(series: tuple[bytes, bytes]) -> None:
    ref, _ = series
    with local_mode():
        delta = Encoder(ref).encode(ref)
    # One COPY window per 256 KiB (COPY_WINDOW here): about 20 bytes each.
    assert len(delta) < 30 * (len(ref) // (256 << 10) + 8)
    assert Decoder(ref).decode(delta, max_output_size=len(ref)) == ref


def test_streaming_equals_one_shot(series: tuple[bytes, bytes], tmp_path: Path) -> None:
    ref, tgt = series
    src = tmp_path / "tgt"
    src.write_bytes(tgt)
    with local_mode():
        enc = Encoder(ref, secondary="lzma")
        one = enc.encode(tgt)
        with open(src, "rb") as fh, open(tmp_path / "d", "wb") as out:
            enc.copy_stream(fh, out)
        with open(src, "rb") as fh, open(tmp_path / "d2", "wb") as out:
            enc.copy_stream(fh, out, read_size=300_000)
    assert (tmp_path / "d").read_bytes() == one  # the same blocks: the same delta
    # Other blocks cut matches elsewhere: another delta, as good and as exact.
    other = (tmp_path / "d2").read_bytes()
    assert Decoder(ref).decode(other, max_output_size=len(tgt)) == tgt
    assert len(other) < 1.1 * len(one)


def test_deterministic(series: tuple[bytes, bytes]) -> None:
    ref, tgt = series
    with local_mode():
        first = Encoder(ref, threads=2).encode(tgt)
        assert Encoder(ref, threads=1).encode(tgt) == first


def test_max_delta_size_gives_up_early(series: tuple[bytes, bytes]) -> None:
    ref, _ = series
    unrelated = random.Random(9).randbytes(8 << 20)
    for secondary in ("djw", "lzma"):
        with local_mode(), pytest.raises(DeltaTooLargeError) as info:
            enc = Encoder(ref, secondary=secondary)  # type: ignore[arg-type]
            enc.copy_stream(io.BytesIO(unrelated), io.BytesIO(), max_delta_size=100_000)
        # Given up on after the blocks read ahead were probed (1 MiB blocks here), not encoded.
        assert info.value.bytes_read <= 3 << 20


@pytest.mark.parametrize("secondary", ["djw", "lzma"])
def test_the_xdelta3_tool_decodes_it(
    series: tuple[bytes, bytes], tmp_path: Path, secondary: str
) -> None:
    tool = shutil.which("xdelta3")
    assert tool, "the xdelta3 tool is required: apt-get install xdelta3"
    ref, tgt = series
    with local_mode():
        delta = Encoder(ref, secondary=secondary).encode(tgt)  # type: ignore[arg-type]
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "delta").write_bytes(delta)
    subprocess.run(
        [tool, "-d", "-f", "-s", tmp_path / "ref", tmp_path / "delta", tmp_path / "out"],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "out").read_bytes() == tgt


def test_auto_secondary() -> None:
    small = Encoder(b"x" * 1000, secondary="auto")
    assert small.secondary == "djw" and not small._windows.local
    with local_mode(LOCAL_MIN=500):
        large = Encoder(b"x" * 1000, secondary="auto")
    assert large.secondary == "lzma" and large._windows.local


# --- the native pieces -------------------------------------------------------------------------


def test_matches_are_exact_and_maximal(series: tuple[bytes, bytes]) -> None:
    ref, tgt = series
    index = _xdelta3.AnchorIndex(ref, 6, 1 << 20)
    found = index.matches(ref, tgt)
    assert found, "the edited target shares most of its bytes"
    last = 0
    for start, end, src in found:
        assert last <= start < end <= len(tgt) and end - start >= 64
        assert tgt[start:end] == ref[src : src + end - start]
        # Maximal: the bytes on either side differ (or an edge, or the previous match).
        after = src + end - start
        assert end == len(tgt) or after == len(ref) or tgt[end] != ref[after]
        assert start == last or src == 0 or tgt[start - 1] != ref[src - 1]
        last = end
    covered = sum(e - s for s, e, _ in found)
    assert covered > 0.9 * len(ref)


def test_matches_refuses_another_source() -> None:
    index = _xdelta3.AnchorIndex(b"a" * 5000, 6)
    with pytest.raises(ValueError, match="not the buffer"):
        index.matches(b"b" * 4000, b"a" * 100)


def test_anchor_positions_past_4_gib_are_kept() -> None:
    # Positions are 40 bits: a reference larger than 4 GiB is not needed to check the packing,
    # only that the slot keeps the full offset (the table lookup returns what was stored).
    ref = random.Random(5).randbytes(1 << 20)
    index = _xdelta3.AnchorIndex(ref, 6)
    assert [(s, e, src) for s, e, src in index.matches(ref, ref[500_000:600_000])] == [
        (0, 100_000, 500_000)
    ]


@pytest.mark.parametrize("size", [1, 127, 128, 16383, 16384, 1 << 20])
def test_copy_window(size: int) -> None:
    ref = random.Random(size).randbytes(size + 1000)
    window = _xdelta3.copy_window(ref[700 : 700 + size], 700)
    header = Encoder(b"x").header if hasattr(Encoder, "header") else b"\xd6\xc3\xc4\x00\x00"
    assert Decoder(ref).decode(header + window, max_output_size=size) == ref[700 : 700 + size]


def test_copy_window_limits() -> None:
    with pytest.raises(ValueError):
        _xdelta3.copy_window(b"", 0)


def test_local_encoder_moves_the_source_segment() -> None:
    ref = random.Random(6).randbytes(1 << 20)
    target = ref[600_000:700_000]
    enc = _xdelta3.LocalEncoder(ref, matcher=2, window_size=1 << 17, secondary=1, level=3)
    window = enc.encode_window(target, 550_000, 750_000, 600_000)
    assert len(window) < 100
    assert Decoder(ref).decode(enc.header + window, max_output_size=len(target)) == target


@pytest.mark.parametrize(
    ("lo", "hi"), [(10, 10), (20, 10), (0, (1 << 20) + 1)], ids=["empty", "reversed", "past-end"]
)
def test_local_encoder_refuses_bad_stretches(lo: int, hi: int) -> None:
    enc = _xdelta3.LocalEncoder(b"r" * (1 << 20), matcher=2, window_size=1 << 17)
    with pytest.raises(ValueError, match="out of range"):
        enc.encode_window(b"t" * 100, lo, hi)


def test_local_encoder_refuses_lzma() -> None:
    with pytest.raises(ValueError, match="LZMA"):
        _xdelta3.LocalEncoder(b"r", matcher=2, window_size=1 << 17, secondary=2)


def test_lzma_sections_refuse_what_is_not_a_plain_window() -> None:
    sections = _xdelta3.LzmaSections()
    compressed = Encoder(b"abc" * 100, secondary="djw").encode(b"abd" * 100)
    for bad in (b"", b"\x05", b"\x01\x80", compressed[5:], b"\x04\x05\x03\x00\x00\x00\x00"):
        with pytest.raises((ValueError, EncodeError)):
            sections.recode(bad)


def test_tuning_names_are_used() -> None:
    # The constants the tests scale down are the ones the encoder reads.
    for name in ("LOCAL_MIN", "LOCAL_BLOCK", "COPY_WINDOW", "LONG_MATCH", "REGION_MAX"):
        assert getattr(_encode, name) == getattr(tuning, name)


@pytest.mark.slow
def test_real_thresholds(tmp_path: Path) -> None:
    """At the real sizes: a 96 MiB reference, its delta against itself within a few KB and a
    new version's delta no larger than the xdelta3 tool's with a window covering it."""
    tool = shutil.which("xdelta3")
    assert tool
    rng = random.Random(7)
    ref = b"".join(_text(1 << 20, k) if k % 3 else rng.randbytes(1 << 20) for k in range(96))
    tgt = _edited(ref, 8)
    enc = Encoder(ref, secondary="auto")
    assert enc._windows.local and enc.secondary == "lzma"
    assert len(enc.encode(ref)) < 4096
    delta = enc.encode(tgt)
    assert Decoder(ref).decode(delta, max_output_size=len(tgt)) == tgt
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "tgt").write_bytes(tgt)
    subprocess.run(
        [tool, "-e", "-9", "-f", "-B", str(128 << 20), "-s", tmp_path / "ref", tmp_path / "tgt",
         tmp_path / "x"],
        check=True,
    )  # fmt: skip
    assert len(delta) <= 1.1 * (tmp_path / "x").stat().st_size


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_index_in_parts_is_the_same_index(series: tuple[bytes, bytes], parts: int) -> None:
    ref, tgt = series
    whole = _xdelta3.AnchorIndex(ref, 6, 1 << 20)
    split = _xdelta3.AnchorIndex(ref, 6, 1 << 20, build=False)
    # Empty: nothing found but where the target's bytes sit (the identity diagonal).
    assert split.anchors == 0 and split.matches(ref, b"x" * 100 + tgt) == []
    for k in reversed(range(parts)):  # any order
        split.index_part(ref, k, parts)
    assert split.anchors == whole.anchors
    assert split.matches(ref, tgt) == whole.matches(ref, tgt)
    with pytest.raises(ValueError, match="part out of range"):
        split.index_part(ref, parts, parts)


@pytest.mark.slow
def test_reference_past_4_gib(tmp_path: Path) -> None:
    """Offsets past 32 bits: a 4.5 GiB reference (sparse, so cheap) with distinct blocks
    beyond 4 GiB, and a target made of them: found, copied, decoded."""
    import mmap

    size = (4 << 30) + (512 << 20)
    rng = random.Random(11)
    blocks = {(4 << 30) + k * (37 << 20) + 12345: rng.randbytes(1 << 20) for k in range(4)}
    blocks[1 << 20] = rng.randbytes(1 << 20)
    path = tmp_path / "ref"
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset, data in blocks.items():
            fh.seek(offset)
            fh.write(data)
    target = b"".join(blocks[o] for o in sorted(blocks, reverse=True)) + b"tail" * 1000
    with open(path, "rb") as fh:
        ref = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    enc = Encoder(ref, secondary="auto")
    assert enc._windows.local
    delta = enc.encode(target)
    assert len(delta) < 4096
    assert Decoder(ref).decode(delta, max_output_size=len(target)) == target
