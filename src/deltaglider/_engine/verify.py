"""Verified output: every byte the read path hands out passes a :class:`Verifier` (its size and
sha256 are checked against what was recorded when it was stored), and a range is cut out of
the whole object, which is still read and checked to its end.

Three ways out, one arithmetic (:func:`_within`): :class:`RangeWriter` (pushed into a writer by
the decoder's parallel ``copy_stream``), :class:`VerifiedReader` (pulled by a caller, on the
codec's :class:`~deltaglider.codec.StreamReader`), and :func:`write_atomically` (a local file
that appears, renamed over the destination, only once the bytes are verified).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from .._io import CHUNK
from .._spool import BackgroundHash
from ..codec import StreamReader
from ..errors import DecodeError, IntegrityError

__all__ = ["RangeWriter", "VerifiedReader", "Verifier", "write_atomically"]

T = TypeVar("T")

#: Objects at least this large are hashed on a thread of their own while they are read.
BACKGROUND_HASH = 64 << 20


class Verifier:
    """Hashes everything that passes through and checks it at the end."""

    def __init__(self, key: str, sha256: str | None, size: int | None) -> None:
        self.key = key
        self.expected_sha = sha256
        self.expected_size = size
        self.count = 0
        # A large object is hashed on a thread of its own, beside decoding and writing it.
        self._hash: BackgroundHash | hashlib._Hash = (
            BackgroundHash() if size is not None and size >= BACKGROUND_HASH else hashlib.sha256()
        )

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.count += len(data)

    def check(self) -> str:
        digest = self._hash.hexdigest()
        if self.expected_size is not None and self.count != self.expected_size:
            raise IntegrityError(
                f"{self.key}: got {self.count} bytes, expected {self.expected_size}",
                key=self.key,
                expected=str(self.expected_size),
                actual=str(self.count),
            )
        if self.expected_sha is not None and digest != self.expected_sha:
            raise IntegrityError(
                f"{self.key}: sha256 mismatch (expected {self.expected_sha}, got {digest})",
                key=self.key,
                expected=self.expected_sha,
                actual=digest,
            )
        return digest


def _within(position: int, length: int, start: int, end: int | None) -> tuple[int, int]:
    """The part ``[lo, hi)`` of ``length`` bytes found at ``position`` of the object that falls
    in the range ``[start, end)`` (empty when ``hi <= lo``)."""
    lo = max(start - position, 0)
    hi = length if end is None else max(min(length, end - position), 0)
    return lo, hi


class RangeWriter:
    """Passes on only the bytes of [start, end) of what is written through it, hashing all."""

    def __init__(
        self,
        out: Any,
        verifier: Verifier,
        start: int,
        end: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._out = out
        self._progress = progress
        self._verifier = verifier
        self._start = start
        self._end = end
        self._pos = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        self._verifier.update(view)
        lo, hi = _within(self._pos, len(view), self._start, self._end)
        if hi > lo:
            self._out.write(view[lo:hi])
        self._pos += len(view)
        if self._progress is not None:
            self._progress(len(view))
        return len(view)


class VerifiedReader(StreamReader):
    """A stream of an object's bytes that raises IntegrityError at its end if they are wrong.

    Only bytes ``start`` to ``end`` are returned, but all of the object is read and hashed:
    the end of a range is reported only once the whole object is verified. Closing it closes
    what it reads from (``closers``).
    """

    def __init__(
        self,
        inner: Any,
        verifier: Verifier,
        start: int = 0,
        end: int | None = None,
        closers: Iterable[Callable[[], None]] = (),
    ) -> None:
        self._closers = list(closers)
        super().__init__(self._verified(inner, verifier, start, end))

    def _verified(
        self, inner: Any, verifier: Verifier, start: int, end: int | None
    ) -> Iterator[memoryview]:
        position = 0
        try:
            while True:
                try:
                    chunk = inner.read(CHUNK)
                except DecodeError as exc:
                    raise IntegrityError(
                        f"{verifier.key}: the delta does not decode: {exc}", key=verifier.key
                    ) from exc
                if not chunk:
                    verifier.check()
                    return
                view = memoryview(chunk).cast("B")
                verifier.update(view)
                lo, hi = _within(position, len(view), start, end)
                position += len(view)
                if hi > lo:
                    yield view[lo:hi]
        finally:
            self._release()

    def _release(self) -> None:
        closers, self._closers = self._closers, []
        for closer in closers:
            with contextlib.suppress(Exception):
                closer()

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._release()  # also when nothing was read (the generator never started)


@functools.lru_cache(maxsize=1)
def umask() -> int:
    """The process's umask, read without changing it where the system allows (setting it to
    read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(dest: Path, produce: Callable[[IO[bytes]], T]) -> T:
    """Writes ``dest`` through ``produce(file)`` under a temporary name in its own folder,
    flushed to disk, then renamed over it; nothing is left behind if ``produce`` fails. The
    file gets the mode a plain write would give it: the replaced file's, else what the umask
    allows (mkstemp makes it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".dgpart")
    try:
        try:
            mode = stat.S_IMODE(os.stat(dest).st_mode)
        except OSError:
            mode = 0o666 & ~umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            result = produce(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
