"""The write path: a file becomes a delta against its deltaspace's reference, or is stored
direct.

Policy lives here: which files are delta candidates (the configured extensions, or the
caller's ``delta``), the max ratio (a delta over it is given up on as soon as the codec knows,
and the file stored whole), the empty file (always direct), and the check after a delta is
stored that the reference is still the one it was made against (a concurrent cleanup may
have removed it, or, on a store without create-only writes, another writer replaced it: the
file is then encoded again against what is there now).

The write path never deletes: when it made a reference that serves nothing (even the file's
own delta was over a tiny max ratio), it says so in :class:`Written`, and the engine's face
hands that deltaspace to cleanup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .. import format as fmt
from .._executor import Pool
from ..config import Config
from ..errors import DeltaTooLargeError, IntegrityError, ObjectNotFound, StorageError
from ..progress import Tracker
from ..storage.base import Storage
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
    ) -> Written:
        fmt.check_key(key)
        user = fmt.check_user_metadata(metadata or {})
        ratio = self._config.max_ratio if max_ratio is None else max_ratio
        if not 0 < ratio <= 1:
            raise ValueError("max_ratio must be in (0, 1]")
        content_type = content_type or "application/octet-stream"
        upload = Upload(source, self._requests)
        tracker = Tracker(progress, upload.size)
        try:
            candidate = delta if delta is not None else self._config.is_delta_candidate(key)
            if not candidate or upload.size == 0:
                written = Written(
                    self._direct(bucket, key, upload, user, content_type, "", tracker, tagging)
                )
            else:
                written = self._delta(
                    bucket, key, upload, user, content_type, ratio, tracker, tagging
                )
            tracker.finish()
            return written
        finally:
            upload.close()

    def _direct(
        self,
        bucket: str,
        key: str,
        upload: Upload,
        user: dict[str, str],
        content_type: str,
        reason: str,
        tracker: Tracker,
        tagging: str | None,
    ) -> PutResult:
        physical_key = fmt.direct_key(key)
        meta = fmt.direct_metadata(
            original_name=fmt.basename(key), file_sha256=upload.sha256, file_size=upload.size
        )
        meta.update(user)
        info = self._storage.put(
            bucket,
            physical_key,
            upload.view,
            size=upload.size,
            metadata=meta,
            content_type=content_type,
            progress=tracker.add,
            tagging=tagging,
        )
        return PutResult(
            bucket,
            key,
            physical_key,
            upload.size,
            upload.size,
            upload.sha256,
            False,
            info.etag,
            direct_reason=reason,
        )

    def _delta(
        self,
        bucket: str,
        key: str,
        upload: Upload,
        user: dict[str, str],
        content_type: str,
        ratio: float,
        tracker: Tracker,
        tagging: str | None,
    ) -> Written:
        prefix = fmt.deltaspace(key)
        ref_key = fmt.reference_key(prefix)
        limit = delta_limit(upload.size, ratio)
        created_any = False
        for _ in range(WRITE_ATTEMPTS):
            ref, created = self._refs.current(bucket, key, upload)
            created_any |= created is not None
            if ref is None:
                return Written(
                    self._direct(
                        bucket, key, upload, user, content_type, "reference", tracker, tagging
                    )
                )
            try:
                encoder = self._refs.encoder(bucket, ref_key, ref.sha256, created)
            except (ObjectNotFound, IntegrityError):
                self._refs.remember(bucket, prefix, None)  # gone or replaced: look again
                continue
            try:
                delta = encoder.encode(upload.view, max_delta_size=limit, progress=tracker.at)
            except DeltaTooLargeError:
                result = self._direct(
                    bucket, key, upload, user, content_type, "ratio", tracker, tagging
                )
                # Even its own zero-diff delta was over the limit (a tiny max ratio): a
                # reference made for it serves nothing.
                return Written(result, prefix if created_any else None)
            meta = fmt.delta_metadata(
                original_name=fmt.basename(key),
                file_sha256=upload.sha256,
                file_size=upload.size,
                ref_key=ref_key,
                ref_sha256=ref.sha256,
                delta_size=len(delta),
                zero_diff=upload.sha256 == ref.sha256,
            )
            meta.update(user)
            info = self._storage.put(
                bucket,
                fmt.delta_key(key),
                delta,
                size=len(delta),
                metadata=meta,
                content_type=content_type,
                tagging=tagging,
            )
            if self._refs.is_current(bucket, prefix, ref):
                return Written(
                    PutResult(
                        bucket,
                        key,
                        fmt.delta_key(key),
                        upload.size,
                        len(delta),
                        upload.sha256,
                        True,
                        info.etag,
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
