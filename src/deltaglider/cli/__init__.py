"""The ``deltaglider`` command: a drop-in for ``aws s3 cp/ls/rm/sync/mb/rb`` that stores
versioned artifacts as deltas, plus the original DeltaGlider's ``stats``, ``migrate``,
``verify``, ``purge``, ``put-bucket-acl`` and ``get-bucket-acl``, and ``analyze``.

One click group owns the global options (each also from its environment variable, and also
accepted after the command, as ``aws`` accepts them) and builds the :class:`~._app.App` into
``ctx.obj``; each command lives in a module of its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from .._version import __version__
from ._app import EXIT_FAILED, EXIT_INTERRUPTED, App, DGGroup, describe_error, group_options
from ._app import settings_from as _settings_from
from ._cancel import abandoned, begin

__all__ = ["cli", "main"]


@click.group(cls=DGGroup, context_settings={"help_option_names": ["--help"]})
@group_options
@click.version_option(
    __version__, "--version", prog_name="deltaglider", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Store versioned artifacts in S3 as binary deltas against one reference per folder,
    and get them back byte-exact.

    Commands and options follow `aws s3`; an endpoint URL of file:///path uses a local
    directory instead of S3.
    """
    ctx.obj = App(_settings_from(options))


def _register() -> None:
    from . import admin, analyze, bucket, cp, ls, migrate, rm, stats, sync, verify

    for module in (cp, ls, rm, sync, bucket, stats, migrate, verify, analyze, admin):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def _env_flag(name: str) -> bool:
    """An environment variable read as click reads a flag's (1/true/yes/on...)."""
    try:
        return bool(click.BOOL.convert(os.environ.get(name) or "0", None, None))
    except click.BadParameter:
        return False  # the group reports the bad value itself


def main(argv: list[str] | None = None) -> int:
    """The console entry point: never a traceback for what a user can cause (unless
    ``--debug``), and ``aws``-style exit codes. A command interrupted by Ctrl-C leaves at once,
    without waiting for the requests it abandoned (see ``_cancel``)."""
    begin()
    code = _main(sys.argv[1:] if argv is None else argv)
    if abandoned():
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def _main(args: list[str]) -> int:
    debug = "--debug" in args or _env_flag("DG_DEBUG")
    try:
        rv = cli.main(args=args, prog_name="deltaglider", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("deltaglider: cancelled", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("deltaglider: cancelled", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``deltaglider ls | head``): not an error of ours. Python's
        # own flush at exit must not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"deltaglider: internal error: {describe_error(exc)} "
            "(run with --debug for the details)",
            err=True,
        )
        return EXIT_FAILED
    return rv if isinstance(rv, int) else 0
