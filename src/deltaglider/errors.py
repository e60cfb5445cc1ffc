"""Exceptions raised by deltaglider.

Everything the package raises on purpose derives from :class:`DeltaGliderError`, so callers can
catch one type. The tree is kept shallow; where a builtin exception means the same thing it is a
second base class, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "DecodeError",
    "DeltaGliderError",
    "DeltaTooLargeError",
    "EncodeError",
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
    and ``bytes_read`` how much of the target had been read when encoding stopped.
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
