"""The original DeltaGlider's SDK (6.x) on this client, beside boto3's: what its README,
docs/sdk/api.md and BOTO3_COMPATIBILITY.md document, against SeaweedFS and the local store.
(The original's own public-surface tests run in tests/compat/.)"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from client_conftest import Target, memory_config, tamper
from data import noise, release

import deltaglider
from deltaglider import create_client
from deltaglider import format as fmt
from deltaglider.client import NotSupportedError
from deltaglider.models import CompressionEstimate, DownloadedFile, ObjectInfo, UploadSummary


def _files(tmp_path: Path, *versions: int) -> list[Path]:
    paths = []
    for v in versions:
        p = tmp_path / f"app-{v}.zip"
        p.write_bytes(release(v))
        paths.append(p)
    return paths


# --- verify: false when the object is not valid ------------------------------------------------


def test_verify_is_false_for_a_damaged_delta_and_true_for_a_good_one(
    target: Target, tmp_path: Path
) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2, 3):
        client.upload(p, target.url("rel/"))
    good = client.verify(target.url("rel/app-2.zip"))
    assert bool(good) is True and good.valid and good["Valid"]
    assert good.expected_sha256 == good.actual_sha256 == good["Sha256"]
    if not client.verify(target.url("rel/app-3.zip")):  # the original's documented idiom
        pytest.fail("a good object read as damaged")
    tamper(client, target.bucket, "rel/app-2.zip.delta", b"\xd6\xc3\xc4\x00 not a delta")
    bad = client.verify(target.url("rel/app-2.zip"))
    assert bool(bad) is False and not bad.valid and bad["Valid"] is False
    assert bad.expected_sha256 == good.expected_sha256 and bad.actual_sha256 != good.actual_sha256
    assert "integrity" in bad.message
    # the physical name the original printed after the upload names the same object
    assert not client.verify(target.url("rel/app-2.zip.delta"))
    assert client.verify(target.url("rel/app-3.zip.delta"))


def test_verify_is_false_when_the_reference_was_damaged(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("r/"))
    assert client.verify(target.url("r/app-2.zip"))
    tamper(client, target.bucket, fmt.reference_key("r"), release(7))
    fresh = target.fresh()  # a cold cache: the warm one still holds the right reference
    try:
        for v in (1, 2):
            result = fresh.verify(target.url(f"r/app-{v}.zip"))
            assert bool(result) is False, result
            assert result["IsDelta"] is True
    finally:
        fresh.close()


# --- upload: the UploadSummary -----------------------------------------------------------------


def test_upload_answers_an_upload_summary(target: Target, tmp_path: Path) -> None:
    client = target.client
    v1, v2 = _files(tmp_path, 1, 2)
    first = client.upload(v1, target.url("rel/"))
    assert isinstance(first, UploadSummary) and isinstance(first, dict)
    # The first file of a folder is stored whole, as its reference: no saving (the original
    # README's "Stored as reference").
    assert first.operation == "create_reference"
    assert (first.bucket, first.key) == (target.bucket, "rel/app-1.zip")
    assert first.is_delta is False and first.delta_ratio == 0.0
    assert first.original_size == first.stored_size == v1.stat().st_size
    assert first.savings_percent == 0.0 and str(first.savings_percent) == "0.0"
    assert first.original_size_mb == pytest.approx(v1.stat().st_size / 2**20)
    info = first["DeltaGliderInfo"]
    assert info["IsDelta"] is False and info["StoredAs"] == "rel/reference.bin"
    assert info["Operation"] == "create_reference" and info["SavingsPercent"] == 0.0
    second = client.upload(v2, target.url("rel/"))
    assert second.operation == "create_delta" and second.is_delta
    assert second.stored_size < second.original_size // 4
    assert second.delta_ratio == pytest.approx(second.stored_size / second.original_size)
    assert second.savings_percent == pytest.approx(100 * (1 - second.delta_ratio))
    assert second.stored_size_mb == pytest.approx(second.stored_size / 2**20)
    info = second["DeltaGliderInfo"]
    assert info["DeltaRatio"] == pytest.approx(second.delta_ratio)
    assert info["StoredSizeMB"] == pytest.approx(second.stored_size_mb)
    assert info["OriginalSizeMB"] == pytest.approx(second.original_size_mb)
    assert info["StoredAs"] == "rel/app-2.zip.delta"
    assert json.loads(json.dumps(second))["Key"] == "rel/app-2.zip"  # still a plain dict
    # max_ratio, the original's fourth positional argument: no delta is that small
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"n" * 1000)
    direct = client.upload(v2, target.url("rel/again.zip"), None, 1e-6)
    assert direct.operation == "upload_direct" and not direct.is_delta
    plain = client.upload(notes, target.url("rel/"))
    assert plain.operation == "upload_direct" and plain.savings_percent == 0.0


def test_upload_tags(target: Target, tmp_path: Path) -> None:
    client = target.client
    (v1,) = _files(tmp_path, 1)
    if target.kind == "local":
        with pytest.raises(NotSupportedError):
            client.upload(v1, target.url("t/"), tags={"kind": "release"})
        return
    client.upload(v1, target.url("t/"), {"kind": "release", "team": "a b"})
    tags = client.get_object_tagging(Bucket=target.bucket, Key="t/app-1.zip")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("kind", "release"), ("team", "a b")]
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        client.upload(v1, target.url("t/x.zip"), tags={f"k{i}": "v" for i in range(11)})
    assert bad.value.response["Error"]["Code"] == "InvalidTag"
    assert "t/x.zip" not in [
        o["Key"] for o in client.list_objects(Bucket=target.bucket)["Contents"]
    ]


def test_upload_chunked_reports_by_chunk(target: Target, tmp_path: Path) -> None:
    client = target.client
    path = tmp_path / "large.bin"
    path.write_bytes(noise(10 * 1024, seed=1))
    calls: list[tuple[int, int, int, int]] = []
    result = client.upload_chunked(
        path,
        target.url("c/large.bin"),
        chunk_size=3 * 1024,
        progress_callback=lambda *a: calls.append(a),
    )
    assert result.original_size == 10 * 1024 and result.key == "c/large.bin"
    assert calls == [
        (1, 4, 3072, 10240),
        (2, 4, 6144, 10240),
        (3, 4, 9216, 10240),
        (4, 4, 10240, 10240),
    ]
    assert client.get_object(Bucket=target.bucket, Key="c/large.bin")["Body"].read() == (
        path.read_bytes()
    )


# --- batches ------------------------------------------------------------------------------------


def test_batches_answer_the_original_results(target: Target, tmp_path: Path) -> None:
    client = target.client
    paths = _files(tmp_path, 1, 2, 3)
    seen: list[tuple[str, int, int]] = []
    results = client.upload_batch(paths, target.url("b/"), None, lambda *a: seen.append(a))
    assert [r.key for r in results] == [f"b/{p.name}" for p in paths]
    assert all(isinstance(r, UploadSummary) and r.original_size > 0 for r in results)
    # as each file is done (in parallel: in the order they finish), counting to the total
    assert sorted(name for name, _, _ in seen) == sorted(p.name for p in paths)
    assert [(i, total) for _, i, total in seen] == [(1, 3), (2, 3), (3, 3)]
    out = tmp_path / "out"
    got: list[tuple[str, int, int]] = []
    urls = [target.url("b/app-1.zip"), target.url("b/app-2.zip.delta")]  # a physical name too
    files = client.download_batch(urls, out, lambda *a: got.append(a))
    assert all(isinstance(f, DownloadedFile) and isinstance(f, Path) for f in files)
    assert [f.name for f in files] == ["app-1.zip", "app-2.zip"]
    for f, v in zip(files, (1, 2), strict=True):
        assert f.exists() and f.read_bytes() == release(v)
        assert f["Key"] == f"b/app-{v}.zip" and "Error" not in f
    assert [i for _, i, _ in got] == [1, 2]
    missing = client.download_batch([target.url("b/none.zip")], out)
    assert missing[0]["Error"]["Code"] == "NoSuchKey" and not missing[0].exists()


# --- stats, estimates, similar files, object info -----------------------------------------------


def test_get_bucket_stats_with_the_original_arguments(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2, 3):
        client.upload(p, target.url("s/"))
    client.put_object(Bucket=target.bucket, Key="s/readme.txt", Body=b"read me")
    stats = client.get_bucket_stats(target.bucket, "detailed")
    assert stats.mode == "detailed" and stats.prefix == ""
    assert (stats.object_count, stats.delta_objects, stats.direct_objects) == (4, 3, 1)
    assert stats.total_size == stats.logical_bytes and stats.compressed_size == stats.stored_bytes
    assert stats.space_saved == stats.total_size - stats.compressed_size > 0
    assert stats.average_compression_ratio == pytest.approx(stats.space_saved / stats.total_size)
    assert stats.object_limit_reached is False
    assert client.get_bucket_stats(target.bucket, "detailed").cache.status == "hit"
    assert client.get_bucket_stats(target.bucket, "detailed", True, True).cache.status == "refresh"
    assert client.get_bucket_stats(target.bucket, "sampled", False).cache.status == "disabled"
    assert client.get_bucket_stats(target.bucket, "s/").prefix == "s/"  # ours: a prefix
    with pytest.raises(ValueError):
        client.get_bucket_stats(target.bucket, mode="exact")  # type: ignore[arg-type]


def test_estimate_compression_measures_against_the_reference(
    target: Target, tmp_path: Path
) -> None:
    client = target.client
    v1, v2 = _files(tmp_path, 1, 2)
    first = client.estimate_compression(v1, target.bucket, "e/")
    assert isinstance(first, CompressionEstimate)
    assert (first.estimated_ratio, first.should_use_delta, first.recommended_reference) == (
        0.0,
        True,
        None,
    )  # it would become the folder's reference, stored whole
    client.upload(v1, target.url("e/"))
    estimate = client.estimate_compression(v2, target.bucket, "e", sample_size=1 << 30)
    stored = client.upload(v2, target.url("e/"))
    assert estimate.recommended_reference == "e/reference.bin" and estimate.should_use_delta
    assert estimate.confidence == 0.95  # the sample was the whole file
    assert estimate.estimated_compressed_size == stored.stored_size  # measured, not guessed
    assert estimate.estimated_ratio == pytest.approx(1 - stored.stored_size / stored.original_size)
    sampled = client.estimate_compression(v2, target.bucket, "e/", sample_size=4096)
    assert 0.5 < sampled.confidence < 0.95
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + b"0" * 1000)
    assert client.estimate_compression(photo, target.bucket, "e/").should_use_delta is False
    text = tmp_path / "notes.txt"
    text.write_bytes(b"x" * 100)
    plain = client.estimate_compression(text, target.bucket, "e/")
    assert (plain.should_use_delta, plain.estimated_ratio) == (False, 0.0)


def test_find_similar_files(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("f/"))
    client.put_object(Bucket=target.bucket, Key="f/readme.txt", Body=b"read me")
    client.put_object(Bucket=target.bucket, Key="f/sub/app-9.zip", Body=b"deeper")
    similar = client.find_similar_files(target.bucket, "f/", "app-3.zip")
    assert [s["Key"] for s in similar] == ["f/app-1.zip", "f/app-2.zip"]
    assert similar[1]["Size"] == len(release(2))  # the logical size of a delta
    assert all(0.5 < s["Similarity"] <= 1 for s in similar)
    assert client.find_similar_files(target.bucket, "f/", "app-3.zip", limit=1)[0]["Key"] == (
        "f/app-1.zip"
    )


def test_get_object_info(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("i/"))
    client.put_object(Bucket=target.bucket, Key="i/readme.txt", Body=b"read me")
    for url in (target.url("i/app-2.zip"), target.url("i/app-2.zip.delta")):
        info = client.get_object_info(url)
        assert isinstance(info, ObjectInfo)
        assert info.key == "i/app-2.zip" and info.is_delta and info.delta_chain_length == 1
        assert info.original_size == len(release(2))
        assert info.size == info.compressed_size < info.original_size // 4
        assert info.compression_ratio == pytest.approx(1 - info.size / info.original_size)
        assert info.reference_key == "i/reference.bin" and info.etag.startswith('"')
    plain = client.get_object_info(target.url("i/readme.txt"))
    assert (plain.is_delta, plain.size, plain.original_size, plain.compression_ratio) == (
        False,
        7,
        7,
        0.0,
    )
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_object_info(target.url("i/none.zip"))


# --- deleting -----------------------------------------------------------------------------------


def test_delete_object_says_whether_there_was_one(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("d/"))
    gone = client.delete_object(Bucket=target.bucket, Key="d/app-2.zip.delta")
    assert gone["DeltaGliderInfo"] == {"Deleted": True}
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 204
    again = client.delete_object(Bucket=target.bucket, Key="d/app-2.zip")
    assert again["DeltaGliderInfo"] == {"Deleted": False}
    assert target.physical_keys("d/") == ["d/app-1.zip.delta", "d/reference.bin"]


def test_delete_objects_recursive(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("x/"))
        client.upload(p, target.url("x2/"))
    client.put_object(Bucket=target.bucket, Key="x/sub/readme.txt", Body=b"r")
    result = client.delete_objects_recursive(Bucket=target.bucket, Prefix="x/")
    assert result["DeletedCount"] == 3 and result["FailedCount"] == 0
    assert result["DeltaGliderInfo"] == {"DeltasDeleted": 2, "DirectDeleted": 1}
    assert target.physical_keys("x/") == []  # the reference went with the last delta
    assert len(target.physical_keys("x2/")) == 3
    one = client.delete_objects_recursive(Bucket=target.bucket, Prefix="x2/app-1.zip.delta")
    assert one["DeletedCount"] == 1
    with pytest.raises(ValueError):
        client.delete_objects_recursive(Bucket=target.bucket, Prefix="")


# --- listing --------------------------------------------------------------------------------------


def test_list_objects_with_the_original_parameters(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("l/"), metadata={"v": p.stem})
    for i in range(3):
        client.put_object(Bucket=target.bucket, Key=f"l/n{i}.txt", Body=b"n" * (i + 1))
    # the original README's pagination loop, unchanged
    keys: list[str] = []
    response = client.list_objects(Bucket=target.bucket, MaxKeys=2)
    pages = 1
    while response.get("IsTruncated"):
        keys += [obj["Key"] for obj in response["Contents"]]
        response = client.list_objects(
            Bucket=target.bucket, MaxKeys=2, ContinuationToken=response.get("NextContinuationToken")
        )
        pages += 1
    keys += [obj["Key"] for obj in response["Contents"]]
    assert keys == ["l/app-1.zip", "l/app-2.zip", "l/n0.txt", "l/n1.txt", "l/n2.txt"]
    assert pages == 3 and response["KeyCount"] == 1
    listed = client.list_objects(Bucket=target.bucket, Prefix="l/app")
    assert listed["KeyCount"] == 2
    meta = listed["Contents"][1]["Metadata"]
    assert meta["deltaglider-is-delta"] == "true"
    assert meta["deltaglider-original-size"] == str(len(release(2)))
    assert meta["deltaglider-reference-key"] == "l/reference.bin"
    assert 0.5 < float(meta["deltaglider-compression-ratio"]) < 1
    fetched = client.list_objects(Bucket=target.bucket, Prefix="l/", FetchMetadata=True)
    assert fetched["Contents"][1]["Metadata"]["v"] == "app-2"
    assert fetched["Contents"][2]["Metadata"]["deltaglider-is-delta"] == "false"
    after = client.list_objects(Bucket=target.bucket, StartAfter="l/n0.txt")
    assert [o["Key"] for o in after["Contents"]] == ["l/n1.txt", "l/n2.txt"]
    # None is refused as boto3 refuses it: never taken for "the first page"
    for method in (client.list_objects, client.list_objects_v2):
        with pytest.raises(botocore.exceptions.ParamValidationError, match="ContinuationToken"):
            method(Bucket=target.bucket, ContinuationToken=None)
    with pytest.raises(botocore.exceptions.ParamValidationError, match="MaxKeys"):
        client.list_objects_v2(Bucket=target.bucket, MaxKeys="2")  # type: ignore[arg-type]
    with pytest.raises(botocore.exceptions.ParamValidationError, match="Key"):
        client.put_object(Bucket=target.bucket, Key=None)  # type: ignore[arg-type]


# --- the client itself ---------------------------------------------------------------------------


def test_create_client_takes_the_original_arguments(tmp_path: Path) -> None:
    root = (tmp_path / "store").as_uri()
    logger = logging.getLogger("deltaglider")
    before = logger.level
    try:
        with create_client(root, "DEBUG", deltaglider_config=memory_config()) as client:
            assert logger.level == logging.DEBUG
            assert client.endpoint_url == root
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            create_client(root, tool_version="deltaglider/0.1.0").close()
        assert any("tool_version" in str(w.message) for w in caught)
        with pytest.raises(TypeError, match="colour"):
            create_client(root, colour="blue")
    finally:
        logger.setLevel(before)


def test_clear_cache_forgets_references(target: Target, tmp_path: Path) -> None:
    client = target.client
    for p in _files(tmp_path, 1, 2):
        client.upload(p, target.url("k/"))
    head = client.store.head(target.bucket, "k/app-2.zip")
    assert head.ref_sha256 is not None
    assert client.store.cache.get(head.ref_sha256) is not None
    client.clear_cache()
    assert client.store.cache.get(head.ref_sha256) is None
    assert client.get_object(Bucket=target.bucket, Key="k/app-2.zip")["Body"].read() == release(2)


def test_generate_presigned_post(target: Target) -> None:
    client = target.client
    if target.kind == "local":
        with pytest.raises(NotSupportedError):
            client.generate_presigned_post(target.bucket, "up/form.bin")
        return
    post = client.generate_presigned_post(target.bucket, "up/form.bin", ExpiresIn=60)
    assert post["url"].startswith(target.server.endpoint_url)  # type: ignore[union-attr]
    assert post["fields"]["key"] == "up/form.bin"
    escaped = client.generate_presigned_post(target.bucket, "up/x.delta")
    assert escaped["fields"]["key"] == "up/x.delta.direct"  # where this client reads it from


def test_the_original_top_level_names() -> None:
    names: dict[str, Any] = {
        name: getattr(deltaglider, name)
        for name in (
            "BucketStats",
            "CompressionEstimate",
            "ObjectInfo",
            "UploadSummary",
            "ListObjectsResponse",
            "PutObjectResponse",
            "GetObjectResponse",
            "ListObjectsV2Response",
            "S3Object",
            "DeltaGliderClient",
            "create_client",
        )
    }
    assert names["create_client"] is create_client
    from deltaglider.client import BucketStats, CompressionEstimate, ObjectInfo

    assert (BucketStats, CompressionEstimate, ObjectInfo) == (
        names["BucketStats"],
        names["CompressionEstimate"],
        names["ObjectInfo"],
    )
    with pytest.raises(AttributeError):
        deltaglider.DeltaService  # noqa: B018 - the original's internal service: not ours


def test_errors_are_the_original_s_built_in_exceptions_too(target: Target, tmp_path: Path) -> None:
    """A program written for the original catches FileNotFoundError for a missing object;
    one written for boto3 catches NoSuchKey: both catch the same error."""
    client = target.client
    with pytest.raises(FileNotFoundError) as missing:
        client.download(target.url("none.zip"), tmp_path / "x.zip")
    assert isinstance(missing.value, client.exceptions.NoSuchKey)
    assert type(missing.value).__name__ == "NoSuchKey"
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=target.bucket, Key="none.zip")
    with pytest.raises(FileNotFoundError):
        client.head_object(Bucket=target.bucket, Key="none.zip")
    with pytest.raises(FileNotFoundError):
        client.get_object_info(target.url("none.zip"))
    with pytest.raises(FileNotFoundError) as bucket:
        client.get_object(Bucket=target.bucket + "-gone", Key="k")
    assert bucket.value.response["Error"]["Code"] == "NoSuchBucket"  # type: ignore[attr-defined]
    assert not (tmp_path / "x.zip").exists()


def test_put_object_takes_a_path_as_the_original_did(target: Target, tmp_path: Path) -> None:
    (v1,) = _files(tmp_path, 1)
    response = target.client.put_object(Bucket=target.bucket, Key="p/app-1.zip", Body=v1)
    assert response["DeltaGliderInfo"]["OriginalSize"] == v1.stat().st_size
    body = target.client.get_object(Bucket=target.bucket, Key="p/app-1.zip")["Body"].read()
    assert body == release(1)
    # a str is the bytes, as boto3 takes it (not a file name)
    target.client.put_object(Bucket=target.bucket, Key="p/name.txt", Body=str(v1))
    got = target.client.get_object(Bucket=target.bucket, Key="p/name.txt")["Body"].read()
    assert got == str(v1).encode()
