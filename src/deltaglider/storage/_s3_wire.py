"""What botocore answers, read right: its errors as deltaglider's storage exceptions, its
responses as :class:`~.base.ObjectInfo`, and two hooks on the wire that botocore leaves out.

- :func:`translate` is the one place a boto3/botocore error becomes a storage exception.
- :func:`register_hooks` makes an S3 client turn a 2xx answer cut inside its headers into a
  retryable error, and send an empty body without ``Expect: 100-continue``.
- Dates of responses are read by :func:`deltaglider._io.http_date`, as everywhere else.

It knows nothing of the store's state (pools, settings): :mod:`.s3` calls it.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import botocore.exceptions

from .._io import http_date
from ..errors import (
    AccessDenied,
    BucketNotEmpty,
    BucketNotFound,
    ConfigError,
    InvalidRange,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from .base import ObjectInfo

__all__ = ["object_info", "register_hooks", "response_date", "translate"]

_ACCESS = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "AccountProblem",
    "403",
    "Forbidden",
}


def translate(exc: Exception, *, bucket: str = "", key: str = "", action: str = "") -> Exception:
    """The deltaglider exception for a boto3/botocore error (other exceptions unchanged)."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}" if bucket else "the store"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = err.get("Message") or code or f"HTTP {status}"
        kw: dict[str, Any] = {"code": code, "status": status, "bucket": bucket, "key": key}
        if code == "NoSuchBucket":
            return BucketNotFound(f"bucket {bucket} does not exist", **kw)
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return ObjectNotFound(f"{where} does not exist", **kw)
        if code == "InvalidObjectState":
            # S3's 403 for an object in an archive storage class (GLACIER, DEEP_ARCHIVE) not
            # restored: no matter of access rights.
            return StorageError(
                f"{where} is in an archive storage class and must be restored before it is "
                f"read ({text})",
                **kw,
            )
        if code in _ACCESS or status == 403:
            detail = {
                "InvalidAccessKeyId": "the access key is not known to the store",
                "SignatureDoesNotMatch": "the secret key is wrong",
            }.get(code, text)
            return AccessDenied(f"access denied to {where}: {detail}", **kw)
        if code in ("PreconditionFailed", "412", "ConditionalRequestConflict") or status == 412:
            return PreconditionFailed(f"{where}: condition not met ({action or 'write'})", **kw)
        if code in ("InvalidRange", "416") or status == 416:
            return InvalidRange(f"{where}: requested range not satisfiable", **kw)
        if code == "BucketNotEmpty":
            return BucketNotEmpty(f"bucket {bucket} is not empty", **kw)
        return StorageError(f"{action or 'request'} on {where} failed: {code}: {text}", **kw)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return AccessDenied(
            "no AWS credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or use a profile)",
            bucket=bucket,
            key=key,
        )
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return ConfigError(str(exc))
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return StorageError(
            f"cannot connect to {exc.kwargs.get('endpoint_url', 'the store')}",
            code="EndpointConnectionError",
            bucket=bucket,
            key=key,
        )
    if isinstance(exc, (botocore.exceptions.BotoCoreError, OSError)):
        text = str(exc)
        short = _SHORT_READ.search(text)
        if short:  # urllib3's and http.client's words for a body cut short
            got, total, more = short.groups()
            want = int(total) if total else int(got) + int(more)
            text = f"the connection closed after {got} of {want} bytes of the answer"
        return StorageError(
            f"{action or 'request'} on {where} failed: {text}", bucket=bucket, key=key
        )
    return exc


_SHORT_READ = re.compile(
    r"(\d+) (?:bytes )?read(?:, but total bytes expected is (\d+)|, (\d+) more expected)"
)


def response_date(response: Mapping[str, Any]) -> datetime | None:
    """The ``Last-Modified`` (else ``Date``) header of a response, in UTC."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return http_date(headers.get("last-modified") or headers.get("date"))


def object_info(key: str, response: Mapping[str, Any], size: int | None = None) -> ObjectInfo:
    """The object a HeadObject or GetObject response describes (``size``: the whole object's,
    where the response is of a range)."""
    return ObjectInfo(
        key=key,
        size=int(response.get("ContentLength", 0)) if size is None else size,
        etag=response.get("ETag", ""),
        last_modified=response.get("LastModified") or response_date(response),
        metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
        content_type=response.get("ContentType"),
    )


def register_hooks(client: Any) -> None:
    """Installs this module's wire hooks on a boto3 S3 client."""
    client.meta.events.register("before-parse.s3.*", _reject_cut_headers)
    client.meta.events.register("before-send.s3", _no_expect_for_empty_body)


#: Operations whose successful answer always names the object's ETag.
_ETAG_OPERATIONS = frozenset({"HeadObject", "GetObject", "PutObject", "UploadPart"})
_INCOMPLETE = (
    b"<Error><Code>IncompleteResponse</Code><Message>the connection closed inside the "
    b"response headers</Message></Error>"
)


def _no_expect_for_empty_body(request: Any, **_: Any) -> None:
    """Sends an empty body without ``Expect: 100-continue``.

    With botocore 1.43 and urllib3 2.7, an empty PUT that asks for 100-continue leaves its
    connection in a state where the next upload on it waits for the whole read timeout (60 s
    by default) against SeaweedFS. There is nothing to wait for with an empty body anyway.
    """
    if "Expect" not in request.headers:
        return
    body = request.body
    empty_body = body is None or (isinstance(body, (bytes, bytearray)) and not body)
    if empty_body or request.headers.get("Content-Length") in ("0", b"0"):
        size = 0
    elif hasattr(body, "seek") and hasattr(body, "tell"):
        # Not seek()'s return value: some readers (s3transfer's ReadFileChunk) return None.
        try:
            here = body.tell()
            body.seek(0, io.SEEK_END)
            size = body.tell() - here
            body.seek(here)
        except (OSError, ValueError, TypeError):
            return
    else:
        return
    if size == 0:
        del request.headers["Expect"]


def _reject_cut_headers(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """Turns a 2xx answer that was cut short into a retryable error (a 500).

    http.client takes the end of the connection for the end of the headers: a connection that
    closes inside them gives a 200 with the headers so far, an empty body, and no error (the
    known boto3 trap); botocore does not check the length of a body it does not stream either.
    An answer with a body says how long it is (or is chunked, or ends with the connection, as
    it then says); an object's answer names its ETag, and a HEAD of one its size. (Headers cut
    after those are caught where an object's body is read: see :meth:`.s3.S3Storage.get`.)
    """
    status = int(response_dict.get("status_code") or 0)
    if not 200 <= status < 300 or status == 204:
        return
    headers = response_dict.get("headers") or {}
    body = response_dict.get("body")
    operation = operation_model.name
    incomplete = operation in _ETAG_OPERATIONS and "etag" not in headers
    if operation == "HeadObject":
        incomplete |= "content-length" not in headers
    elif operation_model.http.get("method") != "HEAD" and "transfer-encoding" not in headers:
        length = headers.get("content-length")
        if length is None:
            incomplete |= "close" not in str(headers.get("connection", "")).lower()
        elif isinstance(body, bytes):
            incomplete |= length.strip() != str(len(body))
    if not incomplete:
        return
    close = getattr(body, "close", None)
    if close is not None:  # a streamed body: its connection is of no further use
        with contextlib.suppress(Exception):
            close()
    response_dict["status_code"] = 500
    response_dict["body"] = _INCOMPLETE
