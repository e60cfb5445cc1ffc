"""Deletion and the removal of what no longer serves (restic's prune, for deltaglider): a
logical object's stored forms, a reference whose deltaspace holds no delta any more, the older
twin of a key found beside the newer, bookkeeping left by killed processes, a put undone, and a
bucket's own objects before the bucket is deleted.

A reference is removed only when no delta of its deltaspace remains, and safely against writers
racing into the deltaspace (:meth:`Janitor._drop_reference`): it is first copied aside
(server-side) and removed only if unchanged; the deltaspace is then listed again, and a delta
stored meanwhile gets the reference back (a create-only write); if a new reference was created
in between, deltas made against the old one are rebuilt from the copy aside and stored again
(through the ``put`` the engine hands in: cleanup never calls the write path by itself).
Writers check the reference after they store a delta, which covers the writes that come after
the second listing.

Everything here removes conditionally (``If-Match`` the ETag seen) where an object may have
been rewritten since it was seen: the newer object stands, as if written after.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from .. import _io
from .. import format as fmt
from .._executor import Pool
from ..cache import Buffer
from ..codec import Decoder
from ..errors import (
    DeltaGliderError,
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from ..storage.base import ObjectInfo, Storage
from .lookup import Lookup
from .model import STALE_BOOKKEEPING, TRASH, WRITE_CHECKS, PutResult, Ref, log
from .refs import References, backup_key, ref_from_info

__all__ = ["Janitor"]


class Janitor:
    """Deletes and cleans up (see the module's notes). ``put`` is the engine's, used to store
    again the deltas a replaced reference leaves behind."""

    def __init__(
        self,
        storage: Storage,
        refs: References,
        lookup: Lookup,
        requests: Pool,
        put: Callable[..., PutResult],
    ) -> None:
        self._storage = storage
        self._refs = refs
        self._lookup = lookup
        self._requests = requests
        self._put = put

    def delete(self, bucket: str, key: str) -> bool:
        """Removes every stored form of the logical object; False if there was none.

        When it was the last delta of its deltaspace, the reference goes too; when there was
        none, a reference left in a deltaspace that holds no delta goes (a delete killed
        between the two, run again, completes).
        """
        fmt.check_key(key)
        found = [
            i
            for i in self._requests.map(
                lambda k: self._lookup.head_or_none(bucket, k), self._lookup.candidates(key)
            )
            if i is not None
        ]
        if not found:
            aliased = self._lookup.aliased(bucket, key)
            if aliased is not None:  # the physical name of a delta: its object goes
                return self.delete(bucket, aliased.key)
        for info in found:
            try:
                self._storage.delete(bucket, info.key, if_match=info.etag or None)
            except (PreconditionFailed, ObjectNotFound):
                pass  # rewritten meanwhile (the newer object stands), or gone already
        space = fmt.deltaspace(key)
        if any(i.key.endswith(fmt.DELTA_SUFFIX) for i in found):
            self.drop_reference_if_unused(bucket, space)
        elif not found and self._lookup.head_or_none(bucket, fmt.reference_key(space)):
            # Deleted already, maybe by a process killed before it removed the reference
            # its deltaspace no longer needs: the delete run again finishes that work.
            self.drop_reference_if_unused(bucket, space)
        elif not found:
            self._storage.head_bucket(bucket)  # a missing bucket is an error, a missing key not
        return bool(found)

    def drop_stale(self, bucket: str, older: ObjectInfo) -> None:
        """Removes the older stored form of a key (found beside the newer), unless it changed
        since it was seen."""
        try:
            self._storage.delete(bucket, older.key, if_match=older.etag or None)
            if older.key.endswith(fmt.DELTA_SUFFIX):
                self.drop_reference_if_unused(bucket, fmt.deltaspace(older.key))
        except (StorageError, OSError) as exc:
            log.debug("leaving stale %s: %s", older.key, exc)

    def undo_put(self, result: PutResult) -> None:
        """Removes what a put just stored (a step after it failed), unless it was replaced
        since; and, for a delta, the reference if no delta uses it any more."""
        try:
            self._storage.delete(result.bucket, result.physical_key, if_match=result.etag)
            if result.is_delta:
                self.drop_reference_if_unused(result.bucket, fmt.deltaspace(result.physical_key))
        except DeltaGliderError:
            pass  # replaced meanwhile (PreconditionFailed), or the store is gone: left as is

    def drop_unused_references(self, bucket: str, prefix: str = "") -> list[str]:
        """Removes the references of deltaspaces under ``prefix`` that hold no delta, and the
        stale bookkeeping; returns those deltaspaces."""
        with_ref: set[str] = set()
        with_delta: set[str] = set()
        for obj in self._storage.iter_objects(bucket, prefix=prefix):
            kind = fmt.physical(obj.key).kind
            if kind == "reference":
                with_ref.add(fmt.deltaspace(obj.key))
            elif kind == "delta":
                with_delta.add(fmt.deltaspace(obj.key))
        unused = sorted(with_ref - with_delta)
        for space in unused:
            self.drop_reference_if_unused(bucket, space)
        self.drop_stale_bookkeeping(bucket)
        return unused

    def drop_stale_bookkeeping(
        self, bucket: str, *, older_than: timedelta = STALE_BOOKKEEPING
    ) -> list[str]:
        """Removes references set aside and create-only checks that killed processes left,
        once ``older_than``; returns their keys. Nothing else under ``.deltaglider/`` is
        touched."""
        cutoff = datetime.now(timezone.utc) - older_than
        stale = [
            o.key
            for folder in (TRASH, WRITE_CHECKS)
            for o in self._storage.iter_objects(bucket, prefix=folder)
            if o.last_modified is not None and _io.as_utc(o.last_modified) <= cutoff
        ]
        if stale:
            failures = self._storage.delete_many(bucket, stale)
            for key, exc in failures.items():
                log.warning("could not remove s3://%s/%s: %s", bucket, key, exc)
            log.info(
                "removed %d stale object(s) under s3://%s/%s",
                len(stale),
                bucket,
                fmt.RESERVED_PREFIX,
            )
        return stale

    def clear_own_objects(self, bucket: str) -> bool:
        """Removes deltaglider's bookkeeping (``.deltaglider/``, references no delta uses) from
        a bucket that holds nothing else, before the bucket is deleted; False (and nothing
        removed) if it holds a user object."""
        spaces: set[str] = set()
        for info in self._storage.iter_objects(bucket):
            kind = fmt.physical(info.key).kind
            if kind == "reference":
                spaces.add(fmt.deltaspace(info.key))
            elif kind != "internal":
                return False  # a delta or a direct/foreign object: the user's
        for space in sorted(spaces):
            self.drop_reference_if_unused(bucket, space)
        # A writer may have stored something meanwhile: then the bucket is not empty, and the
        # bookkeeping it may need (backup references) stays.
        internal = []
        for info in self._storage.iter_objects(bucket):
            if fmt.physical(info.key).kind != "internal":
                return False
            internal.append(info.key)
        failures = self._storage.delete_many(bucket, internal)
        if failures:
            key, exc = next(iter(failures.items()))
            raise StorageError(
                f"could not remove s3://{bucket}/{key} before deleting the bucket: {exc}",
                bucket=bucket,
                key=key,
            )
        return True

    def deltas_in(self, bucket: str, prefix: str, sha256: str | None = None) -> list[str]:
        """Keys of deltas in the deltaspace (only the first, unless ``sha256`` asks for all
        those made against that reference)."""
        list_prefix = f"{prefix}/" if prefix else ""
        found = []
        token = None
        while True:
            page = self._storage.list_objects(
                bucket, prefix=list_prefix, delimiter="/", token=token
            )
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
            info = self._lookup.head_or_none(bucket, k)
            if info is not None and fmt.parse_metadata(info.metadata or {}, k).ref_sha256 == sha256:
                against.append(k)
        return against

    def drop_reference_if_unused(self, bucket: str, prefix: str) -> None:
        if not self.deltas_in(bucket, prefix):
            self._drop_reference(bucket, prefix)

    def _drop_reference(self, bucket: str, prefix: str) -> None:
        """Removes a deltaspace's reference, safely against writers racing into it (see the
        module's notes)."""
        ref_key = fmt.reference_key(prefix)
        info = self._lookup.head_or_none(bucket, ref_key)
        if info is None:
            return
        ref = ref_from_info(info)
        trash = (
            f"{TRASH}{hashlib.sha256(f'{prefix}'.encode()).hexdigest()[:16]}-"
            f"{os.urandom(6).hex()}.bin"
        )
        try:
            self._storage.copy(bucket, ref_key, bucket, trash)
        except ObjectNotFound:
            return  # another cleanup got there first
        try:
            try:
                self._storage.delete(bucket, ref_key, if_match=info.etag or None)
            except (PreconditionFailed, ObjectNotFound):
                return  # replaced or removed by someone else: theirs to handle
            self._refs.remember(bucket, prefix, None)
            if ref is None:
                return
            late = self.deltas_in(bucket, prefix, ref.sha256)
            if not late:
                self._drop_backups(bucket, prefix)
                return
            # Put it back, create-only (a PUT: create-only copies are not enforced everywhere).
            data = self._refs.fetch_verified(
                bucket, trash, ref.sha256, what="the set-aside reference is corrupt"
            )
            self._refs.keep(ref.sha256, data)
            try:
                self._storage.put(
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
                self._storage.delete(bucket, trash)
            except StorageError as exc:
                log.warning("could not remove s3://%s/%s: %s", bucket, trash, exc)

    def _drop_backups(self, bucket: str, prefix: str) -> None:
        """Removes the content-addressed copies of a deltaspace's references (if any were
        kept): called once the deltaspace holds no delta."""
        folder = backup_key(prefix, "").rsplit("/", 1)[0] + "/"
        keys = [o.key for o in self._storage.iter_objects(bucket, prefix=folder)]
        if keys and not self.deltas_in(bucket, prefix):
            self._storage.delete_many(bucket, keys)

    def _rescue(self, bucket: str, data: Buffer, ref: Ref, keys: list[str]) -> None:
        """Stores again the deltas whose reference was replaced, from the old reference's
        bytes."""
        decoder = Decoder(data)
        for physical_key in keys:
            try:
                dinfo, dbody = self._storage.get(bucket, physical_key)
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
            self._put(
                bucket,
                logical,
                restored,
                metadata=meta.user,
                content_type=dinfo.content_type,
                delta=True,
            )
            log.info("re-stored s3://%s/%s against the deltaspace's new reference", bucket, logical)
