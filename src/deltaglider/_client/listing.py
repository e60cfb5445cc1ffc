"""The client's listings: ``list_objects_v2``, ``list_objects`` and their paginators, over the
engine's logical listing (logical sizes; references and deltaglider's own objects hidden).

A continuation token is the engine's; ``StartAfter`` and ``Marker`` become one through
:func:`deltaglider.engine.after_token`. With ``EncodingType="url"`` given by the caller, key
names are URL-encoded in the answer as S3 encodes them (boto3 asks for the encoding on its own
too, and then decodes the answer: so does this client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import botocore.exceptions

from ..engine import ListResult, ObjectSummary, after_token
from ..errors import NotSupportedError
from ..models import savings
from .botocore import Paginator, check_params, pageable, validated
from .core import ClientCore
from .params import url_encode
from .shapes import metadata_response, quoted

__all__ = ["ListingMixin"]


def _same(name: str) -> str:
    return name


def _contents(page: ListResult, encode: Callable[[str], str]) -> list[dict[str, Any]]:
    return [
        {
            "Key": encode(o.key),
            "LastModified": o.last_modified,
            "ETag": quoted(o.etag),
            "Size": o.size if o.size is not None else o.stored_size,
            "StorageClass": "STANDARD",
        }
        for o in page.objects
    ]


def _original_metadata(obj: ObjectSummary, own: bool) -> dict[str, str]:
    """The original DeltaGlider's ``Metadata`` of a listed object (its ``deltaglider-*``
    fields) and, with ``own``, the object's own metadata."""
    size = obj.size if obj.size is not None else obj.stored_size
    fields = dict(obj.metadata or {}) if own else {}
    fields.update(
        {
            "deltaglider-is-delta": str(obj.is_delta).lower(),
            "deltaglider-original-size": str(size),
            "deltaglider-compression-ratio": str(
                savings(obj.stored_size, size) if obj.is_delta else 0.0
            ),
        }
    )
    if obj.is_delta and obj.ref_key:
        fields["deltaglider-reference-key"] = obj.ref_key
    return fields


def _listing(
    page: ListResult,
    bucket: str,
    prefix: str,
    delimiter: str,
    max_keys: int,
    encode: Callable[[str], str],
    prefix_encoded: bool,
) -> dict[str, Any]:
    """What both listing versions answer for a page. ``encode`` is the identity, or, when the
    caller asked for ``EncodingType="url"`` itself, S3's URL encoding of key names."""
    response: dict[str, Any] = {
        "IsTruncated": page.next_token is not None,
        "Name": bucket,
        "Prefix": encode(prefix) if prefix_encoded else prefix,
        "MaxKeys": max_keys,
        "EncodingType": "url",
        "ResponseMetadata": metadata_response(),
    }
    contents = _contents(page, encode)
    if contents:
        response["Contents"] = contents
    if delimiter:
        response["Delimiter"] = encode(delimiter)
    if page.prefixes:
        response["CommonPrefixes"] = [{"Prefix": encode(p)} for p in page.prefixes]
    return response


class ListingMixin(ClientCore):
    """Listings and paginators of :class:`~deltaglider.client.DeltaGliderClient`."""

    def _page(
        self,
        operation: str,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        token: str | None,
        encoding_type: str | None,
    ) -> ListResult:
        if max_keys < 0:
            raise self._error(
                operation, "InvalidArgument",
                "Argument maxKeys must be an integer between 0 and 2147483647", 400,
                bucket=bucket,
            )  # fmt: skip
        if encoding_type is not None and encoding_type != "url":
            raise self._error(
                operation, "InvalidArgument", "Invalid Encoding Method specified in Request",
                400, bucket=bucket,
            )  # fmt: skip
        with self._s3(operation, bucket=bucket):
            if max_keys == 0:
                # The engine lists no empty page: only whether the bucket is there is asked.
                self.storage.head_bucket(bucket)
                return ListResult()
            return self._store.list_objects(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                token=token,
                max_keys=max_keys,
                logical_sizes=True,
            )

    @validated("ListObjectsV2")
    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
        StartAfter: str | None = None,
        EncodingType: str | None = None,
        FetchOwner: bool | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        """One page of the logical listing (logical sizes; references and deltaglider's own
        objects hidden). With ``EncodingType="url"`` the key names in the answer are
        URL-encoded (``Key``, ``CommonPrefixes``, ``Prefix``, ``Delimiter``, ``StartAfter``),
        as S3 answers it and boto3 hands it on; without, they are plain."""
        self._refuse("ListObjectsV2", other, set())
        if FetchOwner:
            raise NotSupportedError("ListObjectsV2", "FetchOwner")
        token = ContinuationToken
        if token is None and StartAfter:
            token = after_token(StartAfter)
        page = self._page("ListObjectsV2", Bucket, Prefix, Delimiter, MaxKeys, token, EncodingType)
        encode = url_encode if EncodingType == "url" else _same
        response = _listing(page, Bucket, Prefix, Delimiter, MaxKeys, encode, True)
        response["KeyCount"] = len(page.objects) + len(page.prefixes)
        if ContinuationToken is not None:
            response["ContinuationToken"] = ContinuationToken
        if StartAfter:
            response["StartAfter"] = encode(StartAfter)
        if page.next_token is not None:
            response["NextContinuationToken"] = page.next_token
        return response

    @validated("ListObjects")
    def list_objects(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        Delimiter: str = "",
        MaxKeys: int = 1000,
        Marker: str = "",
        EncodingType: str | None = None,
        ContinuationToken: str = "",
        StartAfter: str = "",
        FetchMetadata: bool = False,
        **other: Any,
    ) -> dict[str, Any]:
        """ListObjects (v1): ``Marker`` is the last key seen, as S3 takes it. ``EncodingType``
        as for :meth:`list_objects_v2` (encoded: ``Key``, ``CommonPrefixes``, ``Delimiter``,
        ``Marker``, ``NextMarker``).

        The original DeltaGlider's parameters and fields too: ``ContinuationToken`` (from a
        page's ``NextContinuationToken``; it wins over ``Marker``) and ``StartAfter``, as for
        :meth:`list_objects_v2`; every page has ``KeyCount`` and, when truncated,
        ``NextContinuationToken``; every object a ``Metadata`` entry of the original's
        ``deltaglider-*`` fields (``is-delta``, ``original-size``, ``compression-ratio``,
        ``reference-key`` for a delta). ``FetchMetadata=True`` adds each object's own metadata
        (a HEAD of each object that is not a delta; deltas are HEADed for their sizes anyway).
        Given as None, ``ContinuationToken`` and ``StartAfter`` are refused as boto3 refuses
        None (ParamValidationError), never taken for "from the start"."""
        self._refuse("ListObjects", other, set())
        check_params(
            "ListObjectsV2",
            {"Bucket": Bucket, "ContinuationToken": ContinuationToken, "StartAfter": StartAfter},
        )
        token: str | None = ContinuationToken or None
        if token is None and (StartAfter or Marker):
            token = after_token(StartAfter or Marker)
        page = self._page("ListObjects", Bucket, Prefix, Delimiter, MaxKeys, token, EncodingType)
        if FetchMetadata and page.objects:
            with self._s3("ListObjects", bucket=Bucket):
                page = replace(page, objects=self._store.complete(Bucket, list(page.objects)))
        encode = url_encode if EncodingType == "url" else _same
        response = _listing(page, Bucket, Prefix, Delimiter, MaxKeys, encode, False)
        response["Marker"] = encode(Marker)
        for entry, obj in zip(response.get("Contents", []), page.objects, strict=True):
            entry["Metadata"] = _original_metadata(obj, FetchMetadata)
        response["KeyCount"] = len(page.objects) + len(page.prefixes)
        if ContinuationToken:
            response["ContinuationToken"] = ContinuationToken
        if StartAfter:
            response["StartAfter"] = encode(StartAfter)
        if page.next_token is not None:
            response["NextContinuationToken"] = page.next_token
            # The last key or prefix of the page (AWS gives it only with a delimiter; S3 servers
            # such as SeaweedFS always do; a program may use it or the last key either way).
            response["NextMarker"] = encode(max([o.key for o in page.objects] + page.prefixes))
        return response

    def get_paginator(self, operation_name: str) -> Paginator:
        """``list_objects_v2`` and ``list_objects`` paginators, as boto3's."""
        if operation_name == "list_objects_v2":
            return Paginator(self.list_objects_v2, "ListObjectsV2")
        if operation_name == "list_objects":
            return Paginator(self.list_objects, "ListObjects")
        if not pageable(operation_name):
            raise botocore.exceptions.OperationNotPageableError(operation_name=operation_name)
        raise NotSupportedError(f"get_paginator({operation_name!r})")

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in ("list_objects_v2", "list_objects")
