"""Decoding: a delta in memory split into groups of windows decoded in parallel, and a delta
read from a stream framed as it arrives, cut into batches of whole windows, decoded on the
codec pool into pooled buffers and written in order (or in place, with ``pwrite``, from the
decoding threads).

:class:`~deltaglider.codec.Decoder` validates its arguments and calls these functions with its
reference and thread count. They are functions rather than an object as the encoder's
scheduler is: a decoder keeps no state between calls but its reference (sessions live for one
call; the buffer pools are the process's).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import mmap
import os
import stat
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Final

from .. import _xdelta3
from .._executor import CODEC
from .._io import Readable, Writable, write_all
from ..errors import DecodeError
from .tuning import BLOCK_WINDOWS, DECODE_BUDGET, DECODE_KEEP, DEFAULT_WINDOW_SIZE

__all__ = ["copy_stream", "decode_buffer", "decoded"]

#: Delta bytes asked of a reader at once by streaming decode when the next window's length is
#: not known yet (its header is incomplete); once known, the rest of the window is asked for.
_DELTA_READ: Final = 1 << 16


def decode_buffer(
    source: memoryview, view: memoryview, max_output_size: int, threads: int
) -> bytes:
    """The target that the delta in ``view`` reconstructs from ``source``: its windows are
    indexed first, so that the output is bounded and allocated once, then decoded in up to
    ``threads`` groups at once."""
    if not len(view):
        raise DecodeError("empty delta")
    header_len, secondary = _xdelta3.file_header_length(view)
    if not header_len:
        raise DecodeError("truncated delta: incomplete VCDIFF header")
    windows = _xdelta3.scan_windows(view, header_len, secondary != 0)
    if not windows:
        raise DecodeError("truncated delta: no windows after the header")
    total = sum(w[2] for w in windows)
    if total > max_output_size:
        raise DecodeError(
            f"delta reconstructs {total} bytes, more than max_output_size={max_output_size}"
        )
    header = bytes(view[:header_len])
    out = _xdelta3.OutputBuffer(total)
    groups = _groups(windows, threads if _independent(secondary) else 1)
    tasks = (_group_task(source, view, header, group, out) for group in groups)
    for _ in CODEC.ordered(tasks, len(groups)):
        pass
    return out.take()


def _group_task(
    source: memoryview, view: memoryview, header: bytes, group: tuple[int, int, int, int], out: Any
) -> Callable[[], None]:
    start, end, offset, length = group

    def run() -> None:
        _xdelta3.DecodeSession(source, header).decode_windows(view, start, end, out, offset, length)

    return run


def decoded(
    source: memoryview,
    threads: int,
    reader: Readable,
    max_output_size: int | None,
    counters: list[int],
    task: Callable[[_Batch], Callable[[], Any]] | None = None,
) -> Generator[Any, None, None]:
    """Results of decoding the delta read from ``reader``, batch by batch, in order.

    The delta is framed as it arrives and cut into batches of whole windows of about
    BLOCK_WINDOWS default windows of output, decoded on the codec pool. ``task`` makes
    the work of a batch (by default: decode it into new bytes, a memoryview of which is
    the result). Counts the delta bytes read in ``counters[0]``.
    """
    buf = bytearray()
    header_len = 0
    secondary = 0
    while not header_len:
        chunk = reader.read(64)
        if not chunk:
            raise DecodeError(
                "empty delta" if not buf else "truncated delta: incomplete VCDIFF header"
            )
        buf += chunk
        counters[0] += len(chunk)
        header_len, secondary = _xdelta3.file_header_length(buf)
    header = bytes(buf[:header_len])
    del buf[:header_len]
    independent = _independent(secondary)
    batch_target = BLOCK_WINDOWS * DEFAULT_WINDOW_SIZE
    # Sessions are reused from batch to batch (creating one costs allocations, freeing it
    # moves glibc's mmap threshold). With LZMA or FGK, one session decodes every window that
    # has a compressed section, in order (the compressor's state runs through them); windows
    # without one (copies, bytes stored as they are) do not touch that state, so batches of
    # only such windows are decoded by any other session, in parallel.
    sessions: list[_xdelta3.DecodeSession] = []
    stateful = None if independent else _InOrder(_xdelta3.DecodeSession(source, header))

    def decode(batch: _Batch, out: Any) -> None:
        if batch.ticket is not None:
            assert stateful is not None
            with stateful.turn(batch.ticket) as session:
                session.decode_windows(batch.data, 0, len(batch.data), out, 0, batch.length)
        else:
            try:
                session = sessions.pop()
            except IndexError:
                session = _xdelta3.DecodeSession(source, header)
            session.decode_windows(batch.data, 0, len(batch.data), out, 0, batch.length)
            sessions.append(session)
        # The batch's delta bytes are no longer needed: their buffer can take more.
        _INPUTS.put(batch.buffer)

    make = task or functools.partial(_bytes_task, decode)
    produced = 0
    windows = 0
    readinto = getattr(reader, "readinto", None)

    def fill_from_reader(view: memoryview) -> int:
        """Reads into ``view``; 0 at the end of the delta."""
        if readinto is not None:
            return readinto(view) or 0
        chunk = reader.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def batches() -> Iterator[Callable[[], Any]]:
        # The delta is read into pooled buffers, as far as the window being framed needs
        # (a little ahead when its length is not known yet): a batch's bytes are handed
        # to its task where they were read, and only what was read past it is copied to
        # the next buffer.
        nonlocal produced, windows
        inbuf = _INPUTS.get(len(buf))
        view = memoryview(inbuf)
        view[: len(buf)] = buf
        fill = len(buf)
        pos = batch_start = batch_len = 0
        eof = False
        # Whether the batch being framed has a window that needs the stateful session, and
        # the turns handed out to such batches.
        batch_stateful = False
        tickets = 0

        def ticket() -> int | None:
            nonlocal tickets
            if independent or not batch_stateful:
                return None
            tickets += 1
            return tickets - 1

        while True:
            length = need = 0
            if pos < fill:
                length, target, need, compressed = _xdelta3.scan_window_header(
                    view[:fill], pos, secondary != 0
                )
            if length:
                # Batches are of one kind (windows that need the stateful session, or none
                # that do): a window of the other kind starts the next batch.
                cut = not independent and pos > batch_start and bool(compressed) != batch_stateful
                if not cut:
                    if max_output_size is not None and produced + target > max_output_size:
                        raise DecodeError(
                            f"delta reconstructs more than max_output_size={max_output_size} bytes"
                        )
                    if pos == batch_start:
                        batch_stateful = bool(compressed)
                    produced += target
                    batch_len += target
                    pos += length
                    windows += 1
                    cut = batch_len >= batch_target
                if cut:
                    batch = _Batch(
                        view[batch_start:pos], inbuf, decode, produced - batch_len, batch_len,
                        ticket(),
                    )  # fmt: skip
                    rest = view[pos:fill]
                    inbuf = _INPUTS.get(len(rest))
                    view = memoryview(inbuf)
                    view[: len(rest)] = rest
                    fill = len(rest)
                    pos = batch_start = batch_len = 0
                    yield make(batch)
                continue
            if eof:
                if pos < fill:
                    raise DecodeError(f"truncated delta: window {windows} is incomplete")
                if batch_len or pos > batch_start:
                    yield make(
                        _Batch(
                            view[batch_start:pos],
                            inbuf,
                            decode,
                            produced - batch_len,
                            batch_len,
                            ticket(),
                        )
                    )
                if not windows:
                    raise DecodeError("truncated delta: no windows after the header")
                return
            # Up to the end of the window being framed, or a little when not yet known.
            end = pos + need if need > fill - pos else fill + _DELTA_READ
            if end > len(inbuf):  # a larger buffer, with what the batch has so far
                bigger = _INPUTS.get(end - batch_start)
                grown = memoryview(bigger)
                grown[: fill - batch_start] = view[batch_start:fill]
                _INPUTS.put(inbuf)
                inbuf, view = bigger, grown
                fill -= batch_start
                pos -= batch_start
                end -= batch_start
                batch_start = 0
            got = fill_from_reader(view[fill:end])
            if not got:
                eof = True
            else:
                counters[0] += got
                fill += got

    depth = min(threads + 1, max(2, DECODE_BUDGET // (2 * batch_target)))
    results = CODEC.ordered(batches(), depth)
    try:
        yield from results
    finally:
        results.close()


def copy_stream(
    source: memoryview,
    threads: int,
    reader: Readable,
    writer: Writable,
    max_output_size: int | None,
) -> tuple[int, int]:
    """Decodes the delta read from ``reader`` into ``writer``: in place from the decoding
    threads into a regular file (``pwrite``), else in order through pooled buffers. Returns
    ``(bytes_read, bytes_written)``."""
    counters = [0, 0]
    file = _positional_file(writer)
    if file is not None:
        fd, base = file
        buffers = _BUFFERS
        results = decoded(
            source,
            threads,
            reader,
            max_output_size,
            counters,
            functools.partial(_pwrite_task, buffers, fd, base),
        )
        try:
            for n in results:
                counters[1] += n
        finally:
            results.close()
            writer.seek(base + counters[1])  # type: ignore[attr-defined]
        return counters[0], counters[1]
    buffers = _BUFFERS
    results = decoded(
        source, threads, reader, max_output_size, counters, functools.partial(_buffer_task, buffers)
    )
    try:
        for view, out in results:
            write_all(writer, view)
            counters[1] += len(view)
            # The buffer is decoded into again only when the writer kept neither this view
            # (the count of references to it) nor any other view of the buffer (resize()
            # refuses while one exists); most writers copy what they are given.
            if sys.getrefcount(view) <= 2:
                view.release()
                try:
                    out.resize(len(out))
                except (BufferError, OSError, SystemError, ValueError):
                    pass
                else:
                    buffers.put(out)
            del view, out
    finally:
        results.close()
    return counters[0], counters[1]


class _Batch:
    """Whole windows of a delta: their bytes (in ``buffer``), how to decode them into an
    output buffer, where their output goes in the target, and for batches that need the
    delta's stateful session (LZMA, FGK), their turn at it."""

    __slots__ = ("buffer", "data", "decode", "length", "offset", "ticket")

    def __init__(
        self,
        data: memoryview,
        buffer: mmap.mmap,
        decode: Callable[[_Batch, Any], None],
        offset: int,
        length: int,
        ticket: int | None = None,
    ) -> None:
        self.data = data
        self.buffer = buffer
        self.decode = decode
        self.offset = offset
        self.length = length
        self.ticket = ticket


class _InOrder:
    """A session used by turns, in the order the turns were handed out, from any thread.

    Tasks are started in the order they were submitted, so the holder of each turn is running
    or done before a later one waits: waiting cannot deadlock. A turn whose task failed is
    still given up, so later turns are not left waiting (their decode then fails on the
    session's broken state, or the caller has stopped)."""

    def __init__(self, session: _xdelta3.DecodeSession) -> None:
        self._session = session
        self._next = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def turn(self, ticket: int) -> Iterator[_xdelta3.DecodeSession]:
        with self._cond:
            while self._next != ticket:
                self._cond.wait()
        try:
            yield self._session
        finally:
            with self._cond:
                self._next += 1
                self._cond.notify_all()


class _Buffers:
    """Buffers of streaming decode, kept for reuse by every decoder of the process: anonymous
    memory maps (outside glibc's heaps), whose pages are faulted in once rather than for every
    batch. A request takes the smallest free buffer that is large enough (else a new one of at
    least ``smallest`` bytes); free buffers are kept while they total at most ``keep_bytes``
    (large references' COPY windows are up to 16 MiB: faulting in a fresh 16 MiB for each would
    cost more than decoding it)."""

    def __init__(self, keep_bytes: int, smallest: int) -> None:
        self._free: list[mmap.mmap] = []
        self._keep_bytes = keep_bytes
        self._smallest = smallest
        self._lock = threading.Lock()

    def get(self, size: int) -> mmap.mmap:
        with self._lock:
            fits = [b for b in self._free if len(b) >= size]
            if fits:
                buf = min(fits, key=len)
                self._free.remove(buf)
                return buf
        return mmap.mmap(-1, max(size, self._smallest))

    def put(self, buf: mmap.mmap) -> None:
        with self._lock:
            if sum(len(b) for b in self._free) + len(buf) <= self._keep_bytes:
                self._free.append(buf)
                return
            # Full: keep the larger of the buffer and the smallest kept one.
            smallest = min(self._free, key=len, default=None)
            if smallest is not None and len(smallest) < len(buf):
                self._free.remove(smallest)
                if sum(len(b) for b in self._free) + len(buf) <= self._keep_bytes:
                    self._free.append(buf)


#: Shared by all decoders, output and delta input: about what one streaming decode has in
#: flight. Batches end on window boundaries, a little past their target: room for a window
#: more.
_BUFFERS: Final = _Buffers(DECODE_KEEP, BLOCK_WINDOWS * DEFAULT_WINDOW_SIZE + DEFAULT_WINDOW_SIZE)
_INPUTS: Final = _Buffers(
    DECODE_BUDGET // 2 + BLOCK_WINDOWS * DEFAULT_WINDOW_SIZE + DEFAULT_WINDOW_SIZE,
    BLOCK_WINDOWS * DEFAULT_WINDOW_SIZE + DEFAULT_WINDOW_SIZE,
)


def _bytes_task(decode: Callable[[_Batch, Any], None], batch: _Batch) -> Callable[[], memoryview]:
    def run() -> memoryview:
        out = _xdelta3.OutputBuffer(batch.length)  # not zero-filled: every byte is written
        decode(batch, out)
        return memoryview(out.take())

    return run


def _buffer_task(buffers: _Buffers, batch: _Batch) -> Callable[[], tuple[memoryview, mmap.mmap]]:
    def run() -> tuple[memoryview, mmap.mmap]:
        out = buffers.get(batch.length)
        batch.decode(batch, out)
        return memoryview(out)[: batch.length], out

    return run


def _pwrite_task(buffers: _Buffers, fd: int, base: int, batch: _Batch) -> Callable[[], int]:
    def run() -> int:
        out = buffers.get(batch.length)
        batch.decode(batch, out)
        with memoryview(out) as view:
            done = 0
            while done < batch.length:
                done += os.pwrite(fd, view[done : batch.length], base + batch.offset + done)
        buffers.put(out)
        return batch.length

    return run


def _positional_file(writer: Any) -> tuple[int, int] | None:
    """``(fd, position)`` of a writer that is a regular file opened by open() for writing
    without O_APPEND, flushed; None for any other writer."""
    if not hasattr(os, "pwrite") or not isinstance(
        writer, (io.FileIO, io.BufferedWriter, io.BufferedRandom)
    ):
        return None
    try:
        fd = writer.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode) or fcntl.fcntl(fd, fcntl.F_GETFL) & (
            os.O_APPEND | os.O_ACCMODE
        ) not in (os.O_WRONLY, os.O_RDWR):
            return None
        writer.flush()
        return fd, os.lseek(fd, 0, os.SEEK_CUR)
    except (OSError, ValueError):
        return None


def _independent(secondary: int) -> bool:
    """Whether a delta's windows decode independently (LZMA and FGK carry state across)."""
    return secondary in (_xdelta3.SECONDARY_NONE, _xdelta3.SECONDARY_DJW)


def _groups(windows: list[tuple[int, int, int]], parts: int) -> list[tuple[int, int, int, int]]:
    """Contiguous runs of windows of about equal output: ``(start, end, offset, length)``."""
    total = sum(w[2] for w in windows)
    parts = max(1, min(parts, len(windows), total // (1 << 20) or 1))
    groups: list[tuple[int, int, int, int]] = []
    goal = total / parts
    first = 0
    offset = 0
    acc = 0
    for i, (_, _, length) in enumerate(windows):
        acc += length
        if acc >= goal * (len(groups) + 1) and len(groups) < parts - 1:
            size = sum(w[2] for w in windows[first : i + 1])
            groups.append((windows[first][0], windows[i][1], offset, size))
            offset += size
            first = i + 1
    if first < len(windows):
        size = sum(w[2] for w in windows[first:])
        groups.append((windows[first][0], windows[-1][1], offset, size))
    return groups
