"""What the client's parts share: the refusal of what is not supported, response metadata."""

from __future__ import annotations

from typing import Any

from .errors import DeltaGliderError

__all__ = ["NotSupportedError", "metadata_response"]


class NotSupportedError(DeltaGliderError, NotImplementedError):
    """An operation or parameter the client does not support (it is never silently ignored)."""

    def __init__(self, operation: str, parameter: str | None = None, why: str = "") -> None:
        what = f"{operation}: parameter {parameter!r}" if parameter else operation
        super().__init__(f"{what} is not supported by deltaglider" + (f" ({why})" if why else ""))
        self.operation = operation
        self.parameter = parameter


def metadata_response(status: int = 200) -> dict[str, Any]:
    """``ResponseMetadata`` of a response the engine made (no raw headers to show)."""
    return {"HTTPStatusCode": status, "HTTPHeaders": {}, "RequestId": "", "RetryAttempts": 0}
