"""deltaglider's own API on the client, beside boto3's: ``upload``, ``download`` and ``verify``
of ``s3://`` URLs, batches of them run in parallel (``upload_batch``, ``download_batch``), and
``get_bucket_stats``.

They answer dicts of what was done (``Key``, ``Size``, ``Sha256``, ``DeltaGliderInfo``...),
and errors as ClientErrors with S3's codes; a batch answers one entry per file, an ``Error``
entry for a file that failed, and does not stop at a failure.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions

from .. import format as fmt
from ..engine import ObjectSummary, PutResult
from ..errors import CodecError, DeltaGliderError, IntegrityError, NotSupportedError, ObjectNotFound
from ..progress import Progress, serialized
from ..stats import BucketStats, Mode, bucket_stats
from .core import ClientCore
from .shapes import put_info, quoted, summary_info

__all__ = ["SimpleMixin"]

ProgressCallback = Callable[[int], Any]


def _serialized(callback: ProgressCallback | None) -> Progress | None:
    return serialized(callback) if callback is not None else None


class _HashSink:
    """A writable that keeps only the sha256 of what passes through (for verify)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        self.hash.update(data)
        self.count += len(data)
        return len(data)


def _split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, key


def _put_fields(result: PutResult, filename: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"Bucket": result.bucket, "Key": result.key}
    if filename is not None:
        fields["Filename"] = filename
    fields.update(
        ETag=quoted(result.etag),
        Size=result.size,
        Sha256=result.sha256,
        DeltaGliderInfo=put_info(result),
    )
    return fields


def _get_fields(summary: ObjectSummary, filename: str) -> dict[str, Any]:
    return {
        "Bucket": summary.bucket,
        "Key": summary.key,
        "Filename": filename,
        "ETag": quoted(summary.etag),
        "Size": summary.size if summary.size is not None else summary.stored_size,
        "Sha256": summary.sha256,
        "DeltaGliderInfo": summary_info(summary),
    }


class SimpleMixin(ClientCore):
    """The simple API, batches and bucket stats of
    :class:`~deltaglider.client.DeltaGliderClient`."""

    def upload(
        self,
        path: str | os.PathLike[str],
        s3_url: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        max_ratio: float | None = None,
        callback: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Uploads a local file, as ``aws s3 cp`` does: to ``s3://bucket/prefix/`` (ending in
        ``/``, or the bare bucket) under the file's own name, else to the URL's key.

        Returns ``Bucket``, ``Key``, ``Filename``, ``ETag``, ``Size``, ``Sha256`` and
        ``DeltaGliderInfo`` (stored size, whether a delta, savings, reference).
        ``max_ratio`` overrides the client's for this file; ``callback(bytes_transferred)``
        as for :meth:`upload_file`. Errors are ClientErrors of a ``PutObject``.
        """
        filename = os.fspath(path)
        bucket, key = _split_url(s3_url)
        if key == "" or key.endswith("/"):
            key += os.path.basename(filename)
        with self._s3("PutObject"):
            result = self._store.put(
                bucket,
                key,
                filename,
                metadata=dict(metadata) if metadata is not None else None,
                content_type=content_type,
                max_ratio=max_ratio,
                progress=_serialized(callback),
            )
        return _put_fields(result, filename)

    def download(
        self,
        s3_url: str,
        path: str | os.PathLike[str],
        *,
        callback: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Downloads ``s3://bucket/key`` to ``path``; to ``path/<the key's basename>`` when
        ``path`` is a folder (or ends in a separator; missing folders are made, as ``aws s3
        cp`` makes them). Written atomically and verified, as :meth:`download_file`.

        Returns ``Bucket``, ``Key``, ``Filename`` (where it went), ``ETag``, ``Size``,
        ``Sha256`` and ``DeltaGliderInfo``. Errors are ClientErrors of a ``GetObject``
        (``NoSuchKey``, ``NoSuchBucket``).
        """
        bucket, key = _split_url(s3_url)
        if key == "" or key.endswith("/"):
            raise ValueError(f"{s3_url!r} names no object (it ends in '/')")
        text = os.fspath(path)
        dest = Path(text)
        if dest.is_dir() or text.endswith(("/", os.sep)):
            dest = dest / fmt.basename(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._s3("GetObject"):
            summary = self._store.get(bucket, key, dest, progress=_serialized(callback))
        return _get_fields(summary, str(dest))

    def verify(self, s3_url: str) -> dict[str, Any]:
        """Rebuilds ``s3://bucket/key`` (nothing written locally) and checks it against the
        sha256 and size recorded when it was stored.

        Returns ``Valid`` (False when the bytes, the delta or its reference are not the ones
        stored: not an exception), ``Key``, ``Sha256`` (of the rebuilt bytes; None if they
        could not be rebuilt), ``Size`` (the recorded size), ``IsDelta`` and ``Message``.
        A missing key raises the ClientError ``NoSuchKey``.
        """
        bucket, key = _split_url(s3_url)
        sink = _HashSink()
        problem: str | None = None
        summary: ObjectSummary | None = None
        with self._s3("GetObject"):
            try:
                summary = self._store.get(bucket, key, sink)
            except (IntegrityError, CodecError) as exc:
                problem = str(exc)
            except ObjectNotFound as exc:
                # The object is missing, or what it needs (its reference): the HEAD below
                # tells which, raising NoSuchKey if it is the object.
                problem = f"{exc} (needed to rebuild s3://{bucket}/{key})"
            if summary is None:
                summary = self._store.head(bucket, key)
        rebuilt = problem is None or sink.count == (summary.size or 0)
        if problem is not None:
            message = f"integrity failure: {problem}"
        elif summary.sha256 is None:
            message = "no sha256 recorded (not stored by deltaglider): only its size was checked"
        else:
            how = f"rebuilt from a delta against {summary.ref_key}" if summary.is_delta else "read"
            message = f"OK: {sink.count} bytes {how}; sha256 matches"
        return {
            "Valid": problem is None,
            "Key": key,
            "Sha256": sink.hash.hexdigest() if rebuilt else None,
            "Size": summary.size if summary.size is not None else summary.stored_size,
            "IsDelta": summary.is_delta,
            "Message": message,
        }

    def get_bucket_stats(
        self,
        bucket: str,
        prefix: str = "",
        *,
        mode: Mode = "quick",
        use_cache: bool = True,
        refresh: bool = False,
    ) -> BucketStats:
        """Statistics of a bucket (or of the keys under ``prefix``): objects, logical and stored
        bytes, savings, per deltaspace. ``mode``: ``quick`` (no HEADs, estimates), ``sampled``
        or ``detailed`` (exact); ``use_cache``/``refresh``: the result cache kept in the bucket
        (see :func:`deltaglider.stats.bucket_stats`). A missing bucket raises NoSuchBucket."""
        with self._s3("ListObjectsV2"):
            return bucket_stats(
                self._store, bucket, prefix, mode=mode, cache=use_cache, refresh=refresh
            )

    def upload_batch(
        self,
        files: Iterable[str | os.PathLike[str]],
        s3_url: str,
        *,
        callback: ProgressCallback | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        max_ratio: float | None = None,
    ) -> list[dict[str, Any]]:
        """Uploads local files in parallel into the prefix ``s3_url`` (``s3://bucket/dir/``),
        each under its own name. The engine's pool runs them (``max_workers`` of the client's
        configuration); in a deltaspace without a reference yet, the file in the middle of the
        batch's version order goes first and becomes it, so the deltas of the others stay small.

        Returns one dict per file, in the order given: the fields of :meth:`upload`, or
        ``Bucket``, ``Key``, ``Filename`` and ``Error`` (``{"Code", "Message"}``) for a file
        that failed; one failure does not stop the others (two files of the same name: the
        second fails). ``callback(bytes_transferred)`` gets the increments of all the files,
        one call at a time.
        """
        bucket, prefix = _split_url(s3_url)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names = [os.fspath(f) for f in files]
        results: list[dict[str, Any] | None] = [None] * len(names)
        index: dict[str, int] = {}
        jobs: list[tuple[str, str]] = []
        for i, name in enumerate(names):
            key = prefix + os.path.basename(name)
            if key in index:
                results[i] = self._failed(
                    bucket, key, name, "InvalidArgument", f"{names[index[key]]} goes there too"
                )
                continue
            index[key] = i
            jobs.append((key, name))
        report = _serialized(callback)

        def progress(_key: str, count: int) -> None:
            assert report is not None
            report(count)

        try:
            with self._s3("PutObject"):
                for key, result, exc in self._store.put_many(
                    bucket,
                    jobs,
                    progress=progress if report is not None else None,
                    metadata=dict(metadata) if metadata is not None else None,
                    content_type=content_type,
                    max_ratio=max_ratio,
                ):
                    i = index[key]
                    if result is not None:
                        results[i] = _put_fields(result, names[i])
                    else:
                        assert exc is not None
                        results[i] = self._failure(bucket, key, names[i], "PutObject", exc)
        except (botocore.exceptions.ClientError, DeltaGliderError, OSError) as exc:
            # The batch as a whole failed (the bucket is unreachable): every file not done yet.
            for key, i in index.items():
                if results[i] is None:
                    results[i] = self._failure(bucket, key, names[i], "PutObject", exc)
        return [r for r in results if r is not None]

    def download_batch(
        self,
        urls_or_keys: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        bucket: str | None = None,
        callback: ProgressCallback | None = None,
    ) -> list[dict[str, Any]]:
        """Downloads objects in parallel into ``directory`` (made if missing), each under its
        key's basename, written atomically and verified as :meth:`download_file`. Items are
        ``s3://bucket/key`` URLs, or keys of ``bucket``.

        Returns one dict per item, in the order given: the fields of :meth:`download`, or
        ``Bucket``, ``Key``, ``Filename`` and ``Error`` (``{"Code", "Message"}``; S3's codes:
        ``NoSuchKey``...) for one that failed; one failure does not stop the others (two keys of
        the same basename: the second fails). ``callback(bytes_transferred)`` gets the increments
        of all the objects, one call at a time.
        """
        folder = Path(os.fspath(directory))
        targets: list[tuple[str, str]] = []
        for item in urls_or_keys:
            if item.startswith("s3://"):
                item_bucket, key = _split_url(item)
            elif bucket is not None:
                item_bucket, key = bucket, item
            else:
                raise ValueError(f"{item!r} is not an s3:// URL and no bucket was given")
            if key == "" or key.endswith("/"):
                raise ValueError(f"{item!r} names no object (it ends in '/')")
            targets.append((item_bucket, key))
        folder.mkdir(parents=True, exist_ok=True)
        results: list[dict[str, Any] | None] = [None] * len(targets)
        taken: dict[Path, str] = {}
        jobs: list[tuple[int, str, str, Path]] = []
        for i, (item_bucket, key) in enumerate(targets):
            dest = folder / fmt.basename(key)
            if dest in taken:
                results[i] = self._failed(
                    item_bucket, key, str(dest), "InvalidArgument", f"{taken[dest]} goes there too"
                )
                continue
            taken[dest] = f"s3://{item_bucket}/{key}"
            jobs.append((i, item_bucket, key, dest))
        report = _serialized(callback)

        def fetch(_i: int, item_bucket: str, key: str, dest: Path) -> ObjectSummary:
            return self._store.get(item_bucket, key, dest, progress=report)

        pool = self._store.pools.operations
        for (i, item_bucket, key, dest), summary, exc in pool.as_completed(fetch, jobs):
            if exc is None:
                results[i] = _get_fields(summary, str(dest))
            else:
                results[i] = self._failure(item_bucket, key, str(dest), "GetObject", exc)
        return [r for r in results if r is not None]

    def _failure(
        self, bucket: str, key: str, filename: str, operation: str, exc: BaseException
    ) -> dict[str, Any]:
        """A batch entry for a file that failed, with S3's error code where there is one."""
        error: BaseException = exc
        if isinstance(exc, DeltaGliderError) and not isinstance(exc, NotSupportedError):
            try:
                with self._s3(operation):
                    raise exc
            except botocore.exceptions.ClientError as translated:
                error = translated
            except DeltaGliderError:
                pass  # not an S3 condition (an integrity failure): named by its class
        if isinstance(error, botocore.exceptions.ClientError):
            detail = error.response.get("Error", {})
            code = str(detail.get("Code", ""))
            message = str(detail.get("Message", "") or error)
        else:
            code, message = type(error).__name__, str(error)
        return self._failed(bucket, key, filename, code, message)

    @staticmethod
    def _failed(bucket: str, key: str, filename: str, code: str, message: str) -> dict[str, Any]:
        return {
            "Bucket": bucket,
            "Key": key,
            "Filename": filename,
            "Error": {"Code": code, "Message": message},
        }
