"""Copying a logical object: server-side when the bytes can stay as they are stored, else
rebuilt (read verified into a private temporary file) and stored again as an upload would be.

- A delta whose destination deltaspace has the same reference (by sha256) is copied
  server-side with new metadata, then the destination's reference is checked, as a write
  checks it; if it changed meanwhile, the object is rebuilt instead, and if that fails too,
  the copied delta is taken back (it must not stay as the answer to a failed copy).
- A direct object is copied server-side, unless it is to become a delta, is foreign (its
  sha256 is then recorded), or does not live at its direct key (it may be a delta whose HEAD
  lost its last headers: copied as is, the delta would be stored as the file).

A collaborator of the engine's face, which hands it the operations it composes (``head``,
``read_into``, ``put``, ``undo``), so that a copy goes through the same read, write and
cleanup as everything else.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Mapping
from typing import IO, Any

from .. import format as fmt
from ..errors import DeltaGliderError
from ..storage.base import Storage, WriteOptions
from .lookup import Lookup
from .model import ObjectSummary, PutResult
from .refs import References, ref_from_info

__all__ = ["Copier"]


class Copier:
    def __init__(
        self,
        storage: Storage,
        lookup: Lookup,
        refs: References,
        *,
        is_candidate: Callable[[str], bool],
        head: Callable[[str, str], ObjectSummary],
        read_into: Callable[[str, str, IO[bytes]], Any],
        put: Callable[..., PutResult],
        undo: Callable[[PutResult], None],
    ) -> None:
        self._storage = storage
        self._lookup = lookup
        self._refs = refs
        self._is_candidate = is_candidate
        self._head = head
        self._read_into = read_into
        self._put = put
        self._undo = undo

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
        fmt.check_key(key)
        src = self._head(src_bucket, src_key)
        user = fmt.check_user_metadata(metadata) if metadata is not None else (src.metadata or {})
        ctype = content_type or src.content_type

        def rebuilt() -> PutResult:
            with tempfile.TemporaryFile() as fh:
                self._read_into(src_bucket, src_key, fh)
                fh.flush()
                fh.seek(0)
                return self._put(
                    bucket,
                    key,
                    fh,
                    metadata=user,
                    content_type=ctype,
                    delta=delta,
                    max_ratio=max_ratio,
                    progress=progress,
                    options=options,
                )

        if src.is_delta and src.ref_sha256 and delta is not False:
            copied = self._copy_delta(src, bucket, key, user, ctype, options)
            if copied is None:
                return rebuilt()
            result, current = copied
            if current:
                if progress is not None:
                    progress(result.size)
                return result
            # The reference changed under the copy (a delete of the deltaspace's last delta,
            # racing): rebuild instead. If that fails too (the source is gone), the delta
            # copied above must not stay as the answer to a failed copy.
            try:
                return rebuilt()
            except DeltaGliderError:
                with contextlib.suppress(DeltaGliderError):
                    self._undo(result)
                raise
        candidate = delta if delta is not None else self._is_candidate(key)
        if (
            src.is_delta
            or src.kind == "foreign"
            or src.sha256 is None
            or (candidate and src.size)
            or src.physical_key != fmt.direct_key(src_key)
        ):
            return rebuilt()
        meta = fmt.direct_metadata(
            original_name=fmt.basename(key), file_sha256=src.sha256, file_size=src.size or 0
        )
        meta.update(user)
        info = self._storage.copy(
            src_bucket,
            src.physical_key,
            bucket,
            fmt.direct_key(key),
            metadata=meta,
            content_type=ctype,
            options=options,
        )
        if progress is not None:
            progress(src.size or 0)
        return PutResult(
            bucket, key, info.key, src.size or 0, src.stored_size, src.sha256, False, info.etag
        )

    def _copy_delta(
        self,
        src: ObjectSummary,
        bucket: str,
        key: str,
        user: Mapping[str, str],
        content_type: str | None,
        options: WriteOptions | None,
    ) -> tuple[PutResult, bool] | None:
        """The delta copied server-side, and whether the destination's reference is still the
        one it was made against; None if the destination has another reference (or none)."""
        prefix = fmt.deltaspace(key)
        ref_key = fmt.reference_key(prefix)
        dst_info = self._lookup.head_or_none(bucket, ref_key)
        dst_ref = ref_from_info(dst_info) if dst_info else None
        if dst_ref is None or dst_ref.sha256 != src.ref_sha256 or src.size is None:
            return None
        assert src.sha256 is not None
        meta = fmt.delta_metadata(
            original_name=fmt.basename(key),
            file_sha256=src.sha256,
            file_size=src.size,
            ref_key=ref_key,
            ref_sha256=dst_ref.sha256,
            delta_size=src.stored_size,
            zero_diff=src.sha256 == dst_ref.sha256,
        )
        meta.update(user)
        info = self._storage.copy(
            src.bucket,
            src.physical_key,
            bucket,
            fmt.delta_key(key),
            metadata=meta,
            content_type=content_type,
            options=options,
        )
        result = PutResult(
            bucket,
            key,
            info.key,
            src.size,
            src.stored_size,
            src.sha256,
            True,
            info.etag,
            ref_key=ref_key,
        )
        return result, self._refs.is_current(bucket, prefix, dst_ref)
