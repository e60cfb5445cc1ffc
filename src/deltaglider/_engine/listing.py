"""The logical listing: the store's listing with references and ``.deltaglider/`` hidden,
``x.delta`` shown as ``x``, and never a key twice.

When both stored forms of a key exist (its "twins"), the newer is listed, by the rule the read
path uses (:meth:`~.lookup.Lookup.is_newer`). The twins of a key are adjacent or nearly so in
the store's order, but one of them may come on a later page than the other: a key whose twin
sorts later is held back until the twin comes or cannot come any more; past the end of a page,
one HEAD settles it, and a twin found older is named in the continuation token so that it is
not listed when the listing reaches it.

Logical sizes of deltas (in their metadata) cost a HEAD each, sent concurrently through the
store's bulk HEAD; :meth:`Lister.pages` fills a page's while the next page is being listed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace

from .. import format as fmt
from .._executor import Pool
from ..errors import StorageError
from ..storage.base import ObjectInfo, Storage
from .lookup import Lookup, looks_cut, summarize, with_logical_size
from .model import ListResult, ObjectSummary

__all__ = ["Lister", "after_token"]


def _encode_token(after: str, skip: Iterable[str]) -> str:
    raw = json.dumps({"after": after, "skip": sorted(skip)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, frozenset[str]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, skip = raw["after"], raw.get("skip", [])
        if not isinstance(after, str) or not all(isinstance(k, str) for k in skip):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise StorageError(
            "invalid continuation token", code="InvalidArgument", status=400
        ) from None
    return after, frozenset(skip)


def after_token(key: str) -> str:
    """A continuation token that starts the listing after the logical ``key`` (S3's
    ``StartAfter`` and ``Marker``): neither stored form of it is listed."""
    return _encode_token(key, {fmt.delta_key(key), fmt.direct_key(key)} - {key})


class Lister:
    """Lists logical objects (see the module's notes)."""

    def __init__(self, storage: Storage, lookup: Lookup, requests: Pool) -> None:
        self._storage = storage
        self._lookup = lookup
        self._requests = requests

    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        token: str | None = None,
        max_keys: int = 1000,
        logical_sizes: bool = False,
    ) -> ListResult:
        """One page of at most ``max_keys`` entries (objects and prefixes), sorted."""
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        start_after, skip = _decode_token(token) if token else ("", frozenset())
        objects: list[ObjectSummary] = []
        prefixes: list[str] = []
        # Objects whose other stored form (their twin) sorts later and may still come.
        pending: dict[str, tuple[ObjectInfo, str]] = {}
        storage_token: str | None = None
        last = start_after
        exhausted = False

        def settle(key: str, info: ObjectInfo) -> None:
            objects.append(summarize(bucket, key, info))

        def full() -> bool:
            return len(objects) + len(prefixes) + len(pending) >= max_keys

        while not exhausted and not full():
            page = self._storage.list_objects(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                start_after=start_after if storage_token is None else "",
                token=storage_token,
            )
            entries: list[tuple[str, ObjectInfo | None]] = [(o.key, o) for o in page.objects]
            entries += [(p, None) for p in page.prefixes]
            entries.sort(key=lambda e: e[0])
            stopped = False
            for physical_key, info in entries:
                if full():
                    stopped = True
                    break
                last = physical_key
                for key in [k for k, (_, twin) in pending.items() if twin < physical_key]:
                    settle(key, pending.pop(key)[0])  # its twin would have come by now
                if info is None:
                    if prefix or physical_key != fmt.RESERVED_PREFIX:
                        prefixes.append(physical_key)
                    continue
                kind = fmt.physical(physical_key)
                if kind.kind in ("reference", "internal") or physical_key in skip:
                    continue
                key = kind.logical
                twin_key = fmt.direct_key(key) if kind.kind == "delta" else fmt.delta_key(key)
                if key in pending:
                    other = pending.pop(key)[0]
                    settle(key, info if self._lookup.is_newer(bucket, info, other) else other)
                elif twin_key > physical_key and twin_key.startswith(prefix):
                    pending[key] = (info, twin_key)
                else:
                    settle(key, info)
            if stopped:
                break
            storage_token = page.next_token
            exhausted = storage_token is None
        # Twins beyond this page: one HEAD settles each.
        older_twins = [k for k in skip if k > last]
        for key, (info, twin_key) in pending.items():
            twin = None if exhausted else self._lookup.head_or_none(bucket, twin_key)
            if twin is not None and self._lookup.is_newer(bucket, twin, info):
                continue  # the twin is the object: it is listed when the listing reaches it
            settle(key, info)
            if twin is not None:
                older_twins.append(twin_key)  # must not be listed when reached
        if logical_sizes:
            objects = self.with_sizes(bucket, objects)
        objects.sort(key=lambda o: o.key)
        return ListResult(
            objects=objects,
            prefixes=prefixes,
            next_token=None if exhausted else _encode_token(last, older_twins),
        )

    def with_sizes(
        self, bucket: str, objects: list[ObjectSummary], *, every: bool = False
    ) -> list[ObjectSummary]:
        """The objects with their deltas' logical sizes, sha256, content type and metadata
        (one HEAD each, concurrently); with ``every``, those of direct objects too (whose
        sizes a listing gives, but not what deltaglider recorded)."""

        def wanted(obj: ObjectSummary) -> bool:
            return obj.is_delta or (every and obj.sha256 is None)

        heads = self._storage.head_many(bucket, [o.physical_key for o in objects if wanted(o)])
        # Rare (a foreign object named like a delta, or a HEAD cut short): one after another,
        # on this thread (the pool it runs on may be busy with the next page).
        for key, info in heads.items():
            if info is not None and looks_cut(info):
                heads[key] = self._lookup.trusted(bucket, info)

        def fill(obj: ObjectSummary) -> ObjectSummary:
            info = heads.get(obj.physical_key) if wanted(obj) else None
            return obj if info is None else with_logical_size(obj, info)

        return [fill(o) for o in objects]

    def pages(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        logical_sizes: bool = False,
        max_keys: int = 1000,
    ) -> Iterator[ListResult]:
        """Every page. With ``logical_sizes``, a page's sizes are fetched while the next page
        is being listed."""
        token: str | None = None
        filling: tuple[ListResult, Future[list[ObjectSummary]]] | None = None
        while True:
            page = self.page(
                bucket, prefix=prefix, delimiter=delimiter, token=token, max_keys=max_keys
            )
            if not logical_sizes:
                yield page
            else:
                if filling is not None:
                    yield replace(filling[0], objects=filling[1].result())
                filling = (page, self._requests.submit(self.with_sizes, bucket, page.objects))
            if not page.next_token:
                break
            token = page.next_token
        if filling is not None:
            yield replace(filling[0], objects=filling[1].result())
