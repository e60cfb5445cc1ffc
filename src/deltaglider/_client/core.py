"""What every part of the client stands on: the engine and the boto3 client it wraps, the
translation of our errors into boto3's, and the refusal of what it cannot honour.

The parts of :class:`~deltaglider.client.DeltaGliderClient` (listing, transfers, the simple
API, buckets) are classes of methods over this one base, joined by inheritance. Not
composition: the client's face must carry every boto3 method with its own signature for a
user's type checker (an unknown method must stay a mypy error), so delegating parts would
write each of some thirty signatures twice. Not mixins over a host ``Protocol`` either: the
plumbing they share is real code, so it lives here once, and no part declares stubs of
another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import botocore.exceptions

from ..engine import DeltaStore
from ..errors import DeltaGliderError, NotSupportedError
from ..storage.base import Storage
from .botocore import standalone_exceptions
from .errors import BODILESS, code_of
from .shapes import metadata_response

__all__ = ["ClientCore"]

_C = TypeVar("_C", bound="ClientCore")


class ClientCore:
    """The engine (``store``), the boto3 client over S3 (None over a local store), and
    ``exceptions``: boto3's exception classes for S3, its own client's where there is one."""

    def __init__(self, store: DeltaStore, boto_client: Any | None = None) -> None:
        self._store = store
        self._boto = boto_client
        self._closed = False
        if boto_client is not None:
            self.exceptions = boto_client.exceptions
            self.meta = boto_client.meta
        else:
            self.exceptions = standalone_exceptions()
            self.meta = None

    @property
    def store(self) -> DeltaStore:
        """The engine underneath."""
        return self._store

    @property
    def service(self) -> DeltaStore:
        """The engine underneath, under the original DeltaGlider's name for its own
        (``client.service.storage`` is the store; ``.client`` of an S3 store its boto3
        client). The engine's interface is this package's, not the original's."""
        return self._store

    @property
    def storage(self) -> Storage:
        return self._store.storage

    @property
    def boto_client(self) -> Any:
        """The plain boto3 client this one wraps (None over a local store)."""
        return self._boto

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(
        self,
        operation: str,
        code: str,
        message: str,
        status: int,
        *,
        bucket: str | None = None,
        key: str | None = None,
    ) -> Exception:
        """The ``ClientError`` boto3 raises for S3's ``code`` (its own class from
        ``exceptions``: ``NoSuchKey``...), naming the key and the bucket as S3 does."""
        error_fields: dict[str, str] = {"Code": code, "Message": message}
        if operation not in BODILESS and status != 304:
            # S3 names the key and the bucket in an error's body (a HEAD's has no body).
            if key is not None:
                error_fields["Key"] = key
            if bucket is not None:
                error_fields["BucketName"] = bucket
        response = {"Error": error_fields, "ResponseMetadata": metadata_response(status)}
        error: Exception = _with_builtin(self.exceptions.from_code(code), code)(response, operation)
        return error

    @contextmanager
    def _s3(
        self, operation: str, *, bucket: str | None = None, key: str | None = None
    ) -> Iterator[None]:
        """Our errors raised inside become the ClientErrors of ``operation``, with S3's codes
        (:func:`~deltaglider._client.errors.code_of`), naming ``bucket`` and ``key`` as S3
        does."""
        try:
            yield
        except botocore.exceptions.ClientError:
            raise
        except DeltaGliderError as exc:
            if isinstance(exc, NotSupportedError):
                raise
            code, message, status = code_of(exc, operation)
            raise self._error(operation, code, message, status, bucket=bucket, key=key) from exc

    @staticmethod
    def _refuse(operation: str, given: Mapping[str, Any], allowed: set[str]) -> None:
        """NotSupportedError for the first parameter given (not None) outside ``allowed``."""
        for name, value in given.items():
            if name not in allowed and value is not None:
                raise NotSupportedError(operation, name)

    def _require_boto(self, operation: str, parameter: str | None = None) -> Any:
        """The boto3 client, for what only S3 has (NotSupportedError on a local store)."""
        if self._boto is None:
            raise NotSupportedError(operation, parameter, why="not on a local (file://) store")
        return self._boto


#: The built-in exception the original DeltaGlider raised for each of S3's conditions: the
#: client's ClientErrors are that too, so that ``except FileNotFoundError`` (a program written
#: for the original) and ``except client.exceptions.NoSuchKey`` (one written for boto3) both
#: catch a missing object.
_BUILTINS: dict[str, type[Exception]] = {
    "NoSuchKey": FileNotFoundError,
    "NoSuchBucket": FileNotFoundError,
    "404": FileNotFoundError,
    "AccessDenied": PermissionError,
    "403": PermissionError,
}
_MIXED: dict[tuple[type[Exception], type[Exception]], type[Exception]] = {}


def _with_builtin(cls: type[Exception], code: str) -> type[Exception]:
    """``cls`` (boto3's class for ``code``), also a subclass of the built-in exception the
    original raised for it; of the same name, so it reads as boto3's."""
    builtin = _BUILTINS.get(code)
    if builtin is None or issubclass(cls, builtin):
        return cls
    key = (cls, builtin)
    mixed = _MIXED.get(key)
    if mixed is None:
        mixed = type(cls.__name__, (cls, builtin), {"__module__": cls.__module__})
        _MIXED[key] = mixed
    return mixed
