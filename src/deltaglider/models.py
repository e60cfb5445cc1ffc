"""The result types of the client's own API, with the original DeltaGlider's names.

The original (6.x) answered its simple API with dataclasses (``UploadSummary``,
``CompressionEstimate``, ``ObjectInfo``) and a bare ``bool`` from ``verify``; this client answers
dicts of S3-style fields (``Key``, ``Size``, ``DeltaGliderInfo``...). A program may be written
for either, so each answer here is both at once:

- :class:`UploadSummary` is a ``dict`` of our fields that also has the original's attributes
  (``summary.is_delta``, ``summary.savings_percent``...);
- :class:`VerifyResult` is a ``dict`` of our fields that is *false* when the object is not
  valid (``if client.verify(url):`` means what it says; ``result.valid`` and the original's
  other fields are attributes);
- :class:`DownloadedFile` is the :class:`~pathlib.Path` the original's ``download_batch``
  returned that also answers our fields by key (``path["Key"]``, ``path.get("Error")``);
- :class:`CompressionEstimate`, :class:`ObjectInfo` and :class:`ListObjectsResponse` are the
  original's dataclasses, field for field.

Nothing here imports boto3: ``from deltaglider import UploadSummary`` is cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CompressionEstimate",
    "DownloadedFile",
    "ListObjectsResponse",
    "ObjectInfo",
    "UploadSummary",
    "VerifyResult",
    "mib",
    "percent",
    "savings",
]

_MIB = 1024 * 1024


def mib(size: int) -> float:
    """Bytes in MiB, as the original's ``*_mb`` figures count them."""
    return size / _MIB


def savings(stored: int, original: int) -> float:
    """The fraction of ``original`` bytes that storing them in ``stored`` saves, to 6 places;
    0.0 (never -0.0) for an empty original."""
    if original <= 0:
        return 0.0
    return round((original - stored) / original, 6) + 0.0


def percent(saved: int, whole: int) -> float:
    """``saved`` as a percentage of ``whole``; 0.0 (never -0.0) when nothing was saved."""
    if whole <= 0:
        return 0.0
    value = saved / whole * 100
    return value if value != 0 else 0.0


class UploadSummary(dict):  # type: ignore[type-arg]
    """What an upload stored: our fields by key (``Bucket``, ``Key``, ``Filename``, ``ETag``,
    ``Size``, ``Sha256``, ``DeltaGliderInfo``; ``Error`` for a file of a batch that failed) and
    the original's as attributes:

    - ``operation``: ``create_reference`` (the first file of a folder, stored whole as its
      reference), ``create_delta``, ``upload_direct``, or ``failed`` (a batch's failed file);
    - ``bucket``, ``key`` (the object's key: the one a download takes);
    - ``original_size``, ``stored_size`` (bytes the object costs: the reference's for the
      first file, the delta's, or the whole file's), ``is_delta``, ``delta_ratio`` (stored
      over original for a delta, 0.0 otherwise, as the original);
    - ``original_size_mb``, ``stored_size_mb``, ``savings_percent``.
    """

    def __init__(
        self,
        operation: str,
        bucket: str,
        key: str,
        original_size: int,
        stored_size: int,
        is_delta: bool,
        delta_ratio: float = 0.0,
        *,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            fields if fields is not None else {"Bucket": bucket, "Key": key, "Size": original_size}
        )
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.original_size = original_size
        self.stored_size = stored_size
        self.is_delta = is_delta
        self.delta_ratio = delta_ratio

    @property
    def original_size_mb(self) -> float:
        return mib(self.original_size)

    @property
    def stored_size_mb(self) -> float:
        return mib(self.stored_size)

    @property
    def savings_percent(self) -> float:
        """Bytes saved, as a percentage of the original size (0.0 for an empty file)."""
        return percent(self.original_size - self.stored_size, self.original_size)

    def __repr__(self) -> str:
        return (
            f"UploadSummary(operation={self.operation!r}, bucket={self.bucket!r}, "
            f"key={self.key!r}, original_size={self.original_size!r}, "
            f"stored_size={self.stored_size!r}, is_delta={self.is_delta!r}, "
            f"delta_ratio={self.delta_ratio!r})"
        )


class VerifyResult(dict):  # type: ignore[type-arg]
    """The check of a stored object: our fields by key (``Valid``, ``Key``, ``Sha256``,
    ``Size``, ``IsDelta``, ``Message``), the original's as attributes (``valid``,
    ``expected_sha256``, ``actual_sha256``, ``message``), and the truth value of ``Valid``:
    ``if client.verify(url):`` passes only for an object whose bytes are the ones stored."""

    def __init__(self, fields: Mapping[str, Any], expected_sha256: str | None) -> None:
        super().__init__(fields)
        self.valid: bool = bool(fields["Valid"])
        self.expected_sha256 = expected_sha256 or ""
        self.actual_sha256: str = fields.get("Sha256") or ""
        self.message: str = fields.get("Message", "")

    def __bool__(self) -> bool:
        return self.valid

    def __repr__(self) -> str:
        return f"VerifyResult({dict.__repr__(self)})"


_PathBase: type = type(Path())


class DownloadedFile(_PathBase):  # type: ignore[misc]
    """Where ``download_batch`` wrote an object: a :class:`~pathlib.Path` (the original's
    answer) that also gives our fields by key, as a read-only mapping would (``["Key"]``,
    ``.get("Error")``, ``"Error" in``, ``.fields``). A path derived from it (``.parent``,
    ``/ "x"``) carries no fields."""

    _fields: Mapping[str, Any] = {}

    def __new__(cls, path: str | Path, fields: Mapping[str, Any]) -> DownloadedFile:
        self = super().__new__(cls, path)
        self._fields = dict(fields)
        return self  # type: ignore[no-any-return]

    if sys.version_info >= (3, 12):

        def __init__(self, path: str | Path, fields: Mapping[str, Any]) -> None:
            super().__init__(path)

        def with_segments(self, *segments: Any) -> Path:
            return Path(*segments)

    @property
    def fields(self) -> dict[str, Any]:
        """Our fields, as a plain dict (for ``json.dumps``)."""
        return dict(self._fields)

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name, default)

    def keys(self) -> Iterable[str]:
        return self._fields.keys()

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._fields.items()

    def values(self) -> Iterable[Any]:
        return self._fields.values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)


@dataclass
class CompressionEstimate:
    """What storing a file would cost (:meth:`DeltaGliderClient.estimate_compression`):
    ``estimated_ratio`` is the fraction saved (0.0: nothing), ``confidence`` from 0 to 1,
    ``recommended_reference`` the key of what the file would be encoded against."""

    original_size: int
    estimated_compressed_size: int
    estimated_ratio: float
    confidence: float
    recommended_reference: str | None = None
    should_use_delta: bool = True


@dataclass
class ObjectInfo:
    """An object and what storing it costs (:meth:`DeltaGliderClient.get_object_info`).
    ``size`` is the stored size, ``original_size`` the logical one, ``compression_ratio`` the
    fraction saved."""

    key: str
    size: int
    last_modified: str
    etag: str | None = None
    storage_class: str = "STANDARD"
    original_size: int | None = None
    compressed_size: int | None = None
    compression_ratio: float | None = None
    is_delta: bool = False
    reference_key: str | None = None
    delta_chain_length: int = 0


@dataclass
class ListObjectsResponse:
    """The original's listing dataclass, kept for programs that import it (this client's
    ``list_objects`` answers boto3's dict, as the original's did since 5.x)."""

    name: str
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = 1000
    common_prefixes: list[dict[str, str]] = field(default_factory=list)
    contents: list[ObjectInfo] = field(default_factory=list)
    is_truncated: bool = False
    next_continuation_token: str | None = None
    continuation_token: str | None = None
    key_count: int = 0

    @property
    def objects(self) -> list[ObjectInfo]:
        return self.contents
