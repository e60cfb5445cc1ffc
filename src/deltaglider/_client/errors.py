"""Our errors as S3's: the code, message and HTTP status S3 gives for each (:func:`code_of`),
and for a DeleteObjects ``Errors`` entry (:func:`entry_error`).

A program written for boto3 catches ``client.exceptions.NoSuchKey`` or looks at
``exc.response["Error"]["Code"]``: every part of the client raises what S3 would, through
:meth:`ClientCore._s3 <deltaglider._client.core.ClientCore._s3>` (our errors, as they leave an
operation), which makes the botocore ``ClientError`` of the client's own exception classes
(:meth:`~deltaglider._client.core.ClientCore._error`, also for an error the client finds
itself, a bad parameter). What is no S3 condition (an integrity failure, a codec error,
:class:`~deltaglider.errors.NotSupportedError`) leaves as it is.
"""

from __future__ import annotations

import http.client
import re
from typing import Final

from ..errors import (
    AccessDenied,
    BucketNotEmpty,
    BucketNotFound,
    DeltaGliderError,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)

__all__ = ["BODILESS", "NOT_XML", "code_of", "entry_error"]

#: Operations whose errors come without a body (HEAD requests): a code and a status only.
BODILESS: Final = frozenset({"HeadObject", "HeadBucket"})

#: Characters XML 1.0 cannot carry (a key holding one cannot be sent in a request's XML).
NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

#: S3's code and message, in a DeleteObjects Errors entry, for a bodiless error's status.
_ENTRY_CODES: Final = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
}

_STATUS: Final = {
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "404": 404,
    "AccessDenied": 403,
    "PreconditionFailed": 412,
    "304": 304,
    "InvalidRange": 416,
    "BucketNotEmpty": 409,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
}


def code_of(exc: DeltaGliderError, operation: str) -> tuple[str, str, int]:
    """S3's error code, message and HTTP status for one of our errors. A HEAD's error has no
    body: botocore names it by its status (``"404"``, ``"416"``) and the HTTP reason phrase.
    Raises ``exc`` itself when it is no S3 condition."""
    code, message, status = _s3_code_of(exc, operation)
    if operation in BODILESS:
        return str(status), http.client.responses.get(status, ""), status
    return code, message, status


def _s3_code_of(exc: DeltaGliderError, operation: str) -> tuple[str, str, int]:
    head = operation in BODILESS
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, BucketNotFound):
        code = "404" if head else "NoSuchBucket"
        return code, "Not Found" if head else "The specified bucket does not exist", 404
    if isinstance(exc, ObjectNotFound):
        return (
            ("404", "Not Found", 404)
            if head
            else ("NoSuchKey", "The specified key does not exist.", 404)
        )
    if isinstance(exc, AccessDenied):
        return ("403", "Forbidden", 403) if head else ("AccessDenied", "Access Denied", 403)
    if isinstance(exc, PreconditionFailed):
        return (
            ("412", "Precondition Failed", 412)
            if head
            else (
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                412,
            )
        )
    if isinstance(exc, InvalidRange):
        return "InvalidRange", "The requested range is not satisfiable", 416
    if isinstance(exc, BucketNotEmpty):
        return "BucketNotEmpty", "The bucket you tried to delete is not empty", 409
    if isinstance(exc, InvalidKey):
        return "InvalidArgument", message, 400
    if isinstance(exc, StorageError) and exc.code:
        return exc.code, message, exc.status or _STATUS.get(exc.code, 500)
    raise exc  # not an S3 condition (an integrity failure, a codec error): as it is


def entry_error(exc: Exception) -> tuple[str, str]:
    """The ``Code`` and ``Message`` of a DeleteObjects ``Errors`` entry for a key whose
    deletion failed."""
    code, message = "InternalError", str(exc)
    if isinstance(exc, DeltaGliderError):
        try:
            code, message, _ = code_of(exc, "DeleteObjects")
        except DeltaGliderError:
            pass
        if code.isdigit():
            # The store refused a HEAD, whose error has no body: S3's code for its status, as
            # a DeleteObjects entry names it.
            code, message = _ENTRY_CODES.get(int(code), (code, message))
    return code, message
