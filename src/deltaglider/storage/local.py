"""A store in a local directory: ``--endpoint-url file:///path``.

Layout: ``<root>/<bucket>/`` is a bucket; an object's key maps to a path below it (``a/b.zip``
is ``<root>/<bucket>/a/b.zip``), its metadata sits beside it in ``b.zip.dgmeta`` (JSON). The
store's own files (locks, files being written) are under ``<root>/.dgstore/``.

Writes are atomic: data and metadata go to temporary files on the same filesystem and are renamed
into place together under the bucket's lock, so a reader sees the old object or the new one,
never a mix; conditional writes (create-only, if-match) are checked under that lock too. Locks
are ``flock`` locks: safe between threads and processes of one machine (not across NFS). A
process killed between the two renames leaves the data in place and the metadata in
``.dgstore/tmp/`` (which names the object and its data file's inode): the next ``LocalStorage``
opened on the root renames it into place, so the object is the new one, whole.

Listing has S3's semantics: keys in lexicographic (UTF-8) order, prefix, delimiter, pages of at
most ``max_keys`` with a continuation token.

Two S3 features have no folder equivalent. A key and a prefix of the same name (``a`` and ``a/b``)
cannot both exist, as in MinIO's filesystem mode: the second write fails with InvalidKey. Path
components that a filesystem cannot hold (``""``, ``.``, ``..``, a name ending in ``.dgmeta``,
control characters, ``%``) are percent-encoded on disk and decoded back when listed; a component
may be at most 255 bytes once encoded. Key case follows the filesystem (case-insensitive on
macOS by default).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from .._io import CHUNK
from ..errors import (
    BucketNotEmpty,
    BucketNotFound,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from ..progress import Progress
from .base import Body, BucketInfo, ListPage, ObjectInfo, Storage, WriteOptions

__all__ = ["LocalStorage"]

_META = ".dgmeta"
_STATE = ".dgstore"
_BUCKET = re.compile(r"^(?=.{3,63}\Z)[a-z0-9][a-z0-9.-]*[a-z0-9]\Z")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f%]")


def _escape(component: str) -> str:
    if component == "":
        return "%"
    out = _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", component)
    if out in (".", ".."):
        out = out.replace(".", "%2E")
    elif out.endswith(_META):
        out = out[: -len(_META)] + "%2E" + _META[1:]
    if len(out.encode("utf-8", "surrogateescape")) > 255:
        raise InvalidKey("a key component is longer than a local filesystem name allows")
    return out


def _unescape(name: str) -> str:
    return "" if name == "%" else unquote(name, errors="surrogateescape")


class _FileBody:
    """Reads ``length`` bytes of an open file from its current position."""

    def __init__(self, fh: BinaryIO, length: int) -> None:
        self._fh = fh
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if size is None or size < 0 else min(size, self._left)
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _FileBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalStorage(Storage):
    """Buckets are folders of ``root``."""

    conditional_writes = True

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            raise StorageError(f"local store {self.root} is not a directory", code="NoSuchStore")
        self._state = self.root / _STATE
        (self._state / "tmp").mkdir(parents=True, exist_ok=True)
        (self._state / "locks").mkdir(parents=True, exist_ok=True)
        self._finish_interrupted_writes()

    def _finish_interrupted_writes(self) -> None:
        """Completes the writes killed between the rename of their data and of their metadata:
        a temporary metadata file whose data file is gone from ``tmp/`` (a write in progress
        has both, or neither once under the lock). Its metadata goes into place only if the
        object's data is still that file (same inode and time), else it is dropped."""
        for meta_tmp in (self._state / "tmp").glob("data-*" + _META):
            data_tmp = meta_tmp.with_name(meta_tmp.name[: -len(_META)])
            if data_tmp.exists():
                continue
            try:
                written = json.loads(meta_tmp.read_text(encoding="utf-8"))["written_as"]
                bucket, key = str(written["bucket"]), str(written["key"])
                path = self._path(bucket, key)
            except (OSError, ValueError, KeyError, TypeError, StorageError):
                continue  # gone meanwhile, or not a write of this version
            try:
                with self._lock(bucket, exclusive=True):
                    if data_tmp.exists() or not meta_tmp.exists():
                        continue
                    try:
                        stat = path.stat()
                        same = (stat.st_ino, stat.st_mtime_ns) == (
                            written["ino"],
                            written["mtime_ns"],
                        )
                    except OSError:
                        same = False
                    if same:
                        os.replace(meta_tmp, self._meta_path(path))
                    else:
                        meta_tmp.unlink(missing_ok=True)
            except OSError:
                continue  # a store we cannot write to: its readers see what is there

    def describe(self) -> str:
        return f"file://{self.root}"

    def _bucket_dir(self, bucket: str, *, must_exist: bool = True) -> Path:
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise BucketNotFound(
                f"invalid bucket name {bucket!r}", code="InvalidBucketName", bucket=bucket
            )
        path = self.root / bucket
        if must_exist and not path.is_dir():
            raise BucketNotFound(
                f"bucket {bucket} does not exist", code="NoSuchBucket", status=404, bucket=bucket
            )
        return path

    def _path(self, bucket: str, key: str) -> Path:
        if not key:
            raise InvalidKey("the object key is empty", bucket=bucket)
        parts = [_escape(c) for c in key.split("/")]
        return self._bucket_dir(bucket).joinpath(*parts)

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(path.name + _META)

    @contextlib.contextmanager
    def _lock(self, bucket: str, exclusive: bool) -> Iterator[None]:
        # Each open() is a new open file description, and flock locks belong to those: threads
        # exclude each other exactly as processes do.
        fd = os.open(self._state / "locks" / f"{bucket}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _read_meta(self, path: Path, key: str) -> dict[str, Any]:
        try:
            with open(self._meta_path(path), encoding="utf-8") as fh:
                data: dict[str, Any] = json.load(fh)
        except FileNotFoundError:
            # A file put in the folder by hand: an object without metadata.
            try:
                stat = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(
                    f"{key} does not exist", code="NoSuchKey", status=404, key=key
                ) from None
            return {
                "size": stat.st_size,
                "etag": f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"',
                "last_modified": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(),
                "content_type": "binary/octet-stream",
                "metadata": {},
            }
        except (ValueError, OSError) as exc:
            raise StorageError(f"unreadable metadata for {key}: {exc}", key=key) from exc
        return data

    def _info(self, key: str, meta: Mapping[str, Any], with_metadata: bool = True) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(meta["size"]),
            etag=str(meta["etag"]),
            last_modified=datetime.fromisoformat(meta["last_modified"]),
            metadata=dict(meta.get("metadata") or {}) if with_metadata else None,
            content_type=meta.get("content_type"),
        )

    def head(self, bucket: str, key: str) -> ObjectInfo:
        path = self._path(bucket, key)
        with self._lock(bucket, exclusive=False):
            if not path.is_file():
                raise ObjectNotFound(
                    f"{key} does not exist", code="NoSuchKey", status=404, bucket=bucket, key=key
                )
            return self._info(key, self._read_meta(path, key))

    def get(
        self,
        bucket: str,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> tuple[ObjectInfo, Body]:
        path = self._path(bucket, key)
        with self._lock(bucket, exclusive=False):
            try:
                fh = open(path, "rb")  # noqa: SIM115 - handed to the caller inside the body
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(
                    f"{key} does not exist", code="NoSuchKey", status=404, bucket=bucket, key=key
                ) from None
            try:
                info = self._info(key, self._read_meta(path, key))
            except BaseException:
                fh.close()
                raise
        if if_match is not None and if_match != info.etag:
            fh.close()
            raise PreconditionFailed(
                f"{key} changed", code="PreconditionFailed", status=412, bucket=bucket, key=key
            )
        stop = info.size if end is None else min(end, info.size)
        if start < 0 or (start >= info.size and info.size > 0) or stop < start:
            fh.close()
            raise InvalidRange(
                f"range {start}-{end} is outside {key} ({info.size} bytes)",
                code="InvalidRange",
                status=416,
                bucket=bucket,
                key=key,
            )
        fh.seek(start)
        return info, _FileBody(fh, stop - start)

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes | bytearray | memoryview | BinaryIO,
        *,
        size: int | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
        progress: Progress | None = None,
        tagging: str | None = None,
        options: WriteOptions | None = None,
    ) -> ObjectInfo:
        if tagging or options:
            what = (
                "object tags"
                if tagging
                else ", ".join(sorted((options or WriteOptions()).s3_args()))
            )
            raise StorageError(
                f"the local store keeps no {what}",
                code="NotImplemented",
                bucket=bucket,
                key=key,
            )
        path = self._path(bucket, key)
        tmp_dir = self._state / "tmp"
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="data-")
        tmp = Path(tmp_name)
        try:
            md5 = hashlib.md5(usedforsecurity=False)
            written = 0
            with os.fdopen(fd, "wb") as out:
                if isinstance(body, (bytes, bytearray, memoryview)):
                    view = memoryview(body).cast("B")
                    chunks: Iterator[Any] = (
                        view[i : i + CHUNK] for i in range(0, len(view), CHUNK)
                    )
                else:
                    chunks = iter(lambda: body.read(CHUNK), b"")
                for chunk in chunks:
                    out.write(chunk)
                    md5.update(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise StorageError(
                    f"expected {size} bytes for {key}, read {written}", bucket=bucket, key=key
                )
            now = datetime.now(timezone.utc)
            data_stat = tmp.stat()
            meta = {
                "size": written,
                "etag": f'"{md5.hexdigest()}"',
                "last_modified": now.isoformat(),
                "content_type": content_type or "binary/octet-stream",
                "metadata": {k.lower(): v for k, v in (metadata or {}).items()},
                # What finishes this write if the process dies between its two renames.
                "written_as": {
                    "bucket": bucket,
                    "key": key,
                    "ino": data_stat.st_ino,
                    "mtime_ns": data_stat.st_mtime_ns,
                },
            }
            meta_tmp = tmp.with_name(tmp.name + _META)
            _write_private(meta_tmp, json.dumps(meta))
            with self._lock(bucket, exclusive=True):
                self._check_conditions(bucket, key, path, if_none_match, if_match)
                self._make_parents(bucket, key, path)
                if path.is_dir():
                    raise InvalidKey(
                        f"{key} is a prefix of other objects in this local store",
                        bucket=bucket,
                        key=key,
                    )
                os.replace(tmp, path)
                os.replace(meta_tmp, self._meta_path(path))
            return self._info(key, meta)
        finally:
            # The metadata first: a metadata file without its data file is a write to finish.
            tmp.with_name(tmp.name + _META).unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)

    def _check_conditions(
        self, bucket: str, key: str, path: Path, if_none_match: bool, if_match: str | None
    ) -> None:
        exists = path.is_file()
        if if_none_match and exists:
            raise PreconditionFailed(
                f"{key} already exists",
                code="PreconditionFailed",
                status=412,
                bucket=bucket,
                key=key,
            )
        if if_match is not None:
            if not exists:
                raise ObjectNotFound(
                    f"{key} does not exist", code="NoSuchKey", status=404, bucket=bucket, key=key
                )
            if self._read_meta(path, key)["etag"] != if_match:
                raise PreconditionFailed(
                    f"{key} changed", code="PreconditionFailed", status=412, bucket=bucket, key=key
                )

    def _make_parents(self, bucket: str, key: str, path: Path) -> None:
        base = self._bucket_dir(bucket)
        current = base
        for part in path.relative_to(base).parts[:-1]:
            current = current / part
            if current.is_file():
                raise InvalidKey(
                    f"{key}: {current.relative_to(base)} is an object, so it cannot also be a "
                    "prefix in a local store",
                    bucket=bucket,
                    key=key,
                )
        path.parent.mkdir(parents=True, exist_ok=True)

    def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        path = self._path(bucket, key)
        with self._lock(bucket, exclusive=True):
            if not path.is_file():
                if if_match is not None:
                    raise ObjectNotFound(
                        f"{key} does not exist",
                        code="NoSuchKey",
                        status=404,
                        bucket=bucket,
                        key=key,
                    )
                return
            if if_match is not None and self._read_meta(path, key)["etag"] != if_match:
                raise PreconditionFailed(
                    f"{key} changed", code="PreconditionFailed", status=412, bucket=bucket, key=key
                )
            path.unlink(missing_ok=True)
            self._meta_path(path).unlink(missing_ok=True)
            base = self._bucket_dir(bucket)
            parent = path.parent
            while parent != base:  # drop the folders this object alone kept alive
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key with ``prefix``, sorted."""
        base = self._bucket_dir(bucket)
        # Start the walk at the deepest folder the prefix names.
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base.joinpath(*[_escape(c) for c in head.split("/")]) if head else base
        keys: list[str] = []
        if not start.is_dir():
            return keys
        stack = [(start, head + "/" if head else "")]
        while stack:
            folder, key_prefix = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                name = entry.name
                if name.endswith(_META):
                    continue
                if folder == base and name == _STATE:
                    continue
                key = key_prefix + _unescape(name)
                if entry.is_dir(follow_symlinks=False):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        stack.append((Path(entry.path), key + "/"))
                elif key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        if token:
            try:
                start_after = base64.urlsafe_b64decode(token.encode()).decode(
                    "utf-8", "surrogateescape"
                )
            except (ValueError, UnicodeDecodeError):
                raise StorageError(
                    "invalid continuation token", code="InvalidArgument", status=400, bucket=bucket
                ) from None
        with self._lock(bucket, exclusive=False):
            keys = self._keys(bucket, prefix)
            objects: list[ObjectInfo] = []
            prefixes: list[str] = []
            last = ""
            truncated = False
            for key in keys:
                if key <= start_after:
                    continue
                if delimiter:
                    cut = key.find(delimiter, len(prefix))
                    if cut >= 0:
                        common = key[: cut + len(delimiter)]
                        if common <= start_after or (prefixes and prefixes[-1] == common):
                            continue
                        if len(objects) + len(prefixes) >= max_keys:
                            truncated = True
                            break
                        prefixes.append(common)
                        last = common
                        continue
                if len(objects) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                path = self._path(bucket, key)
                try:
                    meta = self._read_meta(path, key)
                except ObjectNotFound:
                    continue
                objects.append(self._info(key, meta, with_metadata=False))
                last = key
        next_token = None
        if truncated and last:
            next_token = base64.urlsafe_b64encode(last.encode("utf-8", "surrogateescape")).decode()
        return ListPage(objects=objects, prefixes=prefixes, next_token=next_token)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_none_match: bool = False,
        options: WriteOptions | None = None,
    ) -> ObjectInfo:
        if options:
            self.put(bucket, key, b"", options=options)  # refused, before anything is read
        info, body = self.get(src_bucket, src_key)
        try:
            return self.put(
                bucket,
                key,
                body,  # type: ignore[arg-type]
                size=info.size,
                metadata=info.metadata if metadata is None else metadata,
                content_type=content_type or info.content_type,
                if_none_match=if_none_match,
            )
        finally:
            body.close()

    def create_bucket(self, bucket: str) -> None:
        path = self._bucket_dir(bucket, must_exist=False)
        try:
            path.mkdir()
        except FileExistsError:
            raise StorageError(
                f"bucket {bucket} already exists",
                code="BucketAlreadyOwnedByYou",
                status=409,
                bucket=bucket,
            ) from None

    def delete_bucket(self, bucket: str) -> None:
        path = self._bucket_dir(bucket)
        with self._lock(bucket, exclusive=True):
            if any(True for _ in os.scandir(path)):
                raise BucketNotEmpty(
                    f"bucket {bucket} is not empty",
                    code="BucketNotEmpty",
                    status=409,
                    bucket=bucket,
                )
            path.rmdir()
            self._location_file(bucket).unlink(missing_ok=True)

    def _location_file(self, bucket: str) -> Path:
        return self.root / f".{bucket}.location"

    def set_location(self, bucket: str, location: str) -> None:
        """Records the region a bucket was created for (S3's LocationConstraint): a folder
        has none, but a program that asked for one reads it back, as from S3."""
        self._bucket_dir(bucket)
        _write_private(self._location_file(bucket), location)

    def location(self, bucket: str) -> str | None:
        """The region recorded by :meth:`set_location`, None if none was."""
        self._bucket_dir(bucket)
        try:
            return self._location_file(bucket).read_text(encoding="utf-8") or None
        except FileNotFoundError:
            return None

    def head_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket)

    def list_buckets(self) -> list[BucketInfo]:
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_dir() and _BUCKET.match(entry.name):
                stat = entry.stat()
                out.append(
                    BucketInfo(entry.name, datetime.fromtimestamp(stat.st_mtime, timezone.utc))
                )
        return out


def _write_private(path: Path, text: str) -> None:
    """Writes ``text`` to a file only its owner reads: metadata as private as the data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
