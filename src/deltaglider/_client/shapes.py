"""The shapes of the client's responses: ETags quoted as S3 quotes them, the ``DeltaGliderInfo``
entry, the ``ResponseMetadata`` of a response the engine made, an object's fields (head_object,
get_object) and the ``Body`` of get_object (:class:`StreamingBody`).

Every part of the client builds its answers from these (the simple API and the transfers too),
so none imports them back from :mod:`deltaglider.client`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, Final

from .. import format as fmt
from ..engine import ObjectSummary, PutResult, VerifiedReader
from ..models import mib, percent, savings

__all__ = [
    "DEFAULT_TYPE",
    "StreamingBody",
    "metadata_response",
    "object_fields",
    "operation_of",
    "put_info",
    "quoted",
    "summary_info",
]

#: S3's content type for an object stored without one.
DEFAULT_TYPE: Final = "binary/octet-stream"


def quoted(etag: str) -> str:
    """An ETag as S3 gives it, in double quotes."""
    etag = etag or ""
    return etag if etag.startswith('"') else f'"{etag}"'


def metadata_response(status: int = 200) -> dict[str, Any]:
    """``ResponseMetadata`` of a response the engine made (no raw headers to show)."""
    return {"HTTPStatusCode": status, "HTTPHeaders": {}, "RequestId": "", "RetryAttempts": 0}


def _info(
    *,
    stored: int,
    original: int,
    is_delta: bool,
    ref_key: str | None,
    physical_key: str,
) -> dict[str, Any]:
    """The ``DeltaGliderInfo`` entry of a response: ours, then the original DeltaGlider's
    names of the same figures (sizes in MiB, savings in percent, ``DeltaRatio`` and
    ``CompressionRatio``: stored over original, 1.0 for an object stored whole)."""
    saved = original - stored
    ratio = stored / original if original else 1.0
    return {
        "IsDelta": is_delta,
        "OriginalSize": original,
        "StoredSize": stored,
        "Savings": savings(stored, original),
        "ReferenceKey": ref_key,
        "PhysicalKey": physical_key,
        "OriginalSizeMB": mib(original),
        "StoredSizeMB": mib(stored),
        "SavingsPercent": percent(saved, original),
        "DeltaRatio": ratio,
        "CompressionRatio": ratio,
        "StoredAs": physical_key,
    }


def operation_of(result: PutResult) -> str:
    """The original's name of what a put did."""
    if result.became_reference:
        return "create_reference"
    return "create_delta" if result.is_delta else "upload_direct"


def summary_info(obj: ObjectSummary) -> dict[str, Any]:
    """``DeltaGliderInfo`` of an object found (head, get, a download)."""
    size = obj.size if obj.size is not None else obj.stored_size
    ref = obj.ref_key or (
        fmt.reference_key(fmt.deltaspace(obj.physical_key)) if obj.is_delta else None
    )
    return _info(
        stored=obj.stored_size,
        original=size,
        is_delta=obj.is_delta,
        ref_key=ref,
        physical_key=obj.physical_key,
    )


def put_info(result: PutResult) -> dict[str, Any]:
    """``DeltaGliderInfo`` of an object stored (put, copy, an upload). The first file of a
    folder is reported as what it cost: stored whole, as the reference (``IsDelta`` false, no
    saving, ``StoredAs`` the reference), as the original reported it."""
    if result.became_reference:
        info = _info(
            stored=result.size,
            original=result.size,
            is_delta=False,
            ref_key=result.ref_key,
            physical_key=result.physical_key,
        )
        info["StoredAs"] = result.ref_key
    else:
        info = _info(
            stored=result.stored_size,
            original=result.size,
            is_delta=result.is_delta,
            ref_key=result.ref_key,
            physical_key=result.physical_key,
        )
    info["Operation"] = operation_of(result)
    return info


def object_fields(head: ObjectSummary) -> dict[str, Any]:
    """What head_object and get_object answer about an object (the whole of it: a range
    changes ``ContentLength`` and adds ``ContentRange``)."""
    return {
        "AcceptRanges": "bytes",
        "LastModified": head.last_modified,
        "ContentLength": head.size or 0,
        "ETag": quoted(head.etag),
        "ContentType": head.content_type or DEFAULT_TYPE,
        "Metadata": dict(head.metadata or {}),
        "DeltaGliderInfo": summary_info(head),
        "ResponseMetadata": metadata_response(),
    }


class StreamingBody(io.RawIOBase):
    """botocore's ``StreamingBody`` for a deltaglider object: ``read(amt)``,
    ``iter_chunks()``, ``iter_lines()``, ``close()``, a context manager. The bytes are
    verified against the recorded sha256 as they are read: the read that reaches the end raises
    ``IntegrityError`` if they were wrong."""

    _DEFAULT_CHUNK_SIZE = 1024

    def __init__(self, reader: VerifiedReader, content_length: int) -> None:
        super().__init__()
        self._reader = reader
        self._content_length = content_length
        self._amount_read = 0

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            chunks = []
            while chunk := self._reader.read(1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            data = self._reader.read(amt) if amt else b""
        self._amount_read += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def iter_chunks(self, chunk_size: int = _DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def iter_lines(
        self, chunk_size: int = _DEFAULT_CHUNK_SIZE, keepends: bool = False
    ) -> Iterator[bytes]:
        pending = b""
        for chunk in self.iter_chunks(chunk_size):
            lines = (pending + chunk).splitlines(True)
            for line in lines[:-1]:
                yield line if keepends else line.splitlines()[0]
            pending = lines[-1]
        if pending:
            yield pending if keepends else pending.splitlines()[0]

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks(self._DEFAULT_CHUNK_SIZE)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()

    def __enter__(self) -> StreamingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
