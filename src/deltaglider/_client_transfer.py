"""The client's file transfers (upload_file, download_file, upload_fileobj,
download_fileobj), the simple API (upload, download, verify), batches and bucket stats.

The four transfer methods take boto3's parameters and behave as boto3's do: they return None,
``Callback(bytes_transferred)`` gets increments that add up to the file's size, a download of
a missing object raises the ``ClientError`` "404" of a ``HeadObject`` (boto3 HEADs first), and
a failed ``upload_file`` raises ``boto3.exceptions.S3UploadFailedError`` with boto3's message.
What differs: ``Config`` (a ``TransferConfig``) may only set what the client does anyway
(:func:`check_transfer_config`): the engine's own thresholds, part sizes and workers apply,
so any other value raises :class:`~deltaglider._client_common.NotSupportedError` naming the
field; ``ExtraArgs`` may only hold ``Metadata`` and ``ContentType`` (uploads), anything else
raises NotSupportedError naming it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from . import format as fmt
from ._client_common import NotSupportedError
from .errors import CodecError, DeltaGliderError, IntegrityError, ObjectNotFound
from .stats import BucketStats, Mode, bucket_stats

if TYPE_CHECKING:
    from .engine import DeltaStore, ObjectSummary, PutResult
    from .storage.base import Storage

__all__ = ["TransferMixin"]

#: ``ExtraArgs`` of uploads the client honours (boto3 takes more; those are refused by name).
UPLOAD_EXTRA_ARGS = frozenset({"Metadata", "ContentType"})
#: ``ExtraArgs`` of downloads the client honours: none (VersionId, SSE-C... are refused).
DOWNLOAD_EXTRA_ARGS: frozenset[str] = frozenset()

ProgressCallback = Callable[[int], Any]

#: ``TransferConfig`` fields the client honours, as the engine setting (of the client's
#: :class:`~deltaglider.config.Config`) each must equal: the engine transfers with its own.
TRANSFER_CONFIG_SETTINGS: dict[str, str] = {
    "multipart_threshold": "multipart_threshold",
    "multipart_chunksize": "multipart_chunksize",
    "max_concurrency": "max_workers",
}
#: ``TransferConfig`` fields with the values the client honours whatever its configuration.
TRANSFER_CONFIG_VALUES: dict[str, tuple[Any, ...]] = {
    "use_threads": (True,),  # the engine always uses its worker threads
    "preferred_transfer_client": ("auto", "classic"),  # the engine's own, never the CRT
}


def check_transfer_config(operation: str, config: Any, settings: Any) -> None:
    """Refuses (NotSupportedError naming ``Config.<field>``) a ``TransferConfig`` field set to
    a value the engine would not transfer with. A field left unset is fine; one of
    :data:`TRANSFER_CONFIG_SETTINGS` must equal the client's own setting; one of
    :data:`TRANSFER_CONFIG_VALUES` must be one of its values; any other field
    (``num_download_attempts``, ``max_io_queue``, ``io_chunksize``, ``max_bandwidth``) must be
    unset or boto3's default."""
    if config is None:
        return
    from boto3.s3.transfer import TransferConfig

    if not isinstance(config, TransferConfig):
        raise TypeError(f"Config must be a boto3.s3.transfer.TransferConfig, not {config!r}")
    unset = getattr(TransferConfig, "UNSET_DEFAULT", None)
    defaults: dict[str, Any] = getattr(TransferConfig, "DEFAULTS", {})
    for name in (
        "multipart_threshold",
        "max_concurrency",
        "multipart_chunksize",
        "num_download_attempts",
        "max_io_queue",
        "io_chunksize",
        "use_threads",
        "max_bandwidth",
        "preferred_transfer_client",
    ):
        try:
            value = object.__getattribute__(config, name)
        except AttributeError:
            continue
        if unset is not None and value is unset:
            continue
        default = name in defaults and value == defaults[name]
        if default and (unset is None or name not in TRANSFER_CONFIG_SETTINGS):
            continue  # boto3's default: asks for nothing the engine does not do
        if name in TRANSFER_CONFIG_SETTINGS:
            setting = TRANSFER_CONFIG_SETTINGS[name]
            own = getattr(settings, setting)
            if value == own:
                continue
            why = (
                f"the engine transfers with its own {setting}={own}: set it on the client, "
                f"create_client(deltaglider_config=Config({setting}=...))"
            )
        elif name in TRANSFER_CONFIG_VALUES:
            if value in TRANSFER_CONFIG_VALUES[name]:
                continue
            allowed = ", ".join(repr(v) for v in TRANSFER_CONFIG_VALUES[name])
            why = f"only {allowed}"
        else:
            why = "the engine's transfers have no such setting"
        raise NotSupportedError(operation, f"Config.{name}", f"{value!r}: {why}")


class _UnknownExtraArg(NotSupportedError, ValueError):
    """An ``ExtraArgs`` key boto3 rejects too: also a ValueError, which is what boto3 raises."""


class _Reporter:
    """A user's ``Callback``, called one increment at a time: the engine reports progress from
    several threads (parts of one file, or the files of a batch), the callback need not be
    thread-safe."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        if count:
            with self._lock:
                self._callback(count)


def _reporter(callback: ProgressCallback | None) -> Callable[[int], None] | None:
    return _Reporter(callback) if callback is not None else None


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


def _extra_args(
    operation: str, extra: Mapping[str, Any] | None, allowed: frozenset[str], upload: bool
) -> dict[str, Any]:
    """``ExtraArgs`` checked: what the client honours, or NotSupportedError naming the key."""
    if not extra:
        return {}
    from boto3.s3.transfer import S3Transfer

    known = S3Transfer.ALLOWED_UPLOAD_ARGS if upload else S3Transfer.ALLOWED_DOWNLOAD_ARGS
    for name in extra:
        if name in allowed:
            continue
        supported = ", ".join(sorted(allowed)) or "none"
        if name not in known:
            raise _UnknownExtraArg(
                operation, name, f"boto3 does not take it either; ExtraArgs supported: {supported}"
            )
        raise NotSupportedError(operation, name, f"in ExtraArgs; supported: {supported}")
    return dict(extra)


def _upload_options(operation: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    args = _extra_args(operation, extra, UPLOAD_EXTRA_ARGS, upload=True)
    metadata = args.get("Metadata")
    return {
        "metadata": dict(metadata) if metadata is not None else None,
        # S3's default, as boto3's uploads get it (the engine's own is application/octet-stream).
        "content_type": args.get("ContentType") or "binary/octet-stream",
    }


def _put_fields(result: PutResult, filename: str | None) -> dict[str, Any]:
    from .client import _put_info, _quoted

    fields: dict[str, Any] = {"Bucket": result.bucket, "Key": result.key}
    if filename is not None:
        fields["Filename"] = filename
    fields.update(
        ETag=_quoted(result.etag),
        Size=result.size,
        Sha256=result.sha256,
        DeltaGliderInfo=_put_info(result),
    )
    return fields


def _get_fields(summary: ObjectSummary, filename: str) -> dict[str, Any]:
    from .client import _quoted, _summary_info

    return {
        "Bucket": summary.bucket,
        "Key": summary.key,
        "Filename": filename,
        "ETag": _quoted(summary.etag),
        "Size": summary.size if summary.size is not None else summary.stored_size,
        "Sha256": summary.sha256,
        "DeltaGliderInfo": _summary_info(summary),
    }


class TransferMixin:
    """Mixed into :class:`~deltaglider.client.DeltaGliderClient`."""

    if TYPE_CHECKING:
        # Provided by the host class.
        _store: DeltaStore
        _boto: Any
        exceptions: Any

        @property
        def storage(self) -> Storage: ...

        def _s3(self, operation: str) -> AbstractContextManager[None]: ...

        def _error(self, operation: str, code: str, message: str, status: int) -> Exception: ...

    # --- boto3's managed transfers -----------------------------------------------------------

    def upload_file(
        self,
        Filename: str | os.PathLike[str],
        Bucket: str,
        Key: str,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: ProgressCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Uploads a local file to ``Key``, as a delta when that is worth it.

        :param ExtraArgs: ``Metadata`` and ``ContentType`` only; any other key raises
            NotSupportedError naming it.
        :param Callback: called with the number of bytes done since the last call (encoded or
            sent); the calls add up to the file's size.
        :param Config: a ``boto3.s3.transfer.TransferConfig``; the engine transfers with the
            client's own thresholds, part sizes and workers, so a field set to anything else
            raises NotSupportedError naming it (see :func:`check_transfer_config`).
        :raises boto3.exceptions.S3UploadFailedError: the store refused the upload (boto3's
            message: ``Failed to upload {Filename} to {Bucket}/{Key}: {error}``).
        """
        if isinstance(Filename, os.PathLike):
            Filename = os.fspath(Filename)
        if not isinstance(Filename, str):
            raise ValueError("Filename must be a string or a path-like object")
        options = _upload_options("upload_file", ExtraArgs)
        check_transfer_config("upload_file", Config, self._store.config)
        try:
            with self._s3("PutObject"):
                self._store.put(Bucket, Key, Filename, progress=_reporter(Callback), **options)
        except botocore.exceptions.ClientError as exc:
            from boto3.exceptions import S3UploadFailedError

            raise S3UploadFailedError(
                f"Failed to upload {Filename} to {Bucket}/{Key}: {exc}"
            ) from exc

    def upload_fileobj(
        self,
        Fileobj: Any,
        Bucket: str,
        Key: str,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: ProgressCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Uploads a readable binary file object to ``Key`` (read to its end first: the sha256
        and size go into the object's metadata). ``ExtraArgs``, ``Callback`` and ``Config`` as
        for :meth:`upload_file`. A refusal by the store raises the ``ClientError`` of the
        ``PutObject``, as boto3's upload_fileobj does (no S3UploadFailedError here)."""
        if not hasattr(Fileobj, "read"):
            raise ValueError("Fileobj must implement read")
        options = _upload_options("upload_fileobj", ExtraArgs)
        check_transfer_config("upload_fileobj", Config, self._store.config)
        with self._s3("PutObject"):
            self._store.put(Bucket, Key, Fileobj, progress=_reporter(Callback), **options)

    def download_file(
        self,
        Bucket: str,
        Key: str,
        Filename: str | os.PathLike[str],
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: ProgressCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Downloads ``Key`` to a local file. The file appears only once all of its bytes are
        written and verified against the recorded sha256 (a temporary file in the same folder,
        renamed); nothing is left behind on failure.

        :param ExtraArgs: no download argument is supported (VersionId, SSE-C keys...): any
            raises NotSupportedError naming it.
        :param Callback: called with the number of bytes written since the last call.
        :param Config: as for :meth:`upload_file`.
        :raises botocore.exceptions.ClientError: code ``"404"`` from ``HeadObject`` for a
            missing key or bucket, as boto3 (which HEADs first).
        :raises deltaglider.errors.IntegrityError: the rebuilt bytes are not the ones stored.
        """
        if isinstance(Filename, os.PathLike):
            Filename = os.fspath(Filename)
        if not isinstance(Filename, str):
            raise ValueError("Filename must be a string or a path-like object")
        _extra_args("download_file", ExtraArgs, DOWNLOAD_EXTRA_ARGS, upload=False)
        check_transfer_config("download_file", Config, self._store.config)
        self._download("download_file", Bucket, Key, Filename, Callback)

    def download_fileobj(
        self,
        Bucket: str,
        Key: str,
        Fileobj: Any,
        ExtraArgs: Mapping[str, Any] | None = None,
        Callback: ProgressCallback | None = None,
        Config: Any = None,
    ) -> None:
        """Writes ``Key``'s bytes to a writable binary file object, as they are rebuilt; raises
        IntegrityError at the end if they were not the ones stored (so, unlike
        :meth:`download_file`, a failure may leave bytes written). ``ExtraArgs``, ``Callback``,
        ``Config`` and errors as for :meth:`download_file`."""
        if not hasattr(Fileobj, "write"):
            raise ValueError("Fileobj must implement write")
        _extra_args("download_fileobj", ExtraArgs, DOWNLOAD_EXTRA_ARGS, upload=False)
        check_transfer_config("download_fileobj", Config, self._store.config)
        self._download("download_fileobj", Bucket, Key, Fileobj, Callback)

    def _download(
        self, operation: str, bucket: str, key: str, dest: Any, callback: ProgressCallback | None
    ) -> None:
        # boto3 HEADs the object first, so its errors are HeadObject's ("404", "403"): ours are
        # translated the same way, whichever request of the engine met them.
        with self._s3("HeadObject"):
            try:
                self._store.get(bucket, key, dest, progress=_reporter(callback))
            except OSError as exc:
                if isinstance(exc, DeltaGliderError):
                    raise
                # A local failure (no such folder...): a missing object is still reported
                # first, as boto3's HEAD would have.
                self._store.head(bucket, key)
                raise

    # --- the simple API ----------------------------------------------------------------------

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
                progress=_reporter(callback),
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
            summary = self._store.get(bucket, key, dest, progress=_reporter(callback))
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

    # --- batches -----------------------------------------------------------------------------

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
        report = _reporter(callback)

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
        report = _reporter(callback)

        def one(_i: int, item_bucket: str, key: str, dest: Path) -> ObjectSummary:
            return self._store.get(item_bucket, key, dest, progress=report)

        for (i, item_bucket, key, dest), summary, exc in self._store.pools.operations.as_completed(
            one, jobs
        ):
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
