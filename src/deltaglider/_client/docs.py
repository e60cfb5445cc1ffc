"""The documented differences from boto3, kept as data: :data:`DIFFERENCES` (response fields;
the parity suite lets exactly these differ) and :data:`BEHAVIOURS` (behaviour), rendered by
:func:`differences_markdown` as docs/sdk.md's "Differences from boto3" (a test keeps the two in
step). Re-exported by :mod:`deltaglider.client`, where users find them.
"""

from __future__ import annotations

__all__ = ["BEHAVIOURS", "DIFFERENCES", "differences_markdown"]

#: What differs from boto3 in response fields, by design: the parity suite lets exactly these
#: differ (its HONOURED says how). With :data:`BEHAVIOURS`, every difference from boto3;
#: docs/sdk.md's "Differences from boto3" is :func:`differences_markdown`, checked by a test.
DIFFERENCES: dict[str, str] = {
    "ETag": "the ETag of the stored representation (a delta's own ETag for a delta), not of the "
    "logical bytes; stable while the object is unchanged, so IfMatch/IfNoneMatch work with it",
    "VersionId": "versioning is not supported: no VersionId in responses",
    "Checksum*": "no ChecksumCRC32/ChecksumSHA256 fields: integrity is the sha256 deltaglider "
    "records and verifies on every read",
    "ServerSideEncryption": "not echoed (the store's default encryption applies)",
    "StorageClass": "always STANDARD in listings",
    "Owner": "not returned in listings (FetchOwner is refused)",
    "ResponseMetadata": "for object operations: HTTPStatusCode, HTTPHeaders (empty), RequestId "
    "(empty), RetryAttempts (0); not the store's raw headers",
    "get_object Body": "a deltaglider StreamingBody: read/iter_chunks/iter_lines/close/context "
    "manager as botocore's; it raises IntegrityError at the end if the bytes are not the ones "
    "stored",
    "TagCount": "get_object/head_object do not return TagCount (it would cost a request per "
    "call); get_object_tagging returns the tags",
    "ContentType": "an object put_object stores (or copy_object with MetadataDirective "
    "REPLACE) without a ContentType is binary/octet-stream, S3's default, also on servers that "
    "guess a type from the bytes or the name instead (SeaweedFS)",
    "Error details": "an error's Error entry has Code, Message and, where S3 names them, Key "
    "and BucketName; not a server's other elements (Resource, Condition, RangeRequested...)",
    "DeltaGliderInfo": "an extra key in put_object, get_object, head_object and copy_object "
    "responses: IsDelta, OriginalSize, StoredSize, Savings, ReferenceKey, PhysicalKey, and the "
    "original DeltaGlider's names of the same figures (OriginalSizeMB, StoredSizeMB, "
    "SavingsPercent, DeltaRatio, CompressionRatio, StoredAs; Operation after a write); in "
    "delete_object responses: Deleted (whether there was an object)",
    "list_objects extras": "list_objects (v1) answers the original DeltaGlider's fields too: "
    "KeyCount, NextContinuationToken (when truncated), ContinuationToken and StartAfter (when "
    "given) and a Metadata entry per object (deltaglider-is-delta, deltaglider-original-size, "
    "deltaglider-compression-ratio, deltaglider-reference-key)",
}

#: What differs from boto3 in behaviour (not a response field), by design.
BEHAVIOURS: dict[str, str] = {
    "Unknown operations": "an operation boto3's S3 client has and this one does not raises "
    "NotSupportedError naming it (select_object_content, versioning, the multipart upload "
    "calls: the client does multipart itself); an attribute that is no S3 operation raises "
    "AttributeError, and is a mypy error",
    "Parameters": "a parameter the client cannot honour raises NotSupportedError naming the "
    "operation and the parameter (VersionId, SSE-C keys, FetchOwner, ...); none is ignored",
    "Parameter validation": "object and listing calls check their parameters as boto3 does "
    "before anything is sent (botocore's ParamValidationError, same message): a wrong type, a "
    "missing required parameter, or None given as a value (ContinuationToken=None is refused, "
    "never taken for the first page)",
    "Bucket creation and deletion": "idempotent, as the original DeltaGlider's: creating a "
    "bucket you own already succeeds (boto3: BucketAlreadyOwnedByYou; S3 itself succeeds in "
    "us-east-1), deleting one that is not there succeeds with 204 (boto3: NoSuchBucket); a "
    "program that catches those errors runs the same. A bucket another owner has still raises "
    "BucketAlreadyExists (the original answered success, and the program failed later)",
    "Error classes": "a ClientError for a missing object or bucket (NoSuchKey, NoSuchBucket, "
    "404) is also a FileNotFoundError, one for AccessDenied (403) a PermissionError: what the "
    "original DeltaGlider raised, so programs written for it or for boto3 catch them alike "
    "(errors boto3 raises itself, in the calls passed to it, are boto3's only)",
    "Delta names": "the physical name of a delta (key.delta, which the original DeltaGlider "
    "prints after an upload) names its object in head_object, get_object, delete_object and "
    "the simple API, when no object has that name itself; S3 would answer NoSuchKey",
    "generate_presigned_post": "boto3's call: what is uploaded through the form lands as a "
    "plain object (readable by this client and any tool, but not a delta); S3 only",
    "Keys": "a key under .deltaglider/ (deltaglider's own), ending in '/' or longer than 1024 "
    "bytes is refused with ClientError InvalidArgument (put_object, copy_object; an Errors "
    "entry in delete_objects); S3 stores the first two and says KeyTooLongError for the third",
    "put_object ContentLength": "a ContentLength other than the body's length raises ClientError "
    "IncompleteBody (400) before anything is stored; boto3 sends the header as given, so "
    "the server reads a truncated body and the connection's next request fails, or waits for "
    "bytes that never come",
    "put_object Tagging": "Tagging is checked before the object is stored: S3's limits (10 "
    "tags, keys 1-128 characters, values up to 256, each key once) give ClientError InvalidTag "
    "(SeaweedFS itself stores more tags, and longer ones, through put_object); the tags are "
    "then written with the object, in the same request. copy_object sets them after the copy: "
    "if that fails, the copy is removed and the error raised (an object the copy replaced is "
    "then gone too: S3 would have kept it)",
    "EncodingType": "with EncodingType='url' given by the caller, listings encode key names as "
    "S3 does (UTF-8 percent-encoding, spaces as '+', '/' kept) in Key, CommonPrefixes, "
    "Delimiter and, for list_objects_v2, Prefix and StartAfter, for list_objects, Marker and "
    "NextMarker: the fields botocore decodes when it asks for the encoding itself. SeaweedFS "
    "encodes spaces before the last '/' as %20 and leaves Prefix, Delimiter and markers plain; "
    "a value other than 'url' is ClientError InvalidArgument",
    "head_object Range": "Range on head_object is answered as S3 answers it (206, the range's "
    "ContentLength and ContentRange; several ranges: the whole object, 200); SeaweedFS "
    "itself ignores it",
    "Transfers ExtraArgs": "upload_file/upload_fileobj take ExtraArgs Metadata, ContentType and "
    "the write options below only, download_file/download_fileobj none: any other key raises "
    "NotSupportedError naming it (a key boto3 rejects too is also a ValueError, as boto3's)",
    "Write options": "ServerSideEncryption (AES256, aws:kms with SSEKMSKeyId), StorageClass, "
    "ACL, CacheControl and ContentEncoding (put_object, copy_object, upload ExtraArgs) apply to "
    "every object the key maps to: the delta or direct object and a reference the write "
    "creates (with its backup copy; never an archive class, GLACIER or DEEP_ARCHIVE: a reference "
    "must stay readable for its folder's deltas, so it stays STANDARD); a reference that exists "
    "already keeps its own. A local "
    "store refuses them (NotSupportedError) before anything is stored",
    "TransferConfig": "the engine transfers with the client's own settings "
    "(deltaglider.config.Config). A TransferConfig field may be left unset, or set to: "
    "multipart_threshold, multipart_chunksize the client's multipart_threshold, "
    "multipart_chunksize; max_concurrency its max_workers; use_threads True; "
    "preferred_transfer_client 'auto' or 'classic'; num_download_attempts, max_io_queue, "
    "io_chunksize, max_bandwidth boto3's default. Anything else raises NotSupportedError "
    "naming Config.<field>",
    "download_fileobj": "writes the bytes as they are rebuilt and raises IntegrityError at the "
    "end if they are not the ones stored (download_file writes a temporary file and renames it "
    "only after the check)",
    "generate_presigned_url": "works for get_object and head_object only (a presigned upload "
    "would bypass delta storage: NotSupportedError); it contacts the store (a HEAD: a missing "
    "bucket raises NoSuchBucket at once; a key with no object is signed as boto3 signs it); "
    "for a delta it writes a "
    "verified temporary copy under .deltaglider/tmp/ that records its expiry (IfMatch, "
    "IfNoneMatch, IfModifiedSince, IfUnmodifiedSince, PartNumber and SSE-C parameters are "
    "refused for a delta), and purge_temp_files(Bucket) removes expired copies (a copy without "
    "an expiry counts as expired after 7 days, the longest a SigV4 URL lives); the URL's "
    "answer comes from the store as is, so it shows deltaglider's own x-amz-meta-dg-* headers "
    "next to the user's metadata",
    "delete_bucket": "a bucket that lists empty but still holds deltaglider's own objects "
    "(.deltaglider/, unused reference.bin) has them removed first, then is deleted; with user "
    "objects it fails with BucketNotEmpty and nothing is removed",
    "Local store": "over a local store (file://): ACLs, tagging (put_object Tagging too, "
    "before anything is stored) and presigned URLs raise NotSupportedError; Owner in "
    "list_buckets is the local user",
}


def differences_markdown() -> str:
    """docs/sdk.md's "Differences from boto3" section body: :data:`DIFFERENCES` as a table,
    :data:`BEHAVIOURS` as a list (a test checks the doc against it)."""
    lines = [
        "All of them, in one place: `deltaglider.client.DIFFERENCES` (response fields; the parity",
        "suite `tests/client/test_parity.py` lets exactly these differ) and",
        "`deltaglider.client.BEHAVIOURS` (behaviour), rendered here by",
        "`deltaglider.client.differences_markdown()` (a test checks that they agree).",
        "",
        "| field | deltaglider |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in DIFFERENCES.items()),
        "",
        "| behaviour | deltaglider |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in BEHAVIOURS.items()),
    ]
    return "\n".join(lines) + "\n"
