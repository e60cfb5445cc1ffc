"""Measuring memory: a command (or Python code) run in a child process while its anonymous
resident memory is sampled.

``RssAnon`` (``/proc/<pid>/status``) is the heap, the stacks and anonymous mappings: what a
process holds that no file backs. A file mapped read-only (an upload, a reference in the cache's
temporary file) counts as ``RssFile`` instead: the kernel can drop those pages and read them
again, so they do not count against the bound. The kernel keeps no high-water mark of RssAnon
alone (``VmHWM`` includes file pages), so it is sampled, every few milliseconds, summed over the
process and its descendants.

Used by the tests of the memory bound (``tests/integration/test_big_memory.py``) and runnable as
a program to measure by hand::

    python tests/memory.py -- deltaglider cp big.bin s3://bucket/big/
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Measured", "big_file", "edited", "measure", "measure_python", "rss_anon", "tree_anon"]

MiB = 1 << 20


def rss_anon(pid: int) -> int:
    """The process's anonymous resident memory in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as fh:
                found.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return found


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


def tree_anon(pid: int) -> int:
    """The RssAnon of a process and its descendants, in bytes."""
    return sum(rss_anon(p) for p in _tree(pid))


@dataclass(frozen=True)
class Measured:
    """What a measured run did: its exit code, output, and peak anonymous memory."""

    returncode: int
    stdout: bytes
    stderr: bytes
    peak: int  # bytes: the highest sum of RssAnon over the process tree seen
    seconds: float
    samples: int

    @property
    def peak_mib(self) -> float:
        return self.peak / MiB

    def check(self) -> Measured:
        """Raises if the run failed, with its output."""
        if self.returncode != 0:
            raise AssertionError(
                f"exit code {self.returncode}\nstdout: {self.stdout[-4000:]!r}\n"
                f"stderr: {self.stderr[-4000:]!r}"
            )
        return self


def measure(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    interval: float = 0.01,
    timeout: float = 1800,
    stdin: IO[bytes] | None = None,
) -> Measured:
    """Runs ``argv`` (its standard input ``stdin``, a file, or nothing) and samples the RssAnon
    of it and its children every ``interval`` s."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = 0
    samples = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, samples
        while not done.is_set():
            total = tree_anon(proc.pid)
            peak = max(peak, total)
            samples += 1
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        done.set()
        sampler.join()
    return Measured(proc.returncode, out, err, peak, time.monotonic() - started, samples)


def measure_python(
    code: str, *, env: Mapping[str, str] | None = None, interval: float = 0.01
) -> Measured:
    """Runs Python ``code`` in a fresh interpreter (this one's) and samples it as :func:`measure`
    does."""
    return measure([sys.executable, "-c", code], env=env, interval=interval)


# --- big files, made quickly ---------------------------------------------------------------

_BLOCK = 4 * MiB


def big_file(path: Path, size: int, seed: int = 0) -> Path:
    """A file of ``size`` bytes that no compressor shrinks much and that is not one block
    repeated: 4 MiB of random bytes, each block rotated by its own offset and numbered."""
    rng = __import__("random").Random(seed)
    base = rng.randbytes(_BLOCK)
    with open(path, "wb") as fh:
        for i, pos in enumerate(range(0, size, _BLOCK)):
            turn = (i * 7919 * 64 + 13) % _BLOCK
            block = base[turn:] + base[:turn]
            block = i.to_bytes(8, "little") + block[8:]
            fh.write(block[: size - pos])
    return path


def edited(source: Path, path: Path, edits: int = 64, seed: int = 1) -> Path:
    """A copy of ``source`` (made by the kernel: reflink or copy_file_range) with ``edits``
    scattered runs of new bytes written over it, a few KiB each."""
    rng = __import__("random").Random(seed)
    size = source.stat().st_size
    with open(source, "rb") as src, open(path, "wb") as dst:
        left = size
        while left:
            left -= os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30))
        for _ in range(edits):
            at = rng.randrange(max(1, size - 65536))
            dst.seek(at)
            dst.write(rng.randbytes(rng.randrange(512, 16384)))
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    result = measure(args)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    print(
        f"peak RssAnon {result.peak_mib:.1f} MiB, {result.seconds:.1f} s, "
        f"exit {result.returncode}, {result.samples} samples",
        file=sys.stderr,
    )
    raise SystemExit(result.returncode)
