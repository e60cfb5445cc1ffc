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
from ..models import DownloadedFile, UploadSummary, VerifyResult
from ..progress import Progress, serialized
from ..stats import MODES, BucketStats, Mode, bucket_stats
from .core import ClientCore
from .params import invalid_tags, split_url, tagging
from .shapes import operation_of, put_info, quoted, summary_info

__all__ = ["SimpleMixin"]

ProgressCallback = Callable[[int], Any]
#: The original DeltaGlider's batch progress: ``(filename, files_done, files_total)``.
FileCallback = Callable[[str, int, int], Any]


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


def _put_fields(result: PutResult, filename: str | None) -> UploadSummary:
    fields: dict[str, Any] = {"Bucket": result.bucket, "Key": result.key}
    if filename is not None:
        fields["Filename"] = filename
    fields.update(
        ETag=quoted(result.etag),
        Size=result.size,
        Sha256=result.sha256,
        DeltaGliderInfo=put_info(result),
    )
    whole = result.became_reference or not result.is_delta
    return UploadSummary(
        operation_of(result),
        result.bucket,
        result.key,
        result.size,
        result.size if whole else result.stored_size,
        result.is_delta and not whole,
        0.0 if whole or not result.size else result.stored_size / result.size,
        fields=fields,
    )


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

    def _tagging(self, tags: Mapping[str, str] | None, key: str, bucket: str) -> str | None:
        """The ``Tagging`` string of an upload's ``tags`` (checked as put_object checks them)."""
        if not tags:
            return None
        self._require_boto("PutObject", "tags")
        tag_list = [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
        problem = invalid_tags(tag_list)
        if problem:
            raise self._error("PutObject", "InvalidTag", problem, 400, bucket=bucket, key=key)
        return tagging(tag_list)

    def upload(
        self,
        path: str | os.PathLike[str],
        s3_url: str,
        tags: Mapping[str, str] | None = None,
        max_ratio: float | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        callback: ProgressCallback | None = None,
    ) -> UploadSummary:
        """Uploads a local file, as ``aws s3 cp`` does: to ``s3://bucket/prefix/`` (ending in
        ``/``, or the bare bucket) under the file's own name, else to the URL's key.

        Returns an :class:`~deltaglider.models.UploadSummary`: our fields by key
        (``Bucket``, ``Key``, ``Filename``, ``ETag``, ``Size``, ``Sha256``,
        ``DeltaGliderInfo``) and the original DeltaGlider's as attributes (``is_delta``,
        ``stored_size``, ``savings_percent``...). ``tags`` (a dict) are stored with the object,
        checked first as put_object's ``Tagging``; ``max_ratio`` overrides the client's for
        this file; ``callback(bytes_transferred)`` as for :meth:`upload_file`. Errors are
        ClientErrors of a ``PutObject``.
        """
        filename = os.fspath(path)
        bucket, key = split_url(s3_url)
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
                tagging=self._tagging(tags, key, bucket),
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
        cp`` makes them). Written atomically and verified, as :meth:`download_file`. The
        physical name of a delta (``key.delta``) names its object too.

        Returns ``Bucket``, ``Key``, ``Filename`` (where it went), ``ETag``, ``Size``,
        ``Sha256`` and ``DeltaGliderInfo``. Errors are ClientErrors of a ``GetObject``
        (``NoSuchKey``, ``NoSuchBucket``).
        """
        bucket, key = split_url(s3_url)
        if key == "" or key.endswith("/"):
            raise ValueError(f"{s3_url!r} names no object (it ends in '/')")
        text = os.fspath(path)
        dest = Path(text)
        if dest.is_dir() or text.endswith(("/", os.sep)):
            with self._s3("GetObject"):
                dest = dest / fmt.basename(self._logical_key(bucket, key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._s3("GetObject"):
            summary = self._store.get(bucket, key, dest, progress=_serialized(callback))
        return _get_fields(summary, str(dest))

    def _logical_key(self, bucket: str, key: str) -> str:
        """The object's own key for a name that may be its delta's physical name (only such
        names cost a HEAD here)."""
        if not key.endswith(fmt.DELTA_SUFFIX):
            return key
        try:
            return self._store.head(bucket, key).key
        except ObjectNotFound:
            return key  # the download that follows says so

    def verify(self, s3_url: str) -> VerifyResult:
        """Rebuilds ``s3://bucket/key`` (nothing written locally) and checks it against the
        sha256 and size recorded when it was stored.

        Returns a :class:`~deltaglider.models.VerifyResult`, false when the object is not
        valid (``if client.verify(url):`` as the original documents it): ``Valid`` (False
        when the bytes, the delta or its reference are not the ones stored: not an
        exception), ``Key``, ``Sha256`` (of the rebuilt bytes; None if they could not be
        rebuilt), ``Size`` (the recorded size), ``IsDelta`` and ``Message``; the original's
        ``valid``, ``expected_sha256``, ``actual_sha256`` and ``message`` as attributes.
        A missing key raises the ClientError ``NoSuchKey``.
        """
        bucket, key = split_url(s3_url)
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
        fields = {
            "Valid": problem is None,
            "Key": summary.key,
            "Sha256": sink.hash.hexdigest() if rebuilt else None,
            "Size": summary.size if summary.size is not None else summary.stored_size,
            "IsDelta": summary.is_delta,
            "Message": message,
        }
        return VerifyResult(fields, summary.sha256)

    def get_bucket_stats(
        self,
        bucket: str,
        prefix: str = "",
        use_cache: bool = True,
        refresh_cache: bool = False,
        *,
        mode: Mode | None = None,
        refresh: bool = False,
    ) -> BucketStats:
        """Statistics of a bucket (or of the keys under ``prefix``): objects, logical and stored
        bytes, savings, per deltaspace. ``mode``: ``quick`` (the default: no HEADs, estimates),
        ``sampled`` or ``detailed`` (exact); ``use_cache``, ``refresh`` (or the original's
        name, ``refresh_cache``): the result cache kept in the bucket (see
        :func:`deltaglider.stats.bucket_stats`). A missing bucket raises NoSuchBucket.

        The original DeltaGlider's call, ``get_bucket_stats(bucket, mode, use_cache,
        refresh_cache)``, works as written: a second argument that is a mode's name
        (``"quick"``, ``"sampled"``, ``"detailed"``) is the mode (give the statistics of a
        prefix named so as ``prefix="quick/"`` or by keyword). The answer has the original's
        fields (``object_count``, ``total_size``, ``compressed_size``, ``space_saved``,
        ``average_compression_ratio``, ``delta_objects``, ``direct_objects``) beside ours."""
        if mode is None and prefix in MODES:
            mode, prefix = prefix, ""
        mode = mode or "quick"
        if mode not in MODES:
            raise ValueError(f"unknown stats mode {mode!r}: one of {', '.join(MODES)}")
        with self._s3("ListObjectsV2"):
            return bucket_stats(
                self._store,
                bucket,
                prefix,
                mode=mode,
                cache=use_cache,
                refresh=refresh or refresh_cache,
            )

    def upload_batch(
        self,
        files: Iterable[str | os.PathLike[str]],
        s3_url: str,
        max_ratio: float | None = None,
        progress_callback: FileCallback | None = None,
        *,
        callback: ProgressCallback | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> list[UploadSummary]:
        """Uploads local files in parallel into the prefix ``s3_url`` (``s3://bucket/dir/``),
        each under its own name. The engine's pool runs them (``max_workers`` of the client's
        configuration); in a deltaspace without a reference yet, the file in the middle of the
        batch's version order goes first and becomes it, so the deltas of the others stay small.

        Returns one :class:`~deltaglider.models.UploadSummary` per file, in the order given
        (the fields of :meth:`upload`), or, for a file that failed, one with ``operation``
        ``"failed"`` and an ``Error`` (``{"Code", "Message"}``) beside ``Bucket``, ``Key``
        and ``Filename``; one failure does not stop the others (two files of the same name:
        the second fails). ``callback(bytes_transferred)`` gets the increments of all the
        files, one call at a time; ``progress_callback(filename, files_done, files_total)``
        (the original's) is called as each file is done.
        """
        bucket, prefix = split_url(s3_url)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names = [os.fspath(f) for f in files]
        results: list[UploadSummary | None] = [None] * len(names)
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
        done = _Done(progress_callback, len(names))
        for i, result in enumerate(results):
            if result is not None:
                done(names[i])

        def progress(_key: str, count: int) -> None:
            assert report is not None
            report(count)

        try:
            with self._s3("PutObject"):
                for key, put, exc in self._store.put_many(
                    bucket,
                    jobs,
                    progress=progress if report is not None else None,
                    metadata=dict(metadata) if metadata is not None else None,
                    content_type=content_type,
                    max_ratio=max_ratio,
                ):
                    i = index[key]
                    if put is not None:
                        results[i] = _put_fields(put, names[i])
                    else:
                        assert exc is not None
                        results[i] = self._failure(bucket, key, names[i], "PutObject", exc)
                    done(names[i])
        except (botocore.exceptions.ClientError, DeltaGliderError, OSError) as exc:
            # The batch as a whole failed (the bucket is unreachable): every file not done yet.
            for key, i in index.items():
                if results[i] is None:
                    results[i] = self._failure(bucket, key, names[i], "PutObject", exc)
                    done(names[i])
        return [r for r in results if r is not None]

    def download_batch(
        self,
        urls_or_keys: Iterable[str],
        directory: str | os.PathLike[str],
        progress_callback: FileCallback | None = None,
        *,
        bucket: str | None = None,
        callback: ProgressCallback | None = None,
    ) -> list[DownloadedFile]:
        """Downloads objects in parallel into ``directory`` (made if missing), each under its
        key's basename, written atomically and verified as :meth:`download_file`. Items are
        ``s3://bucket/key`` URLs, or keys of ``bucket``; a delta's physical name
        (``key.delta``) names its object, saved under the object's name.

        Returns one :class:`~deltaglider.models.DownloadedFile` per item, in the order given:
        the path written (the original's answer) that also gives the fields of
        :meth:`download` by key, or ``Bucket``, ``Key``, ``Filename`` and ``Error``
        (``{"Code", "Message"}``; S3's codes: ``NoSuchKey``...) for one that failed (then
        nothing is at that path); one failure does not stop the others (two keys of the same
        basename: the second fails). ``callback(bytes_transferred)`` gets the increments of
        all the objects, one call at a time; ``progress_callback(filename, files_done,
        files_total)`` (the original's) is called as each is done.
        """
        folder = Path(os.fspath(directory))
        targets: list[tuple[str, str]] = []
        for item in urls_or_keys:
            if item.startswith("s3://"):
                item_bucket, key = split_url(item)
            elif bucket is not None:
                item_bucket, key = bucket, item
            else:
                raise ValueError(f"{item!r} is not an s3:// URL and no bucket was given")
            if key == "" or key.endswith("/"):
                raise ValueError(f"{item!r} names no object (it ends in '/')")
            targets.append((item_bucket, key))
        folder.mkdir(parents=True, exist_ok=True)
        results: list[DownloadedFile | None] = [None] * len(targets)
        taken: dict[Path, str] = {}
        jobs: list[tuple[int, str, str, Path]] = []
        done = _Done(progress_callback, len(targets))
        for i, (item_bucket, key) in enumerate(targets):
            with self._s3("GetObject"):
                dest = folder / fmt.basename(self._logical_key(item_bucket, key))
            if dest in taken:
                failed = self._failed(
                    item_bucket, key, str(dest), "InvalidArgument", f"{taken[dest]} goes there too"
                )
                results[i] = DownloadedFile(dest, failed)
                done(dest.name)
                continue
            taken[dest] = f"s3://{item_bucket}/{key}"
            jobs.append((i, item_bucket, key, dest))
        report = _serialized(callback)

        def fetch(_i: int, item_bucket: str, key: str, dest: Path) -> ObjectSummary:
            return self._store.get(item_bucket, key, dest, progress=report)

        pool = self._store.pools.operations
        for (i, item_bucket, key, dest), summary, exc in pool.as_completed(fetch, jobs):
            if exc is None:
                fields = _get_fields(summary, str(dest))
            else:
                fields = self._failure(item_bucket, key, str(dest), "GetObject", exc)
            results[i] = DownloadedFile(dest, fields)
            done(dest.name)
        return [r for r in results if r is not None]

    def _failure(
        self, bucket: str, key: str, filename: str, operation: str, exc: BaseException
    ) -> UploadSummary:
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
    def _failed(bucket: str, key: str, filename: str, code: str, message: str) -> UploadSummary:
        fields = {
            "Bucket": bucket,
            "Key": key,
            "Filename": filename,
            "Error": {"Code": code, "Message": message},
        }
        return UploadSummary("failed", bucket, key, 0, 0, False, fields=fields)


class _Done:
    """The original's per-file progress callback, ``(filename, files_done, files_total)``,
    called one at a time."""

    def __init__(self, callback: FileCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._count = 0

    def __call__(self, filename: str) -> None:
        if self._callback is not None:
            self._count += 1
            self._callback(os.path.basename(filename), self._count, self._total)
