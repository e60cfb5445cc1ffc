"""The on-S3 storage format (../shared/format.md): keys, and ``dg-*`` metadata in every spelling.

Layout of a *deltaspace* (a bucket plus every key component before the last ``/``):

- ``<prefix>/reference.bin``: the full bytes of the first delta-eligible file; internal.
- ``<prefix>/<name>.delta``: a VCDIFF delta of ``<name>`` against the reference.
- ``<prefix>/<name>``: a direct object, stored as is.
- ``.deltaglider/`` at a bucket's root: the tool's own bookkeeping, never user data.

Reserved names. A user file whose key ends in ``.delta``, or whose last component is
``reference.bin``, could not be told apart from the tool's own objects, so when it is stored
*direct* its physical key gets ``.direct`` appended (``notes.delta`` is stored as
``notes.delta.direct``), and so does a name that already looks escaped (``notes.delta.direct``
becomes ``notes.delta.direct.direct``); other names ending in ``.direct`` are stored as is
(``build.direct``), so an object another tool wrote under such a name is read under its own name.
Stored as a delta, ``<name>.delta`` is already unambiguous. Listing and
reading undo this, so the user always sees the name they used. Keys under ``.deltaglider/`` at the
bucket root are refused.

Names in metadata. S3 metadata values must be ASCII. ``dg-original-name``, ``dg-source-name``
and ``dg-ref-key`` hold the name as is when it is printable ASCII; any other name is written
``utf-8''`` followed by its percent-encoded UTF-8 bytes (RFC 8187's form), which
:func:`decode_name` reverses. The key itself always carries the true name; the file names are
informational and cut at 512 characters (a reference key is never cut: keys are at most 1024
bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final, Literal
from urllib.parse import quote, unquote

from ._version import __version__
from .errors import InvalidKey

__all__ = [
    "DELTA_SUFFIX",
    "DIRECT_SUFFIX",
    "REFERENCE_NAME",
    "RESERVED_PREFIX",
    "TOOL",
    "ObjectMeta",
    "decode_name",
    "deltaspace",
    "encode_name",
    "format_time",
    "parse_metadata",
    "parse_time",
    "physical",
]

TOOL: Final = f"deltaglider/{__version__}"
REFERENCE_NAME: Final = "reference.bin"
DELTA_SUFFIX: Final = ".delta"
DIRECT_SUFFIX: Final = ".direct"
RESERVED_PREFIX: Final = ".deltaglider/"
ZERO_DIFF_NOTE: Final = "zero-diff (reference identical)"
MAX_NAME_FIELD: Final = 512

FIELDS: Final = (
    "original_name", "file_sha256", "file_size", "created_at", "ref_key", "ref_sha256",
    "delta_size", "delta_cmd", "source_name", "tool", "note", "compression",
)  # fmt: skip


def _aliases(name: str) -> tuple[str, ...]:
    dashed = name.replace("_", "-")
    return (f"dg-{dashed}", f"dg_{name}", name, dashed)


#: Every spelling of every field, in the order a reader tries them (first non-empty wins).
ALIASES: Final = {f: _aliases(f) for f in FIELDS}
_ALL_ALIASES: Final = frozenset(a for names in ALIASES.values() for a in names)

Kind = Literal["reference", "delta", "direct", "foreign"]


# --- keys ------------------------------------------------------------------------------------


def deltaspace(key: str) -> str:
    """The key prefix of a key's deltaspace: everything before its last ``/`` ("" at the root)."""
    slash = key.rfind("/")
    return key[:slash] if slash >= 0 else ""


def reference_key(prefix: str) -> str:
    """The key of a deltaspace's reference."""
    return f"{prefix}/{REFERENCE_NAME}" if prefix else REFERENCE_NAME


def basename(key: str) -> str:
    return key[key.rfind("/") + 1 :]


def check_key(key: str) -> None:
    """Raises InvalidKey for keys no logical object can have."""
    if not key:
        raise InvalidKey("the object key is empty")
    if len(key.encode("utf-8", "surrogatepass")) > 1024:
        raise InvalidKey("the object key is longer than 1024 bytes", key=key)
    if key.startswith(RESERVED_PREFIX):
        raise InvalidKey(f"keys under {RESERVED_PREFIX} are reserved for deltaglider", key=key)
    if key.endswith("/"):
        raise InvalidKey("an object key cannot end with '/'", key=key)


def needs_escape(key: str) -> bool:
    """Whether a direct object with this key must be stored under ``key + .direct``: its name
    ends in ``.delta``, is ``reference.bin``, or is itself such an escaped name
    (``x.delta.direct``). Any other name ending in ``.direct`` (``build.direct``) is stored as
    is, so that an object of that name written by another tool is read under its own name."""
    while True:
        if key.endswith(DELTA_SUFFIX) or basename(key) == REFERENCE_NAME:
            return True
        if not key.endswith(DIRECT_SUFFIX):
            return False
        key = key[: -len(DIRECT_SUFFIX)]


def direct_key(key: str) -> str:
    """The physical key of a direct object of logical ``key``."""
    return key + DIRECT_SUFFIX if needs_escape(key) else key


def delta_key(key: str) -> str:
    """The physical key of the delta of logical ``key``."""
    return key + DELTA_SUFFIX


@dataclass(frozen=True)
class Physical:
    """What a physical key is: the logical key it carries and how it is stored."""

    logical: str
    kind: Literal["delta", "direct", "reference", "internal"]


def physical(key: str) -> Physical:
    """Classifies a physical key by its name alone (a listing has nothing else)."""
    if key.startswith(RESERVED_PREFIX):
        return Physical(key, "internal")
    if basename(key) == REFERENCE_NAME:
        return Physical(key, "reference")
    if key.endswith(DIRECT_SUFFIX) and needs_escape(key[: -len(DIRECT_SUFFIX)]):
        return Physical(key[: -len(DIRECT_SUFFIX)], "direct")
    if key.endswith(DELTA_SUFFIX) and len(key) > len(DELTA_SUFFIX):
        return Physical(key[: -len(DELTA_SUFFIX)], "delta")
    return Physical(key, "direct")


# --- names and times -------------------------------------------------------------------------

_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ENCODED = "utf-8''"


def encode_name(name: str, limit: int | None = MAX_NAME_FIELD) -> str:
    """An ASCII form of a name for metadata (see the module docstring)."""
    if _PRINTABLE.fullmatch(name) and not name.startswith(_ENCODED):
        out = name
    else:
        out = _ENCODED + quote(name.encode("utf-8", "surrogateescape"), safe="")
    return out if limit is None else out[:limit]


def decode_name(value: str) -> str:
    """Reverses :func:`encode_name`."""
    if value.startswith(_ENCODED):
        return unquote(value[len(_ENCODED) :], encoding="utf-8", errors="surrogateescape")
    return value


def format_time(when: datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds and ``Z``, as the original writes on deltas."""
    when = when or datetime.now(timezone.utc)
    utc = when.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_time(value: str) -> datetime | None:
    """Reads every timestamp form the original wrote (with or without ``Z``/fraction)."""
    text = value.strip()
    if not text:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


# --- metadata --------------------------------------------------------------------------------


def read_field(meta: Mapping[str, str], name: str, *, bare: bool = True) -> str | None:
    """A field in any spelling: ``dg-f-g``, ``dg_f_g``, ``f_g``, ``f-g``; first non-empty wins.

    ``bare=False`` skips the unprefixed spellings (see :func:`parse_metadata`).
    """
    for alias in ALIASES[name] if bare else ALIASES[name][:2]:
        value = meta.get(alias)
        if value:
            return value
    return None


@dataclass(frozen=True)
class ObjectMeta:
    """A physical object's metadata, read in whatever spelling it was written."""

    kind: Kind
    original_name: str | None = None
    file_sha256: str | None = None
    file_size: int | None = None
    created_at: datetime | None = None
    ref_key: str | None = None
    ref_sha256: str | None = None
    delta_size: int | None = None
    source_name: str | None = None
    tool: str | None = None
    note: str | None = None
    #: The caller's own metadata (everything that is not a deltaglider field).
    user: dict[str, str] = field(default_factory=dict)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


def _sha(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if _SHA256.match(value) else None


def parse_metadata(meta: Mapping[str, str], key: str = "") -> ObjectMeta:
    """Classifies an object by its metadata and reads its fields.

    A *delta* has a reference key and sha256 and the file's sha256; a *reference* is marked as
    one (``dg-note: reference``) or is named ``reference.bin`` with a sha256; a *direct* object
    has any other deltaglider field; an object without any is *foreign* (another tool wrote it).
    Malformed values (a sha256 that is not 64 hex digits, a negative size) read as absent.
    """
    lowered = {k.lower(): v for k, v in meta.items()}
    # Unprefixed names (``file_sha256``) are fields only on objects from before the ``dg``
    # prefix (5.x, and direct objects of 6.0-6.1); on any object with a prefixed field they
    # are the caller's own metadata.
    legacy = not any(k.startswith(("dg-", "dg_")) for k in lowered)
    get = {f: read_field(lowered, f, bare=legacy) for f in FIELDS}
    user = {
        k: v
        for k, v in lowered.items()
        if not k.startswith(("dg-", "dg_")) and not (legacy and k in _ALL_ALIASES)
    }
    file_sha = _sha(get["file_sha256"])
    ref_sha = _sha(get["ref_sha256"])
    kind: Kind
    if get["ref_key"] and ref_sha and file_sha:
        kind = "delta"
    elif (get["note"] == "reference" or basename(key) == REFERENCE_NAME) and file_sha:
        kind = "reference"
    elif any(get.values()):
        kind = "direct"
    else:
        kind = "foreign"
    name = get["original_name"]
    source = get["source_name"]
    return ObjectMeta(
        kind=kind,
        original_name=decode_name(name) if name else None,
        file_sha256=file_sha,
        file_size=_int(get["file_size"]),
        created_at=parse_time(get["created_at"]) if get["created_at"] else None,
        ref_key=decode_name(get["ref_key"]) if get["ref_key"] else None,
        ref_sha256=ref_sha,
        delta_size=_int(get["delta_size"]),
        source_name=decode_name(source) if source else None,
        tool=get["tool"],
        note=get["note"],
        user=user,
    )


def check_user_metadata(user: Mapping[str, str]) -> dict[str, str]:
    """The caller's metadata as stored (lower-case keys); refuses deltaglider's own names."""
    out: dict[str, str] = {}
    for k, v in user.items():
        lk = str(k).lower()
        if lk.startswith(("dg-", "dg_")):
            raise InvalidKey(f"metadata key {k!r} is reserved for deltaglider (dg- prefix)")
        value = str(v)
        if not _PRINTABLE.fullmatch(value):
            raise InvalidKey(f"metadata value of {k!r} must be printable ASCII (an S3 rule)")
        out[lk] = value
    return out


def reference_metadata(
    source_name: str, sha256: str, created: datetime | None = None
) -> dict[str, str]:
    return {
        "dg-tool": TOOL,
        "dg-source-name": encode_name(source_name),
        "dg-file-sha256": sha256,
        "dg-created-at": format_time(created),
        "dg-note": "reference",
    }


def delta_metadata(
    *,
    original_name: str,
    file_sha256: str,
    file_size: int,
    ref_key: str,
    ref_sha256: str,
    delta_size: int,
    zero_diff: bool = False,
    created: datetime | None = None,
) -> dict[str, str]:
    name = encode_name(original_name)
    meta = {
        "dg-tool": TOOL,
        "dg-original-name": name,
        "dg-file-sha256": file_sha256,
        "dg-file-size": str(file_size),
        "dg-created-at": format_time(created),
        "dg-ref-key": encode_name(ref_key, limit=None),
        "dg-ref-sha256": ref_sha256,
        "dg-delta-size": str(delta_size),
        "dg-delta-cmd": f"xdelta3 -e -9 -s {REFERENCE_NAME} {name} {name}{DELTA_SUFFIX}"[:1024],
    }
    if zero_diff:
        meta["dg-note"] = ZERO_DIFF_NOTE
    return meta


def direct_metadata(
    *, original_name: str, file_sha256: str, file_size: int, created: datetime | None = None
) -> dict[str, str]:
    return {
        "dg-tool": TOOL,
        "dg-original-name": encode_name(original_name),
        "dg-file-sha256": file_sha256,
        "dg-file-size": str(file_size),
        "dg-created-at": format_time(created),
        "dg-compression": "none",
    }


def internal_metadata() -> dict[str, str]:
    """The metadata of a document deltaglider keeps for itself under :data:`RESERVED_PREFIX`
    (a stats cache): the tool that wrote it."""
    return {"dg-tool": TOOL}


def temp_copy_metadata(
    *,
    source_key: str,
    file_size: int,
    file_sha256: str | None,
    expires: datetime,
    user: Mapping[str, str] | None = None,
    created: datetime | None = None,
) -> dict[str, str]:
    """A temporary plain copy of a logical object, made under ``.deltaglider/tmp/`` for a
    presigned URL: the object's own user metadata, what the copy is and of what, and when its
    URL expires (``dg-expires-at``, for the purge of expired copies)."""
    meta = {
        **(user or {}),
        "dg-tool": TOOL,
        "dg-note": "temporary copy for a presigned URL",
        "dg-source-key": encode_name(source_key),
        "dg-file-size": str(file_size),
        "dg-created-at": format_time(created),
        "dg-expires-at": format_time(expires),
    }
    if file_sha256:
        meta["dg-file-sha256"] = file_sha256
    return meta
