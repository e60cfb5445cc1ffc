"""The delta engine: put, get, head, list, copy and delete of *logical* objects.

A logical object ``key`` is stored as a delta (``key.delta`` against its deltaspace's
``reference.bin``) or direct (``key``, or ``key.direct`` for reserved names; see
:mod:`deltaglider.format`). The engine owns every policy: which files are deltas, the max ratio,
when a reference is created or removed, and integrity. Storage only moves bytes; the codec only
computes deltas.

Concurrency, without locks (many processes on many machines may share a bucket):

- A deltaspace's reference is created with a create-only write; a writer that loses the race
  reads the winner and encodes against it.
- After storing a delta, the writer checks that the deltaspace's reference is still the one it
  encoded against (one HEAD); if it was removed or replaced meanwhile, it re-encodes against
  whatever is current (re-creating the reference from its own file if there is none). The same
  check makes stores without conditional writes safe: a writer whose reference was overwritten
  by a concurrent creator sees it and re-encodes.
- A reference is removed only when no delta remains in its deltaspace, and the removal is
  undone if a delta appeared meanwhile (see :mod:`deltaglider._engine.cleanup`).
- Writing a key never deletes its other representation (a concurrent writer may have just
  written it): when both ``key.delta`` and ``key`` exist, the newer one is the object, and the
  older one is removed opportunistically, conditionally on its ETag.

Integrity: a reference is checked against the sha256 the delta recorded every time it is fetched
or taken from a cache; every reconstructed or direct object is checked against its recorded
sha256 and size before a file is renamed into place or a stream reports its end.

This module is the face: :class:`DeltaStore` builds the stages of :mod:`deltaglider._engine`
(lookup, references, write, read, copy, listing, cleanup, batches) and delegates to them. It is
also where one stage's outcome becomes another's work: the older twin a read finds and the
unused reference a write leaves are handed to cleanup here, so that no stage calls another
behind the caller's back. docs/architecture.md draws the path of an upload and a download.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from . import format as fmt
from ._engine.batch import Batches, Item, first_reference, natural_key
from ._engine.cleanup import Janitor
from ._engine.copy import Copier
from ._engine.listing import Lister, after_token
from ._engine.lookup import Lookup, summarize
from ._engine.model import (
    STALE_BOOKKEEPING,
    ListResult,
    ObjectSummary,
    PutResult,
    Source,
)
from ._engine.read import Opened, Reader
from ._engine.refs import ARCHIVE_CLASSES, References, make_encoder
from ._engine.verify import VerifiedReader
from ._engine.write import Writer, delta_limit
from ._executor import EnginePools
from .cache import ReferenceCache, open_cache
from .config import Config
from .errors import StorageError
from .storage.base import ObjectInfo, Storage, WriteOptions

__all__ = [
    "ARCHIVE_CLASSES",
    "DeltaStore",
    "ListResult",
    "ObjectSummary",
    "Opened",
    "PutResult",
    "VerifiedReader",
    "after_token",
    "delta_limit",
    "first_reference",
    "make_encoder",
    "natural_key",
]


class DeltaStore:
    """Logical objects over a :class:`~deltaglider.storage.base.Storage`.

    :param storage: where objects live.
    :param cache: the reference cache (default: the one ``config`` describes).
    :param config: settings (default: :meth:`Config.from_env`).

    Safe to use from many threads; multi-file methods run on a bounded pool of
    ``config.max_workers`` threads (the operations tier of :mod:`deltaglider._executor`).
    """

    def __init__(
        self, storage: Storage, cache: ReferenceCache | None = None, config: Config | None = None
    ) -> None:
        self.storage = storage
        self.config = config or Config.from_env()
        self.cache = cache if cache is not None else open_cache(self.config)
        #: The engine's thread pools: ``operations`` runs whole operations of a batch (callers
        #: run their own batches of engine calls there too), ``requests`` the single requests
        #: an operation fans out.
        self.pools = EnginePools(self.config.max_workers)
        requests = self.pools.requests
        self._lookup = Lookup(storage, self.config, requests)
        self._refs = References(storage, self.cache, self.config)
        self._writer = Writer(storage, self._refs, self.config, requests)
        self._reader = Reader(self._lookup, self._refs)
        self._lister = Lister(storage, self._lookup, requests)
        self._janitor = Janitor(storage, self._refs, self._lookup, requests, put=self.put)
        self._copier = Copier(
            storage,
            self._lookup,
            self._refs,
            is_candidate=self.config.is_delta_candidate,
            head=self.head,
            read_into=lambda bucket, key, out: self.get(bucket, key, out),
            put=self.put,
            undo=self._janitor.undo_put,
        )
        self._batches = Batches(
            storage,
            self._refs,
            self.config,
            self.pools.operations,
            requests,
            put=self.put,
            delete=self.delete,
        )

    def close(self) -> None:
        self.pools.shutdown()
        self._refs.release()  # the mapped references the coders hold
        self.cache.close()
        self.storage.close()

    def __enter__(self) -> DeltaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cleanup_later(self, bucket: str, older: ObjectInfo | None) -> None:
        """A key's older stored form, found beside the newer, goes in the background."""
        if older is not None:
            self.pools.requests.submit(self._janitor.drop_stale, bucket, older)

    # Writing.

    def put(
        self,
        bucket: str,
        key: str,
        source: Source,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        delta: bool | None = None,
        max_ratio: float | None = None,
        progress: Callable[[int], None] | None = None,
        tagging: str | None = None,
        options: WriteOptions | None = None,
    ) -> PutResult:
        """Stores ``source`` (a path, bytes, or a readable binary stream) as logical ``key``.

        ``delta``: None decides by the file name (the configured extensions); False stores it
        direct; True makes it a delta candidate whatever its name. A candidate is stored as a
        delta only if the delta is at most ``max_ratio`` (default: the configured one) of the
        file; the codec gives up as soon as it knows it would be larger, so an undeltable file
        costs little more than a plain upload. An empty file is always stored direct.
        ``progress`` is called with increments of the file's bytes done (encoded or sent).
        ``tagging`` (``a=1&b=2``, URL-encoded) is set on the object that holds the key in the
        request that writes it, so the object never exists without its tags. ``options``:
        S3's own options of the write (encryption, storage class, ACL, Cache-Control,
        Content-Encoding: :class:`~deltaglider.storage.base.WriteOptions`), applied to the
        delta or direct object and to a reference this put creates; a reference that exists
        already keeps its own.
        """
        written = self._writer.put(
            bucket,
            key,
            source,
            metadata=metadata,
            content_type=content_type,
            delta=delta,
            max_ratio=max_ratio,
            progress=progress,
            tagging=tagging,
            options=options,
        )
        if written.unused_reference is not None:
            # Removed unless a delta came meanwhile (the safe way delete removes references).
            self._janitor.drop_reference_if_unused(bucket, written.unused_reference)
        return written.result

    def measure_delta(self, bucket: str, key: str, data: Any) -> tuple[str, int] | None:
        """What storing ``data`` (a buffer) as ``key`` would cost, without storing it: the
        reference it would be encoded against and its delta's size; None when the key's
        deltaspace has no reference yet (the file would become it). Reads the reference as an
        upload would (and keeps it in the cache)."""
        return self._writer.measure(bucket, key, data)

    def clear_cache(self) -> None:
        """Forgets every reference this engine knows and empties its reference cache."""
        self._refs.forget()

    def undo_put(self, result: PutResult) -> None:
        """Removes what :meth:`put` (or :meth:`copy`) stored, unless it was replaced since,
        and the reference it may have made if no delta uses it: for a caller whose next step
        after the put failed (the client's tags of a copy)."""
        self._janitor.undo_put(result)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        delta: bool | None = None,
        max_ratio: float | None = None,
        progress: Callable[[int], None] | None = None,
        options: WriteOptions | None = None,
    ) -> PutResult:
        """Copies a logical object. A delta whose destination deltaspace has the same reference
        is copied server-side; otherwise it is rebuilt (verified, through a temporary file)
        and stored again, as :meth:`put` would store it (``delta``, ``max_ratio``). Direct
        objects are copied server-side unless ``delta`` asks for a delta."""
        return self._copier.copy(
            src_bucket,
            src_key,
            bucket,
            key,
            metadata=metadata,
            content_type=content_type,
            delta=delta,
            max_ratio=max_ratio,
            progress=progress,
            options=options,
        )

    # Reading.

    def head(self, bucket: str, key: str) -> ObjectSummary:
        """The logical object: size, content type, user metadata, date, whether a delta."""
        found = self._lookup.resolve(bucket, key)
        self._cleanup_later(bucket, found.older)
        return summarize(bucket, found.key, found.info)

    def open_object(self, bucket: str, key: str) -> Opened:
        """The object found and its body open, for callers that must see what it is before
        reading it (conditions, ranges counted from the end): ``.summary``, then
        ``.stream(start, end)``, ``.write_to(out, ...)`` or ``.save_as(path, ...)``, or
        ``.close()``. Costs the same two requests as a download."""
        opened, older = self._reader.open(bucket, key)
        self._cleanup_later(bucket, older)
        return opened

    def open(
        self, bucket: str, key: str, *, start: int = 0, end: int | None = None
    ) -> tuple[ObjectSummary, VerifiedReader]:
        """A readable stream of the object (bytes ``start`` to ``end``, exclusive).

        The stream raises IntegrityError at its end if the object's bytes are wrong: consume
        it to the end before acting on it. For a range, the rest of the object is still read
        and checked before the stream ends.
        """
        opened = self.open_object(bucket, key)
        return opened.summary, opened.stream(start, end)

    def get(
        self,
        bucket: str,
        key: str,
        dest: str | os.PathLike[str] | Any,
        *,
        start: int = 0,
        end: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectSummary:
        """Writes the object to ``dest``: a path, or a writable binary stream.

        A path is written under a temporary name in its own directory and renamed over
        ``dest`` only once the bytes are verified; nothing is left behind on failure. To a
        stream, bytes are written as they come and IntegrityError is raised at the end if they
        were wrong. ``progress`` is called with increments of the object's bytes processed.
        """
        opened = self.open_object(bucket, key)
        if isinstance(dest, (str, os.PathLike)):
            return opened.save_as(dest, start, end, progress)
        return opened.write_to(dest, start, end, progress)

    # Listing.

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        token: str | None = None,
        max_keys: int = 1000,
        logical_sizes: bool = False,
    ) -> ListResult:
        """One page of the logical listing.

        Hides references and ``.deltaglider/``, shows ``x.delta`` as ``x`` and never shows a key
        twice (when both representations of a key exist, the newer is listed). With
        ``logical_sizes``, deltas' original sizes are fetched (one HEAD each, concurrently);
        otherwise their ``size`` is None. A page holds at most ``max_keys`` entries (objects
        and prefixes), sorted; ``next_token`` continues the listing (:func:`after_token` makes
        one that starts after a given key).
        """
        return self._lister.page(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            token=token,
            max_keys=max_keys,
            logical_sizes=logical_sizes,
        )

    def iter_pages(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        logical_sizes: bool = False,
        max_keys: int = 1000,
    ) -> Iterator[ListResult]:
        """Every page of the logical listing. With ``logical_sizes``, a page's sizes are
        fetched while the next page is being listed."""
        return self._lister.pages(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            logical_sizes=logical_sizes,
            max_keys=max_keys,
        )

    def iter_objects(
        self, bucket: str, *, prefix: str = "", logical_sizes: bool = False
    ) -> Iterator[ObjectSummary]:
        """Every logical object under ``prefix``, all pages."""
        for page in self.iter_pages(bucket, prefix=prefix, logical_sizes=logical_sizes):
            yield from page.objects

    def complete(self, bucket: str, objects: list[ObjectSummary]) -> list[ObjectSummary]:
        """Listed objects with what a listing does not give (a delta's logical size; for every
        object its recorded sha256, content type and metadata): one HEAD each, concurrently."""
        return self._lister.with_sizes(bucket, objects, every=True)

    def reference_sizes(self, bucket: str, prefixes: Iterable[str]) -> dict[str, int | None]:
        """The size of each deltaspace's ``reference.bin`` (None: it has none), HEADed at once:
        what a listing of logical objects does not show and a report of stored bytes adds."""
        spaces = list(prefixes)
        if not spaces:
            return {}
        heads = self.storage.head_many(bucket, [fmt.reference_key(p) for p in spaces])
        return {
            p: (info.size if (info := heads.get(fmt.reference_key(p))) is not None else None)
            for p in spaces
        }

    # Deleting.

    def delete(self, bucket: str, key: str) -> bool:
        """Removes the logical object (every representation of it); False if there was none.

        When it was the last delta of its deltaspace, the reference goes too; when there was
        none, a reference left in a deltaspace that holds no delta goes (a delete killed
        between the two, run again, completes).
        """
        return self._janitor.delete(bucket, key)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> dict[str, Exception]:
        """Removes several logical objects in parallel; returns failures by key."""
        return self._batches.delete_many(bucket, keys)

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Removes every logical object under ``prefix`` (each as :meth:`delete` removes it,
        references with the last delta of their deltaspace) and returns how many."""
        keys = [o.key for o in self.iter_objects(bucket, prefix=prefix)]
        errors = self.delete_many(bucket, keys)
        if errors:
            first = next(iter(errors.values()))
            raise StorageError(
                f"could not delete {len(errors)} object(s) under s3://{bucket}/{prefix}: {first}",
                bucket=bucket,
                key=prefix,
            )
        return len(keys)

    def drop_unused_references(self, bucket: str, prefix: str = "") -> list[str]:
        """Removes the references of deltaspaces under ``prefix`` that hold no delta, and
        returns those deltaspaces.

        A process killed after it deleted a deltaspace's last delta and before its reference
        leaves such a reference behind, and no later delete would find it (a listing of the
        deltaspace shows nothing to delete). Each goes the safe way, as when a delete leaves a
        deltaspace empty: only with no delta left, and put back if a writer stores one meanwhile.
        """
        return self._janitor.drop_unused_references(bucket, prefix)

    def drop_stale_bookkeeping(
        self, bucket: str, *, older_than: timedelta = STALE_BOOKKEEPING
    ) -> list[str]:
        """Removes the references set aside and the create-only probes that processes killed
        in the middle of a reference removal or a probe left in the bucket (a set-aside copy
        costs as much storage as its reference), once they are ``older_than``; returns their
        keys. Nothing else under ``.deltaglider/`` is touched."""
        return self._janitor.drop_stale_bookkeeping(bucket, older_than=older_than)

    def clear_own_objects(self, bucket: str) -> bool:
        """Removes deltaglider's own objects (``.deltaglider/``, references no delta uses) from
        a bucket that holds nothing else, so that it can be deleted; False, and nothing
        removed, if it holds a user object."""
        return self._janitor.clear_own_objects(bucket)

    # Many files.

    def put_many(
        self,
        bucket: str,
        items: Iterable[Item],
        *,
        progress: Callable[[str, int], None] | None = None,
        **options: Any,
    ) -> Iterator[tuple[str, PutResult | None, BaseException | None]]:
        """Stores several files in parallel; yields ``(key, result, error)`` as each finishes.

        An item is ``(key, source)`` or ``(key, source, options)``: its own :meth:`put`
        options over the common ``options``. ``progress(key, count)`` reports each file's
        bytes done.

        Choosing the reference: in a deltaspace that has no reference yet, the first file stored
        becomes it, and every later file is a delta against it. Given a batch, this stores first
        the delta candidate in the middle of the batch's natural (version-aware) order: for a
        series of releases, that halves the distance from the reference to the farthest one,
        and so the size of the largest deltas. The rest follow in parallel.
        """
        return self._batches.put_many(bucket, items, progress, options)

    def batch_leaders(self, bucket: str, keys: Sequence[str]) -> set[str]:
        """The keys :meth:`put_many` would store first if given ``keys`` (delta candidates by
        name): a plan of a batch that runs elsewhere (``migrate``) follows the same rule."""
        return self._batches.leaders(bucket, [k for k in keys if self.config.is_delta_candidate(k)])
