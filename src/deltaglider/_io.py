"""Byte-moving helpers every layer shares, each once: read exactly n bytes, read to the end,
write all of a buffer, stage a stream in memory or a private mapped file, read a buffer as a
stream, spool what is written (a delta whose size must be known before it is sent), and
normalize dates.

A leaf: it imports nothing of the package but its errors, so the codec, the storage, the
engine and the client can all use it without an import cycle.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import IO, Any, Final, Protocol

from .errors import StorageError

__all__ = [
    "CHUNK",
    "SPOOL_THRESHOLD",
    "Staged",
    "ViewReader",
    "as_utc",
    "at_start_of_file",
    "http_date",
    "read_all",
    "read_exactly",
    "stage",
    "write_all",
]

#: Bytes asked of a stream at once when reading it to its end.
CHUNK: Final = 1 << 20
#: A stream of unknown size is held in memory up to this many bytes, beyond in a private
#: temporary file (uploads staged for hashing and encoding, request bodies checked before they
#: are stored, objects sampled by ``analyze``, rebuilt copies behind presigned URLs).
SPOOL_THRESHOLD: Final = 64 << 20


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: Any, /) -> Any: ...


def read_exactly(stream: Readable, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end (``read`` may return less than asked:
    a socket, a pipe, a raw file). One read that returns all of it is not copied again."""
    chunks = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    if len(chunks) == 1:
        return chunks[0] if isinstance(chunks[0], bytes) else bytes(chunks[0])
    return b"".join(chunks)


def read_all(stream: Readable, expected: int | None = None) -> bytes:
    """Everything left in ``stream``. With ``expected``, a different length is a StorageError
    (a body cut short, or longer than its object said)."""
    chunks = []
    got = 0
    while chunk := stream.read(CHUNK):
        chunks.append(chunk)
        got += len(chunk)
    if expected is not None and got != expected:
        raise StorageError(f"read {got} bytes of a {expected}-byte object")
    return b"".join(chunks)


def write_all(writer: Writable, data: Any) -> None:
    """Writes all of ``data``: a raw writer may take only part of it (``write`` returns how
    much); a return value that is not a count (None, from most ad-hoc writers) means all."""
    n = writer.write(data)
    if not isinstance(n, int) or n >= len(data):
        return
    with memoryview(data) as view:
        while n < len(view):
            k = writer.write(view[n:])
            if not isinstance(k, int):
                return
            if k <= 0:
                raise OSError(f"the writer took {k} bytes of {len(view) - n}")
            n += k


def at_start_of_file(stream: Any) -> bool:
    """Whether ``stream`` is a regular file positioned at its start (it can be mapped)."""
    try:
        return bool(
            stream.seekable()
            and stream.tell() == 0
            and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        )
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


class Staged:
    """Bytes readable as often as needed, without a copy where they allow it: a buffer as it
    is, a path or a regular file mapped, a stream held in memory or, past
    :data:`SPOOL_THRESHOLD`, in a private temporary file (unlinked already) that is mapped.

    ``view`` holds them; :meth:`close` lets them go (a view still held elsewhere keeps the
    mapping alive until it goes: closing never fails because of it).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview | Readable,
        *,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self._fh: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.view = memoryview(source).cast("B")
        elif isinstance(source, (str, os.PathLike)):
            self._fh = open(source, "rb")  # noqa: SIM115 - closed in close()
            self.view = self._mapped(self._fh)
        elif at_start_of_file(source):
            self.view = self._mapped(source)  # type: ignore[arg-type]  # a regular file
        else:
            self.view = self._spooled(source, advance)
        self.size = len(self.view)

    def _spooled(self, stream: Readable, advance: Callable[[int], None] | None) -> memoryview:
        head = bytearray()
        while len(head) < SPOOL_THRESHOLD:
            chunk = stream.read(min(CHUNK, SPOOL_THRESHOLD - len(head)))
            if not chunk:
                return memoryview(head)
            head += chunk
            if advance is not None:
                advance(len(chunk))
        self._fh = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._fh.write(head)
        del head
        while chunk := stream.read(CHUNK):
            self._fh.write(chunk)
            if advance is not None:
                advance(len(chunk))
        self._fh.flush()
        return self._mapped(self._fh)

    def _mapped(self, fh: IO[bytes]) -> memoryview:
        if os.fstat(fh.fileno()).st_size == 0:
            return memoryview(b"")
        self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._map)

    def close(self) -> None:
        try:
            self.view.release()
            if self._map is not None:
                self._map.close()
        except BufferError:
            # A view of the bytes is still held (a failed request's traceback keeps its frames
            # alive, an encoder built on them): the mapping goes with the last of them.
            pass
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class ViewReader:
    """A buffer (a mapped file) read as a binary stream: each read copies only the part asked
    for (an encoder reads it in blocks, into memory it gives back)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        end = (
            len(self._view) if size is None or size < 0 else min(self._pos + size, len(self._view))
        )
        piece = bytes(self._view[self._pos : end])
        self._pos = end
        return piece

    def readinto(self, buffer: Any, /) -> int:
        target = memoryview(buffer).cast("B")
        n = min(len(target), len(self._view) - self._pos)
        target[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n


def stage(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | Readable,
    *,
    advance: Callable[[int], None] | None = None,
) -> Staged:
    """``source`` as :class:`Staged` bytes; ``advance`` is told of the bytes a stream gives."""
    return Staged(source, advance=advance)


def as_utc(moment: datetime) -> datetime:
    """A time as an aware one in UTC (a store or a caller that gives naive times means UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def http_date(raw: str | None) -> datetime | None:
    """An HTTP date header (``Last-Modified``, ``Date``) as an aware UTC time; None if absent
    or unreadable."""
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).astimezone(timezone.utc)
    except (TypeError, ValueError, IndexError):
        return None
