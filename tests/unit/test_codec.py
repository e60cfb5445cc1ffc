"""deltaglider.codec: API behaviour, errors and limits, against the real native codec."""

from __future__ import annotations

import array
import io
import mmap
import random
import sys
import threading
from typing import Any

import pytest

from deltaglider import codec
from deltaglider.codec import Decoder, Encoder, decode, encode
from deltaglider.errors import DecodeError, DeltaGliderError, DeltaTooLargeError, EncodeError


def _rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    """A 3 MiB reference and a target with an edit, an insertion and a deletion."""
    ref = _rand(3 << 20, 1)
    tgt = ref[:100_000] + b"patched" + ref[100_007:1_500_000] + _rand(40_000, 2) + ref[1_600_000:]
    return ref, tgt


def test_roundtrip_and_delta_is_small(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt)
    assert len(delta) < 50_000
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "mmap"])
def test_any_buffer_is_accepted(pair: tuple[bytes, bytes], kind: str, tmp_path) -> None:
    ref, tgt = pair
    if kind == "bytearray":
        src, target = bytearray(ref), bytearray(tgt)
    elif kind == "memoryview":
        src, target = memoryview(b"xx" + ref)[2:], memoryview(tgt)
    elif kind == "array":
        src, target = array.array("B", ref), array.array("B", tgt)
    elif kind == "mmap":
        path = tmp_path / "ref"
        path.write_bytes(ref)
        with open(path, "rb") as fh:
            src = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        target = tgt
    else:
        src, target = ref, tgt
    delta = Encoder(src).encode(target)
    assert Decoder(src).decode(delta, max_output_size=len(tgt)) == tgt
    assert delta == Encoder(ref).encode(tgt)


def test_source_is_used_in_place_not_copied(tmp_path) -> None:
    ref = bytearray(_rand(1 << 20, 3))
    enc = Encoder(ref)
    # A bytearray cannot be resized while a buffer of it is exported: the encoder holds it.
    with pytest.raises(BufferError):
        ref.extend(b"x")
    path = tmp_path / "ref"
    path.write_bytes(bytes(ref))
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    dec = Decoder(mm)
    with pytest.raises(BufferError):
        mm.close()
    del enc, dec
    ref.extend(b"x")
    mm.close()


def test_rejects_non_buffers_and_non_contiguous() -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        Encoder("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="contiguous"):
        Encoder(memoryview(b"abcdef")[::2])
    with pytest.raises(TypeError, match="bytes-like"):
        Decoder(b"x").decode(123, max_output_size=10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ref,tgt",
    [
        (b"", b""),
        (b"", b"x"),
        (b"x", b""),
        (b"x", b"x"),
        (b"x", b"y"),
        (b"", b"some bytes " * 1000),
        (b"same" * 5000, b"same" * 5000),
    ],
)
def test_edge_sizes(ref: bytes, tgt: bytes) -> None:
    delta = encode(ref, tgt)
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


def test_empty_target_gives_xdelta3s_empty_window() -> None:
    delta = encode(b"reference", b"", secondary="none")
    # The VCDIFF header, then the window xdelta3 itself writes for an empty file.
    assert delta == bytes.fromhex("d6c3c400000409000000000000000001")


@pytest.mark.parametrize("level", range(1, 10))
@pytest.mark.parametrize("secondary", ["none", "djw", "lzma"])
def test_every_level_and_secondary(pair: tuple[bytes, bytes], level: int, secondary: str) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt, level=level, secondary=secondary)
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="level"):
        Encoder(b"x", level=0)
    with pytest.raises(ValueError, match="level"):
        Encoder(b"x", level=10)
    with pytest.raises(ValueError, match="FGK"):
        Encoder(b"x", secondary="fgk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_size"):
        Encoder(b"x", window_size=100)
    with pytest.raises(ValueError, match="threads"):
        Encoder(b"x", threads=0)
    with pytest.raises(ValueError, match="threads"):
        Decoder(b"x", threads=-1)
    with pytest.raises(ValueError, match="max_output_size"):
        Decoder(b"x").decode(encode(b"x", b"y"), max_output_size=-1)


def test_output_is_deterministic_across_threads_window_and_api(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    one = Encoder(ref, threads=1).encode(tgt)
    assert Encoder(ref, threads=4).encode(tgt) == one
    out = io.BytesIO()
    read, written = Encoder(ref, threads=3).copy_stream(io.BytesIO(tgt), out)
    assert (read, written) == (len(tgt), len(one))
    assert out.getvalue() == one
    with Encoder(ref).stream_reader(io.BytesIO(tgt)) as reader:
        assert reader.read() == one
    for threads in (1, 2, 5):
        assert Decoder(ref, threads=threads).decode(one, max_output_size=len(tgt)) == tgt


def test_many_windows_small_window_size(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = Encoder(ref, window_size=4096).encode(tgt)
    assert len(codec._xdelta3.scan_windows(delta, 6, True)) > 500
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


# --- errors ----------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(DecodeError, DeltaGliderError)
    assert issubclass(DecodeError, ValueError)
    assert issubclass(DeltaTooLargeError, EncodeError)
    err = DeltaTooLargeError(10, 11, 12)
    assert (err.limit, err.delta_size, err.bytes_read) == (10, 11, 12)
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.bytes_read == 12


@pytest.mark.parametrize(
    "delta,message",
    [
        (b"", "empty delta"),
        (b"\xd6\xc3", "incomplete VCDIFF header"),
        (b"PK\x03\x04 not a delta", "bad magic"),
        (b"\xd6\xc3\xc4\x01\x00", "version"),
        (b"\xd6\xc3\xc4\x00\x02", "code tables"),
        (b"\xd6\xc3\xc4\x00\x01\x07", "secondary compressor"),
        (b"\xd6\xc3\xc4\x00\x00", "no windows"),
        (b"\xd6\xc3\xc4\x00\x00\x04\x09\x00\x00", "truncated"),
        (b"\xd6\xc3\xc4\x00\x00\xf0", "window indicator"),
        (b"\xd6\xc3\xc4\x00\x00\x02\x01\x00\x09", "VCD_TARGET"),
    ],
)
def test_malformed_deltas_raise_decode_error(delta: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(b"ref", delta, max_output_size=1 << 20)
    with pytest.raises(DecodeError, match=message):
        Decoder(b"ref").copy_stream(io.BytesIO(delta), io.BytesIO())


def test_every_truncation_raises(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt[:200_000], secondary="djw")
    dec = Decoder(ref)
    for cut in range(len(delta)):
        with pytest.raises(DecodeError):
            dec.decode(delta[:cut], max_output_size=len(tgt))
    for cut in range(0, len(delta), 97):
        with pytest.raises(DecodeError):
            dec.copy_stream(io.BytesIO(delta[:cut]), io.BytesIO())


def test_wrong_reference_is_detected(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt)
    other = bytearray(ref)
    other[2_000_000] ^= 0xFF  # same size, one byte different where the target copies from
    with pytest.raises(DecodeError, match="checksum"):
        decode(bytes(other), delta, max_output_size=len(tgt))
    with pytest.raises(DecodeError, match=r"another reference|too short|source"):
        decode(ref[:1_000_000], delta, max_output_size=len(tgt))
    with pytest.raises(DecodeError):
        decode(b"", delta, max_output_size=len(tgt))


def test_max_output_size_is_enforced_before_decoding(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt)
    with pytest.raises(DecodeError, match="max_output_size"):
        decode(ref, delta, max_output_size=len(tgt) - 1)
    with pytest.raises(DecodeError, match="max_output_size"):
        Decoder(ref).copy_stream(io.BytesIO(delta), io.BytesIO(), max_output_size=1000)
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


def _varint(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _run_window(size: int, byte: int) -> bytes:
    """A VCDIFF window that reconstructs ``size`` copies of ``byte`` with one RUN."""
    inst = b"\x00" + _varint(size)  # code 0 of the RFC 3284 table: RUN, size follows
    body = _varint(size) + b"\x00" + _varint(1) + _varint(len(inst)) + _varint(0)
    body += bytes([byte]) + inst
    return b"\x00" + _varint(len(body)) + body


def test_a_tiny_delta_cannot_claim_a_huge_output() -> None:
    header = b"\xd6\xc3\xc4\x00\x00"
    window = _run_window(64 << 20, 0x41)
    # One such window is a valid delta: 64 MiB from 17 bytes.
    assert decode(b"", header + window, max_output_size=64 << 20) == b"A" * (64 << 20)
    # 4096 of them claim 256 GiB from 70 KiB: refused before anything is allocated.
    with pytest.raises(DecodeError, match="max_output_size"):
        decode(b"", header + window * 4096, max_output_size=1 << 30)
    with pytest.raises(DecodeError, match="max_output_size"):
        Decoder(b"").copy_stream(
            io.BytesIO(header + window * 4096), io.BytesIO(), max_output_size=1 << 30
        )
    # A window beyond xdelta3's hard limit is refused whatever the bound.
    with pytest.raises(DecodeError, match="hard limit"):
        decode(b"", header + _run_window((64 << 20) + 1, 0x41), max_output_size=1 << 40)


# --- max_delta_size --------------------------------------------------------------------------


def test_max_delta_size_limits(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = encode(ref, tgt)
    assert encode(ref, tgt, max_delta_size=len(delta)) == delta
    with pytest.raises(DeltaTooLargeError) as info:
        encode(ref, tgt, max_delta_size=len(delta) - 1)
    assert info.value.limit == len(delta) - 1
    assert info.value.delta_size > len(delta) - 1


def test_max_delta_size_stops_early_on_unrelated_data() -> None:
    ref = _rand(8 << 20, 4)
    tgt = _rand(64 << 20, 5)
    enc = Encoder(ref)
    with pytest.raises(DeltaTooLargeError) as info:
        enc.encode(tgt, max_delta_size=len(tgt) // 10)
    # delta_size is a lower bound of the delta: over the limit, not over what it could be.
    assert len(tgt) // 10 < info.value.delta_size <= len(tgt) + 4096
    # Streaming, it reads only a few blocks past the point where the bound became certain.
    sink = io.BytesIO()
    reader = io.BytesIO(tgt)
    with pytest.raises(DeltaTooLargeError) as info:
        enc.copy_stream(reader, sink, max_delta_size=len(tgt) // 10)
    assert info.value.bytes_read <= reader.tell() < len(tgt) // 4


# --- streaming -------------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A reader that returns fewer bytes than asked, as sockets and pipes do."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data = memoryview(data)
        self._rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), len(self._data), self._rng.randint(1, 70_000))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_streaming_with_short_reads(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    out = io.BytesIO()
    Encoder(ref, window_size=65536).copy_stream(Trickle(tgt, 1), out, read_size=300_000)
    delta = out.getvalue()
    back = io.BytesIO()
    read, written = Decoder(ref).copy_stream(Trickle(delta, 2), back)
    assert (read, written) == (len(delta), len(tgt))
    assert back.getvalue() == tgt


def test_stream_reader_reads_in_pieces_and_closes_early(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = Encoder(ref, window_size=65536).encode(tgt)
    with Decoder(ref).stream_reader(io.BytesIO(delta)) as reader:
        assert reader.readable()
        parts = []
        while chunk := reader.read(12345):
            parts.append(chunk)
        assert reader.tell() == len(tgt)
    assert b"".join(parts) == tgt
    reader = Decoder(ref).stream_reader(io.BytesIO(delta))
    assert reader.read(10) == tgt[:10]
    reader.close()
    with pytest.raises(ValueError):
        reader.read(1)


def test_stream_reader_raises_on_corruption(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = bytearray(Encoder(ref, secondary="none").encode(tgt))
    delta[len(delta) // 2] ^= 0x55
    with pytest.raises(DecodeError), Decoder(ref).stream_reader(io.BytesIO(bytes(delta))) as reader:
        reader.read()


def test_progress_callback(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    seen: list[int] = []
    Encoder(ref, window_size=65536).copy_stream(io.BytesIO(tgt), io.BytesIO(), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == len(tgt)
    # One-shot encodes report as windows complete, in order, ending at the target's size.
    seen.clear()
    Encoder(ref, window_size=65536).encode(tgt, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == len(tgt)
    assert len(seen) >= len(tgt) // 65536


# --- whole-source window ---------------------------------------------------------------------


@pytest.mark.slow
def test_source_window_spans_the_whole_reference() -> None:
    """150 MiB whose first 20 MiB moved to the end: a few KiB (the CLI's 64 MiB window: 20 MB)."""
    ref = _rand(150 << 20, 6)
    tgt = ref[20 << 20 :] + ref[: 20 << 20]
    delta = encode(ref, tgt)
    assert len(delta) < 16 << 10
    assert decode(ref, delta, max_output_size=len(tgt)) == tgt


# --- threads ---------------------------------------------------------------------------------


def test_gil_is_released_during_encode_and_decode() -> None:
    """Python code in another thread runs while xdelta3 works.

    With a huge switch interval, a thread that holds the GIL is never made to give it up; the
    main thread can only run during the codec call if the codec released the GIL itself.
    """
    ref = _rand(8 << 20, 7)
    tgt = bytes(b ^ 1 if i % 4096 == 0 else b for i, b in enumerate(ref[: 4 << 20]))
    core = codec._xdelta3.EncoderCore(ref, matcher=(9, 2, 4, 44, 13, 90, 70), window_size=4 << 20)
    session = core.session()
    delta = core.header + session.encode_window(tgt, 0)

    def overlap(work) -> bool:  # type: ignore[no-untyped-def]
        started = threading.Event()
        finished = threading.Event()

        def run() -> None:
            started.set()
            work()
            finished.set()

        old = sys.getswitchinterval()
        sys.setswitchinterval(30.0)
        try:
            t = threading.Thread(target=run)
            t.start()
            started.wait()
            for _ in range(1000):  # a moment of pure Python
                pass
            ran_during = not finished.is_set()
            t.join()
        finally:
            sys.setswitchinterval(old)
        return ran_during

    assert overlap(lambda: session.encode_window(tgt, 0))
    out = bytearray(len(tgt))

    def slow_decode() -> None:
        for _ in range(20):
            codec._xdelta3.DecodeSession(ref, delta[:5]).decode_windows(
                delta, 5, len(delta), out, 0, len(tgt)
            )

    assert overlap(slow_decode)
    assert bytes(out) == tgt


def test_one_encoder_and_decoder_from_many_threads(pair: tuple[bytes, bytes]) -> None:
    ref, _ = pair
    enc, dec = Encoder(ref), Decoder(ref)
    targets = [ref[: i * 100_000] + _rand(5000, i) + ref[i * 100_000 + 5000 :] for i in range(12)]
    errors: list[BaseException] = []

    def work(t: bytes) -> None:
        try:
            for _ in range(3):
                assert dec.decode(enc.encode(t), max_output_size=len(t)) == t
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# --- concurrency -----------------------------------------------------------------------------


def test_independent_encoders_and_decoders_run_at_once() -> None:
    """Two independent encoders and two decoders (public API, threads=1: each works in its own
    thread) are all inside the codec at the same moment as a Python loop in a fifth thread.

    With a 30 s switch interval a thread holding the GIL keeps it until it lets go itself:
    the main thread gets to run its loop only because every codec call it overlaps released
    the GIL, and while the loop runs none of the four can finish. Deterministic, however
    loaded the machine: nothing here depends on timing.
    """
    ref = _rand(4 << 20, 11)
    tgt = bytearray(ref)
    for i in range(0, len(tgt), 8192):
        tgt[i] ^= 0x55
    target = bytes(tgt)
    delta = Encoder(ref).encode(target)
    calls = 40
    started = [threading.Event() for _ in range(4)]
    finished = [threading.Event() for _ in range(4)]

    def encode(k: int) -> None:
        enc = Encoder(ref, threads=1)
        started[k].set()
        for _ in range(calls):
            enc.encode(target)
        finished[k].set()

    def decode(k: int) -> None:
        dec = Decoder(ref, threads=1)
        started[k].set()
        for _ in range(calls):
            assert dec.decode(delta, max_output_size=len(target)) == target
        finished[k].set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        workers = [
            threading.Thread(target=fn, args=(k,))
            for k, fn in enumerate((encode, encode, decode, decode))
        ]
        for w, ev in zip(workers, started, strict=True):
            w.start()
            ev.wait()  # blocks (lets the worker run) until it is about to call the codec
        loops = 0
        for _ in range(200_000):  # pure Python, holding the GIL throughout
            loops += 1
        all_running = not any(ev.is_set() for ev in finished)
    finally:
        sys.setswitchinterval(old)
    for w in workers:
        w.join()
    assert loops == 200_000
    assert all_running, "a codec call kept the GIL"
    assert all(ev.is_set() for ev in finished)


def test_sessions_stay_within_the_memory_budget() -> None:
    """However many threads are asked for, an encoder holds no more xdelta3 sessions than fit
    in its budget beside the reference's indexes."""
    ref = _rand(12 << 20, 12)
    rng = random.Random(3)
    target = b"".join(
        ref[i : i + (1 << 20)] if k % 3 else rng.randbytes(1 << 19).hex().encode()
        for k, i in enumerate(range(0, 12 << 20, 1 << 20))
    )
    enc = Encoder(ref, threads=8)
    assert 1 <= enc._concurrency < 8
    out = io.BytesIO()
    enc.copy_stream(io.BytesIO(target), out)
    assert Decoder(ref).decode(out.getvalue(), max_output_size=len(target)) == target
    assert max(enc._live) <= enc._concurrency


# --- streaming into files and writers --------------------------------------------------------


@pytest.mark.parametrize("mode", ["wb", "ab", "r+b", "w+b"])
def test_decoder_copy_stream_into_a_file_at_its_position(
    pair: tuple[bytes, bytes], tmp_path, mode: str
) -> None:
    """Into a regular file the output is written in place from the decoding threads (pwrite);
    the file ends up as sequential writes would leave it, positioned after the output."""
    ref, tgt = pair
    tgt = tgt * 3  # several 2 MiB batches
    delta = Encoder(ref).encode(tgt)
    path = tmp_path / "out"
    path.write_bytes(b"old contents " * 1000)
    with open(path, mode) as fh:
        if mode == "r+b":
            fh.seek(5)
        fh.write(b"HEAD")  # buffered, not yet flushed
        assert Decoder(ref).copy_stream(io.BytesIO(delta), fh) == (len(delta), len(tgt))
        fh.write(b"TAIL")
    data = path.read_bytes()
    if mode == "ab":
        expected = b"old contents " * 1000 + b"HEAD" + tgt + b"TAIL"
    elif mode == "r+b":
        expected = b"old c" + b"HEAD" + tgt + b"TAIL"
    else:
        expected = b"HEAD" + tgt + b"TAIL"
    assert data == expected


def test_writers_that_keep_what_they_are_given(pair: tuple[bytes, bytes]) -> None:
    """Decode buffers are reused only when the writer let go of them: a writer that keeps the
    views it is given, or exports of them, still sees the right bytes afterwards."""
    ref, tgt = pair
    tgt = tgt * 3
    delta = Encoder(ref).encode(tgt)

    class Keeper:
        def __init__(self, wrap: bool) -> None:
            self.kept: list[Any] = []
            self.wrap = wrap

        def write(self, b: Any) -> None:
            self.kept.append(memoryview(b) if self.wrap else b)

    for wrap in (False, True):
        keeper = Keeper(wrap)
        Decoder(ref).copy_stream(io.BytesIO(delta), keeper)
        assert b"".join(bytes(k) for k in keeper.kept) == tgt


def test_partial_writes_are_completed(pair: tuple[bytes, bytes]) -> None:
    ref, tgt = pair
    delta = Encoder(ref).encode(tgt)

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            n = min(len(b), 1000)
            self.data += memoryview(b)[:n]
            return n

    out = Trickle()
    Encoder(ref).copy_stream(io.BytesIO(tgt), out)
    assert bytes(out.data) == delta
    back = Trickle()
    Decoder(ref).copy_stream(io.BytesIO(delta), back)
    assert bytes(back.data) == tgt


# --- xdelta3's messages ----------------------------------------------------------------------

_OUT_OF_MEMORY = """
import os, resource, sys
from deltaglider.codec import Encoder
from deltaglider.errors import EncodeError
source = os.urandom(16 << 20)
size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmSize:"))
# Room for the probe's 4 MiB table, not for xdelta3's 16 MiB index of the reference.
resource.setrlimit(resource.RLIMIT_AS, (size + (8 << 20), resource.RLIM_INFINITY))
try:
    Encoder(source, threads=1)
except EncodeError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_encode_error_carries_xdelta3s_message() -> None:
    """xdelta3 failing to allocate the reference's index (under an address-space limit)
    reports it in its own words ("out of memory", xd3_alloc's message), raised as
    EncodeError."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _OUT_OF_MEMORY], capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip() == "EncodeError cannot index the source: out of memory", (
        proc.stdout + proc.stderr
    )
