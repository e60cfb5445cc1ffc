"""``deltaglider rm``: one object, or everything under a prefix with ``--recursive``.

A deltaspace's reference goes with its last delta, never before (the engine's rule); ``rm -r``
also removes, under its prefix, the references of deltaspaces already left without a delta (by
an earlier run that was killed).
"""

from __future__ import annotations

import click

from ._app import EXIT_USAGE, App, DGCommand, abort, common_options, pass_app
from ._filters import filter_options, filters_from
from ._paths import parse_s3
from ._transfer import Task, run_tasks
from .cp import finish

__all__ = ["COMMANDS", "rm"]


def delete_task(app: App, bucket: str, key: str) -> Task:
    store = app.store
    return Task(
        action="delete",
        source=f"s3://{bucket}/{key}",
        run=lambda _progress: store.delete(bucket, key),
    )


@click.command(cls=DGCommand)
@click.argument("path", metavar="S3_URL")
@click.option("-r", "--recursive", is_flag=True, help="Everything under the prefix.")
@filter_options
@click.option("--dryrun", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Results as JSON lines on stdout.")
@common_options
@pass_app
@click.pass_context
def rm(
    ctx: click.Context, app: App, path: str, recursive: bool, dryrun: bool, as_json: bool
) -> None:
    """Delete an object, or with --recursive everything under a prefix.

    \b
      deltaglider rm s3://releases/app/app-1.0.zip
      deltaglider rm -r s3://releases/app/ --exclude "*" --include "*-rc*"
    """
    app.use_json(as_json)
    url = parse_s3(path, param="S3_URL")
    filters = filters_from(ctx)
    if not recursive:
        if not url.key:
            raise click.UsageError(f"{url} names no object (use --recursive for a bucket)")
        if url.key.endswith("/"):
            abort(f"{url} is a prefix; use --recursive", EXIT_USAGE)
        tasks = [delete_task(app, url.bucket, url.key)] if filters.included(url.basename) else []
    else:
        prefix = url.dir_prefix
        tasks = [
            delete_task(app, url.bucket, obj.key)
            for obj in app.store.iter_objects(url.bucket, prefix=prefix)
            if filters.included(obj.key[len(prefix) :])
        ]
    outcome = run_tasks(app, tasks, dryrun=dryrun)
    if recursive and not dryrun:
        # A run killed between a deltaspace's last delta and its reference left the reference,
        # which no listing shows: this run (or its re-run) removes it.
        app.store.drop_unused_references(url.bucket, url.dir_prefix)
    if recursive and dryrun:
        app.console.line(f"Would delete {len(tasks)} object(s)")
    # The original DeltaGlider's last line of rm -r, which scripts look for (aws s3 rm ends
    # with no such line).
    failed = f", {outcome.failed} failed" if outcome.failed else ""
    deleted = f"Deleted {outcome.done.get('delete', 0)} object(s){failed}"
    finish(app, outcome, many=recursive, dryrun=dryrun, summary=deleted)


COMMANDS = [rm]
