"""Staging an upload: the file to store, readable as often as the write path needs it (to
encode, to upload whole when its delta is too large, to become a reference), with its size and
sha256 known before anything is sent (they go into metadata, which precedes the body).

The bytes are staged by :class:`deltaglider._io.Staged` (a path or regular file mapped, a
buffer as it is, a stream in memory or a private mapped file); the sha256 is computed on a side
thread (hashlib releases the GIL), so encoding does not wait for it.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future

from .. import _io
from .._executor import Pool
from .model import Source

__all__ = ["Upload"]


class Upload:
    """A file being stored: ``view`` (its bytes, no copy), ``size`` and ``sha256``."""

    def __init__(self, source: Source, hasher: Pool) -> None:
        self._staged = _io.stage(source)
        self.view = self._staged.view
        self.size = self._staged.size
        self._sha: Future[str] = hasher.submit(lambda: hashlib.sha256(self.view).hexdigest())

    @property
    def sha256(self) -> str:
        return self._sha.result()

    def close(self) -> None:
        self._sha.exception()  # the hash must be done with the buffer before it goes
        self._staged.close()
