"""A deltaspace's reference, through its whole life: which one a deltaspace has (remembered per
process after one HEAD), its create-only creation (and the check that the store enforces
create-only writes at all), fetching its bytes verified (from the cache first), and the coders
built on it (an encoder indexes the reference once for many files).

Every byte of a reference the engine uses is checked against the sha256 a delta recorded (or
the reference's own, when it was just created from the file being stored): taken from the
cache, fetched from ``reference.bin``, or from the content-addressed copy kept on stores that do
not enforce create-only writes (:func:`backup_key`).

Memory stays bounded whatever the reference's size: its bytes are a
:data:`~deltaglider.cache.Buffer`, ``bytes`` up to the cache's ``in_memory_max`` (4 MiB), beyond
it a read-only mapping of a file with no name (the cache's :class:`~deltaglider.cache.Spool`):
a fetched reference is streamed into it while hashed, a reference just created from an upload
is copied into it (so it neither depends on the upload's own mapping nor changes if the user's
file does). The coders kept (:data:`_CODERS_KEPT`) hold the mapping; it is unmapped, and its file
gone, when the last of them is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any

from .. import _io
from .. import format as fmt
from ..cache import Buffer, ReferenceCache
from ..codec import Decoder, Encoder
from ..config import Config
from ..errors import IntegrityError, ObjectNotFound, PreconditionFailed, StorageError
from ..storage.base import ObjectInfo, Storage, WriteOptions
from .model import WRITE_ATTEMPTS, WRITE_CHECKS, Ref, log
from .sources import Upload

__all__ = ["References", "backup_key", "make_encoder", "ref_from_info"]

#: Coders kept in memory: the references most recently used (each holds its reference's
#: bytes, and an encoder its index).
_CODERS_KEPT = 2


def make_encoder(config: Config, reference: Any) -> Encoder:
    """The encoder the engine uses for a reference (the configured level and secondary
    compression); ``analyze`` estimates with the same."""
    secondary: Any = config.codec_secondary  # validated by Config
    return Encoder(reference, level=config.codec_level, secondary=secondary)


#: Storage classes whose objects cannot be read until restored: every delta of a folder needs
#: its reference, so a reference is never written in one (the delta or direct object is).
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


def reference_options(options: WriteOptions | None) -> WriteOptions | None:
    """The write options a new reference gets from the write that creates it: all of them
    (encryption, ACL... the reference holds the file's bytes) but an archive storage class."""
    if options is None or options.storage_class not in ARCHIVE_CLASSES:
        return options
    return dataclasses.replace(options, storage_class=None) or None


def backup_key(prefix: str, sha256: str) -> str:
    """Where a deltaspace's reference is also kept on stores without create-only writes."""
    space = hashlib.sha256(prefix.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{fmt.RESERVED_PREFIX}refs/{space}/{sha256}.bin"


def ref_from_info(info: ObjectInfo) -> Ref | None:
    """The reference a ``reference.bin``'s info describes; None if it is not one."""
    meta = fmt.parse_metadata(info.metadata or {}, info.key)
    if meta.kind != "reference" or not meta.file_sha256:
        return None
    return Ref(meta.file_sha256, info.etag)


class _Coders:
    """An encoder (built on demand) and a decoder of one reference."""

    __slots__ = ("decoder", "encoder")

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.encoder: Encoder | None = None


class References:
    """The references of the deltaspaces one engine works in (see the module's notes)."""

    def __init__(self, storage: Storage, cache: ReferenceCache, config: Config) -> None:
        self._storage = storage
        self._cache = cache
        self._config = config
        self._known: dict[tuple[str, str], Ref] = {}
        self._create_only: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._coders: OrderedDict[str, _Coders] = OrderedDict()
        self._coders_lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    # What the deltaspace's reference is, as far as this process knows.

    def known(self, bucket: str, prefix: str) -> Ref | None:
        with self._lock:
            return self._known.get((bucket, prefix))

    def remember(self, bucket: str, prefix: str, ref: Ref | None) -> None:
        with self._lock:
            if ref is None:
                self._known.pop((bucket, prefix), None)
            else:
                self._known[(bucket, prefix)] = ref

    def forget(self) -> None:
        """Forgets every reference: which ones the deltaspaces have, their coders, and the
        cache's bytes (the next use of each asks the store)."""
        with self._lock:
            self._known.clear()
        self.release()
        self._cache.clear()

    def release(self) -> None:
        """Drops the coders kept, and with them this engine's hold on their references' bytes
        (a mapping is unmapped, and its unnamed file gone, once no call still uses it)."""
        with self._coders_lock:
            self._coders.clear()

    def find(self, bucket: str, prefix: str) -> Ref | None:
        """The deltaspace's reference (one HEAD unless known), None if it has none usable."""
        known = self.known(bucket, prefix)
        if known is not None:
            return known
        info = self._storage.head_or_none(bucket, fmt.reference_key(prefix))
        found = ref_from_info(info) if info is not None else None
        if found is not None:
            self.remember(bucket, prefix, found)
        return found

    def is_current(self, bucket: str, prefix: str, ref: Ref) -> bool:
        """Whether the deltaspace's reference is (still) ``ref``, by its sha256 (one HEAD)."""
        try:
            info = self._storage.head(bucket, fmt.reference_key(prefix))
        except ObjectNotFound:
            return False
        current = ref_from_info(info)
        if current is not None and current.sha256 == ref.sha256:
            self.remember(bucket, prefix, current)
            return True
        return False

    def current(
        self, bucket: str, key: str, upload: Upload, options: WriteOptions | None = None
    ) -> tuple[Ref | None, Buffer | None]:
        """The reference of ``key``'s deltaspace, creating it from ``upload`` if there is none
        (written with the upload's ``options``: the reference holds the file's bytes).

        Returns the reference (None if the deltaspace holds an unusable ``reference.bin``) and,
        when this call created it, its bytes (None if the file changed while it was read: the
        bytes are then fetched, and checked, from the store).
        """
        prefix = fmt.deltaspace(key)
        known = self.known(bucket, prefix)
        if known is not None:
            return known, None
        ref_key = fmt.reference_key(prefix)
        for _ in range(WRITE_ATTEMPTS):
            try:
                info = self._storage.head(bucket, ref_key)
            except ObjectNotFound:
                created = self._create(bucket, prefix, key, upload, options)
                if created is None:
                    continue  # another writer created it first: use theirs
                return created
            found = ref_from_info(info)
            if found is None:
                log.warning(
                    "s3://%s/%s is not a deltaglider reference; storing direct", bucket, ref_key
                )
                return None, None
            self.remember(bucket, prefix, found)
            return found, None
        raise StorageError(
            f"s3://{bucket}/{ref_key}: could not settle the reference", bucket=bucket, key=ref_key
        )

    def _create(
        self, bucket: str, prefix: str, key: str, upload: Upload, options: WriteOptions | None
    ) -> tuple[Ref, Buffer | None] | None:
        """Creates the deltaspace's reference from ``upload`` (create-only), returning it and
        its bytes; None if another writer's is there first."""
        meta = fmt.reference_metadata(fmt.basename(key), upload.sha256)
        options = reference_options(options)
        if not self.create_only_enforced(bucket):
            # Without create-only writes, a concurrent creator may overwrite this reference
            # after deltas were checked against it: keep a content-addressed copy that readers
            # fall back to (see reference_bytes).
            self._storage.put(
                bucket,
                backup_key(prefix, upload.sha256),
                upload.view,
                size=upload.size,
                metadata=meta,
                content_type="application/octet-stream",
                options=options,
            )
        try:
            info = self._storage.put(
                bucket,
                fmt.reference_key(prefix),
                upload.view,
                size=upload.size,
                metadata=meta,
                content_type="application/octet-stream",
                if_none_match=True,
                options=options,
            )
        except PreconditionFailed:
            return None
        created = Ref(upload.sha256, info.etag)
        data = self._copy(upload)
        if data is not None:
            self._cache.put(upload.sha256, data)
        self.remember(bucket, prefix, created)
        return created, data

    def _copy(self, upload: Upload) -> Buffer | None:
        """A private copy of the upload's bytes (the upload's mapping goes when it closes, and
        the user's file may change): bytes, or an unnamed file mapped. None if they no longer
        hash to the upload's sha256 (the file changed meanwhile)."""
        view = upload.view
        with self._cache.spool(upload.size) as spool:
            for start in range(0, upload.size, _io.CHUNK):
                with view[start : start + _io.CHUNK] as piece:
                    spool.write(piece)
            data, digest = spool.finish()
        return data if digest == upload.sha256 else None

    def create_only_enforced(self, bucket: str) -> bool:
        """Whether the store refuses a create-only write over an existing object: declared by
        the storage, then checked once per bucket (two small writes)."""
        if not self._storage.conditional_writes:
            return False
        with self._lock:
            known = self._create_only.get(bucket)
        if known is not None:
            return known
        check = f"{WRITE_CHECKS}{os.urandom(8).hex()}"
        self._storage.put(bucket, check, b"1", if_none_match=True)
        try:
            self._storage.put(bucket, check, b"2", if_none_match=True)
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
            self._storage.delete(bucket, check)
        with self._lock:
            self._create_only[bucket] = enforced
        return enforced

    # The reference's bytes, and the coders built on them.

    def fetch_verified(self, bucket: str, key: str, sha256: str, what: str = "") -> Buffer:
        """The object ``key``'s bytes, checked against ``sha256`` (IntegrityError if they are
        not those); ``what`` names it in the error (default: the delta's reference). Streamed
        into the cache's spool while hashed: bytes, or an unnamed file mapped."""
        info, body = self._storage.get(bucket, key)
        try:
            with self._cache.spool(info.size) as spool:
                got: int | str = "more than"
                try:
                    while chunk := body.read(_io.CHUNK):
                        spool.write(chunk)
                    got = spool.written
                    data, digest = spool.finish()
                except ValueError:  # a body cut short, or longer than its object said
                    raise StorageError(
                        f"s3://{bucket}/{key}: read {got} bytes of a {info.size}-byte object",
                        bucket=bucket,
                        key=key,
                    ) from None
        finally:
            body.close()
        if digest != sha256:
            said = what or "the reference is not the one the delta was made against"
            raise IntegrityError(
                f"s3://{bucket}/{key}: {said} (sha256 {digest}, expected {sha256})",
                key=key,
                expected=sha256,
                actual=digest,
            )
        return data

    def keep(self, sha256: str, data: Buffer) -> None:
        """Puts a reference's verified bytes in the cache (the next reader need not fetch)."""
        self._cache.put(sha256, data)

    def reference_bytes(self, bucket: str, ref_key: str, sha256: str) -> Buffer:
        """The reference with this sha256: from the cache, else fetched and verified.

        If ``reference.bin`` is gone or is another reference, the content-addressed copy kept
        on stores without create-only writes is tried before giving up.
        """
        data = self._cache.get(sha256)
        if data is not None:
            return data
        try:
            data = self.fetch_verified(bucket, ref_key, sha256)
        except (ObjectNotFound, IntegrityError) as first:
            try:
                data = self.fetch_verified(
                    bucket, backup_key(fmt.deltaspace(ref_key), sha256), sha256
                )
            except (ObjectNotFound, IntegrityError):
                raise first from None
        self._cache.put(sha256, data)
        return data

    def encoder(self, bucket: str, ref_key: str, sha256: str, data: Buffer | None) -> Encoder:
        """The encoder of the reference (``data``: its bytes, when the caller has them)."""
        coders = self._coders_of(bucket, ref_key, sha256, encoder=True, data=data)
        assert coders.encoder is not None
        return coders.encoder

    def decoder(self, bucket: str, ref_key: str, sha256: str) -> Decoder:
        """The decoder of the reference."""
        return self._coders_of(bucket, ref_key, sha256, encoder=False, data=None).decoder

    def _coders_of(
        self, bucket: str, ref_key: str, sha256: str, *, encoder: bool, data: Buffer | None
    ) -> _Coders:
        """The coders of a reference, kept for the few most recent references. They hold the
        reference's bytes, so a reference in use is neither fetched nor taken from the cache
        (decrypted) again; building an encoder indexes the reference, worth doing once for
        many files. One thread builds them, however many need them."""
        with self._coders_lock:
            entry = self._coders.get(sha256)
            if entry is not None and (entry.encoder is not None or not encoder):
                self._coders.move_to_end(sha256)
                return entry
            lock = self._building.setdefault(sha256, threading.Lock())
        with lock:
            with self._coders_lock:
                entry = self._coders.get(sha256)
            if entry is not None and (entry.encoder is not None or not encoder):
                return entry
            if data is None:
                data = self.reference_bytes(bucket, ref_key, sha256)
            fresh = _Coders(entry.decoder if entry is not None else Decoder(data))
            if encoder:
                fresh.encoder = make_encoder(self._config, data)
            with self._coders_lock:
                self._coders[sha256] = fresh
                self._coders.move_to_end(sha256)
                while len(self._coders) > _CODERS_KEPT:
                    self._coders.popitem(last=False)
            return fresh
