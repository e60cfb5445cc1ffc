"""``deltaglider mb`` and ``rb``: make and remove buckets."""

from __future__ import annotations

import click

from ..errors import BucketNotEmpty
from ._app import App, DGCommand, abort, common_options, describe_error, pass_app
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
    app.create_store = True  # a local store's first bucket makes its folder
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
        _empty(app, bucket)
    try:
        storage.delete_bucket(bucket)
    except BucketNotEmpty:
        abort(f"remove_bucket failed: s3://{bucket}: the bucket is not empty (use --force)")
    app.console.line(f"remove_bucket: {bucket}")


def _empty(app: App, bucket: str) -> None:
    """Deletes everything in the bucket, reported as ``rm -r`` reports it: one line per
    logical object, and one for deltaglider's own objects (references, ``.deltaglider/``)."""
    storage = app.storage
    physical = [o.key for o in storage.iter_objects(bucket)]
    present = set(physical)
    logical = {
        o.physical_key: o.key for o in app.store.iter_objects(bucket) if o.physical_key in present
    }
    failures = storage.delete_many(bucket, physical)
    for key, exc in failures.items():
        where = f"s3://{bucket}/{logical.get(key, key)}"
        app.console.error(f"delete failed: {where}: {describe_error(exc, shown=[where])}")
    for physical_key, key in logical.items():
        if physical_key not in failures:
            app.console.line(f"delete: s3://{bucket}/{key}")
    internal = [k for k in physical if k not in logical and k not in failures]
    if internal:
        app.console.line(
            f"delete: {len(internal)} deltaglider bookkeeping object(s) in s3://{bucket} "
            "(references, .deltaglider/)"
        )
    if failures:
        abort(f"remove_bucket failed: s3://{bucket}: {len(failures)} object(s) remain")


COMMANDS = [mb, rb]
