"""The original DeltaGlider's bucket administration commands: ``purge`` (the temporary plain
copies that presigned URLs of deltas leave under ``.deltaglider/tmp/``), ``put-bucket-acl`` and
``get-bucket-acl`` (``aws s3api``'s, passed to S3).

All three go through the SDK's client over the command's engine
(:class:`~deltaglider.client.DeltaGliderClient`): ``purge`` is its ``purge_temp_files``, the
ACL commands its ``put_bucket_acl``/``get_bucket_acl`` (boto3's calls). A local store
(``file://``) has no ACLs: one error says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.exceptions
import click

from ..errors import DeltaGliderError
from ._app import EXIT_USAGE, App, DGCommand, abort, common_options, pass_app
from ._console import human_size
from ._paths import parse_s3

__all__ = ["COMMANDS", "get_bucket_acl", "purge", "put_bucket_acl"]

#: Where the temporary copies are (the SDK's TEMP_PREFIX, as the original names it).
TEMP_PREFIX = ".deltaglider/tmp/"


def _bucket(text: str) -> str:
    """``bucket``, ``s3://bucket`` or ``s3://bucket/``, as the original takes them."""
    url = parse_s3(text if text.startswith("s3://") else f"s3://{text}", param="BUCKET")
    if url.key.strip("/"):
        raise click.BadParameter(f"{text!r} names a key; give only a bucket", param_hint="BUCKET")
    return url.bucket


def _client(app: App) -> Any:
    from ..client import DeltaGliderClient

    return DeltaGliderClient(app.store, getattr(app.storage, "client", None))


@contextmanager
def _s3_errors(bucket: str) -> Iterator[None]:
    """S3's refusals as one line: ours when the SDK made it from one of ours (a missing
    bucket reads as every command says it), else S3's code and message."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        if isinstance(exc.__cause__, DeltaGliderError):
            raise exc.__cause__ from None
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "NoSuchBucket":
            abort(f"bucket {bucket} does not exist")
        abort(f"s3://{bucket}: {code}: {message}" if message else f"s3://{bucket}: {code}")
    except botocore.exceptions.BotoCoreError as exc:
        abort(f"s3://{bucket}: {exc}")


def _require_s3(app: App, what: str) -> None:
    if getattr(app.storage, "client", None) is None:
        abort(f"{what}: the local store (file://) has no bucket ACLs; they are S3's")


@click.command(cls=DGCommand)
@click.argument("bucket", metavar="BUCKET")
@click.option("--dry-run", "--dryrun", "dry_run", is_flag=True, help="Show what would be deleted.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also the copies whose presigned URL has not expired yet (those URLs stop working).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@common_options
@pass_app
def purge(app: App, bucket: str, dry_run: bool, everything: bool, as_json: bool) -> None:
    """Delete the expired temporary copies under .deltaglider/tmp/ of BUCKET.

    Presigned URLs of deltas point at plain copies rebuilt there, each recording when its
    URL expires; this removes those whose URL has expired (with --all, every one).
    BUCKET: bucket, s3://bucket or s3://bucket/.
    """
    app.use_json(as_json)
    name = _bucket(bucket)
    started = time.monotonic()
    with _s3_errors(name):
        result = _client(app).purge_temp_files(name, dry_run=dry_run, expired_only=not everything)
    duration = time.monotonic() - started
    deleted, freed, kept = result["Deleted"], result["Bytes"], result["Kept"]
    errors = [f"{e['Key']}: {e['Code']}: {e['Message']}" for e in result["Errors"]]
    ours = {"deleted": deleted, "bytes": freed, "kept": kept, "all": everything}
    files = [
        {"key": o["Key"], "size": o["Size"], "expires_at": o["ExpiresAt"]}
        for o in result["Objects"]
    ]
    console = app.console
    if dry_run:
        # The original DeltaGlider's dry-run document, and ours.
        console.record(
            {
                "bucket": name,
                "prefix": TEMP_PREFIX,
                "dry_run": True,
                "would_delete_count": deleted,
                "total_size_to_free": freed,
                # The original's list (its first 10), and ours: all of them.
                "expired_files": files[:10],
                "files": files,
                **ours,
            }
        )
        console.line(f"Dry run: Would delete {deleted} expired file(s)")
        console.line(f"Total space to free: {freed:,} bytes")
        console.line(f"Kept (URL not expired): {kept}")
        if files:
            console.line("Files that would be deleted (first 10):")
            for entry in files[:10]:
                console.line(f"  {entry['key']} (expires: {entry['expires_at'] or 'unknown'})")
            if len(files) > 10:
                console.line(f"  ... and {len(files) - 10} more")
        return
    app.metrics.gauge("deltaglider.purge.deleted_count", deleted, {"bucket": name})
    app.metrics.gauge("deltaglider.purge.size_freed", freed, {"bucket": name})
    console.record(
        {
            "bucket": name,
            "prefix": TEMP_PREFIX,
            "deleted_count": deleted,
            "expired_count": deleted + len(errors),
            "error_count": len(errors),
            "total_size_freed": freed,
            "duration_seconds": round(duration, 3),
            "errors": errors,
            "dry_run": False,
            **ours,
        }
    )
    line = console.line
    line(f"Purge Statistics for bucket: {name}")
    line("=" * 60)
    line(f"{'Expired files found:':<22}{deleted + len(errors)}")
    line(f"{'Files deleted:':<22}{deleted}")
    line(f"{'Errors:':<22}{len(errors)}")
    shown = f" ({human_size(freed)})" if freed >= 1024 else ""
    line(f"{'Space freed:':<22}{freed:,} bytes{shown}")
    line(f"{'Kept (not expired):':<22}{kept}")
    line(f"{'Duration:':<22}{duration:.2f} seconds")
    for text in errors:
        console.error(f"purge failed: s3://{name}/{text}")
    if errors:
        raise click.exceptions.Exit(1)


_CANNED = ("private", "public-read", "public-read-write", "authenticated-read")
_GRANTS = (
    ("--grant-full-control", "GrantFullControl", "Full control (e.g. id=CANONICAL_ID)."),
    ("--grant-read", "GrantRead", "List the bucket (e.g. id=CANONICAL_ID)."),
    ("--grant-read-acp", "GrantReadACP", "Read the bucket's ACL."),
    ("--grant-write", "GrantWrite", "Create objects in the bucket."),
    ("--grant-write-acp", "GrantWriteACP", "Write the bucket's ACL."),
)


def _grant_options(fn: Any) -> Any:
    for flag, param, text in reversed(_GRANTS):
        fn = click.option(flag, param.lower(), metavar="GRANTEES", help=text)(fn)
    return fn


@click.command("put-bucket-acl", cls=DGCommand)
@click.argument("bucket", metavar="BUCKET")
@click.option("--acl", type=click.Choice(_CANNED), help="A canned ACL.")
@_grant_options
@click.option(
    "--access-control-policy", metavar="JSON", help="The whole ACL (Grants and Owner) as JSON."
)
@common_options
@pass_app
def put_bucket_acl(app: App, /, bucket: str, acl: str | None, **options: Any) -> None:
    """Set BUCKET's access control list (as aws s3api put-bucket-acl).

    \b
      deltaglider put-bucket-acl releases --acl private
      deltaglider put-bucket-acl releases --grant-read id=CANONICAL_ID
    """
    name = _bucket(bucket)
    params: dict[str, Any] = {}
    if acl is not None:
        params["ACL"] = acl
    for _flag, param, _text in _GRANTS:
        if options.get(param.lower()) is not None:
            params[param] = options[param.lower()]
    policy = options.get("access_control_policy")
    if policy is not None:
        try:
            params["AccessControlPolicy"] = json.loads(policy)
        except json.JSONDecodeError as exc:
            abort(f"--access-control-policy is not valid JSON: {exc}", EXIT_USAGE)
    if not params:
        abort("give --acl, a --grant-... option or --access-control-policy", EXIT_USAGE)
    _require_s3(app, "put-bucket-acl")
    with _s3_errors(name):
        _client(app).put_bucket_acl(Bucket=name, **params)
    app.console.line(f"ACL updated for bucket: {name}")


@click.command("get-bucket-acl", cls=DGCommand)
@click.argument("bucket", metavar="BUCKET")
@common_options
@pass_app
def get_bucket_acl(app: App, bucket: str) -> None:
    """Print BUCKET's access control list as JSON (as aws s3api get-bucket-acl)."""
    name = _bucket(bucket)
    _require_s3(app, "get-bucket-acl")
    with _s3_errors(name):
        response = _client(app).get_bucket_acl(Bucket=name)
    response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    app.console.line(json.dumps(response, indent=2, default=str))


COMMANDS = [purge, put_bucket_acl, get_bucket_acl]
