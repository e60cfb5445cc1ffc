"""``deltaglider mb`` and ``rb``: make and remove buckets."""

from __future__ import annotations

import click

from ..errors import BucketNotEmpty
from ._app import App, DGCommand, abort, common_options, pass_app
from ._paths import parse_s3

__all__ = ["COMMANDS", "mb", "rb"]


def _bucket_only(path: str) -> str:
    url = parse_s3(path if path.startswith("s3://") else f"s3://{path}", param="BUCKET")
    if url.key.strip("/"):
        raise click.BadParameter(f"{path!r} names a key; give only a bucket", param_hint="BUCKET")
    return url.bucket


@click.command(cls=DGCommand)
@click.argument("path", metavar="s3://BUCKET")
@common_options
@pass_app
def mb(app: App, path: str) -> None:
    """Make a bucket."""
    bucket = _bucket_only(path)
    app.storage.create_bucket(bucket)
    app.console.line(f"make_bucket: {bucket}")


@click.command(cls=DGCommand)
@click.argument("path", metavar="s3://BUCKET")
@click.option(
    "--force", is_flag=True, help="Delete everything in the bucket first (deltaglider's too)."
)
@common_options
@pass_app
def rb(app: App, path: str, force: bool) -> None:
    """Remove a bucket; it must be empty unless --force."""
    bucket = _bucket_only(path)
    storage = app.storage
    if force:
        keys = [o.key for o in storage.iter_objects(bucket)]
        failures = storage.delete_many(bucket, keys)
        for key, exc in failures.items():
            app.console.error(f"delete failed: s3://{bucket}/{key} {exc}")
        for key in keys:
            if key not in failures:
                app.console.line(f"delete: s3://{bucket}/{key}")
        if failures:
            abort(f"remove_bucket failed: s3://{bucket}: {len(failures)} object(s) remain")
    try:
        storage.delete_bucket(bucket)
    except BucketNotEmpty:
        abort(f"remove_bucket failed: s3://{bucket}: the bucket is not empty (use --force)")
    app.console.line(f"remove_bucket: {bucket}")


COMMANDS = [mb, rb]
