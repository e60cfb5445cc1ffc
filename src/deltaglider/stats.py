"""Bucket statistics: how many objects, what they would take as plain files (logical bytes),
what they take in the store (stored bytes), and the savings, per deltaspace and in all.

One physical listing gives almost everything: every object's stored size, and which keys are
deltas, direct objects and references. What a listing cannot give is a delta's *original* size
(``dg-file-size``, in its metadata), so the accuracy modes differ only in how many deltas they
HEAD:

- ``quick``: none; a delta counts as the size of its deltaspace's reference (the releases of a
  series are about the same size, and the reference is one of them).
- ``sampled``: up to :data:`SAMPLES` deltas per deltaspace, spread across it; the others count
  as the mean of the sampled sizes.
- ``detailed``: every delta (concurrently, through :meth:`Storage.head_many`); exact.

A deltaspace whose deltas were all measured is exact whatever the mode, and so is one without
deltas.

The result cache. HEADs are what cost; the listing is cheap and is made every time. The sampled
and detailed results are kept in the bucket, in ``.deltaglider/stats_{mode}.json`` for a whole
bucket (the original DeltaGlider's name for it) or ``.deltaglider/stats/{h}_{mode}.json`` for a
prefix (``h``: the first 16 hex digits of the prefix's sha256). Each deltaspace's figures are
stored with a sha256 *fingerprint* of its listed ``(key, etag, size, date)``, and reused only
while the listing still gives the same fingerprint: a change in one deltaspace (an upload, a
removal, an object replaced by one of the same size) recomputes that deltaspace alone. The
quick mode makes no HEADs, so it has nothing to cache and neither reads nor writes one.

A report, not an engine stage. ``stats`` and :mod:`deltaglider.analyze` are read models of the
physical layout (as restic's checker reads the repository): they may read the storage directly
(listings, HEADs, GETs), because the figures they give are of physical objects, which the
engine's logical listing hides; they never write an object the engine owns, and whatever is
engine *policy* they take from the engine's seams instead of re-implementing it. ``stats``
writes only its own cache documents under ``.deltaglider/`` (with
:func:`deltaglider.format.internal_metadata`). It is given a :class:`DeltaStore` and reads its
``storage``: the deltaspace layout and the metadata it reads are the format's
(:mod:`deltaglider.format`), not the engine's. The measuring (listing by deltaspace, HEADs,
each deltaspace's figures) is in :mod:`deltaglider._reports.measure`; this module keeps the
results, the cache and the orchestration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

from . import format as fmt
from ._reports.measure import (
    MODES,
    SAMPLES,
    DeltaspaceStats,
    Listing,
    Mode,
    Savings,
    deltas_to_head,
    head_all,
    list_layout,
    measure,
)
from .engine import DeltaStore
from .errors import ObjectNotFound, StorageError
from .progress import ProgressSink
from .storage.base import Storage

__all__ = [
    "CACHE_VERSION",
    "MODES",
    "SAMPLES",
    "BucketStats",
    "CacheInfo",
    "DeltaspaceStats",
    "Mode",
    "bucket_stats",
    "cache_key",
]

log = logging.getLogger("deltaglider")

#: The cache document's format. The original DeltaGlider writes "1.0" (and never reads its
#: own): neither takes the other's document for valid.
CACHE_VERSION = 2
#: A cache document larger than this is not read (it would be a stranger's).
_MAX_CACHE_BYTES = 256 << 20


CacheStatus = Literal["hit", "partial", "miss", "refresh", "disabled", "unused"]


@dataclass(frozen=True)
class CacheInfo:
    """What the result cache did.

    ``status``: ``hit`` (every deltaspace from the cache), ``partial`` (some), ``miss``,
    ``refresh`` (not read, as asked), ``disabled`` (neither read nor written, as asked) or
    ``unused`` (quick mode: nothing worth caching).
    """

    status: CacheStatus
    key: str | None = None
    written: bool = False
    #: Deltaspaces taken from the cache, and computed.
    reused: int = 0
    computed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "key": self.key,
            "written": self.written,
            "reused": self.reused,
            "computed": self.computed,
        }


@dataclass(frozen=True)
class BucketStats(Savings):
    """Statistics of a bucket or of a prefix in it. ``deltaspaces`` is sorted by stored bytes,
    largest first."""

    bucket: str
    prefix: str
    mode: Mode
    objects: int
    deltas: int
    direct: int
    references: int
    orphans: int
    logical_bytes: int
    stored_bytes: int
    delta_bytes: int
    direct_bytes: int
    reference_bytes: int
    exact: bool
    #: Objects under ``.deltaglider/`` (deltaglider's own bookkeeping): in none of the above.
    internal_objects: int
    internal_bytes: int
    #: HEAD requests this run made.
    heads: int
    #: When the figures were computed (earlier than now when they all came from the cache).
    computed_at: datetime
    cache: CacheInfo
    deltaspaces: tuple[DeltaspaceStats, ...] = ()
    warnings: tuple[str, ...] = ()

    # The original DeltaGlider's names for these figures (its BucketStats), for programs
    # written against it: the same numbers, no other counting.

    @property
    def object_count(self) -> int:
        """The original's name of :attr:`objects` (deltas plus direct objects)."""
        return self.objects

    @property
    def total_size(self) -> int:
        """The original's name of :attr:`logical_bytes`."""
        return self.logical_bytes

    @property
    def compressed_size(self) -> int:
        """The original's name of :attr:`stored_bytes` (references included)."""
        return self.stored_bytes

    @property
    def space_saved(self) -> int:
        """:attr:`saved_bytes`, never below 0 (as the original reports it)."""
        return max(self.saved_bytes, 0)

    @property
    def average_compression_ratio(self) -> float:
        """The fraction of the logical bytes saved (:attr:`space_saved` over
        :attr:`logical_bytes`), as the original computes it; 0.0 for an empty bucket."""
        return self.space_saved / self.logical_bytes if self.logical_bytes > 0 else 0.0

    @property
    def delta_objects(self) -> int:
        """The original's name of :attr:`deltas`."""
        return self.deltas

    @property
    def direct_objects(self) -> int:
        """The original's name of :attr:`direct`."""
        return self.direct

    @property
    def object_limit_reached(self) -> bool:
        """Always False: every object is counted (the original stopped at a limit)."""
        return False

    def original_fields(self) -> dict[str, Any]:
        """The original's ``stats --json`` fields, under its names."""
        return {
            "bucket": self.bucket,
            "object_count": self.object_count,
            "total_size": self.total_size,
            "compressed_size": self.compressed_size,
            "space_saved": self.space_saved,
            "average_compression_ratio": self.average_compression_ratio,
            "delta_objects": self.delta_objects,
            "direct_objects": self.direct_objects,
            "object_limit_reached": self.object_limit_reached,
        }

    def to_dict(self) -> dict[str, Any]:
        """Ours and, beside them, the original's fields (:meth:`original_fields`)."""
        return {
            **self.original_fields(),
            "bucket": self.bucket,
            "prefix": self.prefix,
            "mode": self.mode,
            "exact": self.exact,
            "objects": self.objects,
            "deltas": self.deltas,
            "direct": self.direct,
            "references": self.references,
            "orphans": self.orphans,
            **self._bytes_dict(),
            "internal_objects": self.internal_objects,
            "internal_bytes": self.internal_bytes,
            "heads": self.heads,
            "computed_at": fmt.format_time(self.computed_at),
            "cache": self.cache.to_dict(),
            "deltaspaces": [d.to_dict() for d in self.deltaspaces],
            "warnings": list(self.warnings),
        }


def cache_key(prefix: str, mode: Mode) -> str:
    """Where the result cache of ``prefix`` ("" for the whole bucket) is kept."""
    if not prefix:
        return f"{fmt.RESERVED_PREFIX}stats_{mode}.json"
    digest = hashlib.sha256(prefix.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{fmt.RESERVED_PREFIX}stats/{digest}_{mode}.json"


# The cache.


def _read_cache(
    storage: Storage, bucket: str, key: str, prefix: str, mode: Mode
) -> tuple[str | None, datetime | None, dict[str, DeltaspaceStats]]:
    """The cache's fingerprint of the whole listing, when it was computed, and its
    deltaspaces; nothing from a document that is missing, unreadable or not ours."""
    nothing: tuple[str | None, datetime | None, dict[str, DeltaspaceStats]] = (None, None, {})
    try:
        info, body = storage.get(bucket, key)
    except ObjectNotFound:
        return nothing
    try:
        if info.size > _MAX_CACHE_BYTES:
            return nothing
        raw = body.read()
    finally:
        body.close()
    try:
        doc = json.loads(raw)
        if (
            doc.get("version") != CACHE_VERSION
            or doc.get("mode") != mode
            or doc.get("prefix") != prefix
        ):
            return nothing
        fingerprint = doc["validation"]["fingerprint"]
        computed = fmt.parse_time(doc["computed_at"])
        spaces = {}
        for entry in doc["stats"]["deltaspaces"]:
            space = DeltaspaceStats.from_dict(entry)
            spaces[space.prefix] = space
        if not isinstance(fingerprint, str):
            return nothing
        return fingerprint, computed, spaces
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.debug("ignoring s3://%s/%s: %s", bucket, key, exc)
        return nothing


def _cache_document(stats: BucketStats, listing: Listing) -> bytes:
    doc = {
        "version": CACHE_VERSION,
        "tool": fmt.TOOL,
        "mode": stats.mode,
        "bucket": stats.bucket,
        "prefix": stats.prefix,
        "computed_at": fmt.format_time(stats.computed_at),
        # The listing the figures are valid for: object count and stored bytes as the
        # original keeps them, and a fingerprint (count and size alone miss an object replaced
        # by one of the same size). Objects under .deltaglider/ are not part of it.
        "validation": {
            "object_count": listing.count,
            "stored_bytes": listing.stored,
            "fingerprint": listing.hasher.hexdigest(),
        },
        "stats": {
            k: v for k, v in stats.to_dict().items() if k not in ("cache", "heads", "warnings")
        },
    }
    return json.dumps(doc, indent=1, sort_keys=False).encode()


def _write_cache(
    storage: Storage, stats: BucketStats, listing: Listing, warnings: list[str]
) -> bool:
    """Stores the cache document of ``stats``; False, and a warning, if it cannot."""
    key = cache_key(stats.prefix, stats.mode)
    try:
        body = _cache_document(stats, listing)
        storage.put(
            stats.bucket,
            key,
            body,
            size=len(body),
            metadata=fmt.internal_metadata(),
            content_type="application/json",
        )
    except (StorageError, OSError) as exc:
        warnings.append(f"could not write the stats cache s3://{stats.bucket}/{key}: {exc}")
        return False
    return True


def _cache_status(
    mode: Mode, cache: bool, refresh: bool, *, whole_hit: bool, reused: bool
) -> CacheStatus:
    """What the cache did (see :class:`CacheInfo`)."""
    if mode == "quick":
        return "unused"
    if not cache:
        return "disabled"
    if refresh:
        return "refresh"
    if whole_hit:
        return "hit"
    return "partial" if reused else "miss"


# The whole.


def bucket_stats(
    store: DeltaStore,
    bucket: str,
    prefix: str = "",
    *,
    mode: Mode = "quick",
    cache: bool = True,
    refresh: bool = False,
    progress: ProgressSink | None = None,
) -> BucketStats:
    """Statistics of ``bucket``, or of the keys under ``prefix`` (taken as given, as S3 takes a
    prefix: pass ``"releases/"`` for a folder).

    ``mode``: ``quick`` (no HEADs; estimates), ``sampled`` (a few HEADs per deltaspace) or
    ``detailed`` (a HEAD per delta; exact). ``cache``: read and write the result cache in the
    bucket (sampled and detailed); ``refresh``: do not read it, but write it. A cache that
    cannot be written is a warning, not an error. ``progress`` is noted the count of objects
    listed (every thousand), then told the HEADs to make (``add_total(files=n)``) and each one
    done (``file_done``). Raises BucketNotFound for a missing bucket.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    storage = store.storage
    listing, heads_made = list_layout(storage, bucket, prefix, progress)
    warnings: list[str] = []
    key = cache_key(prefix, mode)
    cached: dict[str, DeltaspaceStats] = {}
    cached_print: str | None = None
    cached_at: datetime | None = None
    use_cache = cache and mode != "quick"
    if use_cache and not refresh:
        try:
            cached_print, cached_at, cached = _read_cache(storage, bucket, key, prefix, mode)
        except StorageError as exc:
            warnings.append(f"could not read the stats cache s3://{bucket}/{key}: {exc}")
    reused: dict[str, DeltaspaceStats] = {}
    to_head: list[str] = []
    for space in listing.spaces.values():
        entry = cached.get(space.prefix)
        if entry is not None and entry.fingerprint == space.hasher.hexdigest():
            reused[space.prefix] = entry
        else:
            to_head.extend(d.key for d in deltas_to_head(space.deltas, mode))
    heads = head_all(storage, bucket, to_head, progress)
    heads_made += len(heads)
    spaces = [reused.get(s.prefix) or measure(bucket, s, heads) for s in listing.spaces.values()]
    spaces.sort(key=lambda s: (-s.stored_bytes, s.prefix))
    computed = len(spaces) - len(reused)
    whole_hit = cached_print == listing.hasher.hexdigest() and not computed
    status = _cache_status(mode, cache, refresh, whole_hit=whole_hit, reused=bool(reused))
    now = datetime.now(timezone.utc)
    stats = BucketStats(
        bucket=bucket,
        prefix=prefix,
        mode=mode,
        objects=sum(s.objects for s in spaces),
        deltas=sum(s.deltas for s in spaces),
        direct=sum(s.direct for s in spaces),
        references=sum(s.has_reference for s in spaces),
        orphans=sum(s.orphan for s in spaces),
        logical_bytes=sum(s.logical_bytes for s in spaces),
        stored_bytes=sum(s.stored_bytes for s in spaces),
        delta_bytes=sum(s.delta_bytes for s in spaces),
        direct_bytes=sum(s.direct_bytes for s in spaces),
        reference_bytes=sum(s.reference_bytes for s in spaces),
        exact=all(s.exact for s in spaces),
        internal_objects=listing.internal_objects,
        internal_bytes=listing.internal_bytes,
        heads=heads_made,
        computed_at=cached_at if status == "hit" and cached_at is not None else now,
        cache=CacheInfo(status, key if use_cache else None, reused=len(reused), computed=computed),
        deltaspaces=tuple(spaces),
    )
    written = use_cache and status != "hit" and _write_cache(storage, stats, listing, warnings)
    all_warnings = [w for s in spaces for w in s.warnings] + warnings
    return replace(
        stats,
        cache=replace(stats.cache, written=written),
        warnings=tuple(all_warnings),
    )
