"""``deltaglider analyze``: what deltaglider would save on a bucket of plain objects,
estimated from real deltas of a sample, without writing anything.

Sizes are shown in binary units, as ``ls -h`` and ``stats`` show them (``4.4 TiB``,
``220.7 GiB``); sizes given (``--max-sample-bytes``) may be decimal (``500MB``) or binary
(``2GiB``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import click

from ..analyze import DEFAULT_MAX_SAMPLE_BYTES, DEFAULT_SAMPLE, Analysis, SpaceEstimate
from ..analyze import analyze as run_analysis
from ._app import EXIT_FAILED, RATIO, App, DGCommand, common_options, describe_error, pass_app
from ._console import human_size, percent
from ._paths import parse_s3

__all__ = ["COMMANDS", "analyze", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``1000``, ``500MB``, ``1.5G``, ``2GiB``: decimal unless the unit says ``i``."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 500MB, 2GiB, 1000000)")
    number, prefix, binary = match.groups()
    power = "kmgtpe".find(prefix.lower()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def _size_option(ctx: click.Context, param: click.Parameter, value: Any) -> int:
    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _name(space: SpaceEstimate) -> str:
    return space.deltaspace + "/" if space.deltaspace else "(bucket root)"


def _table(spaces: tuple[SpaceEstimate, ...]) -> list[str]:
    header = ("DELTASPACE", "OBJECTS", "SIZE", "ESTIMATED", "SAVINGS", "SAMPLED")
    rows = [
        (
            _name(s),
            str(s.objects),
            human_size(s.size),
            human_size(s.estimated_stored),
            percent(s.savings),
            str(s.sampled) + ("*" if s.skipped else ""),
        )
        for s in spaces
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        return f"{first}  {rest}"

    return [line(header), *(line(r) for r in rows)]


def _report(result: Analysis) -> list[str]:
    lines = _table(result.spaces) if result.spaces else []
    if lines:
        lines.append("")
    lines.append(
        f"Potential savings: {percent(result.savings)} "
        f"({human_size(result.size)} -> {human_size(result.estimated_stored)})"
    )
    where = f"s3://{result.bucket}/{result.prefix}"
    if not result.spaces:
        lines.append(f"No plain objects under {where}.")
    else:
        lines.append(
            f"Sampled {result.sampled_objects} object(s) ({human_size(result.sampled_bytes)})"
            f" in {result.sampled_spaces} of {len(result.spaces)} deltaspace(s) of "
            f"{result.objects} object(s). This is an estimate: real deltas of the sample, "
            "extrapolated by size to the rest of each deltaspace."
        )
    skipped = result.unsampled_spaces
    if skipped:
        lines.append(
            f"* {len(skipped)} deltaspace(s) ({human_size(sum(s.size for s in skipped))}) "
            "not sampled within --max-sample-bytes: counted as stored whole."
        )
    if result.existing_objects:
        lines.append(
            f"Already deltaglider: {result.existing_objects} object(s) "
            f"({human_size(result.existing_bytes)} stored), not in the estimate."
        )
    if result.errors:
        lines.append(f"Skipped {len(result.errors)} unreadable object(s).")
    return lines


@click.command(cls=DGCommand)
@click.argument("path", metavar="S3_URL")
@click.option(
    "--sample",
    type=click.IntRange(1, 10000),
    default=DEFAULT_SAMPLE,
    show_default=True,
    metavar="N",
    help="Delta candidates downloaded per deltaspace, besides its would-be reference.",
)
@click.option(
    "--max-sample-bytes",
    # A string (a unit may follow), not the int click would infer from the default.
    type=str,
    default=str(DEFAULT_MAX_SAMPLE_BYTES),
    callback=_size_option,
    metavar="SIZE",
    help="Download at most this much in all, references included (default 1GB; e.g. 500MB, 2GiB).",
)
@click.option(
    "--max-ratio",
    type=RATIO,
    metavar="RATIO",
    help="Count a delta only if it is at most this fraction of the file, as cp would "
    "store it (default 0.5, DG_MAX_RATIO).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@common_options
@pass_app
def analyze(
    app: App,
    path: str,
    sample: int,
    max_sample_bytes: int,
    max_ratio: float | None,
    as_json: bool,
) -> None:
    """Estimate what deltaglider would save on the plain objects under S3_URL.

    Writes nothing anywhere (list and read permissions are enough). Objects are grouped by
    folder (deltaspace); in each, the would-be reference and up to N other delta candidates
    are downloaded and their real deltas computed locally, and the measured ratio is
    extrapolated to the rest of the folder. Objects deltaglider already stored are reported
    apart, not estimated.
    """
    app.use_json(as_json)
    url = parse_s3(path, param="S3_URL")
    config = app.config
    if max_ratio is not None:
        config = dataclasses.replace(config, max_ratio=max_ratio)
    console = app.console

    def warn(key: str, exc: BaseException) -> None:
        where = f"s3://{url.bucket}/{key}"
        console.error(
            f"deltaglider: warning: skipping {where}: {describe_error(exc, shown=[where])}"
        )

    with console.progress(verb="analyze") as progress:
        result = run_analysis(
            app.storage,
            url.bucket,
            url.dir_prefix,
            config=config,
            sample=sample,
            max_sample_bytes=max_sample_bytes,
            progress=progress,
            on_error=warn,
        )
    for text in _report(result):
        console.line(text)
    console.record(result.to_dict())
    if result.errors:
        # As cp after a failed file: the result stands, each failure was named on stderr.
        raise click.exceptions.Exit(EXIT_FAILED)


COMMANDS = [analyze]
