"""What the engine's stages pass around and return: result types, a reference as the engine
knows it, the engine's own folders under ``.deltaglider/`` and its logger."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO, Final

from .. import format as fmt

__all__ = [
    "DELTA_ONLY_FIELDS",
    "STALE_BOOKKEEPING",
    "TRASH",
    "WRITE_ATTEMPTS",
    "WRITE_CHECKS",
    "ListResult",
    "ObjectSummary",
    "PutResult",
    "Ref",
    "Source",
    "log",
]

log = logging.getLogger("deltaglider")

#: Rounds of "store, then check the reference is still the one encoded against" before a write
#: gives up (each round is a concurrent writer or cleanup changing the deltaspace under it).
WRITE_ATTEMPTS: Final = 5
#: Where a reference is set aside while it is being removed (see ``cleanup``).
TRASH: Final = fmt.RESERVED_PREFIX + "trash/"
#: Where the check that a store enforces create-only writes writes its two small objects.
WRITE_CHECKS: Final = fmt.RESERVED_PREFIX + "probe/"
#: A reference set aside or a create-only check lives for the seconds of the call that made
#: it; one this old was left by a process killed meanwhile.
STALE_BOOKKEEPING: Final = timedelta(hours=24)
#: Metadata fields only a delta has: an object with any of them claims to be a delta.
DELTA_ONLY_FIELDS: Final = ("ref_key", "ref_sha256", "delta_size", "delta_cmd")

#: What a put stores: a path, bytes, or a readable binary stream.
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class PutResult:
    """What a put stored."""

    bucket: str
    key: str
    physical_key: str
    size: int
    stored_size: int
    sha256: str
    is_delta: bool
    etag: str
    ref_key: str | None = None
    created_reference: bool = False
    #: Why a delta candidate was stored direct ("" when it was not a candidate or is a delta).
    direct_reason: str = ""

    @property
    def became_reference(self) -> bool:
        """Whether the file became its deltaspace's new reference: stored whole there, its
        zero-diff delta beside it is bookkeeping (what the CLI and the SDK report it as)."""
        return self.is_delta and self.created_reference


@dataclass(frozen=True)
class ObjectSummary:
    """A logical object. ``size`` is what a download yields; None in a listing made without
    logical sizes for a delta (its stored size is known, not its original size)."""

    bucket: str
    key: str
    size: int | None
    stored_size: int
    last_modified: datetime | None
    etag: str
    is_delta: bool
    physical_key: str
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    sha256: str | None = None
    ref_key: str | None = None
    ref_sha256: str | None = None
    kind: str = "direct"


@dataclass(frozen=True)
class ListResult:
    """A page of a logical listing."""

    objects: list[ObjectSummary] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True)
class Ref:
    """A deltaspace's reference as the engine knows it: its content's sha256 and the ETag of
    the ``reference.bin`` it was read from."""

    sha256: str
    etag: str
