"""``deltaglider stats``: objects, logical and stored bytes and the savings of a bucket or a
key prefix in it, per deltaspace, from one listing (and HEADs of deltas in the accurate modes,
whose results are cached in the bucket)."""

from __future__ import annotations

from typing import Any

import click

from ..stats import BucketStats, DeltaspaceStats, Mode, bucket_stats
from ._app import EXIT_USAGE, App, DGCommand, abort, common_options, pass_app
from ._console import Console, human_size, percent
from ._paths import parse_s3

__all__ = ["COMMANDS", "stats"]


def _bytes(value: int) -> str:
    return f"{human_size(value)} ({value:,} bytes)" if abs(value) >= 1024 else human_size(value)


def _signed_size(value: int) -> str:
    return ("-" if value < 0 else "") + _bytes(abs(value))


def _percent(stats: BucketStats | DeltaspaceStats) -> str:
    # A small loss is shown as one ("-0.04%"), never as "-0.0%".
    return percent(stats.savings) if stats.logical_bytes else "-"


def _space_name(prefix: str) -> str:
    return f"{prefix}/" if prefix else "(bucket root)"


_HOW = {
    "quick": "each delta counted at its reference's size; --sampled or --detailed for more",
    "sampled": "deltas sampled per deltaspace; --detailed for exact numbers",
    "detailed": "some deltas have no readable original size",
}

#: The label column of the report: the original DeltaGlider's ("Total Objects:        11").
_W = 22


def _cache_line(stats: BucketStats, refreshed: bool) -> str:
    cache = stats.cache
    if cache.status == "unused":
        if refreshed:
            return "refreshed (quick mode caches nothing: every run lists afresh)"
        return "not used (quick mode makes no HEADs)"
    if cache.status == "disabled":
        return "disabled"
    text = {"refresh": "refreshed (not read)"}.get(cache.status, cache.status)
    if cache.status == "partial":
        text += f" ({cache.reused} deltaspace(s) reused, {cache.computed} computed)"
    elif cache.status == "hit":
        text += f" (computed {stats.computed_at:%Y-%m-%d %H:%M:%S} UTC)"
    if cache.written:
        text += ", written"
    return text


def _report(console: Console, stats: BucketStats, top: int, refreshed: bool) -> None:
    """The original DeltaGlider's report (its labels, in its order), with ours added:
    references, the accuracy of the numbers, the cache, and the deltaspaces."""
    line = console.line
    where = f", prefix {stats.prefix}" if stats.prefix else ""
    line(f"Bucket Statistics: {stats.bucket}{where}")
    line("=" * 60)
    line(f"{'Total Objects:':<{_W}}{stats.objects:,}")
    line(f"{'  Delta Objects:':<{_W}}{stats.deltas:,}")
    line(f"{'  Direct Objects:':<{_W}}{stats.direct:,}")
    orphans = f" ({stats.orphans} orphan)" if stats.orphans else ""
    line(f"{'  References:':<{_W}}{stats.references:,}{orphans}")
    line("")
    line(f"{'Original Size:':<{_W}}{_bytes(stats.logical_bytes)}")
    line(f"{'Compressed Size:':<{_W}}{_bytes(stats.stored_bytes)}")
    line(f"{'Space Saved:':<{_W}}{_signed_size(stats.saved_bytes)}")
    line(f"{'Compression Ratio:':<{_W}}{_percent(stats)}")
    if stats.exact:
        accuracy = f"exact ({stats.mode})"
    else:
        accuracy = f"estimated ({stats.mode}: {_HOW[stats.mode]})"
    line(f"{'Numbers:':<{_W}}{accuracy}")
    line(f"{'Cache:':<{_W}}{_cache_line(stats, refreshed)}")
    if stats.internal_objects:
        line(
            f"{'Internal:':<{_W}}{stats.internal_objects:,} object(s) under .deltaglider/, "
            f"{human_size(stats.internal_bytes)} (not counted)"
        )
    spaces = stats.deltaspaces
    if not spaces:
        return
    shown = spaces if top == 0 else spaces[:top]
    width = max(len("Deltaspace"), *(len(_space_name(s.prefix)) for s in shown))
    line("")
    line(f"{'Deltaspace':<{width}}  {'Objects':>8}  {'Logical':>10}  {'Stored':>10}  {'Saved':>7}")
    for s in shown:
        mark = "" if s.exact else " ~"
        line(
            f"{_space_name(s.prefix):<{width}}  {s.objects:>8,}  {human_size(s.logical_bytes):>10}"
            f"  {human_size(s.stored_bytes):>10}  {_percent(s):>7}{mark}"
        )
    if len(shown) < len(spaces):
        line(f"... and {len(spaces) - len(shown)} more deltaspace(s) (--top 0 shows all)")
    if not all(s.exact for s in shown):
        line("~ estimated")


def _target(path: str) -> tuple[str, str, str]:
    """The bucket, the key prefix (as given, as S3 takes it) and the URL to show."""
    url = parse_s3(path if path.startswith("s3://") else f"s3://{path}", param="BUCKET[/PREFIX]")
    return url.bucket, url.key, str(url)


@click.command(cls=DGCommand)
@click.argument("path", metavar="BUCKET[/PREFIX]")
@click.option("--sampled", is_flag=True, help="HEAD a few deltas per deltaspace (estimate).")
@click.option("--detailed", is_flag=True, help="HEAD every delta: exact numbers.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Recompute (not read the cached result) and rewrite it. Quick mode, which caches "
    "nothing, is computed afresh every time.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cached result.")
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    metavar="N",
    help="Deltaspaces shown, largest first (0: all). JSON always has all.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@common_options
@pass_app
def stats(
    app: App,
    path: str,
    sampled: bool,
    detailed: bool,
    refresh: bool,
    no_cache: bool,
    top: int,
    as_json: bool,
) -> None:
    """Objects, logical and stored bytes and savings of a bucket or a prefix, per deltaspace.

    BUCKET, BUCKET/PREFIX or s3://BUCKET/PREFIX. The prefix is taken as S3 takes it (as by
    `aws s3 ls --recursive`): s3://b/rel/ is a folder, s3://b/rel also covers rel-old/, and
    s3://b/rel/app-1 the app-1* releases of rel/ (with the reference they need).

    The default (quick) mode lists and makes no other request: a delta counts as its
    reference's size. --sampled reads a few deltas' sizes per deltaspace, --detailed all of
    them (exact). Their results are cached in the bucket under .deltaglider/, valid while the
    listing is unchanged; a changed deltaspace is recomputed alone.
    """
    app.use_json(as_json)
    if sampled and detailed:
        abort("--sampled and --detailed cannot be used together", EXIT_USAGE)
    if refresh and no_cache:
        abort("--refresh and --no-cache cannot be used together", EXIT_USAGE)
    bucket, prefix, _shown = _target(path)
    mode: Mode = "detailed" if detailed else "sampled" if sampled else "quick"
    console = app.console
    # On a terminal: the count of objects listed, then the HEADs left (files remaining).
    with console.progress(verb="stats") as progress:
        result = bucket_stats(
            app.store,
            bucket,
            prefix,
            mode=mode,
            cache=not no_cache,
            refresh=refresh,
            progress=progress,
        )
    if not app.settings.quiet:
        for warning in result.warnings:
            console.error(f"deltaglider: warning: {warning}")
    # One document: the original DeltaGlider's fields, then ours (BucketStats.to_dict).
    document: dict[str, Any] = result.to_dict()
    if refresh and result.cache.status == "unused":
        # Quick mode caches nothing: it is computed afresh, as --refresh asks, every time.
        document["cache"]["status"] = "refresh"
    console.record(document)
    _report(console, result, top, refreshed=refresh)


COMMANDS = [stats]
