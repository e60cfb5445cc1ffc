"""``deltaglider cp``: local to S3, S3 to local, S3 to S3, and ``-`` for stdin/stdout, with
the destination rules of ``aws s3 cp``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..engine import ObjectSummary, Opened
from ..errors import ObjectNotFound
from ..storage.base import WriteOptions
from ._app import EXIT_FAILED, EXIT_USAGE, RATIO, App, DGCommand, abort, common_options, pass_app
from ._filters import Filters, filter_options, filters_from
from ._paths import (
    S3Url,
    display_local,
    into,
    is_s3,
    parse_s3,
    safe_local_join,
    walk_local,
)
from ._stdio import from_stdin, to_stdout
from ._transfer import Outcome, Task, run_tasks, upload_task
from ._write import require_s3_writes, write_options, write_options_from

__all__ = ["COMMANDS", "cp", "parse_metadata", "transfer_options"]


def _head_or_hint(app: App, src: Any) -> ObjectSummary:
    """The source object; when there is none but the name is a prefix of objects, the error
    says so (``aws s3 cp`` only says the key does not exist)."""
    with _prefix_hint(app, src):
        return app.store.head(src.bucket, src.key)


def _open_or_hint(app: App, src: Any) -> Opened:
    """The source object, open for reading (one GET brings what it is and its bytes: a
    download costs two requests, not four); the same hint as :func:`_head_or_hint`."""
    with _prefix_hint(app, src):
        return app.store.open_object(src.bucket, src.key)


@contextmanager
def _prefix_hint(app: App, src: Any) -> Iterator[None]:
    try:
        yield
    except ObjectNotFound:
        page = app.store.list_objects(src.bucket, prefix=src.key + "/", max_keys=1)
        if page.objects or page.prefixes:
            abort(f"{src} does not exist; it is a prefix: use --recursive", EXIT_FAILED)
        raise


def parse_metadata(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--metadata``: ``key=value,key2=value2`` or a JSON object, as ``aws s3`` takes it."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise click.BadParameter("must be a JSON object of strings")
        return parsed
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value")
        pairs[key.strip()] = val.strip()
    return pairs


def transfer_options(fn: Any) -> Any:
    """Options of the commands that store files (cp, sync, migrate)."""
    fn = click.option("--no-delta", is_flag=True, help="Store files whole, never as deltas.")(fn)
    fn = click.option(
        "--max-ratio",
        type=RATIO,
        metavar="RATIO",
        help="Store a delta only if it is at most this fraction of the file (default 0.5, "
        "DG_MAX_RATIO).",
    )(fn)
    return fn


def put_options(
    no_delta: bool,
    max_ratio: float | None,
    metadata: Any = None,
    content_type: Any = None,
    write: WriteOptions | None = None,
) -> dict[str, Any]:
    """The engine's put (and copy) options of a command's flags; ``write``: S3's own."""
    options: dict[str, Any] = {"max_ratio": max_ratio}
    if no_delta:
        options["delta"] = False
    if write:
        options["options"] = write
    if metadata is not None:
        options["metadata"] = metadata
    if content_type is not None:
        options["content_type"] = content_type
    return options


@click.command(cls=DGCommand)
@click.argument("paths", nargs=-1, required=True, metavar="SRC... DST")
@click.option("-r", "--recursive", is_flag=True, help="Everything under SRC (a folder or prefix).")
@filter_options
@transfer_options
@click.option(
    "--metadata",
    callback=parse_metadata,
    metavar="K=V,...",
    help="User metadata for what is stored (key=value pairs, or a JSON object).",
)
@click.option("--content-type", metavar="TYPE", help="Content type (default: from the name).")
@write_options
@click.option(
    "--expected-size",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Uploading stdin (-): the bytes it gives; any other count is an error, nothing stored.",
)
@click.option("--dryrun", is_flag=True, help="Show what would be done; do nothing.")
@click.option("--no-follow-symlinks", is_flag=True, help="Skip symbolic links in local folders.")
@click.option("--json", "as_json", is_flag=True, help="Results as JSON lines on stdout.")
@common_options
@pass_app
@click.pass_context
def cp(
    ctx: click.Context,
    app: App,
    paths: tuple[str, ...],
    recursive: bool,
    no_delta: bool,
    max_ratio: float | None,
    metadata: dict[str, str] | None,
    content_type: str | None,
    expected_size: int | None,
    dryrun: bool,
    no_follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Copy files to, from or within S3.

    \b
      deltaglider cp app-1.2.zip s3://releases/app/
      deltaglider cp -r build/ s3://releases/app/ --exclude "*" --include "*.zip"
      deltaglider cp s3://releases/app/app-1.2.zip .
      deltaglider cp s3://releases/app/ s3://archive/app/ --recursive
      deltaglider cp dist/*.zip s3://releases/1.2/
      cat app.zip | deltaglider cp - s3://releases/app/app.zip

    A destination ending in / (or an existing local folder) receives the source under its
    own name; otherwise it is the new name. With several sources (files or objects, not
    --recursive), DST is the folder or prefix they all go into.
    """
    if len(paths) < 2:
        raise click.UsageError("Missing argument 'DST'.")
    *sources, destination = paths
    app.use_json(as_json)
    filters = filters_from(ctx)
    write = write_options_from(ctx, no_delta=no_delta)
    if is_s3(destination):  # a download writes nothing to S3: it ignores them, as aws
        require_s3_writes(app, write)
    options = put_options(no_delta, max_ratio, metadata, content_type, write)
    if len(sources) > 1:
        tasks = _many_sources(app, sources, destination, filters, options, recursive)
        finish(app, run_tasks(app, tasks, dryrun=dryrun), many=True, dryrun=dryrun)
        return
    source = sources[0]
    src_s3, dst_s3 = is_s3(source), is_s3(destination)
    if source == "-" or destination == "-":
        if recursive:
            abort("- (stdin/stdout) cannot be used with --recursive", EXIT_USAGE)
        if source == "-" and dst_s3:
            dest = parse_s3(destination, param="DST")
            return from_stdin(app, dest, options, dryrun, expected_size)
        if destination == "-" and src_s3:
            return to_stdout(app, parse_s3(source, param="SRC"), dryrun)
        abort("- needs an s3:// URL on the other side", EXIT_USAGE)
    if not src_s3 and not dst_s3:
        abort("at least one of SRC and DST must be an s3:// URL", EXIT_USAGE)
    follow = not no_follow_symlinks
    if not src_s3:
        tasks = upload_tasks(
            app,
            Path(source),
            parse_s3(destination, param="DST"),
            recursive,
            filters,
            options,
            follow,
        )
    elif not dst_s3:
        tasks = download_tasks(
            app, parse_s3(source, param="SRC"), destination, recursive, filters, dryrun=dryrun
        )
    else:
        tasks = copy_tasks(
            app,
            parse_s3(source, param="SRC"),
            parse_s3(destination, param="DST"),
            recursive,
            filters,
            options,
        )
    outcome = run_tasks(app, tasks, dryrun=dryrun)
    finish(app, outcome, many=recursive, dryrun=dryrun)


def _many_sources(
    app: App,
    sources: list[str],
    destination: str,
    filters: Filters,
    options: dict[str, Any],
    recursive: bool,
) -> list[Task]:
    """``cp A B ... DST``: each source, a file or an object, into the folder or prefix DST
    (what a shell glob gives: ``cp dist/*.zip s3://releases/1.2/``). Every source is checked
    before anything is transferred."""
    if recursive:
        abort("several sources cannot be copied with --recursive: give one folder", EXIT_USAGE)
    if "-" in sources or destination == "-":
        abort("- (stdin/stdout) takes one source and one destination", EXIT_USAGE)
    folder = f"{destination}/" if not destination.endswith("/") else destination
    dest = parse_s3(destination, param="DST") if is_s3(destination) else None
    if dest is not None:
        if dest.key and not dest.key.endswith("/"):
            abort(
                f"several sources need a folder as DST: {destination} does not end in / "
                f"(use {folder} to copy them into it)",
                EXIT_USAGE,
            )
    elif not (destination.endswith(("/", os.sep)) or Path(destination).is_dir()):
        abort(
            f"several sources need a folder as DST: {destination} is not a folder "
            f"(use {folder} to create it)",
            EXIT_USAGE,
        )
    tasks: list[Task] = []
    for source in sources:
        if dest is not None and is_s3(source):
            tasks += copy_tasks(app, parse_s3(source, param="SRC"), dest, False, filters, options)
        elif is_s3(source):
            tasks += download_tasks(
                app, parse_s3(source, param="SRC"), destination, False, filters, eager=False
            )
        elif dest is not None:
            tasks += upload_tasks(app, Path(source), dest, False, filters, options)
        else:
            abort(f"{source} to {destination}: one side must be an s3:// URL", EXIT_USAGE)
    seen: dict[str, str] = {}
    for task in tasks:
        if task.dest in seen:
            abort(
                f"{seen[task.dest]} and {task.source} would both be written to {task.dest}",
                EXIT_USAGE,
            )
        seen[task.dest or ""] = task.source
    return tasks


def finish(
    app: App,
    outcome: Outcome,
    *,
    many: bool,
    dryrun: bool = False,
    summary: str | None = None,
) -> None:
    """The summary of a multi-file command (``summary``, else the outcome's own) and its
    exit code."""
    if many and not dryrun:
        app.console.line(summary if summary is not None else outcome.summary())
        app.console.record(outcome.as_dict())
    if not outcome.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def upload_tasks(
    app: App,
    src: Path,
    dest: S3Url,
    recursive: bool,
    filters: Filters,
    options: dict[str, Any],
    follow_symlinks: bool = True,
) -> list[Task]:
    if not src.exists():
        abort(f"the local path {src} does not exist", EXIT_USAGE)
    if recursive:
        if not src.is_dir():
            abort(f"{src} is not a folder (drop --recursive to copy one file)", EXIT_USAGE)
        return [
            upload_task(
                app,
                dest.bucket,
                dest.dir_prefix + f.rel,
                f.path,
                source_display=display_local(f.path),
                size=f.size,
                options=options,
            )
            for f in walk_local(src, follow_symlinks=follow_symlinks)
            if filters.included(f.rel)
        ]
    if src.is_dir():
        abort(f"{src} is a folder (use --recursive)", EXIT_USAGE)
    if not filters.included(src.name):
        return []
    target = into(dest, src.name)
    if not target.key:
        abort(f"{dest} names no key", EXIT_USAGE)
    return [
        upload_task(
            app,
            target.bucket,
            target.key,
            src,
            source_display=display_local(src),
            size=src.stat().st_size,
            options=options,
        )
    ]


def _local_target(destination: str, name: str) -> Path:
    """``aws s3 cp`` for one downloaded file: into an existing folder or one named with a
    trailing separator, else the path itself."""
    path = Path(destination)
    if destination.endswith(("/", os.sep)) or path.is_dir():
        return path / name
    return path


def download_task(
    app: App,
    obj: ObjectSummary,
    target: Path,
    after: Any = None,
    action: str = "download",
    opened: Opened | None = None,
) -> Task:
    """A download of ``obj`` to ``target``; from ``opened`` when the object is open already."""
    store = app.store

    def run(progress: Any) -> ObjectSummary:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        with app.cancel.download(target):
            if opened is not None:
                return opened.save_as(target, progress=progress)
            return store.get(obj.bucket, obj.key, target, progress=progress)

    return Task(
        action=action,
        source=f"s3://{obj.bucket}/{obj.key}",
        dest=display_local(target),
        size=obj.size or obj.stored_size,
        run=run,
        after=after,
    )


def download_tasks(
    app: App,
    src: S3Url,
    destination: str,
    recursive: bool,
    filters: Filters,
    *,
    dryrun: bool = False,
    eager: bool = True,
) -> list[Task]:
    """The downloads of ``src``; one object is opened at once (its GET brings what it is and
    its bytes) unless ``dryrun`` or not ``eager`` (one of many: opened when its turn comes)."""
    store = app.store
    if not recursive:
        if not src.key:
            abort(f"{src} names no object (use --recursive for a whole bucket)", EXIT_USAGE)
        if src.key.endswith("/"):
            abort(f"{src} is a prefix; use --recursive", EXIT_USAGE)
        if not filters.included(src.basename):
            return []
        target = _local_target(destination, src.basename)
        if dryrun or not eager:
            return [download_task(app, _head_or_hint(app, src), target)]
        opened = _open_or_hint(app, src)
        return [download_task(app, opened.summary, target, opened=opened)]
    root = Path(destination)
    if root.exists() and not root.is_dir():
        abort(f"{destination} is a file, not a folder", EXIT_USAGE)
    prefix = src.dir_prefix
    tasks = []
    for obj in store.iter_objects(src.bucket, prefix=prefix, logical_sizes=True):
        rel = obj.key[len(prefix) :]
        if not rel or rel.endswith("/") or not filters.included(rel):
            continue  # folder markers have no bytes to write
        try:
            target = safe_local_join(root, rel)
        except ValueError as exc:
            app.console.error(f"skipping: s3://{obj.bucket}/{obj.key}: {exc}")
            continue
        tasks.append(download_task(app, obj, target))
    return tasks


def copy_task(app: App, obj: ObjectSummary, dest: S3Url, options: dict[str, Any]) -> Task:
    store = app.store
    opts = {k: v for k, v in options.items() if v is not None}

    def run(progress: Any) -> Any:
        return store.copy(obj.bucket, obj.key, dest.bucket, dest.key, progress=progress, **opts)

    return Task(
        action="copy",
        source=f"s3://{obj.bucket}/{obj.key}",
        dest=str(dest),
        size=obj.size or obj.stored_size,
        run=run,
    )


def copy_tasks(
    app: App,
    src: S3Url,
    dest: S3Url,
    recursive: bool,
    filters: Filters,
    options: dict[str, Any],
) -> list[Task]:
    store = app.store
    if not recursive:
        if not src.key:
            abort(f"{src} names no object (use --recursive for a whole bucket)", EXIT_USAGE)
        if src.key.endswith("/"):
            abort(f"{src} is a prefix; use --recursive", EXIT_USAGE)
        if not filters.included(src.basename):
            return []
        obj = _head_or_hint(app, src)
        return [copy_task(app, obj, into(dest, src.basename), options)]
    prefix = src.dir_prefix
    return [
        copy_task(app, obj, dest.child(dest.dir_prefix + obj.key[len(prefix) :]), options)
        for obj in store.iter_objects(src.bucket, prefix=prefix, logical_sizes=True)
        if obj.key[len(prefix) :] and filters.included(obj.key[len(prefix) :])
    ]


COMMANDS = [cp]
