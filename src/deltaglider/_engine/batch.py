"""Many files at once: which file of a batch becomes a new deltaspace's reference, and the
batch run on the engine's operations pool (see :mod:`deltaglider._executor`).

Choosing the reference: in a deltaspace that has no reference yet, the first file stored
becomes it, and every later file is a delta against it. Given a batch, the delta candidate in
the middle of the batch's natural (version-aware) order goes first: for a series of releases
that halves the distance from the reference to the farthest one, and so the size of the
largest deltas. The rest follow in parallel. ``analyze`` and ``migrate`` predict and plan with
the same rule (:func:`first_reference`, :meth:`Batches.leaders`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .. import format as fmt
from .._executor import Pool
from ..config import Config
from ..storage.base import Storage
from .model import PutResult, Source
from .refs import References, ref_from_info

__all__ = ["Batches", "first_reference", "natural_key"]

Item = tuple[str, Source] | tuple[str, Source, Mapping[str, Any]]


def natural_key(key: str) -> list[Any]:
    """Sort key that puts app-1.9 before app-1.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def first_reference(keys: Sequence[str]) -> str:
    """The key a batch stores first in a new deltaspace, to become its reference: the middle
    one in natural (version-aware) order."""
    ordered = sorted(keys, key=natural_key)
    return ordered[len(ordered) // 2]


class Batches:
    """Runs batches for the engine's face: ``put`` and ``delete`` are the face's own."""

    def __init__(
        self,
        storage: Storage,
        refs: References,
        config: Config,
        operations: Pool,
        requests: Pool,
        *,
        put: Callable[..., PutResult],
        delete: Callable[[str, str], bool],
    ) -> None:
        self._storage = storage
        self._refs = refs
        self._config = config
        self._operations = operations
        self._requests = requests
        self._put = put
        self._delete = delete

    def leaders(self, bucket: str, candidates: Iterable[str]) -> set[str]:
        """The keys to store first among delta candidates: in each deltaspace that has no
        reference yet and gets two or more of them, :func:`first_reference` of those (the
        references are HEADed at once on the requests pool, and those found are remembered)."""
        by_space: dict[str, list[str]] = {}
        for key in candidates:
            by_space.setdefault(fmt.deltaspace(key), []).append(key)
        spaces = {
            p: ks
            for p, ks in by_space.items()
            if len(ks) > 1 and self._refs.known(bucket, p) is None
        }
        if not spaces:
            return set()
        found = self._requests.map(
            lambda p: self._storage.head_or_none(bucket, fmt.reference_key(p)), list(spaces)
        )
        leaders = set()
        for (prefix, members), info in zip(spaces.items(), found, strict=True):
            if info is None:
                leaders.add(first_reference(members))
                continue
            # The batch's files go to this deltaspace at once: what its reference is was just
            # read, so none of them needs a HEAD of its own to learn it (each still checks it
            # after storing its delta).
            ref = ref_from_info(info)
            if ref is not None:
                self._refs.remember(bucket, prefix, ref)
        return leaders

    def put_many(
        self,
        bucket: str,
        items: Iterable[Item],
        progress: Callable[[str, int], None] | None,
        options: Mapping[str, Any],
    ) -> Iterator[tuple[str, PutResult | None, BaseException | None]]:
        jobs: list[tuple[str, Source, dict[str, Any]]] = []
        for item in items:
            own = dict(item[2]) if len(item) > 2 else {}
            jobs.append((item[0], item[1], {**options, **own}))
        candidates = [
            job[0]
            for job in jobs
            if job[2].get("delta") is not False
            and (job[2].get("delta") or self._config.is_delta_candidate(job[0]))
        ]
        first = self.leaders(bucket, candidates)
        leaders = [job for job in jobs if job[0] in first]
        rest = [job for job in jobs if job[0] not in first]

        def one(key: str, source: Source, opts: dict[str, Any]) -> PutResult:
            report = functools.partial(progress, key) if progress is not None else None
            return self._put(bucket, key, source, progress=report, **opts)

        for batch in (leaders, rest):
            for (key, _, _), result, exc in self._operations.as_completed(one, batch):
                yield key, result, exc

    def delete_many(self, bucket: str, keys: Iterable[str]) -> dict[str, Exception]:
        """Removes several logical objects in parallel; returns failures by key, in the order
        the keys were given."""
        keys = list(keys)
        errors: dict[str, Exception] = {}
        for (key,), _, exc in self._operations.as_completed(
            lambda k: self._delete(bucket, k), ((k,) for k in keys)
        ):
            if exc is not None:
                errors[key] = exc  # type: ignore[assignment]
        return {key: errors[key] for key in dict.fromkeys(keys) if key in errors}
