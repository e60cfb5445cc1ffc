"""Properties of the codec: every delta reconstructs its target exactly, whatever the relation
between reference and target, the options and the chunking of streams; and a damaged delta
only ever raises DecodeError."""

from __future__ import annotations

import faulthandler
import functools
import io
import os
import random
import signal
import threading
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from strategies import encoder_options, large_pairs, pairs

from deltaglider import _xdelta3
from deltaglider.codec import Decoder, Encoder
from deltaglider.errors import DecodeError, DeltaTooLargeError


class ChoppyReader(io.RawIOBase):
    """Returns reads of random lengths (at least one byte while data remains)."""

    def __init__(self, data: bytes, seed: int, largest: int) -> None:
        self._data = memoryview(data)
        self._rng = random.Random(seed)
        self._largest = largest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self._data), self._rng.randint(1, self._largest))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class ChoppyWriter:
    """Takes at most a random number of bytes per write (as a raw file may), returning how
    many; keeps copies, never the caller's buffer."""

    def __init__(self, seed: int, largest: int) -> None:
        self._rng = random.Random(seed)
        self._largest = largest
        self.data = bytearray()

    def write(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = min(len(view), self._rng.randint(1, self._largest))
        self.data += view[:n]
        return n


class ExampleTimeout(Exception):
    pass


def hang_guard(seconds: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Fails an example that runs longer than ``seconds`` instead of letting it stall the run.

    SIGALRM interrupts the main thread's waits (on the codec's threads, in Python code); if the
    main thread is stuck where it cannot be interrupted (in native code holding the GIL),
    faulthandler's own thread dumps every thread's stack and exits the process after three
    times as long.
    """

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> None:
            if threading.current_thread() is not threading.main_thread() or not hasattr(
                signal, "setitimer"
            ):
                return fn(*args, **kwargs)

            def expired(signum: int, frame: Any) -> None:
                raise ExampleTimeout(f"example still running after {seconds} s (a hang?)")

            previous = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, seconds)
            faulthandler.dump_traceback_later(3 * seconds, exit=True)
            try:
                return fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                faulthandler.cancel_dump_traceback_later()

        return guarded

    return decorate


@given(pairs(), encoder_options)
def test_decode_of_encode_is_identity(pair: tuple[bytes, bytes, str], options: dict) -> None:
    ref, tgt, relation = pair
    note(f"{relation}: {len(ref)} -> {len(tgt)} bytes")
    delta = Encoder(ref, **options).encode(tgt)
    assert Decoder(ref, threads=options["threads"]).decode(delta, max_output_size=len(tgt)) == tgt
    if relation == "identical" and len(ref) > 4096:
        assert len(delta) < len(ref) // 20


@given(
    pairs(), encoder_options, st.integers(0, 2**32), st.integers(1, 100_000), st.integers(1, 50_000)
)
def test_streaming_forms_agree_with_one_shot(
    pair: tuple[bytes, bytes, str], options: dict, seed: int, read_size: int, chunk: int
) -> None:
    ref, tgt, _ = pair
    enc = Encoder(ref, **options)
    one_shot = enc.encode(tgt)
    out = ChoppyWriter(seed, chunk)
    read, written = enc.copy_stream(ChoppyReader(tgt, seed, chunk), out)
    assert (read, written) == (len(tgt), len(one_shot))
    assert out.data == one_shot  # windows do not depend on how the target arrived
    dec = Decoder(ref, threads=options["threads"])
    # Another read size cuts other windows: a different delta, the same target.
    out2 = io.BytesIO()
    enc.copy_stream(ChoppyReader(tgt, seed, chunk), out2, read_size=read_size)
    assert dec.decode(out2.getvalue(), max_output_size=len(tgt)) == tgt
    back = ChoppyWriter(seed + 3, chunk)
    assert dec.copy_stream(ChoppyReader(one_shot, seed + 1, chunk), back) == (
        len(one_shot),
        len(tgt),
    )
    assert back.data == tgt
    with dec.stream_reader(ChoppyReader(one_shot, seed + 2, chunk)) as reader:
        rng = random.Random(seed)
        got = bytearray()
        while piece := reader.read(rng.randint(1, 3 * chunk)):
            got += piece
    assert got == tgt


@given(pairs(max_size=32 << 10), st.integers(0, 40_000))
def test_max_delta_size_is_exact(pair: tuple[bytes, bytes, str], limit: int) -> None:
    ref, tgt, _ = pair
    enc = Encoder(ref, window_size=4096)
    full = enc.encode(tgt)
    if len(full) <= limit:
        assert enc.encode(tgt, max_delta_size=limit) == full
    else:
        try:
            enc.encode(tgt, max_delta_size=limit)
        except DeltaTooLargeError as exc:
            assert limit < exc.delta_size <= len(full)
        else:
            raise AssertionError("a delta over the limit was returned")


# --- past the default sizes ------------------------------------------------------------------

_CI = os.environ.get("HYPOTHESIS_PROFILE") == "ci"


@settings(
    max_examples=10 if _CI else 3,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(large_pairs(), st.integers(0, 2**32), st.sampled_from([4096, 65536, 1 << 20, 3 << 20]))
@hang_guard(60)
def test_default_options_past_every_default_size(
    pair: tuple[bytes, bytes], seed: int, chunk: int
) -> None:
    """Default options on targets of several 512 KiB windows, 128 KiB unshared-stretch windows
    and 2 MiB decode batches: one-shot and every streaming form, with reads and writes in
    chunks of random sizes up to ``chunk`` (smaller and larger than the codec's own)."""
    ref, tgt = pair
    note(f"{len(ref)} -> {len(tgt)} bytes, chunks up to {chunk}")
    enc, dec = Encoder(ref), Decoder(ref)
    delta = enc.encode(tgt)
    assert dec.decode(delta, max_output_size=len(tgt)) == tgt
    out = ChoppyWriter(seed, chunk)
    assert enc.copy_stream(ChoppyReader(tgt, seed, chunk), out) == (len(tgt), len(delta))
    assert out.data == delta
    with enc.stream_reader(ChoppyReader(tgt, seed + 1, chunk)) as reader:
        assert reader.read() == delta
    back = ChoppyWriter(seed + 2, chunk)
    assert dec.copy_stream(ChoppyReader(delta, seed + 3, chunk), back) == (len(delta), len(tgt))
    assert back.data == tgt
    with dec.stream_reader(ChoppyReader(delta, seed + 4, chunk)) as reader:
        rng = random.Random(seed)
        got = bytearray()
        while piece := reader.read(rng.randint(1, 2 * chunk)):
            got += piece
    assert got == tgt


# --- damaged deltas --------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """(reference, target, delta with damage)."""
    ref, tgt, _ = draw(pairs(max_size=24 << 10))
    options = draw(encoder_options)
    delta = bytearray(Encoder(ref, **options).encode(tgt))
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "random", "splice"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(delta) - 1))
            delta[pos] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del delta[draw(st.integers(0, len(delta) - 1)) :]
    elif kind == "insert":
        pos = draw(st.integers(0, len(delta)))
        delta[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        pos = draw(st.integers(0, len(delta) - 1))
        del delta[pos : pos + draw(st.integers(1, 16))]
    elif kind == "random":
        head = draw(
            st.sampled_from(
                [
                    b"",
                    b"\xd6\xc3\xc4\x00\x00",
                    b"\xd6\xc3\xc4\x00\x01\x01",
                    b"\xd6\xc3\xc4\x00\x01\x02",
                    b"\xd6\xc3\xc4\x00\x01\x10",
                ]
            )
        )
        delta = bytearray(head + draw(st.binary(max_size=300)))
    else:  # a window of another delta in this one
        other = Encoder(tgt, **options).encode(ref)
        pos = draw(st.integers(0, len(delta)))
        delta[pos:pos] = other[draw(st.integers(0, len(other))) :]
    return ref, tgt, bytes(delta)


def _decode_or_decode_error(ref: bytes, delta: bytes, bound: int) -> bytes | None:
    try:
        return Decoder(ref).decode(delta, max_output_size=bound)
    except DecodeError:
        return None


@given(damaged())
@hang_guard(20)
def test_damaged_deltas_only_raise_decode_error(case: tuple[bytes, bytes, bytes]) -> None:
    ref, tgt, delta = case
    bound = 4 * len(tgt) + 4096
    one_shot = _decode_or_decode_error(ref, delta, bound)
    try:
        out = io.BytesIO()
        Decoder(ref).copy_stream(io.BytesIO(delta), out, max_output_size=bound)
        streamed: bytes | None = out.getvalue()
    except DecodeError:
        streamed = None
    # Both forms agree on whether the delta is acceptable, and on its output.
    assert streamed == one_shot


@given(st.binary(max_size=400), st.binary(max_size=64))
@hang_guard(20)
def test_random_bytes_only_raise_decode_error(delta: bytes, ref: bytes) -> None:
    for data in (delta, b"\xd6\xc3\xc4\x00\x00" + delta, b"\xd6\xc3\xc4\x00\x01\x02" + delta):
        _decode_or_decode_error(ref, data, 1 << 20)


@given(st.binary(max_size=64), st.booleans())
@hang_guard(20)
def test_window_framing_parser_is_total(data: bytes, secondary: bool) -> None:
    for offset in range(len(data) + 1):
        try:
            length, target, need, _ = _xdelta3.scan_window_header(data, offset, secondary)
        except DecodeError:
            continue
        if length:
            assert offset + length <= len(data) and target <= _xdelta3.HARD_MAX_WINDOW
        else:
            assert need == 0 or need > len(data) - offset
