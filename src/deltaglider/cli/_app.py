"""The application object every command gets (``ctx.obj``), the options every command
accepts, and the one way out on error (:func:`abort`)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import unquote, urlparse

import click

from ..errors import ConfigError, DeltaGliderError
from ._cancel import Cancellation
from ._console import Console
from ._metrics import Metrics, metrics_from_env
from ._paths import final_name, is_s3

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import DeltaStore
    from ..storage.base import Storage

__all__ = [
    "App",
    "CommandError",
    "DGCommand",
    "DGGroup",
    "Settings",
    "abort",
    "common_options",
    "pass_app",
]

log = logging.getLogger("deltaglider")

#: Exit codes, as ``aws s3`` uses them: 1 when something failed, 2 for usage errors.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    """The global options. Given on the group or on the command (the command's win)."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    no_verify_ssl: bool = False
    debug: bool = False
    quiet: bool = False
    no_progress: bool = False
    max_workers: int | None = None
    cli_read_timeout: float | None = None
    cli_connect_timeout: float | None = None


class CommandError(click.ClickException):
    """An error that ends the command: one line on stderr and the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc,unused-ignore]  # a ClassVar in click < 8.2

    def show(self, file: Any = None) -> None:
        click.echo(f"deltaglider: error: {self.format_message()}", err=True, file=file)


def abort(message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    """Ends the command with one clear line on stderr."""
    raise CommandError(message, exit_code)


_OS_ERRORS: tuple[tuple[type[OSError], str], ...] = (
    (PermissionError, "permission denied"),
    (FileNotFoundError, "no such file or directory"),
    (IsADirectoryError, "is a directory"),
)


def describe_error(exc: BaseException, *, shown: Iterable[str | None] = ()) -> str:
    """One line for an exception a user can cause.

    ``shown`` are the names (URLs, local paths) the line already gives: they are not repeated
    (the engine's errors start with the object's URL, and so does a failed transfer's line).
    A file named is the one the user asked for, not our partial download beside it.
    """
    names = [n for n in shown if n]
    if isinstance(exc, OSError) and not isinstance(exc, DeltaGliderError):
        kind = next((text for cls, text in _OS_ERRORS if isinstance(exc, cls)), None)
        if kind is None and exc.strerror:
            kind = exc.strerror.lower()
        if kind is not None:
            if exc.filename is None:
                return kind
            path = final_name(os.fsdecode(exc.filename))
            if any(not is_s3(n) and os.path.abspath(n) == os.path.abspath(path) for n in names):
                return kind
            return f"{kind}: {path}"
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    text = text.splitlines()[0]
    for name in names:
        # The URL, or the key alone (as a storage error may start).
        key = name[len("s3://") :].partition("/")[2] if is_s3(name) else ""
        for given in (name, key):
            if given and text.startswith(given + ": "):
                return text[len(given) + 2 :]
    return text


class App:
    """Settings, the console, and the store built from them on first use; the command's
    cancellation (Ctrl-C) and metrics (``DG_METRICS``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._console: Console | None = None
        self._config: Config | None = None
        self._storage: Storage | None = None
        self._store: DeltaStore | None = None
        self._metrics: Metrics | None = None
        self.json_output = False
        #: Whether a local store's root may be created: only ``mb`` does that; for the other
        #: commands a missing root is a mistyped --endpoint-url, not a store to make.
        self.create_store = False
        #: The command's name (its metrics' tag) and when it started.
        self.command = ""
        self._started = time.monotonic()
        self.cancel = Cancellation()

    # --- settings and output ---------------------------------------------------------------

    def use_json(self, enabled: bool) -> None:
        """Results as JSON on stdout (the command's ``--json``)."""
        self.json_output = enabled
        self._console = None

    @property
    def console(self) -> Console:
        if self._console is None:
            s = self.settings
            self._console = Console(
                quiet=s.quiet, progress=not s.no_progress, json_lines=self.json_output
            )
        return self._console

    @property
    def config(self) -> Config:
        if self._config is None:
            from ..config import Config

            self._config = Config.from_env(max_workers=self.settings.max_workers)
        return self._config

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            from .._executor import connections_for
            from ..storage import open_storage

            s = self.settings
            config = self.config
            options: dict[str, Any] = {
                "profile": s.profile,
                "region": s.region,
                "verify": not s.no_verify_ssl,
                "max_attempts": config.max_attempts,
                "multipart_threshold": config.multipart_threshold,
                "multipart_chunksize": config.multipart_chunksize,
                "max_pool_connections": connections_for(config.max_workers),
            }
            # As the AWS CLI: seconds, 0 waits forever.
            for option, value in (
                ("read_timeout", s.cli_read_timeout),
                ("connect_timeout", s.cli_connect_timeout),
            ):
                if value is not None:
                    options[option] = value or None
            if s.no_verify_ssl:
                # Asked for: not worth a warning on every request.
                import urllib3

                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            root = _local_root(s.endpoint_url)
            if root is not None and not self.create_store and not root.exists():
                abort(
                    f"the local store {root} does not exist (check --endpoint-url; "
                    "deltaglider mb creates it)"
                )
            self._storage = open_storage(s.endpoint_url, **options)
            # Once Ctrl-C is pressed, no more data requests (see _cancel).
            self.cancel.guard(getattr(self._storage, "client", None))
        return self._storage

    @property
    def store(self) -> DeltaStore:
        if self._store is None:
            from ..engine import DeltaStore

            self._store = DeltaStore(self.storage, config=self.config)
        return self._store

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            self._metrics = metrics_from_env(self._cloudwatch)
        return self._metrics

    def _cloudwatch(self) -> Any:
        """A CloudWatch client with the command's credentials and region: one attempt, short
        timeouts (metrics never hold a command up for long)."""
        import boto3
        from botocore.config import Config as BotoConfig

        s = self.settings
        session = getattr(self._storage, "session", None) or boto3.Session(
            profile_name=s.profile or None
        )
        return session.client(
            "cloudwatch",
            region_name=s.region or session.region_name or "us-east-1",
            verify=not s.no_verify_ssl,
            config=BotoConfig(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
        )

    def close(self) -> None:
        if self._metrics is not None or os.environ.get("DG_METRICS"):
            metrics = self.metrics
            if self.command:
                elapsed = (time.monotonic() - self._started) * 1000
                metrics.timing("deltaglider.command.duration", elapsed, {"command": self.command})
            if not self.cancel.requested:  # interrupted: end now, send nothing
                metrics.flush()
        if self._store is not None:
            self._store.close()
        elif self._storage is not None:
            self._storage.close()
        self._store = None
        self._storage = None


def _local_root(endpoint_url: str | None) -> Path | None:
    """The folder a ``file:///path`` endpoint names (None for S3, or a file URL that
    open_storage refuses with its own message)."""
    if not endpoint_url or not endpoint_url.startswith("file:"):
        return None
    parsed = urlparse(endpoint_url)
    if parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path)).expanduser()


pass_app = click.make_pass_decorator(App)

F = TypeVar("F", bound=Callable[..., Any])


class _Ratio(click.FloatRange):
    """A fraction in (0, 1]; NaN is not one (FloatRange lets it through)."""

    name = "ratio"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number in (0, 1]", param, ctx)
        return number


RATIO = _Ratio(0, 1, min_open=True)


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        source = ctx.get_parameter_source(param.name or name)
        if value is None or source is click.core.ParameterSource.DEFAULT:
            return
        app = ctx.find_object(App)
        if app is not None:
            setattr(app.settings, name, value)

    return callback


def _global_option_specs(on_group: bool) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    def env(*names: str) -> dict[str, Any]:
        # One name as a string: click then names it plainly in a bad value's error.
        envvar: str | list[str] = names[0] if len(names) == 1 else list(names)
        return {"envvar": envvar, "show_envvar": True} if on_group else {}

    return [
        (
            ("--endpoint-url",),
            {
                "metavar": "URL",
                "help": "The S3 service (default: AWS), or file:///path for a local directory.",
                **env("DG_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            },
        ),
        (("--profile",), {"metavar": "NAME", "help": "AWS profile.", **env("AWS_PROFILE")}),
        (
            ("--region",),
            {"metavar": "NAME", "help": "AWS region.", **env("AWS_REGION", "AWS_DEFAULT_REGION")},
        ),
        (
            ("--no-verify-ssl",),
            {
                "is_flag": True,
                "default": None,
                "help": "Do not verify TLS certificates.",
                **env("DG_NO_VERIFY_SSL"),
            },
        ),
        (
            ("--debug",),
            {
                "is_flag": True,
                "default": None,
                "help": "Debug logging; tracebacks on errors.",
                **env("DG_DEBUG"),
            },
        ),
        (
            ("--quiet", "-q"),
            {"is_flag": True, "default": None, "help": "Print errors only.", **env("DG_QUIET")},
        ),
        (
            ("--no-progress",),
            {
                "is_flag": True,
                "default": None,
                "help": "No progress line.",
                **env("DG_NO_PROGRESS"),
            },
        ),
        (
            ("--max-workers",),
            {
                "type": click.IntRange(1, 256),
                "metavar": "N",
                "help": "Parallel transfers (default 8).",
                **env("DG_MAX_WORKERS"),
            },
        ),
        (
            ("--cli-read-timeout",),
            {
                "type": click.FloatRange(min=0),
                "metavar": "SECONDS",
                "help": "Socket read timeout (default 60; 0 waits forever).",
            },
        ),
        (
            ("--cli-connect-timeout",),
            {
                "type": click.FloatRange(min=0),
                "metavar": "SECONDS",
                "help": "Socket connect timeout (default 10; 0 waits forever).",
            },
        ),
    ]


def common_options(fn: F) -> F:
    """The global options, accepted after the command too (as ``aws s3`` accepts them)."""
    for decls, spec in reversed(_global_option_specs(on_group=False)):
        name = decls[0].lstrip("-").replace("-", "_")
        fn = click.option(*decls, expose_value=False, callback=_set(name), **spec)(fn)
    return fn


def group_options(fn: F) -> F:
    for decls, spec in reversed(_global_option_specs(on_group=True)):
        fn = click.option(*decls, **spec)(fn)
    return fn


def settings_from(values: dict[str, Any]) -> Settings:
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known and v is not None})


def configure_logging(debug: bool) -> None:
    # INFO by default, as the original DeltaGlider documents it (what deltaglider logs at INFO
    # is rare: work it did that was not asked for, a race it recovered from; and metrics with
    # DG_METRICS=logging).
    level_name = os.environ.get("DG_LOG_LEVEL", "").strip().upper() or "INFO"
    level = logging.DEBUG if debug else getattr(logging, level_name, None)
    if not isinstance(level, int):
        raise ConfigError(f"DG_LOG_LEVEL={level_name!r} is not a log level")
    logger = logging.getLogger("deltaglider")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("deltaglider: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to the ``sys.stderr`` of the moment (a command run in-process, by click's
    CliRunner, has its own), not the one there was when the first command ran."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class DGCommand(click.Command):
    """Keeps the arguments it parsed (the order of --include/--exclude) and turns the
    errors a user can cause into one line and an exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dg_raw_args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        app = ctx.find_object(App)
        try:
            if app is not None:
                configure_logging(app.settings.debug)
                app.command = ctx.info_name or ""
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if app is not None:
                app.console.clear_status()
                if app.cancel.requested:
                    app.cancel.clean_up()  # what work abandoned mid-way would leave
            click.echo("deltaglider: cancelled", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            raise  # the reader went away: main() ends quietly
        except (DeltaGliderError, OSError) as exc:
            if app is not None and app.settings.debug:
                raise
            code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
            raise CommandError(describe_error(exc), code) from exc
        finally:
            # Interrupted: requests already sent are abandoned, not waited for.
            if app is not None and not app.cancel.requested:
                app.close()


class DGGroup(click.Group):
    command_class = DGCommand
