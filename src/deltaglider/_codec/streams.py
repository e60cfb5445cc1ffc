"""Bytes into the codec: a flat view of any buffer the caller hands in, and a target read from a
stream in blocks.

Writing and exact reads are the package's shared helpers (:func:`deltaglider._io.write_all`,
:func:`deltaglider._io.read_exactly`). :class:`~deltaglider.codec.StreamReader`, the stream the
codec hands out, is public and stays in :mod:`deltaglider.codec`, where its import path and
``__module__`` say it is.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any, Final

from .._io import Readable, read_exactly

__all__ = ["MAPPED_BLOCK", "blocks", "buffer"]

#: Blocks at least this large are read into anonymous memory maps rather than malloc'd: glibc
#: raises its mmap threshold to the size of a freed mapping, after which every block would sit
#: in some thread's heap, and each thread's heap keeps twice the threshold when it trims.
MAPPED_BLOCK: Final = 1 << 18


def buffer(obj: Any, what: str) -> memoryview:
    """A flat unsigned-byte view of any contiguous buffer, without copying it."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(obj).__name__}") from None
    if not view.c_contiguous:
        raise TypeError(f"{what} must be a contiguous buffer")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def blocks(reader: Readable, size: int, counted: list[int]) -> Iterator[tuple[memoryview, int]]:
    """The target read in blocks of ``size`` bytes, with their offsets; counts what it read."""
    readinto = getattr(reader, "readinto", None)
    if readinto is not None and size >= MAPPED_BLOCK:
        while True:
            view = memoryview(mmap.mmap(-1, size))  # unmapped when the last view goes
            n = 0
            while n < size:
                got = readinto(view[n:])
                if not got:
                    break
                n += got
            if not n:
                return
            yield view[:n], counted[0]
            counted[0] += n
    while True:
        data = read_exactly(reader, size)
        if not data:
            return
        yield memoryview(data), counted[0]
        counted[0] += len(data)
