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
  (GET, HEAD) permissions are enough. Objects over 64 MiB are spooled to a private temporary file
  while they are encoded (deleted at once).
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
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import mmap
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

from . import format as fmt
from .codec import Encoder
from .config import Config
from .engine import DeltaStore, natural_key
from .errors import DeltaGliderError, DeltaTooLargeError, StorageError
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

_SPOOL = 64 << 20
_CHUNK = 1 << 20

T = TypeVar("T")


class ProgressSink(Protocol):
    """Where progress goes (the CLI's :class:`~deltaglider.cli._console.Progress` is one).

    Bytes count once as they download and once more as a sample encodes.
    """

    def add_total(self, *, files: int = 0, size: int = 0) -> None: ...

    def advance(self, count: int) -> None: ...

    def file_done(self, *, failed: bool = False) -> None: ...

    def note(self, text: str) -> None: ...


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


# --- grouping --------------------------------------------------------------------------------


@dataclass
class _Space:
    prefix: str
    #: Plain objects as listed, (key, size); cleared once counted.
    listed: list[tuple[str, int]] = field(default_factory=list)
    #: Whether deltaglider stored something here (its direct objects may be among ``listed``).
    touched: bool = False
    objects: int = 0
    size: int = 0
    candidates: int = 0
    candidate_size: int = 0
    #: Every candidate's key, empty ones included: the reference is chosen among them.
    candidate_keys: list[str] = field(default_factory=list)
    #: Non-empty candidates as (key, size): only they can be deltas (an empty file is direct).
    keys: list[tuple[str, int]] = field(default_factory=list)
    existing_ref: tuple[str, int] | None = None

    def count(self, config: Config) -> None:
        for key, size in self.listed:
            self.objects += 1
            self.size += size
            if config.is_delta_candidate(key):
                self.candidates += 1
                self.candidate_size += size
                self.candidate_keys.append(key)
                if size:
                    self.keys.append((key, size))
        self.listed = []


def already_stored(key: str) -> bool:
    """Whether a physical key is one deltaglider wrote by its name alone (a delta, a reference,
    an escaped direct object or its own bookkeeping)."""
    found = fmt.physical(key)
    return found.kind != "direct" or found.logical != key


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items spread evenly over ``items`` (the middle of each of ``count`` equal
    strata), the most central first: any first few of them are still a fair sample."""
    m = len(items)
    k = min(count, m)
    if k <= 0:
        return []
    picks = [items[min(m - 1, int((i + 0.5) * m / k))] for i in range(k)]
    order = sorted(range(k), key=lambda i: (abs(2 * i + 1 - k), i))
    return [picks[i] for i in order]


def reference_of(keys: Sequence[str]) -> str:
    """The key a batch upload makes its deltaspace's reference: the middle one in natural
    (version-aware) order, as :meth:`DeltaStore.put_many` chooses it."""
    ordered = sorted(keys, key=natural_key)
    return ordered[len(ordered) // 2]


@dataclass
class _Plan:
    space: _Space
    ref_key: str
    ref_size: int
    existing: bool
    #: Candidates besides the reference, the most useful samples first.
    order: list[tuple[str, int]]
    picks: list[tuple[str, int]] = field(default_factory=list)

    @property
    def potential(self) -> int:
        """Bytes a deltaspace can save at most: what is not its reference."""
        return self.space.candidate_size - (0 if self.existing else self.ref_size)


def _plan(space: _Space, sample: int) -> _Plan | None:
    if space.existing_ref is not None:
        if not space.keys:
            return None
        ref_key, ref_size = space.existing_ref
        others = sorted(space.keys, key=lambda kv: natural_key(kv[0]))
        return _Plan(space, ref_key, ref_size, True, spread(others, sample))
    if len(space.keys) < 2:
        return None
    # As put_many: the middle of all candidates, empty ones included. An empty file is stored
    # direct and makes no reference; the engine's reference is then whichever file comes
    # first, and the middle non-empty one is the best guess.
    ref_key = reference_of(space.candidate_keys)
    if ref_key not in dict(space.keys):
        ref_key = reference_of([k for k, _ in space.keys])
    ordered = sorted(space.keys, key=lambda kv: natural_key(kv[0]))
    mid = next(i for i, (k, _) in enumerate(ordered) if k == ref_key)
    ref_size = ordered[mid][1]
    # Delta sizes grow with the distance (in versions) from the reference: sample along it.
    by_distance = sorted(
        (i for i in range(len(ordered)) if i != mid), key=lambda i: (abs(i - mid), i)
    )
    return _Plan(space, ref_key, ref_size, False, spread([ordered[i] for i in by_distance], sample))


def _budget(plans: list[_Plan], max_bytes: int) -> None:
    """Chooses the samples (``picks``) within ``max_bytes``: every deltaspace's reference and
    first sample, largest potential first, then more samples round by round."""
    left = max_bytes
    chosen: list[_Plan] = []
    for plan in sorted(plans, key=lambda p: -p.potential):
        first = plan.order[0]
        if plan.ref_size + first[1] <= left:
            left -= plan.ref_size + first[1]
            plan.picks.append(first)
            chosen.append(plan)
    for rank in range(1, max((len(p.order) for p in chosen), default=0)):
        for plan in chosen:
            if rank < len(plan.order) and plan.order[rank][1] <= left:
                left -= plan.order[rank][1]
                plan.picks.append(plan.order[rank])


# --- sampling --------------------------------------------------------------------------------


class _Fetched:
    """An object's bytes: in memory, or spooled to a private temporary file (mapped) when
    large. Freed when the last reference to ``view`` goes: an encoder built on it keeps it."""

    def __init__(
        self, storage: Storage, bucket: str, key: str, advance: Callable[[int], None]
    ) -> None:
        info, body = storage.get(bucket, key)
        got = 0
        with contextlib.ExitStack() as stack:
            stack.callback(body.close)
            if info.size > _SPOOL:
                # Already unlinked; the mapping keeps the bytes once the file is closed.
                fh: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
                while chunk := body.read(_CHUNK):
                    fh.write(chunk)
                    got += len(chunk)
                    advance(len(chunk))
                fh.flush()
                data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if got else b""
            else:
                buf = bytearray()
                while chunk := body.read(_CHUNK):
                    buf += chunk
                    got += len(chunk)
                    advance(len(chunk))
                data = buf
        if got != info.size:
            raise StorageError(
                f"s3://{bucket}/{key}: read {got} bytes of {info.size}", bucket=bucket, key=key
            )
        self.view = memoryview(data)
        self.size = got


class _Counter:
    """One task's progress: increments passed on and counted, so that what a failed or
    changed object did not report can be made up for."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self._advance = advance
        self.count = 0

    def add(self, count: int) -> None:
        if count > 0:
            self.count += count
            self._advance(count)

    def up_to(self, total: int) -> None:
        self.add(total - self.count)


class _Reporter:
    """Turns the codec's positions into increments for one file."""

    def __init__(self, counter: _Counter) -> None:
        self._counter = counter
        self._done = 0

    def at(self, position: int) -> None:
        if position > self._done:
            self._counter.add(position - self._done)
            self._done = position


@dataclass
class _Outcome:
    sampled: int = 0
    sampled_bytes: int = 0
    deltas: int = 0
    sample_size: int = 0
    sample_stored: int = 0
    errors: int = 0
    ref_ok: bool = False
    #: What the would-be reference's own file takes as its delta against itself (or whole).
    ref_stored: int = 0


class _Sampler:
    """Runs every deltaspace's reference download and sample encodes on one bounded pool.

    At most ``workers`` deltaspaces are open at once (their reference and encoder in
    memory); a deltaspace's samples are queued as soon as its encoder is built, so that a
    few large deltaspaces are sampled as much in parallel as many small ones. Results are
    gathered in the calling thread.
    """

    def __init__(
        self,
        storage: Storage,
        bucket: str,
        config: Config,
        progress: ProgressSink | None,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.storage = storage
        self.bucket = bucket
        self.config = config
        self.progress = progress
        self.on_error = on_error

    def _advance(self, count: int) -> None:
        if self.progress is not None:
            self.progress.advance(count)

    def _file_done(self, failed: bool = False) -> None:
        if self.progress is not None:
            self.progress.file_done(failed=failed)

    def _reference(
        self, key: str, counter: _Counter, existing: bool
    ) -> tuple[_Fetched, Encoder, int]:
        """Downloads a reference and builds its encoder; for a would-be reference, also what
        its own file takes: the engine stores it as a delta against itself too (a few bytes
        per window, cheap to encode), or whole if even that is over the max ratio."""
        data = _Fetched(self.storage, self.bucket, key, counter.add)
        secondary: Any = self.config.codec_secondary  # validated by Config
        encoder = Encoder(data.view, level=self.config.codec_level, secondary=secondary)
        own = 0
        if not existing:
            limit = max(0, math.floor(self.config.max_ratio * data.size))
            try:
                own = len(encoder.encode(data.view, max_delta_size=limit))
            except DeltaTooLargeError:
                own = data.size
        return data, encoder, own

    def _sample(self, encoder: Encoder, key: str, counter: _Counter) -> tuple[int, int, bool]:
        """Downloads and encodes one candidate: (its size, what it would take, as a delta).

        The limit is the engine's: over it, the file would be stored whole, and the codec
        gives up on it early, so an undeltable sample costs little more than its download.
        """
        data = _Fetched(self.storage, self.bucket, key, counter.add)
        limit = max(0, math.floor(self.config.max_ratio * data.size))
        try:
            delta = encoder.encode(data.view, max_delta_size=limit, progress=_Reporter(counter).at)
        except DeltaTooLargeError:
            return data.size, data.size, False
        return data.size, len(delta), True

    def run(self, plans: list[_Plan]) -> dict[str, _Outcome]:
        outcomes = {p.space.prefix: _Outcome() for p in plans}
        waiting = deque(p for p in plans if p.picks)
        workers = self.config.max_workers
        # Deltaspaces open: their reference and encoder once here (None while downloading),
        # and how many of their samples are still running.
        open_: dict[str, tuple[_Fetched, Encoder] | None] = {}
        running: dict[str, int] = {}
        futures: dict[Future[Any], tuple[_Plan, str | None, int, _Counter]] = {}
        with ThreadPoolExecutor(workers, thread_name_prefix="deltaglider-analyze") as pool:
            try:
                while waiting or futures:
                    while waiting and len(open_) < workers:
                        plan = waiting.popleft()
                        counter = _Counter(self._advance)
                        task = pool.submit(self._reference, plan.ref_key, counter, plan.existing)
                        futures[task] = (plan, None, plan.ref_size, counter)
                        open_[plan.space.prefix] = None
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        self._settle(fut, futures, open_, running, outcomes, pool)
            finally:
                # Whatever is left (an interruption): drop what has not started; the pool
                # waits for what has.
                for fut in futures:
                    fut.cancel()
                open_.clear()
        return outcomes

    def _settle(
        self,
        fut: Future[Any],
        futures: dict[Future[Any], tuple[_Plan, str | None, int, _Counter]],
        open_: dict[str, tuple[_Fetched, Encoder] | None],
        running: dict[str, int],
        outcomes: dict[str, _Outcome],
        pool: ThreadPoolExecutor,
    ) -> None:
        """Takes in one finished task: a reference (its samples are queued) or a sample."""
        plan, key, size, counter = futures.pop(fut)
        prefix = plan.space.prefix
        out = outcomes[prefix]
        exc = fut.exception()
        if exc is not None and not isinstance(exc, (DeltaGliderError, OSError)):
            raise exc
        if key is not None:
            running[prefix] -= 1
        # Progress counts a reference once (download), a sample twice (download, encode).
        counter.up_to(size if key is None else 2 * size)
        if exc is not None:
            out.errors += 1
            self.on_error(key or plan.ref_key, exc)
            self._file_done(failed=True)
            if key is None:
                # No reference, no deltas: its samples are not fetched.
                for _, pick_size in plan.picks:
                    self._advance(2 * pick_size)
                    self._file_done(failed=True)
        elif key is None:
            self._file_done()
            data, encoder, own = fut.result()
            opened = (data, encoder)
            out.ref_ok = True
            out.ref_stored = own
            out.sampled += 1
            out.sampled_bytes += data.size
            open_[prefix] = opened
            running[prefix] = len(plan.picks)
            for pick_key, pick_size in plan.picks:
                pick_counter = _Counter(self._advance)
                task = pool.submit(self._sample, opened[1], pick_key, pick_counter)
                futures[task] = (plan, pick_key, pick_size, pick_counter)
        else:
            self._file_done()
            got, stored, is_delta = fut.result()
            out.sampled += 1
            out.sampled_bytes += got
            out.sample_size += got
            out.sample_stored += stored
            out.deltas += is_delta
        if not running.get(prefix):
            del open_[prefix]  # the reference's bytes go with its encoder


# --- the estimate ----------------------------------------------------------------------------


def _estimate(space: _Space, plan: _Plan | None, out: _Outcome | None) -> SpaceEstimate:
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

    spaces: dict[str, _Space] = {}
    existing = existing_bytes = listed = 0
    noted = False  # whether the progress line shows a note to clear
    for info in storage.iter_objects(bucket, prefix=prefix):
        listed += 1
        if progress is not None and listed % 1000 == 0:
            progress.note(f"{listed} objects listed")
            noted = True
        space = spaces.setdefault(fmt.deltaspace(info.key), _Space(fmt.deltaspace(info.key)))
        if already_stored(info.key):
            existing += 1
            existing_bytes += info.size
            space.touched = True
            if fmt.physical(info.key).kind == "reference":
                space.existing_ref = (info.key, info.size)
            continue
        space.listed.append((info.key, info.size))
    # Where deltaglider stored something, the objects that look plain may be its direct ones:
    # their metadata says so (one HEAD each, in those deltaspaces only).
    suspects = [key for space in spaces.values() if space.touched for key, _ in space.listed]
    if suspects:
        if progress is not None:
            progress.note(f"checking {len(suspects)} objects in deltaglider's folders")
            noted = True
        heads = storage.head_many(bucket, suspects)
        for space in spaces.values():
            if not space.touched:
                continue
            plain = []
            for key, size in space.listed:
                head = heads.get(key)
                if head is None:
                    continue  # deleted since it was listed
                if fmt.parse_metadata(head.metadata or {}, key).kind != "foreign":
                    existing += 1
                    existing_bytes += size
                else:
                    plain.append((key, size))
            space.listed = plain
    for space in spaces.values():
        space.count(config)
    if progress is not None and noted:
        progress.note("")

    plans = {p.space.prefix: p for p in (_plan(s, sample) for s in spaces.values()) if p}
    _budget(list(plans.values()), max_sample_bytes)
    chosen = [p for p in plans.values() if p.picks]
    if progress is not None:
        progress.add_total(
            files=sum(1 + len(p.picks) for p in chosen),
            size=sum(p.ref_size + 2 * sum(s for _, s in p.picks) for p in chosen),
        )
    outcomes = _Sampler(storage, bucket, config, progress, failed).run(chosen)
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
        existing_objects=existing,
        existing_bytes=existing_bytes,
        errors=tuple(errors),
    )
