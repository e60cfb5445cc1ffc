"""``deltaglider migrate SRC DST``: bring an existing bucket or prefix into deltaglider storage.

The source may hold plain objects (written by any tool) or objects deltaglider already stored;
each is read as its logical bytes and stored at the destination as ``cp`` would store it
(a delta where its extension says so and the delta is small enough). The source is left as it
is.

Where things go: with a source prefix, its last folder is kept under the destination
(``migrate s3://old/builds/app/ s3://new/`` writes ``s3://new/app/...``), as the original
DeltaGlider does; ``--no-preserve-prefix`` writes straight into the destination prefix.

Resuming. Every object is written whole or not at all (an S3 PUT is atomic), so a run that
was interrupted, even killed, leaves only complete objects. A new run skips an object whose
destination is already there *and verified*: written by deltaglider (it carries a sha256),
the same logical size, and the same sha256 as the source where the source's is known (an
object deltaglider stored), else written after the source was last modified. Anything else
is migrated (again).

New deltaspaces get as their reference the middle release in version order (as ``cp -r``
does): those files are stored first, the rest after them, in parallel.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from ..engine import ObjectSummary
from ..errors import BucketNotFound
from . import _ec2
from ._app import EXIT_USAGE, RATIO, App, DGCommand, abort, common_options, pass_app
from ._console import human_size
from ._filters import Filters, filter_options, filters_from
from ._paths import S3Url, parse_s3
from ._transfer import Task, run_tasks
from ._write import require_s3_writes, write_options, write_options_from
from .cp import finish, put_options

__all__ = ["COMMANDS", "Plan", "destination_prefix", "migrate", "plan_migration"]


def destination_prefix(src: S3Url, dst: S3Url, preserve: bool) -> str:
    """The prefix objects are written under: ``dst``'s, plus the source prefix's last folder
    when ``preserve`` (and the source has a prefix)."""
    base = dst.dir_prefix
    if not preserve or not src.dir_prefix:
        return base
    return base + src.dir_prefix.rstrip("/").rsplit("/", 1)[-1] + "/"


@dataclass
class Plan:
    """What a run will do: ``todo`` pairs (source object, destination key), and what it
    skips."""

    src: S3Url
    dest_bucket: str
    dest_prefix: str
    todo: list[tuple[ObjectSummary, str]] = field(default_factory=list)
    verified: int = 0
    verified_bytes: int = 0
    #: Already at the destination but not verified (different, or not deltaglider's): redone.
    replaced: int = 0
    filtered: int = 0

    @property
    def todo_bytes(self) -> int:
        return sum(_size(obj) for obj, _ in self.todo)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": {
                "source": str(self.src.child(self.src.dir_prefix)),
                "destination": f"s3://{self.dest_bucket}/{self.dest_prefix}",
                "to_migrate": len(self.todo),
                "to_migrate_bytes": self.todo_bytes,
                "already_migrated": self.verified,
                "already_migrated_bytes": self.verified_bytes,
                "to_replace": self.replaced,
                "excluded": self.filtered,
            }
        }


def _size(obj: ObjectSummary) -> int:
    return obj.size if obj.size is not None else obj.stored_size


def _sha_of(app: App, bucket: str, objects: list[ObjectSummary]) -> dict[str, str | None]:
    """The sha256 deltaglider recorded for each object (None: a foreign object), by logical
    key; a delta's comes with the listing, the others take a HEAD (made concurrently)."""
    out: dict[str, str | None] = {o.key: o.sha256 for o in objects if o.sha256}
    missing = [o for o in objects if o.key not in out]
    for obj in app.store.complete(bucket, missing) if missing else []:
        out[obj.key] = obj.sha256 if obj.kind != "foreign" else None
    return out


def plan_migration(
    app: App,
    src: S3Url,
    dest_bucket: str,
    dest_prefix: str,
    filters: Filters,
    *,
    dest_exists: bool = True,
) -> Plan:
    """Lists both sides (the destination only if its bucket exists) and decides what to
    migrate (see the module's notes on resuming)."""
    store = app.store
    plan = Plan(src, dest_bucket, dest_prefix)
    prefix = src.dir_prefix
    sources: dict[str, ObjectSummary] = {}
    for obj in store.iter_objects(src.bucket, prefix=prefix, logical_sizes=True):
        rel = obj.key[len(prefix) :]
        if not rel or rel.endswith("/"):
            continue
        if not filters.included(rel):
            plan.filtered += 1
            continue
        sources[rel] = obj
    there: dict[str, ObjectSummary] = {}
    listed = store.iter_objects(dest_bucket, prefix=dest_prefix, logical_sizes=True)
    for obj in listed if dest_exists else ():
        rel = obj.key[len(dest_prefix) :]
        if rel in sources:
            there[rel] = obj
    # Candidates for skipping: same logical size. Their sha256s settle it.
    same_size = [rel for rel, d in there.items() if _size(d) == _size(sources[rel])]
    dest_sha = _sha_of(app, dest_bucket, [there[r] for r in same_size])
    src_sha = _sha_of(app, src.bucket, [sources[r] for r in same_size])
    for rel, obj in sources.items():
        have = there.get(rel)
        if have is not None and _verified(obj, have, src_sha, dest_sha):
            plan.verified += 1
            plan.verified_bytes += _size(obj)
            continue
        if have is not None:
            plan.replaced += 1
        plan.todo.append((obj, dest_prefix + rel))
    return plan


def _verified(
    src: ObjectSummary,
    dest: ObjectSummary,
    src_sha: Mapping[str, str | None],
    dest_sha: Mapping[str, str | None],
) -> bool:
    if _size(src) != _size(dest):
        return False
    theirs = dest_sha.get(dest.key)
    if not theirs:
        return False  # not stored by deltaglider: migrate it
    ours = src_sha.get(src.key)
    if ours:
        return ours == theirs
    if src.last_modified is None or dest.last_modified is None:
        return False
    return dest.last_modified >= src.last_modified


def _region_warnings(app: App, buckets: list[str]) -> list[str]:
    if _ec2.detection_disabled():
        return []
    client = getattr(app.storage, "client", None)
    if client is None:  # the local store
        return []
    return _ec2.region_warnings(buckets, lambda b: _ec2.bucket_region(client, b))


def _confirm(question: str) -> bool:
    """Asks on stderr, reads stdin (default no). Nothing to read (stdin at its end: no
    terminal, a script without ``--yes``) is a usage error, not an interruption: click's own
    confirm cannot tell the two apart."""
    while True:
        click.echo(f"{question} [y/N]: ", nl=False, err=True)
        answer = sys.stdin.readline()
        if not answer:
            click.echo("", err=True)
            abort("no terminal to confirm: pass --yes", EXIT_USAGE)
        answer = answer.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        click.echo("Error: answer y or n", err=True)


@click.command(cls=DGCommand)
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@filter_options
@click.option("--no-delta", is_flag=True, help="Store every file whole (no deltas).")
@click.option(
    "--max-ratio",
    type=RATIO,
    metavar="RATIO",
    help="Store a file whole if its delta is larger than this fraction of it (default 0.5).",
)
@click.option(
    "--no-preserve-prefix",
    is_flag=True,
    help="Write straight into DST instead of DST/<last folder of SRC>/.",
)
@write_options
@click.option("--dryrun", "--dry-run", is_flag=True, help="Show what would be done; do nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Results as JSON lines on stdout.")
@common_options
@pass_app
@click.pass_context
def migrate(
    ctx: click.Context,
    app: App,
    source: str,
    destination: str,
    no_delta: bool,
    max_ratio: float | None,
    no_preserve_prefix: bool,
    dryrun: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Copy a bucket or prefix (plain objects, or objects deltaglider stored) into
    deltaglider storage at DST. The source is not changed.

    Run it again to resume: objects already at DST and verified (same size and sha256, or
    written after the source was modified) are skipped.

    \b
      deltaglider migrate s3://old-builds/app/ s3://releases/       # -> s3://releases/app/
      deltaglider migrate s3://old-builds/ s3://releases/ --yes --exclude "*.log"
    """
    app.use_json(as_json)
    for name, value in (("SRC", source), ("DST", destination)):
        if not value.startswith("s3://"):
            abort(f"{name} must be an s3:// URL (migrate copies between buckets)", EXIT_USAGE)
    src = parse_s3(source, param="SRC")
    dst = parse_s3(destination, param="DST")
    dest_prefix = destination_prefix(src, dst, not no_preserve_prefix)
    if src.bucket == dst.bucket and (
        dest_prefix.startswith(src.dir_prefix) or src.dir_prefix.startswith(dest_prefix)
    ):
        abort(
            f"s3://{dst.bucket}/{dest_prefix} and {src.child(src.dir_prefix)} overlap: "
            "migrate into another bucket or a prefix outside the source",
            EXIT_USAGE,
        )
    write = write_options_from(ctx, no_delta=no_delta)
    require_s3_writes(app, write)
    console = app.console
    for text in _region_warnings(app, [src.bucket, dst.bucket]):
        console.error(text)
    create = f"deltaglider mb s3://{dst.bucket}"
    dest_exists = True
    try:
        app.storage.head_bucket(dst.bucket)
    except BucketNotFound:
        if not dryrun:
            abort(f"bucket {dst.bucket} does not exist (create it with: {create})")
        dest_exists = False  # a preview needs no bucket yet
    # A missing source bucket is the storage's BucketNotFound: "bucket X does not exist", as
    # every command says it.
    plan = plan_migration(
        app, src, dst.bucket, dest_prefix, filters_from(ctx), dest_exists=dest_exists
    )
    where = f"{src.child(src.dir_prefix)} to s3://{dst.bucket}/{dest_prefix}"
    console.line(f"Migrate {where}")
    parts = [f"{len(plan.todo):,} object(s), {human_size(plan.todo_bytes)} to migrate"]
    if plan.verified:
        parts.append(f"{plan.verified:,} already migrated and verified (skipped)")
    if plan.replaced:
        parts.append(f"{plan.replaced:,} at the destination but different (replaced)")
    if plan.filtered:
        parts.append(f"{plan.filtered:,} excluded")
    console.line("  " + "; ".join(parts))
    if not dest_exists:
        console.line(f"  bucket {dst.bucket} does not exist yet: {create} before migrating")
    record = plan.as_dict()
    record["plan"]["destination_exists"] = dest_exists
    console.record(record)
    if not plan.todo:
        console.line("Nothing to do.")
        return
    if not dryrun and not yes and not _confirm("Proceed?"):
        console.error("deltaglider: migrate cancelled: nothing was copied")
        return
    options = put_options(no_delta, max_ratio, write=write)
    opts = {k: v for k, v in options.items() if v is not None}
    leaders = set() if dryrun else app.store.batch_leaders(dst.bucket, [k for _, k in plan.todo])
    store = app.store

    def task(obj: ObjectSummary, key: str) -> Task:
        def run(progress: Any) -> Any:
            return store.copy(obj.bucket, obj.key, dst.bucket, key, progress=progress, **opts)

        return Task(
            action="migrate",
            source=f"s3://{obj.bucket}/{obj.key}",
            dest=f"s3://{dst.bucket}/{key}",
            size=_size(obj),
            run=run,
            first=key in leaders,
        )

    outcome = run_tasks(app, [task(o, k) for o, k in plan.todo], dryrun=dryrun, verb="migrate")
    if outcome.failed and not dryrun:
        console.error(
            f"deltaglider: {outcome.failed} object(s) failed; run the same command again to "
            "retry them (what was migrated is kept and skipped)"
        )
    finish(app, outcome, many=True, dryrun=dryrun)


COMMANDS = [migrate]
