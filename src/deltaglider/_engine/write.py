"""The write path: a file becomes a delta against its deltaspace's reference, or is stored
direct.

Policy lives here: which files are delta candidates (the configured extensions, or the
caller's ``delta``), the max ratio (a delta over it is given up on as soon as the codec knows,
and the file stored whole), the empty file (always direct), and the check after a delta is
stored that the reference is still the one it was made against (a concurrent cleanup may
have removed it, or, on a store without create-only writes, another writer replaced it: the
file is then encoded again against what is there now).

Memory: the file is mapped (:mod:`.sources`), and its delta is written by the encoder window by
window into a :class:`~deltaglider._spool.Spool` (memory for a small delta, a private temporary
file for a big one), because its size goes into the metadata that precedes the body; the store
sends it in parts. Neither the file nor its delta is held whole in the heap.

The write path never deletes: when it made a reference that serves nothing (even the file's
own delta was over a tiny max ratio), it says so in :class:`Written`, and the engine's face
hands that deltaspace to cleanup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import format as fmt
from .._executor import Pool
from .._io import ViewReader
from .._spool import Spool
from ..config import Config
from ..errors import DeltaTooLargeError, IntegrityError, ObjectNotFound, StorageError
from ..progress import Tracker
from ..storage.base import ObjectInfo, Storage, WriteOptions
from .model import WRITE_ATTEMPTS, PutResult, Source, log
from .refs import References
from .sources import Upload

__all__ = ["Writer", "Written", "delta_limit"]


def delta_limit(size: int, max_ratio: float) -> int:
    """The largest delta worth storing for a file of ``size`` bytes."""
    return max(0, math.floor(max_ratio * size))


class Written(NamedTuple):
    """What a put stored, and the deltaspace whose reference it created for nothing (None)."""

    result: PutResult
    unused_reference: str | None = None


@dataclass(frozen=True)
class _Put:
    """One file being stored: where, its bytes, and what goes with them."""

    bucket: str
    key: str
    upload: Upload
    user: dict[str, str]
    content_type: str
    tracker: Tracker
    tagging: str | None
    options: WriteOptions | None = None


class Writer:
    """Stores files as deltas or direct (see the module's notes)."""

    def __init__(self, storage: Storage, refs: References, config: Config, requests: Pool) -> None:
        self._storage = storage
        self._refs = refs
        self._config = config
        self._requests = requests

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
    ) -> Written:
        fmt.check_key(key)
        user = fmt.check_user_metadata(metadata or {})
        ratio = self._config.max_ratio if max_ratio is None else max_ratio
        if not 0 < ratio <= 1:
            raise ValueError("max_ratio must be in (0, 1]")
        upload = Upload(source, self._requests)
        job = _Put(
            bucket,
            key,
            upload,
            user,
            content_type or "application/octet-stream",
            Tracker(progress, upload.size),
            tagging,
            options or None,
        )
        try:
            candidate = delta if delta is not None else self._config.is_delta_candidate(key)
            if not candidate or upload.size == 0:
                written = Written(self._direct(job, ""))
            else:
                written = self._delta(job, ratio)
            job.tracker.finish()
            return written
        finally:
            upload.close()

    def measure(self, bucket: str, key: str, data: Any) -> tuple[str, int] | None:
        """The reference ``key`` would be encoded against and the size of ``data``'s delta
        against it, computed and not stored; None when its deltaspace has no reference yet
        (the file would become it) or none usable."""
        prefix = fmt.deltaspace(key)
        ref = self._refs.find(bucket, prefix)
        if ref is None:
            return None
        ref_key = fmt.reference_key(prefix)
        encoder = self._refs.encoder(bucket, ref_key, ref.sha256, None)
        return ref_key, encoder.copy_stream(ViewReader(data), _Counter())[1]

    def _direct(self, job: _Put, reason: str) -> PutResult:
        upload = job.upload
        physical_key = fmt.direct_key(job.key)
        meta = fmt.direct_metadata(
            original_name=fmt.basename(job.key), file_sha256=upload.sha256, file_size=upload.size
        )
        meta.update(job.user)
        info = self._storage.put(
            job.bucket,
            physical_key,
            upload.view,
            size=upload.size,
            metadata=meta,
            content_type=job.content_type,
            progress=job.tracker.add,
            tagging=job.tagging,
            options=job.options,
        )
        return PutResult(
            job.bucket,
            job.key,
            physical_key,
            upload.size,
            upload.size,
            upload.sha256,
            False,
            info.etag,
            direct_reason=reason,
        )

    def _delta(self, job: _Put, ratio: float) -> Written:
        bucket, key, upload = job.bucket, job.key, job.upload
        prefix = fmt.deltaspace(key)
        ref_key = fmt.reference_key(prefix)
        limit = delta_limit(upload.size, ratio)
        created_any = False
        for _ in range(WRITE_ATTEMPTS):
            ref, created = self._refs.current(bucket, key, upload, job.options)
            created_any |= created is not None
            if ref is None:
                return Written(self._direct(job, "reference"))
            try:
                encoder = self._refs.encoder(bucket, ref_key, ref.sha256, created)
            except (ObjectNotFound, IntegrityError):
                self._refs.remember(bucket, prefix, None)  # gone or replaced: look again
                continue
            with Spool() as spool:
                try:
                    encoder.copy_stream(
                        ViewReader(upload.view),
                        spool,
                        max_delta_size=limit,
                        progress=job.tracker.at,
                    )
                except DeltaTooLargeError:
                    # Even its own zero-diff delta was over the limit (a tiny max ratio): a
                    # reference made for it serves nothing.
                    return Written(self._direct(job, "ratio"), prefix if created_any else None)
                delta_size = spool.written
                stored = self._store_delta(job, ref_key, ref.sha256, spool.view())
            if self._refs.is_current(bucket, prefix, ref):
                return Written(
                    PutResult(
                        bucket,
                        key,
                        fmt.delta_key(key),
                        upload.size,
                        delta_size,
                        upload.sha256,
                        True,
                        stored.etag,
                        ref_key=ref_key,
                        created_reference=created_any,
                    )
                )
            log.info(
                "reference of s3://%s/%s changed while storing %s; encoding again",
                bucket,
                prefix,
                key,
            )
            self._refs.remember(bucket, prefix, None)
        raise StorageError(
            f"s3://{bucket}/{key}: the deltaspace's reference kept changing", bucket=bucket, key=key
        )

    def _store_delta(
        self, job: _Put, ref_key: str, ref_sha256: str, delta: memoryview
    ) -> ObjectInfo:
        """Stores ``delta`` as the job's file's delta against the reference ``ref_key``."""
        upload = job.upload
        meta = fmt.delta_metadata(
            original_name=fmt.basename(job.key),
            file_sha256=upload.sha256,
            file_size=upload.size,
            ref_key=ref_key,
            ref_sha256=ref_sha256,
            delta_size=len(delta),
            zero_diff=upload.sha256 == ref_sha256,
        )
        meta.update(job.user)
        return self._storage.put(
            job.bucket,
            fmt.delta_key(job.key),
            delta,
            size=len(delta),
            metadata=meta,
            content_type=job.content_type,
            tagging=job.tagging,
            options=job.options,
        )


class _Counter:
    """A writer that only counts (a delta measured, not kept)."""

    def write(self, data: Any, /) -> int:
        return memoryview(data).nbytes
