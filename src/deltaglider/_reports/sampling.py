"""How :func:`deltaglider.analyze.analyze` samples: the plain objects of each would-be
deltaspace, the plan (its would-be reference and the candidates worth downloading, within the
byte budget) and the sampler that downloads and encodes them.

A read model of the physical layout, as :mod:`deltaglider.analyze` explains: it reads objects
(GET) and writes nothing. What the engine would do is asked of the engine, not re-implemented:
which key a batch makes the reference (:func:`~deltaglider.engine.first_reference`), in which
order (:func:`~deltaglider.engine.natural_key`), the encoder
(:func:`~deltaglider.engine.make_encoder`) and the largest delta worth storing
(:func:`~deltaglider.engine.delta_limit`).

The sampler runs on a :class:`~deltaglider._executor.Pool` of its own in the operations tier
(a deltaspace sampled is an operation: it waits only on the storage's and the codec's tiers),
sized by the configuration the analysis runs with, which may not be a store's (a caller can
override ``max_workers``), and shut down when the analysis ends, so that an interrupted
analysis cancels its own queue and nothing else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _io
from .._executor import Pool, operation_threads
from ..codec import Encoder
from ..config import Config
from ..engine import delta_limit, first_reference, make_encoder, natural_key
from ..errors import DeltaGliderError, DeltaTooLargeError, StorageError
from ..progress import ProgressSink, Tracker
from ..storage.base import Storage

__all__ = ["Outcome", "PlainSpace", "Plan", "Sampler", "budget", "plan_space", "spread"]

T = TypeVar("T")


@dataclass
class PlainSpace:
    """One would-be deltaspace: the plain objects listed in it, then counted."""

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


@dataclass
class Plan:
    """What to download in one deltaspace: its reference and samples."""

    space: PlainSpace
    ref_key: str
    ref_size: int
    existing: bool
    #: Candidates besides the reference, the most useful samples first.
    order: list[tuple[str, int]]
    #: The samples chosen within the byte budget (:func:`budget`).
    picks: list[tuple[str, int]] = field(default_factory=list)

    @property
    def potential(self) -> int:
        """Bytes a deltaspace can save at most: what is not its reference."""
        return self.space.candidate_size - (0 if self.existing else self.ref_size)


def plan_space(space: PlainSpace, sample: int) -> Plan | None:
    """The plan of a deltaspace; None when it has nothing to sample."""
    if space.existing_ref is not None:
        if not space.keys:
            return None
        ref_key, ref_size = space.existing_ref
        others = sorted(space.keys, key=lambda kv: natural_key(kv[0]))
        return Plan(space, ref_key, ref_size, True, spread(others, sample))
    if len(space.keys) < 2:
        return None
    # As put_many: the middle of all candidates, empty ones included. An empty file is stored
    # direct and makes no reference; the engine's reference is then whichever file comes
    # first, and the middle non-empty one is the best guess.
    ref_key = first_reference(space.candidate_keys)
    if ref_key not in dict(space.keys):
        ref_key = first_reference([k for k, _ in space.keys])
    ordered = sorted(space.keys, key=lambda kv: natural_key(kv[0]))
    mid = next(i for i, (k, _) in enumerate(ordered) if k == ref_key)
    ref_size = ordered[mid][1]
    # Delta sizes grow with the distance (in versions) from the reference: sample along it.
    by_distance = sorted(
        (i for i in range(len(ordered)) if i != mid), key=lambda i: (abs(i - mid), i)
    )
    return Plan(space, ref_key, ref_size, False, spread([ordered[i] for i in by_distance], sample))


def budget(plans: list[Plan], max_bytes: int) -> None:
    """Chooses the samples (``picks``) within ``max_bytes``: every deltaspace's reference and
    first sample, largest potential first, then more samples round by round."""
    left = max_bytes
    chosen: list[Plan] = []
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


def _fetch(storage: Storage, bucket: str, key: str, advance: Callable[[int], None]) -> _io.Staged:
    """An object's bytes, staged (in memory, or in a private mapped file when large); a
    StorageError if the body ends short of the object's size."""
    info, body = storage.get(bucket, key)
    try:
        data = _io.stage(body, advance=advance)
    finally:
        body.close()
    if data.size != info.size:
        data.close()
        raise StorageError(
            f"s3://{bucket}/{key}: read {data.size} bytes of {info.size}", bucket=bucket, key=key
        )
    return data


@dataclass
class Outcome:
    """What the sampling of one deltaspace found."""

    sampled: int = 0
    sampled_bytes: int = 0
    deltas: int = 0
    sample_size: int = 0
    sample_stored: int = 0
    errors: int = 0
    ref_ok: bool = False
    #: What the would-be reference's own file takes as its delta against itself (or whole).
    ref_stored: int = 0


@dataclass
class _Task:
    """A download in flight: a plan's reference (``key`` None) or one of its samples."""

    plan: Plan
    key: str | None
    #: Its listed size, and its progress (a reference counts once, downloaded; a sample
    #: twice, downloaded and encoded).
    size: int
    tracker: Tracker


class Sampler:
    """Runs every deltaspace's reference download and sample encodes on one bounded pool.

    At most ``workers`` deltaspaces are open at once (their reference and encoder in
    memory); a deltaspace's samples are queued as soon as its encoder is built, so that a
    few large deltaspaces are sampled as much in parallel as many small ones. Results are
    gathered in the calling thread. One run per sampler.
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
        self._workers = operation_threads(config.max_workers)
        self._pool = Pool("deltaglider-analyze", self._workers)
        self._tasks: dict[Future[Any], _Task] = {}
        # Deltaspaces open: their reference and encoder once here (None while downloading),
        # and how many of their samples are still running.
        self._open: dict[str, tuple[_io.Staged, Encoder] | None] = {}
        self._running: dict[str, int] = {}
        self._outcomes: dict[str, Outcome] = {}

    def _advance(self, count: int) -> None:
        if self.progress is not None:
            self.progress.advance(count)

    def _file_done(self, failed: bool = False) -> None:
        if self.progress is not None:
            self.progress.file_done(failed=failed)

    def _reference(
        self, key: str, existing: bool, tracker: Tracker
    ) -> tuple[_io.Staged, Encoder, int]:
        """Downloads a reference and builds its encoder; for a would-be reference, also what
        its own file takes: the engine stores it as a delta against itself too (a few bytes
        per window, cheap to encode), or whole if even that is over the max ratio."""
        data = _fetch(self.storage, self.bucket, key, tracker.add)
        try:
            encoder = make_encoder(self.config, data.view)
            own = 0
            if not existing:
                limit = delta_limit(data.size, self.config.max_ratio)
                try:
                    own = len(encoder.encode(data.view, max_delta_size=limit))
                except DeltaTooLargeError:
                    own = data.size
        except BaseException:
            data.close()
            raise
        return data, encoder, own

    def _sample(self, encoder: Encoder, key: str, tracker: Tracker) -> tuple[int, int, bool]:
        """Downloads and encodes one candidate: (its size, what it would take, as a delta).

        The limit is the engine's: over it, the file would be stored whole, and the codec
        gives up on it early, so an undeltable sample costs little more than its download.
        """
        data = _fetch(self.storage, self.bucket, key, tracker.add)
        try:
            limit = delta_limit(data.size, self.config.max_ratio)

            def encoded(position: int) -> None:
                tracker.at(data.size + position)  # after its download

            try:
                delta = encoder.encode(data.view, max_delta_size=limit, progress=encoded)
            except DeltaTooLargeError:
                return data.size, data.size, False
            return data.size, len(delta), True
        finally:
            data.close()

    def _tracker(self, total: int) -> Tracker:
        return Tracker(self.progress.advance if self.progress is not None else None, total)

    def _open_space(self, plan: Plan) -> None:
        """Queues the download of a deltaspace's reference (its samples follow it)."""
        tracker = self._tracker(plan.ref_size)
        task = self._pool.submit(self._reference, plan.ref_key, plan.existing, tracker)
        self._tasks[task] = _Task(plan, None, plan.ref_size, tracker)
        self._open[plan.space.prefix] = None

    def _queue_sample(self, plan: Plan, encoder: Encoder, key: str, size: int) -> None:
        tracker = self._tracker(2 * size)
        task = self._pool.submit(self._sample, encoder, key, tracker)
        self._tasks[task] = _Task(plan, key, size, tracker)

    def run(self, plans: list[Plan]) -> dict[str, Outcome]:
        self._outcomes = {p.space.prefix: Outcome() for p in plans}
        waiting = deque(p for p in plans if p.picks)
        try:
            while waiting or self._tasks:
                while waiting and len(self._open) < self._workers:
                    self._open_space(waiting.popleft())
                done, _ = wait(self._tasks, return_when=FIRST_COMPLETED)
                for fut in done:
                    self._settle(fut)
        finally:
            # Whatever is left (an interruption): drop what has not started; the pool waits
            # for what has.
            for fut in self._tasks:
                fut.cancel()
            self._pool.shutdown(wait=True)
            for opened in self._open.values():
                if opened is not None:
                    opened[0].close()
            self._open.clear()
        return self._outcomes

    def _settle(self, fut: Future[Any]) -> None:
        """Takes in one finished task: a reference (its samples are queued) or a sample."""
        task = self._tasks.pop(fut)
        plan, key = task.plan, task.key
        prefix = plan.space.prefix
        out = self._outcomes[prefix]
        exc = fut.exception()
        if exc is not None and not isinstance(exc, (DeltaGliderError, OSError)):
            raise exc
        if key is not None:
            self._running[prefix] -= 1
        task.tracker.finish()  # what a failed or changed object did not report
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
            out.ref_ok = True
            out.ref_stored = own
            out.sampled += 1
            out.sampled_bytes += data.size
            self._open[prefix] = (data, encoder)
            self._running[prefix] = len(plan.picks)
            for pick_key, pick_size in plan.picks:
                self._queue_sample(plan, encoder, pick_key, pick_size)
        else:
            self._file_done()
            got, stored, is_delta = fut.result()
            out.sampled += 1
            out.sampled_bytes += got
            out.sample_size += got
            out.sample_stored += stored
            out.deltas += is_delta
        if not self._running.get(prefix):
            opened = self._open.pop(prefix)
            if opened is not None:
                opened[0].close()  # the reference's bytes go (its encoder's view keeps them)
