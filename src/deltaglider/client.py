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
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

import botocore.exceptions

from . import format as fmt
from ._client_buckets import BucketMixin
from ._client_common import NotSupportedError, metadata_response
from ._client_transfer import TransferMixin
from .config import Config
from .engine import DeltaStore, ListResult, ObjectSummary, PutResult, VerifiedReader
from .errors import (
    AccessDenied,
    BucketNotEmpty,
    BucketNotFound,
    DeltaGliderError,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from .storage.base import Storage

__all__ = [
    "BEHAVIOURS",
    "DIFFERENCES",
    "DeltaGliderClient",
    "NotSupportedError",
    "StreamingBody",
    "create_client",
    "differences_markdown",
]

#: What differs from boto3 in response fields, by design: the parity suite lets exactly these
#: differ (its HONOURED says how). With :data:`BEHAVIOURS`, every difference from boto3;
#: docs/sdk.md's "Differences from boto3" is :func:`differences_markdown`, checked by a test.
DIFFERENCES: dict[str, str] = {
    "ETag": "the ETag of the stored representation (a delta's own ETag for a delta), not of the "
    "logical bytes; stable while the object is unchanged, so IfMatch/IfNoneMatch work with it",
    "VersionId": "versioning is not supported: no VersionId in responses",
    "Checksum*": "no ChecksumCRC32/ChecksumSHA256 fields: integrity is the sha256 deltaglider "
    "records and verifies on every read",
    "ServerSideEncryption": "not echoed (the store's default encryption applies)",
    "StorageClass": "always STANDARD in listings",
    "Owner": "not returned in listings (FetchOwner is refused)",
    "ResponseMetadata": "for object operations: HTTPStatusCode, HTTPHeaders (empty), RequestId "
    "(empty), RetryAttempts (0); not the store's raw headers",
    "get_object Body": "a deltaglider StreamingBody: read/iter_chunks/iter_lines/close/context "
    "manager as botocore's; it raises IntegrityError at the end if the bytes are not the ones "
    "stored",
    "TagCount": "get_object/head_object do not return TagCount (it would cost a request per "
    "call); get_object_tagging returns the tags",
    "ContentType": "an object put_object stores (or copy_object with MetadataDirective "
    "REPLACE) without a ContentType is binary/octet-stream, S3's default, also on servers that "
    "guess a type from the bytes or the name instead (SeaweedFS)",
    "Error details": "an error's Error entry has Code, Message and, where S3 names them, Key "
    "and BucketName; not a server's other elements (Resource, Condition, RangeRequested...)",
    "DeltaGliderInfo": "an extra key in put_object, get_object, head_object and copy_object "
    "responses: IsDelta, OriginalSize, StoredSize, Savings, ReferenceKey, PhysicalKey",
}

#: What differs from boto3 in behaviour (not a response field), by design.
BEHAVIOURS: dict[str, str] = {
    "Unknown operations": "an operation boto3's S3 client has and this one does not raises "
    "NotSupportedError naming it (select_object_content, versioning, the multipart upload "
    "calls: the client does multipart itself); an attribute that is no S3 operation raises "
    "AttributeError, and is a mypy error",
    "Parameters": "a parameter the client cannot honour raises NotSupportedError naming the "
    "operation and the parameter (VersionId, SSE-C keys, FetchOwner, ...); none is ignored",
    "Keys": "a key under .deltaglider/ (deltaglider's own), ending in '/' or longer than 1024 "
    "bytes is refused with ClientError InvalidArgument (put_object, copy_object; an Errors "
    "entry in delete_objects); S3 stores the first two and says KeyTooLongError for the third",
    "put_object ContentLength": "a ContentLength other than the body's length raises ClientError "
    "IncompleteBody (400) before anything is stored; boto3 sends the header as given, so "
    "the server reads a truncated body and the connection's next request fails, or waits for "
    "bytes that never come",
    "put_object Tagging": "Tagging is checked before the object is stored: S3's limits (10 "
    "tags, keys 1-128 characters, values up to 256, each key once) give ClientError InvalidTag "
    "(SeaweedFS itself stores more tags, and longer ones, through put_object); the tags are "
    "then written with the object, in the same request. copy_object sets them after the copy: "
    "if that fails, the copy is removed and the error raised (an object the copy replaced is "
    "then gone too: S3 would have kept it)",
    "EncodingType": "with EncodingType='url' given by the caller, listings encode key names as "
    "S3 does (UTF-8 percent-encoding, spaces as '+', '/' kept) in Key, CommonPrefixes, "
    "Delimiter and, for list_objects_v2, Prefix and StartAfter, for list_objects, Marker and "
    "NextMarker: the fields botocore decodes when it asks for the encoding itself. SeaweedFS "
    "encodes spaces before the last '/' as %20 and leaves Prefix, Delimiter and markers plain; "
    "a value other than 'url' is ClientError InvalidArgument",
    "head_object Range": "Range on head_object is answered as S3 answers it (206, the range's "
    "ContentLength and ContentRange; several ranges: the whole object, 200); SeaweedFS "
    "itself ignores it",
    "Transfers ExtraArgs": "upload_file/upload_fileobj take ExtraArgs Metadata and ContentType "
    "only, download_file/download_fileobj none: any other key raises NotSupportedError naming "
    "it (a key boto3 rejects too is also a ValueError, as boto3's)",
    "TransferConfig": "the engine transfers with the client's own settings "
    "(deltaglider.config.Config). A TransferConfig field may be left unset, or set to: "
    "multipart_threshold, multipart_chunksize the client's multipart_threshold, "
    "multipart_chunksize; max_concurrency its max_workers; use_threads True; "
    "preferred_transfer_client 'auto' or 'classic'; num_download_attempts, max_io_queue, "
    "io_chunksize, max_bandwidth boto3's default. Anything else raises NotSupportedError "
    "naming Config.<field>",
    "download_fileobj": "writes the bytes as they are rebuilt and raises IntegrityError at the "
    "end if they are not the ones stored (download_file writes a temporary file and renames it "
    "only after the check)",
    "generate_presigned_url": "works for get_object and head_object only (a presigned upload "
    "would bypass delta storage: NotSupportedError); it contacts the store, so a missing key "
    "raises NoSuchKey at once rather than when the URL is used; for a delta it writes a "
    "verified temporary copy under .deltaglider/tmp/ that records its expiry (IfMatch, "
    "IfNoneMatch, IfModifiedSince, IfUnmodifiedSince, PartNumber and SSE-C parameters are "
    "refused for a delta), and purge_temp_files(Bucket) removes expired copies (a copy without "
    "an expiry counts as expired after 7 days, the longest a SigV4 URL lives); the URL's "
    "answer comes from the store as is, so it shows deltaglider's own x-amz-meta-dg-* headers "
    "next to the user's metadata",
    "delete_bucket": "a bucket that lists empty but still holds deltaglider's own objects "
    "(.deltaglider/, unused reference.bin) has them removed first, then is deleted; with user "
    "objects it fails with BucketNotEmpty and nothing is removed",
    "Local store": "over a local store (file://): ACLs, tagging (put_object Tagging too, "
    "before anything is stored) and presigned URLs raise NotSupportedError; Owner in "
    "list_buckets is the local user",
}


def differences_markdown() -> str:
    """docs/sdk.md's "Differences from boto3" section body: :data:`DIFFERENCES` as a table,
    :data:`BEHAVIOURS` as a list (a test checks the doc against it)."""
    lines = [
        "All of them, in one place: `deltaglider.client.DIFFERENCES` (response fields; the parity",
        "suite `tests/client/test_parity.py` lets exactly these differ) and",
        "`deltaglider.client.BEHAVIOURS` (behaviour), rendered here by",
        "`deltaglider.client.differences_markdown()` (a test checks that they agree).",
        "",
        "| field | deltaglider |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in DIFFERENCES.items()),
        "",
        "| behaviour | deltaglider |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in BEHAVIOURS.items()),
    ]
    return "\n".join(lines) + "\n"


_metadata = metadata_response

#: A streamed put_object body checked against ContentMD5/ContentLength is held in memory up
#: to this size, beyond in a temporary file.
_SPOOL_BODY = 64 << 20

#: S3's content type for an object stored without one.
_DEFAULT_TYPE = "binary/octet-stream"


def _quoted(etag: str) -> str:
    etag = etag or ""
    return etag if etag.startswith('"') else f'"{etag}"'


def _info(
    *,
    stored: int,
    original: int,
    is_delta: bool,
    ref_key: str | None,
    physical_key: str,
) -> dict[str, Any]:
    """The ``DeltaGliderInfo`` entry of a response."""
    return {
        "IsDelta": is_delta,
        "OriginalSize": original,
        "StoredSize": stored,
        "Savings": round(1 - stored / original, 6) if original else 0.0,
        "ReferenceKey": ref_key,
        "PhysicalKey": physical_key,
    }


def _summary_info(obj: ObjectSummary) -> dict[str, Any]:
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


def _put_info(result: PutResult) -> dict[str, Any]:
    return _info(
        stored=result.stored_size,
        original=result.size,
        is_delta=result.is_delta,
        ref_key=result.ref_key,
        physical_key=result.physical_key,
    )


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


# --- errors ----------------------------------------------------------------------------------

#: Operations whose errors come without a body (HEAD requests): a code and a status only.
_BODILESS = frozenset({"HeadObject", "HeadBucket"})

#: Characters XML 1.0 cannot carry (a key holding one cannot be sent in a request's XML).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

#: S3's code and message, in a DeleteObjects Errors entry, for a bodiless error's status.
_ENTRY_CODES = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
}

_STATUS = {
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "404": 404,
    "AccessDenied": 403,
    "PreconditionFailed": 412,
    "304": 304,
    "InvalidRange": 416,
    "BucketNotEmpty": 409,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
}


def _code_of(exc: DeltaGliderError, operation: str) -> tuple[str, str, int]:
    """S3's error code, message and HTTP status for one of our errors. A HEAD's error has no
    body: botocore names it by its status (``"404"``, ``"416"``) and the HTTP reason phrase."""
    code, message, status = _s3_code_of(exc, operation)
    if operation in _BODILESS:
        import http.client

        return str(status), http.client.responses.get(status, ""), status
    return code, message, status


def _s3_code_of(exc: DeltaGliderError, operation: str) -> tuple[str, str, int]:
    head = operation in _BODILESS
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, BucketNotFound):
        code = "404" if head else "NoSuchBucket"
        return code, "Not Found" if head else "The specified bucket does not exist", 404
    if isinstance(exc, ObjectNotFound):
        return (
            ("404", "Not Found", 404)
            if head
            else ("NoSuchKey", "The specified key does not exist.", 404)
        )
    if isinstance(exc, AccessDenied):
        return ("403", "Forbidden", 403) if head else ("AccessDenied", "Access Denied", 403)
    if isinstance(exc, PreconditionFailed):
        return (
            ("412", "Precondition Failed", 412)
            if head
            else (
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                412,
            )
        )
    if isinstance(exc, InvalidRange):
        return "InvalidRange", "The requested range is not satisfiable", 416
    if isinstance(exc, BucketNotEmpty):
        return "BucketNotEmpty", "The bucket you tried to delete is not empty", 409
    if isinstance(exc, InvalidKey):
        return "InvalidArgument", message, 400
    if isinstance(exc, StorageError) and exc.code:
        return exc.code, message, exc.status or _STATUS.get(exc.code, 500)
    raise exc  # not an S3 condition (an integrity failure, a codec error): as it is


class DeltaGliderClient(TransferMixin, BucketMixin):
    """The boto3-compatible client (see the module's notes). Build it with
    :func:`create_client`. Thread-safe: one client may be used from many threads.

    Object operations and listings are here; file transfers, the simple API and batches in
    :class:`~deltaglider._client_transfer.TransferMixin`; buckets, ACLs and presigned URLs in
    :class:`~deltaglider._client_buckets.BucketMixin`.
    """

    def __init__(self, store: DeltaStore, boto_client: Any | None = None) -> None:
        self._store = store
        self._boto = boto_client
        self._closed = False
        self._lock = threading.Lock()
        if boto_client is not None:
            self.exceptions = boto_client.exceptions
            self.meta = boto_client.meta
        else:
            self.exceptions = _standalone_exceptions()
            self.meta = None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def store(self) -> DeltaStore:
        """The engine underneath."""
        return self._store

    @property
    def storage(self) -> Storage:
        return self._store.storage

    @property
    def boto_client(self) -> Any:
        """The plain boto3 client this one wraps (None over a local store)."""
        return self._boto

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> DeltaGliderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(
        self,
        operation: str,
        code: str,
        message: str,
        status: int,
        *,
        bucket: str | None = None,
        key: str | None = None,
    ) -> Exception:
        error_fields: dict[str, str] = {"Code": code, "Message": message}
        if operation not in _BODILESS and status != 304:
            # S3 names the key and the bucket in an error's body (a HEAD's has no body).
            if key is not None:
                error_fields["Key"] = key
            if bucket is not None:
                error_fields["BucketName"] = bucket
        response = {"Error": error_fields, "ResponseMetadata": _metadata(status)}
        cls = self.exceptions.from_code(code)
        error: Exception = cls(response, operation)
        return error

    @contextmanager
    def _s3(
        self, operation: str, *, bucket: str | None = None, key: str | None = None
    ) -> Iterator[None]:
        """Turns our errors into botocore ClientErrors with S3's codes (naming ``bucket`` and
        ``key`` as S3 does)."""
        try:
            yield
        except botocore.exceptions.ClientError:
            raise
        except DeltaGliderError as exc:
            if isinstance(exc, NotSupportedError):
                raise
            code, message, status = _code_of(exc, operation)
            raise self._error(operation, code, message, status, bucket=bucket, key=key) from exc

    @staticmethod
    def _refuse(operation: str, given: Mapping[str, Any], allowed: set[str]) -> None:
        for name, value in given.items():
            if name not in allowed and value is not None:
                raise NotSupportedError(operation, name)

    def _require_boto(self, operation: str, parameter: str | None = None) -> Any:
        if self._boto is None:
            raise NotSupportedError(operation, parameter, why="not on a local (file://) store")
        return self._boto

    # --- objects -----------------------------------------------------------------------------

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes | bytearray | memoryview | str | IO[bytes] | None = None,
        Metadata: Mapping[str, str] | None = None,
        ContentType: str | None = None,
        Tagging: str | None = None,
        ContentMD5: str | None = None,
        ContentLength: int | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """Stores ``Body`` (bytes, str, or a readable binary file object) under ``Key``.

        ``ContentMD5`` (the base64 MD5 of the body) and ``ContentLength`` are checked before
        anything is stored: ``BadDigest``/``InvalidDigest`` and ``IncompleteBody`` as S3 gives
        them. ``Tagging`` is checked first too (``InvalidTag``; NotSupportedError on a local
        store) and written with the object, in the same request: the object never exists
        without its tags."""
        self._refuse("PutObject", other, set())
        data: Any = b"" if Body is None else Body
        if isinstance(data, str):
            data = data.encode("utf-8")
        tags = None
        if Tagging:
            self._require_boto("PutObject", "Tagging")
            tags = _tag_set(Tagging)
            problem = _invalid_tags(tags)
            if problem:
                raise self._error("PutObject", "InvalidTag", problem, 400, bucket=Bucket, key=Key)
        spooled = None
        if ContentMD5 is not None or ContentLength is not None:
            data, spooled = self._checked_body("PutObject", Bucket, Key, data, ContentMD5,
                                               ContentLength)  # fmt: skip
        try:
            with self._s3("PutObject", bucket=Bucket, key=Key):
                result = self._store.put(
                    Bucket,
                    Key,
                    data,
                    metadata=dict(Metadata or {}),
                    content_type=ContentType or _DEFAULT_TYPE,
                    tagging=_tagging(tags) if tags else None,
                )
        finally:
            if spooled is not None:
                spooled.close()
        return {
            "ETag": _quoted(result.etag),
            "DeltaGliderInfo": _put_info(result),
            "ResponseMetadata": _metadata(),
        }

    def _checked_body(
        self,
        operation: str,
        bucket: str,
        key: str,
        data: Any,
        content_md5: str | None,
        content_length: int | None,
    ) -> tuple[Any, IO[bytes] | None]:
        """The body, checked against ``ContentMD5`` and ``ContentLength`` before anything is
        stored (a stream is read to its end first, into memory or a temporary file)."""
        import base64
        import binascii
        import hashlib
        import tempfile

        md5 = hashlib.md5(usedforsecurity=False)
        spooled: IO[bytes] | None = None
        if isinstance(data, (bytes, bytearray, memoryview)):
            md5.update(data)
            size = memoryview(data).nbytes
        else:
            spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BODY)  # noqa: SIM115
            size = 0
            while chunk := data.read(1 << 20):
                md5.update(chunk)
                spooled.write(chunk)
                size += len(chunk)
            spooled.seek(0)
            if size <= _SPOOL_BODY:
                data = spooled.read()
                spooled.close()
                spooled = None
            else:
                data = spooled
        try:
            if content_md5 is not None:
                try:
                    given = base64.b64decode(content_md5, validate=True)
                except (binascii.Error, ValueError):
                    raise self._error(
                        operation, "InvalidDigest", "The Content-Md5 you specified is not valid.",
                        400, bucket=bucket, key=key,
                    ) from None  # fmt: skip
                if given != md5.digest():
                    raise self._error(
                        operation, "BadDigest",
                        "The Content-Md5 you specified did not match what we received.",
                        400, bucket=bucket, key=key,
                    )  # fmt: skip
            if content_length is not None and content_length != size:
                # boto3 sends the header as given: a server then reads a truncated body and
                # the connection's next request is garbage, or waits for bytes that never come.
                # S3's error for a body that is not the Content-Length says: at once instead.
                raise self._error(
                    operation, "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length "
                    f"HTTP header (ContentLength={content_length}, the body has {size} bytes)",
                    400, bucket=bucket, key=key,
                )  # fmt: skip
        except BaseException:
            if spooled is not None:
                spooled.close()
            raise
        return data, spooled

    def _undo_put(self, bucket: str, result: PutResult) -> None:
        """Removes what a put just stored (its tagging failed), unless it was replaced since;
        and the reference it made for a new deltaspace, if no delta uses it."""
        self._store.undo_put(result)

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
        # RFC 7232's order, which S3 follows: If-Match, else If-Unmodified-Since (412); then
        # If-None-Match, else If-Modified-Since (304). So IfMatch true with IfUnmodifiedSince
        # false is a 200, and IfNoneMatch false with IfModifiedSince true a 304.
        etag = _quoted(head.etag)
        when = head.last_modified
        if if_match is not None:
            if if_match != "*" and _quoted(if_match) != etag:
                raise PreconditionFailed(
                    f"{head.key}: ETag does not match", code="PreconditionFailed", status=412
                )
        elif (
            if_unmodified_since is not None
            and when is not None
            and when > _aware(if_unmodified_since)
        ):
            raise PreconditionFailed(f"{head.key}: modified", code="PreconditionFailed", status=412)
        not_modified = False
        if if_none_match is not None:
            not_modified = if_none_match == "*" or _quoted(if_none_match) == etag
        elif if_modified_since is not None and when is not None:
            not_modified = when <= _aware(if_modified_since)
        if not_modified:
            raise self._error(operation, "304", "Not Modified", 304)

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
            response = self._object_fields(head)
            if Range is not None and not _multiple_ranges(Range):
                start, end = _parse_range(Range, size, head.key)
                response.update(
                    ContentLength=end - start, ContentRange=f"bytes {start}-{end - 1}/{size}"
                )
                response["ResponseMetadata"] = _metadata(206)
        return response

    def _object_fields(self, head: ObjectSummary) -> dict[str, Any]:
        return {
            "AcceptRanges": "bytes",
            "LastModified": head.last_modified,
            "ContentLength": head.size or 0,
            "ETag": _quoted(head.etag),
            "ContentType": head.content_type or _DEFAULT_TYPE,
            "Metadata": dict(head.metadata or {}),
            "DeltaGliderInfo": _summary_info(head),
            "ResponseMetadata": _metadata(),
        }

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
        """The object; ``Body`` streams its bytes (see :class:`StreamingBody`)."""
        self._refuse("GetObject", other, set())
        with self._s3("GetObject", bucket=Bucket, key=Key):
            head = self._store.head(Bucket, Key)
            self._conditions(
                "GetObject", head, IfMatch, IfNoneMatch, IfModifiedSince, IfUnmodifiedSince
            )
            size = head.size or 0
            # S3 does not serve several ranges at once: it answers the whole object, 200.
            if Range is not None and not _multiple_ranges(Range):
                start, end = _parse_range(Range, size, head.key)
                ranged = True
            else:
                start, end, ranged = 0, size, False
            summary, reader = self._store.open(Bucket, Key, start=start, end=end)
        if summary.etag != head.etag:  # replaced between the two requests: the newer one
            head = summary
            size = head.size or 0
        response = self._object_fields(head)
        response["ContentLength"] = end - start
        response["Body"] = StreamingBody(reader, end - start)
        if ranged:
            response["ContentRange"] = f"bytes {start}-{end - 1}/{size}"
            response["ResponseMetadata"] = _metadata(206)
        return response

    def delete_object(self, *, Bucket: str, Key: str, **other: Any) -> dict[str, Any]:
        self._refuse("DeleteObject", other, set())
        with self._s3("DeleteObject", bucket=Bucket, key=Key):
            self.storage.head_bucket(Bucket)
            self._store.delete(Bucket, Key)
        return {"ResponseMetadata": _metadata(204)}

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
        if any(_NOT_XML.search(k) for k in keys):
            # The request's XML cannot carry such a key: S3 refuses the whole request.
            raise self._error(
                "DeleteObjects", "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema.", 400, bucket=Bucket,
            )  # fmt: skip
        with self._s3("DeleteObjects", bucket=Bucket):
            self.storage.head_bucket(Bucket)
            failures = self._store.delete_many(Bucket, keys)
        response: dict[str, Any] = {"ResponseMetadata": _metadata()}
        deleted = [{"Key": k} for k in dict.fromkeys(keys) if k not in failures]
        if deleted and not quiet:
            response["Deleted"] = deleted
        if failures:
            errors = []
            for key, exc in failures.items():
                code, message = "InternalError", str(exc)
                if isinstance(exc, DeltaGliderError):
                    try:
                        code, message, _ = _code_of(exc, "DeleteObjects")
                    except DeltaGliderError:
                        pass
                    if code.isdigit():
                        # The store refused a HEAD, whose error has no body: S3's code for
                        # its status, as a DeleteObjects entry names it.
                        code, message = _ENTRY_CODES.get(int(code), (code, message))
                errors.append({"Key": key, "Code": code, "Message": message})
            response["Errors"] = errors
        return response

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
        self._refuse("CopyObject", other, set())
        src_bucket, src_key = _copy_source(CopySource)
        directive = (MetadataDirective or "COPY").upper()
        tagging = (TaggingDirective or "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise self._error("CopyObject", "InvalidArgument", "Unknown metadata directive.", 400)
        if tagging not in ("COPY", "REPLACE"):
            raise self._error("CopyObject", "InvalidArgument", "Unknown tagging directive.", 400)
        if directive == "COPY" and (Metadata is not None or ContentType is not None):
            raise NotSupportedError(
                "CopyObject", "Metadata" if Metadata is not None else "ContentType",
                "give MetadataDirective='REPLACE' to change them, as S3 requires",
            )  # fmt: skip
        if tagging == "COPY" and Tagging is not None:
            raise NotSupportedError(
                "CopyObject", "Tagging", "give TaggingDirective='REPLACE' to set tags, as S3 does"
            )
        with self._s3("CopyObject", bucket=Bucket, key=Key):
            tags = None
            if self._boto is not None or Tagging:
                boto = self._require_boto("CopyObject Tagging")
                if tagging == "COPY":
                    source = self._store.head(src_bucket, src_key)
                    tags = boto.get_object_tagging(Bucket=src_bucket, Key=source.physical_key)[
                        "TagSet"
                    ]
                else:
                    tags = _tag_set(Tagging or "")
                    problem = _invalid_tags(tags)
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
                content_type=(ContentType or _DEFAULT_TYPE) if directive == "REPLACE" else None,
            )
            if tags is not None:
                try:
                    self._set_tags(Bucket, result.physical_key, tags)
                except BaseException:
                    self._undo_put(Bucket, result)  # the copy and its tags, or neither
                    raise
            head = self._store.head(Bucket, Key)
        return {
            "CopyObjectResult": {"ETag": _quoted(result.etag), "LastModified": head.last_modified},
            "DeltaGliderInfo": _put_info(result),
            "ResponseMetadata": _metadata(),
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

    # --- listing -----------------------------------------------------------------------------

    def _page(
        self,
        operation: str,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        token: str | None,
        encoding_type: str | None,
    ) -> ListResult:
        if max_keys < 0:
            raise self._error(
                operation, "InvalidArgument",
                "Argument maxKeys must be an integer between 0 and 2147483647", 400,
                bucket=bucket,
            )  # fmt: skip
        if encoding_type is not None and encoding_type != "url":
            raise self._error(
                operation, "InvalidArgument", "Invalid Encoding Method specified in Request",
                400, bucket=bucket,
            )  # fmt: skip
        with self._s3(operation, bucket=bucket):
            if max_keys == 0:
                self.storage.head_bucket(bucket)
                return ListResult()
            return self._store.list_objects(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                token=token,
                max_keys=max_keys,
                logical_sizes=True,
            )

    @staticmethod
    def _contents(page: ListResult, encode: Callable[[str], str]) -> list[dict[str, Any]]:
        return [
            {
                "Key": encode(o.key),
                "LastModified": o.last_modified,
                "ETag": _quoted(o.etag),
                "Size": o.size if o.size is not None else o.stored_size,
                "StorageClass": "STANDARD",
            }
            for o in page.objects
        ]

    def _listing(
        self,
        page: ListResult,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        encode: Callable[[str], str],
        prefix_encoded: bool,
    ) -> dict[str, Any]:
        """What both listing versions answer for a page. ``encode`` is the identity, or, when
        the caller asked for ``EncodingType="url"`` itself, S3's URL encoding of key names
        (boto3 asks for it on its own too, and then decodes the answer: so does this one)."""
        response: dict[str, Any] = {
            "IsTruncated": page.next_token is not None,
            "Name": bucket,
            "Prefix": encode(prefix) if prefix_encoded else prefix,
            "MaxKeys": max_keys,
            "EncodingType": "url",
            "ResponseMetadata": _metadata(),
        }
        contents = self._contents(page, encode)
        if contents:
            response["Contents"] = contents
        if delimiter:
            response["Delimiter"] = encode(delimiter)
        if page.prefixes:
            response["CommonPrefixes"] = [{"Prefix": encode(p)} for p in page.prefixes]
        return response

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
        StartAfter: str | None = None,
        EncodingType: str | None = None,
        FetchOwner: bool | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """One page of the logical listing (logical sizes; references and deltaglider's own
        objects hidden). With ``EncodingType="url"`` the key names in the answer are
        URL-encoded (``Key``, ``CommonPrefixes``, ``Prefix``, ``Delimiter``, ``StartAfter``),
        as S3 answers it and boto3 hands it on; without, they are plain."""
        self._refuse("ListObjectsV2", other, set())
        if FetchOwner:
            raise NotSupportedError("ListObjectsV2", "FetchOwner")
        token = ContinuationToken
        if token is None and StartAfter:
            token = _after_token(StartAfter)
        page = self._page("ListObjectsV2", Bucket, Prefix, Delimiter, MaxKeys, token, EncodingType)
        encode = _url_encode if EncodingType == "url" else _same
        response = self._listing(page, Bucket, Prefix, Delimiter, MaxKeys, encode, True)
        response["KeyCount"] = len(page.objects) + len(page.prefixes)
        if ContinuationToken is not None:
            response["ContinuationToken"] = ContinuationToken
        if StartAfter:
            response["StartAfter"] = encode(StartAfter)
        if page.next_token is not None:
            response["NextContinuationToken"] = page.next_token
        return response

    def list_objects(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        MaxKeys: int = 1000,
        Marker: str = "",
        EncodingType: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """ListObjects (v1): ``Marker`` is the last key seen, as S3 takes it. ``EncodingType``
        as for :meth:`list_objects_v2` (encoded: ``Key``, ``CommonPrefixes``, ``Delimiter``,
        ``Marker``, ``NextMarker``)."""
        self._refuse("ListObjects", other, set())
        token = _after_token(Marker) if Marker else None
        page = self._page("ListObjects", Bucket, Prefix, Delimiter, MaxKeys, token, EncodingType)
        encode = _url_encode if EncodingType == "url" else _same
        response = self._listing(page, Bucket, Prefix, Delimiter, MaxKeys, encode, False)
        response["Marker"] = encode(Marker)
        if page.next_token is not None:
            # The last key or prefix of the page (AWS gives it only with a delimiter; S3 servers
            # such as SeaweedFS always do; a program may use it or the last key either way).
            response["NextMarker"] = encode(max([o.key for o in page.objects] + page.prefixes))
        return response

    def get_paginator(self, operation_name: str) -> Paginator:
        """``list_objects_v2`` and ``list_objects`` paginators, as boto3's."""
        if operation_name == "list_objects_v2":
            return Paginator(self.list_objects_v2, "ListObjectsV2")
        if operation_name == "list_objects":
            return Paginator(self.list_objects, "ListObjects")
        if not _pageable(operation_name):
            raise botocore.exceptions.OperationNotPageableError(operation_name=operation_name)
        raise NotSupportedError(f"get_paginator({operation_name!r})")

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in ("list_objects_v2", "list_objects")

    if not TYPE_CHECKING:
        # Hidden from type checkers: a call of a method this client does not have is a mypy
        # error (attr-defined), not an Any.

        def __getattr__(self, name: str) -> Any:
            # Any other operation boto3's S3 client has: refused by name, never passed through
            # to the store, where it would bypass deltaglider's layout.
            if not name.startswith("_") and name in _s3_operations():
                raise NotSupportedError(name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class Paginator:
    """boto3's paginator for a listing, run by botocore's own page iterator over this client's
    method: ``paginate(**params)`` with ``PaginationConfig`` (``MaxItems``, ``PageSize``,
    ``StartingToken``), ``build_full_result()``, ``search()``, ``resume_token``, all as boto3's
    (MaxItems counts ``Contents``; resume tokens are botocore's)."""

    def __init__(self, method: Callable[..., dict[str, Any]], operation: str) -> None:
        import botocore.paginate

        service, paginators = _s3_models()
        self._paginator = botocore.paginate.Paginator(
            method, paginators.get_paginator(operation), service.operation_model(operation)
        )

    def paginate(self, **params: Any) -> Any:
        """A botocore ``PageIterator``: iterate it for the pages."""
        return self._paginator.paginate(**params)


# --- helpers ---------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)\Z")


def _url_encode(name: str) -> str:
    """A key name as S3 encodes it for ``EncodingType=url``: UTF-8 percent-encoding with
    spaces as ``+`` and ``/`` kept (botocore decodes it with ``unquote_plus``)."""
    from urllib.parse import quote_plus

    return quote_plus(name, safe="/")


def _same(name: str) -> str:
    return name


def _multiple_ranges(text: str) -> bool:
    """``bytes=0-1,3-4``: S3 serves no multipart/byteranges, it answers the whole object."""
    return text.strip().startswith("bytes=") and "," in text


def _parse_range(text: str, size: int, key: str) -> tuple[int, int]:
    """``bytes=a-b``, ``bytes=a-``, ``bytes=-n`` as S3 takes them: (start, end exclusive)."""
    match = _RANGE.match(text.strip())
    if not match or match.groups() == ("", ""):
        # S3 ignores a Range it cannot parse and returns the whole object.
        return 0, size
    first, last = match.groups()
    if first == "":
        n = int(last)
        if n == 0:
            raise InvalidRange(f"{key}: {text}", code="InvalidRange", status=416)
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise InvalidRange(f"{key}: {text}", code="InvalidRange", status=416)
    return start, end


def _invalid_tags(tags: list[dict[str, str]]) -> str | None:
    """Why S3 refuses a TagSet (its limits: 10 tags, keys of 1 to 128 characters, values up
    to 256, each key once), or None. Checked before an object is stored, so that the store's
    refusal of the tags cannot come after the object is there."""
    keys = [t["Key"] for t in tags]
    if (
        len(tags) > 10
        or len(set(keys)) != len(keys)
        or any(not 0 < len(k) <= 128 for k in keys)
        or any(len(t["Value"]) > 256 for t in tags)
    ):
        return "The Tag value you have provided is invalid"
    return None


def _tagging(tags: list[dict[str, str]]) -> str:
    """The ``Tagging`` string (URL-encoded ``a=1&b=2``) of a TagSet."""
    from urllib.parse import urlencode

    return urlencode([(t["Key"], t["Value"]) for t in tags])


def _tag_set(tagging: str) -> list[dict[str, str]]:
    """S3's TagSet for a ``Tagging`` string (``a=1&b=2``, URL-encoded)."""
    from urllib.parse import parse_qsl

    return [{"Key": k, "Value": v} for k, v in parse_qsl(tagging, keep_blank_values=True)]


def _copy_source(source: str | Mapping[str, str]) -> tuple[str, str]:
    from urllib.parse import unquote

    if isinstance(source, Mapping):
        if "VersionId" in source:
            raise NotSupportedError("CopyObject", "CopySource.VersionId")
        return source["Bucket"], source["Key"]
    text = unquote(source.lstrip("/"))
    if "?versionId=" in text:
        raise NotSupportedError("CopyObject", "CopySource versionId")
    bucket, _, key = text.partition("/")
    return bucket, key


def _after_token(key: str) -> str:
    """A continuation token that starts after the logical ``key``."""
    from .engine import after_token

    return after_token(key)


def _s3_models() -> tuple[Any, Any]:
    """botocore's S3 service model and paginator model (with botocore's extras)."""
    global _MODELS
    if _MODELS is None:
        import botocore.session

        session = botocore.session.get_session()
        _MODELS = (session.get_service_model("s3"), session.get_paginator_model("s3"))
    return _MODELS


_MODELS: tuple[Any, Any] | None = None


def _s3_operations() -> frozenset[str]:
    """boto3's S3 method names (``put_object``...)."""
    global _OPERATIONS
    if _OPERATIONS is None:
        from botocore import xform_name

        _OPERATIONS = frozenset(xform_name(n) for n in _s3_models()[0].operation_names)
    return _OPERATIONS


_OPERATIONS: frozenset[str] | None = None


def _pageable(method_name: str) -> bool:
    """Whether boto3's S3 client can paginate this method."""
    from botocore import xform_name

    service, paginators = _s3_models()
    for name in service.operation_names:
        if xform_name(name) == method_name:
            try:
                paginators.get_paginator(name)
            except ValueError:
                return False
            return True
    return False


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _standalone_exceptions() -> Any:
    """botocore's S3 exception classes without a client to a real endpoint (the local store)."""
    import boto3

    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    return client.exceptions


def create_client(
    endpoint_url: str | None = None,
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
) -> DeltaGliderClient:
    """A boto3-compatible client over deltaglider storage.

    :param endpoint_url: the S3 service (None: AWS, or ``DG_ENDPOINT_URL``/``AWS_ENDPOINT_URL``
        from the environment); ``file:///path`` uses a local folder.
    :param profile_name, region_name, aws_access_key_id, aws_secret_access_key,
        aws_session_token, verify: as for ``boto3.client("s3", ...)``.
    :param config: a ``botocore.config.Config`` for the client (retries, timeouts...).
    :param boto3_client: wrap this existing boto3 S3 client instead of making one.
    :param max_ratio: the largest delta, as a fraction of the file, worth storing (default
        ``DG_MAX_RATIO`` or 0.5).
    :param deltaglider_config: all engine settings at once (:class:`~deltaglider.config.Config`).
    :param cache: the reference cache (default: as the configuration says).
    """
    import dataclasses
    import os

    settings = deltaglider_config or Config.from_env()
    if max_ratio is not None:
        if not 0 < max_ratio <= 1:
            raise ValueError("max_ratio must be in (0, 1]")
        settings = dataclasses.replace(settings, max_ratio=max_ratio)
    if boto3_client is None and endpoint_url is None:
        endpoint_url = (
            os.environ.get("DG_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
    if boto3_client is None and endpoint_url and endpoint_url.startswith("file:"):
        from .storage import open_storage

        return DeltaGliderClient(DeltaStore(open_storage(endpoint_url), cache, settings))
    from .storage.s3 import S3Storage

    if boto3_client is None:
        from ._executor import connections_for
        from .storage._s3_session import build_client

        boto3_client, _ = build_client(
            endpoint_url=endpoint_url,
            profile=profile_name,
            region=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            verify=verify,
            max_attempts=settings.max_attempts,
            max_pool_connections=connections_for(settings.max_workers),
            config=config,
        )
    pool = getattr(getattr(boto3_client, "meta", None), "config", None)
    storage = S3Storage(
        client=boto3_client,
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        # Our threads as many as the client's connections: no more threads than sockets.
        max_pool_connections=int(getattr(pool, "max_pool_connections", None) or 10),
    )
    return DeltaGliderClient(DeltaStore(storage, cache, settings), boto3_client)
