"""Terminal output: result lines on stdout, errors on stderr, one progress line that neither
interleaves with them nor reaches a pipe."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

__all__ = ["Console", "Progress", "human_size", "percent"]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(value: float) -> str:
    """A size in base-2 units, as ``aws s3`` prints them: ``1 Byte``, ``10 Bytes``, ``1.0 KiB``."""
    if value == 1:
        return "1 Byte"
    if value < 1024:
        return f"{int(value)} Bytes"
    for i, unit in enumerate(_UNITS):
        scale = 1024 ** (i + 2)
        if round(value / scale * 1024) < 1024 or unit == _UNITS[-1]:
            return f"{1024 * value / scale:.1f} {unit}"
    raise AssertionError("unreachable")


def percent(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals, never ``-0.0%``: a small loss is
    shown with as many more decimals as it takes (up to four: ``-0.04%``), and one too small
    even for those is ``0.0%``."""
    for places in range(digits, max(digits, 4) + 1):
        text = f"{fraction:.{places}%}"
        if text.strip("-0.%"):
            return text
        if fraction >= 0:
            break
    return f"{0.0:.{digits}%}"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Console:
    """Where a command's output goes.

    :param quiet: print no result lines (errors still go to stderr).
    :param progress: whether a progress line may be drawn (it also needs stderr to be a
        terminal).
    :param json_lines: results are JSON objects, one a line, on stdout.
    """

    def __init__(
        self,
        *,
        quiet: bool = False,
        progress: bool = True,
        json_lines: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        self.quiet = quiet
        self.json_lines = json_lines
        self._out = out
        self._err = err
        self._lock = threading.RLock()
        self._shown = ""  # the progress line on screen, if any
        self._progress_allowed = progress and not quiet
        #: The progress line being shown: redrawn up to date after a result line.
        self._live: Progress | None = None

    @property
    def out(self) -> IO[str]:
        return self._out or sys.stdout

    @property
    def err(self) -> IO[str]:
        return self._err or sys.stderr

    @property
    def interactive(self) -> bool:
        """Whether a progress line can be shown (stderr is a terminal and it is allowed)."""
        try:
            return self._progress_allowed and self.err.isatty()
        except (AttributeError, ValueError):
            return False

    def _clear(self) -> None:
        if self._shown:
            self.err.write("\r" + " " * len(self._shown) + "\r")
            self._shown = ""

    def line(self, text: str) -> None:
        """A result line on stdout (not with ``quiet`` or in JSON mode)."""
        if self.quiet or self.json_lines:
            return
        with self._lock:
            shown = self._shown
            self._clear()
            self.out.write(text + "\n")
            self.out.flush()
            self._redraw(shown)

    def record(self, obj: dict[str, Any]) -> None:
        """A JSON result on stdout (only in JSON mode)."""
        if not self.json_lines:
            return
        with self._lock:
            self.out.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
            self.out.flush()

    def error(self, text: str) -> None:
        """A line on stderr, always."""
        with self._lock:
            shown = self._shown
            self._clear()
            self.err.write(text + "\n")
            self.err.flush()
            self._redraw(shown)

    def _redraw(self, shown: str) -> None:
        """Puts the progress line back after a line printed above it, up to date."""
        if not shown:
            return
        live = self._live
        self._draw(live.render() if live is not None else shown)

    def _draw(self, text: str) -> None:
        width = 0
        try:
            import shutil

            width = shutil.get_terminal_size((100, 20)).columns - 1
        except (OSError, ValueError):
            width = 99
        text = text[:width]
        pad = max(0, len(self._shown) - len(text))
        self.err.write("\r" + text + " " * pad)
        self.err.flush()
        self._shown = text

    def status(self, text: str) -> None:
        """Replaces the progress line (only on a terminal)."""
        if not self.interactive:
            return
        with self._lock:
            self._draw(text)

    def clear_status(self) -> None:
        with self._lock:
            self._clear()
            self.err.flush()

    def progress(
        self, *, total_bytes: int | None = None, total_files: int | None = None, verb: str = ""
    ) -> Progress:
        return Progress(self, total_bytes=total_bytes, total_files=total_files, verb=verb)


class Progress:
    """Bytes and files done against a total, drawn at most five times a second: rate, ETA
    and files remaining. Thread-safe; a no-op when the console is not interactive."""

    _INTERVAL = 0.2

    def __init__(
        self,
        console: Console,
        *,
        total_bytes: int | None = None,
        total_files: int | None = None,
        verb: str = "",
    ) -> None:
        self._console = console
        self._active = console.interactive
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.verb = verb
        self.bytes_done = 0
        self.files_done = 0
        self.files_failed = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._extra = ""
        if self._active:
            console._live = self

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def add_total(self, *, files: int = 0, size: int = 0) -> None:
        with self._lock:
            self.total_files = (self.total_files or 0) + files
            self.total_bytes = (self.total_bytes or 0) + size
        self._maybe_draw()

    def advance(self, count: int) -> None:
        with self._lock:
            self.bytes_done += count
        self._maybe_draw()

    def file_done(self, *, failed: bool = False) -> None:
        with self._lock:
            self.files_done += 1
            self.files_failed += failed
        self._maybe_draw()

    def note(self, text: str) -> None:
        """An extra figure shown at the end of the line (running savings, for example)."""
        self._extra = text
        self._maybe_draw()

    def _maybe_draw(self, force: bool = False) -> None:
        if not self._active:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._INTERVAL:
            return
        self._last_draw = now
        self._console.status(self.render())

    def render(self) -> str:
        with self._lock:
            done, total = self.bytes_done, self.total_bytes
            files, total_files = self.files_done, self.total_files
        elapsed = max(self.elapsed, 1e-6)
        rate = done / elapsed
        parts = []
        if total:
            parts.append(f"{human_size(done)}/{human_size(total)}")
            parts.append(f"{human_size(rate)}/s")
            if 0 < done < total and rate > 0:
                parts.append(f"ETA {_duration((total - done) / rate)}")
        elif done:
            parts.append(f"{human_size(done)} ({human_size(rate)}/s)")
        if total_files is not None:
            parts.append(f"{total_files - files} file(s) remaining")
        elif files:
            parts.append(f"{files} file(s)")
        if self._extra:
            parts.append(self._extra)
        return " ".join(p for p in (self.verb, ", ".join(parts)) if p)

    def close(self) -> None:
        if self._active:
            if self._console._live is self:
                self._console._live = None
            self._console.clear_status()
            self._active = False
