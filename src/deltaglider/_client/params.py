"""Request parameters checked and read as S3 reads them: a put_object body against its
``ContentMD5`` and ``ContentLength``, conditional headers (RFC 7232's order), ``Range``,
tags, ``CopySource``, and key names URL-encoded for ``EncodingType="url"``.

A bad parameter is the ClientError S3 gives for it. The checks that know the request's S3 error
take ``refuse`` (the client's own ClientError for a code and a message); the others raise our
errors (:class:`~deltaglider.errors.InvalidRange`, ``PreconditionFailed``), translated where
the operation's errors are, or say what is wrong and let the caller answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import IO, Any, Final
from urllib.parse import parse_qsl, quote_plus, unquote, urlencode

from .._io import CHUNK, SPOOL_THRESHOLD, as_utc
from ..engine import ObjectSummary
from ..errors import InvalidRange, NotSupportedError, PreconditionFailed
from ..storage.base import WriteOptions
from .shapes import quoted

__all__ = [
    "WRITE_OPTIONS",
    "Refuse",
    "byte_range",
    "checked_body",
    "copy_source",
    "invalid_tags",
    "not_modified",
    "tag_set",
    "tagging",
    "url_encode",
    "write_options",
]

#: The client's ClientError (status 400) of the request being checked, for S3's code and
#: message.
Refuse = Callable[[str, str], Exception]

_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)\Z")


def checked_body(
    data: Any, content_md5: str | None, content_length: int | None, refuse: Refuse
) -> tuple[Any, IO[bytes] | None]:
    """The body, checked against ``ContentMD5`` and ``ContentLength`` before anything is
    stored (a stream is read to its end first, into memory or, beyond
    :data:`~deltaglider._io.SPOOL_THRESHOLD`, a temporary file), and that file if there is
    one (the caller closes it once the body is stored)."""
    md5 = hashlib.md5(usedforsecurity=False)
    spooled: IO[bytes] | None = None
    if isinstance(data, (bytes, bytearray, memoryview)):
        md5.update(data)
        size = memoryview(data).nbytes
    else:
        spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115
        size = 0
        while chunk := data.read(CHUNK):
            md5.update(chunk)
            spooled.write(chunk)
            size += len(chunk)
        spooled.seek(0)
        if size <= SPOOL_THRESHOLD:
            data = spooled.read()
            spooled.close()
            spooled = None
        else:
            data = spooled
    try:
        if content_md5 is not None:
            try:
                given = base64.b64decode(content_md5, validate=True)
            except (binascii.Error, ValueError):
                raise refuse(
                    "InvalidDigest", "The Content-Md5 you specified is not valid."
                ) from None
            if given != md5.digest():
                raise refuse(
                    "BadDigest", "The Content-Md5 you specified did not match what we received."
                )
        if content_length is not None and content_length != size:
            # boto3 sends the header as given: a server then reads a truncated body and the
            # connection's next request is garbage, or waits for bytes that never come. S3's
            # error for a body that is not the Content-Length says so at once instead.
            raise refuse(
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length "
                f"HTTP header (ContentLength={content_length}, the body has {size} bytes)",
            )
    except BaseException:
        if spooled is not None:
            spooled.close()
        raise
    return data, spooled


def not_modified(
    head: ObjectSummary,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: datetime | None,
    if_unmodified_since: datetime | None,
) -> bool:
    """Whether the conditions make the answer a 304; PreconditionFailed (412) if they fail.

    RFC 7232's order, which S3 follows: If-Match, else If-Unmodified-Since (412); then
    If-None-Match, else If-Modified-Since (304). So IfMatch true with IfUnmodifiedSince false
    is a 200, and IfNoneMatch false with IfModifiedSince true a 304.
    """
    etag = quoted(head.etag)
    when = head.last_modified
    if if_match is not None:
        if if_match != "*" and quoted(if_match) != etag:
            raise PreconditionFailed(
                f"{head.key}: ETag does not match", code="PreconditionFailed", status=412
            )
    elif (
        if_unmodified_since is not None and when is not None and when > as_utc(if_unmodified_since)
    ):
        raise PreconditionFailed(f"{head.key}: modified", code="PreconditionFailed", status=412)
    if if_none_match is not None:
        return if_none_match == "*" or quoted(if_none_match) == etag
    if if_modified_since is not None and when is not None:
        return when <= as_utc(if_modified_since)
    return False


def byte_range(text: str | None, size: int, key: str) -> tuple[int, int] | None:
    """The bytes a ``Range`` asks for, as S3 takes it: (start, end exclusive) for
    ``bytes=a-b``, ``bytes=a-``, ``bytes=-n``; None for the whole object, answered 200 (no
    Range, or several ranges: S3 serves no multipart/byteranges). A range that cannot be
    parsed is all of the object's bytes (S3 ignores it); InvalidRange (416) for one outside
    the object."""
    if text is None or (text.strip().startswith("bytes=") and "," in text):
        return None
    match = _RANGE.match(text.strip())
    if not match or match.groups() == ("", ""):
        return 0, size
    first, last = match.groups()
    if first == "":
        n = int(last)
        if n == 0:
            raise InvalidRange(f"{key}: {text}", code="InvalidRange", status=416)
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise InvalidRange(f"{key}: {text}", code="InvalidRange", status=416)
    return start, end


def invalid_tags(tags: list[dict[str, str]]) -> str | None:
    """Why S3 refuses a TagSet (its limits: 10 tags, keys of 1 to 128 characters, values up
    to 256, each key once), or None. Checked before an object is stored, so that the store's
    refusal of the tags cannot come after the object is there."""
    keys = [t["Key"] for t in tags]
    if (
        len(tags) > 10
        or len(set(keys)) != len(keys)
        or any(not 0 < len(k) <= 128 for k in keys)
        or any(len(t["Value"]) > 256 for t in tags)
    ):
        return "The Tag value you have provided is invalid"
    return None


def tagging(tags: list[dict[str, str]]) -> str:
    """The ``Tagging`` string (URL-encoded ``a=1&b=2``) of a TagSet."""
    return urlencode([(t["Key"], t["Value"]) for t in tags])


def tag_set(text: str) -> list[dict[str, str]]:
    """S3's TagSet for a ``Tagging`` string (``a=1&b=2``, URL-encoded)."""
    return [{"Key": k, "Value": v} for k, v in parse_qsl(text, keep_blank_values=True)]


def copy_source(source: str | Mapping[str, str]) -> tuple[str, str]:
    """The bucket and key of a ``CopySource`` (``"bucket/key"``, URL-encoded, or a mapping);
    a version is refused."""
    if isinstance(source, Mapping):
        if "VersionId" in source:
            raise NotSupportedError("CopyObject", "CopySource.VersionId")
        return source["Bucket"], source["Key"]
    text = unquote(source.lstrip("/"))
    if "?versionId=" in text:
        raise NotSupportedError("CopyObject", "CopySource versionId")
    bucket, _, key = text.partition("/")
    return bucket, key


def url_encode(name: str) -> str:
    """A key name as S3 encodes it for ``EncodingType=url``: UTF-8 percent-encoding with
    spaces as ``+`` and ``/`` kept (botocore decodes it with ``unquote_plus``)."""
    return quote_plus(name, safe="/")


#: S3's own write options the client takes (PutObject's, CopyObject's, upload ExtraArgs), by
#: the field of :class:`~deltaglider.storage.base.WriteOptions` each fills.
WRITE_OPTIONS: Final = {
    "ServerSideEncryption": "sse",
    "SSEKMSKeyId": "sse_kms_key_id",
    "StorageClass": "storage_class",
    "ACL": "acl",
    "CacheControl": "cache_control",
    "ContentEncoding": "content_encoding",
}


def write_options(params: dict[str, Any]) -> WriteOptions | None:
    """Takes S3's write options out of ``params`` (the rest is left for the caller to check):
    the :class:`~deltaglider.storage.base.WriteOptions` they make, None if none was given."""
    given = {
        WRITE_OPTIONS[name]: params.pop(name) for name in list(params) if name in WRITE_OPTIONS
    }
    given = {k: v for k, v in given.items() if v is not None}
    return WriteOptions(**given) if given else None


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty. ValueError for anything
    else (the simple API's URLs)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, key
