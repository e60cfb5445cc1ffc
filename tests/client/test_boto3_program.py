"""A program written for boto3 runs unchanged on ``create_client()``.

:func:`round_trip` is written once against "an S3 client": it uploads a directory tree with
``upload_file``, lists it with the ``list_objects_v2`` paginator, downloads every object with
``download_fileobj`` into another folder and deletes everything with ``delete_objects``. It is
run with ``boto3.client("s3")`` and with ``deltaglider.create_client()`` (the only change), each
on a bucket of its own on the same SeaweedFS: the local trees it produces must be identical to
each other and to the source, what it saw (listings, page counts) the same, and both buckets
must end empty.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from client_conftest import Buckets, deltaglider_client, physical_keys, plain_client
from data import noise, release
from servers import Server

from deltaglider.client import DeltaGliderClient


def round_trip(s3: Any, bucket: str, source: Path, target: Path) -> dict[str, Any]:
    """Backs ``source`` up to ``bucket`` under ``backup/``, restores it into ``target`` and
    cleans the bucket up. Plain boto3 code: nothing in it knows about deltaglider."""
    uploaded = 0

    def count(n: int) -> None:
        nonlocal uploaded
        uploaded += n

    for dirpath, _dirnames, filenames in os.walk(source):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            key = "backup/" + path.relative_to(source).as_posix()
            s3.upload_file(str(path), bucket, key, Callback=count)

    listed: list[tuple[str, int]] = []
    pages = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix="backup/", PaginationConfig={"PageSize": 40}
    ):
        pages += 1
        for obj in page.get("Contents", []):
            listed.append((obj["Key"], obj["Size"]))

    downloaded = 0
    for key, size in listed:
        out = target / key[len("backup/") :]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            s3.download_fileobj(bucket, key, fh)
        assert out.stat().st_size == size
        downloaded += size

    deleted: list[str] = []
    for i in range(0, len(listed), 50):
        batch = [{"Key": key} for key, _ in listed[i : i + 50]]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})
        assert not response.get("Errors"), response["Errors"]
        deleted += [d["Key"] for d in response.get("Deleted", [])]
    remaining = s3.list_objects_v2(Bucket=bucket).get("KeyCount")
    return {
        "uploaded": uploaded,
        "listed": listed,
        "pages": pages,
        "downloaded": downloaded,
        "deleted": sorted(deleted),
        "remaining": remaining,
    }


def make_tree(root: Path) -> None:
    """Releases of two products (similar zips: deltas), notes, binaries, nested folders, an
    empty file, odd names: 103 files, over two pages of 40."""
    files: dict[str, bytes] = {}
    for v in range(12):
        files[f"products/app/app-1.{v}.zip"] = release(v)
        files[f"products/app/app-1.{v}.txt"] = f"release notes {v}\n".encode() * 20
    for v in range(6):
        files[f"products/tool/tool-{v}.tar.gz"] = release(v, seed=11, files=20)
    for i in range(70):
        files[f"data/{i // 10}/blob-{i:03d}.bin"] = noise(1000 + 37 * i, seed=i)
    files["empty.txt"] = b""
    files["odd names/naïve résumé + ü.txt"] = "naïve\n".encode()
    files["big/disk.img"] = noise(3 << 20, seed=99)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def dg(seaweedfs: Server) -> Any:
    client = deltaglider_client(seaweedfs)
    yield client
    client.close()


@pytest.mark.slow
def test_the_same_program_gives_the_same_results(
    seaweedfs: Server, dg: DeltaGliderClient, tmp_path: Path, buckets: Buckets
) -> None:
    source = tmp_path / "source"
    make_tree(source)
    results = {}
    for name, client in (("boto3", plain_client(seaweedfs)), ("deltaglider", dg)):
        bucket = buckets.new(name[:2])
        results[name] = round_trip(client, bucket, source, tmp_path / name)
        # Nothing is left in the bucket: not an object, not a reference, not bookkeeping.
        assert physical_keys(client if name == "boto3" else dg.boto_client, bucket) == []
    assert tree(tmp_path / "boto3") == tree(tmp_path / "deltaglider") == tree(source)
    assert results["boto3"] == results["deltaglider"]
    ref = results["boto3"]
    assert len(ref["listed"]) == 103 and ref["pages"] == 3 and ref["remaining"] == 0
    assert ref["uploaded"] == ref["downloaded"] == sum(len(b) for b in tree(source).values())


@pytest.mark.slow
def test_deltaglider_stored_deltas_meanwhile(
    dg: DeltaGliderClient, tmp_path: Path, buckets: Buckets
) -> None:
    """The same program on deltaglider really went through deltas (else the test above would
    prove nothing about them)."""
    source = tmp_path / "source"
    make_tree(source)
    bucket = buckets.new("dg")
    for v in range(12):
        key = f"products/app/app-1.{v}.zip"
        dg.upload_file(str(source / key), bucket, "backup/" + key)
    head = dg.head_object(Bucket=bucket, Key="backup/products/app/app-1.11.zip")
    assert head["DeltaGliderInfo"]["IsDelta"]
    assert head["DeltaGliderInfo"]["StoredSize"] < head["ContentLength"] / 4
    result = round_trip(dg, bucket, source, tmp_path / "out")
    assert result["remaining"] == 0
    assert physical_keys(dg.boto_client, bucket) == []
