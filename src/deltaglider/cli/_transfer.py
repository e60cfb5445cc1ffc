"""Running many transfers: in parallel on the engine's pool, each reported as it ends
(``upload: a.zip to s3://b/a.zip (delta 0.8% of 82.4 MiB)``), a failure of one not stopping
the others, progress in bytes and files, and a summary.
"""

from __future__ import annotations

import mimetypes
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import ObjectSummary, PutResult
from ._app import App, describe_error
from ._cancel import Cancelled
from ._console import human_size, percent

__all__ = [
    "Outcome",
    "Task",
    "format_traceback",
    "guess_type",
    "past_tense",
    "run_tasks",
    "savings_note",
    "stored_cost",
]


@dataclass
class Task:
    """One transfer or deletion.

    ``action`` is what ``aws s3`` calls it (upload, download, copy, delete); ``source`` and
    ``dest`` are what the report line shows; ``size`` the bytes it moves (for progress);
    ``run`` does the work, given a progress callback, and returns a
    :class:`~deltaglider.engine.PutResult`, an :class:`~deltaglider.engine.ObjectSummary`
    or None. Uploads may instead give ``upload`` (bucket, key, source, put options) so that a
    batch goes through the engine's ``put_many`` (which picks a new deltaspace's reference).
    """

    action: str
    source: str
    dest: str | None = None
    size: int = 0
    run: Callable[[Callable[[int], None] | None], Any] | None = None
    upload: tuple[str, str, Any, dict[str, Any]] | None = None
    after: Callable[[Any], None] | None = None
    #: Run before the others (a new deltaspace's would-be reference, say).
    first: bool = False


@dataclass
class Outcome:
    """What a batch did."""

    done: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    logical_bytes: int = 0
    stored_bytes: int = 0
    deltas: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        parts = [f"{n} {past_tense(action)}" for action, n in sorted(self.done.items())]
        if self.failed:
            parts.append(f"{self.failed} failed")
        return (", ".join(parts) or "nothing to do") + self.savings()

    def savings(self) -> str:
        """``; 22.9 MiB stored as 1.9 MiB (91.7% saved)`` when something was stored."""
        if not (self.logical_bytes and self.stored_bytes):
            return ""
        saved = 1 - self.stored_bytes / self.logical_bytes
        return (
            f"; {human_size(self.logical_bytes)} stored as "
            f"{human_size(self.stored_bytes)} ({percent(saved)} saved)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": {
                **{past_tense(action): n for action, n in self.done.items()},
                "failed": self.failed,
                "logical_bytes": self.logical_bytes,
                "stored_bytes": self.stored_bytes,
                "deltas": self.deltas,
            }
        }


#: Past tenses that are not the verb plus "ed"/"d".
_IRREGULAR = {"copy": "copied"}


def past_tense(action: str) -> str:
    """``upload`` -> ``uploaded``, ``delete`` -> ``deleted``, ``copy`` -> ``copied``."""
    if action in _IRREGULAR:
        return _IRREGULAR[action]
    return action + ("d" if action.endswith("e") else "ed")


def guess_type(path: str) -> str | None:
    """The content type ``aws s3`` would guess from a file name."""
    return mimetypes.guess_type(path)[0]


def stored_cost(result: PutResult) -> int:
    """The bytes a put added to the store: a file that became its deltaspace's reference
    costs the reference as well as its (empty) delta."""
    return result.stored_size + (result.size if result.created_reference else 0)


def savings_note(result: PutResult) -> str:
    """What a stored file cost: `` (delta 0.8% of 82.4 MiB)``."""
    if result.became_reference:
        return f" (new reference, {human_size(result.size)})"
    if result.is_delta:
        ratio = result.stored_size / result.size if result.size else 0.0
        return f" (delta {percent(ratio)} of {human_size(result.size)})"
    if result.direct_reason == "reference":
        return f" (reference, {human_size(result.size)})"
    if result.direct_reason == "ratio":
        return f" (stored whole: its delta was over the max ratio; {human_size(result.size)})"
    return ""


def _record(task: Task, result: Any, error: BaseException | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"action": task.action, "source": task.source}
    if task.dest is not None:
        rec["destination"] = task.dest
    if error is not None:
        rec["status"] = "failed"
        rec["error"] = describe_error(error, shown=(task.source, task.dest))
        return rec
    rec["status"] = "ok"
    if isinstance(result, PutResult):
        rec.update(
            size=result.size,
            stored_size=stored_cost(result),
            delta=result.is_delta,
            reference=result.created_reference,
            sha256=result.sha256,
        )
    elif isinstance(result, ObjectSummary):
        rec.update(size=result.size, sha256=result.sha256)
    return rec


def format_traceback(error: BaseException) -> str:
    """A failed file's traceback, for ``--debug`` (the failure itself is one line above it)."""
    return "".join(traceback.format_exception(error)).rstrip()


#: The metric timing one finished task of each action (uploads go through put_many, which
#: times no file alone: their metrics are counts and ratios).
_TIMINGS = {
    "download": "deltaglider.get.duration",
    "copy": "deltaglider.copy.duration",
    "migrate": "deltaglider.copy.duration",
    "delete": "deltaglider.delete.duration",
}


def _put_metrics(app: App, result: PutResult) -> None:
    metrics = app.metrics
    tags = {"bucket": result.bucket}
    if result.created_reference:
        metrics.increment("deltaglider.reference.created", 1, tags)
    if result.is_delta:
        metrics.increment("deltaglider.delta.created", 1, tags)
        if result.size:
            metrics.gauge("deltaglider.delta.ratio", result.stored_size / result.size, tags)
    else:
        metrics.increment("deltaglider.direct.uploaded", 1, tags)


def run_tasks(app: App, tasks: Iterable[Task], *, dryrun: bool = False, verb: str = "") -> Outcome:
    """Runs the tasks in parallel and reports each; returns counts (never raises for one
    task's failure). Ctrl-C stops them within a second, each cleaned up as a failure is
    (see :mod:`._cancel`), and raises KeyboardInterrupt once they have stopped."""
    tasks = list(tasks)
    console = app.console
    outcome = Outcome()
    if dryrun:
        for task in tasks:
            where = f"{task.source} to {task.dest}" if task.dest is not None else task.source
            console.line(f"(dryrun) {task.action}: {where}")
            console.record({**_record(task, None, None), "status": "dryrun"})
        return outcome
    if not tasks:
        return outcome
    actions = {t.action for t in tasks}
    progress = console.progress(
        total_bytes=sum(t.size for t in tasks),
        total_files=len(tasks),
        verb=verb or (actions.pop() if len(actions) == 1 else "transfer"),
    )
    cancel = app.cancel
    advance = cancel.wrap(progress.advance)

    def report(task: Task, result: Any, error: BaseException | None) -> None:
        if isinstance(error, Cancelled) or (error is not None and cancel.requested):
            progress.file_done(failed=True)
            return  # interrupted, not failed: the command ends with "cancelled"
        where = f"{task.source} to {task.dest}" if task.dest is not None else task.source
        if error is None and task.after is not None:
            try:
                task.after(result)
            except (OSError, ValueError) as exc:
                error = exc
        if error is not None:
            outcome.failed += 1
            cause = describe_error(error, shown=(task.source, task.dest))
            message = f"{task.action} failed: {where}: {cause}"
            outcome.errors.append(message)
            console.error(message)
            if app.settings.debug:
                console.error(format_traceback(error))
            console.record(_record(task, None, error))
            progress.file_done(failed=True)
            return
        outcome.done[task.action] = outcome.done.get(task.action, 0) + 1
        note = ""
        if isinstance(result, PutResult):
            note = savings_note(result)
            outcome.logical_bytes += result.size
            outcome.stored_bytes += stored_cost(result)
            outcome.deltas += result.is_delta
            _put_metrics(app, result)
            if outcome.logical_bytes:
                saved = 1 - outcome.stored_bytes / outcome.logical_bytes
                # A first reference costs a few bytes more than the file: not "-0.0%".
                progress.note(f"{percent(max(saved, 0.0) if saved > -0.0005 else saved)} saved")
        console.line(f"{task.action}: {where}{note}")
        console.record(_record(task, result, None))
        progress.file_done()

    def run(task: Task) -> Any:
        cancel.check()  # queued when Ctrl-C came: not started
        started = time.monotonic()
        result = task.run(advance) if task.run else None
        timing = _TIMINGS.get(task.action)
        if timing:
            app.metrics.timing(timing, (time.monotonic() - started) * 1000)
        return result

    uploads = [t for t in tasks if t.upload is not None]
    others = [t for t in tasks if t.upload is None]
    store = app.store
    try:
        with cancel.sigint():
            by_bucket: dict[str, dict[str, Task]] = {}
            for t in uploads:
                assert t.upload is not None
                by_bucket.setdefault(t.upload[0], {})[t.upload[1]] = t
            for bucket, by_key in by_bucket.items():
                cancel.check()
                items = [(key, t.upload[2], t.upload[3]) for key, t in by_key.items() if t.upload]
                for key, result, error in store.put_many(
                    bucket, items, progress=lambda _k, n: advance(n)
                ):
                    report(by_key[key], result, error)
            for batch in ([t for t in others if t.first], [t for t in others if not t.first]):
                if not batch:
                    continue
                cancel.check()
                for (task,), result, error in store.pools.operations.as_completed(
                    run, ((t,) for t in batch)
                ):
                    report(task, result, error)
    finally:
        progress.close()
    return outcome


def upload_task(
    app: App,
    bucket: str,
    key: str,
    path: Path,
    *,
    source_display: str,
    size: int,
    options: dict[str, Any],
) -> Task:
    """An upload that goes through ``put_many``."""
    opts = dict(options)
    if opts.get("content_type") is None:
        opts["content_type"] = guess_type(path.name)
    return Task(
        action="upload",
        source=source_display,
        dest=f"s3://{bucket}/{key}",
        size=size,
        upload=(bucket, key, path, opts),
    )
