"""Multipart uploads and copies to S3: the way objects from the store's
``multipart_threshold`` on are uploaded (and objects over CopyObject's 5 GiB are copied), so
that objects of any size up to S3's 50 TiB work.

Upload and copy share one skeleton (:meth:`Multipart._multipart`): create the upload, run its
parts on the store's pool with a bounded number in flight, complete it with the write's
conditions (create-only and if-match apply to the completion, as they would to a single
request), and abort it on any failure, so that no upload is left open. A part's task waits
only on the network, never on another task of the pool.

Requests go through the store's ``call`` (its error translation and logging), parts through
its ``submit``: this module holds no state of the store. Progress is reported as increments
(:mod:`deltaglider.progress`), a part's bytes once it is stored, from the thread that sent it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, BinaryIO, Protocol

from .._io import read_exactly
from ..errors import StorageError
from ..progress import Progress
from ._s3_bodies import Submit
from ._s3_wire import response_date
from .base import ObjectInfo, WriteOptions

__all__ = ["MAX_PART", "MAX_PARTS", "Call", "Multipart", "part_size", "stream_parts"]

#: S3's limits: parts of an upload, bytes of a part (and of a CopyObject).
MAX_PARTS = 10_000
MAX_PART = 5 << 30

Part = dict[str, Any]  # {"PartNumber": n, "ETag": "..."}


class Call(Protocol):
    """The store's request: ``fn(**kwargs)``, its errors translated, its time logged."""

    def __call__(self, action: str, bucket: str, key: str, fn: Any, /, **kwargs: Any) -> Any: ...


def part_size(chunksize: int, size: int | None) -> int:
    """``chunksize``, doubled until an object of ``size`` bytes fits in :data:`MAX_PARTS`."""
    part = chunksize
    if size is not None:
        while size > part * MAX_PARTS:
            part *= 2
    return min(part, MAX_PART)


def stream_parts(stream: BinaryIO, first: bytes, part: int, grow: bool) -> Iterator[bytes]:
    """The stream in parts of ``part`` bytes (``first`` holds its beginning). Of unknown size,
    parts double every 1000 so that 10,000 parts reach far."""
    buffer = first
    number = 0
    while True:
        while len(buffer) < part:
            more = read_exactly(stream, part - len(buffer))
            if not more:
                break
            buffer += more
        if not buffer:
            return
        chunk, buffer = buffer[:part], buffer[part:]
        number += 1
        yield chunk
        if grow and number % 1000 == 0:
            part = min(part * 2, MAX_PART)


class Multipart:
    """One store's multipart uploads and copies.

    ``threads`` is the size of the pool behind ``submit``. An upload keeps
    ``max(4, min(10, threads // 2))`` parts in flight (the memory its parts hold is bounded);
    a copy holds no bytes and keeps half the pool busy, as when parts had a pool of their own
    of that size, so that HEADs and reads beside it still find threads.
    """

    def __init__(self, client: Any, call: Call, submit: Submit, threads: int) -> None:
        self._client = client
        self._call = call
        self._submit = submit
        self._upload_in_flight = max(4, min(10, threads // 2))
        self._copy_in_flight = max(2, threads // 2)

    def upload(
        self,
        bucket: str,
        key: str,
        pieces: Iterable[bytes | memoryview],
        size: int | None,
        extra: Mapping[str, Any],
        cond: Mapping[str, Any],
        progress: Progress | None,
    ) -> ObjectInfo:
        """Uploads ``pieces`` as the parts of ``key`` (``size``: what they must add up to;
        ``extra``: metadata, content type, tags)."""
        total = 0

        def tasks(upload_id: str) -> Iterator[Callable[[], Part]]:
            nonlocal total
            for number, chunk in enumerate(pieces, 1):
                if number > MAX_PARTS:
                    raise StorageError(
                        f"{key}: more than {MAX_PARTS} parts; raise the chunk size",
                        bucket=bucket,
                        key=key,
                    )
                total += len(chunk)
                yield functools.partial(
                    self._upload_part, bucket, key, upload_id, number, chunk, progress
                )
            if size is not None and total != size:
                raise StorageError(
                    f"expected {size} bytes for {key}, read {total}", bucket=bucket, key=key
                )

        r = self._multipart("upload", bucket, key, extra, cond, tasks, self._upload_in_flight)
        return _completed(key, total, extra, r)

    def copy(
        self,
        info: ObjectInfo,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        part: int,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        cond: Mapping[str, Any],
        options: WriteOptions | None = None,
    ) -> ObjectInfo:
        """Copies the object ``info`` describes in parts of ``part`` bytes, each pinned to its
        ETag; ``metadata`` and ``content_type`` replace the source's when given."""
        extra: dict[str, Any] = {
            "Metadata": dict(metadata if metadata is not None else info.metadata or {})
        }
        if content_type or info.content_type:
            extra["ContentType"] = content_type or info.content_type
        if options:
            extra.update(options.s3_args())
        source = {"Bucket": src_bucket, "Key": src_key}

        def tasks(upload_id: str) -> Iterator[Callable[[], Part]]:
            for number, start in enumerate(range(0, info.size, part), 1):
                end = min(start + part, info.size) - 1
                yield functools.partial(
                    self._copy_part, bucket, key, upload_id, number, source, start, end, info.etag
                )

        r = self._multipart("copy", bucket, key, extra, cond, tasks, self._copy_in_flight)
        return _completed(key, info.size, extra, r)

    def _multipart(
        self,
        verb: str,
        bucket: str,
        key: str,
        extra: Mapping[str, Any],
        cond: Mapping[str, Any],
        tasks: Callable[[str], Iterable[Callable[[], Part]]],
        in_flight: int,
    ) -> dict[str, Any]:
        """Creates a multipart upload, runs the part tasks ``tasks(upload_id)`` gives and
        completes the upload under ``cond``; aborts it on any failure. The completion's
        response."""
        client = self._client
        r = self._call(
            f"multipart {verb}", bucket, key, client.create_multipart_upload,
            Bucket=bucket, Key=key, **extra,
        )  # fmt: skip
        upload_id = r["UploadId"]
        try:
            parts = self._run(tasks(upload_id), in_flight)
            completed: dict[str, Any] = self._call(
                f"complete multipart {verb}", bucket, key, client.complete_multipart_upload,
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
                **cond,
            )  # fmt: skip
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return completed

    def _run(self, tasks: Iterable[Callable[[], Part]], in_flight: int) -> list[Part]:
        """The tasks' results in order, at most ``in_flight`` running or queued at once (tasks
        are drawn only as room frees up); the first failure cancels what has not started."""
        futures: list[Future[Part]] = []
        pending: set[Future[Part]] = set()
        try:
            for task in tasks:
                futures.append(self._submit(task))
                pending.add(futures[-1])
                while True:
                    for fut in [f for f in pending if f.done()]:
                        pending.discard(fut)
                        if (error := fut.exception()) is not None:
                            raise error
                    if len(pending) < in_flight:
                        break
                    wait(pending, return_when=FIRST_COMPLETED)
            return [f.result() for f in futures]
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    def _upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        data: bytes | memoryview,
        progress: Progress | None,
    ) -> Part:
        size = len(data)
        if isinstance(data, memoryview):
            data = data.tobytes()  # in this thread: the caller's buffer is sliced, not copied
        r = self._call(
            "upload part", bucket, key, self._client.upload_part,
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
        )  # fmt: skip
        if progress is not None:
            progress(size)
        return {"PartNumber": number, "ETag": r["ETag"]}

    def _copy_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        source: Mapping[str, str],
        start: int,
        end: int,
        etag: str,
    ) -> Part:
        r = self._call(
            "copy part", bucket, key, self._client.upload_part_copy,
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, CopySource=source,
            CopySourceRange=f"bytes={start}-{end}", CopySourceIfMatch=etag,
        )  # fmt: skip
        return {"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]}


def _completed(key: str, size: int, extra: Mapping[str, Any], r: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=size,
        etag=r.get("ETag", ""),
        last_modified=response_date(r),
        metadata=dict(extra["Metadata"]),
        content_type=extra.get("ContentType"),
    )
