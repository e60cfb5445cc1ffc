"""``--include``/``--exclude`` as ``aws s3`` applies them.

Patterns are matched (``fnmatch``: ``*`` also crosses ``/``) against a file's path relative
to the source's root, in the order given; the last pattern that matches decides, and a path
no pattern matches is included.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import click

__all__ = ["Filters", "filter_options", "filters_from"]


class Filters:
    def __init__(self, rules: Sequence[tuple[str, str]] = ()) -> None:
        for kind, _ in rules:
            if kind not in ("include", "exclude"):
                raise ValueError(f"unknown filter {kind!r}")
        self.rules = list(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def included(self, rel: str) -> bool:
        verdict = True
        for kind, pattern in self.rules:
            if fnmatch.fnmatchcase(rel, pattern):
                verdict = kind == "include"
        return verdict


def _collect(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    ctx.meta.setdefault("dg_filter_values", {})[param.name] = list(value)


def filters_from(ctx: click.Context) -> Filters:
    """The filters of this invocation, in command-line order.

    Click hands each option its values apart; the order between ``--include`` and
    ``--exclude`` comes from the arguments the command parsed (kept by the command class).
    """
    given = ctx.meta.get("dg_filter_values", {})
    includes = list(given.get("include") or ())
    excludes = list(given.get("exclude") or ())
    if not includes and not excludes:
        return Filters()
    rules: list[tuple[str, str]] = []
    args = list(ctx.meta.get("dg_raw_args") or [])
    i = 0
    while i < len(args) and args[i] != "--":
        arg = args[i]
        for kind in ("include", "exclude"):
            flag = f"--{kind}"
            if arg == flag and i + 1 < len(args):
                rules.append((kind, args[i + 1]))
                i += 1
            elif arg.startswith(flag + "="):
                rules.append((kind, arg[len(flag) + 1 :]))
        i += 1
    found_in = [p for k, p in rules if k == "include"]
    found_ex = [p for k, p in rules if k == "exclude"]
    if found_in != includes or found_ex != excludes:
        # Not what click parsed (an option value that looks like a flag): its order then.
        rules = [("exclude", p) for p in excludes] + [("include", p) for p in includes]
    return Filters(rules)


def filter_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--exclude",
        multiple=True,
        metavar="PATTERN",
        callback=_collect,
        expose_value=False,
        help="Leave out paths that match (repeatable; applied in order, last match wins).",
    )(fn)
    fn = click.option(
        "--include",
        multiple=True,
        metavar="PATTERN",
        callback=_collect,
        expose_value=False,
        help="Take paths that match even if an earlier --exclude left them out.",
    )(fn)
    return fn
