"""``deltaglider verify``: rebuild objects and check each against the sha256 recorded when
it was stored, writing nothing anywhere."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import click

from ..engine import ObjectSummary
from ..errors import DeltaGliderError, IntegrityError
from ._app import (
    EXIT_FAILED,
    EXIT_USAGE,
    App,
    DGCommand,
    abort,
    common_options,
    describe_error,
    pass_app,
)
from ._filters import filter_options, filters_from
from ._paths import parse_s3
from ._transfer import format_traceback

__all__ = ["COMMANDS", "record_of", "verify"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Sink:
    """Where a rebuilt object goes: nowhere, but through a sha256 of its own (the
    ``actual_sha256`` reported)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(data)


def _digest(value: object) -> str | None:
    text = str(value or "")
    return text if _SHA256.fullmatch(text) else None


def record_of(
    obj: ObjectSummary, summary: ObjectSummary | None, actual: str | None, cause: str | None
) -> dict[str, Any]:
    """One object's result: the original DeltaGlider's fields (``valid``, ``expected_sha256``,
    ``actual_sha256``, ``message``), then ours."""
    expected = (summary.sha256 if summary is not None else None) or obj.sha256
    record: dict[str, Any] = {
        "valid": cause is None,
        "expected_sha256": expected,
        "actual_sha256": actual,
        "message": "Integrity verified" if cause is None else f"Integrity check failed: {cause}",
        "key": obj.key,
        "bucket": obj.bucket,
        "delta": obj.is_delta,
    }
    if cause is None and summary is not None:
        record.update(size=summary.size, sha256=summary.sha256)
    else:
        record["error"] = cause
    return record


@click.command(cls=DGCommand)
@click.argument("path", metavar="S3_URL")
@click.option("-r", "--recursive", is_flag=True, help="Every object under the prefix.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per object checked.")
@common_options
@pass_app
@click.pass_context
def verify(ctx: click.Context, app: App, path: str, recursive: bool, as_json: bool) -> None:
    """Check that objects rebuild to exactly the bytes that were stored (sha256).

    One object: its result as a JSON document on stdout, as the original DeltaGlider printed
    it (valid, expected_sha256, actual_sha256, message, and ours), and an ok/FAILED line on
    stderr. With --recursive, an ok line per object on stdout and a count (failures on
    stderr). --json: one JSON object a line on stdout, nothing else. Exit code 1 if any does
    not verify.
    """
    app.use_json(as_json)
    url = parse_s3(path, param="S3_URL")
    filters = filters_from(ctx)
    store = app.store
    console = app.console
    if recursive:
        prefix = url.dir_prefix
        objects = [
            o
            for o in store.iter_objects(url.bucket, prefix=prefix, logical_sizes=True)
            if filters.included(o.key[len(prefix) :])
        ]
    else:
        if not url.key:
            abort(f"{url} names no object (use --recursive for a prefix)", EXIT_USAGE)
        if url.key.endswith("/"):
            abort(f"{url} is a prefix; use --recursive", EXIT_USAGE)
        objects = [store.head(url.bucket, url.key)]
    progress = console.progress(
        total_bytes=sum(o.size or o.stored_size for o in objects),
        total_files=len(objects),
        verb="verify",
    )
    cancel = app.cancel
    advance = cancel.wrap(progress.advance)

    def check(obj: ObjectSummary) -> tuple[ObjectSummary, str]:
        cancel.check()
        started = time.monotonic()
        sink = _Sink()
        summary = store.get(obj.bucket, obj.key, sink, progress=advance)
        app.metrics.timing("deltaglider.verify.duration", (time.monotonic() - started) * 1000)
        return summary, sink.hash.hexdigest()

    bad = 0
    try:
        with cancel.sigint():
            for (obj,), result, error in store.pools.operations.as_completed(
                check, ((o,) for o in objects)
            ):
                if cancel.requested:
                    continue
                where = f"s3://{obj.bucket}/{obj.key}"
                status = ""  # one object's ok line: on stderr, after its document
                if error is None:
                    summary, actual = result
                    record = record_of(obj, summary, actual, None)
                    kind = "delta" if obj.is_delta else "whole"
                    checked = "sha256 " + summary.sha256 if summary.sha256 else "no sha256 recorded"
                    text = f"ok: {where} ({kind}, {summary.size} bytes, {checked})"
                    if recursive:
                        console.line(text)
                    elif not (app.settings.quiet or as_json):
                        status = text  # stdout is the JSON document, as the original's
                    progress.file_done()
                else:
                    if not isinstance(error, (DeltaGliderError, OSError)):
                        raise error
                    bad += 1
                    cause = describe_error(error, shown=[where])
                    actual = _digest(error.actual) if isinstance(error, IntegrityError) else None
                    record = record_of(obj, None, actual, cause)
                    if isinstance(error, IntegrityError) and not record["expected_sha256"]:
                        record["expected_sha256"] = _digest(error.expected)
                    console.error(f"FAILED: {where}: {cause}")
                    if app.settings.debug:
                        console.error(format_traceback(error))
                    progress.file_done(failed=True)
                console.record(record)
                if not recursive:
                    # As the original DeltaGlider: the result, a JSON document, on stdout.
                    console.line(json.dumps(record, indent=2))
                    if status:
                        console.error(status)
    finally:
        progress.close()
    if recursive:
        console.line(f"{len(objects) - bad} ok, {bad} failed")
    if bad:
        raise click.exceptions.Exit(EXIT_FAILED)


COMMANDS = [verify]
