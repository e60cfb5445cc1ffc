"""The storage interface: what the engine needs from a store, and nothing of its policy.

A store moves bytes and metadata of *physical* objects. Two implementations: ``s3`` (any
S3-compatible service, through boto3) and ``local`` (a directory). Both raise the
:mod:`deltaglider.errors` storage exceptions, never a backend's own.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol

from ..errors import ObjectNotFound
from ..progress import Progress

__all__ = ["Body", "BucketInfo", "ListPage", "ObjectInfo", "Storage", "WriteOptions"]


@dataclass(frozen=True)
class WriteOptions:
    """S3's own options of a write (``--sse``, ``--storage-class``, ``--acl``...). A logical
    write applies them to every object it stores: the object the key maps to (a delta or a
    direct object) and the reference it creates, with its backup copy. A store that cannot
    honour one refuses the write before anything is stored."""

    #: ``AES256`` or ``aws:kms`` (S3's ServerSideEncryption).
    sse: str | None = None
    #: The KMS key of ``aws:kms`` (SSEKMSKeyId).
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    #: A canned ACL (``private``, ``public-read``...).
    acl: str | None = None
    cache_control: str | None = None
    content_encoding: str | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f) for f in self.__dataclass_fields__)

    def s3_args(self) -> dict[str, str]:
        """The PutObject / CreateMultipartUpload / CopyObject parameters."""
        names = {
            "sse": "ServerSideEncryption",
            "sse_kms_key_id": "SSEKMSKeyId",
            "storage_class": "StorageClass",
            "acl": "ACL",
            "cache_control": "CacheControl",
            "content_encoding": "ContentEncoding",
        }
        return {s3: str(getattr(self, ours)) for ours, s3 in names.items() if getattr(self, ours)}


@dataclass(frozen=True)
class ObjectInfo:
    """A physical object. ``metadata`` is None where the store did not return it (listings)."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    metadata: dict[str, str] | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class ListPage:
    """One page of a listing, in the store's (lexicographic) order."""

    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    #: Pass back as ``token`` for the next page; None when this was the last.
    next_token: str | None = None


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime | None = None


class Body(Protocol):
    """A readable stream of an object's bytes."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Storage(abc.ABC):
    """A place that holds buckets of objects with user metadata."""

    #: Whether create-only writes (``if_none_match``) are enforced atomically by the store.
    conditional_writes: bool = True

    @abc.abstractmethod
    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's size, etag, date, metadata and content type (ObjectNotFound if none)."""

    def head_or_none(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's info, or None when there is no such key. Unlike :meth:`head`, a missing
        bucket need not be told apart (stores may answer None for it too): a caller that needs
        to know asks :meth:`head_bucket`. It saves the request that a HEAD's bodyless 404
        would otherwise cost."""
        try:
            return self.head(bucket, key)
        except ObjectNotFound:
            return None

    def head_many(self, bucket: str, keys: Iterable[str]) -> dict[str, ObjectInfo | None]:
        """HEADs of many objects (None for a missing one); stores may run them concurrently."""
        out: dict[str, ObjectInfo | None] = {}
        for key in keys:
            try:
                out[key] = self.head(bucket, key)
            except ObjectNotFound:
                out[key] = None
        return out

    @abc.abstractmethod
    def get(
        self,
        bucket: str,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> tuple[ObjectInfo, Body]:
        """The object's info and its bytes from ``start`` to ``end`` (exclusive; None: the end).

        ``ObjectInfo.size`` is the size of the whole object.
        """

    @abc.abstractmethod
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
        """Writes the object whole or not at all (readers never see a partial object).

        ``if_none_match``: only if no object has the key (PreconditionFailed otherwise);
        ``if_match``: only if the current object has this etag.
        ``progress``: called with the bytes sent since its last call, as they are sent (the
        increments of :mod:`deltaglider.progress`; parts sent in parallel report from their
        threads).
        ``tagging``: S3 object tags (``a=1&b=2``) written with the object, in the same request;
        a store without tags refuses it (StorageError, code ``NotImplemented``) before writing.
        ``options``: S3's own options of the write (:class:`WriteOptions`); refused likewise
        by a store that has none.
        """

    @abc.abstractmethod
    def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Removes the object; a missing object is not an error (as in S3)."""

    def delete_many(self, bucket: str, keys: Iterable[str]) -> dict[str, Exception]:
        """Removes several objects; returns the failures by key."""
        errors: dict[str, Exception] = {}
        for key in keys:
            try:
                self.delete(bucket, key)
            except Exception as exc:
                errors[key] = exc
        return errors

    @abc.abstractmethod
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
        """One page of the keys after ``start_after`` (or ``token``) with ``prefix``."""

    def iter_objects(
        self, bucket: str, *, prefix: str = "", start_after: str = ""
    ) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, all pages."""
        token: str | None = None
        while True:
            page = self.list_objects(bucket, prefix=prefix, start_after=start_after, token=token)
            yield from page.objects
            if not page.next_token:
                return
            token = page.next_token

    @abc.abstractmethod
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
        """Server-side copy; ``metadata`` replaces the source's when given; ``options`` as
        for :meth:`put`."""

    @abc.abstractmethod
    def create_bucket(self, bucket: str) -> None: ...

    @abc.abstractmethod
    def delete_bucket(self, bucket: str) -> None: ...

    @abc.abstractmethod
    def head_bucket(self, bucket: str) -> None:
        """Returns if the bucket exists and is accessible (BucketNotFound, AccessDenied)."""

    @abc.abstractmethod
    def list_buckets(self) -> list[BucketInfo]: ...

    def close(self) -> None:
        """Releases connections and threads."""

    def describe(self) -> str:
        """Where this store is, for messages."""
        return type(self).__name__
