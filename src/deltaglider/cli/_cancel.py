"""Ctrl-C during a transfer: stop within a second and leave nothing half-written.

A transfer's work runs on the engine's threads, which Python cannot interrupt, and the default
SIGINT (a KeyboardInterrupt in the main thread) would leave them running until they finish:
a large upload would complete after Ctrl-C, a download would carry on into its hidden partial
file. So while a transfer runs, :meth:`Cancellation.sigint` takes SIGINT instead.

1. The first SIGINT *requests* cancellation, and the work notices it at its next step:
   every progress callback the command hands the engine checks it (:meth:`Cancellation.wrap`:
   bytes are reported a part, a window or a chunk at a time), and over S3 every request that
   moves or commits data (PUT, a part, a copy, a GET, completing a multipart upload) is
   refused before it is sent (:meth:`Cancellation.guard`; aborting a multipart upload,
   DELETE, HEAD and listings still go out). The work fails with :class:`Cancelled` through
   the engine's ordinary error paths, the ones every failure takes: a multipart upload is
   aborted, a download's temporary file removed, a partly stored delta undone.
2. What cannot notice is a request already on the wire (a part of 8 MiB, on a slow link, may
   take seconds). So :data:`GRACE` seconds after the first SIGINT (or at a second one) the
   command stops waiting: the main thread is interrupted, and :meth:`Cancellation.clean_up`
   does what the abandoned work would have done, from what it has tracked: it aborts every
   multipart upload this command started and did not complete, and removes the temporary
   files of the downloads still running (``.<name>.<random>.dgpart``, made since the command
   started). The engine's writes are otherwise all-or-nothing (as after a SIGKILL), so
   nothing is left half-written.

Either way the command ends with exit code 130, without waiting for the abandoned requests
(the console entry point then leaves at once: :func:`abandoned`). What had finished stays,
whole. A third SIGINT ends the process at once, with no clean-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["GRACE", "Cancellation", "Cancelled", "abandoned"]

#: Seconds the work has to stop by itself after Ctrl-C, before the command stops waiting.
GRACE = 0.3
#: Seconds the clean-up's requests may take, all together.
_CLEAN_UP_TIMEOUT = 2.0

#: S3 operations that move or commit data: refused once cancellation is requested.
_GUARDED = (
    "PutObject",
    "UploadPart",
    "UploadPartCopy",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "GetObject",
)

_abandoned = threading.Event()


def abandoned() -> bool:
    """Whether the command this process runs (since :func:`begin`) was interrupted and left
    threads behind (requests already sent): the process should end without waiting for them."""
    return _abandoned.is_set()


def begin() -> None:
    """A command starts: no work of it is abandoned yet. (A program that runs commands one
    after another in one process, as tests and embedders do, must not be ended for an earlier
    command's interruption.)"""
    _abandoned.clear()


class Cancelled(BaseException):
    """The command was interrupted (Ctrl-C). A BaseException, as KeyboardInterrupt is, so that
    no path that recovers from an ordinary failure (a retry, a fallback) takes it for one."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class Cancellation:
    """The interruption of one command: requested by SIGINT (or :meth:`request`), checked by
    the work; what it would leave behind if abandoned, tracked for :meth:`clean_up`."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._started = time.time()
        self._lock = threading.Lock()
        self._guarded: set[int] = set()
        self._client: Any = None
        #: Multipart uploads created and not yet completed or aborted: id -> (bucket, key).
        self._uploads: dict[str, tuple[str, str]] = {}
        #: Downloads running: their target files.
        self._downloads: dict[Path, int] = {}
        self._signals = 0
        self._timer: threading.Timer | None = None

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def request(self) -> None:
        self._requested.set()

    def check(self) -> None:
        """Raises :class:`Cancelled` once cancellation is requested."""
        if self._requested.is_set():
            raise Cancelled()

    def wrap(self, progress: Callable[[int], None] | None) -> Callable[[int], None]:
        """``progress``, checking for cancellation at every report."""

        def report(count: int) -> None:
            self.check()
            if progress is not None:
                progress(count)

        return report

    # --- what the work does, tracked ----------------------------------------------------------

    def guard(self, client: Any) -> None:
        """On ``client`` (a boto3 S3 client): refuses data requests once cancellation is
        requested, and tracks the multipart uploads it opens (see the module's notes)."""
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None or id(client) in self._guarded:
            return
        self._guarded.add(id(client))
        self._client = client

        def before_call(**_kwargs: Any) -> None:
            self.check()

        def created(parsed: Any = None, **_kwargs: Any) -> None:
            if isinstance(parsed, dict) and parsed.get("UploadId"):
                with self._lock:
                    self._uploads[parsed["UploadId"]] = (parsed["Bucket"], parsed["Key"])

        def closing(params: Any = None, context: Any = None, **_kwargs: Any) -> None:
            if isinstance(params, dict) and isinstance(context, dict):
                context["dg_upload_id"] = params.get("UploadId")

        def closed(http_response: Any = None, context: Any = None, **_kwargs: Any) -> None:
            status = getattr(http_response, "status_code", 0)
            if isinstance(context, dict) and 200 <= status < 300:
                with self._lock:
                    self._uploads.pop(context.get("dg_upload_id") or "", None)

        for operation in _GUARDED:
            events.register(f"before-call.s3.{operation}", before_call)
        events.register("after-call.s3.CreateMultipartUpload", created)
        for operation in ("CompleteMultipartUpload", "AbortMultipartUpload"):
            events.register(f"before-parameter-build.s3.{operation}", closing)
            events.register(f"after-call.s3.{operation}", closed)

    @contextlib.contextmanager
    def download(self, target: Path) -> Iterator[None]:
        """Marks a download to ``target`` as running."""
        with self._lock:
            self._downloads[target] = self._downloads.get(target, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._downloads.pop(target) - 1
                if left:
                    self._downloads[target] = left

    def clean_up(self) -> None:
        """What the abandoned work would have done (see the module's notes)."""
        _abandoned.set()
        with self._lock:
            uploads = list(self._uploads.items())
            downloads = list(self._downloads)
        for target in downloads:
            with contextlib.suppress(OSError):
                for partial in target.parent.glob(f".{target.name}.*.dgpart"):
                    if partial.stat().st_mtime >= self._started - 1:
                        partial.unlink(missing_ok=True)
        client = self._client
        if client is None or not uploads:
            return

        def abort(upload_id: str, bucket: str, key: str) -> None:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

        threads = [
            threading.Thread(target=abort, args=(u, b, k), daemon=True) for u, (b, k) in uploads
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + _CLEAN_UP_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- SIGINT -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def sigint(self) -> Iterator[None]:
        """While the block runs, SIGINT requests cancellation (see the module's notes). Leaving
        the block after a request, normally or by any exception, raises KeyboardInterrupt
        (the command's Ctrl-C path: clean-up, "cancelled", exit 130). Only the main thread
        can take signals: elsewhere the block runs with SIGINT as it was."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        ):
            # Not the main thread; or SIGINT is ignored, as a shell does for a command it runs
            # in the background: left ignored, as programs do.
            yield
            return
        main = threading.main_thread().ident

        def stop_waiting() -> None:
            if main is not None:
                signal.pthread_kill(main, signal.SIGINT)

        def handler(_signum: int, _frame: Any) -> None:
            self._signals += 1
            if self._signals == 1:
                self._requested.set()
                self._timer = threading.Timer(GRACE, stop_waiting)
                self._timer.daemon = True
                self._timer.start()
            elif self._signals == 2:
                raise KeyboardInterrupt  # the grace is over (or Ctrl-C again): stop waiting
            else:
                os.write(2, b"\ndeltaglider: cancelled\n")
                os._exit(130)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        except BaseException:
            if self._requested.is_set():
                raise KeyboardInterrupt from None  # whatever the interrupted work raised
            raise
        finally:
            signal.signal(signal.SIGINT, previous)
            if self._timer is not None:
                self._timer.cancel()
        if self._requested.is_set():
            raise KeyboardInterrupt
