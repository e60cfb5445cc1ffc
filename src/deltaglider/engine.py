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
  undone if a delta appeared meanwhile (see :meth:`DeltaStore._drop_reference`).
- Writing a key never deletes its other representation (a concurrent writer may have just
  written it): when both ``key.delta`` and ``key`` exist, the newer one is the object, and the
  older one is removed opportunistically, conditionally on its ETag.

Integrity: a reference is checked against the sha256 the delta recorded every time it is fetched
or taken from a cache; every reconstructed or direct object is checked against its recorded
sha256 and size before a file is renamed into place or a stream reports its end.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import logging
import math
import mmap
import os
import re
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, BinaryIO

from . import format as fmt
from .cache import ReferenceCache, open_cache
from .codec import Decoder, Encoder
from .config import Config
from .errors import (
    DecodeError,
    DeltaGliderError,
    DeltaTooLargeError,
    IntegrityError,
    InvalidRange,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from .storage.base import ObjectInfo, Storage

__all__ = ["DeltaStore", "ListResult", "ObjectSummary", "PutResult"]

log = logging.getLogger("deltaglider")

_SPOOL = 64 << 20
_CHUNK = 1 << 20
_WRITE_ATTEMPTS = 5
_TRASH = fmt.RESERVED_PREFIX + "trash/"
_PROBE = fmt.RESERVED_PREFIX + "probe/"
#: A reference set aside (``trash/``) or a create-only probe (``probe/``) lives for the seconds
#: of the call that made it; one this old was left by a process killed meanwhile.
STALE_BOOKKEEPING = timedelta(hours=24)
#: Metadata fields only a delta has: an object with any of them claims to be a delta.
_DELTA_ONLY_FIELDS = ("ref_key", "ref_sha256", "delta_size", "delta_cmd")

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class PutResult:
    """What a put stored."""

    bucket: str
    key: str
    physical_key: str
    size: int
    stored_size: int
    sha256: str
    is_delta: bool
    etag: str
    ref_key: str | None = None
    created_reference: bool = False
    #: Why a delta candidate was stored direct ("" when it was not a candidate or is a delta).
    direct_reason: str = ""


@dataclass(frozen=True)
class ObjectSummary:
    """A logical object. ``size`` is what a download yields; None in a listing made without
    logical sizes for a delta (its stored size is known, not its original size)."""

    bucket: str
    key: str
    size: int | None
    stored_size: int
    last_modified: datetime | None
    etag: str
    is_delta: bool
    physical_key: str
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    sha256: str | None = None
    ref_key: str | None = None
    ref_sha256: str | None = None
    kind: str = "direct"


@dataclass(frozen=True)
class ListResult:
    """A page of a logical listing."""

    objects: list[ObjectSummary] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True)
class _Ref:
    sha256: str
    etag: str


# --- sources ---------------------------------------------------------------------------------


class _Source:
    """A file to store, readable as often as needed: its size and sha256 come first (they go
    into metadata, which is sent before the body). Paths are memory-mapped; a stream is read
    into memory, or into a private temporary file beyond 64 MiB."""

    def __init__(self, source: Source, hasher: ThreadPoolExecutor) -> None:
        self._fh: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._view = memoryview(source).cast("B")
        elif isinstance(source, (str, os.PathLike)):
            self._fh = open(source, "rb")  # noqa: SIM115 - closed in close()
            self._view = self._mapped(self._fh)
        elif _at_start_of_file(source):
            self._view = self._mapped(source)
        else:
            head = _read_up_to(source, _SPOOL)
            if len(head) < _SPOOL:
                self._view = memoryview(head)
            else:
                self._fh = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
                self._fh.write(head)
                while chunk := source.read(_CHUNK):
                    self._fh.write(chunk)
                self._fh.flush()
                self._view = self._mapped(self._fh)
        self.size = len(self._view)
        # Hashed on the side (hashlib releases the GIL): encoding does not wait for it.
        self._sha = hasher.submit(lambda: hashlib.sha256(self._view).hexdigest())

    @property
    def sha256(self) -> str:
        return self._sha.result()

    def _mapped(self, fh: IO[bytes]) -> memoryview:
        if os.fstat(fh.fileno()).st_size == 0:
            return memoryview(b"")
        self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._map)

    @property
    def data(self) -> memoryview:
        return self._view

    def body(self) -> memoryview:
        """The bytes as a store's put takes them (a view: no copy)."""
        return self._view

    def close(self) -> None:
        self._sha.exception()  # the hash must be done with the buffer before it goes
        try:
            self._view.release()
            if self._map is not None:
                self._map.close()
        except BufferError:
            # A failed request can still hold a view of the bytes (its traceback keeps the
            # frames alive): the mapping goes with the last of them. The store's error, not
            # this one, is what the caller must see.
            pass
        if self._fh is not None:
            self._fh.close()


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask, read without changing it where the system allows (setting it to
    read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _at_start_of_file(stream: Any) -> bool:
    """Whether ``stream`` is a regular file positioned at its start (it can be mapped)."""
    try:
        return bool(
            stream.seekable()
            and stream.tell() == 0
            and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        )
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def _read_up_to(stream: Any, size: int) -> bytes:
    chunks = []
    left = size
    while left > 0:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Progress:
    """One file's progress, reported as increments that never go backwards: encoding and,
    when the delta turned out too large, the upload of the whole file are one advance
    through it."""

    def __init__(self, report: Callable[[int], None] | None, total: int) -> None:
        self._report = report
        self.total = total
        self._done = 0
        self._sent = 0
        self._lock = threading.Lock()

    def at(self, position: int) -> None:
        if self._report is None:
            return
        with self._lock:
            step = min(position, self.total) - self._done
            if step <= 0:
                return
            self._done += step
        self._report(step)

    def sent(self, count: int) -> None:
        with self._lock:
            self._sent += count
            position = self._sent
        self.at(position)

    def finish(self) -> None:
        self.at(self.total)


# --- verifying output ------------------------------------------------------------------------


class _Verifier:
    """Hashes everything that passes through and checks it at the end."""

    def __init__(self, key: str, sha256: str | None, size: int | None) -> None:
        self.key = key
        self.expected_sha = sha256
        self.expected_size = size
        self._hash = hashlib.sha256()
        self.count = 0

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.count += len(data)

    def check(self) -> str:
        digest = self._hash.hexdigest()
        if self.expected_size is not None and self.count != self.expected_size:
            raise IntegrityError(
                f"{self.key}: got {self.count} bytes, expected {self.expected_size}",
                key=self.key,
                expected=str(self.expected_size),
                actual=str(self.count),
            )
        if self.expected_sha is not None and digest != self.expected_sha:
            raise IntegrityError(
                f"{self.key}: sha256 mismatch (expected {self.expected_sha}, got {digest})",
                key=self.key,
                expected=self.expected_sha,
                actual=digest,
            )
        return digest


class _RangeWriter:
    """Passes on only the bytes of [start, end) of what is written through it, hashing all."""

    def __init__(
        self,
        out: Any,
        verifier: _Verifier,
        start: int,
        end: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._out = out
        self._progress = progress
        self._verifier = verifier
        self._start = start
        self._end = end
        self._pos = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        self._verifier.update(view)
        lo = max(self._start - self._pos, 0)
        hi = len(view) if self._end is None else min(len(view), self._end - self._pos)
        if hi > lo:
            self._out.write(view[lo:hi])
        self._pos += len(view)
        if self._progress is not None:
            self._progress(len(view))
        return len(view)


class VerifiedReader(io.RawIOBase):
    """A stream of an object's bytes that raises IntegrityError at its end if they are wrong.

    Only bytes ``start`` to ``end`` are returned, but all of the object is read and hashed:
    the end of a range is reported only once the whole object is verified.
    """

    def __init__(
        self,
        inner: Any,
        verifier: _Verifier,
        start: int = 0,
        end: int | None = None,
        closers: Iterable[Callable[[], None]] = (),
    ) -> None:
        super().__init__()
        self._inner = inner
        self._verifier = verifier
        self._start = start
        self._end = end
        self._pos = 0  # object offset of the next byte read from inner
        self._ready = memoryview(b"")  # hashed bytes within the range, not yet returned
        self._closers = list(closers)
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        target = memoryview(b).cast("B")
        while not len(self._ready):
            if self._done:
                return 0
            try:
                chunk = self._inner.read(max(len(target), 1 << 16))
            except DecodeError as exc:
                raise IntegrityError(
                    f"{self._verifier.key}: the delta does not decode: {exc}",
                    key=self._verifier.key,
                ) from exc
            if not chunk:
                self._done = True
                self._verifier.check()
                return 0
            view = memoryview(chunk).cast("B")
            self._verifier.update(view)
            lo = max(self._start - self._pos, 0)
            hi = len(view) if self._end is None else max(min(len(view), self._end - self._pos), 0)
            self._pos += len(view)
            if hi > lo:
                self._ready = view[lo:hi]
        n = min(len(target), len(self._ready))
        target[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            for closer in self._closers:
                with contextlib.suppress(Exception):
                    closer()
        super().close()


# --- the engine ------------------------------------------------------------------------------


class DeltaStore:
    """Logical objects over a :class:`~deltaglider.storage.base.Storage`.

    :param storage: where objects live.
    :param cache: the reference cache (default: the one ``config`` describes).
    :param config: settings (default: :meth:`Config.from_env`).

    Safe to use from many threads; multi-file methods run on a bounded pool of
    ``config.max_workers`` threads.
    """

    def __init__(
        self, storage: Storage, cache: ReferenceCache | None = None, config: Config | None = None
    ) -> None:
        self.storage = storage
        self.config = config or Config.from_env()
        self.cache = cache if cache is not None else open_cache(self.config)
        self._refs: dict[tuple[str, str], _Ref] = {}
        self._create_only: dict[str, bool] = {}
        self._refs_lock = threading.Lock()
        self._coders: OrderedDict[str, tuple[Encoder | None, Decoder]] = OrderedDict()
        self._coders_lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        # Two pools, so that no task ever waits on a task queued behind it: ``_pool`` runs
        # whole operations (multi-file work); ``_io`` runs the single requests an operation fans
        # out (the HEAD of a key's other representation, logical sizes), which never wait on
        # anything themselves.
        self._pool = ThreadPoolExecutor(
            self.config.max_workers, thread_name_prefix="deltaglider-engine"
        )
        self._io = ThreadPoolExecutor(
            self.config.max_workers * 2 + 2, thread_name_prefix="deltaglider-io"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._io.shutdown(wait=True)
        self.cache.close()
        self.storage.close()

    def __enter__(self) -> DeltaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- references ----------------------------------------------------------------------

    def _known_ref(self, bucket: str, prefix: str) -> _Ref | None:
        with self._refs_lock:
            return self._refs.get((bucket, prefix))

    def _remember_ref(self, bucket: str, prefix: str, ref: _Ref | None) -> None:
        with self._refs_lock:
            if ref is None:
                self._refs.pop((bucket, prefix), None)
            else:
                self._refs[(bucket, prefix)] = ref

    def _ref_from_info(self, info: ObjectInfo) -> _Ref | None:
        meta = fmt.parse_metadata(info.metadata or {}, info.key)
        if meta.kind != "reference" or not meta.file_sha256:
            return None
        return _Ref(meta.file_sha256, info.etag)

    def _reference_bytes(self, bucket: str, ref_key: str, sha256: str) -> bytes:
        """The reference with this sha256: from the cache, else fetched and verified.

        If ``reference.bin`` is gone or is another reference, the content-addressed copy kept
        on stores without create-only writes is tried before giving up.
        """
        data = self.cache.get(sha256)
        if data is not None:
            return data
        try:
            data = self._fetch_verified(bucket, ref_key, sha256)
        except (ObjectNotFound, IntegrityError) as first:
            try:
                data = self._fetch_verified(
                    bucket, _backup_key(fmt.deltaspace(ref_key), sha256), sha256
                )
            except (ObjectNotFound, IntegrityError):
                raise first from None
        self.cache.put(sha256, data)
        return data

    def _fetch_verified(self, bucket: str, ref_key: str, sha256: str) -> bytes:
        info, body = self.storage.get(bucket, ref_key)
        try:
            data = _read_all(body, info.size)
        finally:
            body.close()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise IntegrityError(
                f"s3://{bucket}/{ref_key}: the reference is not the one the delta was made "
                f"against (sha256 {digest}, expected {sha256})",
                key=ref_key,
                expected=sha256,
                actual=digest,
            )
        return data

    def _coders_for(
        self, bucket: str, ref_key: str, sha256: str, *, encoder: bool, data: bytes | None = None
    ) -> tuple[Encoder | None, Decoder]:
        """Encoder/decoder of a reference, kept in memory for the few most recent references.

        They hold the reference's bytes, so a reference in use is neither fetched nor taken
        from the cache (decrypted) again; building an encoder indexes the reference, worth
        doing once for many files. One thread builds them, however many need them.
        """
        with self._coders_lock:
            entry = self._coders.get(sha256)
            if entry is not None and (entry[0] is not None or not encoder):
                self._coders.move_to_end(sha256)
                return entry
            lock = self._fetch_locks.setdefault(sha256, threading.Lock())
        with lock:
            with self._coders_lock:
                entry = self._coders.get(sha256)
            if entry is not None and (entry[0] is not None or not encoder):
                return entry
            if data is None:
                data = self._reference_bytes(bucket, ref_key, sha256)
            enc = None
            if encoder:
                secondary: Any = self.config.codec_secondary  # validated by Config
                enc = Encoder(data, level=self.config.codec_level, secondary=secondary)
            entry = (enc, entry[1] if entry is not None else Decoder(data))
            with self._coders_lock:
                self._coders[sha256] = entry
                self._coders.move_to_end(sha256)
                while len(self._coders) > 2:
                    self._coders.popitem(last=False)
            return entry

    def _current_ref(self, bucket: str, key: str, src: _Source) -> tuple[_Ref | None, bytes | None]:
        """The deltaspace's reference, creating it from ``src`` if there is none.

        Returns the reference (None if the deltaspace holds an unusable ``reference.bin``) and,
        when this call created it, its bytes.
        """
        prefix = fmt.deltaspace(key)
        known = self._known_ref(bucket, prefix)
        if known is not None:
            return known, None
        ref_key = fmt.reference_key(prefix)
        for _ in range(_WRITE_ATTEMPTS):
            try:
                info = self.storage.head(bucket, ref_key)
            except ObjectNotFound:
                meta = fmt.reference_metadata(fmt.basename(key), src.sha256)
                if not self._create_only_enforced(bucket):
                    # Without create-only writes, a concurrent creator may overwrite this
                    # reference after deltas were checked against it: keep a content-addressed
                    # copy that readers fall back to (see _reference_bytes).
                    self.storage.put(
                        bucket,
                        _backup_key(prefix, src.sha256),
                        src.body(),
                        size=src.size,
                        metadata=meta,
                        content_type="application/octet-stream",
                    )
                try:
                    info = self.storage.put(
                        bucket,
                        ref_key,
                        src.body(),
                        size=src.size,
                        metadata=meta,
                        content_type="application/octet-stream",
                        if_none_match=True,
                    )
                except PreconditionFailed:
                    continue  # another writer created it first: use theirs
                created = _Ref(src.sha256, info.etag)
                data = bytes(src.data)
                self.cache.put(src.sha256, data)
                self._remember_ref(bucket, prefix, created)
                return created, data
            found = self._ref_from_info(info)
            if found is None:
                log.warning(
                    "s3://%s/%s is not a deltaglider reference; storing direct", bucket, ref_key
                )
                return None, None
            self._remember_ref(bucket, prefix, found)
            return found, None
        raise StorageError(
            f"s3://{bucket}/{ref_key}: could not settle the reference", bucket=bucket, key=ref_key
        )

    def _create_only_enforced(self, bucket: str) -> bool:
        """Whether the store refuses a create-only write over an existing object: declared by
        the storage, then checked once per bucket (two small writes)."""
        if not self.storage.conditional_writes:
            return False
        with self._refs_lock:
            known = self._create_only.get(bucket)
        if known is not None:
            return known
        probe = f"{_PROBE}{os.urandom(8).hex()}"
        self.storage.put(bucket, probe, b"1", if_none_match=True)
        try:
            self.storage.put(bucket, probe, b"2", if_none_match=True)
            enforced = False
            log.warning(
                "s3://%s ignores create-only writes: new references are also kept "
                "content-addressed under %srefs/",
                bucket,
                fmt.RESERVED_PREFIX,
            )
        except PreconditionFailed:
            enforced = True
        finally:
            self.storage.delete(bucket, probe)
        with self._refs_lock:
            self._create_only[bucket] = enforced
        return enforced

    def _reference_still(self, bucket: str, prefix: str, ref: _Ref) -> bool:
        """Whether the deltaspace's reference is (still) ``ref`` (by its sha256)."""
        try:
            info = self.storage.head(bucket, fmt.reference_key(prefix))
        except ObjectNotFound:
            return False
        current = self._ref_from_info(info)
        if current is not None and current.sha256 == ref.sha256:
            self._remember_ref(bucket, prefix, current)
            return True
        return False

    # --- put -----------------------------------------------------------------------------

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
    ) -> PutResult:
        """Stores ``source`` (a path, bytes, or a readable binary stream) as logical ``key``.

        ``delta``: None decides by the file name (the configured extensions); False stores it
        direct; True makes it a delta candidate whatever its name. A candidate is stored as a
        delta only if the delta is at most ``max_ratio`` (default: the configured one) of the
        file; the codec gives up as soon as it knows it would be larger, so an undeltable file
        costs little more than a plain upload. An empty file is always stored direct.
        ``progress`` is called with increments of the file's bytes done (encoded or sent).
        ``tagging`` (``a=1&b=2``, URL-encoded) is set on the object that holds the key in the
        request that writes it, so the object never exists without its tags.
        """
        fmt.check_key(key)
        user = fmt.check_user_metadata(metadata or {})
        ratio = self.config.max_ratio if max_ratio is None else max_ratio
        if not 0 < ratio <= 1:
            raise ValueError("max_ratio must be in (0, 1]")
        content_type = content_type or "application/octet-stream"
        src = _Source(source, self._io)
        tracker = _Progress(progress, src.size)
        try:
            candidate = delta if delta is not None else self.config.is_delta_candidate(key)
            if not candidate or src.size == 0:
                result = self._put_direct(
                    bucket, key, src, user, content_type, "", tracker, tagging=tagging
                )
            else:
                result = self._put_delta(
                    bucket, key, src, user, content_type, ratio, tracker, tagging=tagging
                )
            tracker.finish()
            return result
        finally:
            src.close()

    def _put_direct(
        self,
        bucket: str,
        key: str,
        src: _Source,
        user: dict[str, str],
        content_type: str,
        reason: str,
        tracker: _Progress | None = None,
        *,
        tagging: str | None = None,
    ) -> PutResult:
        physical_key = fmt.direct_key(key)
        meta = fmt.direct_metadata(
            original_name=fmt.basename(key), file_sha256=src.sha256, file_size=src.size
        )
        meta.update(user)
        info = self.storage.put(
            bucket,
            physical_key,
            src.body(),
            size=src.size,
            metadata=meta,
            content_type=content_type,
            progress=tracker.sent if tracker is not None else None,
            tagging=tagging,
        )
        return PutResult(
            bucket,
            key,
            physical_key,
            src.size,
            src.size,
            src.sha256,
            False,
            info.etag,
            direct_reason=reason,
        )

    def _put_delta(
        self,
        bucket: str,
        key: str,
        src: _Source,
        user: dict[str, str],
        content_type: str,
        ratio: float,
        tracker: _Progress,
        *,
        tagging: str | None = None,
    ) -> PutResult:
        prefix = fmt.deltaspace(key)
        ref_key = fmt.reference_key(prefix)
        limit = max(0, math.floor(ratio * src.size))
        created_any = False
        for _ in range(_WRITE_ATTEMPTS):
            ref, created = self._current_ref(bucket, key, src)
            created_any |= created is not None
            if ref is None:
                return self._put_direct(
                    bucket, key, src, user, content_type, "reference", tracker, tagging=tagging
                )
            try:
                encoder, _ = self._coders_for(
                    bucket, ref_key, ref.sha256, encoder=True, data=created
                )
            except (ObjectNotFound, IntegrityError):
                self._remember_ref(bucket, prefix, None)  # gone or replaced: look again
                continue
            assert encoder is not None
            try:
                delta = encoder.encode(src.data, max_delta_size=limit, progress=tracker.at)
            except DeltaTooLargeError:
                result = self._put_direct(
                    bucket, key, src, user, content_type, "ratio", tracker, tagging=tagging
                )
                if created_any:
                    # Even its own zero-diff delta is over the limit (a tiny max ratio): the
                    # reference made for it serves nothing. Removed unless a delta came
                    # meanwhile (the safe way delete removes references).
                    self._maybe_drop_reference(bucket, prefix)
                return result
            meta = fmt.delta_metadata(
                original_name=fmt.basename(key),
                file_sha256=src.sha256,
                file_size=src.size,
                ref_key=ref_key,
                ref_sha256=ref.sha256,
                delta_size=len(delta),
                zero_diff=src.sha256 == ref.sha256,
            )
            meta.update(user)
            info = self.storage.put(
                bucket,
                fmt.delta_key(key),
                delta,
                size=len(delta),
                metadata=meta,
                content_type=content_type,
                tagging=tagging,
            )
            # The reference must still be the one the delta was made against: a concurrent
            # cleanup may have removed it, or (without conditional writes) another writer
            # replaced it. If not, encode again against what is there now.
            if self._reference_still(bucket, prefix, ref):
                return PutResult(
                    bucket,
                    key,
                    fmt.delta_key(key),
                    src.size,
                    len(delta),
                    src.sha256,
                    True,
                    info.etag,
                    ref_key=ref_key,
                    created_reference=created_any,
                )
            log.info(
                "reference of s3://%s/%s changed while storing %s; encoding again",
                bucket,
                prefix,
                key,
            )
            self._remember_ref(bucket, prefix, None)
        raise StorageError(
            f"s3://{bucket}/{key}: the deltaspace's reference kept changing", bucket=bucket, key=key
        )

    # --- resolve, head, get ---------------------------------------------------------------

    def _candidates(self, key: str) -> tuple[str, str]:
        """Physical keys of ``key``: the likelier representation first."""
        if self.config.is_delta_candidate(key):
            return fmt.delta_key(key), fmt.direct_key(key)
        return fmt.direct_key(key), fmt.delta_key(key)

    def _head_or_none(self, bucket: str, physical_key: str) -> ObjectInfo | None:
        """The physical object's info, None if there is none (or no bucket: callers that must
        tell a missing bucket apart ask the store, on their not-found path only)."""
        info = self.storage.head_or_none(bucket, physical_key)
        return None if info is None else self._proven(bucket, info)

    def _proven(self, bucket: str, info: ObjectInfo) -> ObjectInfo:
        """``info`` from a HEAD, or, for an object named as deltaglider names its own (a
        ``.delta`` or a ``reference.bin``) that came without the metadata deltaglider writes
        there (none of it, or only part), the info of a one-byte GET of it. A HEAD has no body
        to prove its headers arrived whole: a connection cut inside them gives an answer with
        part of the metadata, which would make a delta look like a foreign or direct object
        (its stored size taken for its size) and a reference like none. A GET's headers are
        believed only once its body has begun."""
        if not _unproven(info):
            return info
        try:
            got, body = self.storage.get(bucket, info.key, start=0, end=1)
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

    @staticmethod
    def _newer(a: ObjectInfo, b: ObjectInfo) -> bool:
        """Whether ``a`` was written after ``b``: the store's clock first (it is the same for
        every writer), then the recorded creation time within the same second, then the delta.
        """

        def when(info: ObjectInfo) -> tuple[float, float]:
            stored = info.last_modified.timestamp() if info.last_modified else 0.0
            created = fmt.parse_metadata(info.metadata or {}, info.key).created_at
            return (math.floor(stored), created.timestamp() if created else 0.0)

        ta, tb = when(a), when(b)
        if ta != tb:
            return ta > tb
        return a.key.endswith(fmt.DELTA_SUFFIX)

    def _summary(self, bucket: str, key: str, info: ObjectInfo) -> ObjectSummary:
        meta = fmt.parse_metadata(info.metadata or {}, info.key)
        is_delta = (
            info.key.endswith(fmt.DELTA_SUFFIX)
            and meta.kind == "delta"
            and info.key == fmt.delta_key(key)
        )
        size = meta.file_size if is_delta else info.size
        return ObjectSummary(
            bucket=bucket,
            key=key,
            size=size,
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

    def _resolve(self, bucket: str, key: str) -> ObjectInfo:
        """The physical object that holds ``key`` now (HEADs both representations at once)."""
        fmt.check_key(key)
        first, second = self._candidates(key)
        other = self._io.submit(self._head_or_none, bucket, second)
        try:
            a = self._head_or_none(bucket, first)
        finally:
            b = other.result()
        return self._choose(bucket, key, a, b)

    def _choose(
        self,
        bucket: str,
        key: str,
        a: ObjectInfo | None,
        b: ObjectInfo | None,
        *,
        bucket_known: bool = False,
    ) -> ObjectInfo:
        if a is None and b is None:
            if not bucket_known:
                self.storage.head_bucket(bucket)  # BucketNotFound rather than NoSuchKey
            raise ObjectNotFound(
                f"s3://{bucket}/{key} does not exist",
                code="NoSuchKey",
                status=404,
                bucket=bucket,
                key=key,
            )
        if a is None or b is None:
            return a or b  # type: ignore[return-value]
        newer, older = (a, b) if self._newer(a, b) else (b, a)
        self._io.submit(self._drop_stale, bucket, older)
        return newer

    def _drop_stale(self, bucket: str, older: ObjectInfo) -> None:
        """Removes the older representation of a key, unless it changed since it was seen."""
        try:
            self.storage.delete(bucket, older.key, if_match=older.etag or None)
            if older.key.endswith(fmt.DELTA_SUFFIX):
                self._maybe_drop_reference(bucket, fmt.deltaspace(older.key))
        except (StorageError, OSError) as exc:
            log.debug("leaving stale %s: %s", older.key, exc)

    def head(self, bucket: str, key: str) -> ObjectSummary:
        """The logical object: size, content type, user metadata, date, whether a delta."""
        return self._summary(bucket, key, self._resolve(bucket, key))

    def _open_physical(self, bucket: str, key: str) -> tuple[ObjectInfo, Any]:
        """GETs the likelier representation while HEADing the other; 2 requests in all for
        the common case."""
        fmt.check_key(key)
        first, second = self._candidates(key)
        other = self._io.submit(self._head_or_none, bucket, second)
        body = None
        try:
            try:
                info, body = self.storage.get(bucket, first)
            except ObjectNotFound:
                info = None
            b = other.result()
        except BaseException:
            if body is not None:
                body.close()
            raise
        # The GET's 404 named the missing key (a missing bucket raised): no need to ask.
        chosen = self._choose(bucket, key, info, b, bucket_known=True)
        if info is not None and chosen.key == info.key:
            return info, body
        if body is not None:
            body.close()
        return self.storage.get(bucket, chosen.key)

    def open(
        self, bucket: str, key: str, *, start: int = 0, end: int | None = None
    ) -> tuple[ObjectSummary, VerifiedReader]:
        """A readable stream of the object (bytes ``start`` to ``end``, exclusive).

        The stream raises IntegrityError at its end if the object's bytes are wrong: consume
        it to the end before acting on it. For a range, the rest of the object is still read
        and checked before the stream ends.
        """
        info, body = self._open_physical(bucket, key)
        summary = self._summary(bucket, key, info)
        try:
            self._check_delta(bucket, key, info)
            self._check_range(summary, start, end)
            verifier = _Verifier(key, summary.sha256, summary.size)
            if summary.is_delta:
                _, decoder = self._decoder_for(bucket, summary)
                inner: Any = decoder.stream_reader(body, max_output_size=summary.size)
                closers = [inner.close, body.close]
            else:
                inner, closers = body, [body.close]
        except BaseException:
            body.close()
            raise
        return summary, VerifiedReader(inner, verifier, start, end, closers)

    @staticmethod
    def _check_delta(bucket: str, key: str, info: ObjectInfo) -> None:
        """Refuses to read an object stored as ``key``'s delta whose metadata marks it as a
        delta but lacks what rebuilding and checking it needs: the file's sha256 and size (the
        bound on what the delta may decode to), and the reference's key and sha256. Read as
        plain bytes, it would be the delta itself, or an unbounded decode. Objects with no
        delta field at all (another tool's ``x.delta``) are still served as they are."""
        if info.key != fmt.delta_key(key):
            return
        raw = {k.lower(): v for k, v in (info.metadata or {}).items()}
        legacy = not any(k.startswith(("dg-", "dg_")) for k in raw)
        if not any(fmt.read_field(raw, f, bare=legacy) for f in _DELTA_ONLY_FIELDS):
            return
        meta = fmt.parse_metadata(raw, info.key)
        bad = [
            name
            for name, value in (
                ("dg-file-sha256", meta.file_sha256),
                ("dg-file-size", meta.file_size),
                ("dg-ref-key", meta.ref_key),
                ("dg-ref-sha256", meta.ref_sha256),
            )
            if value is None
        ]
        if meta.ref_key is not None and fmt.basename(meta.ref_key) != fmt.REFERENCE_NAME:
            bad.append("dg-ref-key")  # a delta is made against a reference.bin, nothing else
        if bad:
            raise IntegrityError(
                f"s3://{bucket}/{info.key}: the delta's metadata is damaged (missing or invalid: "
                f"{', '.join(bad)}); it cannot be rebuilt and checked",
                key=key,
            )

    def _check_range(self, summary: ObjectSummary, start: int, end: int | None) -> None:
        size = summary.size or 0
        if start < 0 or (end is not None and end < start) or (start > 0 and start >= size):
            raise InvalidRange(
                f"{summary.key}: range {start}-{end} is outside the object ({size} bytes)",
                code="InvalidRange",
                status=416,
                bucket=summary.bucket,
                key=summary.key,
            )

    def _decoder_for(self, bucket: str, summary: ObjectSummary) -> tuple[Encoder | None, Decoder]:
        assert summary.ref_sha256 is not None
        ref_key = summary.ref_key or fmt.reference_key(fmt.deltaspace(summary.physical_key))
        return self._coders_for(bucket, ref_key, summary.ref_sha256, encoder=False)

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
        if isinstance(dest, (str, os.PathLike)):
            return self._get_to_path(bucket, key, Path(dest), start, end, progress)
        return self._get_to(bucket, key, dest, start, end, progress)

    def _get_to(
        self,
        bucket: str,
        key: str,
        out: Any,
        start: int,
        end: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectSummary:
        info, body = self._open_physical(bucket, key)
        try:
            summary = self._summary(bucket, key, info)
            self._check_delta(bucket, key, info)
            self._check_range(summary, start, end)
            verifier = _Verifier(key, summary.sha256, summary.size)
            writer = _RangeWriter(out, verifier, start, end, progress)
            if summary.is_delta:
                _, decoder = self._decoder_for(bucket, summary)
                try:
                    decoder.copy_stream(body, writer, max_output_size=summary.size)
                except DecodeError as exc:
                    raise IntegrityError(
                        f"s3://{bucket}/{key}: the delta does not decode: {exc}", key=key
                    ) from exc
            else:
                while chunk := body.read(_CHUNK):
                    writer.write(chunk)
            verifier.check()
            return summary
        finally:
            body.close()

    def _get_to_path(
        self,
        bucket: str,
        key: str,
        dest: Path,
        start: int,
        end: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectSummary:
        directory = dest.parent
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{dest.name}.", suffix=".dgpart")
        try:
            # The file gets the mode a plain write would give it (mkstemp makes it 0600):
            # the replaced file's, else what the umask allows.
            try:
                mode = stat.S_IMODE(os.stat(dest).st_mode)
            except OSError:
                mode = 0o666 & ~_umask()
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                summary = self._get_to(bucket, key, fh, start, end, progress)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return summary

    def get_bytes(self, bucket: str, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        """The object's (verified) bytes."""
        out = io.BytesIO()
        self._get_to(bucket, key, out, start, end)
        return out.getvalue()

    # --- list --------------------------------------------------------------------------------

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
        and prefixes), sorted; ``next_token`` continues the listing.
        """
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        start_after, skip = _decode_token(token) if token else ("", frozenset())
        objects: list[ObjectSummary] = []
        prefixes: list[str] = []
        # Objects whose other representation (their "twin") sorts later and may still come.
        pending: dict[str, tuple[ObjectInfo, str]] = {}
        storage_token: str | None = None
        last = start_after
        exhausted = False

        def settle(key: str, info: ObjectInfo) -> None:
            objects.append(self._listed(bucket, key, info))

        def full() -> bool:
            return len(objects) + len(prefixes) + len(pending) >= max_keys

        while not exhausted and not full():
            page = self.storage.list_objects(
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
                    settle(key, info if self._listed_newer(info, other) else other)
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
            twin = None if exhausted else self._head_or_none(bucket, twin_key)
            if twin is not None and self._listed_newer(twin, info):
                continue  # the twin is the object: it is listed when the listing reaches it
            settle(key, info)
            if twin is not None:
                older_twins.append(twin_key)  # must not be listed when reached
        if logical_sizes:
            objects = self._fill_sizes(bucket, objects)
        objects.sort(key=lambda o: o.key)
        return ListResult(
            objects=objects,
            prefixes=prefixes,
            next_token=None if exhausted else _encode_token(last, older_twins),
        )

    @staticmethod
    def _listed_newer(a: ObjectInfo, b: ObjectInfo) -> bool:
        ta = a.last_modified.timestamp() if a.last_modified else 0.0
        tb = b.last_modified.timestamp() if b.last_modified else 0.0
        if ta == tb:
            return a.key.endswith(fmt.DELTA_SUFFIX)
        return ta > tb

    def _listed(self, bucket: str, key: str, info: ObjectInfo) -> ObjectSummary:
        is_delta = fmt.physical(info.key).kind == "delta"
        return ObjectSummary(
            bucket=bucket,
            key=key,
            size=None if is_delta else info.size,
            stored_size=info.size,
            last_modified=info.last_modified,
            etag=info.etag,
            is_delta=is_delta,
            physical_key=info.key,
            kind="delta" if is_delta else "direct",
        )

    def _fill_sizes(self, bucket: str, objects: list[ObjectSummary]) -> list[ObjectSummary]:
        heads = self.storage.head_many(bucket, [o.physical_key for o in objects if o.is_delta])
        # Rare (a foreign object named like a delta, or a HEAD cut short): one after another,
        # on this thread (the pool it runs on may be busy with the next page).
        for key, info in heads.items():
            if info is not None and _unproven(info):
                heads[key] = self._proven(bucket, info)

        def fill(obj: ObjectSummary) -> ObjectSummary:
            info = heads.get(obj.physical_key) if obj.is_delta else None
            if info is None:
                return obj
            meta = fmt.parse_metadata(info.metadata or {}, info.key)
            if meta.kind != "delta":  # a foreign object named like a delta: it is its bytes
                return replace(obj, size=info.size, is_delta=False, kind="foreign")
            return replace(
                obj,
                size=meta.file_size,
                sha256=meta.file_sha256,
                content_type=info.content_type,
                metadata=meta.user,
            )

        return [fill(o) for o in objects]

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
        token: str | None = None
        filling: tuple[ListResult, Future[list[ObjectSummary]]] | None = None
        while True:
            page = self.list_objects(
                bucket, prefix=prefix, delimiter=delimiter, token=token, max_keys=max_keys
            )
            if not logical_sizes:
                yield page
            else:
                if filling is not None:
                    yield replace(filling[0], objects=filling[1].result())
                filling = (page, self._io.submit(self._fill_sizes, bucket, page.objects))
            if not page.next_token:
                break
            token = page.next_token
        if filling is not None:
            yield replace(filling[0], objects=filling[1].result())

    def iter_objects(
        self, bucket: str, *, prefix: str = "", logical_sizes: bool = False
    ) -> Iterator[ObjectSummary]:
        """Every logical object under ``prefix``, all pages."""
        for page in self.iter_pages(bucket, prefix=prefix, logical_sizes=logical_sizes):
            yield from page.objects

    # --- delete ------------------------------------------------------------------------------

    def delete(self, bucket: str, key: str) -> bool:
        """Removes the logical object (every representation of it); False if there was none.

        When it was the last delta of its deltaspace, the reference goes too; when there was
        none, a reference left in a deltaspace that holds no delta goes (a delete killed
        between the two, run again, completes).
        """
        fmt.check_key(key)
        first, second = self._candidates(key)
        found = [
            i
            for i in self._io.map(lambda k: self._head_or_none(bucket, k), (first, second))
            if i is not None
        ]
        for info in found:
            try:
                self.storage.delete(bucket, info.key, if_match=info.etag or None)
            except PreconditionFailed:
                pass  # rewritten meanwhile: the newer object stands, as if written after
            except ObjectNotFound:
                pass
        space = fmt.deltaspace(key)
        if any(i.key.endswith(fmt.DELTA_SUFFIX) for i in found):
            self._maybe_drop_reference(bucket, space)
        elif not found and self._head_or_none(bucket, fmt.reference_key(space)) is not None:
            # Deleted already, maybe by a process killed before it removed the reference
            # its deltaspace no longer needs: the delete run again finishes that work.
            self._maybe_drop_reference(bucket, space)
        elif not found:
            self.storage.head_bucket(bucket)  # a missing bucket is an error, a missing key not
        return bool(found)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> dict[str, Exception]:
        """Removes several logical objects in parallel; returns failures by key."""
        keys = list(keys)
        errors: dict[str, Exception] = {}
        futures = {key: self._pool.submit(self.delete, bucket, key) for key in keys}
        for key, fut in futures.items():
            try:
                fut.result()
            except Exception as exc:
                errors[key] = exc
        return errors

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Removes every logical object under ``prefix`` (and the references they used)."""
        physical = [
            o
            for o in self.storage.iter_objects(bucket, prefix=prefix)
            if fmt.physical(o.key).kind in ("delta", "direct")
        ]
        if not physical:
            return 0
        errors = self.storage.delete_many(bucket, [o.key for o in physical])
        if errors:
            first = next(iter(errors.values()))
            raise StorageError(
                f"could not delete {len(errors)} object(s) under s3://{bucket}/{prefix}: {first}",
                bucket=bucket,
                key=prefix,
            )
        spaces = {fmt.deltaspace(o.key) for o in physical if o.key.endswith(fmt.DELTA_SUFFIX)}
        for space in sorted(spaces):
            self._maybe_drop_reference(bucket, space)
        return len({fmt.physical(o.key).logical for o in physical})

    def drop_unused_references(self, bucket: str, prefix: str = "") -> list[str]:
        """Removes the references of deltaspaces under ``prefix`` that hold no delta, and
        returns those deltaspaces.

        A process killed after it deleted a deltaspace's last delta and before its reference
        leaves such a reference behind, and no later delete would find it (a listing of the
        deltaspace shows nothing to delete). Each goes the safe way, as when a delete leaves a
        deltaspace empty: only with no delta left, and put back if a writer stores one meanwhile.
        """
        with_ref: set[str] = set()
        with_delta: set[str] = set()
        for obj in self.storage.iter_objects(bucket, prefix=prefix):
            kind = fmt.physical(obj.key).kind
            if kind == "reference":
                with_ref.add(fmt.deltaspace(obj.key))
            elif kind == "delta":
                with_delta.add(fmt.deltaspace(obj.key))
        unused = sorted(with_ref - with_delta)
        for space in unused:
            self._maybe_drop_reference(bucket, space)
        self.drop_stale_bookkeeping(bucket)
        return unused

    def drop_stale_bookkeeping(
        self, bucket: str, *, older_than: timedelta = STALE_BOOKKEEPING
    ) -> list[str]:
        """Removes the references set aside and the create-only probes that processes killed
        in the middle of a reference removal or a probe left in the bucket (a set-aside copy
        costs as much storage as its reference), once they are ``older_than``; returns their
        keys. Nothing else under ``.deltaglider/`` is touched."""
        cutoff = datetime.now(timezone.utc) - older_than
        stale = [
            o.key
            for folder in (_TRASH, _PROBE)
            for o in self.storage.iter_objects(bucket, prefix=folder)
            if o.last_modified is not None and _aware(o.last_modified) <= cutoff
        ]
        if stale:
            failures = self.storage.delete_many(bucket, stale)
            for key, exc in failures.items():
                log.warning("could not remove s3://%s/%s: %s", bucket, key, exc)
            log.info(
                "removed %d stale object(s) under s3://%s/%s",
                len(stale),
                bucket,
                fmt.RESERVED_PREFIX,
            )
        return stale

    def _has_delta(self, bucket: str, prefix: str, sha256: str | None = None) -> list[str]:
        """Deltas in the deltaspace (those against ``sha256`` only, when given)."""
        list_prefix = f"{prefix}/" if prefix else ""
        found = []
        token = None
        while True:
            page = self.storage.list_objects(bucket, prefix=list_prefix, delimiter="/", token=token)
            for o in page.objects:
                if o.key.endswith(fmt.DELTA_SUFFIX):
                    found.append(o.key)
                    if sha256 is None:
                        return found
            if not page.next_token:
                break
            token = page.next_token
        if sha256 is None:
            return found
        against = []
        for k in found:
            info = self._head_or_none(bucket, k)
            if info is not None and fmt.parse_metadata(info.metadata or {}, k).ref_sha256 == sha256:
                against.append(k)
        return against

    def _maybe_drop_reference(self, bucket: str, prefix: str) -> None:
        if not self._has_delta(bucket, prefix):
            self._drop_reference(bucket, prefix)

    def _drop_reference(self, bucket: str, prefix: str) -> None:
        """Removes a deltaspace's reference, safely against writers racing into it.

        The reference is first copied aside (server-side) and removed only if unchanged. Then
        the deltaspace is listed again: a delta stored meanwhile gets the reference back (a
        create-only copy). If a new reference was created in between, deltas made against the
        old one are rebuilt from the copy aside and stored again. Writers check the reference
        after they store a delta, which covers the writes that come after this second listing.
        """
        ref_key = fmt.reference_key(prefix)
        info = self._head_or_none(bucket, ref_key)
        if info is None:
            return
        ref = self._ref_from_info(info)
        trash = (
            f"{_TRASH}{hashlib.sha256(f'{prefix}'.encode()).hexdigest()[:16]}-"
            f"{os.urandom(6).hex()}.bin"
        )
        try:
            self.storage.copy(bucket, ref_key, bucket, trash)
        except ObjectNotFound:
            return  # another cleanup got there first
        try:
            try:
                self.storage.delete(bucket, ref_key, if_match=info.etag or None)
            except (PreconditionFailed, ObjectNotFound):
                return  # replaced or removed by someone else: theirs to handle
            self._remember_ref(bucket, prefix, None)
            if ref is None:
                return
            late = self._has_delta(bucket, prefix, ref.sha256)
            if not late:
                self._drop_backups(bucket, prefix)
                return
            # Put it back, create-only (a PUT: create-only copies are not enforced everywhere).
            data = self._trash_bytes(bucket, trash, ref)
            try:
                self.storage.put(
                    bucket,
                    ref_key,
                    data,
                    size=len(data),
                    metadata=info.metadata or {},
                    content_type=info.content_type,
                    if_none_match=True,
                )
                log.info(
                    "restored s3://%s/%s for %d delta(s) stored meanwhile",
                    bucket,
                    ref_key,
                    len(late),
                )
            except PreconditionFailed:
                self._rescue(bucket, data, ref, late)
        finally:
            try:
                self.storage.delete(bucket, trash)
            except StorageError as exc:
                log.warning("could not remove s3://%s/%s: %s", bucket, trash, exc)

    def _drop_backups(self, bucket: str, prefix: str) -> None:
        """Removes the content-addressed copies of a deltaspace's references (if any were
        kept): called once the deltaspace holds no delta."""
        folder = _backup_key(prefix, "").rsplit("/", 1)[0] + "/"
        keys = [o.key for o in self.storage.iter_objects(bucket, prefix=folder)]
        if keys and not self._has_delta(bucket, prefix):
            self.storage.delete_many(bucket, keys)

    def _trash_bytes(self, bucket: str, trash: str, ref: _Ref) -> bytes:
        info, body = self.storage.get(bucket, trash)
        try:
            data = _read_all(body, info.size)
        finally:
            body.close()
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise IntegrityError(f"s3://{bucket}/{trash}: the set-aside reference is corrupt")
        self.cache.put(ref.sha256, data)
        return data

    def _rescue(self, bucket: str, data: bytes, ref: _Ref, keys: list[str]) -> None:
        """Re-stores deltas whose reference was replaced, from the old reference's bytes."""
        decoder = Decoder(data)
        for physical_key in keys:
            try:
                dinfo, dbody = self.storage.get(bucket, physical_key)
            except ObjectNotFound:
                continue
            try:
                meta = fmt.parse_metadata(dinfo.metadata or {}, physical_key)
                if meta.ref_sha256 != ref.sha256 or meta.file_size is None:
                    continue
                out = io.BytesIO()
                decoder.copy_stream(dbody, out, max_output_size=meta.file_size)
            finally:
                dbody.close()
            restored = out.getvalue()
            if hashlib.sha256(restored).hexdigest() != meta.file_sha256:
                raise IntegrityError(f"s3://{bucket}/{physical_key}: rebuilt bytes are wrong")
            logical = fmt.physical(physical_key).logical
            self.put(
                bucket,
                logical,
                restored,
                metadata=meta.user,
                content_type=dinfo.content_type,
                delta=True,
            )
            log.info("re-stored s3://%s/%s against the deltaspace's new reference", bucket, logical)

    # --- copy --------------------------------------------------------------------------------

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
    ) -> PutResult:
        """Copies a logical object. A delta whose destination deltaspace has the same reference
        is copied server-side; otherwise it is rebuilt (verified, through a temporary file)
        and stored again, as :meth:`put` would store it (``delta``, ``max_ratio``). Direct
        objects are copied server-side unless ``delta`` asks for a delta."""
        fmt.check_key(key)
        src = self.head(src_bucket, src_key)
        user = fmt.check_user_metadata(metadata) if metadata is not None else (src.metadata or {})
        ctype = content_type or src.content_type
        if src.is_delta and src.ref_sha256 and delta is not False:
            prefix = fmt.deltaspace(key)
            dst_ref_info = self._head_or_none(bucket, fmt.reference_key(prefix))
            dst_ref = self._ref_from_info(dst_ref_info) if dst_ref_info else None
            if dst_ref is not None and dst_ref.sha256 == src.ref_sha256 and src.size is not None:
                assert src.sha256 is not None
                meta = fmt.delta_metadata(
                    original_name=fmt.basename(key),
                    file_sha256=src.sha256,
                    file_size=src.size,
                    ref_key=fmt.reference_key(prefix),
                    ref_sha256=dst_ref.sha256,
                    delta_size=src.stored_size,
                    zero_diff=src.sha256 == dst_ref.sha256,
                )
                meta.update(user)
                info = self.storage.copy(
                    src_bucket,
                    src.physical_key,
                    bucket,
                    fmt.delta_key(key),
                    metadata=meta,
                    content_type=ctype,
                )
                if self._reference_still(bucket, prefix, dst_ref):
                    if progress is not None:
                        progress(src.size)
                    return PutResult(
                        bucket,
                        key,
                        info.key,
                        src.size,
                        src.stored_size,
                        src.sha256,
                        True,
                        info.etag,
                        ref_key=fmt.reference_key(prefix),
                    )
                # The reference changed under the copy (a delete of the deltaspace's last
                # delta, racing): rebuild instead. If that fails too (the source is gone),
                # the delta copied above must not stay as the answer to a failed copy.
                try:
                    return self._copy_rebuilt(
                        src_bucket, src_key, bucket, key, user, ctype, delta, max_ratio, progress
                    )
                except DeltaGliderError:
                    with contextlib.suppress(DeltaGliderError):
                        self.storage.delete(bucket, info.key, if_match=info.etag)
                        self._maybe_drop_reference(bucket, prefix)
                    raise
            return self._copy_rebuilt(
                src_bucket, src_key, bucket, key, user, ctype, delta, max_ratio, progress
            )
        candidate = delta if delta is not None else self.config.is_delta_candidate(key)
        if (
            src.is_delta
            or src.kind == "foreign"
            or src.sha256 is None
            or (candidate and src.size)
            # A direct object lives at its direct key. Anything else that reads as direct may
            # be a delta whose HEAD lost its last headers (a connection closed inside them
            # looks complete to boto3): copied as is, its delta would be stored as the file.
            or src.physical_key != fmt.direct_key(src_key)
        ):
            # Foreign bytes get their sha256 recorded; a delta candidate goes through the
            # delta route like any upload.
            return self._copy_rebuilt(
                src_bucket, src_key, bucket, key, user, ctype, delta, max_ratio, progress
            )
        meta = fmt.direct_metadata(
            original_name=fmt.basename(key), file_sha256=src.sha256, file_size=src.size or 0
        )
        meta.update(user)
        info = self.storage.copy(
            src_bucket,
            src.physical_key,
            bucket,
            fmt.direct_key(key),
            metadata=meta,
            content_type=ctype,
        )
        if progress is not None:
            progress(src.size or 0)
        return PutResult(
            bucket, key, info.key, src.size or 0, src.stored_size, src.sha256, False, info.etag
        )

    def _copy_rebuilt(
        self,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        user: Mapping[str, str],
        content_type: str | None,
        delta: bool | None,
        max_ratio: float | None,
        progress: Callable[[int], None] | None,
    ) -> PutResult:
        with tempfile.TemporaryFile() as fh:
            self._get_to(src_bucket, src_key, fh, 0, None)
            fh.flush()
            fh.seek(0)
            return self.put(
                bucket,
                key,
                fh,
                metadata=user,
                content_type=content_type,
                delta=delta,
                max_ratio=max_ratio,
                progress=progress,
            )

    # --- many files --------------------------------------------------------------------------

    def put_many(
        self,
        bucket: str,
        items: Iterable[tuple[str, Source] | tuple[str, Source, Mapping[str, Any]]],
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
        jobs: list[tuple[str, Source, dict[str, Any]]] = []
        for item in items:
            own = dict(item[2]) if len(item) > 2 else {}
            jobs.append((item[0], item[1], {**options, **own}))
        by_space: dict[str, list[tuple[str, Source, dict[str, Any]]]] = {}
        for job in jobs:
            delta = job[2].get("delta")
            if delta is not False and (delta or self.config.is_delta_candidate(job[0])):
                by_space.setdefault(fmt.deltaspace(job[0]), []).append(job)
        leaders = []
        for prefix, members in by_space.items():
            if len(members) < 2 or self._known_ref(bucket, prefix) is not None:
                continue
            if self._head_or_none(bucket, fmt.reference_key(prefix)) is None:
                members.sort(key=lambda m: _natural(m[0]))
                leaders.append(members[len(members) // 2])
        first = {job[0] for job in leaders}
        rest = [job for job in jobs if job[0] not in first]

        def one(key: str, source: Source, opts: dict[str, Any]) -> PutResult:
            report = functools.partial(progress, key) if progress is not None else None
            return self.put(bucket, key, source, progress=report, **opts)

        for batch in (leaders, rest):
            for (key, _, _), result, exc in self.map(one, batch):
                yield key, result, exc

    def map(
        self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]
    ) -> Iterator[tuple[tuple[Any, ...], Any, BaseException | None]]:
        """Runs ``fn(*item)`` for each item on the engine's pool (at most ``max_workers`` at
        once); yields ``(item, result, error)`` as they finish. One failure does not stop the
        others."""
        futures: dict[Future[Any], tuple[Any, ...]] = {}
        iterator = iter(items)

        def submit() -> bool:
            try:
                item = next(iterator)
            except StopIteration:
                return False
            futures[self._pool.submit(fn, *item)] = item
            return True

        for _ in range(self.config.max_workers * 2):
            if not submit():
                break
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                item = futures.pop(fut)
                exc = fut.exception()
                yield item, None if exc else fut.result(), exc
                submit()


def _backup_key(prefix: str, sha256: str) -> str:
    """Where a deltaspace's reference is also kept on stores without create-only writes."""
    space = hashlib.sha256(prefix.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{fmt.RESERVED_PREFIX}refs/{space}/{sha256}.bin"


def _natural(key: str) -> list[Any]:
    """Sort key that puts app-1.9 before app-1.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _read_all(body: Any, size: int) -> bytes:
    chunks = []
    got = 0
    while chunk := body.read(_CHUNK):
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    if got != size:
        raise StorageError(f"read {got} bytes of a {size}-byte object")
    return data


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


def _aware(moment: datetime) -> datetime:
    """A listed time as an aware one (a store that gives naive times gives UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _unproven(info: ObjectInfo) -> bool:
    """Whether a HEAD's answer for a ``.delta`` or a ``reference.bin`` lacks the metadata of
    what deltaglider stores under that name (none, or only some of it: a cut answer)."""
    named = fmt.physical(info.key).kind
    if named not in ("delta", "reference"):
        return False
    return fmt.parse_metadata(info.metadata or {}, info.key).kind != named
