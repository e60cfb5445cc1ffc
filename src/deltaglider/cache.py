"""The reference cache: each deltaspace's reference is fetched once, not on every operation.

Entries are keyed by the reference's sha256, so a cached entry is valid for every delta made
against those bytes, whichever bucket or deltaspace it sits in. ``get`` gives a :data:`Buffer`:
``bytes`` for references up to :data:`IN_MEMORY_MAX` (4 MiB), else a read-only ``memoryview``
of a file mapping, so a gigabyte reference is never copied into the heap.

- ``memory``: a bounded LRU of immutable, verified bytes (``DG_CACHE_MEMORY_SIZE_MB``); a
  reference larger than the cap is not taken (nor copied).
- ``filesystem``: files in ``DG_CACHE_DIR``, always encrypted with AES-256-GCM; no plaintext
  ever reaches a file that has a name. Size-capped (``DG_CACHE_MAX_SIZE_MB``) with least
  recently used eviction; safe for concurrent processes (entries are written to a temporary name
  and renamed into place; a reader holds its entry open, so eviction under it is harmless). An
  entry that fails authentication or its sha256 is deleted and reported as a miss, so it is
  fetched again. Folders are created 0700 and files 0600.

The key. ``DG_CACHE_ENCRYPTION_KEY`` (32 bytes, base64) if set; else the user's key file
``<DG_CACHE_DIR>/key`` (base64, 0600), created once by the first process that needs it (a
complete file linked into place, so two processes starting at once end with one key both use)
and used by every later one, as SSH keeps its keys: so the second command into a folder does
not fetch its reference again. A key file that others may read or write, that another user
owns, or that is not a key is refused with one :class:`~deltaglider.errors.ConfigError` naming
the fix (as ``ssh`` refuses an unprotected private key); nothing is removed. Entries live in a
folder per key (``shared-<key id>``). ``DG_CACHE_EPHEMERAL=1`` asks for a random key per process
and a private folder removed when it exits (shared machines, or no state kept at all).

The entry format (``<sha256>.ref``), streamed both ways in segments so memory stays bounded::

    header   "DGRC", version 2 (1 byte), 3 zero bytes, segment size (u32 BE),
             plaintext size (u64 BE), nonce prefix (8 random bytes, new for every entry)
    segments ceil(size / segment size) of them (one, empty, for an empty reference), each the
             AES-256-GCM encryption of the next segment-size bytes of plaintext plus its tag

Segment ``i`` uses the nonce ``prefix || i`` (u32 BE), so no nonce repeats under a key (a new
random 64-bit prefix per entry, a counter within it), and is authenticated with the associated
data ``header || sha256 (32 bytes) || i (u64 BE) || last (1 byte)``: a changed header, segments
reordered, dropped, truncated, appended or moved from another entry, or an entry renamed to pass
for another reference, all fail authentication (the file's length must also be exactly what the
header implies). Entries of the first format (one AES-GCM blob) are misses: they are deleted
and, once fetched again, rewritten in this one.

Reading an entry decrypts it segment by segment into a :class:`Spool`: ``bytes`` up to
:data:`IN_MEMORY_MAX`, beyond it a temporary file that has no name in the filesystem
(``O_TMPFILE``, 0600, in the cache's folder; where that is refused, ``mkstemp`` and an immediate
unlink): it disappears when closed, even if the process is killed. The sha256 is computed as the
plaintext goes by and must match; the file is then mapped read-only and the mapping handed out.
The mapping (and its file) goes when the last holder of the view drops it. References fetched
from the store go through the same spool (``_engine/refs.py``).
"""

from __future__ import annotations

import abc
import atexit
import base64
import binascii
import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._io import read_exactly
from ._spool import Buffer, Spool, unnamed_file
from .config import Config
from .errors import ConfigError

__all__ = [
    "IN_MEMORY_MAX",
    "KEY_FILE",
    "SEGMENT_SIZE",
    "Buffer",
    "FilesystemCache",
    "MemoryCache",
    "ReferenceCache",
    "Spool",
    "cache_key",
    "open_cache",
    "unnamed_file",
]

#: References up to this size are held as ``bytes``; larger ones in a mapped unnamed file.
IN_MEMORY_MAX: Final = 4 << 20
#: Plaintext bytes per encrypted segment of a filesystem cache entry.
SEGMENT_SIZE: Final = 1 << 20
#: The name of the user's key file in the cache folder.
KEY_FILE: Final = "key"

_MAGIC: Final = b"DGRC"
_VERSION: Final = 2
_HEADER: Final = struct.Struct(">4sB3xIQ8s")
_TAG: Final = 16
_SEGMENT_MAX: Final = 64 << 20
_MAX_SEGMENTS: Final = 1 << 32
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReferenceCache(abc.ABC):
    """Verified reference bytes by sha256."""

    #: Where plaintext larger than ``in_memory_max`` is spooled (unnamed files; None: the
    #: system's temporary folder).
    scratch: Path | None = None
    in_memory_max: int = IN_MEMORY_MAX

    @abc.abstractmethod
    def get(self, sha256: str) -> Buffer | None:
        """The bytes whose sha256 is ``sha256``, or None."""

    @abc.abstractmethod
    def put(self, sha256: str, data: Any) -> None:
        """Keeps ``data``, any buffer (ignored unless its sha256 is ``sha256``)."""

    @abc.abstractmethod
    def discard(self, sha256: str) -> None: ...

    @abc.abstractmethod
    def clear(self) -> None:
        """Forgets every entry this cache can reach (the next use of a reference fetches it)."""

    def close(self) -> None:
        """Releases what the cache holds for this process."""

    def spool(self, size: int) -> Spool:
        """A :class:`Spool` for a reference of ``size`` bytes, where this cache spools them."""
        return Spool(size, directory=self.scratch, in_memory_max=self.in_memory_max, digest=True)


class MemoryCache(ReferenceCache):
    """An LRU of at most ``max_bytes`` of reference bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, sha256: str) -> bytes | None:
        with self._lock:
            data = self._entries.get(sha256)
            if data is not None:
                self._entries.move_to_end(sha256)
            return data

    def put(self, sha256: str, data: Any) -> None:
        with memoryview(data) as view:
            if view.nbytes > self.max_bytes or hashlib.sha256(view).hexdigest() != sha256:
                return  # a reference larger than the whole cache is not even copied
            kept = bytes(view)  # an immutable copy (verified once: bytes cannot change after)
        with self._lock:
            old = self._entries.pop(sha256, None)
            if old is not None:
                self._size -= len(old)
            self._entries[sha256] = kept
            self._size += len(kept)
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)

    def discard(self, sha256: str) -> None:
        with self._lock:
            old = self._entries.pop(sha256, None)
            if old is not None:
                self._size -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def close(self) -> None:
        self.clear()


def _segments(size: int, segment: int) -> int:
    return max(1, -(-size // segment))


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def _aad(header: bytes, sha: bytes, index: int, last: bool) -> bytes:
    return header + sha + struct.pack(">QB", index, last)


class FilesystemCache(ReferenceCache):
    """Encrypted entries in a folder, shared by the processes that share the key (``key``
    None: a random key and a folder of this process's own, removed when it closes)."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        key: bytes | None = None,
        *,
        segment_size: int = SEGMENT_SIZE,
        in_memory_max: int = IN_MEMORY_MAX,
    ) -> None:
        if not 0 < segment_size <= _SEGMENT_MAX:
            raise ValueError(f"segment size must be from 1 byte to 64 MiB, not {segment_size}")
        self.max_bytes = max_bytes
        self.segment_size = segment_size
        self.in_memory_max = in_memory_max
        self._ephemeral = key is None
        self._key = key or AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self._key)
        root = Path(directory)
        _private_dir(root)
        if self._ephemeral:
            _sweep_dead_processes(root)
            self.directory = Path(tempfile.mkdtemp(prefix=f"process-{os.getpid()}-", dir=root))
            atexit.register(self.close)
        else:
            # One folder per key: processes with another key never touch these entries.
            key_id = hashlib.sha256(b"deltaglider-cache-key:" + self._key).hexdigest()[:16]
            self.directory = root / f"shared-{key_id}"
            _private_dir(self.directory)
        self.scratch = self.directory
        self._lock = threading.Lock()

    def _path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.ref"

    def get(self, sha256: str) -> Buffer | None:
        if not _SHA256.fullmatch(sha256):
            return None
        path = self._path(sha256)
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except OSError:  # missing, unreadable, a folder, a symlink loop: a miss
            return None
        try:
            with fh:
                data = self._read(fh, sha256)
        except OSError:
            return None  # a read failed, or no room to spool: a miss, the entry stays
        if data is None:
            path.unlink(missing_ok=True)  # tampered, corrupt, old, or of another key
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used* is evicted first
        return data

    def _read(self, fh: Any, sha256: str) -> Buffer | None:
        """The entry's plaintext if it authenticates and hashes to ``sha256``; else None."""
        header = read_exactly(fh, _HEADER.size)
        if len(header) != _HEADER.size:
            return None
        magic, version, segment, size, prefix = _HEADER.unpack(header)
        if magic != _MAGIC or version != _VERSION or not 0 < segment <= _SEGMENT_MAX:
            return None
        count = _segments(size, segment)
        if count > _MAX_SEGMENTS or os.fstat(fh.fileno()).st_size != (
            _HEADER.size + size + count * _TAG
        ):
            return None
        sha = bytes.fromhex(sha256)
        with self.spool(size) as spool:
            for index in range(count):
                length = min(segment, size - index * segment) + _TAG
                sealed = read_exactly(fh, length)
                if len(sealed) != length:
                    return None
                try:
                    plain = self._aead.decrypt(
                        _nonce(prefix, index), sealed, _aad(header, sha, index, index == count - 1)
                    )
                except InvalidTag:
                    return None
                spool.write(plain)
            data, digest = spool.finish()
        return data if digest == sha256 else None

    def put(self, sha256: str, data: Any) -> None:
        if not _SHA256.fullmatch(sha256):
            return
        with memoryview(data) as view:
            self._put(sha256, view.cast("B"))

    def _put(self, sha256: str, view: memoryview) -> None:
        size, segment = view.nbytes, self.segment_size
        count = _segments(size, segment)
        if size > self.max_bytes or count > _MAX_SEGMENTS:
            return
        header = _HEADER.pack(_MAGIC, _VERSION, segment, size, os.urandom(8))
        prefix = header[-8:]
        sha = bytes.fromhex(sha256)
        digest = hashlib.sha256()
        # Best effort: a cache that cannot take an entry (its folder removed or full, a folder
        # in the entry's place) must not fail the read that fetched it.
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(header)
                for index in range(count):
                    with view[index * segment : (index + 1) * segment] as piece:
                        digest.update(piece)
                        aad = _aad(header, sha, index, index == count - 1)
                        fh.write(self._aead.encrypt(_nonce(prefix, index), piece, aad))
            if digest.hexdigest() != sha256:
                Path(tmp).unlink(missing_ok=True)
                return
            os.replace(tmp, self._path(sha256))
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                return
            raise
        with contextlib.suppress(OSError):
            self._evict()

    def discard(self, sha256: str) -> None:
        if _SHA256.fullmatch(sha256):
            self._path(sha256).unlink(missing_ok=True)

    def clear(self) -> None:
        """Removes the entries of this cache's folder (a shared folder: for every process
        sharing its key, which then fetch again)."""
        with self._lock:
            try:
                entries = list(os.scandir(self.directory))
            except OSError:
                return
            for entry in entries:
                if entry.name.endswith(".ref") or entry.name.startswith(".tmp-"):
                    Path(entry.path).unlink(missing_ok=True)

    def _evict(self) -> None:
        with self._lock:
            entries = []
            total = 0
            for entry in os.scandir(self.directory):
                if entry.name.endswith(".ref"):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    entries.append((st.st_mtime_ns, st.st_size, entry.path))
                    total += st.st_size
            entries.sort()
            for _, size, path in entries:
                if total <= self.max_bytes:
                    break
                Path(path).unlink(missing_ok=True)
                total -= size

    def close(self) -> None:
        if self._ephemeral:
            shutil.rmtree(self.directory, ignore_errors=True)


def _sweep_dead_processes(root: Path) -> None:
    """Removes the per-process folders of processes that died without cleaning up."""
    for entry in os.scandir(root):
        if not entry.name.startswith("process-"):
            continue
        try:
            pid = int(entry.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):
        os.chmod(path, 0o700)


# --- the user's key ---------------------------------------------------------------------------


def cache_key(directory: Path, *, owner: int | None = None) -> bytes:
    """The user's cache key, ``directory/key``: read, or created once (see the module's notes).
    A key file that is not safe or not a key is a ConfigError saying what to do; ``owner`` is
    the user it must belong to (default: this process's effective user)."""
    owner = os.geteuid() if owner is None else owner
    root = Path(directory)
    try:
        _private_dir(root)
    except OSError as exc:
        raise ConfigError(f"cannot create the cache folder {root}: {exc.strerror}") from None
    path = root / KEY_FILE
    for _ in range(100):
        key = _read_key(path, owner)
        if key is not None:
            return key
        if not path.exists():
            try:
                _create_key(path)
            except OSError as exc:
                raise ConfigError(f"cannot create the cache key {path}: {exc.strerror}") from None
        else:
            time.sleep(0.01)  # being written by another process (no hard links here)
    raise ConfigError(f"{path} stays empty: remove it and a new key is made")


def _read_key(path: Path, owner: int) -> bytes | None:
    """The key in ``path``; None if there is none yet (or it is still being written)."""
    fix = "remove it (a new key is made; cached references are fetched again)"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"the cache key {path} is a symbolic link: {fix}") from None
        raise ConfigError(f"cannot read the cache key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"the cache key {path} is not a file: {fix}")
        if st.st_uid != owner:
            raise ConfigError(
                f"the cache key {path} belongs to another user (uid {st.st_uid}): {fix}, "
                "or set DG_CACHE_DIR to a folder of your own"
            )
        if st.st_mode & 0o077:
            raise ConfigError(
                f"the cache key {path} is accessible by others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): run chmod 600 {path} if nobody else "
                f"could have read it, else {fix}"
            )
        text = os.read(fd, 256)
    finally:
        os.close(fd)
    if not text:
        return None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{path} is not a deltaglider cache key (32 bytes, base64): {fix}")
    return key


def _create_key(path: Path) -> None:
    """Makes a key file at ``path`` unless there is one: a complete 0600 file is linked into
    place (atomic; another process's link wins). Where hard links are refused, the file is
    created exclusively and written (readers wait for its content)."""
    content = base64.b64encode(os.urandom(32)) + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            return
        except OSError:
            pass  # no hard links on this filesystem
    finally:
        os.unlink(tmp)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def open_cache(config: Config) -> ReferenceCache:
    """The cache the configuration asks for (the filesystem cache's key: see the notes)."""
    if config.cache_backend == "memory":
        return MemoryCache(config.cache_memory_size_mb << 20)
    if config.cache_ephemeral:
        key = None
    else:
        key = config.cache_encryption_key or cache_key(config.cache_dir)
    return FilesystemCache(config.cache_dir, config.cache_max_size_mb << 20, key)
