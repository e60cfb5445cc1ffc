"""One progress contract, from the engine to every caller.

**Increments.** Whatever moves a file's bytes (``DeltaStore.put``/``get``/``copy``, a store's
``put``, the client's transfers) takes ``progress``: a callable given the count of bytes done
*since its last call*. Counts are positive, add up to the file's size by the time the
operation returns, and may come from several threads at once (parts of one file, windows of
one encode): a callback that is not thread-safe is wrapped by :func:`serialized`. Work that
reports positions or several passes over the same bytes (the codec says how far it got; a
delta given up on is followed by an upload of the whole file) goes through a :class:`Tracker`,
which passes on only what is new.

**Many files.** An operation over many files (a batch, ``analyze``, ``stats``) reports to a
:class:`ProgressSink`: totals as they become known, byte increments, files done, and a short
note (running savings, what is being listed). The command line's progress line is one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["Progress", "ProgressSink", "Tracker", "serialized"]

#: Bytes done since the last call (the increments contract).
Progress = Callable[[int], None]


class ProgressSink(Protocol):
    """Where a multi-file operation's progress goes. Every method may be called from several
    threads at once."""

    def add_total(self, *, files: int = 0, size: int = 0) -> None:
        """More files, and bytes, to do (totals grow as the work is discovered)."""

    def advance(self, count: int) -> None:
        """``count`` more bytes done."""

    def file_done(self, *, failed: bool = False) -> None:
        """One more file (or object) finished, or failed."""

    def note(self, text: str) -> None:
        """A short figure shown beside the progress (replaces the previous one)."""


class Tracker:
    """One file's progress as increments that never go backwards, passed on to ``report``.

    ``at(position)`` reports up to a position (the codec reports how far it encoded);
    ``add(count)`` counts bytes of a second pass (sent, downloaded) and reports them only
    beyond what was reported already: encoding half a file and then, the delta being too
    large, sending the whole file is one advance through it. ``total`` caps what is reported
    (None: no cap); :meth:`finish` reports the rest of it. ``done`` is what was reported.
    """

    def __init__(self, report: Progress | None, total: int | None = None) -> None:
        self._report = report
        self.total = total
        self.done = 0
        self._added = 0
        self._lock = threading.Lock()

    def at(self, position: int) -> None:
        if self._report is None:
            return
        with self._lock:
            end = position if self.total is None else min(position, self.total)
            step = end - self.done
            if step <= 0:
                return
            self.done += step
        self._report(step)

    def add(self, count: int) -> None:
        with self._lock:
            self._added += count
            position = self._added
        self.at(position)

    def finish(self) -> None:
        if self.total is not None:
            self.at(self.total)


def serialized(callback: Callable[[int], object]) -> Progress:
    """``callback`` called one increment at a time, whatever thread reports it (a user's
    callback need not be thread-safe); increments of 0 are not passed on."""
    lock = threading.Lock()

    def report(count: int) -> None:
        if count:
            with lock:
                callback(count)

    return report
