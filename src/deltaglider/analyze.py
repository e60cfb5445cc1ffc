"""What deltaglider would save on a bucket of plain objects, estimated without writing anything.

The bucket (or a prefix of it) is listed and its objects grouped as deltaglider would store
them: by deltaspace (the key's folder), delta candidates by extension
(:meth:`Config.is_delta_candidate`), everything else stored whole. In each deltaspace with
two or more candidates, the object a migration would make the reference (the middle of the
natural version order, as :meth:`DeltaStore.put_many` chooses it) and a few other candidates
spread over their distance from it are downloaded, and their real deltas computed locally
with the engine's codec settings and max ratio (a sample whose delta is over the limit
counts as stored whole, as the engine would store it). The reference counts as the engine
stores it: ``reference.bin`` plus the file's own (tiny) delta against it. The deltaspace's
measured ratio is then extrapolated, by size, to its candidates that were not sampled; with
every candidate sampled, the estimate is what a batch upload would store, to the byte (bar
the exceptions below, and the backup copies of references that stores without create-only
writes also get under ``.deltaglider/``)::

    from deltaglider.analyze import analyze

    result = analyze(storage, "my-bucket", "releases/", config=Config.from_env())
    print(f"{result.savings:.1%}", result.size, "->", result.estimated_stored)

Rules worth knowing:

- Nothing is written, to the store or to deltaglider's reference cache: listing and reading
  (GET, HEAD) permissions are enough. Objects over 64 MiB (:data:`deltaglider._io.SPOOL_THRESHOLD`)
  are spooled to a private temporary file while they are encoded (deleted at once).
- Objects deltaglider already stored are not part of the estimate: they are counted apart
  (:attr:`Analysis.existing_objects`). Its deltas, references, escaped names and bookkeeping
  (``*.delta``, ``reference.bin``, ``*.direct``, ``.deltaglider/``) are known by name; the
  objects it stored direct are known by their ``dg-`` metadata, which is read (HEAD) only in
  deltaspaces that hold one of the former. Elsewhere, an object deltaglider stored direct
  counts as a plain one. In a deltaspace that already has a ``reference.bin``, plain
  candidates are encoded against it, as a migration would.
- A deltaspace with one candidate costs its size: that file would be the reference, and its
  own delta (some 50 bytes a megabyte) is not worth a download to measure. When the middle
  candidate is empty (stored direct), the engine's reference is whichever file comes first;
  the middle non-empty one is taken instead.
- Downloads are bounded by ``max_sample_bytes``; deltaspaces are sampled in order of what they
  can save at most, and those left out are counted as stored whole (the estimate of savings
  is then a lower bound for them; :attr:`Analysis.unsampled_spaces` says how many).
- An object that cannot be read is skipped (``on_error`` is told) and the analysis goes on.

A report, not an engine stage: like :mod:`deltaglider.stats`, a read model of the physical
layout (as restic's checker reads the repository). It reads the storage directly (listings,
HEADs, GETs) and never writes an object the engine owns; what is engine *policy* it asks of the
engine (:func:`~deltaglider.engine.first_reference`, :func:`~deltaglider.engine.natural_key`,
:func:`~deltaglider.engine.make_encoder`, :func:`~deltaglider.engine.delta_limit`) instead of
re-implementing it. Given a :class:`DeltaStore`, it takes its configuration and its storage (not
its reference cache: nothing is filled) and samples on a pool of its own (see
:mod:`deltaglider._reports.sampling`, which holds the plan and the sampler); this module keeps the
results, the listing and the estimate.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import format as fmt
from ._reports.sampling import Outcome, PlainSpace, Plan, Sampler, budget, plan_space
from ._reports.sampling import spread as spread  # importable from here, as it always was
from .config import Config
from .engine import DeltaStore, first_reference
from .progress import ProgressSink
from .storage.base import Storage

__all__ = [
    "DEFAULT_MAX_SAMPLE_BYTES",
    "DEFAULT_SAMPLE",
    "Analysis",
    "ProgressSink",
    "SpaceEstimate",
    "analyze",
]

log = logging.getLogger("deltaglider")

#: Candidates sampled per deltaspace besides its reference.
DEFAULT_SAMPLE = 4
#: Bytes downloaded at most, references included (decimal: 1 GB).
DEFAULT_MAX_SAMPLE_BYTES = 1_000_000_000


@dataclass(frozen=True)
class SpaceEstimate:
    """One would-be deltaspace: its plain objects and what they would take as deltaglider
    stores them."""

    #: The key prefix ("" at the bucket's root), as :func:`deltaglider.format.deltaspace`.
    deltaspace: str
    #: Plain objects and their bytes (delta candidates and the rest).
    objects: int
    size: int
    #: Delta candidates among them, and their bytes.
    candidates: int
    candidate_size: int
    #: Estimated bytes in the store after a migration (reference included).
    estimated_stored: int
    #: The key encoded against: the candidate that would be the reference, or an existing
    #: ``reference.bin``; None when nothing was sampled.
    reference: str | None = None
    #: Whether ``reference`` is a ``reference.bin`` deltaglider already stored.
    existing_reference: bool = False
    #: Objects downloaded (the reference included) and their bytes.
    sampled: int = 0
    sampled_bytes: int = 0
    #: Samples whose delta was within the max ratio; their sizes and delta sizes.
    deltas: int = 0
    #: Sampled candidates (besides the reference), their bytes and what they would take.
    sample_size: int = 0
    sample_stored: int = 0
    #: Whether the deltaspace had something to sample but was left out (byte budget).
    skipped: bool = False
    #: Objects that could not be read.
    errors: int = 0

    @property
    def savings(self) -> float:
        """The fraction of ``size`` saved (0 for an empty deltaspace)."""
        return max(0.0, 1 - self.estimated_stored / self.size) if self.size else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "deltaspace": self.deltaspace,
            "objects": self.objects,
            "size": self.size,
            "candidates": self.candidates,
            "candidate_size": self.candidate_size,
            "estimated_stored": self.estimated_stored,
            "savings": round(self.savings, 6),
            "reference": self.reference,
            "existing_reference": self.existing_reference,
            "sampled": self.sampled,
            "sampled_bytes": self.sampled_bytes,
            "deltas": self.deltas,
            "sample_size": self.sample_size,
            "sample_stored": self.sample_stored,
            "skipped": self.skipped,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Analysis:
    """The estimate for a bucket or prefix: per deltaspace (largest first) and in total."""

    bucket: str
    prefix: str
    spaces: tuple[SpaceEstimate, ...]
    max_ratio: float
    sample: int
    max_sample_bytes: int
    #: Objects deltaglider already stored (not in the estimate) and their stored bytes.
    existing_objects: int = 0
    existing_bytes: int = 0
    #: ``(key, message)`` of every object that could not be read.
    errors: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def objects(self) -> int:
        return sum(s.objects for s in self.spaces)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.spaces)

    @property
    def estimated_stored(self) -> int:
        return sum(s.estimated_stored for s in self.spaces)

    @property
    def savings(self) -> float:
        """The fraction of :attr:`size` saved (0 when there is nothing)."""
        size = self.size
        return max(0.0, 1 - self.estimated_stored / size) if size else 0.0

    @property
    def sampled_objects(self) -> int:
        return sum(s.sampled for s in self.spaces)

    @property
    def sampled_bytes(self) -> int:
        return sum(s.sampled_bytes for s in self.spaces)

    @property
    def sampled_spaces(self) -> int:
        return sum(1 for s in self.spaces if s.sampled)

    @property
    def unsampled_spaces(self) -> tuple[SpaceEstimate, ...]:
        """Deltaspaces left out by the byte budget (counted as stored whole)."""
        return tuple(s for s in self.spaces if s.skipped)

    def to_dict(self) -> dict[str, Any]:
        skipped = self.unsampled_spaces
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "estimate": True,
            "objects": self.objects,
            "size": self.size,
            "estimated_stored": self.estimated_stored,
            "savings": round(self.savings, 6),
            "deltaspaces": len(self.spaces),
            "sampled_objects": self.sampled_objects,
            "sampled_bytes": self.sampled_bytes,
            "sampled_deltaspaces": self.sampled_spaces,
            "unsampled_deltaspaces": len(skipped),
            "unsampled_size": sum(s.size for s in skipped),
            "already_deltaglider": {
                "objects": self.existing_objects,
                "stored_size": self.existing_bytes,
            },
            "errors": [{"key": k, "error": m} for k, m in self.errors],
            "settings": {
                "sample": self.sample,
                "max_sample_bytes": self.max_sample_bytes,
                "max_ratio": self.max_ratio,
            },
            "spaces": [s.to_dict() for s in self.spaces],
        }


# The listing.


def already_stored(key: str) -> bool:
    """Whether a physical key is one deltaglider wrote by its name alone (a delta, a reference,
    an escaped direct object or its own bookkeeping)."""
    found = fmt.physical(key)
    return found.kind != "direct" or found.logical != key


def reference_of(keys: Sequence[str]) -> str:
    """The key a batch upload makes its deltaspace's reference: the middle one in natural
    (version-aware) order, as :meth:`DeltaStore.put_many` chooses it (the engine's rule,
    :func:`~deltaglider.engine.first_reference`)."""
    return first_reference(keys)


@dataclass
class _Grouped:
    """The listing's plain objects by would-be deltaspace, and what deltaglider stored."""

    spaces: dict[str, PlainSpace] = field(default_factory=dict)
    existing: int = 0
    existing_bytes: int = 0

    def space(self, key: str) -> PlainSpace:
        prefix = fmt.deltaspace(key)
        found = self.spaces.get(prefix)
        if found is None:
            found = self.spaces[prefix] = PlainSpace(prefix)
        return found


def _group(
    storage: Storage, bucket: str, prefix: str, config: Config, progress: ProgressSink | None
) -> _Grouped:
    """Lists ``prefix`` and sets apart what deltaglider stored: by name, and where it stored
    something, by the metadata of the objects that look plain (one HEAD each, in those
    deltaspaces only: they may be its direct objects)."""
    grouped = _Grouped()
    noted = False  # whether the progress line shows a note to clear
    for listed, info in enumerate(storage.iter_objects(bucket, prefix=prefix), 1):
        if progress is not None and listed % 1000 == 0:
            progress.note(f"{listed} objects listed")
            noted = True
        space = grouped.space(info.key)
        if already_stored(info.key):
            grouped.existing += 1
            grouped.existing_bytes += info.size
            space.touched = True
            if fmt.physical(info.key).kind == "reference":
                space.existing_ref = (info.key, info.size)
            continue
        space.listed.append((info.key, info.size))
    touched = [space for space in grouped.spaces.values() if space.touched]
    suspects = [key for space in touched for key, _ in space.listed]
    if suspects:
        if progress is not None:
            progress.note(f"checking {len(suspects)} objects in deltaglider's folders")
            noted = True
        heads = storage.head_many(bucket, suspects)
        for space in touched:
            plain = []
            for key, size in space.listed:
                head = heads.get(key)
                if head is None:
                    continue  # deleted since it was listed
                if fmt.parse_metadata(head.metadata or {}, key).kind != "foreign":
                    grouped.existing += 1
                    grouped.existing_bytes += size
                else:
                    plain.append((key, size))
            space.listed = plain
    for space in grouped.spaces.values():
        space.count(config)
    if progress is not None and noted:
        progress.note("")
    return grouped


# The estimate.


def _estimate(space: PlainSpace, plan: Plan | None, out: Outcome | None) -> SpaceEstimate:
    est = SpaceEstimate(
        deltaspace=space.prefix,
        objects=space.objects,
        size=space.size,
        candidates=space.candidates,
        candidate_size=space.candidate_size,
        estimated_stored=space.size,
    )
    if plan is None:
        return est
    if out is None:
        return dataclasses.replace(est, skipped=True)
    if not out.ref_ok:
        return dataclasses.replace(est, errors=out.errors)
    # Candidates: the reference whole and its file's own delta (unless it is stored already),
    # the samples as measured, the rest extrapolated by size (each byte expected to take what
    # a sampled byte took). Not capped at ``size``: with nothing deltable, a reference and its
    # own delta do take a little more than the files.
    others = space.candidate_size - (0 if plan.existing else plan.ref_size)
    stored = space.size - space.candidate_size
    if not plan.existing:
        stored += plan.ref_size + out.ref_stored
    if out.sample_size:
        rest = max(0, others - out.sample_size)
        stored += out.sample_stored + round(rest * out.sample_stored / out.sample_size)
    else:
        stored += others
    return dataclasses.replace(
        est,
        estimated_stored=stored,
        reference=plan.ref_key,
        existing_reference=plan.existing,
        sampled=out.sampled,
        sampled_bytes=out.sampled_bytes,
        deltas=out.deltas,
        sample_size=out.sample_size,
        sample_stored=out.sample_stored,
        errors=out.errors,
    )


def analyze(
    target: Storage | DeltaStore,
    bucket: str,
    prefix: str = "",
    *,
    config: Config | None = None,
    sample: int = DEFAULT_SAMPLE,
    max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
    progress: ProgressSink | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> Analysis:
    """Estimates what storing the plain objects under ``prefix`` with deltaglider would take.

    :param target: the store to read (a :class:`DeltaStore` is read through its storage: no
        reference cache is used or filled).
    :param prefix: a key prefix, taken as given (pass ``"folder/"`` for a folder).
    :param config: delta extensions, max ratio, codec settings and workers (default:
        the store's, else :meth:`Config.from_env`).
    :param sample: candidates sampled per deltaspace besides its reference (at least 1).
    :param max_sample_bytes: bytes downloaded at most, references included.
    :param progress: told the bytes to process once the sample is chosen, then as they are
        downloaded and encoded; ``note`` while listing.
    :param on_error: called with the key and the error of an object that cannot be read
        (default: a logged warning); the analysis goes on without it.

    Raises the storage's errors for the listing (:class:`~deltaglider.errors.BucketNotFound`,
    :class:`~deltaglider.errors.AccessDenied`).
    """
    if sample < 1:
        raise ValueError("sample must be at least 1")
    if max_sample_bytes < 0:
        raise ValueError("max_sample_bytes must not be negative")
    if isinstance(target, DeltaStore):
        storage = target.storage
        config = config or target.config
    else:
        storage = target
    config = config or Config.from_env()
    errors: list[tuple[str, str]] = []

    def failed(key: str, exc: BaseException) -> None:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors.append((key, text))
        if on_error is not None:
            on_error(key, exc)
        else:
            log.warning("skipping s3://%s/%s: %s", bucket, key, text)

    grouped = _group(storage, bucket, prefix, config, progress)
    spaces = grouped.spaces
    plans = {p.space.prefix: p for p in (plan_space(s, sample) for s in spaces.values()) if p}
    budget(list(plans.values()), max_sample_bytes)
    chosen = [p for p in plans.values() if p.picks]
    if progress is not None:
        progress.add_total(
            files=sum(1 + len(p.picks) for p in chosen),
            size=sum(p.ref_size + 2 * sum(s for _, s in p.picks) for p in chosen),
        )
    outcomes = Sampler(storage, bucket, config, progress, failed).run(chosen)
    estimates = [
        _estimate(space, plans.get(space.prefix), outcomes.get(space.prefix))
        for space in spaces.values()
        if space.objects  # not a deltaspace of deltaglider's own objects only
    ]
    estimates.sort(key=lambda s: (-s.size, s.deltaspace))
    return Analysis(
        bucket=bucket,
        prefix=prefix,
        spaces=tuple(estimates),
        max_ratio=config.max_ratio,
        sample=sample,
        max_sample_bytes=max_sample_bytes,
        existing_objects=grouped.existing,
        existing_bytes=grouped.existing_bytes,
        errors=tuple(errors),
    )
