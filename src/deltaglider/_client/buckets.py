"""The client's bucket operations, ACLs, presigned URLs and the cleanup of their temporary
copies.

Over S3 the bucket operations are boto3's own calls (same responses, same errors), with one
addition: deleting a bucket whose only objects are deltaglider's bookkeeping (``.deltaglider/``
and references no delta uses) removes them first, so a bucket that lists empty can be deleted.

A presigned GET of a delta cannot point at the delta: whoever fetches the URL gets plain bytes
from the store, with no deltaglider in between. So the object is rebuilt (and verified) into a
temporary plain copy under ``.deltaglider/tmp/<random>/<name>``, whose metadata records when
its URL expires, and that copy is presigned. :meth:`BucketMixin.purge_temp_files` removes the
copies whose URLs have expired.
"""

from __future__ import annotations

import getpass
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Final, cast

import botocore.exceptions

from .. import format as fmt
from .._io import SPOOL_THRESHOLD, as_utc
from ..engine import ObjectSummary
from ..errors import (
    BucketNotEmpty,
    BucketNotFound,
    DeltaGliderError,
    NotSupportedError,
    ObjectNotFound,
)
from ..storage.base import ObjectInfo
from .core import ClientCore
from .shapes import metadata_response

__all__ = ["TEMP_PREFIX", "BucketMixin"]

#: Where the temporary plain copies behind presigned URLs of deltas live.
TEMP_PREFIX: Final = fmt.RESERVED_PREFIX + "tmp/"
#: Metadata key of a temporary copy: when its presigned URL expires (ISO 8601 UTC), as
#: :func:`deltaglider.format.temp_copy_metadata` writes it.
EXPIRES_AT: Final = "dg-expires-at"
#: SigV4 presigned URLs live at most 7 days: a copy older than this, whose expiry is unknown,
#: can no longer be fetched by anyone.
_MAX_URL_LIFETIME: Final = timedelta(days=7)

_PRESIGNABLE: Final = {"get_object": "GetObject", "head_object": "HeadObject"}
#: Parameters of a presigned GET/HEAD that mean the same on the rebuilt copy of a delta.
_PRESIGN_PARAMS: Final = frozenset(
    {
        "Bucket",
        "Key",
        "Range",
        "ResponseCacheControl",
        "ResponseContentDisposition",
        "ResponseContentEncoding",
        "ResponseContentLanguage",
        "ResponseContentType",
        "ResponseExpires",
        "ExpectedBucketOwner",
        "RequestPayer",
        "ChecksumMode",
    }
)
#: Parameters that hold for a stored object as is, not for a copy (its ETag, date, parts and
#: encryption are its own).
_DIRECT_ONLY_PARAMS: Final = frozenset(
    {
        "IfMatch",
        "IfNoneMatch",
        "IfModifiedSince",
        "IfUnmodifiedSince",
        "PartNumber",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
    }
)
_MAX_KEY_BYTES: Final = 1024


def _owner() -> dict[str, str]:
    """The ``Owner`` of a local store's listing: the user running the process."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return {"DisplayName": name, "ID": name}


def _expired(info: ObjectInfo, now: datetime) -> bool:
    """Whether a temporary copy's presigned URL has expired."""
    raw = (info.metadata or {}).get(EXPIRES_AT, "")
    expires = fmt.parse_time(raw) if raw else None
    if expires is not None:
        return expires <= now
    if info.last_modified is None:
        return False  # nothing tells when: kept (expired_only=False removes it)
    return as_utc(info.last_modified) + _MAX_URL_LIFETIME <= now


def _expiry(info: ObjectInfo | None) -> str | None:
    """When a temporary copy's URL expires, as recorded with it (None: not recorded)."""
    return (info.metadata or {}).get(EXPIRES_AT) if info is not None else None


def _temp_key(key: str) -> str:
    """A fresh key for a rebuilt copy of ``key``; it ends in the object's own name, so a
    browser saves the download under that name."""
    folder = f"{TEMP_PREFIX}{secrets.token_hex(16)}/"
    name = fmt.basename(key)
    if len((folder + name).encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        name = "object"
    return folder + name


class BucketMixin(ClientCore):
    """Buckets, ACLs and presigned URLs of :class:`~deltaglider.client.DeltaGliderClient`."""

    @contextmanager
    def _local_bucket_op(self, operation: str) -> Iterator[None]:
        """:meth:`_s3` for bucket operations on a local store, where an invalid bucket name
        comes as BucketNotFound with the code InvalidBucketName."""
        with self._s3(operation):
            try:
                yield
            except BucketNotFound as exc:
                if exc.code != "InvalidBucketName":
                    raise
                raise self._error(
                    operation, "InvalidBucketName", "The specified bucket is not valid.", 400
                ) from exc

    def _local_bucket_exists(self, operation: str, bucket: str, other: Mapping[str, Any]) -> None:
        """On a local store: the bucket is there (else the ClientError of ``operation``), and no
        parameter was given that the store cannot honour."""
        self._refuse(operation, other, set())
        with self._local_bucket_op(operation):
            self.storage.head_bucket(bucket)

    def create_bucket(
        self,
        *,
        Bucket: str,
        CreateBucketConfiguration: Mapping[str, Any] | None = None,
        ACL: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """Creates a bucket (boto3's call over S3). Creating a bucket you own already succeeds
        (as the original DeltaGlider, and S3 in us-east-1): a program written for boto3 that
        catches ``BucketAlreadyOwnedByYou`` runs the same; one for the original does not
        fail. A bucket someone else owns still raises ``BucketAlreadyExists``."""
        try:
            return self._create_bucket(
                Bucket=Bucket, CreateBucketConfiguration=CreateBucketConfiguration, ACL=ACL, **other
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
        return {"Location": f"/{Bucket}", "ResponseMetadata": metadata_response()}

    def _create_bucket(
        self,
        *,
        Bucket: str,
        CreateBucketConfiguration: Mapping[str, Any] | None = None,
        ACL: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """The creation itself (boto3's call over S3). ``ObjectLockEnabledForBucket`` is refused:
        object lock turns on versioning, which deltaglider does not support."""
        if other.get("ObjectLockEnabledForBucket"):
            raise NotSupportedError(
                "CreateBucket",
                "ObjectLockEnabledForBucket",
                "object lock turns on versioning, which deltaglider does not support",
            )
        if self._boto is not None:
            kwargs = dict(other)
            if CreateBucketConfiguration is not None:
                kwargs["CreateBucketConfiguration"] = CreateBucketConfiguration
            if ACL is not None:
                kwargs["ACL"] = ACL
            response: dict[str, Any] = self._boto.create_bucket(Bucket=Bucket, **kwargs)
            return response
        self._refuse("CreateBucket", {**other, "ACL": ACL}, {"ObjectLockEnabledForBucket"})
        location = (CreateBucketConfiguration or {}).get("LocationConstraint")
        if set(CreateBucketConfiguration or {}) - {"LocationConstraint"}:
            raise NotSupportedError(
                "CreateBucket",
                "CreateBucketConfiguration",
                "a local store takes only a LocationConstraint",
            )
        with self._local_bucket_op("CreateBucket"):
            self.storage.create_bucket(Bucket)
            if location and location != "us-east-1":
                # A folder has no region; the one asked for is recorded and read back by
                # get_bucket_location, as S3 would answer it.
                cast(Any, self.storage).set_location(Bucket, str(location))
        return {"Location": f"/{Bucket}", "ResponseMetadata": metadata_response()}

    def delete_bucket(self, *, Bucket: str, **other: Any) -> dict[str, Any]:
        """Deletes a bucket (see :meth:`_delete_bucket`). Deleting a bucket that is not there
        succeeds (204), as the original DeltaGlider's: a program written for boto3 that
        catches ``NoSuchBucket`` runs the same."""
        try:
            return self._delete_bucket(Bucket=Bucket, **other)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
        return {"ResponseMetadata": metadata_response(204)}

    def _delete_bucket(self, *, Bucket: str, **other: Any) -> dict[str, Any]:
        """Deletes a bucket. If the store says it is not empty but everything left in it is
        deltaglider's own (``.deltaglider/``, references no delta uses), that is removed and
        the bucket deleted; a bucket with user objects still gives ``BucketNotEmpty``."""
        if self._boto is not None:
            try:
                response: dict[str, Any] = self._boto.delete_bucket(Bucket=Bucket, **other)
                return response
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                    raise
                with self._s3("DeleteBucket"):
                    cleared = self._store.clear_own_objects(Bucket)
                if not cleared:
                    raise
            response = self._boto.delete_bucket(Bucket=Bucket, **other)
            return response
        self._refuse("DeleteBucket", other, set())
        with self._local_bucket_op("DeleteBucket"):
            try:
                self.storage.delete_bucket(Bucket)
            except BucketNotEmpty:
                if not self._store.clear_own_objects(Bucket):
                    raise
                self.storage.delete_bucket(Bucket)
        return {"ResponseMetadata": metadata_response(204)}

    def head_bucket(self, *, Bucket: str, **other: Any) -> dict[str, Any]:
        """Whether the bucket exists and is accessible (ClientError ``404``/``403`` if not)."""
        if self._boto is not None:
            response: dict[str, Any] = self._boto.head_bucket(Bucket=Bucket, **other)
            return response
        self._local_bucket_exists("HeadBucket", Bucket, other)
        return {"ResponseMetadata": metadata_response()}

    def list_buckets(self, **params: Any) -> dict[str, Any]:
        """The buckets (boto3's call over S3; ``Prefix``, ``MaxBuckets`` and
        ``ContinuationToken`` on a local store too)."""
        if self._boto is not None:
            response: dict[str, Any] = self._boto.list_buckets(**params)
            return response
        prefix = params.pop("Prefix", None)
        limit = params.pop("MaxBuckets", None)
        after = params.pop("ContinuationToken", None)
        self._refuse("ListBuckets", params, set())
        with self._s3("ListBuckets"):
            found = [
                b
                for b in sorted(self.storage.list_buckets(), key=lambda b: b.name)
                if (not prefix or b.name.startswith(prefix)) and (not after or b.name > after)
            ]
        page = found[:limit] if limit else found
        response = {
            "Buckets": [{"Name": b.name, "CreationDate": b.created} for b in page],
            "Owner": _owner(),
            "ResponseMetadata": metadata_response(),
        }
        if prefix is not None:
            response["Prefix"] = prefix
        if len(page) < len(found):
            response["ContinuationToken"] = page[-1].name
        return response

    def get_bucket_location(self, *, Bucket: str, **other: Any) -> dict[str, Any]:
        """The bucket's region constraint (None for us-east-1; on a local store, the one it
        was created with)."""
        if self._boto is not None:
            response: dict[str, Any] = self._boto.get_bucket_location(Bucket=Bucket, **other)
            return response
        self._local_bucket_exists("GetBucketLocation", Bucket, other)
        with self._local_bucket_op("GetBucketLocation"):
            location = cast(Any, self.storage).location(Bucket)
        return {"LocationConstraint": location, "ResponseMetadata": metadata_response()}

    def put_bucket_acl(self, **params: Any) -> dict[str, Any]:
        """boto3's call (S3 only: a local store has no ACLs)."""
        boto = self._require_boto("PutBucketAcl")
        response: dict[str, Any] = boto.put_bucket_acl(**params)
        return response

    def get_bucket_acl(self, **params: Any) -> dict[str, Any]:
        """boto3's call (S3 only: a local store has no ACLs)."""
        boto = self._require_boto("GetBucketAcl")
        response: dict[str, Any] = boto.get_bucket_acl(**params)
        return response

    def generate_presigned_url(
        self,
        ClientMethod: str,
        Params: Mapping[str, Any] | None = None,
        ExpiresIn: int = 3600,
        HttpMethod: str | None = None,
    ) -> str:
        """A presigned URL for ``get_object`` or ``head_object`` of a logical object.

        A direct or foreign object is presigned as it is stored. A delta is rebuilt, verified
        and stored as a temporary plain copy under ``.deltaglider/tmp/``, which is presigned;
        the copy records when the URL expires, for :meth:`purge_temp_files`. Unlike boto3,
        this talks to the store (a HEAD); for a key with no object the URL is signed as boto3
        signs it (fetching it answers 404), a missing bucket or a refused HEAD raises.
        Presigned uploads are refused: they would store the bytes as they are, bypassing
        delta storage.
        """
        operation = _PRESIGNABLE.get(ClientMethod)
        if operation is None:
            why = (
                "a presigned upload would write the bytes as they are, bypassing delta storage"
                if ClientMethod in ("put_object", "upload_part", "create_multipart_upload")
                else "only get_object and head_object can be presigned"
            )
            raise NotSupportedError(f"generate_presigned_url({ClientMethod!r})", why=why)
        boto = self._require_boto("generate_presigned_url")
        params = dict(Params or {})
        if "Bucket" not in params or "Key" not in params:
            # boto3's own error (ParamValidationError) for the missing parameter.
            url: str = boto.generate_presigned_url(
                ClientMethod, Params=params, ExpiresIn=ExpiresIn, HttpMethod=HttpMethod
            )
            return url
        if HttpMethod is not None and HttpMethod.upper() not in ("GET", "HEAD"):
            raise NotSupportedError(
                f"generate_presigned_url({ClientMethod!r})", "HttpMethod", "only GET and HEAD"
            )
        self._refuse(operation, params, set(_PRESIGN_PARAMS | _DIRECT_ONLY_PARAMS))
        bucket, key = str(params["Bucket"]), str(params["Key"])
        with self._s3(operation):
            try:
                head: ObjectSummary | None = self._store.head(bucket, key)
            except ObjectNotFound:
                # No object (yet): the URL of the key as boto3 signs it, answering 404 until
                # an object is stored, as boto3's would. (A missing bucket raises.)
                head = None
        if head is None or not head.is_delta:
            if head is not None:
                params["Key"] = head.physical_key
            url = boto.generate_presigned_url(
                ClientMethod, Params=params, ExpiresIn=ExpiresIn, HttpMethod=HttpMethod
            )
            return url
        for name in params:
            if name in _DIRECT_ONLY_PARAMS:
                raise NotSupportedError(
                    operation,
                    name,
                    "a delta is served from a rebuilt copy, whose ETag, date, parts and "
                    "encryption are its own",
                )
        params["Key"] = _temp_key(key)
        # Presigning is offline: done first, so bad parameters fail before anything is stored.
        url = boto.generate_presigned_url(
            ClientMethod, Params=params, ExpiresIn=ExpiresIn, HttpMethod=HttpMethod
        )
        with self._s3(operation):
            self._rehydrate(bucket, key, params["Key"], int(ExpiresIn))
        return url

    def _rehydrate(self, bucket: str, key: str, temp_key: str, expires_in: int) -> None:
        """Stores the object's verified bytes, plain, under ``temp_key``."""
        now = datetime.now(timezone.utc)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD) as spool:
            # Written whole and verified against the recorded sha256 before anything is stored.
            summary = self._store.get(bucket, key, spool)
            size = spool.tell()
            spool.seek(0)
            metadata = fmt.temp_copy_metadata(
                source_key=key,
                file_size=size,
                file_sha256=summary.sha256,
                expires=now + timedelta(seconds=expires_in),
                user=summary.metadata,
                created=now,
            )
            self.storage.put(
                bucket,
                temp_key,
                cast(BinaryIO, spool),
                size=size,
                metadata=metadata,
                content_type=summary.content_type,
            )

    def purge_temp_files(
        self, Bucket: str, *, dry_run: bool = False, expired_only: bool = True
    ) -> dict[str, Any]:
        """Removes the temporary copies made for presigned URLs (deltaglider's own; boto3 has
        no such call): those whose URL has expired, or all with ``expired_only=False``.

        Returns ``{"Deleted": n, "Bytes": n, "Kept": n, "Errors": [{"Key", "Code",
        "Message"}], "DryRun": bool, "Objects": [{"Key", "Size", "ExpiresAt"}]}``: ``Objects``
        are the copies removed (with ``dry_run``, those that would be: nothing is removed and
        the counts say what would be); ``ExpiresAt`` when their URL expired, as recorded (None
        when no expiry was recorded, or with ``expired_only=False``).
        """
        now = datetime.now(timezone.utc)
        with self._s3("PurgeTempFiles"):
            self.storage.head_bucket(Bucket)
            found = list(self.storage.iter_objects(Bucket, prefix=TEMP_PREFIX))
            heads: dict[str, ObjectInfo | None] = {}
            if expired_only and found:
                heads = self.storage.head_many(Bucket, [o.key for o in found])
                doomed = [
                    o for o in found if (h := heads.get(o.key)) is not None and _expired(h, now)
                ]
            else:
                doomed = found
            failures: dict[str, Exception] = {}
            if doomed and not dry_run:
                failures = self.storage.delete_many(Bucket, [o.key for o in doomed])
        errors = []
        for key, exc in failures.items():
            code = getattr(exc, "code", None) if isinstance(exc, DeltaGliderError) else None
            errors.append({"Key": key, "Code": code or "InternalError", "Message": str(exc)})
        deleted = [o for o in doomed if o.key not in failures]
        return {
            "Deleted": len(deleted),
            "Bytes": sum(o.size for o in deleted),
            "Kept": len(found) - len(doomed),
            "Errors": errors,
            "DryRun": dry_run,
            "Objects": [
                {"Key": o.key, "Size": o.size, "ExpiresAt": _expiry(heads.get(o.key))}
                for o in deleted
            ],
        }
