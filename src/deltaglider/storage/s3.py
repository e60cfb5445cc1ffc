"""S3 and S3-compatible stores through boto3.

- Credentials and region come from one boto3 Session: of ``profile`` when given (never mixed
  with keys from elsewhere), else of explicit keys, else boto3's usual chain.
- Retries with exponential backoff on throttling (SlowDown, 503), 5xx and connection errors
  (botocore's adaptive mode); a body that breaks off mid-stream is resumed from where it
  stopped, pinned to the same object by its ETag.
- Objects from ``multipart_threshold`` on are uploaded (and copied) in parts, in parallel, so
  objects over 5 GiB work; create-only and if-match conditions apply to the completion.
- Checksums only where S3 requires them, so S3-compatible stores that do not implement the newer
  checksum headers work.
- One place (:func:`translate`) turns botocore errors into deltaglider's storage exceptions.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO

import botocore.exceptions

from ..errors import (
    BucketNotFound,
    InvalidRange,
    ObjectNotFound,
    StorageError,
)
from ._fasthead import FALLBACK, FastHead
from ._s3_bodies import READ_RETRIES, PartsBody, Prefixed, ResumingBody
from ._s3_session import build_client
from ._s3_wire import (  # the hook re-exported for tests/client/conftest.py's boto3 client
    _no_expect_for_empty_body as _no_expect_for_empty_body,
)
from ._s3_wire import object_info, register_hooks, response_date, translate
from .base import Body, BucketInfo, ListPage, ObjectInfo, Storage

log = logging.getLogger("deltaglider")

__all__ = ["S3Storage", "translate"]

MAX_PARTS = 10_000
MAX_PART = 5 << 30


def _reporter(progress: Callable[[int], None], size: int) -> Callable[[Future[Any]], None]:
    """A done-callback that reports a part's bytes once it is uploaded."""

    def done(future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            progress(size)

    return done


def _default_pool() -> int:
    """Connections for the engine's concurrency: it runs up to 2 * workers + 2 requests at once
    (transfers, and HEADs beside them)."""
    from ..config import Config

    try:
        workers = Config.from_env().max_workers
    except Exception:  # a bad setting is reported where the engine reads it
        workers = Config().max_workers
    return max(32, 4 * workers)


class S3Storage(Storage):
    """An S3-compatible store.

    :param endpoint_url: the service (None: AWS S3).
    :param profile: a boto3 profile; its credentials *and* region are used (the profile's
        region wins over ``AWS_DEFAULT_REGION``; the environment's only fills in for a profile
        that names none).
    :param region: overrides the session's region (default us-east-1 when none is set).
    :param max_pool_connections: connections kept to the store; by default sized for the
        engine's concurrency, ``max(32, 4 * DG_MAX_WORKERS)`` (the workers default to 8).
    :param addressing_style: ``path`` (default with an endpoint URL: what S3-compatible stores
        expect), ``virtual`` or ``auto``.
    :param conditional_writes: whether the store enforces ``If-None-Match: *`` (set False for
        stores that ignore it; the engine then uses its documented fallback).
    :param client: an existing boto3 S3 client to use instead of building one.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        addressing_style: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        verify: bool | str = True,
        max_attempts: int = 8,
        max_pool_connections: int | None = None,
        multipart_threshold: int = 16 << 20,
        multipart_chunksize: int = 8 << 20,
        conditional_writes: bool = True,
        connect_timeout: float | None = 10,
        read_timeout: float | None = 60,
        client: Any = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        #: Objects this large are copied part by part (CopyObject's limit is 5 GiB).
        self.multipart_copy_threshold = MAX_PART
        self.conditional_writes = conditional_writes
        if max_pool_connections is None:
            max_pool_connections = _default_pool()
        self._workers = max(2, max_pool_connections // 2)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._verify = verify
        self._session: Any = None
        self._fast: Any = None  # FastHead, built on first use (False: does not apply)
        self._fast_buckets: dict[str, bool] = {}
        self._fast_lock = threading.Lock()
        self._head_pool: ThreadPoolExecutor | None = None
        self._head_workers = max_pool_connections
        if client is not None:
            self.client = client
            register_hooks(client)
            return
        self.client, self._session = build_client(
            endpoint_url=endpoint_url,
            profile=profile,
            region=region,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            verify=verify,
            max_attempts=max_attempts,
            max_pool_connections=max_pool_connections,
            addressing_style=addressing_style,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        register_hooks(self.client)

    def describe(self) -> str:
        return self.endpoint_url or "AWS S3"

    def _call(self, action: str, bucket: str, key: str, fn: Any, /, **kwargs: Any) -> Any:
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.monotonic() if debug else 0.0
        try:
            result = fn(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            error = translate(exc, bucket=bucket, key=key, action=action)
            if debug:
                log.debug(
                    "%s s3://%s/%s: %s (%.0f ms)",
                    action, bucket, key, type(error).__name__, (time.monotonic() - started) * 1e3,
                )  # fmt: skip
            raise error from exc
        if debug:
            # What was asked and how long it took; never headers or credentials.
            log.debug(
                "%s s3://%s/%s (%.0f ms)", action, bucket, key, (time.monotonic() - started) * 1e3
            )
        return result

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="deltaglider-s3")
            return self._pool

    def _submit(self, fn: Any, /, *args: Any) -> Future[Any]:
        return self._executor().submit(fn, *args)

    def close(self) -> None:
        with self._pool_lock:
            pools = [p for p in (self._pool, self._head_pool) if p is not None]
            self._pool = self._head_pool = None
        for pool in pools:
            pool.shutdown(wait=True)
        if self._fast:
            self._fast.close()

    # --- objects -----------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo:
        try:
            r = self._call("head", bucket, key, self.client.head_object, Bucket=bucket, Key=key)
        except ObjectNotFound:
            # A HEAD 404 has no body to say whether the key or the bucket is missing: ask.
            self.head_bucket(bucket)
            raise
        return object_info(key, r)

    def head_or_none(self, bucket: str, key: str) -> ObjectInfo | None:
        # One request: a 404 is None whether the key or the bucket is missing.
        try:
            r = self._call("head", bucket, key, self.client.head_object, Bucket=bucket, Key=key)
        except ObjectNotFound:
            return None
        return object_info(key, r)

    def head_many(self, bucket: str, keys: Iterable[str]) -> dict[str, ObjectInfo | None]:
        """HEADs of many objects at once (None for a missing one), for listings.

        Runs on the fast path of :mod:`._fasthead` where it applies, once a first HEAD in the
        bucket has agreed with boto3's; every answer it cannot give comes from boto3.
        """
        keys = list(keys)
        if not keys:
            return {}
        fast = self._fast_for(bucket, keys[0])

        def one(key: str) -> ObjectInfo | None:
            if fast is not None:
                answer = fast.head(bucket, key)
                if answer is None or isinstance(answer, ObjectInfo):
                    return answer
            try:
                return self.head(bucket, key)
            except ObjectNotFound:
                return None

        with self._pool_lock:
            if self._head_pool is None:
                self._head_pool = ThreadPoolExecutor(
                    self._head_workers, thread_name_prefix="deltaglider-head"
                )
            pool = self._head_pool
        return dict(zip(keys, pool.map(one, keys), strict=True))

    def _fast_for(self, bucket: str, probe_key: str) -> FastHead | None:
        """The fast HEAD path if it applies to this store and agrees with boto3 in ``bucket``."""
        with self._fast_lock:
            if self._fast is None:
                self._fast = FastHead.for_client(self.client, self._session, self._verify) or False
            fast = self._fast
            known = self._fast_buckets.get(bucket)
        if not isinstance(fast, FastHead) or known is False:
            return None
        if known:
            return fast
        answer = fast.head(bucket, probe_key)
        fast.forget_connection()  # the caller's thread may be short-lived: keep no socket for it
        try:
            expected: ObjectInfo | None = self.head(bucket, probe_key)
        except ObjectNotFound:
            expected = None
        agrees = answer is not FALLBACK and (
            (answer is None and expected is None)
            or (
                isinstance(answer, ObjectInfo)
                and expected is not None
                and (answer.size, answer.etag, answer.metadata)
                == (expected.size, expected.etag, expected.metadata)
            )
        )
        with self._fast_lock:
            self._fast_buckets[bucket] = agrees
        return fast if agrees else None

    def _get_object(
        self, bucket: str, key: str, start: int, end: int | None, if_match: str | None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if if_match:
            kwargs["IfMatch"] = if_match
        result: dict[str, Any] = self._call("get", bucket, key, self.client.get_object, **kwargs)
        return result

    def _get_raw(self, bucket: str, key: str, start: int, end: int, if_match: str) -> Any:
        return self._get_object(bucket, key, start, end, if_match)["Body"]

    def get(
        self,
        bucket: str,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> tuple[ObjectInfo, Body]:
        if end is not None and end <= start:
            raise InvalidRange(
                f"empty range {start}-{end}", code="InvalidRange", bucket=bucket, key=key
            )
        # The first part is asked for as a range: an object no larger arrives whole in that one
        # response; a larger one continues in parts fetched in parallel, ahead of the reader.
        part = self.multipart_chunksize
        first_end = start + part if end is None else min(end, start + part)
        for attempt in range(READ_RETRIES + 1):
            try:
                r = self._get_object(bucket, key, start, first_end, if_match)
            except InvalidRange:
                if start or end is not None:
                    raise
                r = self._get_object(bucket, key, 0, None, if_match)  # an empty object
            length = int(r.get("ContentLength", 0))
            # The headers (size, ETag, metadata) are believed only once the body has begun: a
            # connection closed inside them leaves an answer with some of them missing whose
            # body then breaks off, and resuming that body would pass it off as complete.
            try:
                head: bytes = r["Body"].read(min(length, 1 << 16)) if length else b""
                if length and not head:
                    raise StorageError(
                        f"s3://{bucket}/{key}: the answer ended before its body",
                        code="IncompleteBody",
                        bucket=bucket,
                        key=key,
                    )
                break
            except (botocore.exceptions.BotoCoreError, OSError, StorageError) as exc:
                with contextlib.suppress(Exception):
                    r["Body"].close()
                if attempt == READ_RETRIES:
                    if isinstance(exc, StorageError):
                        raise
                    raise translate(exc, bucket=bucket, key=key, action="get") from exc
        total = length
        content_range = r.get("ContentRange")
        if content_range and "/" in content_range:
            try:
                total = int(content_range.rsplit("/", 1)[1])
            except ValueError:
                total = length
        info = object_info(key, r, size=total)
        stop = total if end is None else min(end, total)
        fetch = functools.partial(self._get_raw, bucket, key)
        first = ResumingBody(
            fetch, bucket, key, info.etag, start, start + length, Prefixed(head, r["Body"])
        )
        if start + length >= stop:
            return info, first
        rest = (start + length, stop, part)
        return info, PartsBody(fetch, self._submit, bucket, key, info.etag, first, *rest)

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes | bytearray | memoryview | BinaryIO,
        *,
        size: int | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
        progress: Callable[[int], None] | None = None,
        tagging: str | None = None,
    ) -> ObjectInfo:
        extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
        if content_type:
            extra["ContentType"] = content_type
        if tagging:
            extra["Tagging"] = tagging  # PutObject and CreateMultipartUpload both take it
        cond: dict[str, Any] = {}
        if if_none_match and self.conditional_writes:
            cond["IfNoneMatch"] = "*"
        if if_match:
            cond["IfMatch"] = if_match
        if isinstance(body, (bytes, bytearray, memoryview)):
            view = memoryview(body).cast("B")
            if len(view) >= self.multipart_threshold:
                part = self._part_size(len(view))
                # Slices, not copies: each part is copied by the thread that uploads it.
                pieces: Iterator[bytes | memoryview] = (
                    view[i : i + part] for i in range(0, len(view), part)
                )
                return self._put_multipart(bucket, key, pieces, len(view), extra, cond, progress)
            data = body if isinstance(body, bytes) else view.tobytes()
        else:
            first = _read_exactly(body, self.multipart_threshold)
            if len(first) < self.multipart_threshold:
                data = first
            else:
                pieces = _stream_parts(body, first, self._part_size(size), size is None)
                return self._put_multipart(bucket, key, pieces, size, extra, cond, progress)
        r = self._call(
            "put",
            bucket,
            key,
            self.client.put_object,
            Bucket=bucket,
            Key=key,
            Body=data,
            **extra,
            **cond,
        )
        if progress is not None:
            progress(len(data))
        return ObjectInfo(
            key=key,
            size=len(data),
            etag=r.get("ETag", ""),
            last_modified=response_date(r),
            metadata=dict(extra["Metadata"]),
            content_type=content_type,
        )

    def _part_size(self, size: int | None) -> int:
        part = self.multipart_chunksize
        if size is not None:
            while size > part * MAX_PARTS:
                part *= 2
        return min(part, MAX_PART)

    def _put_multipart(
        self,
        bucket: str,
        key: str,
        pieces: Iterator[bytes | memoryview],
        size: int | None,
        extra: dict[str, Any],
        cond: dict[str, Any],
        progress: Callable[[int], None] | None = None,
    ) -> ObjectInfo:
        r = self._call(
            "multipart upload",
            bucket,
            key,
            self.client.create_multipart_upload,
            Bucket=bucket,
            Key=key,
            **extra,
        )
        upload_id = r["UploadId"]
        pool = self._executor()
        futures: list[Future[dict[str, Any]]] = []
        total = 0
        in_flight = max(4, min(10, self._workers))
        try:
            for number, chunk in enumerate(pieces, 1):
                if number > MAX_PARTS:
                    raise StorageError(
                        f"{key}: more than {MAX_PARTS} parts; raise the chunk size",
                        bucket=bucket,
                        key=key,
                    )
                total += len(chunk)
                futures.append(
                    pool.submit(self._upload_part, bucket, key, upload_id, number, chunk)
                )
                if progress is not None:
                    futures[-1].add_done_callback(_reporter(progress, len(chunk)))
                # Bound the memory held by parts in flight.
                while sum(not f.done() for f in futures) >= in_flight:
                    wait([f for f in futures if not f.done()], return_when=FIRST_COMPLETED)
                for f in futures:
                    if f.done() and f.exception() is not None:
                        raise f.exception()  # type: ignore[misc]
            parts = [f.result() for f in futures]
            if size is not None and total != size:
                raise StorageError(
                    f"expected {size} bytes for {key}, read {total}", bucket=bucket, key=key
                )
            r = self._call(
                "complete multipart upload",
                bucket,
                key,
                self.client.complete_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **cond,
            )
        except BaseException:
            for f in futures:
                f.cancel()
            try:
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:
                pass
            raise
        return ObjectInfo(
            key=key,
            size=total,
            etag=r.get("ETag", ""),
            last_modified=response_date(r),
            metadata=dict(extra["Metadata"]),
            content_type=extra.get("ContentType"),
        )

    def _upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, data: bytes | memoryview
    ) -> dict[str, Any]:
        if isinstance(data, memoryview):
            data = data.tobytes()
        r = self._call(
            "upload part",
            bucket,
            key,
            self.client.upload_part,
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"PartNumber": number, "ETag": r["ETag"]}

    def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match
        self._call("delete", bucket, key, self.client.delete_object, **kwargs)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> dict[str, Exception]:
        errors: dict[str, Exception] = {}
        batch: list[str] = []

        def flush() -> None:
            r = self._call(
                "delete",
                bucket,
                "",
                self.client.delete_objects,
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            for err in r.get("Errors", []):
                fake = botocore.exceptions.ClientError(
                    {"Error": {"Code": err.get("Code", ""), "Message": err.get("Message", "")}},
                    "DeleteObjects",
                )
                errors[err.get("Key", "")] = translate(
                    fake, bucket=bucket, key=err.get("Key", ""), action="delete"
                )
            batch.clear()

        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                flush()
        if batch:
            flush()
        return errors

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": max_keys}
        if prefix:
            kwargs["Prefix"] = prefix
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        elif start_after:
            kwargs["StartAfter"] = start_after
        r = self._call("list", bucket, prefix, self.client.list_objects_v2, **kwargs)
        objects = [
            ObjectInfo(
                key=o["Key"],
                size=int(o.get("Size", 0)),
                etag=o.get("ETag", ""),
                last_modified=o.get("LastModified"),
            )
            for o in r.get("Contents", [])
        ]
        prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", []) if "Prefix" in p]
        next_token = r.get("NextContinuationToken") if r.get("IsTruncated") else None
        if r.get("IsTruncated") and not next_token:
            raise StorageError(
                f"s3://{bucket}: a truncated listing without a continuation token", bucket=bucket
            )
        return ListPage(objects=objects, prefixes=prefixes, next_token=next_token)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        source = {"Bucket": src_bucket, "Key": src_key}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "CopySource": source}
        if metadata is not None:
            kwargs["Metadata"] = dict(metadata)
            kwargs["MetadataDirective"] = "REPLACE"
            if content_type:
                kwargs["ContentType"] = content_type
        if if_none_match and self.conditional_writes:
            kwargs["IfNoneMatch"] = "*"
        info = self.head(src_bucket, src_key)
        if info.size >= self.multipart_copy_threshold:
            # CopyObject takes at most 5 GiB: larger objects are copied part by part.
            return self._copy_multipart(
                info,
                src_bucket,
                src_key,
                bucket,
                key,
                metadata,
                content_type,
                {"IfNoneMatch": "*"} if "IfNoneMatch" in kwargs else {},
            )
        try:
            r = self._call("copy", bucket, key, self.client.copy_object, **kwargs)
        except ObjectNotFound as exc:  # the source vanished after the HEAD above
            raise ObjectNotFound(
                f"s3://{src_bucket}/{src_key} does not exist",
                code=exc.code,
                status=exc.status,
                bucket=src_bucket,
                key=src_key,
            ) from exc
        result = r.get("CopyObjectResult", {})
        return ObjectInfo(
            key=key,
            size=info.size,
            etag=result.get("ETag", ""),
            last_modified=result.get("LastModified"),
            metadata=dict(metadata) if metadata is not None else info.metadata,
            content_type=content_type or info.content_type,
        )

    def _copy_multipart(
        self,
        info: ObjectInfo,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        cond: Mapping[str, str],
    ) -> ObjectInfo:
        extra: dict[str, Any] = {
            "Metadata": dict(metadata if metadata is not None else info.metadata or {})
        }
        if content_type or info.content_type:
            extra["ContentType"] = content_type or info.content_type
        r = self._call(
            "multipart copy",
            bucket,
            key,
            self.client.create_multipart_upload,
            Bucket=bucket,
            Key=key,
            **extra,
        )
        upload_id = r["UploadId"]
        part = self._part_size(info.size)
        try:
            futures = []
            for number, start in enumerate(range(0, info.size, part), 1):
                end = min(start + part, info.size) - 1
                futures.append(
                    self._executor().submit(
                        self._call,
                        "copy part",
                        bucket,
                        key,
                        self.client.upload_part_copy,
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": src_bucket, "Key": src_key},
                        CopySourceRange=f"bytes={start}-{end}",
                        CopySourceIfMatch=info.etag,
                    )
                )
            parts = [
                {"PartNumber": i, "ETag": f.result()["CopyPartResult"]["ETag"]}
                for i, f in enumerate(futures, 1)
            ]
            r = self._call(
                "complete multipart copy",
                bucket,
                key,
                self.client.complete_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **cond,  # create-only, as a single copy would be
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return ObjectInfo(
            key=key,
            size=info.size,
            etag=r.get("ETag", ""),
            metadata=extra["Metadata"],
            content_type=extra.get("ContentType"),
        )

    # --- buckets -----------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call("create bucket", bucket, "", self.client.create_bucket, **kwargs)

    def delete_bucket(self, bucket: str) -> None:
        self._call("delete bucket", bucket, "", self.client.delete_bucket, Bucket=bucket)

    def head_bucket(self, bucket: str) -> None:
        try:
            self.client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            err = translate(exc, bucket=bucket, action="head bucket")
            if isinstance(err, ObjectNotFound):  # HEAD has no body: a bare 404 is the bucket
                raise BucketNotFound(
                    f"bucket {bucket} does not exist",
                    code="NoSuchBucket",
                    status=404,
                    bucket=bucket,
                ) from exc
            raise err from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, bucket=bucket, action="head bucket") from exc

    def list_buckets(self) -> list[BucketInfo]:
        r = self._call("list buckets", "", "", self.client.list_buckets)
        return [BucketInfo(b["Name"], b.get("CreationDate")) for b in r.get("Buckets", [])]


def _stream_parts(stream: BinaryIO, first: bytes, part: int, grow: bool) -> Iterator[bytes]:
    """The stream in parts of ``part`` bytes (``first`` holds its beginning). Of unknown size,
    parts double every 1000 so that 10,000 parts reach far."""
    buffer = first
    number = 0
    while True:
        while len(buffer) < part:
            more = _read_exactly(stream, part - len(buffer))
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


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the stream."""
    chunks = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
