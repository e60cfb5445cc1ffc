"""S3 and S3-compatible stores through boto3: the plain operations.

- The client comes from :mod:`._s3_session` (one session: of ``profile`` when given, else of
  explicit keys, else boto3's usual chain; adaptive retries on throttling, 5xx and
  connection errors; checksums only where S3 requires them).
- What botocore answers is read by :mod:`._s3_wire`: one place (:func:`translate`) turns its
  errors into deltaglider's storage exceptions, and its hooks refuse answers cut inside their
  headers.
- Reads go through :mod:`._s3_bodies`: a body that breaks off mid-stream is resumed from
  where it stopped, pinned to the same object by its ETag; a large object is read as parallel
  ranged GETs ahead of the reader.
- Objects from ``multipart_threshold`` on are uploaded (and over 5 GiB copied) in parts by
  :mod:`._s3_multipart`, so objects over 5 GiB work; create-only and if-match conditions apply
  to the completion.
- Bulk HEADs take the fast path of :mod:`._fasthead` where it agrees with boto3.

Threads: one pool of the storage tier (:mod:`deltaglider._executor`), a thread per
connection, runs the parts of uploads and copies, the ranged reads ahead of readers and bulk
HEADs. One pool is enough because none of these tasks waits on another task of it: each waits
only on the network (the callers that wait on them are the engine's threads or the user's).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any, BinaryIO

import botocore.exceptions

from .._executor import Pool, connections_for, storage_threads
from .._io import read_exactly
from ..errors import BucketNotFound, InvalidRange, ObjectNotFound, StorageError
from ..progress import Progress
from ._fasthead import FastPath
from ._s3_bodies import READ_RETRIES, PartsBody, Prefixed, ResumingBody
from ._s3_multipart import MAX_PART, Multipart, part_size, stream_parts
from ._s3_session import build_client
from ._s3_wire import (  # the hook re-exported for tests/client/conftest.py's boto3 client
    _no_expect_for_empty_body as _no_expect_for_empty_body,
)
from ._s3_wire import object_info, register_hooks, response_date, translate
from .base import Body, BucketInfo, ListPage, ObjectInfo, Storage, WriteOptions

log = logging.getLogger("deltaglider")

__all__ = ["S3Storage", "translate"]


def _default_connections() -> int:
    """Connections for the engine's concurrency (``DG_MAX_WORKERS``): its operations and
    requests, with parts and bulk HEADs beside them."""
    from ..config import Config  # lazily: storage does not need the engine's settings loaded

    try:
        workers = Config.from_env().max_workers
    except Exception:  # a bad setting is reported where the engine reads it
        workers = Config().max_workers
    return connections_for(workers)


class S3Storage(Storage):
    """An S3-compatible store.

    :param endpoint_url: the service (None: AWS S3).
    :param profile: a boto3 profile; its credentials *and* region are used (the profile's
        region wins over ``AWS_DEFAULT_REGION``; the environment's only fills in for a profile
        that names none).
    :param region: overrides the session's region (default us-east-1 when none is set).
    :param max_pool_connections: connections kept to the store; by default sized for the
        engine's concurrency, ``max(32, 4 * DG_MAX_WORKERS)`` (the workers default to 8).
        The store runs a thread per connection for parts, reads ahead and bulk HEADs.
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
            max_pool_connections = _default_connections()
        self._pool = Pool("deltaglider-s3", storage_threads(max_pool_connections))
        session: Any = None
        if client is None:
            client, session = build_client(
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
        self.client = client
        #: The boto3 session the client was built from (None for a client given ready-made).
        self.session = session
        register_hooks(client)
        self._fast = FastPath(client, session, verify)
        self._multipart = Multipart(client, self._call, self._submit, self._pool.size)

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

    def _submit(self, fn: Any, /, *args: Any) -> Future[Any]:
        """Runs ``fn(*args)`` on the store's pool (the one there is now: see :meth:`close`)."""
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        """Waits for the pool's tasks and stops its threads; a store used again afterwards
        starts a new pool, as it started the first one, on first use."""
        pool, self._pool = self._pool, Pool(self._pool.name, self._pool.size)
        pool.shutdown(wait=True)
        self._fast.close()

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
        one = self._fast.heads(bucket, keys[0], self._head_if_any)
        return dict(zip(keys, self._pool.map(one, keys), strict=True))

    def _head_if_any(self, bucket: str, key: str) -> ObjectInfo | None:
        """:meth:`head`, None for a missing object (a missing bucket still raises)."""
        try:
            return self.head(bucket, key)
        except ObjectNotFound:
            return None

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
        progress: Progress | None = None,
        tagging: str | None = None,
        options: WriteOptions | None = None,
    ) -> ObjectInfo:
        extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
        if content_type:
            extra["ContentType"] = content_type
        if tagging:
            extra["Tagging"] = tagging  # PutObject and CreateMultipartUpload both take it
        if options:
            extra.update(options.s3_args())  # so do these
        cond: dict[str, Any] = {}
        if if_none_match and self.conditional_writes:
            cond["IfNoneMatch"] = "*"
        if if_match:
            cond["IfMatch"] = if_match
        if isinstance(body, (bytes, bytearray, memoryview)):
            view = memoryview(body).cast("B")
            if len(view) >= self.multipart_threshold:
                part = part_size(self.multipart_chunksize, len(view))
                # Slices, not copies: each part is copied by the thread that uploads it.
                pieces: Iterator[bytes | memoryview] = (
                    view[i : i + part] for i in range(0, len(view), part)
                )
                return self._multipart.upload(bucket, key, pieces, len(view), extra, cond, progress)
            data = body if isinstance(body, bytes) else view.tobytes()
        else:
            data = read_exactly(body, self.multipart_threshold)
            if len(data) >= self.multipart_threshold:
                part = part_size(self.multipart_chunksize, size)
                pieces = stream_parts(body, data, part, size is None)
                return self._multipart.upload(bucket, key, pieces, size, extra, cond, progress)
        r = self._call(
            "put", bucket, key, self.client.put_object, Bucket=bucket, Key=key, Body=data,
            **extra, **cond,
        )  # fmt: skip
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
        options: WriteOptions | None = None,
    ) -> ObjectInfo:
        source = {"Bucket": src_bucket, "Key": src_key}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "CopySource": source}
        if options:
            kwargs.update(options.s3_args())
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
            return self._multipart.copy(
                info,
                src_bucket,
                src_key,
                bucket,
                key,
                part_size(self.multipart_chunksize, info.size),
                metadata,
                content_type,
                {"IfNoneMatch": "*"} if "IfNoneMatch" in kwargs else {},  # create-only, as here
                options,
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
