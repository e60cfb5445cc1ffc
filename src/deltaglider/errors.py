"""Exceptions raised by deltaglider.

Everything the package raises on purpose derives from :class:`DeltaGliderError`, so callers can
catch one type. The tree is kept shallow; where a builtin exception means the same thing it is a
second base class, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BucketNotEmpty",
    "BucketNotFound",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "DeltaGliderError",
    "DeltaTooLargeError",
    "EncodeError",
    "IntegrityError",
    "InvalidKey",
    "InvalidRange",
    "NotFound",
    "NotSupportedError",
    "ObjectNotFound",
    "PreconditionFailed",
    "StorageError",
]


class DeltaGliderError(Exception):
    """Root of every exception deltaglider raises on purpose."""


class CodecError(DeltaGliderError):
    """The delta codec failed; the message carries xdelta3's own explanation."""


class EncodeError(CodecError):
    """Computing a delta failed."""


class DeltaTooLargeError(EncodeError):
    """Encoding stopped because the delta would exceed ``max_delta_size``.

    Not a malfunction: it reports that the target is not worth storing as a delta. ``limit`` is
    the limit that was given, ``delta_size`` a lower bound of the size the delta would have had
    and ``bytes_read`` how much of the target had been examined when encoding stopped.
    """

    def __init__(self, limit: int, delta_size: int, bytes_read: int) -> None:
        # Plain args so the exception pickles (it crosses process pools in multi-file work).
        super().__init__(limit, delta_size, bytes_read)
        self.limit = limit
        self.delta_size = delta_size
        self.bytes_read = bytes_read

    def __str__(self) -> str:
        return (
            f"delta would exceed {self.limit} bytes (at least {self.delta_size} bytes "
            f"after {self.bytes_read} bytes of target)"
        )


class DecodeError(CodecError, ValueError):
    """A delta could not be applied: it is malformed, truncated, made against another source,
    or would exceed the allowed output size."""


class IntegrityError(DeltaGliderError):
    """Bytes did not match the sha256 (or size) recorded for them: nothing was delivered as good.

    ``key`` names the object, ``expected`` and ``actual`` are the digests (or sizes) compared.
    """

    def __init__(
        self, message: str, *, key: str = "", expected: str = "", actual: str = ""
    ) -> None:
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.actual = actual


class ConfigError(DeltaGliderError, ValueError):
    """A setting (environment variable, option, URL) is invalid."""


class StorageError(DeltaGliderError):
    """The store refused or failed a request.

    ``code`` is the store's error code where there is one (S3's ``NoSuchKey``, ``SlowDown``...),
    ``status`` the HTTP status, ``bucket`` and ``key`` what the request was about.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        status: int = 0,
        bucket: str = "",
        key: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.bucket = bucket
        self.key = key


class NotFound(StorageError, FileNotFoundError):
    """The bucket or object does not exist."""


class BucketNotFound(NotFound):
    """The bucket does not exist."""


class ObjectNotFound(NotFound):
    """The object does not exist."""


class AccessDenied(StorageError, PermissionError):
    """The credentials are wrong or not allowed to do this."""


class PreconditionFailed(StorageError):
    """A conditional request's condition did not hold (the object exists, or changed)."""


class InvalidRange(StorageError):
    """The requested byte range is outside the object."""


class BucketNotEmpty(StorageError):
    """The bucket still holds objects."""


class InvalidKey(StorageError, ValueError):
    """The key cannot be stored (empty, too long, or reserved)."""


class NotSupportedError(DeltaGliderError, NotImplementedError):
    """An operation or parameter the boto3-compatible client does not support (it is never
    silently ignored). ``operation`` and ``parameter`` name it."""

    def __init__(self, operation: str, parameter: str | None = None, why: str = "") -> None:
        what = f"{operation}: parameter {parameter!r}" if parameter else operation
        super().__init__(f"{what} is not supported by deltaglider" + (f" ({why})" if why else ""))
        self.operation = operation
        self.parameter = parameter


class _UnknownExtraArg(NotSupportedError, ValueError):
    """An ``ExtraArgs`` key of a managed transfer that boto3 rejects too: also a ValueError,
    which is what boto3 raises."""
