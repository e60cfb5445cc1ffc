"""S3's own write options of the commands that store objects (``cp``, ``sync``, ``migrate``),
as ``aws s3 cp`` takes them (AWS CLI 1.x): ``--sse [AES256|aws:kms]`` (given bare: ``AES256``),
``--sse-kms-key-id``, ``--storage-class``, ``--acl``, ``--cache-control``,
``--content-encoding``. They become the engine's
:class:`~deltaglider.storage.base.WriteOptions`, which it applies to every object a write
stores: the delta or direct object, and the folder's reference when the write creates it.

A download writes nothing to S3: it ignores them, as ``aws s3`` does. The local store
(``file://``) has none of them: one usage error says so before anything is read or stored.
One check is ours (aws passes it to S3): a KMS key without ``--sse aws:kms``, which S3 refuses
for every file. An archive storage class (GLACIER, DEEP_ARCHIVE) goes to the deltas and direct
objects; the engine keeps a folder's reference out of it (readable, or no delta of the folder
could be written or rebuilt).
"""

from __future__ import annotations

from typing import Any

import click

from ..engine import ARCHIVE_CLASSES
from ..storage.base import WriteOptions
from ._app import EXIT_USAGE, App, abort

__all__ = [
    "ACLS",
    "ARCHIVES",
    "SSE",
    "STORAGE_CLASSES",
    "require_s3_writes",
    "write_options",
    "write_options_from",
]

#: ``aws s3 cp --sse``'s values; the option given bare is the first.
SSE = ("AES256", "aws:kms")
#: ``aws s3 cp --storage-class``'s values.
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)
#: The classes whose objects cannot be read until restored.
ARCHIVES = tuple(sorted(ARCHIVE_CLASSES))
#: ``aws s3 cp --acl``'s canned ACLs.
ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)

#: Option name -> the WriteOptions field it fills.
_FIELDS = {
    "sse": "sse",
    "sse_kms_key_id": "sse_kms_key_id",
    "storage_class": "storage_class",
    "acl": "acl",
    "cache_control": "cache_control",
    "content_encoding": "content_encoding",
}
_META = "dg_write_options"


def _collect(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name:
        ctx.meta.setdefault(_META, {})[param.name] = value


def write_options(fn: click.decorators.FC) -> click.decorators.FC:
    """The six options, collected for :func:`write_options_from`."""
    specs: list[tuple[str, dict[str, Any]]] = [
        (
            "--sse",
            {
                "type": click.Choice(SSE),
                "is_flag": False,
                "flag_value": SSE[0],
                "help": "Server-side encryption: AES256 (the option given alone) or aws:kms.",
            },
        ),
        (
            "--sse-kms-key-id",
            {"metavar": "KEY_ID", "help": "The KMS key of --sse aws:kms (default: S3's own)."},
        ),
        (
            "--storage-class",
            {
                "type": click.Choice(STORAGE_CLASSES),
                "metavar": "CLASS",
                "help": f"Storage class: {', '.join(STORAGE_CLASSES)} (with an archive "
                f"class, {' or '.join(ARCHIVES)}, a new reference stays STANDARD).",
            },
        ),
        (
            "--acl",
            {
                "type": click.Choice(ACLS),
                "metavar": "ACL",
                "help": f"A canned ACL for what is stored: {', '.join(ACLS)}.",
            },
        ),
        ("--cache-control", {"metavar": "VALUE", "help": "Cache-Control of what is stored."}),
        (
            "--content-encoding",
            {"metavar": "VALUE", "help": "Content-Encoding of what is stored."},
        ),
    ]
    for decl, spec in reversed(specs):
        fn = click.option(decl, callback=_collect, expose_value=False, **spec)(fn)
    return fn


def write_options_from(ctx: click.Context, *, no_delta: bool) -> WriteOptions | None:
    """The write options given (None when none was), checked: ``--sse-kms-key-id`` needs
    ``--sse aws:kms`` (S3 refuses the key otherwise, for every file: here before any).
    ``no_delta`` is the command's: with it, no reference is made, whatever the class."""
    given = {_FIELDS[name]: value for name, value in ctx.meta.get(_META, {}).items()}
    if not given:
        return None
    if given.get("sse_kms_key_id") and given.get("sse") != "aws:kms":
        abort("--sse-kms-key-id needs --sse aws:kms", EXIT_USAGE)
    return WriteOptions(**given)


def _flags(options: WriteOptions) -> str:
    return ", ".join(
        "--" + name.replace("_", "-") for name in _FIELDS if getattr(options, _FIELDS[name])
    )


def require_s3_writes(app: App, options: WriteOptions | None) -> None:
    """Refuses write options on the local store: one usage error, before anything is done
    (the engine would refuse each file in turn)."""
    if options and getattr(app.storage, "client", None) is None:
        abort(
            f"{_flags(options)}: the local store (file://) has no S3 write options "
            "(encryption, storage class, ACL, Cache-Control, Content-Encoding); they are S3's",
            EXIT_USAGE,
        )
