"""``deltaglider verify``: rebuild objects and check each against the sha256 recorded when
it was stored, writing nothing anywhere."""

from __future__ import annotations

from typing import Any

import click

from ..engine import ObjectSummary
from ..errors import DeltaGliderError
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

__all__ = ["COMMANDS", "verify"]


class _Sink:
    def write(self, data: Any) -> int:
        return len(data)


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

    Exit code 1 if any does not.
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

    def check(obj: ObjectSummary) -> ObjectSummary:
        return store.get(obj.bucket, obj.key, _Sink(), progress=progress.advance)

    bad = 0
    try:
        for (obj,), summary, error in store.pools.operations.as_completed(
            check, ((o,) for o in objects)
        ):
            where = f"s3://{obj.bucket}/{obj.key}"
            record: dict[str, Any] = {"key": obj.key, "bucket": obj.bucket, "delta": obj.is_delta}
            if error is None:
                record.update(valid=True, size=summary.size, sha256=summary.sha256)
                kind = "delta" if obj.is_delta else "whole"
                checked = "sha256 " + summary.sha256 if summary.sha256 else "no sha256 recorded"
                console.line(f"ok: {where} ({kind}, {summary.size} bytes, {checked})")
                progress.file_done()
            else:
                if not isinstance(error, (DeltaGliderError, OSError)):
                    raise error
                bad += 1
                cause = describe_error(error, shown=[where])
                record.update(valid=False, error=cause)
                console.error(f"FAILED: {where}: {cause}")
                if app.settings.debug:
                    console.error(format_traceback(error))
                progress.file_done(failed=True)
            console.record(record)
    finally:
        progress.close()
    if recursive:
        console.line(f"{len(objects) - bad} ok, {bad} failed")
    if bad:
        raise click.exceptions.Exit(EXIT_FAILED)


COMMANDS = [verify]
