"""Encode scheduling: the reference's two indexes, the xdelta3 sessions kept for reuse within
the memory budget, and the pipeline that turns target blocks into a delta, window by window.

:class:`~deltaglider.codec.Encoder` validates its arguments and holds one :class:`Windows`,
to which it hands the target's blocks; it is a collaborator, not a base class. The target is
probed block by block on the codec pool (probe-ahead), its windows are encoded there in
parallel and yielded in order, and ``max_delta_size`` gives up as soon as the delta is known to
exceed it.

The session pool is a class of its own (:class:`Sessions`, one per kind: against the reference,
and plain) where the proposal kept ``_borrow``/``_give_back`` as encoder methods over paired
lists: each kind is then a plain counter and list, not an index into two.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

from .. import _xdelta3
from .._executor import CODEC
from ..errors import DeltaTooLargeError, EncodeError
from .plan import Copy, Local, Plain, plan
from .tuning import (
    ANCHOR_BUDGET,
    BLOCK_WINDOWS,
    COPY_WINDOW,
    ENCODER_BUDGET,
    LEVEL_PRESET,
    LOCAL_ANCHOR_BITS,
    LOCAL_ANCHOR_BUDGET,
    LOCAL_BLOCK,
    LOCAL_MIN,
    LONG_MATCH,
    LZMA_DATA_PRESET,
    LZMA_RAW_ENTROPY,
    OWN_COVERED,
    OWN_GAPS,
    PLAIN_WINDOW,
    PRESETS,
    PROBE_MARGIN,
    PROBE_MIN_GAP,
    RANDOM_MARGIN,
    REGION_MARGIN,
    REGION_MAX,
    SECONDARY_IDS,
    SMATCH_FASTEST,
    Secondary,
    anchor_bits,
    matcher,
    session_bytes,
)

__all__ = ["Sessions", "Windows"]

#: A window's work, the least its output will be, and where the window ends in the target.
_Task = tuple[Callable[[], bytes], int, int]


class Sessions:
    """xdelta3 sessions (streams, each with its own window tables) of one encoding core, kept
    for reuse.

    At most ``limit`` exist, idle or in use; when all are busy a window waits for one. They are
    never dropped and recreated in between: freeing their tables would also raise glibc's mmap
    threshold, after which every thread's heap holds more memory.
    """

    def __init__(self, core: _xdelta3.EncoderCore, limit: int) -> None:
        self._core = core
        self._limit = limit
        self._cond = threading.Condition()
        self._idle: list[_xdelta3.EncodeSession] = []
        #: Sessions that exist, idle or in use.
        self.live = 0

    def _borrow(self) -> _xdelta3.EncodeSession:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self.live < self._limit:
                    self.live += 1
                    break
                self._cond.wait()
        try:
            return self._core.session()
        except BaseException:
            with self._cond:
                self.live -= 1
                self._cond.notify_all()
            raise

    def _give_back(self, session: _xdelta3.EncodeSession) -> None:
        with self._cond:
            self._idle.append(session)
            self._cond.notify_all()

    def encode(self, data: memoryview, hint: int = 0) -> bytes:
        """One window's delta, on a session borrowed for it."""
        session = self._borrow()
        try:
            return session.encode_window(data, hint)
        finally:
            self._give_back(session)


class Windows:
    """Encodes targets window by window against one reference: indexes it once, then runs
    :meth:`pieces` for as many targets as asked, from any number of threads."""

    def __init__(
        self,
        source: memoryview,
        *,
        level: int,
        secondary: Secondary,
        secondary_data: bool | None,
        window_size: int,
        threads: int,
    ) -> None:
        self.window_size = window_size
        self.threads = threads
        self._source = source
        if secondary_data is None:
            secondary_data = secondary == "lzma"
        #: Large references are matched window by window against local stretches of them
        #: (``_codec/plan.py``) instead of through one index of the whole.
        self.local = len(source) >= LOCAL_MIN
        #: Target bytes scanned (probed) as one unit.
        self.block_size = LOCAL_BLOCK if self.local else window_size * BLOCK_WINDOWS
        # LZMA carries its state from window to window: one session, in order.
        self._sequential = secondary == "lzma" and not self.local
        self._plain_window = min(window_size, PLAIN_WINDOW)
        #: Sessions against the whole reference (none for large references).
        self.shared: Sessions | None = None
        if self.local:
            self._init_local(level, secondary, secondary_data)
            return
        try:
            # The two indexes of the reference are independent: build them side by side.
            probe: Future[_xdelta3.AnchorIndex] | None = None
            if len(source):
                anchors = functools.partial(
                    _xdelta3.AnchorIndex, source, anchor_bits(len(source)), 2 * ANCHOR_BUDGET
                )
                if threads > 1:
                    probe = CODEC.submit(anchors)
                else:
                    probe = Future()
                    probe.set_result(anchors())
            self._core = _xdelta3.EncoderCore(
                source,
                matcher=matcher(level, len(source)),
                window_size=window_size,
                secondary=SECONDARY_IDS[secondary],
                level=level,
                compress_data=secondary_data,
            )
            self._probe = probe.result() if probe is not None else None
            plain = self._plain_core()
        except MemoryError:
            raise EncodeError("not enough memory to index the reference") from None
        self.header = self._core.header
        # At most as many sessions of each kind (against the reference, and plain) exist as fit
        # in the budget left by the indexes, a pair per window encoded at once.
        costs = session_bytes(window_size, PRESETS[LEVEL_PRESET[level]]) + session_bytes(
            self._plain_window, PRESETS[SMATCH_FASTEST]
        )
        index = self._core.index_bytes + (self._probe.table_bytes if self._probe else 0)
        #: Windows that can be encoded at once within the budget (at least one).
        self.concurrency = max(1, min(threads, (ENCODER_BUDGET - index) // costs))
        self.shared = Sessions(self._core, self.concurrency)
        self.plain = Sessions(plain, self.concurrency)

    def _plain_core(self, secondary: int = 0, data: bool = False) -> _xdelta3.EncoderCore:
        # Windows that share nothing with the reference are compressed without it, in smaller
        # windows (xdelta3's tables are sized by the window; such data gains little from a
        # long reach), without secondary compression so that they can join a delta of any
        # header.
        return _xdelta3.EncoderCore(
            b"",
            matcher=SMATCH_FASTEST,
            window_size=self._plain_window,
            secondary=secondary,
            compress_data=data,
        )

    def _init_local(self, level: int, secondary: Secondary, secondary_data: bool) -> None:
        """Large references: anchors of the whole, exact indexes of local stretches only.

        LZMA's state would have to run through every window of one stream; local windows
        come from independent streams, so with LZMA they are written without secondary
        compression (the header then says none)."""
        try:
            self._anchors = _xdelta3.AnchorIndex(
                self._source, LOCAL_ANCHOR_BITS, LOCAL_ANCHOR_BUDGET, build=False
            )
            # The reference is hashed in parts on every core (the table comes out the same).
            parts = max(1, self.threads)
            index = functools.partial(self._anchors.index_part, self._source, parts=parts)
            if parts == 1:
                index(0)
            else:
                for future in [CODEC.submit(index, k) for k in range(parts)]:
                    future.result()
            self._local = _xdelta3.LocalEncoder(
                self._source,
                matcher=matcher(level, REGION_MAX),
                window_size=self.window_size,
                secondary=0 if secondary == "lzma" else SECONDARY_IDS[secondary],
                level=level,
                compress_data=secondary_data,
            )
            sec = 0 if secondary == "lzma" else SECONDARY_IDS[secondary]
            plain = self._plain_core(sec, secondary_data)
        except MemoryError:
            raise EncodeError("not enough memory to index the reference") from None
        self.header = self._local.header
        #: With LZMA, windows are matched without secondary compression, then recompressed
        #: in order by one LzmaSections per delta.
        self._recode = secondary == "lzma"
        if self._recode:
            self.header = self.header[:4] + bytes((1, SECONDARY_IDS["lzma"]))
        # Each local window indexes its stretch (at most REGION_MAX bytes) in a stream of its
        # own: the budget bounds how many run at once.
        costs = (
            session_bytes(self.window_size, PRESETS[LEVEL_PRESET[level]])
            + 2 * REGION_MAX
            + session_bytes(self._plain_window, PRESETS[SMATCH_FASTEST])
        )
        self.concurrency = max(1, min(self.threads, ENCODER_BUDGET // costs))
        self.plain = Sessions(plain, self.concurrency)

    def _local_tasks(self, block: memoryview, offset: int) -> Iterator[_Task]:
        windows = plan(
            self._anchors.matches(self._source, block, base=offset),
            len(block),
            len(self._source),
            window=self.window_size,
            long_match=LONG_MATCH,
            copy_max=COPY_WINDOW,
            margin=REGION_MARGIN,
            region_max=REGION_MAX,
            near=PROBE_MIN_GAP,
        )
        # Copies, windows almost wholly covered by matches, and (recompressed with LZMA) new
        # bytes that are not random are written as instructions of our own, gathered into
        # composite windows of up to COPY_WINDOW bytes: a window costs a header and a
        # flush of each compressed section, and fragmented targets have thousands of pieces.
        pending: list[tuple[int, int, int]] = []  # copies of the composite being gathered
        start = end = 0  # the composite's stretch of the block

        def flush() -> Iterator[_Task]:
            nonlocal pending, start
            if end > start:
                copies = [(a - start, b - start, src) for a, b, src in pending]
                task = functools.partial(_xdelta3.compose_window, block[start:end], copies)
                yield task, 0, offset + end
            pending = []
            start = end

        for w in windows:
            if end - start + (w.end - w.start) > COPY_WINDOW:
                yield from flush()
            if isinstance(w, Copy):
                pending.append((w.start, w.end, w.source))
            elif isinstance(w, Local) and (
                w.covered >= OWN_COVERED * (w.end - w.start)
                or w.end - w.start - w.covered <= OWN_GAPS
            ):
                pending.extend(w.copies)
            elif isinstance(w, Plain) and self._recode and not self._random(block[w.start : w.end]):
                pass  # added as it is, for LZMA
            else:
                yield from flush()
                if isinstance(w, Local):
                    piece = block[w.start : w.end]
                    task = functools.partial(self._local.encode_window, piece, w.lo, w.hi, w.hint)
                    yield task, 0, offset + w.end
                else:
                    yield from self._unshared(block, w.start, w.end, offset)
                start = w.end
            end = w.end
        yield from flush()

    @staticmethod
    def _random(data: memoryview) -> bool:
        """Whether ``data`` looks random (stored as it is, never compressed)."""
        return _xdelta3.entropy_bits(data) >= 8 - RANDOM_MARGIN / max(1, len(data))

    def _unshared(self, block: memoryview, lo: int, hi: int, offset: int) -> Iterator[_Task]:
        """Stretches that share nothing with the reference: classified here, so that the size
        of verbatim windows counts toward max_delta_size before they are even built."""
        for start in range(lo, hi, self._plain_window):
            piece = block[start : min(start + self._plain_window, hi)]
            end = offset + start + len(piece)
            if self.local and self._recode:
                # LZMA (recoding in order) is a far better matcher of new data than xdelta3
                # within one window: hand it the bytes as they are. They count toward
                # max_delta_size only where LzmaSections will leave them as they are.
                raw = len(piece) < 10 or _xdelta3.entropy_bits(piece) >= LZMA_RAW_ENTROPY
                yield functools.partial(_xdelta3.literal_window, piece), len(piece) * raw, end
            elif self._random(piece):
                yield functools.partial(_xdelta3.literal_window, piece), len(piece), end
            else:
                yield functools.partial(self.plain.encode, piece), 0, end

    def _encode_shared(
        self, data: memoryview, hint: int, session: _xdelta3.EncodeSession | None = None
    ) -> bytes:
        if session is not None:
            return session.encode_window(data, hint)
        assert self.shared is not None  # not a large reference
        return self.shared.encode(data, hint)

    def _tasks(
        self, block: memoryview, offset: int, lzma: _xdelta3.EncodeSession | None
    ) -> Iterator[_Task]:
        """Window tasks for one block of the target starting at ``offset``, each with the
        least its output will be (known only for verbatim windows; else 0) and where its
        window ends in the target."""
        if self.local:
            yield from self._local_tasks(block, offset)
            return
        win = self.window_size
        if self._probe is None:
            segments = [(0, len(block), True, 0)]
        else:
            segments = self._probe.segment(block, PROBE_MARGIN, PROBE_MIN_GAP)
        for lo, hi, shared, hint in segments:
            if shared:
                for start in range(lo, hi, win):
                    piece = block[start : min(start + win, hi)]
                    where = hint + (start - lo) if hint else offset + start
                    end = offset + start + len(piece)
                    yield functools.partial(self._encode_shared, piece, where, lzma), 0, end
                continue
            yield from self._unshared(block, lo, hi, offset)

    def pieces(
        self,
        blocks: Iterator[tuple[memoryview, int]],
        max_delta_size: int | None,
        progress: Callable[[int], None] | None = None,
        lookahead: int = 2,
    ) -> Iterator[bytes]:
        """The delta as a sequence of pieces (header first) for a sequence of target blocks.

        Up to ``lookahead`` blocks are probed ahead of the windows being encoded, in parallel.
        The least size of what they will produce (their verbatim windows) counts toward
        ``max_delta_size`` as soon as it is known: an unrelated target is given up on after
        being probed, not encoded.
        """
        header = self.header
        recoder = _xdelta3.LzmaSections(LZMA_DATA_PRESET) if self.local and self._recode else None
        produced = len(header)
        read = 0
        if max_delta_size is not None and produced > max_delta_size:
            raise DeltaTooLargeError(max_delta_size, produced, 0)
        yield header
        lzma = self._core.session() if self._sequential else None
        # Windows in flight: twice those that can be encoded at once, so that a slow window
        # does not idle the others while its successors wait to be written in order.
        depth = 1 if self._sequential or self.threads == 1 else 2 * self.concurrency
        any_window = False
        # Least sizes and target ends of the windows handed out, not yet returned.
        promised: deque[tuple[int, int]] = deque()
        pending = 0  # their sum
        read_done = 0  # end of the last block whose windows were handed out
        # Blocks being probed ahead: the probe's future and where the block ends.
        ahead: deque[tuple[Future[list[_Task]], int]] = deque()

        def probe(block: memoryview, offset: int) -> list[_Task]:
            return list(self._tasks(block, offset, lzma))

        def check(extra: int) -> None:
            if max_delta_size is not None and produced + pending + extra > max_delta_size:
                # How far the target has been looked at: read and encoded, or probed.
                examined = max([read_done, *(end for f, end in ahead if f.done())])
                raise DeltaTooLargeError(max_delta_size, produced + pending + extra, examined)

        def tasks() -> Iterator[Callable[[], bytes]]:
            nonlocal read, pending, read_done
            source = iter(blocks)
            more = True
            while True:
                while more and len(ahead) < lookahead:
                    try:
                        block, offset = next(source)
                    except StopIteration:
                        more = False
                        break
                    read = offset + len(block)
                    if depth > 1:
                        ahead.append((CODEC.submit(probe, block, offset), read))
                    else:
                        done: Future[list[_Task]] = Future()
                        done.set_result(probe(block, offset))
                        ahead.append((done, read))
                if not ahead:
                    return
                # What the blocks probed so far will produce at least, before any is encoded,
                # checked as each probe finishes: an unrelated target stops after about as
                # much of it is probed as the limit allows.
                while True:
                    check(
                        sum(
                            least
                            for f, _ in ahead
                            if f.done() and not f.exception()
                            for _, least, _ in f.result()
                        )
                    )
                    if ahead[0][0].done():
                        break
                    wait([f for f, _ in ahead if not f.done()], return_when=FIRST_COMPLETED)
                future, read_done = ahead.popleft()
                for task, least, end in future.result():
                    pending += least
                    check(0)
                    promised.append((least, end))
                    yield task

        results = CODEC.ordered(tasks(), depth)
        try:
            for piece in results:
                least, end = promised.popleft()
                pending -= least
                if progress is not None:
                    progress(end)
                if not piece:
                    continue
                if recoder is not None:
                    piece = recoder.recode(piece, LZMA_RAW_ENTROPY)
                produced += len(piece)
                check(0)
                any_window = True
                yield piece
        finally:
            results.close()
            for fut, _ in ahead:
                fut.cancel()
        if not any_window:
            # xdelta3 writes an empty window for an empty target; its decoder refuses a delta
            # without windows, so do the same.
            empty = _xdelta3.literal_window(b"")
            if max_delta_size is not None and produced + len(empty) > max_delta_size:
                raise DeltaTooLargeError(max_delta_size, produced + len(empty), read)
            yield empty
