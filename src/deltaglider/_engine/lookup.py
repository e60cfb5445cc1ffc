"""Which physical object holds a logical key, and what the engine may believe about it.

A key has two stored forms: ``key.delta`` and ``key`` (``key.direct`` for reserved names).
Normally one exists; when both do (a concurrent writer, or the original DeltaGlider), the newer
is the object, by one rule (:func:`newer`) that the read path and the listing share. Finding
them costs two requests, sent at once: the likelier form is asked for first (GET when reading,
HEAD otherwise) while the other is HEADed.

Nothing here writes or deletes: the older form found beside the newer is *returned*, and the
engine's face hands it to cleanup.

One builder (:func:`summarize`) turns what the store said about a physical object into the
logical :class:`~.model.ObjectSummary`, from a HEAD or GET (with metadata) or from a listing
(without: only the name tells a delta, whose logical size is then unknown).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, NoReturn

from .. import format as fmt
from .._executor import Pool
from ..config import Config
from ..errors import InvalidRange, ObjectNotFound, StorageError
from ..storage.base import ObjectInfo, Storage
from .model import ObjectSummary, log

__all__ = ["Found", "Lookup", "looks_cut", "newer", "summarize", "with_logical_size"]


class Found:
    """The object holding a logical key (``key``: the one asked for, or the object a physical
    ``.delta`` name given instead stands for), as ``info``; and the older form of it found
    beside it, if any (``older``: for cleanup, removed only if unchanged since)."""

    __slots__ = ("info", "key", "older")

    def __init__(self, key: str, info: ObjectInfo, older: ObjectInfo | None) -> None:
        self.key = key
        self.info = info
        self.older = older


def newer(a: ObjectInfo, b: ObjectInfo) -> bool:
    """Whether ``a`` was written after ``b``: the store's clock first, to the second (it is the
    same for every writer; a HEAD's date has no finer grain), then the creation time deltaglider
    recorded, within the same second, then the delta. ``a`` and ``b`` must carry metadata
    (from a HEAD or a GET) when they fall in the same second."""

    def when(info: ObjectInfo) -> tuple[float, float]:
        created = fmt.parse_metadata(info.metadata or {}, info.key).created_at
        return (_second(info), created.timestamp() if created else 0.0)

    ta, tb = when(a), when(b)
    if ta != tb:
        return ta > tb
    return a.key.endswith(fmt.DELTA_SUFFIX)


def _second(info: ObjectInfo) -> float:
    return math.floor(info.last_modified.timestamp()) if info.last_modified else 0.0


def looks_cut(info: ObjectInfo) -> bool:
    """Whether a HEAD's answer for a ``.delta`` or a ``reference.bin`` lacks the metadata of
    what deltaglider stores under that name (none, or only some of it: a cut answer)."""
    named = fmt.physical(info.key).kind
    if named not in ("delta", "reference"):
        return False
    return fmt.parse_metadata(info.metadata or {}, info.key).kind != named


def summarize(bucket: str, key: str, info: ObjectInfo) -> ObjectSummary:
    """The logical object ``key`` held by the physical object ``info``. From a listing
    (``info.metadata`` None) only the name says whether it is a delta, and a delta's logical
    size is None."""
    if info.metadata is None:
        listed_delta = fmt.physical(info.key).kind == "delta"
        return ObjectSummary(
            bucket=bucket,
            key=key,
            size=None if listed_delta else info.size,
            stored_size=info.size,
            last_modified=info.last_modified,
            etag=info.etag,
            is_delta=listed_delta,
            physical_key=info.key,
            kind="delta" if listed_delta else "direct",
        )
    meta = fmt.parse_metadata(info.metadata, info.key)
    is_delta = (
        info.key.endswith(fmt.DELTA_SUFFIX)
        and meta.kind == "delta"
        and info.key == fmt.delta_key(key)
    )
    return ObjectSummary(
        bucket=bucket,
        key=key,
        size=meta.file_size if is_delta else info.size,
        stored_size=info.size,
        last_modified=info.last_modified,
        etag=info.etag,
        is_delta=is_delta,
        physical_key=info.key,
        content_type=info.content_type,
        metadata=meta.user,
        sha256=meta.file_sha256,
        ref_key=meta.ref_key if is_delta else None,
        ref_sha256=meta.ref_sha256 if is_delta else None,
        kind="delta" if is_delta else ("foreign" if meta.kind == "foreign" else "direct"),
    )


def with_logical_size(listed: ObjectSummary, head: ObjectInfo) -> ObjectSummary:
    """A listed delta completed by its HEAD (logical size, sha256, content type, metadata);
    the listing's date, ETag and stored size stay (a listing's date is the finer)."""
    full = summarize(listed.bucket, listed.key, head)
    return replace(
        full,
        stored_size=listed.stored_size,
        last_modified=listed.last_modified,
        etag=listed.etag,
    )


class Lookup:
    """Finds the physical object holding a key (see the module's notes)."""

    def __init__(self, storage: Storage, config: Config, requests: Pool) -> None:
        self._storage = storage
        self._config = config
        self._requests = requests

    def candidates(self, key: str) -> tuple[str, str]:
        """Physical keys of ``key``: the likelier stored form first."""
        if self._config.is_delta_candidate(key):
            return fmt.delta_key(key), fmt.direct_key(key)
        return fmt.direct_key(key), fmt.delta_key(key)

    def head_or_none(self, bucket: str, physical_key: str) -> ObjectInfo | None:
        """The physical object's info, None if there is none (or no bucket: callers that must
        tell a missing bucket apart ask the store, on their not-found path only)."""
        info = self._storage.head_or_none(bucket, physical_key)
        return None if info is None else self.trusted(bucket, info)

    def trusted(self, bucket: str, info: ObjectInfo) -> ObjectInfo:
        """``info`` from a HEAD, or, for an object named as deltaglider names its own (a
        ``.delta`` or a ``reference.bin``) that came without the metadata deltaglider writes
        there (none of it, or only part), the info of a one-byte GET of it. A HEAD has no body
        to prove its headers arrived whole: a connection cut inside them gives an answer with
        part of the metadata, which would make a delta look like a foreign or direct object
        (its stored size taken for its size) and a reference like none. A GET's headers are
        believed only once its body has begun."""
        if not looks_cut(info):
            return info
        try:
            got, body = self._storage.get(bucket, info.key, start=0, end=1)
        except InvalidRange:
            return info  # an empty object: nothing deltaglider writes
        try:
            first = body.read(1)
        finally:
            body.close()
        if not first:
            raise StorageError(
                f"s3://{bucket}/{info.key}: the answer ended before its body",
                code="IncompleteBody",
                bucket=bucket,
                key=info.key,
            )
        if got.metadata != info.metadata:
            log.debug("s3://%s/%s: the HEAD's answer lacked metadata its GET has", bucket, info.key)
        return got

    def resolve(self, bucket: str, key: str) -> Found:
        """The physical object that holds ``key`` now (HEADs both stored forms at once).

        A key that names no object but is the physical name of a delta (``app.zip.delta``,
        as the original DeltaGlider prints it after an upload) stands for the object that
        delta holds (``app.zip``): the returned ``Found.key``. Asked only on the not-found
        path: two more HEADs there, none on the others."""
        fmt.check_key(key)
        first, second = self.candidates(key)
        other = self._requests.submit(self.head_or_none, bucket, second)
        try:
            a = self.head_or_none(bucket, first)
        finally:
            b = other.result()
        if a is None and b is None:
            aliased = self.aliased(bucket, key)
            if aliased is not None:
                return aliased
        return self._choose(bucket, key, a, b)

    def aliased(self, bucket: str, key: str) -> Found | None:
        """What ``key`` stands for when it is the physical name of the delta that holds a
        logical object (``x.delta`` for ``x``), else None. Only a delta that is the object's
        current form counts: an older twin beside a newer direct ``x`` is no name of ``x``."""
        if not key.endswith(fmt.DELTA_SUFFIX) or key.startswith(fmt.RESERVED_PREFIX):
            return None
        logical = key[: -len(fmt.DELTA_SUFFIX)]
        if not logical or logical.endswith("/") or fmt.basename(logical) == fmt.REFERENCE_NAME:
            return None
        if fmt.delta_key(logical) != key:
            return None  # a name the format escapes (x.delta.delta): not a delta's
        try:
            found = self.resolve(bucket, logical)
        except ObjectNotFound:
            return None
        return found if found.info.key == key else None

    def open(self, bucket: str, key: str) -> tuple[Found, Any]:
        """GETs the likelier stored form while HEADing the other (2 requests for the common
        case); returns what holds the key and its body, open."""
        fmt.check_key(key)
        first, second = self.candidates(key)
        other = self._requests.submit(self.head_or_none, bucket, second)
        body = None
        try:
            try:
                info, body = self._storage.get(bucket, first)
            except ObjectNotFound:
                info = None
            except StorageError:
                # Refused for the request itself (a key the store will not take, no access):
                # the HEAD of the other form, sent beside it, says so as head() says it, so
                # that looking at a key and reading it fail alike.
                other.result()
                raise
            b = other.result()
        except BaseException:
            if body is not None:
                body.close()
            raise
        if info is None and b is None:
            aliased = self.aliased(bucket, key)
            if aliased is not None:
                got, body = self._storage.get(bucket, aliased.info.key)
                return Found(aliased.key, got, aliased.older), body
        # The GET's 404 named the missing key (a missing bucket raised): no need to ask.
        found = self._choose(bucket, key, info, b, bucket_known=True)
        if info is not None and found.info.key == info.key:
            return Found(key, info, found.older), body
        if body is not None:
            body.close()
        got, body = self._storage.get(bucket, found.info.key)
        return Found(key, got, found.older), body

    def is_newer(self, bucket: str, a: ObjectInfo, b: ObjectInfo) -> bool:
        """:func:`newer` for infos that may come from a listing (no metadata): in the same
        second their creation times decide, so a listed one is HEADed then (rare: two forms of
        a key written within one second). A form gone meanwhile is the older."""
        if _second(a) != _second(b):
            return _second(a) > _second(b)
        full_a = a if a.metadata is not None else self.head_or_none(bucket, a.key)
        full_b = b if b.metadata is not None else self.head_or_none(bucket, b.key)
        if full_a is None or full_b is None:
            return full_b is None and full_a is not None
        return newer(full_a, full_b)

    def _choose(
        self,
        bucket: str,
        key: str,
        a: ObjectInfo | None,
        b: ObjectInfo | None,
        *,
        bucket_known: bool = False,
    ) -> Found:
        if a is None and b is None:
            self.not_found(bucket, key, bucket_known=bucket_known)
        if a is None or b is None:
            return Found(key, a or b, None)  # type: ignore[arg-type]
        return Found(key, a, b) if newer(a, b) else Found(key, b, a)

    def not_found(self, bucket: str, key: str, *, bucket_known: bool = False) -> NoReturn:
        """Raises ObjectNotFound for ``key``, or BucketNotFound when the bucket is missing
        (asked only here, on the not-found path, unless a GET's answer already told)."""
        if not bucket_known:
            self._storage.head_bucket(bucket)
        raise ObjectNotFound(
            f"s3://{bucket}/{key} does not exist",
            code="NoSuchKey",
            status=404,
            bucket=bucket,
            key=key,
        )
