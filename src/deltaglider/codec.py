"""The delta codec: VCDIFF deltas (xdelta3 3.1.1, in-process) between a reference and a target.

Shaped like python-zstandard: build a context once with the reference, then use it as often as
you like, one-shot or streaming::

    from deltaglider.codec import Encoder, Decoder

    delta = Encoder(reference).encode(new_version)
    assert Decoder(reference).decode(delta, max_output_size=len(new_version)) == new_version

    with open("new.zip", "rb") as src, open("new.zip.delta", "wb") as dst:
        Encoder(reference).copy_stream(src, dst)

``reference`` is any contiguous buffer (bytes, bytearray, memoryview, mmap); it is used in place,
never copied, and must not change while an encoder or decoder uses it.

Deltas are standard xdelta3 output: ``xdelta3 -d -s reference delta`` decodes them, and deltas
written by the ``xdelta3`` tool (any secondary compression, with or without an application
header) decode here. How the encoder is fast:

* xdelta3 sees the whole reference (its command line limits itself to 64 MiB), through an index
  built once per reference and shared by every window and thread;
* the target is cut into windows that are encoded independently and in parallel (the GIL is
  released), which the VCDIFF format allows: each window is self-contained;
* a cheap content-defined probe finds the stretches of the target that share nothing with the
  reference; they are compressed without the reference (or stored verbatim if random), so
  xdelta3's matcher never crawls over them. This is also what makes ``max_delta_size`` cheap:
  an unrelated target is recognized, and given up on, at a fraction of a full encode.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, Final, Literal

from . import _xdelta3
from ._codec import decode as _decode
from ._codec.encode import Windows
from ._codec.streams import blocks, buffer
from ._codec.tuning import (
    DEFAULT_LEVEL,
    DEFAULT_SECONDARY,
    DEFAULT_WINDOW_SIZE,
    LOCAL_MIN,
    SECONDARY_IDS,
    Secondary,
)
from ._executor import codec_threads
from ._io import Readable, Writable, write_all

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_SECONDARY",
    "DEFAULT_WINDOW_SIZE",
    "XDELTA3_VERSION",
    "Decoder",
    "Encoder",
    "StreamReader",
    "decode",
    "encode",
]

#: Version of the vendored xdelta3 library.
XDELTA3_VERSION: Final = "3.1.1"


class Encoder:
    """Computes deltas of targets against one reference.

    :param source: the reference, any contiguous buffer; used in place.
    :param level: 1 (fastest) to 9 (smallest deltas), xdelta3's levels; default 3.
    :param secondary: secondary compression of the delta's sections: ``"djw"`` (static
        Huffman; fast to decode), ``"lzma"`` (what the ``xdelta3`` tool writes; a little
        smaller, much slower, and its windows must be encoded one after another), ``"none"``,
        or ``"auto"`` (default): DJW for references under 64 MiB, LZMA for larger ones.
        Against a large reference LZMA costs little: windows are matched in parallel without
        it and only their sections are recompressed in order, new data is left to LZMA's
        matcher (a far better one than a window's), and bytes that look random are not
        compressed at all.
    :param secondary_data: also secondary-compress the data section (the bytes added
        verbatim). Off by default for DJW: for archives those bytes are compressed already and
        it costs more than it saves. On by default for LZMA, as the ``xdelta3`` tool does.
    :param window_size: target bytes per VCDIFF window, the unit of parallel work.
    :param threads: windows encoded at once by one call (default: the CPU count, at most 8);
        1 encodes in the calling thread.

    Building the encoder indexes the reference once; every later call reuses the index. An
    encoder may be used from several threads at once.
    """

    def __init__(
        self,
        source: Any,
        *,
        level: int = DEFAULT_LEVEL,
        secondary: Secondary | Literal["auto"] = DEFAULT_SECONDARY,
        secondary_data: bool | None = None,
        window_size: int = DEFAULT_WINDOW_SIZE,
        threads: int | None = None,
    ) -> None:
        if not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError("level must be an integer from 1 to 9")
        if secondary == "auto":
            secondary = "lzma" if len(buffer(source, "source")) >= LOCAL_MIN else "djw"
        if secondary not in SECONDARY_IDS:
            raise ValueError(
                "secondary must be 'none', 'djw', 'lzma' or 'auto' "
                "(FGK is only decoded: its encoder is known to be broken)"
            )
        if not isinstance(window_size, int) or not 4096 <= window_size <= _xdelta3.HARD_MAX_WINDOW:
            raise ValueError("window_size must be between 4 KiB and 64 MiB")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be a positive integer")
        self._source = buffer(source, "source")
        self.level = level
        self.secondary: Secondary = secondary
        self.window_size = window_size
        self.threads = threads or codec_threads()
        self._windows = Windows(
            self._source,
            level=level,
            secondary=secondary,
            secondary_data=secondary_data,
            window_size=window_size,
            threads=self.threads,
        )

    @property
    def source_size(self) -> int:
        """Size of the reference in bytes."""
        return len(self._source)

    @property
    def _concurrency(self) -> int:
        """Windows encoded at once within the memory budget (the tests check the budget)."""
        return self._windows.concurrency

    @property
    def _live(self) -> tuple[int, int]:
        """xdelta3 sessions that exist: against the reference, and plain."""
        shared = self._windows.shared
        return (shared.live if shared else 0), self._windows.plain.live

    def encode(
        self,
        target: Any,
        *,
        max_delta_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> bytes:
        """The delta that turns the reference into ``target`` (any contiguous buffer).

        With ``max_delta_size``, raises :class:`~deltaglider.errors.DeltaTooLargeError` as
        soon as the delta is known to exceed it, without finishing the encode. ``progress``
        is called with the number of target bytes encoded so far, as windows complete.
        """
        view = buffer(target, "target")
        # Probing block by block lets the first windows start encoding while later blocks are
        # still being probed.
        size = self._windows.block_size
        pieces = ((view[i : i + size], i) for i in range(0, len(view), size))
        # The whole target is in memory: probing may run as far ahead as it likes.
        return b"".join(self._windows.pieces(pieces, max_delta_size, progress, lookahead=1 << 30))

    def copy_stream(
        self,
        reader: Readable,
        writer: Writable,
        *,
        max_delta_size: int | None = None,
        read_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, int]:
        """Reads the target from ``reader`` and writes its delta to ``writer``.

        Neither the whole target nor the whole delta is held in memory: the target is read in
        blocks (``read_size``, default four windows) and each window's delta is written as
        soon as it and those before it are done. Returns ``(bytes_read, bytes_written)``.
        ``progress`` is called with the number of target bytes encoded so far.

        If :class:`~deltaglider.errors.DeltaTooLargeError` is raised, ``writer`` has received
        an incomplete delta that must be discarded.
        """
        counted = [0]
        written = 0
        target = blocks(reader, self._read_size(read_size), counted)
        for piece in self._windows.pieces(target, max_delta_size, progress):
            write_all(writer, piece)
            written += len(piece)
        return counted[0], written

    def stream_reader(
        self, reader: Readable, *, max_delta_size: int | None = None, read_size: int | None = None
    ) -> StreamReader:
        """A readable binary file of the delta of the target read from ``reader``.

        The counterpart of :meth:`copy_stream` for consumers that pull (an S3 upload).
        """
        target = blocks(reader, self._read_size(read_size), [0])
        return StreamReader(self._windows.pieces(target, max_delta_size))

    def _read_size(self, read_size: int | None) -> int:
        if read_size is None:
            return self._windows.block_size
        if read_size < 1:
            raise ValueError("read_size must be positive")
        return read_size


class Decoder:
    """Applies deltas made against one reference.

    :param source: the reference, any contiguous buffer; used in place.
    :param threads: windows decoded at once by one call (default: the CPU count, at most 8).
        Deltas with LZMA or FGK secondary compression are always decoded in order.

    A decoder may be used from several threads at once.
    """

    def __init__(self, source: Any, *, threads: int | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be a positive integer")
        self._source = buffer(source, "source")
        self.threads = threads or codec_threads()

    @property
    def source_size(self) -> int:
        """Size of the reference in bytes."""
        return len(self._source)

    def decode(self, delta: Any, *, max_output_size: int) -> bytes:
        """The target that ``delta`` reconstructs from the reference.

        ``max_output_size`` bounds the output: a delta that would reconstruct more raises
        :class:`~deltaglider.errors.DecodeError` before anything is allocated for it.
        """
        if max_output_size < 0:
            raise ValueError("max_output_size must not be negative")
        view = buffer(delta, "delta")
        return _decode.decode_buffer(self._source, view, max_output_size, self.threads)

    def copy_stream(
        self, reader: Readable, writer: Writable, *, max_output_size: int | None = None
    ) -> tuple[int, int]:
        """Reads a delta from ``reader`` and writes the reconstructed target to ``writer``.

        Memory is bounded by a few windows whatever the size of the delta or the target; each
        window is checked (Adler-32) before it is written. Returns
        ``(bytes_read, bytes_written)``.

        When ``writer`` is a regular file opened by :func:`open` (not for appending), the
        batches are written in place from the decoding threads (``os.pwrite``) and the file
        position is left after the output; if decoding fails, the file may hold later parts
        of the output beyond a gap, to be discarded as any incomplete output.
        """
        return _decode.copy_stream(self._source, self.threads, reader, writer, max_output_size)

    def stream_reader(
        self, reader: Readable, *, max_output_size: int | None = None
    ) -> StreamReader:
        """A readable binary file of the target reconstructed from the delta in ``reader``."""
        return StreamReader(
            _decode.decoded(self._source, self.threads, reader, max_output_size, [0, 0])
        )


class StreamReader(io.RawIOBase):
    """A read-only binary stream of bytes produced on demand (by a decoder or an encoder).

    Use as a context manager or call :meth:`close` when done early: closing stops the work
    behind it. Errors (a corrupt delta) are raised from :meth:`read`.
    """

    def __init__(self, pieces: Iterator[Any]) -> None:
        super().__init__()
        self._pieces = pieces
        self._current = memoryview(b"")
        self._done = False
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        target = memoryview(b).cast("B")
        while not len(self._current) and not self._done:
            try:
                self._current = memoryview(next(self._pieces)).cast("B")
            except StopIteration:
                self._done = True
        n = min(len(target), len(self._current))
        target[:n] = self._current[:n]
        self._current = self._current[n:]
        self._position += n
        return n

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
            self._current = memoryview(b"")
        super().close()


def encode(source: Any, target: Any, **options: Any) -> bytes:
    """The delta from ``source`` to ``target``; ``options`` are :class:`Encoder`'s and
    ``max_delta_size``."""
    max_delta_size = options.pop("max_delta_size", None)
    return Encoder(source, **options).encode(target, max_delta_size=max_delta_size)


def decode(source: Any, delta: Any, *, max_output_size: int, threads: int | None = None) -> bytes:
    """The target that ``delta`` reconstructs from ``source``, at most ``max_output_size``
    bytes (a few bytes of delta can describe gigabytes: the bound is not optional)."""
    return Decoder(source, threads=threads).decode(delta, max_output_size=max_output_size)


if __name__ == "__main__":
    from ._codec.cli import main

    raise SystemExit(main())
