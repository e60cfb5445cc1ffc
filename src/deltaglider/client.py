"""A boto3-compatible S3 client that stores objects as deltas: ``create_client()``.

Switching a program from ``boto3.client("s3")`` is a one-line change::

    from deltaglider import create_client

    s3 = create_client()                  # was: s3 = boto3.client("s3")
    s3.put_object(Bucket="releases", Key="app/app-1.2.zip", Body=data)
    body = s3.get_object(Bucket="releases", Key="app/app-1.2.zip")["Body"].read()

The supported methods take boto3's parameters and return boto3's response shapes; errors are
botocore ``ClientError``s with S3's codes (``client.exceptions.NoSuchKey`` and the rest).
Responses of object operations carry an extra ``DeltaGliderInfo`` entry (stored size, original
size, whether a delta, savings, reference key). A parameter the client cannot honour raises
:class:`NotSupportedError` naming the operation and the parameter; it is never ignored.

The documented differences from boto3 are one list, as data: :data:`DIFFERENCES` (response
fields) and :data:`BEHAVIOURS` (behaviour), rendered by :func:`differences_markdown` as
``docs/sdk.md``'s "Differences from boto3" (a test keeps the two in step); the parity suite
(``tests/client/test_parity.py``) checks everything else.

The client's parts live in :mod:`deltaglider._client` by responsibility (response shapes,
error translation, parameters, listing, boto3's managed transfers, the simple API, buckets,
the documented differences, construction); this module keeps the class, its object operations
(put, get, head, delete, copy, tagging) and :func:`create_client`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._client.botocore import Paginator as Paginator
from ._client.botocore import s3_operations, validated
from ._client.buckets import BucketMixin
from ._client.docs import BEHAVIOURS, DIFFERENCES, differences_markdown
from ._client.errors import NOT_XML, entry_error
from ._client.factory import connect
from ._client.listing import ListingMixin
from ._client.original import OriginalMixin
from ._client.params import (
    byte_range,
    checked_body,
    copy_source,
    invalid_tags,
    not_modified,
    tag_set,
    tagging,
    write_options,
)
from ._client.shapes import (
    DEFAULT_TYPE,
    StreamingBody,
    metadata_response,
    object_fields,
    put_info,
    quoted,
)
from ._client.simple import SimpleMixin
from ._client.transfer import TransferMixin
from .config import Config
from .engine import ObjectSummary
from .errors import NotSupportedError
from .models import CompressionEstimate, DownloadedFile, ObjectInfo, UploadSummary, VerifyResult
from .stats import BucketStats

__all__ = [
    "BEHAVIOURS",
    "DIFFERENCES",
    "BucketStats",
    "CompressionEstimate",
    "DeltaGliderClient",
    "DownloadedFile",
    "NotSupportedError",
    "ObjectInfo",
    "StreamingBody",
    "UploadSummary",
    "VerifyResult",
    "create_client",
    "differences_markdown",
]


class DeltaGliderClient(ListingMixin, TransferMixin, SimpleMixin, OriginalMixin, BucketMixin):
    """The boto3-compatible client (see the module's notes). Build it with
    :func:`create_client`. Thread-safe: one client may be used from many threads.

    Object operations are here; listings in :mod:`deltaglider._client.listing`, boto3's
    managed transfers in :mod:`deltaglider._client.transfer`, the simple API, batches and
    stats in :mod:`deltaglider._client.simple`, buckets, ACLs and presigned URLs in
    :mod:`deltaglider._client.buckets`; what they share (the engine, error translation) in
    :class:`deltaglider._client.core.ClientCore`.
    """

    @validated("PutObject")
    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes | bytearray | memoryview | str | IO[bytes] | os.PathLike[str] | None = None,
        Metadata: Mapping[str, str] | None = None,
        ContentType: str | None = None,
        Tagging: str | None = None,
        ContentMD5: str | None = None,
        ContentLength: int | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """Stores ``Body`` (bytes, str, a readable binary file object, or, as the original
        DeltaGlider took it, a :class:`~pathlib.Path` of a file to read) under ``Key``.

        ``ContentMD5`` (the base64 MD5 of the body) and ``ContentLength`` are checked before
        anything is stored: ``BadDigest``/``InvalidDigest`` and ``IncompleteBody`` as S3 gives
        them. ``Tagging`` is checked first too (``InvalidTag``; NotSupportedError on a local
        store) and written with the object, in the same request: the object never exists
        without its tags."""
        options = write_options(other)
        self._refuse("PutObject", other, set())
        if options:
            self._require_boto("PutObject", next(iter(options.s3_args())))
        data: Any = b"" if Body is None else Body
        if isinstance(data, str):
            data = data.encode("utf-8")
        tags = None
        if Tagging:
            self._require_boto("PutObject", "Tagging")
            tags = tag_set(Tagging)
            problem = invalid_tags(tags)
            if problem:
                raise self._error("PutObject", "InvalidTag", problem, 400, bucket=Bucket, key=Key)
        spooled = opened = None
        try:
            if isinstance(data, os.PathLike):
                # The original DeltaGlider's put_object took a Path for the file's bytes
                # (boto3 takes none): read from the file, streamed.
                opened = data = open(data, "rb")  # noqa: SIM115 - closed below
            if ContentMD5 is not None or ContentLength is not None:

                def refuse(code: str, message: str) -> Exception:
                    return self._error("PutObject", code, message, 400, bucket=Bucket, key=Key)

                data, spooled = checked_body(data, ContentMD5, ContentLength, refuse)
            with self._s3("PutObject", bucket=Bucket, key=Key):
                result = self._store.put(
                    Bucket,
                    Key,
                    data,
                    metadata=dict(Metadata or {}),
                    content_type=ContentType or DEFAULT_TYPE,
                    tagging=tagging(tags) if tags else None,
                    options=options,
                )
        finally:
            if spooled is not None:
                spooled.close()
            if opened is not None:
                opened.close()
        return {
            "ETag": quoted(result.etag),
            "DeltaGliderInfo": put_info(result),
            "ResponseMetadata": metadata_response(),
        }

    @validated("GetObjectTagging")
    def get_object_tagging(self, *, Bucket: str, Key: str, **other: Any) -> dict[str, Any]:
        """The tags of a logical object (kept on its stored representation)."""
        self._refuse("GetObjectTagging", other, set())
        boto = self._require_boto("GetObjectTagging")
        with self._s3("GetObjectTagging", bucket=Bucket, key=Key):
            head = self._store.head(Bucket, Key)
        response: dict[str, Any] = boto.get_object_tagging(Bucket=Bucket, Key=head.physical_key)
        return response

    def _conditions(
        self,
        operation: str,
        head: ObjectSummary,
        if_match: str | None,
        if_none_match: str | None,
        if_modified_since: datetime | None,
        if_unmodified_since: datetime | None,
    ) -> None:
        """PreconditionFailed (412), or the 304 of ``operation``, where the conditional
        headers say so (:func:`deltaglider._client.params.not_modified`)."""
        if not_modified(head, if_match, if_none_match, if_modified_since, if_unmodified_since):
            raise self._error(operation, "304", "Not Modified", 304)

    @validated("HeadObject")
    def head_object(
        self,
        *,
        Bucket: str,
        Key: str,
        IfMatch: str | None = None,
        IfNoneMatch: str | None = None,
        IfModifiedSince: datetime | None = None,
        IfUnmodifiedSince: datetime | None = None,
        Range: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        self._refuse("HeadObject", other, set())
        with self._s3("HeadObject", bucket=Bucket, key=Key):
            head = self._store.head(Bucket, Key)
            self._conditions(
                "HeadObject", head, IfMatch, IfNoneMatch, IfModifiedSince, IfUnmodifiedSince
            )
            size = head.size or 0
            response = object_fields(head)
            ranged = byte_range(Range, size, head.key)
            if ranged is not None:
                start, end = ranged
                response.update(
                    ContentLength=end - start, ContentRange=f"bytes {start}-{end - 1}/{size}"
                )
                response["ResponseMetadata"] = metadata_response(206)
        return response

    @validated("GetObject")
    def get_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Range: str | None = None,
        IfMatch: str | None = None,
        IfNoneMatch: str | None = None,
        IfModifiedSince: datetime | None = None,
        IfUnmodifiedSince: datetime | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """The object; ``Body`` streams its bytes (see :class:`StreamingBody`).

        Two requests: the engine's GET of the likelier stored form (its answer says what the
        object is) and HEAD of the other, at once; the conditions and the range are checked on
        what the GET said, before a byte is read."""
        self._refuse("GetObject", other, set())
        with self._s3("GetObject", bucket=Bucket, key=Key):
            opened = self._store.open_object(Bucket, Key)
            try:
                head = opened.summary
                self._conditions(
                    "GetObject", head, IfMatch, IfNoneMatch, IfModifiedSince, IfUnmodifiedSince
                )
                size = head.size or 0
                ranged = byte_range(Range, size, head.key)
                start, end = ranged if ranged is not None else (0, size)
            except BaseException:
                opened.close()
                raise
            reader = opened.stream(start, end)
        response = object_fields(head)
        response["ContentLength"] = end - start
        response["Body"] = StreamingBody(reader, end - start)
        if ranged is not None:
            response["ContentRange"] = f"bytes {start}-{end - 1}/{size}"
            response["ResponseMetadata"] = metadata_response(206)
        return response

    @validated("DeleteObject")
    def delete_object(self, *, Bucket: str, Key: str, **other: Any) -> dict[str, Any]:
        """Removes the logical object (a delta's physical name, ``key.delta``, names it too);
        a missing key is no error (204), a missing bucket is NoSuchBucket (the engine asks the
        bucket only when it found nothing). ``DeltaGliderInfo.Deleted`` says whether there was
        an object."""
        self._refuse("DeleteObject", other, set())
        with self._s3("DeleteObject", bucket=Bucket, key=Key):
            deleted = self._store.delete(Bucket, Key)
        # The original DeltaGlider's extra entry: whether there was an object to delete.
        return {"DeltaGliderInfo": {"Deleted": deleted}, "ResponseMetadata": metadata_response(204)}

    @validated("DeleteObjects")
    def delete_objects(
        self, *, Bucket: str, Delete: Mapping[str, Any], **other: Any
    ) -> dict[str, Any]:
        self._refuse("DeleteObjects", other, set())
        objects = Delete.get("Objects") or []
        quiet = bool(Delete.get("Quiet", False))
        keys = []
        for entry in objects:
            if "VersionId" in entry:
                raise NotSupportedError("DeleteObjects", "VersionId")
            keys.append(entry["Key"])
        if any(NOT_XML.search(k) for k in keys):
            # The request's XML cannot carry such a key: S3 refuses the whole request.
            raise self._error(
                "DeleteObjects", "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema.", 400, bucket=Bucket,
            )  # fmt: skip
        with self._s3("DeleteObjects", bucket=Bucket):
            # Asked first: a missing bucket fails the request, not each key.
            self.storage.head_bucket(Bucket)
            failures = self._store.delete_many(Bucket, keys)
        response: dict[str, Any] = {"ResponseMetadata": metadata_response()}
        deleted = [{"Key": k} for k in dict.fromkeys(keys) if k not in failures]
        if deleted and not quiet:
            response["Deleted"] = deleted
        if failures:
            errors = []
            for key in dict.fromkeys(keys):  # in the request's order, as S3 answers them
                if key in failures:
                    code, message = entry_error(failures[key])
                    errors.append({"Key": key, "Code": code, "Message": message})
            response["Errors"] = errors
        return response

    @validated("CopyObject")
    def copy_object(
        self,
        *,
        Bucket: str,
        Key: str,
        CopySource: str | Mapping[str, str],
        Metadata: Mapping[str, str] | None = None,
        MetadataDirective: str | None = None,
        ContentType: str | None = None,
        TaggingDirective: str | None = None,
        Tagging: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """Copies a logical object (rebuilt and stored again where the references differ).
        Its tags go with it (``TaggingDirective`` ``COPY``, the default) or are ``Tagging``
        (``REPLACE``), as in S3."""
        options = write_options(other)
        self._refuse("CopyObject", other, set())
        if options:
            self._require_boto("CopyObject", next(iter(options.s3_args())))
        src_bucket, src_key = copy_source(CopySource)
        directive = (MetadataDirective or "COPY").upper()
        tag_directive = (TaggingDirective or "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise self._error("CopyObject", "InvalidArgument", "Unknown metadata directive.", 400)
        if tag_directive not in ("COPY", "REPLACE"):
            raise self._error("CopyObject", "InvalidArgument", "Unknown tagging directive.", 400)
        if directive == "COPY" and (Metadata is not None or ContentType is not None):
            raise NotSupportedError(
                "CopyObject", "Metadata" if Metadata is not None else "ContentType",
                "give MetadataDirective='REPLACE' to change them, as S3 requires",
            )  # fmt: skip
        if tag_directive == "COPY" and Tagging is not None:
            raise NotSupportedError(
                "CopyObject", "Tagging", "give TaggingDirective='REPLACE' to set tags, as S3 does"
            )
        with self._s3("CopyObject", bucket=Bucket, key=Key):
            tags = None
            if self._boto is not None or Tagging:
                boto = self._require_boto("CopyObject Tagging")
                if tag_directive == "COPY":
                    source = self._store.head(src_bucket, src_key)
                    tags = boto.get_object_tagging(Bucket=src_bucket, Key=source.physical_key)[
                        "TagSet"
                    ]
                else:
                    tags = tag_set(Tagging or "")
                    problem = invalid_tags(tags)
                    if problem:
                        raise self._error(
                            "CopyObject", "InvalidTag", problem, 400, bucket=Bucket, key=Key
                        )
            result = self._store.copy(
                src_bucket,
                src_key,
                Bucket,
                Key,
                metadata=dict(Metadata or {}) if directive == "REPLACE" else None,
                # REPLACE replaces the content type too: S3's default when none is given.
                content_type=(ContentType or DEFAULT_TYPE) if directive == "REPLACE" else None,
                options=options,
            )
            if tags is not None:
                try:
                    self._set_tags(Bucket, result.physical_key, tags)
                except BaseException:
                    self._store.undo_put(result)  # the copy and its tags, or neither
                    raise
            head = self._store.head(Bucket, Key)
        return {
            "CopyObjectResult": {"ETag": quoted(result.etag), "LastModified": head.last_modified},
            "DeltaGliderInfo": put_info(result),
            "ResponseMetadata": metadata_response(),
        }

    def _set_tags(self, bucket: str, physical_key: str, tags: list[dict[str, str]]) -> None:
        """Makes the stored object's tags ``tags`` (a server-side copy may have brought some)."""
        boto = self._require_boto("Tagging")
        now = boto.get_object_tagging(Bucket=bucket, Key=physical_key)["TagSet"]
        if now == tags:
            return
        if tags:
            boto.put_object_tagging(Bucket=bucket, Key=physical_key, Tagging={"TagSet": tags})
        else:
            boto.delete_object_tagging(Bucket=bucket, Key=physical_key)

    if not TYPE_CHECKING:
        # Hidden from type checkers: a call of a method this client does not have is a mypy
        # error (attr-defined), not an Any.

        def __getattr__(self, name: str) -> Any:
            # Any other operation boto3's S3 client has: refused by name, never passed through
            # to the store, where it would bypass deltaglider's layout.
            if not name.startswith("_") and name in s3_operations():
                raise NotSupportedError(name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def create_client(
    endpoint_url: str | None = None,
    log_level: str | int | None = None,
    *,
    profile_name: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    max_ratio: float | None = None,
    config: Any = None,
    boto3_client: Any = None,
    verify: bool | str | None = None,
    deltaglider_config: Config | None = None,
    cache: Any = None,
    **original: Any,
) -> DeltaGliderClient:
    """A boto3-compatible client over deltaglider storage.

    :param endpoint_url: the S3 service (None: AWS, or ``DG_ENDPOINT_URL``/``AWS_ENDPOINT_URL``
        from the environment); ``file:///path`` uses a local folder. The client's
        ``endpoint_url`` attribute says which one it uses.
    :param log_level: the level of the ``deltaglider`` logger (``"DEBUG"``, ``"INFO"``...),
        as the original DeltaGlider's ``create_client(log_level=...)``; None leaves it as the
        program configured it.
    :param profile_name, region_name, aws_access_key_id, aws_secret_access_key,
        aws_session_token, verify: as for ``boto3.client("s3", ...)``.
    :param config: a ``botocore.config.Config`` for the client (retries, timeouts...).
    :param boto3_client: wrap this existing boto3 S3 client instead of making one.
    :param max_ratio: the largest delta, as a fraction of the file, worth storing (default
        ``DG_MAX_RATIO`` or 0.5).
    :param deltaglider_config: all engine settings at once (:class:`~deltaglider.config.Config`).
    :param cache: the reference cache (default: as the configuration says).
    :param original: the original's other keyword, ``tool_version``, is taken and not used
        (objects record this deltaglider's version: a warning says so); any other is a
        TypeError.
    """
    if original:
        unknown = sorted(set(original) - {"tool_version"})
        if unknown:
            raise TypeError(f"create_client() got an unexpected keyword argument {unknown[0]!r}")
        warnings.warn(
            "create_client(tool_version=...) is not used: objects record this deltaglider's "
            "own version, which readers check",
            stacklevel=2,
        )
    if log_level is not None:
        logging.getLogger("deltaglider").setLevel(
            log_level.upper() if isinstance(log_level, str) else log_level
        )
    store, boto = connect(
        endpoint_url,
        settings=deltaglider_config,
        max_ratio=max_ratio,
        boto3_client=boto3_client,
        cache=cache,
        profile=profile_name,
        region=region_name,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        verify=verify,
        config=config,
    )
    client = DeltaGliderClient(store, boto)
    client.endpoint_url = endpoint_url or _endpoint_of(store, boto)
    return client


def _endpoint_of(store: Any, boto: Any | None) -> str | None:
    """The endpoint a client made without one uses: the environment's, or None for AWS."""
    if boto is None:
        root = getattr(store.storage, "root", None)
        return Path(root).resolve().as_uri() if root is not None else None
    url = getattr(getattr(boto, "meta", None), "endpoint_url", None)
    if isinstance(url, str) and ".amazonaws.com" in url:
        return None
    return url if isinstance(url, str) else None
