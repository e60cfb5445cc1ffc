"""``cp -`` both ways: stdin uploaded to one key (``--expected-size`` checked), one object
written to stdout."""

from __future__ import annotations

import os
import sys
from typing import Any

from .._io import at_start_of_file
from ._app import EXIT_FAILED, EXIT_USAGE, App, abort
from ._paths import S3Url
from ._transfer import guess_type, savings_note, stored_cost

__all__ = ["SizeMismatch", "from_stdin", "to_stdout"]


class SizeMismatch(Exception):
    """stdin did not give the bytes ``--expected-size`` said."""


class Counted:
    """A stream read against the byte count it must give: more than ``expected`` fails as
    soon as it is read (the rest is not read), fewer when it ends. The engine reads the whole
    stream before it stores anything (the sha256 goes into the metadata, which precedes the
    body), so a mismatch leaves no object."""

    def __init__(self, stream: Any, expected: int) -> None:
        self._stream = stream
        self.expected = expected
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk: bytes = self._stream.read(size)
        self.count += len(chunk)
        if self.count > self.expected:
            raise SizeMismatch(
                f"stdin gave more than --expected-size {self.expected} bytes; nothing was stored"
            )
        if not chunk and size != 0 and self.count < self.expected:
            raise SizeMismatch(
                f"stdin gave {self.count} bytes, --expected-size said {self.expected}; "
                "nothing was stored"
            )
        return chunk


def _source(expected: int | None) -> Any:
    """stdin, checked against ``expected`` (None: as it is). A regular file (``< file``) is
    measured, not read: the engine maps it."""
    stdin = sys.stdin.buffer
    if expected is None:
        return stdin
    if at_start_of_file(stdin):
        size = os.fstat(stdin.fileno()).st_size
        if size != expected:
            raise SizeMismatch(
                f"stdin gives {size} bytes, --expected-size said {expected}; nothing was stored"
            )
        return stdin
    return Counted(stdin, expected)


def from_stdin(
    app: App, dest: S3Url, options: dict[str, Any], dryrun: bool, expected: int | None = None
) -> None:
    """Stores stdin as ``dest``. ``expected`` (``--expected-size``): the bytes it must give,
    also the progress line's total."""
    if not dest.key or dest.key.endswith("/"):
        abort(f"{dest}: stdin needs a full key to be stored under", EXIT_USAGE)
    if dryrun:
        app.console.line(f"(dryrun) upload: - to {dest}")
        return
    if options.get("content_type") is None:
        options["content_type"] = guess_type(dest.basename)
    progress = app.console.progress(total_bytes=expected, verb="upload")
    try:
        with app.cancel.sigint():
            result = app.store.put(
                dest.bucket,
                dest.key,
                _source(expected),
                progress=app.cancel.wrap(progress.advance),
                **options,
            )
    except SizeMismatch as exc:
        abort(f"{dest}: {exc}", EXIT_FAILED)
    finally:
        progress.close()
    app.console.line(f"upload: - to {dest}{savings_note(result)}")
    app.console.record(
        {
            "action": "upload",
            "source": "-",
            "destination": str(dest),
            "status": "ok",
            "size": result.size,
            "stored_size": stored_cost(result),
            "delta": result.is_delta,
            "reference": result.created_reference,
            "sha256": result.sha256,
        }
    )


def to_stdout(app: App, src: S3Url, dryrun: bool) -> None:
    """Writes the object ``src`` to stdout."""
    if not src.key:
        abort(f"{src} names no object", EXIT_USAGE)
    if src.key.endswith("/"):
        abort(f"{src} is a prefix (stdout takes one object)", EXIT_USAGE)
    if dryrun:
        app.console.error(f"(dryrun) download: {src} to -")
        return
    out = sys.stdout.buffer
    opened = app.store.open_object(src.bucket, src.key)
    progress = app.console.progress(total_bytes=opened.summary.size, verb="download")
    try:
        with app.cancel.sigint():
            opened.write_to(out, progress=app.cancel.wrap(progress.advance))
            out.flush()
    finally:
        opened.close()
        progress.close()
