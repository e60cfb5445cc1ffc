"""deltaglider: versioned artifacts in S3-compatible storage as binary deltas, byte-exact.

The names a program imports from here are the original DeltaGlider's (6.x) as well as ours:
``create_client`` and ``DeltaGliderClient``; the simple API's results (``UploadSummary``,
``VerifyResult``, ``DownloadedFile``, ``CompressionEstimate``, ``ObjectInfo``,
``ListObjectsResponse``: :mod:`deltaglider.models`); ``BucketStats``
(:mod:`deltaglider.stats`); and the response types (``PutObjectResponse``...:
:mod:`deltaglider.types`). Each is imported when first asked for: ``import deltaglider`` stays
cheap (the client pulls in boto3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

_WHERE = {
    "DeltaGliderClient": "client",
    "create_client": "client",
    "BucketStats": "stats",
    "CompressionEstimate": "models",
    "DownloadedFile": "models",
    "ListObjectsResponse": "models",
    "ObjectInfo": "models",
    "UploadSummary": "models",
    "VerifyResult": "models",
    "CopyObjectResponse": "types",
    "CreateBucketResponse": "types",
    "DeleteObjectResponse": "types",
    "DeleteObjectsResponse": "types",
    "GetObjectResponse": "types",
    "HeadObjectResponse": "types",
    "ListBucketsResponse": "types",
    "ListObjectsV2Response": "types",
    "PutObjectResponse": "types",
    "S3Object": "types",
}

__all__ = [
    "BucketStats",
    "CompressionEstimate",
    "CopyObjectResponse",
    "CreateBucketResponse",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeltaGliderClient",
    "DownloadedFile",
    "GetObjectResponse",
    "HeadObjectResponse",
    "ListBucketsResponse",
    "ListObjectsResponse",
    "ListObjectsV2Response",
    "ObjectInfo",
    "PutObjectResponse",
    "S3Object",
    "UploadSummary",
    "VerifyResult",
    "__version__",
    "create_client",
]

if TYPE_CHECKING:
    from .client import DeltaGliderClient, create_client
    from .models import (
        CompressionEstimate,
        DownloadedFile,
        ListObjectsResponse,
        ObjectInfo,
        UploadSummary,
        VerifyResult,
    )
    from .stats import BucketStats
    from .types import (
        CopyObjectResponse,
        CreateBucketResponse,
        DeleteObjectResponse,
        DeleteObjectsResponse,
        GetObjectResponse,
        HeadObjectResponse,
        ListBucketsResponse,
        ListObjectsV2Response,
        PutObjectResponse,
        S3Object,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'deltaglider' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
