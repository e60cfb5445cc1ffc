"""Where things are: ``s3://bucket/key`` URLs, local paths and ``-``, and the ``aws s3``
rules that turn a source and a destination into the keys and files a transfer touches."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

__all__ = [
    "LocalFile",
    "S3Url",
    "display_local",
    "final_name",
    "into",
    "is_s3",
    "parse_s3",
    "safe_local_join",
    "walk_local",
]


def is_s3(text: str) -> bool:
    return text.startswith("s3://")


@dataclass(frozen=True)
class S3Url:
    """A bucket and a key (or key prefix; may be empty)."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, key: str) -> S3Url:
        return S3Url(self.bucket, key)

    @property
    def dir_prefix(self) -> str:
        """The key as a "directory" prefix: empty, or ending in ``/``."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    @property
    def basename(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def parse_s3(text: str, *, param: str = "path") -> S3Url:
    """``s3://bucket[/key]``; a usage error names what is wrong."""
    if not is_s3(text):
        raise click.BadParameter(f"{text!r} is not an s3:// URL", param_hint=param)
    rest = text[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise click.BadParameter(f"{text!r} names no bucket", param_hint=param)
    if any(c in bucket for c in " \\?#*[]") or len(bucket) > 255:
        raise click.BadParameter(f"{bucket!r} is not a valid bucket name", param_hint=param)
    return S3Url(bucket, key)


def into(dest: S3Url, name: str) -> S3Url:
    """``aws s3 cp`` for one file: a destination key ending in ``/`` (or none) means "into
    this prefix" under the source's name; otherwise the key is the new name."""
    if not dest.key or dest.key.endswith("/"):
        return dest.child(dest.key + name)
    return dest


def display_local(path: str | os.PathLike[str]) -> str:
    """A local path as ``aws s3`` prints it: relative to the working directory, with its
    directory (``./a.zip``)."""
    full = os.path.abspath(path)
    head, tail = os.path.split(full)
    try:
        return os.path.join(os.path.relpath(head), tail)
    except ValueError:
        return full


@dataclass(frozen=True)
class LocalFile:
    """A file found under a local root: its path, its path relative to the root (with ``/``
    separators), size and modification time."""

    path: Path
    rel: str
    size: int
    mtime: float


#: A download in progress (or killed): ``.<name>.<8 random>.dgpart``, see DeltaStore.get.
_PARTIAL = re.compile(r"\..+\.[a-z0-9_]{8}\.dgpart")


def final_name(path: str) -> str:
    """The file a partial download becomes (``dir/.<name>.<random>.dgpart`` is ``dir/<name>``);
    any other path as it is."""
    head, tail = os.path.split(path)
    if _PARTIAL.fullmatch(tail):
        return os.path.join(head, tail[1 : -len(".12345678.dgpart")])
    return path


def walk_local(
    root: Path, *, follow_symlinks: bool = True, partials: bool = False
) -> Iterator[LocalFile]:
    """Every regular file under ``root``, sorted by relative path (as S3 lists keys).

    Symbolic links are followed (as ``aws s3`` does by default) without looping; files
    that vanish or cannot be read while walking are skipped here and fail when
    transferred. Our own partial downloads (``.<name>.<random>.dgpart``, left by a process
    that was killed) are not files of the user's: listed only with ``partials`` (a download's
    destination, where ``sync --delete`` removes them)."""
    seen: set[tuple[int, int]] = set()

    def walk(directory: Path, rel: str) -> Iterator[LocalFile]:
        try:
            st = directory.stat() if follow_symlinks else directory.lstat()
        except OSError:
            return
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            return
        seen.add(ident)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        # Files and directories interleave by their key order: "a/b" < "a.txt" is false in
        # byte order ("/" sorts after "."), so sort by the key each would produce.
        items: list[tuple[str, os.DirEntry[str]]] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
            except OSError:
                continue
            items.append((entry.name + ("/" if is_dir else ""), entry))
        items.sort(key=lambda item: item[0])
        for name, entry in items:
            path = Path(entry.path)
            if name.endswith("/"):
                yield from walk(path, f"{rel}{entry.name}/")
                continue
            try:
                info = entry.stat(follow_symlinks=follow_symlinks)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (partials or not _PARTIAL.fullmatch(entry.name)):
                yield LocalFile(path, rel + entry.name, info.st_size, info.st_mtime)

    yield from walk(root, "")


def safe_local_join(root: Path, rel: str) -> Path:
    """``root / rel`` for a key's relative path, refusing one that would land outside
    ``root`` (``..`` components, absolute paths)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or any(os.sep in p for p in parts[:-1]):
        raise ValueError(f"{rel!r} would be written outside {root}")
    return root.joinpath(*parts)
