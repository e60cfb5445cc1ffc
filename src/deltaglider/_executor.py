"""One executor policy: which thread pools the package runs, how large each is, and who may
wait on whom.

Every thread deltaglider starts belongs to a :class:`Pool` of one of four tiers. A task may
wait only on tasks of a *lower* tier (further down this list), never on its own tier: a pool
whose every thread waits on work queued behind it would deadlock.

1. **operations** (an engine's, ``max_workers`` threads): whole operations of a batch, one
   file each (a put, a get, a copy, a delete of a multi-file command; a deltaspace sampled by
   ``analyze``).
2. **requests** (an engine's, ``2 * max_workers + 2``): the single requests an operation fans
   out and waits for (the HEAD of a key's other stored form, a page's logical sizes, a
   source's sha256) and the cleanup it leaves behind (a stale twin's removal). Sized so that
   every operation can have two in flight and a couple more run in the background.
3. **storage** (a store's, sized by its connections): the parts of a multipart upload or copy,
   ranged parts read ahead of a reader, bulk HEADs. They wait on the network only.
4. **codec** (one per process, a thread per core): windows encoded and decoded. They wait on
   nothing.

Sizes are derived here from two settings, ``max_workers`` (:class:`~deltaglider.config.Config`)
and the CPU count, and nowhere else: the connections a store keeps come from
:func:`connections_for`, so that no thread waits for a socket.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

__all__ = [
    "CODEC",
    "EnginePools",
    "Pool",
    "codec_threads",
    "connections_for",
    "cpu_threads",
    "operation_threads",
    "request_threads",
    "storage_threads",
]

T = TypeVar("T")
R = TypeVar("R")


def operation_threads(max_workers: int) -> int:
    """Threads of an engine's operations tier."""
    return max(1, max_workers)


def request_threads(max_workers: int) -> int:
    """Threads of an engine's requests tier: two requests per operation, and room for the
    cleanup operations leave behind."""
    return 2 * max(1, max_workers) + 2


def connections_for(max_workers: int) -> int:
    """Connections a store keeps for an engine of ``max_workers``: at least every thread of
    its operations and requests tiers, with parts and bulk HEADs beside them."""
    return max(32, 4 * max(1, max_workers))


def storage_threads(connections: int) -> int:
    """Threads of a store's storage tier: one per connection, so that none waits for a socket
    (and there are never more threads than sockets)."""
    return max(2, connections)


def cpu_threads() -> int:
    """Threads of the codec tier: one per core (at least two, so that probing runs beside
    encoding)."""
    return max(2, os.cpu_count() or 1)


def codec_threads() -> int:
    """Windows one codec call works on at once by default: the cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


class Pool:
    """A named pool of ``size`` threads: created on first use, created anew in a forked child
    (a fork has no threads). After :meth:`shutdown`, submitting raises RuntimeError, as a
    shut-down ``ThreadPoolExecutor`` does."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._closed = False

    def _get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: cannot schedule new futures after shutdown")
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix=self.name)
                self._pid = os.getpid()
            return self._executor

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._get().submit(fn, *args, **kwargs)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` of every item, in order (all submitted at once: for a few items)."""
        return self._get().map(fn, items)

    def as_completed(
        self, fn: Callable[..., R], items: Iterable[tuple[Any, ...]], in_flight: int | None = None
    ) -> Iterator[tuple[tuple[Any, ...], Any, BaseException | None]]:
        """Runs ``fn(*item)`` for each item, at most ``in_flight`` submitted at once (default:
        twice the threads, so that none idles between two results); yields ``(item, result,
        error)`` as each finishes. One failure does not stop the others. Items are taken from
        ``items`` only as room frees up, so a long generator is never drawn whole."""
        futures: dict[Future[R], tuple[Any, ...]] = {}
        iterator = iter(items)
        limit = in_flight or 2 * self.size

        def submit() -> bool:
            try:
                item = next(iterator)
            except StopIteration:
                return False
            futures[self.submit(fn, *item)] = item
            return True

        for _ in range(limit):
            if not submit():
                break
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                item = futures.pop(fut)
                exc = fut.exception()
                yield item, None if exc else fut.result(), exc
                submit()

    def ordered(self, tasks: Iterator[Callable[[], R]], depth: int) -> Generator[R, None, None]:
        """Runs tasks at most ``depth`` at once, yielding their results in order.

        With ``depth`` 1 the tasks run in the calling thread. Closing the generator early
        cancels whatever has not started and waits for what has, so that no task outlives the
        caller's buffers.
        """
        if depth <= 1:
            for task in tasks:
                yield task()
            return
        pending: deque[Future[R]] = deque()
        try:
            for task in tasks:
                pending.append(self.submit(task))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
            for fut in pending:
                if not fut.cancelled():
                    # Already failing or closed: wait for the task, keep the first error.
                    with contextlib.suppress(BaseException):
                        fut.result()

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
        if executor is not None:
            executor.shutdown(wait=wait)


class EnginePools:
    """An engine's two tiers (operations and requests), sized from its ``max_workers``."""

    def __init__(self, max_workers: int) -> None:
        self.operations = Pool("deltaglider-engine", operation_threads(max_workers))
        self.requests = Pool("deltaglider-io", request_threads(max_workers))

    def shutdown(self) -> None:
        self.operations.shutdown(wait=True)
        self.requests.shutdown(wait=True)


#: The codec tier: one pool for the whole process.
CODEC = Pool("deltaglider-codec", cpu_threads())
