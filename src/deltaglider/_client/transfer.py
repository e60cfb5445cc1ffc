"""boto3's managed transfers on the client: ``upload_file``, ``upload_fileobj``,
``download_file``, ``download_fileobj``.

They take boto3's parameters and behave as boto3's do: they return None,
``Callback(bytes_transferred)`` gets increments that add up to the file's size (one call at a
time, whatever thread reports them: :func:`deltaglider.progress.serialized`), a download of a
missing object raises the ``ClientError`` "404" of a ``HeadObject`` (boto3 HEADs first), and a
failed ``upload_file`` raises ``boto3.exceptions.S3UploadFailedError`` with boto3's message.
What differs: ``Config`` (a ``TransferConfig``) may only set what the client does anyway
(:func:`check_transfer_config`): the engine's own thresholds, part sizes and workers apply, so
any other value raises :class:`~deltaglider.errors.NotSupportedError` naming the field;
``ExtraArgs`` may only hold ``Metadata`` and ``ContentType`` (uploads), anything else raises
NotSupportedError naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import botocore.exceptions

from ..errors import DeltaGliderError, NotSupportedError, _UnknownExtraArg
from ..progress import serialized
from .core import ClientCore
from .params import WRITE_OPTIONS, write_options
from .shapes import DEFAULT_TYPE

__all__ = ["TransferMixin", "check_transfer_config"]

#: ``ExtraArgs`` of uploads the client honours (boto3 takes more; those are refused by name).
UPLOAD_EXTRA_ARGS: Final = frozenset({"Metadata", "ContentType", *WRITE_OPTIONS})
#: ``ExtraArgs`` of downloads the client honours: none (VersionId, SSE-C... are refused).
DOWNLOAD_EXTRA_ARGS: Final[frozenset[str]] = frozenset()

ProgressCallback = Callable[[int], Any]

#: ``TransferConfig`` fields the client honours, as the engine setting (of the client's
#: :class:`~deltaglider.config.Config`) each must equal: the engine transfers with its own.
TRANSFER_CONFIG_SETTINGS: Final[dict[str, str]] = {
    "multipart_threshold": "multipart_threshold",
    "multipart_chunksize": "multipart_chunksize",
    "max_concurrency": "max_workers",
}
#: ``TransferConfig`` fields with the values the client honours whatever its configuration.
TRANSFER_CONFIG_VALUES: Final[dict[str, tuple[Any, ...]]] = {
    "use_threads": (True,),  # the engine always uses its worker threads
    "preferred_transfer_client": ("auto", "classic"),  # the engine's own, never the CRT
}
_TRANSFER_CONFIG_FIELDS: Final = (
    "multipart_threshold",
    "max_concurrency",
    "multipart_chunksize",
    "num_download_attempts",
    "max_io_queue",
    "io_chunksize",
    "use_threads",
    "max_bandwidth",
    "preferred_transfer_client",
)


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
    for name in _TRANSFER_CONFIG_FIELDS:
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


def _filename(filename: str | os.PathLike[str]) -> str:
    """A transfer's ``Filename`` as boto3 takes it: a string or a path-like object."""
    if isinstance(filename, os.PathLike):
        filename = os.fspath(filename)
    if not isinstance(filename, str):
        raise ValueError("Filename must be a string or a path-like object")
    return filename


class TransferMixin(ClientCore):
    """boto3's managed transfers of :class:`~deltaglider.client.DeltaGliderClient`."""

    def _transfer_args(
        self,
        operation: str,
        extra: Mapping[str, Any] | None,
        config: Any,
        callback: ProgressCallback | None,
        *,
        upload: bool,
    ) -> tuple[dict[str, Any], Callable[[int], None] | None]:
        """A transfer's ``ExtraArgs`` and ``Config`` checked (NotSupportedError for what the
        engine would not do): the engine's options for an upload, and the progress to report
        to (the ``Callback``, one call at a time)."""
        allowed = UPLOAD_EXTRA_ARGS if upload else DOWNLOAD_EXTRA_ARGS
        args = _extra_args(operation, extra, allowed, upload)
        check_transfer_config(operation, config, self._store.config)
        options: dict[str, Any] = {}
        if upload:
            metadata = args.get("Metadata")
            written = write_options(args)
            if written:
                self._require_boto(operation, next(iter(written.s3_args())))
            options = {
                "metadata": dict(metadata) if metadata is not None else None,
                # S3's default, as boto3's uploads get it (the engine's is
                # application/octet-stream).
                "content_type": args.get("ContentType") or DEFAULT_TYPE,
                "options": written,
            }
        return options, serialized(callback) if callback is not None else None

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

        :param ExtraArgs: ``Metadata``, ``ContentType`` and S3's write options
            (``ServerSideEncryption``, ``SSEKMSKeyId``, ``StorageClass``, ``ACL``,
            ``CacheControl``, ``ContentEncoding``) only; any other key raises
            NotSupportedError naming it.
        :param Callback: called with the number of bytes done since the last call (encoded or
            sent); the calls add up to the file's size.
        :param Config: a ``boto3.s3.transfer.TransferConfig``; the engine transfers with the
            client's own thresholds, part sizes and workers, so a field set to anything else
            raises NotSupportedError naming it (see :func:`check_transfer_config`).
        :raises boto3.exceptions.S3UploadFailedError: the store refused the upload (boto3's
            message: ``Failed to upload {Filename} to {Bucket}/{Key}: {error}``).
        """
        Filename = _filename(Filename)
        options, progress = self._transfer_args(
            "upload_file", ExtraArgs, Config, Callback, upload=True
        )
        try:
            with self._s3("PutObject"):
                self._store.put(Bucket, Key, Filename, progress=progress, **options)
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
        options, progress = self._transfer_args(
            "upload_fileobj", ExtraArgs, Config, Callback, upload=True
        )
        with self._s3("PutObject"):
            self._store.put(Bucket, Key, Fileobj, progress=progress, **options)

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
        Filename = _filename(Filename)
        self._download("download_file", Bucket, Key, Filename, ExtraArgs, Callback, Config)

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
        self._download("download_fileobj", Bucket, Key, Fileobj, ExtraArgs, Callback, Config)

    def _download(
        self,
        operation: str,
        bucket: str,
        key: str,
        dest: Any,
        extra: Mapping[str, Any] | None,
        callback: ProgressCallback | None,
        config: Any,
    ) -> None:
        _, progress = self._transfer_args(operation, extra, config, callback, upload=False)
        # boto3 HEADs the object first, so its errors are HeadObject's ("404", "403"): ours are
        # translated the same way, whichever request of the engine met them.
        with self._s3("HeadObject"):
            try:
                self._store.get(bucket, key, dest, progress=progress)
            except OSError as exc:
                if isinstance(exc, DeltaGliderError):
                    raise
                # A local failure (no such folder...): a missing object is still reported
                # first, as boto3's HEAD would have.
                self._store.head(bucket, key)
                raise
