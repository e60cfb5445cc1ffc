"""Spooling bytes of any size without holding them in the heap: in memory while small, beyond
in a file that has no name (it disappears when closed, whatever ends the process), mapped to
be read back. One mechanism for both things that need it: a reference being fetched or taken
out of the cache (its size known, hashed as it comes) and a delta being encoded (its size
known only at the end, and needed before it is sent).
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import queue
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Final, TypeAlias

__all__ = ["DELTA_SPOOL_THRESHOLD", "BackgroundHash", "Buffer", "Spool", "unnamed_file"]

#: A delta being encoded stays in memory up to this many bytes, beyond in an unnamed file:
#: small deltas cost no file, big ones no memory.
DELTA_SPOOL_THRESHOLD: Final = 16 << 20
#: Pieces (of at most _HASH_PIECE bytes) that may wait for a hashing thread: 32 MiB at most.
_HASH_AHEAD: Final = 8
_HASH_PIECE: Final = 4 << 20

#: What a finished spool gives: ``bytes``, or a read-only view of a mapped unnamed file.
Buffer: TypeAlias = bytes | memoryview


def unnamed_file(directory: Path | None = None) -> int:
    """A new empty file open for reading and writing, mode 0600, that has no name: in
    ``directory`` (else, or if it refuses, the system's temporary folder) with ``O_TMPFILE``, or
    where that is refused, ``mkstemp`` unlinked at once. It disappears when its last descriptor
    closes, whatever ends the process."""
    places = [str(directory)] if directory is not None else []
    places.append(tempfile.gettempdir())
    flag = getattr(os, "O_TMPFILE", 0)
    for n, place in enumerate(places):
        try:
            if flag:
                try:
                    return os.open(place, flag | os.O_RDWR | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                        raise
            fd, name = tempfile.mkstemp(dir=place, prefix=".plain-")
            os.unlink(name)
            return fd
        except OSError:
            if n == len(places) - 1:
                raise
    raise AssertionError("unreachable")


def _hash_from(pending: queue.Queue[bytes | None], digest: Any) -> None:
    while (chunk := pending.get()) is not None:
        digest.update(chunk)


class BackgroundHash:
    """A sha256 computed on a thread of its own (hashlib releases the GIL), fed in order, so
    that hashing, often the slowest step, runs beside what produces and writes the bytes; at
    most ``ahead`` chunks wait for it. The thread ends at :meth:`hexdigest`, :meth:`close`, or
    when the object is collected."""

    def __init__(self, start: Any = None, ahead: int = _HASH_AHEAD) -> None:
        #: The sha256 object fed (``start``: one that has taken bytes already).
        self._hash = start if start is not None else hashlib.sha256()
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=ahead)
        # The thread holds the queue and the hash, not this object, so that collecting it
        # (the finalizer below) can end the thread.
        self._thread: threading.Thread | None = threading.Thread(
            target=_hash_from,
            args=(self._pending, self._hash),
            name="deltaglider-hash",
            daemon=True,
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, self._pending.put, None)

    def update(self, chunk: Any) -> None:
        """Hashes ``chunk`` after those before it; a mutable buffer is copied first, in pieces
        of at most _HASH_PIECE bytes, so that what waits stays within ``ahead`` pieces."""
        if isinstance(chunk, bytes) and len(chunk) <= _HASH_PIECE:
            self._pending.put(chunk)
            return
        with memoryview(chunk) as view:
            flat = view.cast("B")
            for start in range(0, flat.nbytes, _HASH_PIECE):
                self._pending.put(bytes(flat[start : start + _HASH_PIECE]))

    def close(self) -> None:
        if self._thread is not None:
            self._finalizer()
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


class Spool:
    """Bytes gathered chunk by chunk: in memory up to ``in_memory_max`` bytes, beyond (or from
    the start, when ``size`` says so) in an :func:`unnamed_file` in ``directory``.

    ``size``: how many bytes will come, if known (writing more, or finishing with fewer, is a
    ValueError). ``digest``: hash them (sha256) as they come; a file-backed spool hashes on a
    thread of its own (hashlib releases the GIL), beside whatever produces and writes them.

    Read back either with :meth:`view` (the spool keeps the bytes; :meth:`close` lets them go)
    or with :meth:`finish` (the caller takes them: ``bytes``, or a view of the mapped file that
    lives as long as the view). :meth:`close` (or leaving the ``with``) abandons the rest.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        directory: Path | None = None,
        in_memory_max: int = DELTA_SPOOL_THRESHOLD,
        digest: bool = False,
    ) -> None:
        self.size = size
        self.written = 0
        self._directory = directory
        self._in_memory_max = in_memory_max
        self._digest = digest
        self._hash = hashlib.sha256()
        self._memory: bytearray | None = bytearray()
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._hasher: BackgroundHash | None = None
        if size is not None and size > in_memory_max:
            self._to_file()

    def _to_file(self) -> None:
        self._fd = unnamed_file(self._directory)
        held, self._memory = self._memory, None
        if self._digest:
            self._hasher = BackgroundHash(self._hash)  # goes on from what memory held
        done = 0  # already hashed, if hashing: only written
        with memoryview(held or b"") as view:
            while done < view.nbytes:
                done += os.write(self._fd, view[done:])

    def _stop_hashing(self) -> None:
        if self._hasher is not None:
            self._hasher.close()
            self._hasher = None

    def _write_file(self, view: memoryview, chunk: Any) -> None:
        if self._hasher is not None:
            self._hasher.update(chunk if isinstance(chunk, bytes) else view)
        done = 0
        while done < view.nbytes:
            done += os.write(self._fd, view[done:])

    def write(self, data: Any, /) -> int:
        if self._view is not None:
            raise ValueError("the spool is read already")
        with memoryview(data) as view:
            n = view.nbytes
            if self.size is not None and self.written + n > self.size:
                raise ValueError(f"more than the {self.size} bytes expected")
            if self._memory is not None and len(self._memory) + n > self._in_memory_max:
                self._to_file()  # hashes what was held first, so the order is kept
            if self._memory is not None:
                if self._digest:
                    self._hash.update(view)
                self._memory += view
            else:
                self._write_file(view, data)
        self.written += n
        return n

    def _check_complete(self) -> None:
        if self.size is not None and self.written != self.size:
            raise ValueError(f"{self.written} bytes of the {self.size} expected")

    def view(self) -> memoryview:
        """Everything written, in place (no more may be written)."""
        if self._view is None:
            self._check_complete()
            self._stop_hashing()
            if self._memory is not None:
                self._view = memoryview(self._memory)
            elif self.written:
                self._map = mmap.mmap(self._fd, self.written, access=mmap.ACCESS_READ)
                self._view = memoryview(self._map)
            else:
                self._view = memoryview(b"")
        return self._view

    def finish(self) -> tuple[Buffer, str]:
        """The bytes, handed over (``bytes``, or a read-only view of the mapped file), and
        their sha256 (empty unless ``digest``)."""
        self._check_complete()
        self._stop_hashing()
        digest = self._hash.hexdigest() if self._digest else ""
        try:
            if self._memory is not None:
                return bytes(self._memory), digest
            if not self.written:
                return b"", digest
            mapping = mmap.mmap(self._fd, self.written, access=mmap.ACCESS_READ)
            return memoryview(mapping), digest  # the mapping holds a dup of the descriptor
        finally:
            self.close()

    def close(self) -> None:
        self._stop_hashing()
        try:
            if self._view is not None:
                self._view.release()
            if self._map is not None:
                self._map.close()
        except BufferError:
            pass  # a view is still held elsewhere: the mapping goes with the last of them
        self._view = None
        self._map = None
        self._memory = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
