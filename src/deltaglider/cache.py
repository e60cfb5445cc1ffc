"""The reference cache: each deltaspace's reference is fetched once, not on every operation.

Entries are keyed by the reference's sha256, so a cached entry is valid for every delta made
against those bytes, whichever bucket or deltaspace it sits in.

- ``memory``: a bounded LRU of immutable, verified bytes (``DG_CACHE_MEMORY_SIZE_MB``).
- ``filesystem``: files in ``DG_CACHE_DIR``, always encrypted with AES-256-GCM (the sha256 is the
  associated data, so an entry cannot be passed off as another); no plaintext ever reaches the
  disk. The key is ``DG_CACHE_ENCRYPTION_KEY`` (32 bytes, base64), shared by every process that
  has it, so a reference is fetched once ever; without it each process uses a random key and its
  own folder, removed when it exits. Size-capped (``DG_CACHE_MAX_SIZE_MB``) with least recently
  used eviction; safe for concurrent processes (entries are written to a temporary name and
  renamed into place; a reader that loses an entry to eviction just misses). An entry that fails
  authentication or its sha256 is deleted and reported as a miss, so it is fetched again.
  Folders are created 0700 and files 0600.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import Config

__all__ = ["FilesystemCache", "MemoryCache", "ReferenceCache", "open_cache"]

_NONCE = 12


class ReferenceCache(abc.ABC):
    """Verified reference bytes by sha256."""

    @abc.abstractmethod
    def get(self, sha256: str) -> bytes | None:
        """The bytes whose sha256 is ``sha256``, or None."""

    @abc.abstractmethod
    def put(self, sha256: str, data: bytes) -> None:
        """Keeps ``data`` (ignored unless its sha256 is ``sha256``)."""

    @abc.abstractmethod
    def discard(self, sha256: str) -> None: ...

    @abc.abstractmethod
    def clear(self) -> None:
        """Forgets every entry this cache can reach (the next use of a reference fetches it)."""

    def close(self) -> None:
        """Releases what the cache holds for this process."""


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

    def put(self, sha256: str, data: bytes) -> None:
        data = bytes(data)  # an immutable copy (verified once: bytes cannot change after)
        if len(data) > self.max_bytes or hashlib.sha256(data).hexdigest() != sha256:
            return
        with self._lock:
            old = self._entries.pop(sha256, None)
            if old is not None:
                self._size -= len(old)
            self._entries[sha256] = data
            self._size += len(data)
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


class FilesystemCache(ReferenceCache):
    """Encrypted entries in a folder, shared by the processes that share the key."""

    def __init__(self, directory: Path, max_bytes: int, key: bytes | None = None) -> None:
        self.max_bytes = max_bytes
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
        self._lock = threading.Lock()

    def _path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.ref"

    def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            blob = path.read_bytes()
        except OSError:  # missing, unreadable, a folder, a symlink loop: a miss
            return None
        try:
            data = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], bytes.fromhex(sha256))
        except (InvalidTag, ValueError):
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)  # tampered, corrupt, or of another key: fetch again
            return None
        try:
            os.utime(path)  # least recently *used* is evicted first
        except FileNotFoundError:
            pass
        return data

    def put(self, sha256: str, data: bytes) -> None:
        if len(data) > self.max_bytes or hashlib.sha256(data).hexdigest() != sha256:
            return
        nonce = os.urandom(_NONCE)
        blob = nonce + self._aead.encrypt(nonce, bytes(data), bytes.fromhex(sha256))
        # Best effort: a cache that cannot take an entry (its folder removed or full, a folder
        # in the entry's place) must not fail the read that fetched it.
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, self._path(sha256))
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                return
            raise
        with contextlib.suppress(OSError):
            self._evict()

    def discard(self, sha256: str) -> None:
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


def open_cache(config: Config) -> ReferenceCache:
    """The cache the configuration asks for."""
    if config.cache_backend == "memory":
        return MemoryCache(config.cache_memory_size_mb << 20)
    return FilesystemCache(
        config.cache_dir, config.cache_max_size_mb << 20, config.cache_encryption_key
    )
