"""What the decoder fuzzer checks for one input; shared by the atheris harness and the tests.

An input is a (usually mutated) delta. It is decoded against two references: the fixed
:data:`SOURCE` that the seed corpus was made against (so mutations of a seed get deep into
xdelta3's window decoding), and a reference derived from the input (a prefix of ``SOURCE``, or
the input itself), the "made against another reference" case. Each time through all three
public forms: one-shot :meth:`Decoder.decode`, :meth:`Decoder.copy_stream` and
:meth:`Decoder.stream_reader`, the streaming ones through a reader that returns short reads.

Accepted outcomes are the reconstructed bytes or :class:`~deltaglider.errors.DecodeError`.
Anything else is a finding: another exception, the three forms disagreeing, output beyond
``max_output_size``, and (caught by the fuzzer or the sanitizers, not here) a crash, a hang or
memory growth.
"""

from __future__ import annotations

import io
import random
import zlib
from typing import Any

from deltaglider.codec import Decoder
from deltaglider.errors import DecodeError

#: The bound every decode runs under: nothing may be produced or allocated beyond it (plus
#: xdelta3's per-window tables, which the binding bounds by the window's own size).
MAX_OUTPUT = 1 << 20


def make_source() -> bytes:
    """The fixed reference of the seed corpus: 24 KiB, half text-like, half random bytes."""
    rng = random.Random(0x0DE17A)
    words = [b"delta", b"glider", b"xdelta3", b"window", b"source", b"target", b"copy", b"add"]
    text = bytearray()
    n = 0
    while len(text) < 12 << 10:
        text += b"line %05d: " % n + b" ".join(rng.choice(words) for _ in range(8)) + b"\n"
        n += 1
    return bytes(text[: 12 << 10]) + rng.randbytes(12 << 10)


SOURCE = make_source()


class ShortReader:
    """A binary reader that returns at most ``step`` bytes a call, as sockets and pipes do."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        n = self._step if size is None or size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return bytes(chunk)


def derived_source(data: bytes) -> bytes:
    """A reference chosen by the input: the input itself, or a prefix of :data:`SOURCE`."""
    h = zlib.crc32(data)
    if h % 3 == 0:
        return data
    return SOURCE[: h % (len(SOURCE) + 1)]


def _outcome(call: Any) -> bytes | DecodeError:
    try:
        return bytes(call())
    except DecodeError as exc:
        return exc


def _same(a: bytes | DecodeError, b: bytes | DecodeError) -> bool:
    if isinstance(a, DecodeError) or isinstance(b, DecodeError):
        return isinstance(a, DecodeError) and isinstance(b, DecodeError)
    return a == b


def _describe(o: bytes | DecodeError) -> str:
    return f"DecodeError({o})" if isinstance(o, DecodeError) else f"{len(o)} bytes"


def check_with(source: bytes, data: bytes, step: int) -> bytes | DecodeError:
    """Decodes ``data`` against ``source`` every way; returns the agreed outcome."""
    decoder = Decoder(source)

    one_shot = _outcome(lambda: decoder.decode(data, max_output_size=MAX_OUTPUT))

    def copied() -> bytes:
        out = io.BytesIO()
        read, written = decoder.copy_stream(
            ShortReader(data, step), out, max_output_size=MAX_OUTPUT
        )
        assert written == len(out.getvalue()), "copy_stream miscounted its output"
        assert read <= len(data), "copy_stream counted more input than there was"
        return out.getvalue()

    def streamed() -> bytes:
        parts = []
        with decoder.stream_reader(ShortReader(data, step), max_output_size=MAX_OUTPUT) as r:
            while chunk := r.read(step * 3 + 1):
                parts.append(chunk)
        return b"".join(parts)

    for name, other in (("copy_stream", _outcome(copied)), ("stream_reader", _outcome(streamed))):
        if not _same(one_shot, other):
            raise AssertionError(
                f"decode() gave {_describe(one_shot)} but {name}() gave {_describe(other)}"
            )
    if isinstance(one_shot, bytes):
        assert len(one_shot) <= MAX_OUTPUT, "output beyond max_output_size"
        if one_shot:
            # The bound is exact: one byte less must be refused, before decoding.
            tight = _outcome(lambda: decoder.decode(data, max_output_size=len(one_shot) - 1))
            assert isinstance(tight, DecodeError), "max_output_size was not enforced"
    return one_shot


def check(data: bytes) -> None:
    """The fuzz target: raises on a finding; DecodeError, the accepted outcome, never escapes."""
    step = 1 + (zlib.adler32(data) >> 4) % 2048
    check_with(SOURCE, data, step)
    check_with(derived_source(data), data, step)
