"""The original DeltaGlider's own client calls that boto3 has no counterpart of:
``upload_chunked``, ``estimate_compression``, ``find_similar_files``, ``get_object_info``,
``delete_objects_recursive``, ``generate_presigned_post`` and ``clear_cache``.

Programs written against the original (6.x) call them; each does here what its documentation
promises, measured rather than guessed where that is cheap: ``estimate_compression`` encodes a
sample of the file against the reference it would get instead of assuming 99%, and
``find_similar_files`` ranks a folder's files by how alike their names are (the deltaspace is
the folder: its reference is what a new file is encoded against, whatever it is named).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import format as fmt
from ..models import CompressionEstimate, ObjectInfo, UploadSummary, savings
from .core import ClientCore
from .errors import entry_error
from .params import split_url
from .shapes import metadata_response, quoted

__all__ = ["OriginalMixin"]

#: ``progress_callback(chunk_number, total_chunks, bytes_sent, total_bytes)``.
ChunkCallback = Callable[[int, int, int, int], Any]

#: Extensions of formats whose bytes are already compressed media: versions of them share
#: little byte-for-byte (the original's list).
_MEDIA = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".mp3", ".avi", ".mov"})
_VERSION = re.compile(r"v?\d+(?:\.\d+)*")


def name_similarity(a: str, b: str) -> float:
    """How alike two file names are, from 0 to 1: half for the same extension, half for how
    alike the rest is (difflib's ratio, version numbers ignored, as versions of one artifact
    differ in them)."""
    stem_a, ext_a = os.path.splitext(a)
    stem_b, ext_b = os.path.splitext(b)
    same_ext = 0.5 if ext_a.lower() == ext_b.lower() else 0.0
    bare_a, bare_b = _VERSION.sub("", stem_a), _VERSION.sub("", stem_b)
    rest = difflib.SequenceMatcher(None, bare_a, bare_b).ratio() if bare_a or bare_b else 1.0
    return round(same_ext + 0.5 * rest, 6)


class OriginalMixin(ClientCore):
    """The original DeltaGlider's own calls on :class:`~deltaglider.client.DeltaGliderClient`
    (see the module's notes). ``upload`` is :class:`~deltaglider._client.simple.SimpleMixin`'s."""

    endpoint_url: str | None = None

    def upload_chunked(
        self,
        file_path: str | os.PathLike[str],
        s3_url: str,
        chunk_size: int = 5 * 1024 * 1024,
        progress_callback: ChunkCallback | None = None,
        max_ratio: float | None = None,
    ) -> UploadSummary:
        """Uploads a file (streamed: it is never read whole into memory) reporting progress
        by chunks of ``chunk_size`` bytes: ``progress_callback(chunk_number, total_chunks,
        bytes_sent, total_bytes)``, as each chunk's bytes have been taken, then once more at
        the end. Returns what :meth:`upload` returns."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        total = os.path.getsize(os.fspath(file_path))
        chunks = max(1, -(-total // chunk_size))
        sent = 0
        reported = 0

        def count(increment: int) -> None:
            nonlocal sent, reported
            sent += increment
            while progress_callback is not None and reported < chunks - 1:
                if sent < (reported + 1) * chunk_size:
                    break
                reported += 1
                progress_callback(reported, chunks, reported * chunk_size, total)

        summary: UploadSummary = self.upload(  # type: ignore[attr-defined]
            file_path, s3_url, max_ratio=max_ratio, callback=count
        )
        if progress_callback is not None:
            progress_callback(chunks, chunks, total, total)
        return summary

    def estimate_compression(
        self,
        file_path: str | os.PathLike[str],
        bucket: str,
        prefix: str = "",
        sample_size: int = 1024 * 1024,
    ) -> CompressionEstimate:
        """What storing the file under ``prefix`` would cost, without storing it.

        A file that would not be stored as a delta (its type is not a delta candidate, by
        the client's configuration, or it is compressed media) costs its size. In a folder
        with a reference, the first ``sample_size`` bytes of the file are encoded against it
        (the reference is read as an upload would read it, and kept in the cache) and the
        ratio measured is the estimate; ``confidence`` grows with the part of the file the
        sample covers (0.95 when it is all of it). In a folder without one, the file would
        become the reference: stored whole (``estimated_ratio`` 0.0, but ``should_use_delta``
        true: the next versions are the deltas)."""
        path = Path(os.fspath(file_path))
        size = path.stat().st_size
        name = path.name
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        key = folder + name
        if path.suffix.lower() in _MEDIA or not self._store.config.is_delta_candidate(key):
            return CompressionEstimate(size, size, 0.0, 0.95, None, False)
        with open(path, "rb") as fh:
            sample = fh.read(max(1, sample_size))
        with self._s3("HeadObject", bucket=bucket):
            measured = self._store.measure_delta(bucket, key, sample) if sample else None
        if measured is None:
            return CompressionEstimate(size, size, 0.0, 0.9, None, True)
        ref_key, delta = measured
        ratio = min(1.0, delta / len(sample))
        covered = len(sample) / size if size else 1.0
        saved = max(0.0, 1.0 - ratio)
        return CompressionEstimate(
            original_size=size,
            estimated_compressed_size=round(size * ratio),
            estimated_ratio=round(saved, 6),
            confidence=round(0.5 + 0.45 * covered, 3),
            recommended_reference=ref_key,
            should_use_delta=ratio <= self._store.config.max_ratio,
        )

    def find_similar_files(
        self, bucket: str, prefix: str, filename: str, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The objects of the folder ``prefix`` whose names are most like ``filename``
        (:func:`name_similarity` above 0.5), most alike first: ``Key``, ``Size`` (logical, for
        deltas too), ``Similarity`` (0 to 1) and ``LastModified``. The folder's reference is
        what a new file there is encoded against, whichever of them is most alike: this ranks
        names, for programs that choose by them."""
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        scored = []
        with self._s3("ListObjectsV2", bucket=bucket):
            for page in self._store.iter_pages(bucket, prefix=folder, delimiter="/"):
                for obj in page.objects:
                    score = name_similarity(filename, fmt.basename(obj.key))
                    if score > 0.5:
                        scored.append((score, obj))
            scored.sort(key=lambda pair: (-pair[0], pair[1].key))
            chosen = scored[: max(0, limit)]
            # The logical sizes of the deltas among the few returned: a HEAD each.
            sizes = {
                o.key: o.size
                for o in self._store.complete(bucket, [o for _, o in chosen if o.size is None])
            }
        return [
            {
                "Key": obj.key,
                "Size": obj.size if obj.size is not None else sizes.get(obj.key, obj.stored_size),
                "Similarity": score,
                "LastModified": obj.last_modified,
            }
            for score, obj in chosen
        ]

    def get_object_info(self, s3_url: str) -> ObjectInfo:
        """An object and what storing it costs: ``size`` and ``compressed_size`` (stored
        bytes), ``original_size``, ``compression_ratio`` (the fraction saved), ``is_delta``,
        ``reference_key``, ``delta_chain_length`` (1 for a delta: one reference away from its
        bytes). The URL may name the object or its delta's physical name. A missing object
        raises the ClientError ``404`` of a ``HeadObject``."""
        bucket, key = split_url(s3_url)
        with self._s3("HeadObject", bucket=bucket, key=key):
            head = self._store.head(bucket, key)
            # A .delta the engine does not read as one (another tool's, or the original's
            # with part of its metadata): its recorded size, from its own metadata (a HEAD).
            odd = not head.is_delta and fmt.physical(head.physical_key).kind == "delta"
            raw = self.storage.head(bucket, head.physical_key) if odd else None
        meta = fmt.parse_metadata(raw.metadata or {}, raw.key) if raw is not None else None
        is_delta = head.is_delta or odd
        stored = head.stored_size
        original = head.size if meta is None else (meta.file_size or stored)
        return ObjectInfo(
            key=head.key,
            size=stored,
            last_modified=fmt.format_time(head.last_modified) if head.last_modified else "",
            etag=quoted(head.etag),
            original_size=original,
            compressed_size=stored,
            compression_ratio=savings(stored, original or 0),
            is_delta=is_delta,
            reference_key=head.ref_key or (meta.ref_key if meta is not None else None),
            delta_chain_length=1 if is_delta else 0,
        )

    def delete_objects_recursive(self, Bucket: str, Prefix: str, **other: Any) -> dict[str, Any]:
        """Deletes every object whose key starts with ``Prefix`` (S3's prefix: ``v1`` is also
        the start of ``v10/...``; end it with ``/`` for a folder), references with the last
        delta of their folder. A delta's physical name (``key.delta``) deletes its object.
        The answer counts them: ``DeletedCount``, ``FailedCount``, ``Errors`` (``Key``,
        ``Code``, ``Message``) and ``DeltaGliderInfo`` (``DeltasDeleted``,
        ``DirectDeleted``). An empty ``Prefix`` is refused: it would be the whole bucket."""
        self._refuse("DeleteObjectsRecursive", other, set())
        if not Prefix:
            raise ValueError("Prefix must not be empty (it would delete the whole bucket)")
        with self._s3("DeleteObjects", bucket=Bucket):
            listed = list(self._store.iter_objects(Bucket, prefix=Prefix))
            failures = self._store.delete_many(Bucket, [o.key for o in listed])
            aliased = 0
            if not listed and Prefix.endswith(fmt.DELTA_SUFFIX):
                aliased = int(self._store.delete(Bucket, Prefix))
        deleted = [o for o in listed if o.key not in failures]
        response: dict[str, Any] = {
            "DeletedCount": len(deleted) + aliased,
            "FailedCount": len(failures),
            "DeltaGliderInfo": {
                "DeltasDeleted": sum(1 for o in deleted if o.is_delta) + aliased,
                "DirectDeleted": sum(1 for o in deleted if not o.is_delta),
            },
            "ResponseMetadata": metadata_response(),
        }
        if failures:
            errors = []
            for o in listed:
                if o.key in failures:
                    code, message = entry_error(failures[o.key])
                    errors.append({"Key": o.key, "Code": code, "Message": message})
            response["Errors"] = errors
        return response

    def generate_presigned_post(
        self,
        Bucket: str,
        Key: str,
        Fields: Mapping[str, Any] | None = None,
        Conditions: list[Any] | None = None,
        ExpiresIn: int = 3600,
    ) -> dict[str, Any]:
        """boto3's presigned POST (``url`` and ``fields`` for an HTML form). What a browser
        uploads through it lands in the store as it is, a plain object: readable by this
        client and every tool, but not stored as a delta (S3 alone receives the upload).
        S3 only (NotSupportedError on a local store)."""
        boto = self._require_boto("generate_presigned_post")
        fmt.check_key(Key)
        response: dict[str, Any] = boto.generate_presigned_post(
            Bucket=Bucket,
            Key=fmt.direct_key(Key),
            Fields=dict(Fields) if Fields is not None else None,
            Conditions=list(Conditions) if Conditions is not None else None,
            ExpiresIn=ExpiresIn,
        )
        return response

    def clear_cache(self) -> None:
        """Forgets every reference this client's engine knows and empties its reference
        cache (a shared filesystem cache: for the processes sharing it too). For long-running
        programs that want the memory back, or fresh reads; nothing stored changes."""
        self._store.clear_cache()
