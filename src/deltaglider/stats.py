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
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from . import format as fmt
from .engine import DeltaStore
from .errors import ObjectNotFound, StorageError
from .storage.base import ObjectInfo, Storage

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

Mode = Literal["quick", "sampled", "detailed"]
MODES: tuple[Mode, ...] = get_args(Mode)

#: Deltas HEADed per deltaspace in sampled mode.
SAMPLES = 3
#: The cache document's format. The original DeltaGlider writes "1.0" (and never reads its
#: own): neither takes the other's document for valid.
CACHE_VERSION = 2
#: Keys per head_many call: progress is reported between batches.
_HEAD_BATCH = 256
#: A cache document larger than this is not read (it would be a stranger's).
_MAX_CACHE_BYTES = 256 << 20
#: Keys named in one warning, at most.
_NAMED = 5

#: ``progress(phase, done, total)``: phase ``"list"`` (objects listed so far; total None) or
#: ``"head"`` (HEADs done so far, of ``total``).
ProgressFn = Callable[[str, int, int | None], None]


def _saving(logical: int, stored: int) -> float:
    """1 - stored/logical: negative when the store holds more than the files would take."""
    return 1.0 - stored / logical if logical > 0 else 0.0


@dataclass(frozen=True)
class DeltaspaceStats:
    """One deltaspace (``prefix``: the folder, ``""`` at the bucket root)."""

    prefix: str
    #: Deltas plus direct objects (references are not user objects).
    objects: int
    deltas: int
    direct: int
    logical_bytes: int
    #: Deltas, direct objects and the reference.
    stored_bytes: int
    delta_bytes: int
    direct_bytes: int
    reference_bytes: int
    has_reference: bool
    #: Whether ``logical_bytes`` is exact (every delta's original size was read).
    exact: bool
    #: Deltas whose original size was read from their metadata.
    measured: int
    #: sha256 over the listed (key, etag, size, date) of the deltaspace's objects, reference
    #: included.
    fingerprint: str
    warnings: tuple[str, ...] = ()

    @property
    def orphan(self) -> bool:
        """A reference that no delta uses."""
        return self.has_reference and self.deltas == 0

    @property
    def saved_bytes(self) -> int:
        return self.logical_bytes - self.stored_bytes

    @property
    def savings(self) -> float:
        return _saving(self.logical_bytes, self.stored_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deltaspace": self.prefix,
            "objects": self.objects,
            "deltas": self.deltas,
            "direct": self.direct,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "saved_bytes": self.saved_bytes,
            "savings": round(self.savings, 6),
            "delta_bytes": self.delta_bytes,
            "direct_bytes": self.direct_bytes,
            "reference_bytes": self.reference_bytes,
            "has_reference": self.has_reference,
            "orphan": self.orphan,
            "exact": self.exact,
            "measured": self.measured,
            "fingerprint": self.fingerprint,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeltaspaceStats:
        """Reads :meth:`to_dict`'s output back; ValueError if anything is off."""
        ints = (
            "objects", "deltas", "direct", "logical_bytes", "stored_bytes", "delta_bytes",
            "direct_bytes", "reference_bytes", "measured",
        )  # fmt: skip
        values: dict[str, Any] = {}
        for name in ints:
            value = data.get(name)
            if type(value) is not int or value < 0:
                raise ValueError(f"bad {name}")
            values[name] = value
        for name in ("has_reference", "exact"):
            if type(data.get(name)) is not bool:
                raise ValueError(f"bad {name}")
            values[name] = data[name]
        prefix, fingerprint, warnings = (
            data.get("deltaspace"),
            data.get("fingerprint"),
            data.get("warnings"),
        )
        if not isinstance(prefix, str) or not isinstance(fingerprint, str):
            raise ValueError("bad deltaspace or fingerprint")
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise ValueError("bad warnings")
        out = cls(prefix=prefix, fingerprint=fingerprint, warnings=tuple(warnings), **values)
        if (
            out.objects != out.deltas + out.direct
            or out.stored_bytes != out.delta_bytes + out.direct_bytes + out.reference_bytes
        ):
            raise ValueError("inconsistent figures")
        return out


@dataclass(frozen=True)
class CacheInfo:
    """What the result cache did.

    ``status``: ``hit`` (every deltaspace from the cache), ``partial`` (some), ``miss``,
    ``refresh`` (not read, as asked), ``disabled`` (neither read nor written, as asked) or
    ``unused`` (quick mode: nothing worth caching).
    """

    status: Literal["hit", "partial", "miss", "refresh", "disabled", "unused"]
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
class BucketStats:
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

    @property
    def saved_bytes(self) -> int:
        return self.logical_bytes - self.stored_bytes

    @property
    def savings(self) -> float:
        """1 - stored/logical; negative if the store holds more than the files would take."""
        return _saving(self.logical_bytes, self.stored_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "mode": self.mode,
            "exact": self.exact,
            "objects": self.objects,
            "deltas": self.deltas,
            "direct": self.direct,
            "references": self.references,
            "orphans": self.orphans,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "saved_bytes": self.saved_bytes,
            "savings": round(self.savings, 6),
            "delta_bytes": self.delta_bytes,
            "direct_bytes": self.direct_bytes,
            "reference_bytes": self.reference_bytes,
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


# --- the listing -----------------------------------------------------------------------------


def _triple(info: ObjectInfo) -> bytes:
    """What the fingerprint covers of a listed object: key, ETag and size, and the date too
    (an in-place copy that changes only metadata keeps the ETag, not the date)."""
    key = info.key.encode("utf-8", "surrogateescape")
    etag = info.etag.strip('"').encode("ascii", "replace")
    when = info.last_modified.isoformat().encode() if info.last_modified else b""
    return b"%s\0%s\0%d\0%s\n" % (key, etag, info.size, when)


@dataclass
class _Space:
    """One deltaspace as the listing gives it."""

    prefix: str
    deltas: list[ObjectInfo] = field(default_factory=list)
    direct: int = 0
    direct_bytes: int = 0
    reference: ObjectInfo | None = None
    hasher: Any = field(default_factory=hashlib.sha256)

    def add(self, info: ObjectInfo, kind: str) -> None:
        self.hasher.update(_triple(info))
        if kind == "delta":
            self.deltas.append(info)
        elif kind == "reference":
            self.reference = info
        else:
            self.direct += 1
            self.direct_bytes += info.size


@dataclass
class _Listing:
    spaces: dict[str, _Space] = field(default_factory=dict)
    count: int = 0
    stored: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    internal_objects: int = 0
    internal_bytes: int = 0

    def add(self, info: ObjectInfo, kind: str) -> None:
        prefix = fmt.deltaspace(info.key)
        space = self.spaces.get(prefix)
        if space is None:
            space = self.spaces[prefix] = _Space(prefix)
        space.add(info, kind)
        self.count += 1
        self.stored += info.size
        self.hasher.update(_triple(info))


def _list(
    storage: Storage, bucket: str, prefix: str, progress: ProgressFn | None
) -> tuple[_Listing, int]:
    """The listing, grouped by deltaspace; and the HEADs it took (references of deltaspaces
    that the prefix cuts through)."""
    listing = _Listing()
    for seen, info in enumerate(storage.iter_objects(bucket, prefix=prefix), 1):
        kind = fmt.physical(info.key).kind
        if kind == "internal":
            listing.internal_objects += 1
            listing.internal_bytes += info.size
        else:
            listing.add(info, kind)
        if progress is not None and seen % 1000 == 0:
            progress("list", seen, None)
    # A prefix that is not a folder ("releases/app-1") lists some of a deltaspace without its
    # reference: the deltas need it all the same, so it is counted, and HEADed to be.
    outside = [
        fmt.reference_key(s.prefix)
        for s in listing.spaces.values()
        if s.deltas and s.reference is None and not fmt.reference_key(s.prefix).startswith(prefix)
    ]
    if outside:
        for ref in storage.head_many(bucket, outside).values():
            if ref is not None:
                listing.add(ref, "reference")
    # The other way round ("releases/r"): a reference listed without its deltas, which are
    # outside the prefix. It is theirs to count, and no orphan. (It stays in the fingerprint.)
    for space in list(listing.spaces.values()):
        if space.reference is not None and not space.deltas and _cut(space.prefix, prefix):
            space.reference = None
            if not space.direct:
                del listing.spaces[space.prefix]
    return listing, len(outside)


def _cut(space: str, prefix: str) -> bool:
    """Whether ``prefix`` lists only part of the deltaspace ``space``."""
    return not (f"{space}/" if space else "").startswith(prefix)


# --- the cache -------------------------------------------------------------------------------


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


def _cache_document(stats: BucketStats, listing: _Listing) -> bytes:
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


# --- measuring -------------------------------------------------------------------------------


def _sample(deltas: list[ObjectInfo], mode: Mode) -> list[ObjectInfo]:
    """The deltas to HEAD: none (quick), all (detailed), a few spread across the listing
    (sampled: the first, the last and evenly between, so that old and new releases count)."""
    if mode == "quick":
        return []
    if mode == "detailed" or len(deltas) <= SAMPLES:
        return list(deltas)
    last = len(deltas) - 1
    return [deltas[i * last // (SAMPLES - 1)] for i in range(SAMPLES)]


def _names(keys: Iterable[str]) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:_NAMED])
    return shown + (f" and {len(keys) - _NAMED} more" if len(keys) > _NAMED else "")


def _where(prefix: str) -> str:
    return f"{prefix}/" if prefix else "the bucket root"


def _measure(
    bucket: str, space: _Space, heads: Mapping[str, ObjectInfo | None], mode: Mode
) -> DeltaspaceStats:
    """A deltaspace's figures from its listing and the HEADs made of its deltas."""
    warnings: list[str] = []
    ref_size = space.reference.size if space.reference is not None else None
    known: list[int] = []  # original sizes read from metadata
    logical_measured = 0
    unread: list[int] = []  # stored sizes of deltas HEADed without a usable size
    unread_keys: list[str] = []
    foreign: list[str] = []
    changed = False
    exact_so_far = True
    for delta in space.deltas:
        if delta.key not in heads:
            continue
        info = heads[delta.key]
        if info is None or info.etag.strip('"') != delta.etag.strip('"'):
            changed = True  # removed or replaced since listed: do not cache this deltaspace
        if info is None:
            unread.append(delta.size)
            unread_keys.append(delta.key)
            exact_so_far = False
            continue
        meta = fmt.parse_metadata(info.metadata or {}, info.key)
        if meta.kind == "delta" and meta.file_size is not None:
            known.append(meta.file_size)
            logical_measured += meta.file_size
        elif meta.kind == "foreign":
            # No deltaglider metadata at all: a plain object that happens to end in .delta,
            # served as it is, so its stored size is its size.
            foreign.append(delta.key)
            logical_measured += info.size
        else:
            unread.append(info.size)
            unread_keys.append(delta.key)
            exact_so_far = False
    headed = len(known) + len(foreign) + len(unread)
    rest = len(space.deltas) - headed
    if rest:
        # The deltas not HEADed: as the mean of those that were, else as the reference (a
        # delta rebuilds a file of its series, which the reference is one of), else as stored.
        unmeasured = [d.size for d in space.deltas if d.key not in heads]
        if known:
            estimate = round(sum(known) / len(known) * rest)
        elif ref_size is not None:
            estimate = ref_size * rest
        else:
            estimate = sum(unmeasured)
    else:
        estimate = 0
    logical = space.direct_bytes + logical_measured + sum(unread) + estimate
    delta_bytes = sum(d.size for d in space.deltas)
    stored = delta_bytes + space.direct_bytes + (ref_size or 0)
    if unread_keys:
        warnings.append(
            f"{len(unread_keys)} delta(s) in {_where(space.prefix)} have no readable original "
            f"size (counted at their stored size): {_names(unread_keys)}"
        )
    if foreign:
        warnings.append(
            f"{len(foreign)} object(s) in {_where(space.prefix)} are named like deltas but "
            f"have no deltaglider metadata (counted as they are): {_names(foreign)}"
        )
    if space.deltas and space.reference is None:
        warnings.append(
            f"{len(space.deltas)} delta(s) in {_where(space.prefix)} but no "
            f"{fmt.reference_key(space.prefix)}: they cannot be read"
        )
    if space.reference is not None and not space.deltas:
        warnings.append(
            f"orphan reference s3://{bucket}/{space.reference.key} ({space.reference.size} "
            "bytes): no delta uses it"
        )
    return DeltaspaceStats(
        prefix=space.prefix,
        objects=len(space.deltas) + space.direct,
        deltas=len(space.deltas),
        direct=space.direct,
        logical_bytes=logical,
        stored_bytes=stored,
        delta_bytes=delta_bytes,
        direct_bytes=space.direct_bytes,
        reference_bytes=ref_size or 0,
        has_reference=space.reference is not None,
        exact=exact_so_far and rest == 0,
        measured=len(known),
        fingerprint="" if changed else space.hasher.hexdigest(),
        warnings=tuple(warnings),
    )


def _head_all(
    storage: Storage, bucket: str, keys: list[str], progress: ProgressFn | None
) -> dict[str, ObjectInfo | None]:
    heads: dict[str, ObjectInfo | None] = {}
    if progress is not None and keys:
        progress("head", 0, len(keys))
    for start in range(0, len(keys), _HEAD_BATCH):
        heads.update(storage.head_many(bucket, keys[start : start + _HEAD_BATCH]))
        if progress is not None:
            progress("head", len(heads), len(keys))
    return heads


# --- the whole ------------------------------------------------------------------------------


def bucket_stats(
    store: DeltaStore,
    bucket: str,
    prefix: str = "",
    *,
    mode: Mode = "quick",
    cache: bool = True,
    refresh: bool = False,
    progress: ProgressFn | None = None,
) -> BucketStats:
    """Statistics of ``bucket``, or of the keys under ``prefix`` (taken as given, as S3 takes a
    prefix: pass ``"releases/"`` for a folder).

    ``mode``: ``quick`` (no HEADs; estimates), ``sampled`` (a few HEADs per deltaspace) or
    ``detailed`` (a HEAD per delta; exact). ``cache``: read and write the result cache in the
    bucket (sampled and detailed); ``refresh``: do not read it, but write it. A cache that
    cannot be written is a warning, not an error. ``progress(phase, done, total)``: see
    :data:`ProgressFn`. Raises BucketNotFound for a missing bucket.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    storage = store.storage
    listing, heads_made = _list(storage, bucket, prefix, progress)
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
            to_head.extend(d.key for d in _sample(space.deltas, mode))
    heads = _head_all(storage, bucket, to_head, progress)
    heads_made += len(heads)
    spaces = [
        reused.get(s.prefix) or _measure(bucket, s, heads, mode) for s in listing.spaces.values()
    ]
    spaces.sort(key=lambda s: (-s.stored_bytes, s.prefix))
    computed = len(spaces) - len(reused)
    whole_hit = cached_print == listing.hasher.hexdigest() and not computed
    status: Literal["hit", "partial", "miss", "refresh", "disabled", "unused"]
    if mode == "quick":
        status = "unused"
    elif not cache:
        status = "disabled"
    elif refresh:
        status = "refresh"
    elif whole_hit:
        status = "hit"
    elif reused:
        status = "partial"
    else:
        status = "miss"
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
    written = False
    if use_cache and status != "hit":
        try:
            body = _cache_document(stats, listing)
            storage.put(
                bucket,
                key,
                body,
                size=len(body),
                metadata={"dg-tool": fmt.TOOL},
                content_type="application/json",
            )
            written = True
        except (StorageError, OSError) as exc:
            warnings.append(f"could not write the stats cache s3://{bucket}/{key}: {exc}")
    all_warnings = [w for s in spaces for w in s.warnings] + warnings
    return replace(
        stats,
        cache=replace(stats.cache, written=written),
        warnings=tuple(all_warnings),
    )
