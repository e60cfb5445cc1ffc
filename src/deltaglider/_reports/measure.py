"""What :mod:`deltaglider.stats` measures: the physical listing grouped by deltaspace, the deltas
HEADed for their original sizes, and each deltaspace's figures (:class:`DeltaspaceStats`).

A read model of the physical layout, as :mod:`deltaglider.stats` explains: it lists and HEADs
the store directly and writes nothing. The per-deltaspace result type lives here rather than in
``stats.py`` because measuring is what builds it (``stats.py`` re-exports it, and reads it back
from its cache), so that neither module imports the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .. import format as fmt
from ..progress import ProgressSink
from ..storage.base import ObjectInfo, Storage

__all__ = [
    "MODES",
    "SAMPLES",
    "DeltaspaceStats",
    "ListedSpace",
    "Listing",
    "Mode",
    "Savings",
    "deltas_to_head",
    "head_all",
    "list_layout",
    "measure",
]

Mode = Literal["quick", "sampled", "detailed"]
MODES: tuple[Mode, ...] = get_args(Mode)

#: Deltas HEADed per deltaspace in sampled mode.
SAMPLES = 3
#: Keys per head_many call: progress is reported between batches.
_HEAD_BATCH = 256
#: Objects listed between two notes of the count.
_NOTE_EVERY = 1000
#: Keys named in one warning, at most.
_NAMED = 5


class Savings:
    """The byte figures a deltaspace's and a bucket's statistics share: ``saved_bytes`` and
    ``savings`` from the logical and stored bytes, and all of them as their JSON has them."""

    __slots__ = ()
    logical_bytes: int
    stored_bytes: int
    delta_bytes: int
    direct_bytes: int
    reference_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.logical_bytes - self.stored_bytes

    @property
    def savings(self) -> float:
        """1 - stored/logical; negative when the store holds more than the files would take."""
        return 1.0 - self.stored_bytes / self.logical_bytes if self.logical_bytes > 0 else 0.0

    def _bytes_dict(self) -> dict[str, Any]:
        return {
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "saved_bytes": self.saved_bytes,
            "savings": round(self.savings, 6),
            "delta_bytes": self.delta_bytes,
            "direct_bytes": self.direct_bytes,
            "reference_bytes": self.reference_bytes,
        }


@dataclass(frozen=True)
class DeltaspaceStats(Savings):
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "deltaspace": self.prefix,
            "objects": self.objects,
            "deltas": self.deltas,
            "direct": self.direct,
            **self._bytes_dict(),
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


# The listing.


def _fingerprint_entry(info: ObjectInfo) -> bytes:
    """What a fingerprint covers of a listed object: its key, ETag, size and date (an in-place
    copy that changes only metadata keeps the ETag, not the date)."""
    key = info.key.encode("utf-8", "surrogateescape")
    etag = info.etag.strip('"').encode("ascii", "replace")
    when = info.last_modified.isoformat().encode() if info.last_modified else b""
    return b"%s\0%s\0%d\0%s\n" % (key, etag, info.size, when)


@dataclass
class ListedSpace:
    """One deltaspace as the physical listing gives it: its deltas, direct objects and
    reference, and the fingerprint of them all."""

    prefix: str
    deltas: list[ObjectInfo] = field(default_factory=list)
    direct: int = 0
    direct_bytes: int = 0
    reference: ObjectInfo | None = None
    hasher: Any = field(default_factory=hashlib.sha256)

    def add(self, info: ObjectInfo, kind: str) -> None:
        self.hasher.update(_fingerprint_entry(info))
        if kind == "delta":
            self.deltas.append(info)
        elif kind == "reference":
            self.reference = info
        else:
            self.direct += 1
            self.direct_bytes += info.size


@dataclass
class Listing:
    """The listing of a bucket or prefix, by deltaspace; ``hasher`` fingerprints all of it
    (deltaglider's own ``.deltaglider/`` objects are only counted apart)."""

    spaces: dict[str, ListedSpace] = field(default_factory=dict)
    count: int = 0
    stored: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    internal_objects: int = 0
    internal_bytes: int = 0

    def add(self, info: ObjectInfo, kind: str) -> None:
        prefix = fmt.deltaspace(info.key)
        space = self.spaces.get(prefix)
        if space is None:
            space = self.spaces[prefix] = ListedSpace(prefix)
        space.add(info, kind)
        self.count += 1
        self.stored += info.size
        self.hasher.update(_fingerprint_entry(info))


def _lists_part_of(space: str, prefix: str) -> bool:
    """Whether ``prefix`` lists only part of the deltaspace ``space``."""
    return not (f"{space}/" if space else "").startswith(prefix)


def list_layout(
    storage: Storage, bucket: str, prefix: str, progress: ProgressSink | None
) -> tuple[Listing, int]:
    """The listing, grouped by deltaspace; and the HEADs it took (references of deltaspaces
    that the prefix cuts through). ``progress`` is told the count as a note while listing."""
    listing = _grouped(storage, bucket, prefix, progress)
    # A prefix that is not a folder ("releases/app-1") lists some of a deltaspace without its
    # reference: the deltas need it all the same, so it is counted, and HEADed to be. (Whole
    # HEADs, not DeltaStore.reference_sizes: the reference's ETag and date go into the
    # fingerprint.)
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
        if (
            space.reference is not None
            and not space.deltas
            and _lists_part_of(space.prefix, prefix)
        ):
            space.reference = None
            if not space.direct:
                del listing.spaces[space.prefix]
    return listing, len(outside)


def _grouped(storage: Storage, bucket: str, prefix: str, progress: ProgressSink | None) -> Listing:
    """Every listed object, in its deltaspace or counted as deltaglider's own."""
    listing = Listing()
    seen = 0
    for seen, info in enumerate(storage.iter_objects(bucket, prefix=prefix), 1):
        kind = fmt.physical(info.key).kind
        if kind == "internal":
            listing.internal_objects += 1
            listing.internal_bytes += info.size
        else:
            listing.add(info, kind)
        if progress is not None and seen % _NOTE_EVERY == 0:
            progress.note(f"listed {seen} objects")
    if progress is not None and seen >= _NOTE_EVERY:
        progress.note("")  # the count goes once the listing is done
    return listing


# Measuring.


def deltas_to_head(deltas: list[ObjectInfo], mode: Mode) -> list[ObjectInfo]:
    """The deltas to HEAD: none (quick), all (detailed), a few spread across the listing
    (sampled: the first, the last and evenly between, so that old and new releases count)."""
    if mode == "quick":
        return []
    if mode == "detailed" or len(deltas) <= SAMPLES:
        return list(deltas)
    last = len(deltas) - 1
    return [deltas[i * last // (SAMPLES - 1)] for i in range(SAMPLES)]


def head_all(
    storage: Storage, bucket: str, keys: list[str], progress: ProgressSink | None
) -> dict[str, ObjectInfo | None]:
    """HEADs of ``keys`` (None: gone), in batches; ``progress`` is told their count, then
    each one done."""
    heads: dict[str, ObjectInfo | None] = {}
    if progress is not None and keys:
        progress.add_total(files=len(keys))
    for start in range(0, len(keys), _HEAD_BATCH):
        batch = keys[start : start + _HEAD_BATCH]
        heads.update(storage.head_many(bucket, batch))
        if progress is not None:
            for _ in batch:
                progress.file_done()
    return heads


def _some_keys(keys: Iterable[str]) -> str:
    """The first few of ``keys``, and how many more, for a warning."""
    keys = list(keys)
    shown = ", ".join(keys[:_NAMED])
    return shown + (f" and {len(keys) - _NAMED} more" if len(keys) > _NAMED else "")


def _space_label(prefix: str) -> str:
    """A deltaspace as a warning names it."""
    return f"{prefix}/" if prefix else "the bucket root"


def measure(
    bucket: str, space: ListedSpace, heads: Mapping[str, ObjectInfo | None]
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
    where = _space_label(space.prefix)
    if unread_keys:
        warnings.append(
            f"{len(unread_keys)} delta(s) in {where} have no readable original "
            f"size (counted at their stored size): {_some_keys(unread_keys)}"
        )
    if foreign:
        warnings.append(
            f"{len(foreign)} object(s) in {where} are named like deltas but "
            f"have no deltaglider metadata (counted as they are): {_some_keys(foreign)}"
        )
    if space.deltas and space.reference is None:
        warnings.append(
            f"{len(space.deltas)} delta(s) in {where} but no "
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
