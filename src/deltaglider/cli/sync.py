"""``deltaglider sync``: make a destination (local folder or S3 prefix) hold what the
source holds, transferring only what is missing or changed, with ``aws s3 sync``'s rules.

A file is transferred when the destination lacks it, or the sizes differ (logical sizes for
deltas), or its time says the source is newer: for uploads and S3 copies when the source
was modified after the destination's object; for downloads (whose files get the object's
time) when the local file is newer, or with ``--exact-timestamps`` when the times differ at
all. ``--size-only`` compares sizes alone. Running it twice transfers nothing the second time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..engine import ObjectSummary
from ._app import EXIT_USAGE, App, DGCommand, abort, common_options, pass_app
from ._filters import Filters, filter_options, filters_from
from ._paths import S3Url, display_local, is_s3, parse_s3, safe_local_join, walk_local
from ._transfer import Outcome, Task, past_tense, run_tasks, upload_task
from ._write import require_s3_writes, write_options, write_options_from
from .cp import copy_task, download_task, finish, put_options, transfer_options
from .rm import delete_task

__all__ = ["COMMANDS", "Entry", "should_transfer", "sync", "sync_summary"]


@dataclass(frozen=True)
class Entry:
    """A file on one side: its size and modification time (seconds since the epoch)."""

    size: int
    mtime: float


def should_transfer(
    src: Entry,
    dest: Entry | None,
    *,
    direction: str,
    size_only: bool = False,
    exact_timestamps: bool = False,
) -> bool:
    """``aws s3 sync``'s decision for a file present at the source."""
    if dest is None:
        return True
    if src.size != dest.size:
        return True
    if size_only:
        return False
    # S3 keeps whole seconds: a file uploaded within the second it was written must not
    # look newer than its object.
    delta = math.floor(dest.mtime) - math.floor(src.mtime)
    if direction == "download":
        if exact_timestamps:
            return delta != 0
        return delta > 0
    return delta < 0


def _s3_entries(app: App, url: S3Url, filters: Filters) -> dict[str, tuple[Entry, ObjectSummary]]:
    prefix = url.dir_prefix
    out = {}
    for obj in app.store.iter_objects(url.bucket, prefix=prefix, logical_sizes=True):
        rel = obj.key[len(prefix) :]
        if not rel or rel.endswith("/") or not filters.included(rel):
            continue
        size = obj.size if obj.size is not None else obj.stored_size
        when = obj.last_modified.timestamp() if obj.last_modified else 0.0
        out[rel] = (Entry(size, when), obj)
    return out


def _set_mtime(path: Path, when: datetime | None) -> Callable[[Any], None]:
    def after(_result: Any) -> None:
        if when is not None:
            stamp = when.timestamp()
            os.utime(path, (stamp, stamp))

    return after


@click.command(cls=DGCommand)
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("--delete", is_flag=True, help="Delete what the destination has and SRC lacks.")
@filter_options
@transfer_options
@click.option("--size-only", is_flag=True, help="Compare sizes only, not times.")
@click.option(
    "--exact-timestamps",
    is_flag=True,
    help="Downloading: same-sized files are skipped only if their times match exactly.",
)
@write_options
@click.option("--dryrun", is_flag=True, help="Show what would be done; do nothing.")
@click.option("--no-follow-symlinks", is_flag=True, help="Skip symbolic links in local folders.")
@click.option("--json", "as_json", is_flag=True, help="Results as JSON lines on stdout.")
@common_options
@pass_app
@click.pass_context
def sync(
    ctx: click.Context,
    app: App,
    source: str,
    destination: str,
    delete: bool,
    no_delta: bool,
    max_ratio: float | None,
    size_only: bool,
    exact_timestamps: bool,
    dryrun: bool,
    no_follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Copy what is missing or changed from SRC to DST (local to S3, S3 to local, or S3 to
    S3).

    \b
      deltaglider sync build/ s3://releases/app/
      deltaglider sync s3://releases/app/ mirror/ --delete
    """
    app.use_json(as_json)
    filters = filters_from(ctx)
    src_s3, dst_s3 = is_s3(source), is_s3(destination)
    write = write_options_from(ctx, no_delta=no_delta)
    if dst_s3:  # downloads write nothing to S3: they ignore them, as aws
        require_s3_writes(app, write)
    options = put_options(no_delta, max_ratio, write=write)
    rule = {"size_only": size_only, "exact_timestamps": exact_timestamps}
    tasks: list[Task] = []
    deletions: list[Task] = []
    if not src_s3 and not dst_s3:
        abort("at least one of SRC and DST must be an s3:// URL", EXIT_USAGE)
    if not src_s3:
        root = Path(source)
        if not root.is_dir():
            abort(f"{source} is not a folder", EXIT_USAGE)
        dest = parse_s3(destination, param="DST")
        there = _s3_entries(app, dest, filters)
        for f in walk_local(root, follow_symlinks=not no_follow_symlinks):
            if not filters.included(f.rel):
                continue
            have = there.pop(f.rel, None)
            if should_transfer(
                Entry(f.size, f.mtime), have[0] if have else None, direction="upload", **rule
            ):
                tasks.append(
                    upload_task(
                        app,
                        dest.bucket,
                        dest.dir_prefix + f.rel,
                        f.path,
                        source_display=display_local(f.path),
                        size=f.size,
                        options=options,
                    )
                )
        if delete:
            deletions = [delete_task(app, dest.bucket, obj.key) for _, obj in there.values()]
    elif not dst_s3:
        src = parse_s3(source, param="SRC")
        root = Path(destination)
        if root.exists() and not root.is_dir():
            abort(f"{destination} is a file, not a folder", EXIT_USAGE)
        local = (
            {
                f.rel: f
                for f in walk_local(root, follow_symlinks=not no_follow_symlinks, partials=True)
                if filters.included(f.rel)
            }
            if root.exists()
            else {}
        )
        for rel, (entry, obj) in _s3_entries(app, src, filters).items():
            mine = local.pop(rel, None)
            if not should_transfer(
                entry,
                Entry(mine.size, mine.mtime) if mine else None,
                direction="download",
                **rule,
            ):
                continue
            try:
                target = safe_local_join(root, rel)
            except ValueError as exc:
                app.console.error(f"skipping: s3://{obj.bucket}/{obj.key}: {exc}")
                continue
            tasks.append(
                download_task(app, obj, target, after=_set_mtime(target, obj.last_modified))
            )
        if delete:
            deletions = [_local_delete(f.path) for f in local.values()]
    else:
        src = parse_s3(source, param="SRC")
        dest = parse_s3(destination, param="DST")
        there = _s3_entries(app, dest, filters)
        for rel, (entry, obj) in _s3_entries(app, src, filters).items():
            have = there.pop(rel, None)
            if should_transfer(entry, have[0] if have else None, direction="copy", **rule):
                tasks.append(copy_task(app, obj, dest.child(dest.dir_prefix + rel), options))
        if delete:
            deletions = [delete_task(app, dest.bucket, obj.key) for _, obj in there.values()]
    outcome = run_tasks(app, tasks + deletions, dryrun=dryrun)
    if delete and dst_s3 and not dryrun:
        # A run killed between a deltaspace's last delta and its reference left the reference.
        app.store.drop_unused_references(dest.bucket, dest.dir_prefix)
    action = "upload" if not src_s3 else "download" if not dst_s3 else "copy"
    finish(app, outcome, many=True, dryrun=dryrun, summary=sync_summary(outcome, action))


def sync_summary(outcome: Outcome, action: str) -> str:
    """The original DeltaGlider's last line, which scripts look for, with what we add:
    ``Sync completed: 2 uploaded, 1 deleted; 22.9 MiB stored as 1.9 MiB (91.7% saved)``, or
    ``Sync completed: Already up to date``. (``aws s3 sync`` ends with no such line.)"""
    moved, deleted = outcome.done.get(action, 0), outcome.done.get("delete", 0)
    if not (moved or deleted or outcome.failed):
        return "Sync completed: Already up to date"
    failed = f", {outcome.failed} failed" if outcome.failed else ""
    return (
        f"Sync completed: {moved} {past_tense(action)}, {deleted} deleted{failed}"
        + outcome.savings()
    )


def _local_delete(path: Path) -> Task:
    return Task(
        action="delete",
        source=display_local(path),
        run=lambda _progress: path.unlink(),
    )


COMMANDS = [sync]
