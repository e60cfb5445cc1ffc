"""``deltaglider ls``: buckets, or a prefix's objects and ``PRE`` lines, as ``aws s3 ls``
prints them, with the sizes a download would give (not the deltas' stored sizes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from .. import format as fmt
from ..engine import ObjectSummary
from ._app import EXIT_FAILED, App, DGCommand, common_options, pass_app
from ._console import human_size, percent
from ._paths import is_s3, parse_s3

__all__ = ["COMMANDS", "ls"]


def _date(when: datetime | None) -> str:
    """Local time, as ``aws s3 ls`` shows it."""
    if when is None:
        return " " * 19
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


@click.command(cls=DGCommand)
@click.argument("path", required=False, default="s3://", metavar="[S3_URL]")
@click.option("-r", "--recursive", is_flag=True, help="Everything under the prefix.")
@click.option("-h", "--human-readable", is_flag=True, help="Sizes in KiB, MiB, GiB...")
@click.option("--summarize", is_flag=True, help="Totals at the end.")
@click.option(
    "--stored",
    is_flag=True,
    help="Also the bytes each object takes in the store and what that saves.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@common_options
@pass_app
def ls(
    app: App,
    path: str,
    recursive: bool,
    human_readable: bool,
    summarize: bool,
    stored: bool,
    as_json: bool,
) -> None:
    """List buckets, or the objects and prefixes under S3_URL (s3://bucket[/prefix], or
    bucket[/prefix] as aws takes it).

    Sizes are what a download gives: a delta's original size, fetched concurrently (one
    HEAD per delta).
    """
    app.use_json(as_json)
    console = app.console
    if path in ("s3://", "s3:", ""):
        for b in sorted(app.storage.list_buckets(), key=lambda b: b.name):
            console.line(f"{_date(b.created)} {b.name}")
            console.record({"bucket": b.name, "created": _iso(b.created)})
        return
    # As aws: a bare bucket[/prefix] is taken as s3://bucket[/prefix].
    url = parse_s3(path if is_s3(path) else f"s3://{path}", param="S3_URL")
    store = app.store
    size_of = human_size if human_readable else str
    total_objects = total_logical = total_stored = 0
    spaces: set[str] = set()  # deltaspaces of the deltas listed: their references count too
    held: dict[str, int] = {}  # deltaspace -> its reference's size, of the file stored as it
    anything = False
    # As aws: the prefix is taken as given; names are shown after its last "/", or whole
    # keys with --recursive.
    cut = url.key.rfind("/") + 1
    for page in store.iter_pages(
        url.bucket, prefix=url.key, delimiter="" if recursive else "/", logical_sizes=True
    ):
        for prefix in page.prefixes:
            anything = True
            name = prefix[cut:]
            console.line(f"{'PRE':>30} {name}")
            console.record({"prefix": prefix})
        for obj in page.objects:
            anything = True
            size = obj.size if obj.size is not None else obj.stored_size
            cost = obj.stored_size
            space = fmt.deltaspace(obj.physical_key) if obj.is_delta else None
            whole = space is not None and space not in held and is_reference_file(obj)
            if whole:
                # The folder's first file: stored whole, as its reference (and a zero-diff
                # delta), as the upload said; another file of the same bytes is a delta.
                assert space is not None
                held[space] = size
                cost += size
            total_objects += 1
            total_logical += size
            total_stored += cost
            if space is not None:
                spaces.add(space)
            name = obj.key if recursive else obj.key[cut:]
            line = f"{_date(obj.last_modified)} {size_of(size):>10} {name}"
            if stored:
                line = (
                    f"{_date(obj.last_modified)} {size_of(size):>10} "
                    f"{size_of(cost):>10} {_saved(size, cost):>6} {name}"
                )
            console.line(line)
            console.record(_record(obj, size, cost, whole))
    if summarize:
        # The references held by a listed file are counted with it; the others are HEADed.
        references = sum(held.values())
        others = spaces - held.keys()
        if stored and others:
            sizes = app.store.reference_sizes(url.bucket, others)
            unlisted = sum(size for size in sizes.values() if size is not None)
            references += unlisted
            total_stored += unlisted
        console.line("")
        console.line(f"{'Total Objects: ':>15}{total_objects}")
        console.line(f"{'Total Size: ':>15}{size_of(total_logical)}")
        if stored:
            console.line(
                f"{'Stored Size: ':>15}{size_of(total_stored)} (with {len(spaces)} "
                f"reference(s), {size_of(references)})"
            )
            console.line(f"{'Saved: ':>15}{_saved(total_logical, total_stored)}")
        console.record(
            {
                "total_objects": total_objects,
                "total_size": total_logical,
                **({"stored_size": total_stored, "references": len(spaces)} if stored else {}),
            }
        )
    if url.key and not anything:
        # As aws: listing a prefix that matches nothing is exit code 1.
        raise click.exceptions.Exit(EXIT_FAILED)


def _saved(size: int, stored: int) -> str:
    if size <= 0:
        return "-"
    return percent(max(0.0, 1 - stored / size), 0)


def is_reference_file(obj: ObjectSummary) -> bool:
    """Whether a listed delta holds its reference's very bytes (its sha256 is the
    reference's, which the HEAD that gave its logical size also gave: no other request): the
    zero-diff delta the first file of a folder leaves beside the reference it became."""
    return obj.is_delta and obj.sha256 is not None and obj.sha256 == obj.ref_sha256


def _record(obj: ObjectSummary, size: int, cost: int, whole: bool) -> dict[str, Any]:
    """An object's JSON line. ``whole``: stored as its folder's reference (``delta`` false,
    ``stored_size`` the reference and its zero-diff delta, ``stored_as`` the reference), as
    the upload reported it and the SDK reports it (``IsDelta`` false, ``StoredAs``)."""
    return {
        "key": obj.key,
        "size": size,
        "stored_size": cost,
        "last_modified": _iso(obj.last_modified),
        "etag": obj.etag,
        "delta": obj.is_delta and not whole,
        "reference": whole,
        "stored_as": (obj.ref_key or fmt.reference_key(fmt.deltaspace(obj.physical_key)))
        if whole
        else obj.physical_key,
    }


COMMANDS = [ls]
