"""Type names for the client's responses, as ``TypedDict``s: boto3's S3 response shapes (the
fields this client answers) plus the ``DeltaGliderInfo`` entry.

The original DeltaGlider exported these names from its package (``from deltaglider import
PutObjectResponse``); programs that annotate with them keep type-checking. Every field is
optional to the type checker (``total=False``): S3 leaves many out, and so does this client.
At run time a response is a plain ``dict``. Importing this module does not import boto3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

__all__ = [
    "Bucket",
    "CommonPrefix",
    "CopyObjectResponse",
    "CreateBucketResponse",
    "DeleteError",
    "DeleteObjectResponse",
    "DeleteObjectsResponse",
    "DeletedObject",
    "DeltaGliderInfo",
    "GetObjectResponse",
    "HeadObjectResponse",
    "ListBucketsResponse",
    "ListObjectsV2Response",
    "PutObjectResponse",
    "ResponseMetadata",
    "S3Object",
]


class ResponseMetadata(TypedDict, total=False):
    RequestId: str
    HostId: str
    HTTPStatusCode: int
    HTTPHeaders: dict[str, str]
    RetryAttempts: int


class DeltaGliderInfo(TypedDict, total=False):
    """How an object is stored (see docs/sdk.md): ours, then the original's names."""

    IsDelta: bool
    OriginalSize: int
    StoredSize: int
    Savings: float
    ReferenceKey: str | None
    PhysicalKey: str
    OriginalSizeMB: float
    StoredSizeMB: float
    SavingsPercent: float
    DeltaRatio: float
    CompressionRatio: float
    StoredAs: str | None
    Operation: str
    Deleted: bool


class S3Object(TypedDict, total=False):
    """An entry of a listing's ``Contents``."""

    Key: str
    Size: int
    LastModified: datetime
    ETag: str
    StorageClass: str
    Owner: dict[str, str]
    Metadata: dict[str, str]


class CommonPrefix(TypedDict, total=False):
    Prefix: str


class ListObjectsV2Response(TypedDict, total=False):
    Contents: list[S3Object]
    Name: str
    Prefix: str
    Delimiter: str
    MaxKeys: int
    CommonPrefixes: list[CommonPrefix]
    EncodingType: str
    KeyCount: int
    ContinuationToken: str
    NextContinuationToken: str
    StartAfter: str
    IsTruncated: bool
    ResponseMetadata: ResponseMetadata


class PutObjectResponse(TypedDict, total=False):
    ETag: str
    DeltaGliderInfo: DeltaGliderInfo
    ResponseMetadata: ResponseMetadata


class HeadObjectResponse(TypedDict, total=False):
    ContentLength: int
    ContentRange: str
    ContentType: str
    AcceptRanges: str
    ETag: str
    LastModified: datetime
    Metadata: dict[str, str]
    DeltaGliderInfo: DeltaGliderInfo
    ResponseMetadata: ResponseMetadata


class GetObjectResponse(HeadObjectResponse, total=False):
    """head_object's fields and the ``Body``."""

    Body: Any


class DeleteObjectResponse(TypedDict, total=False):
    DeltaGliderInfo: DeltaGliderInfo
    ResponseMetadata: ResponseMetadata


class DeletedObject(TypedDict, total=False):
    Key: str


class DeleteError(TypedDict, total=False):
    Key: str
    Code: str
    Message: str


class DeleteObjectsResponse(TypedDict, total=False):
    Deleted: list[DeletedObject]
    Errors: list[DeleteError]
    ResponseMetadata: ResponseMetadata


class Bucket(TypedDict, total=False):
    Name: str
    CreationDate: datetime


class ListBucketsResponse(TypedDict, total=False):
    Buckets: list[Bucket]
    Owner: dict[str, str]
    ResponseMetadata: ResponseMetadata


class CreateBucketResponse(TypedDict, total=False):
    Location: str
    ResponseMetadata: ResponseMetadata


class CopyObjectResponse(TypedDict, total=False):
    CopyObjectResult: dict[str, Any]
    DeltaGliderInfo: DeltaGliderInfo
    ResponseMetadata: ResponseMetadata
