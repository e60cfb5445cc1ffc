"""Reading an S3 object's bytes: bodies that resume where a connection broke off, and bodies
fetched as parallel ranged GETs ahead of the reader.

They are given a ``fetch(start, end, etag)`` that returns the raw body of a ranged,
ETag-pinned GET (the store's request, with its retries and error translation) and a
``submit`` that runs a task on the store's pool: they know nothing else of the store. The
read-ahead tasks wait only on the network, never on other tasks of that pool.
"""

from __future__ import annotations

import contextlib
import mmap
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import botocore.exceptions

from .._io import CHUNK, ViewReader, read_all
from ..errors import ObjectNotFound, PreconditionFailed, StorageError
from ._s3_wire import translate

__all__ = ["READ_RETRIES", "Fetch", "PartsBody", "Prefixed", "ResumingBody", "Submit"]

#: Times a read that broke off is resumed (and a GET whose body did not begin is sent again).
READ_RETRIES = 5

#: ``fetch(start, end, etag)``: the raw body of bytes ``start`` to ``end`` (exclusive) of the
#: object, if its ETag is still ``etag``.
Fetch = Callable[[int, int, str], Any]
#: Runs a task on the store's pool.
Submit = Callable[..., Future[Any]]


class ResumingBody:
    """An object's bytes that survive a connection breaking off mid-body.

    A failed read re-requests the rest (``Range`` from the current offset, ``If-Match`` the
    ETag, so a replaced object fails instead of mixing). The end of the stream is checked
    against the length the response announced: a short body is an error, never a quiet EOF.
    """

    def __init__(
        self, fetch: Fetch, bucket: str, key: str, etag: str, start: int, end: int, body: Any
    ) -> None:
        self._fetch = fetch
        self._bucket = bucket
        self._key = key
        self._etag = etag
        self._pos = start
        self._end = end
        self._body = body

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            return read_all(self)
        want = min(size, self._end - self._pos)
        if want <= 0:
            return b""
        for attempt in range(READ_RETRIES + 1):
            try:
                if self._body is None:
                    self._body = self._fetch(self._pos, self._end, self._etag)
                data: bytes = self._body.read(want)
                if not data:
                    raise StorageError(
                        f"s3://{self._bucket}/{self._key}: body ended {self._end - self._pos} "
                        "bytes early",
                        code="IncompleteBody",
                        bucket=self._bucket,
                        key=self._key,
                    )
                self._pos += len(data)
                return data
            except (botocore.exceptions.BotoCoreError, OSError, StorageError) as exc:
                if isinstance(exc, (PreconditionFailed, ObjectNotFound)) or attempt == READ_RETRIES:
                    raise translate(exc, bucket=self._bucket, key=self._key, action="read") from exc
                self._drop()
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop()
        self._pos = self._end

    def __enter__(self) -> ResumingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Prefixed:
    """A body whose first bytes were read already."""

    def __init__(self, head: bytes, body: Any) -> None:
        self._head = head
        self._body = body

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            data: bytes = self._body.read() if size is None or size < 0 else self._body.read(size)
            return data
        if size is None or size < 0:
            data = self._head + self._body.read()
            self._head = b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data

    def close(self) -> None:
        self._body.close()


class PartsBody:
    """An object's bytes fetched as parallel ranged GETs, read in order.

    ``first`` is the body of the bytes before ``offset``; the parts from ``offset`` to ``end``
    are requested ahead of the reader (a bounded number in flight), each pinned to the
    object's ETag and resumable on its own. A part is read in pieces into an anonymous
    mapping of its size, given back to the system as soon as it is read out: the memory a
    download holds is the parts in flight, whatever the object's size, and no thread's heap
    keeps a part's worth after it (the allocator would keep a freed part in the arena of the
    thread that fetched it).
    """

    _AHEAD = 4

    def __init__(
        self,
        fetch: Fetch,
        submit: Submit,
        bucket: str,
        key: str,
        etag: str,
        first: Any,
        offset: int,
        end: int,
        part: int,
    ) -> None:
        self._fetch = fetch
        self._submit = submit
        self._bucket = bucket
        self._key = key
        self._etag = etag
        self._current: Any = first
        self._next = offset
        self._end = end
        self._part = part
        self._pending: deque[Future[memoryview]] = deque()
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._AHEAD and self._next < self._end:
            a, b = self._next, min(self._next + self._part, self._end)
            self._pending.append(self._submit(self._fetch_part, a, b))
            self._next = b

    def _fetch_part(self, a: int, b: int) -> memoryview:
        body = ResumingBody(self._fetch, self._bucket, self._key, self._etag, a, b, None)
        try:
            part = memoryview(mmap.mmap(-1, b - a))  # unmapped when the last view goes
            got = 0
            while got < b - a:
                data = body.read(min(CHUNK, b - a - got))  # a short body raises
                part[got : got + len(data)] = data
                got += len(data)
            return part
        finally:
            body.close()

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            return read_all(self)
        while True:
            if self._current is not None:
                data: bytes = self._current.read(size)
                if data:
                    return data
                self._current = None
            if not self._pending:
                return b""
            self._current = ViewReader(self._pending.popleft().result())
            self._fill()

    def close(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        current, self._current = self._current, None
        close = getattr(current, "close", None)  # the first body holds a connection
        if close is not None:
            close()

    def __enter__(self) -> PartsBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
