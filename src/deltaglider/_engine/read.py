"""The read path: an object opened once (its stored form found, its body open), then read out
verified, as a stream, into a writer, or into a local file that appears only once verified.

:class:`Opened` is the seam callers use when they must look at the object before reading it
(conditional requests, ranges given from the end): the summary comes with the one GET that
also brings the bytes, so a download costs two requests (the GET, and the HEAD of the key's
other stored form sent beside it), not four.

Before a byte is handed out, the stored object must be readable as what it claims to be: a
delta needs its file's sha256 and size (the bound on what it may decode to) and its
reference's key and sha256 (:func:`check_delta`), and a range must fall inside the object
(:func:`check_range`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import format as fmt
from .._io import CHUNK
from ..codec import Decoder
from ..errors import DecodeError, IntegrityError, InvalidRange
from ..storage.base import ObjectInfo
from .lookup import Lookup, summarize
from .model import DELTA_ONLY_FIELDS, ObjectSummary
from .refs import References
from .verify import RangeWriter, VerifiedReader, Verifier, write_atomically

__all__ = ["Opened", "Reader", "check_delta", "check_range"]


def check_delta(bucket: str, key: str, info: ObjectInfo) -> None:
    """Refuses to read an object stored as ``key``'s delta whose metadata marks it as a delta
    but lacks what rebuilding and checking it needs: the file's sha256 and size (the bound on
    what the delta may decode to), and the reference's key and sha256. Read as plain bytes, it
    would be the delta itself, or an unbounded decode. Objects with no delta field at all
    (another tool's ``x.delta``) are still served as they are."""
    if info.key != fmt.delta_key(key):
        return
    raw = {k.lower(): v for k, v in (info.metadata or {}).items()}
    legacy = not any(k.startswith(("dg-", "dg_")) for k in raw)
    if not any(fmt.read_field(raw, f, bare=legacy) for f in DELTA_ONLY_FIELDS):
        return
    meta = fmt.parse_metadata(raw, info.key)
    bad = [
        name
        for name, value in (
            ("dg-file-sha256", meta.file_sha256),
            ("dg-file-size", meta.file_size),
            ("dg-ref-key", meta.ref_key),
            ("dg-ref-sha256", meta.ref_sha256),
        )
        if value is None
    ]
    if meta.ref_key is not None and fmt.basename(meta.ref_key) != fmt.REFERENCE_NAME:
        bad.append("dg-ref-key")  # a delta is made against a reference.bin, nothing else
    if bad:
        raise IntegrityError(
            f"s3://{bucket}/{info.key}: the delta's metadata is damaged (missing or invalid: "
            f"{', '.join(bad)}); it cannot be rebuilt and checked",
            key=key,
        )


def check_range(summary: ObjectSummary, start: int, end: int | None) -> None:
    """Refuses a range outside the object (InvalidRange, S3's 416)."""
    size = summary.size or 0
    if start < 0 or (end is not None and end < start) or (start > 0 and start >= size):
        raise InvalidRange(
            f"{summary.key}: range {start}-{end} is outside the object ({size} bytes)",
            code="InvalidRange",
            status=416,
            bucket=summary.bucket,
            key=summary.key,
        )


class Opened:
    """An object found and its body open: ``summary`` says what it is (a damaged delta is
    refused when it is read, as a range outside it is); read it out once with
    :meth:`stream`, :meth:`write_to` or :meth:`save_as`, or :meth:`close` it unread. A context
    manager."""

    def __init__(self, reader: Reader, summary: ObjectSummary, info: ObjectInfo, body: Any) -> None:
        self._reader = reader
        self.summary = summary
        self._info = info
        self._body = body
        self._taken = False
        self._closed = False

    def _take(self, start: int, end: int | None) -> tuple[Verifier, Any]:
        if self._taken:
            raise ValueError(f"{self.summary.key}: this object was read already")
        self._taken = True
        check_delta(self.summary.bucket, self.summary.key, self._info)
        check_range(self.summary, start, end)
        return Verifier(self.summary.key, self.summary.sha256, self.summary.size), self._body

    def stream(self, start: int = 0, end: int | None = None) -> VerifiedReader:
        """A readable stream of bytes ``start`` to ``end`` (exclusive) that raises
        IntegrityError at its end if the object's bytes are wrong. The body is the stream's
        from then on: closing the stream closes it (closing this object no longer does)."""
        try:
            verifier, body = self._take(start, end)
            if self.summary.is_delta:
                decoder = self._reader.decoder(self.summary)
                inner: Any = decoder.stream_reader(body, max_output_size=self.summary.size)
                closers = [inner.close, body.close]
            else:
                inner, closers = body, [body.close]
        except BaseException:
            self.close()
            raise
        self._closed = True  # the body is the stream's now: closing the stream closes it
        return VerifiedReader(inner, verifier, start, end, closers)

    def write_to(
        self,
        out: Any,
        start: int = 0,
        end: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectSummary:
        """Writes bytes ``start`` to ``end`` to a writable binary stream as they come; raises
        IntegrityError at the end if they were wrong. ``progress`` gets increments of the
        object's bytes processed."""
        try:
            verifier, body = self._take(start, end)
            writer = RangeWriter(out, verifier, start, end, progress)
            if self.summary.is_delta:
                decoder = self._reader.decoder(self.summary)
                try:
                    decoder.copy_stream(body, writer, max_output_size=self.summary.size)
                except DecodeError as exc:
                    raise IntegrityError(
                        f"s3://{self.summary.bucket}/{self.summary.key}: the delta does not "
                        f"decode: {exc}",
                        key=self.summary.key,
                    ) from exc
            else:
                while chunk := body.read(CHUNK):
                    writer.write(chunk)
            verifier.check()
            return self.summary
        finally:
            self.close()

    def save_as(
        self,
        dest: str | os.PathLike[str],
        start: int = 0,
        end: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectSummary:
        """Writes the bytes to the file ``dest``, under a temporary name in its folder renamed
        over it only once they are verified; nothing is left behind on failure."""
        try:
            return write_atomically(Path(dest), lambda fh: self.write_to(fh, start, end, progress))
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._body.close()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reader:
    """Opens objects for reading (see the module's notes)."""

    def __init__(self, lookup: Lookup, refs: References) -> None:
        self._lookup = lookup
        self._refs = refs

    def open(self, bucket: str, key: str) -> tuple[Opened, ObjectInfo | None]:
        """The object, open, and the older stored form of the key found beside it (None)."""
        found, body = self._lookup.open(bucket, key)
        return Opened(self, summarize(bucket, found.key, found.info), found.info, body), found.older

    def decoder(self, summary: ObjectSummary) -> Decoder:
        """The decoder of a delta's reference."""
        assert summary.ref_sha256 is not None
        ref_key = summary.ref_key or fmt.reference_key(fmt.deltaspace(summary.physical_key))
        return self._refs.decoder(summary.bucket, ref_key, summary.ref_sha256)
