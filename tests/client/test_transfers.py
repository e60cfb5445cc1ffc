"""The client's file transfers, simple API, batches and bucket stats, against a real SeaweedFS
(each call compared with a plain ``boto3.client("s3")`` doing the same on a bucket of its own)
and against the local (``file://``) store.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig
from client_conftest import (
    Counter,
    Made,
    Target,
    deltaglider_client,
    memory_config,
    plain_client,
    tamper,
    xfer_name,
)
from data import noise, release
from servers import REGION, Server

from deltaglider import create_client
from deltaglider import format as fmt
from deltaglider.client import DeltaGliderClient, NotSupportedError
from deltaglider.stats import BucketStats


def outcome(call: Callable[[], Any], *replace: str) -> tuple[Any, ...]:
    """What a call did, comparable between boto3 and deltaglider: ("ok", return value) or the
    exception's class, S3 error code, operation and message (names in ``replace`` blanked)."""
    try:
        return ("ok", call())
    except Exception as exc:  # the outcome is what is compared
        message = str(exc)
        for name in replace:
            message = message.replace(name, "<name>")
        if isinstance(exc, botocore.exceptions.ClientError):
            return (
                type(exc).__name__,
                exc.response["Error"]["Code"],
                exc.operation_name,
                message,
            )
        return (type(exc).__name__, message)


ZIP_V1, ZIP_V2 = release(1), release(2)
FILES = {
    "empty.bin": b"",
    "small.txt": b"hello deltaglider\n" * 50,
    "app-1.zip": ZIP_V1,
    "app-2.zip": ZIP_V2,  # a delta against app-1.zip on the deltaglider side
    "big.bin": noise((17 << 20) + 12345, seed=3),  # over the multipart threshold
}


# --- boto3's four transfers, side by side with boto3 ------------------------------------------


def test_upload_and_download_file_as_boto3(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    ours, theirs = made.bucket("dg"), made.bucket("s3")
    for name, data in FILES.items():
        src = tmp_path / name
        src.write_bytes(data)
        key = f"rel/{name}"
        got: dict[str, tuple[Counter, Counter, bytes]] = {}
        for side, client, bucket in (("s3", raw, theirs), ("dg", dg, ours)):
            up, down = Counter(), Counter()
            assert client.upload_file(str(src), bucket, key, Callback=up) is None
            dest = tmp_path / f"{side}-{name}"
            assert client.download_file(bucket, key, str(dest), Callback=down) is None
            got[side] = (up, down, dest.read_bytes())
        for side in ("s3", "dg"):
            up, down, back = got[side]
            assert back == data, (side, name)
            assert up.total == len(data), (side, name)
            assert down.total == len(data), (side, name)
            assert all(c > 0 for c in up.calls + down.calls)
        assert got["dg"][0].total == got["s3"][0].total
        assert got["dg"][1].total == got["s3"][1].total
    physical = [o["Key"] for o in raw.list_objects_v2(Bucket=ours)["Contents"]]
    assert "rel/app-2.zip.delta" in physical
    assert "rel/reference.bin" in physical
    assert "rel/big.bin" in physical  # not a delta candidate: stored as it is


def test_path_like_filenames(raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path) -> None:
    bucket = made.bucket("dg")
    src = tmp_path / "a.txt"
    src.write_bytes(b"path-like")
    dg.upload_file(src, bucket, "a.txt")
    dg.download_file(bucket, "a.txt", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_bytes() == b"path-like"
    for client, b in ((raw, made.bucket("s3")), (dg, bucket)):
        with pytest.raises(ValueError, match="Filename must be a string or a path-like object"):
            client.upload_file(123, b, "k")


def test_a_wrapped_clients_own_transfers_still_work(
    seaweedfs: Server, made: Made, tmp_path: Path
) -> None:
    """``create_client(boto3_client=c)`` hooks into ``c``; the program's own boto3 calls on
    ``c`` keep working, empty files included (s3transfer sends a reader whose ``seek()``
    returns None: the hook once raised TypeError on it), without a stall after them."""
    own = boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name=REGION,
    )
    dg = create_client(boto3_client=own, deltaglider_config=memory_config())
    bucket = made.bucket("own")
    bodies = {"e1.bin": b"", "small.bin": b"x" * 100, "e2.txt": b"", "zip.zip": ZIP_V1}
    for name, data in bodies.items():
        (tmp_path / name).write_bytes(data)
        started = time.monotonic()
        own.upload_file(str(tmp_path / name), bucket, f"file/{name}")
        own.upload_fileobj(io.BytesIO(data), bucket, f"obj/{name}")
        own.put_object(Bucket=bucket, Key=f"put/{name}", Body=data)
        took = time.monotonic() - started
        assert took < 10, f"{name}: {took:.1f} s, a stall"
    for name, data in bodies.items():
        for kind in ("file", "obj", "put"):
            assert own.get_object(Bucket=bucket, Key=f"{kind}/{name}")["Body"].read() == data
            assert dg.get_object(Bucket=bucket, Key=f"{kind}/{name}")["Body"].read() == data


def test_upload_and_download_fileobj_as_boto3(raw: Any, dg: DeltaGliderClient, made: Made) -> None:
    ours, theirs = made.bucket("dg"), made.bucket("s3")
    for name, data in FILES.items():
        key = f"obj/{name}"
        for side, client, bucket in (("s3", raw, theirs), ("dg", dg, ours)):
            up, down = Counter(), Counter()
            assert client.upload_fileobj(io.BytesIO(data), bucket, key, Callback=up) is None
            out = io.BytesIO()
            assert client.download_fileobj(bucket, key, out, Callback=down) is None
            assert out.getvalue() == data, (side, name)
            assert (up.total, down.total) == (len(data), len(data)), (side, name)
    assert raw.head_object(Bucket=ours, Key="obj/app-2.zip.delta")["ContentLength"] < len(ZIP_V2)


def test_fileobj_must_read_and_write(raw: Any, dg: DeltaGliderClient, made: Made) -> None:
    for client, bucket in ((raw, made.bucket("s3")), (dg, made.bucket("dg"))):
        with pytest.raises(ValueError, match="Fileobj must implement read"):
            client.upload_fileobj(b"bytes are not a file", bucket, "k")
        with pytest.raises(ValueError, match="Fileobj must implement write"):
            client.download_fileobj(bucket, "k", b"")


def test_upload_from_a_real_file_object(dg: DeltaGliderClient, made: Made, tmp_path: Path) -> None:
    bucket = made.bucket("dg")
    (tmp_path / "v2.zip").write_bytes(ZIP_V2)
    dg.upload_fileobj(io.BytesIO(ZIP_V1), bucket, "f/app-1.zip")
    with open(tmp_path / "v2.zip", "rb") as fh:
        dg.upload_fileobj(fh, bucket, "f/app-2.zip")
    with open(tmp_path / "out.zip", "wb") as out:
        dg.download_fileobj(bucket, "f/app-2.zip", out)
    assert (tmp_path / "out.zip").read_bytes() == ZIP_V2
    assert dg.head_object(Bucket=bucket, Key="f/app-2.zip")["DeltaGliderInfo"]["IsDelta"]


@pytest.mark.parametrize("method", ["download_file", "download_fileobj"])
@pytest.mark.parametrize("missing", ["key", "bucket"])
def test_download_errors_as_boto3(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path, method: str, missing: str
) -> None:
    results = {}
    for side, client in (("s3", raw), ("dg", dg)):
        bucket = made.bucket(side, create=missing == "key")
        dest = tmp_path / f"{side}.out"

        def call(client: Any = client, bucket: str = bucket, dest: Path = dest) -> Any:
            if method == "download_file":
                return client.download_file(bucket, "no/such.zip", str(dest))
            return client.download_fileobj(bucket, "no/such.zip", io.BytesIO())

        results[side] = outcome(call, bucket)
        assert not dest.exists()
        assert list(tmp_path.iterdir()) == []  # no temporary file left either
    assert results["dg"] == results["s3"]
    assert results["dg"] == (
        "ClientError",
        "404",
        "HeadObject",
        "An error occurred (404) when calling the HeadObject operation: Not Found",
    )


def test_download_into_a_missing_folder(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    results = {}
    for side, client in (("s3", raw), ("dg", dg)):
        bucket = made.bucket(side)
        client.upload_fileobj(io.BytesIO(b"x"), bucket, "k.txt")
        try:
            client.download_file(bucket, "k.txt", str(tmp_path / "nowhere" / "k.txt"))
        except FileNotFoundError as exc:
            results[side] = type(exc)
        # and a missing key is still reported as boto3's HEAD reports it
        results[side + "-missing"] = outcome(
            lambda c=client, b=bucket: c.download_file(b, "gone", str(tmp_path / "no" / "x")),
            bucket,
        )
    assert results["dg"] is results["s3"] is FileNotFoundError
    assert results["dg-missing"] == results["s3-missing"]
    assert results["dg-missing"][1] == "404"


@pytest.mark.parametrize("method", ["upload_file", "upload_fileobj"])
def test_upload_refused_as_boto3(
    seaweedfs: Server, made: Made, tmp_path: Path, method: str
) -> None:
    """A principal that may only read: boto3's upload_file raises S3UploadFailedError,
    upload_fileobj the PutObject's ClientError."""
    assert seaweedfs.reader_key and seaweedfs.reader_secret
    src = tmp_path / "app-1.zip"
    src.write_bytes(ZIP_V1)
    results = {}
    dg_reader = deltaglider_client(seaweedfs, seaweedfs.reader_key, seaweedfs.reader_secret)
    try:
        for side, client in (
            ("s3", plain_client(seaweedfs, seaweedfs.reader_key, seaweedfs.reader_secret)),
            ("dg", dg_reader),
        ):
            bucket = made.bucket(side)
            if method == "upload_file":
                call = lambda c=client, b=bucket: c.upload_file(str(src), b, "r/app-1.zip")  # noqa: E731
            else:
                call = lambda c=client, b=bucket: c.upload_fileobj(  # noqa: E731
                    io.BytesIO(ZIP_V1), b, "r/app-1.zip"
                )
            results[side] = outcome(call, bucket)
    finally:
        dg_reader.close()
    # The store's own wording of "Access Denied" may differ: compared up to it.
    assert results["dg"][:-1] == results["s3"][:-1]
    if method == "upload_file":
        assert results["dg"][0] == "S3UploadFailedError"
        prefix = f"Failed to upload {src} to <name>/r/app-1.zip: An error occurred (AccessDenied)"
        assert results["dg"][1].startswith(prefix)
        assert results["s3"][1].startswith(prefix)
    else:
        assert results["dg"][:3] == ("AccessDenied", "AccessDenied", "PutObject")


@pytest.fixture(scope="module")
def moto_pair(moto_server: Server) -> Iterator[tuple[Any, DeltaGliderClient]]:
    client = deltaglider_client(moto_server)
    yield plain_client(moto_server), client
    client.close()


@pytest.mark.parametrize(
    "method",
    [
        "upload_file",
        "upload_fileobj",
    ],
)
def test_upload_to_a_missing_bucket_as_boto3(
    moto_pair: tuple[Any, DeltaGliderClient], tmp_path: Path, method: str
) -> None:
    """On a store that does not make buckets on the fly (moto, like AWS; SeaweedFS makes
    them for an admin, see the next test)."""
    src = tmp_path / "a.txt"
    src.write_bytes(b"data")
    results = {}
    for side, client in zip(("s3", "dg"), moto_pair, strict=True):
        bucket = xfer_name(side)
        if method == "upload_file":
            results[side] = outcome(
                lambda c=client, b=bucket: c.upload_file(str(src), b, "a"), bucket
            )
        else:
            results[side] = outcome(
                lambda c=client, b=bucket: c.upload_fileobj(io.BytesIO(b"x"), b, "a"), bucket
            )
    assert results["dg"] == results["s3"]
    if method == "upload_file":
        assert results["dg"] == (
            "S3UploadFailedError",
            f"Failed to upload {src} to <name>/a: An error occurred (NoSuchBucket) when calling "
            "the PutObject operation: The specified bucket does not exist",
        )
    else:
        assert results["dg"][:3] == ("NoSuchBucket", "NoSuchBucket", "PutObject")


def test_upload_to_a_missing_bucket_on_seaweedfs(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    """SeaweedFS makes the bucket on the fly for an admin's PUT: so do deltaglider's direct
    uploads. (A delta candidate's upload HEADs its deltaspace's reference first, and gets
    NoSuchBucket, as on AWS.)"""
    src = tmp_path / "notes.txt"
    src.write_bytes(b"notes")
    results = {}
    for side, client in (("s3", raw), ("dg", dg)):
        bucket = made.bucket(side, create=False)
        results[side] = outcome(
            lambda c=client, b=bucket: c.upload_file(str(src), b, "notes.txt"), bucket
        )
        if results[side][0] == "ok":
            assert client.get_object(Bucket=bucket, Key="notes.txt")["Body"].read() == b"notes"
    assert results["dg"] == results["s3"]


def test_extra_args_round_trip_as_boto3(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    src = tmp_path / "app-1.zip"
    src.write_bytes(ZIP_V1)
    extra = {"Metadata": {"release": "1.2.3", "built-by": "ci"}, "ContentType": "application/zip"}
    heads = {}
    for side, client in (("s3", raw), ("dg", dg)):
        bucket = made.bucket(side)
        client.upload_file(str(src), bucket, "m/app-1.zip", ExtraArgs=extra)
        client.upload_fileobj(io.BytesIO(ZIP_V2), bucket, "m/app-2.zip", ExtraArgs=extra)
        heads[side] = [
            {k: h[k] for k in ("Metadata", "ContentType", "ContentLength")}
            for h in (
                client.head_object(Bucket=bucket, Key="m/app-1.zip"),
                client.head_object(Bucket=bucket, Key="m/app-2.zip"),
            )
        ]
    assert heads["dg"] == heads["s3"]
    assert heads["dg"][1]["Metadata"] == extra["Metadata"]
    assert heads["dg"][1]["ContentType"] == "application/zip"


def test_unsupported_extra_args_are_refused_by_name(
    raw: Any, dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    bucket = made.bucket("dg")
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")
    for extra in (
        {"SSECustomerAlgorithm": "AES256"},
        {"ObjectLockMode": "GOVERNANCE"},
        {"Tagging": "a=b"},
    ):
        (name,) = extra
        with pytest.raises(NotSupportedError, match=name) as info:
            dg.upload_file(str(src), bucket, "a.txt", ExtraArgs=extra)
        assert info.value.parameter == name
        with pytest.raises(NotSupportedError, match=name):
            dg.upload_fileobj(io.BytesIO(b"a"), bucket, "a.txt", ExtraArgs=extra)
    dg.upload_file(str(src), bucket, "a.txt")
    for extra in ({"VersionId": "v1"}, {"SSECustomerKey": "k"}, {"ChecksumMode": "ENABLED"}):
        (name,) = extra
        with pytest.raises(NotSupportedError, match=name):
            dg.download_file(bucket, "a.txt", str(tmp_path / "x"), ExtraArgs=extra)
        with pytest.raises(NotSupportedError, match=name):
            dg.download_fileobj(bucket, "a.txt", io.BytesIO(), ExtraArgs=extra)
    assert not (tmp_path / "x").exists()
    # A key boto3 rejects too: a ValueError there, so here as well (and NotSupportedError).
    with pytest.raises(ValueError, match="Invalid extra_args key 'Bogus'"):
        raw.upload_file(str(src), made.bucket("s3"), "a.txt", ExtraArgs={"Bogus": 1})
    with pytest.raises(ValueError, match="Bogus") as bogus:
        dg.upload_file(str(src), bucket, "b.txt", ExtraArgs={"Bogus": 1})
    assert isinstance(bogus.value, NotSupportedError)
    with pytest.raises(ValueError, match="Bogus"):
        dg.download_file(bucket, "a.txt", str(tmp_path / "x"), ExtraArgs={"Bogus": 1})
    # nothing was stored by a refused upload
    keys = [o["Key"] for o in dg.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["a.txt"]


def test_transfer_config_fields_honoured_or_refused(
    dg: DeltaGliderClient, made: Made, tmp_path: Path
) -> None:
    """A TransferConfig may set what the engine does anyway (the client's own thresholds,
    part size and workers; boto3's defaults of the rest); anything else is refused by name,
    before anything is transferred (BEHAVIOURS "TransferConfig")."""
    bucket = made.bucket("dg")
    data = noise(6 << 20, seed=9)
    src = tmp_path / "d.bin"
    src.write_bytes(data)
    own = dg.store.config
    honoured = [
        TransferConfig(),
        TransferConfig(
            multipart_threshold=own.multipart_threshold,
            multipart_chunksize=own.multipart_chunksize,
            max_concurrency=own.max_workers,
            use_threads=True,
            preferred_transfer_client="classic",
            num_download_attempts=5,
            io_chunksize=256 << 10,
            max_io_queue=100,
        ),
    ]
    for config in honoured:
        counter = Counter()
        dg.upload_file(str(src), bucket, "d.bin", Callback=counter, Config=config)
        dg.download_file(bucket, "d.bin", str(tmp_path / "back"), Config=config)
        assert (tmp_path / "back").read_bytes() == data
        assert counter.total == len(data)
        out = io.BytesIO()
        dg.upload_fileobj(io.BytesIO(data), bucket, "f.bin", Config=config)
        dg.download_fileobj(bucket, "f.bin", out, Config=config)
        assert out.getvalue() == data
    refused = {
        "multipart_threshold": TransferConfig(multipart_threshold=own.multipart_threshold + 1),
        "multipart_chunksize": TransferConfig(multipart_chunksize=5 << 20),
        "max_concurrency": TransferConfig(max_concurrency=own.max_workers + 1),
        "use_threads": TransferConfig(use_threads=False),
        "max_bandwidth": TransferConfig(max_bandwidth=1 << 20),
        "num_download_attempts": TransferConfig(num_download_attempts=2),
        "io_chunksize": TransferConfig(io_chunksize=1 << 20),
        "max_io_queue": TransferConfig(max_io_queue=7),
        "preferred_transfer_client": TransferConfig(preferred_transfer_client="crt"),
    }
    for name, config in refused.items():
        calls = [
            lambda c=config: dg.upload_file(str(src), bucket, "r.bin", Config=c),
            lambda c=config: dg.upload_fileobj(io.BytesIO(b"x"), bucket, "r.bin", Config=c),
            lambda c=config: dg.download_file(bucket, "d.bin", str(tmp_path / "r"), Config=c),
            lambda c=config: dg.download_fileobj(bucket, "d.bin", io.BytesIO(), Config=c),
        ]
        for call in calls:
            with pytest.raises(NotSupportedError, match=name) as info:
                call()
            assert info.value.parameter == f"Config.{name}"
    assert not (tmp_path / "r").exists()
    keys = sorted(o["Key"] for o in dg.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["d.bin", "f.bin"]  # nothing stored by a refused upload


# --- on the local store -------------------------------------------------------------------


def test_transfers_on_the_local_store(tmp_path: Path) -> None:
    client = create_client((tmp_path / "store").as_uri(), deltaglider_config=memory_config())
    try:
        client.storage.create_bucket("local")
        for name, data in FILES.items():
            src = tmp_path / name
            src.write_bytes(data)
            up, down, up2, down2 = Counter(), Counter(), Counter(), Counter()
            client.upload_file(str(src), "local", f"l/{name}", Callback=up)
            client.download_file("local", f"l/{name}", str(tmp_path / "out"), Callback=down)
            assert (tmp_path / "out").read_bytes() == data
            client.upload_fileobj(io.BytesIO(data), "local", f"o/{name}", Callback=up2)
            out = io.BytesIO()
            client.download_fileobj("local", f"o/{name}", out, Callback=down2)
            assert out.getvalue() == data
            assert {up.total, down.total, up2.total, down2.total} == {len(data)}
        stored = {o.key for o in client.storage.iter_objects("local")}
        assert {"l/app-2.zip.delta", "o/app-2.zip.delta", "l/reference.bin"} <= stored
        # the errors boto3 gives on AWS
        assert outcome(lambda: client.download_file("local", "nope", str(tmp_path / "n"))) == (
            "ClientError",
            "404",
            "HeadObject",
            "An error occurred (404) when calling the HeadObject operation: Not Found",
        )
        assert outcome(lambda: client.download_fileobj("nobucket", "k", io.BytesIO()))[1] == "404"
        failed = outcome(lambda: client.upload_file(str(tmp_path / "small.txt"), "nobucket", "k"))
        assert failed == (
            "S3UploadFailedError",
            f"Failed to upload {tmp_path / 'small.txt'} to nobucket/k: An error occurred "
            "(NoSuchBucket) when calling the PutObject operation: The specified bucket does not "
            "exist",
        )
        with pytest.raises(client.exceptions.NoSuchBucket):
            client.upload_fileobj(io.BytesIO(b"x"), "nobucket", "k")
        with pytest.raises(FileNotFoundError):
            client.upload_file(str(tmp_path / "not-there"), "local", "k")
    finally:
        client.close()


# --- the simple API -----------------------------------------------------------------------


def test_upload_download_verify(target: Target, tmp_path: Path) -> None:
    client = target.client
    for v in (1, 2, 3):
        (tmp_path / f"app-{v}.zip").write_bytes(release(v))
    first = client.upload(tmp_path / "app-1.zip", target.url("releases/"))
    assert first["Bucket"] == target.bucket
    assert first["Key"] == "releases/app-1.zip"
    assert first["Size"] == len(release(1))
    assert first["ETag"].startswith('"')
    counter = Counter()
    second = client.upload(
        str(tmp_path / "app-2.zip"),
        target.url("releases/app-2.zip"),
        metadata={"v": "2"},
        content_type="application/zip",
        callback=counter,
    )
    assert counter.total == len(release(2))
    info = second["DeltaGliderInfo"]
    assert info["IsDelta"] and info["StoredSize"] < len(release(2)) // 4
    assert info["ReferenceKey"] == "releases/reference.bin"
    head = client.head_object(Bucket=target.bucket, Key="releases/app-2.zip")
    assert head["Metadata"] == {"v": "2"} and head["ContentType"] == "application/zip"
    direct = client.upload(tmp_path / "app-3.zip", target.url("releases/app-3.zip"), max_ratio=1e-6)
    assert not direct["DeltaGliderInfo"]["IsDelta"]  # no delta is that small
    # download: to a folder (the key's basename), to a file, into folders that do not exist
    got = client.download(target.url("releases/app-2.zip"), tmp_path)
    assert got["Filename"] == str(tmp_path / "app-2.zip")
    assert got["Size"] == len(release(2)) and got["DeltaGliderInfo"]["IsDelta"]
    assert (tmp_path / "app-2.zip").read_bytes() == release(2)
    client.download(target.url("releases/app-1.zip"), tmp_path / "a" / "b" / "one.zip")
    assert (tmp_path / "a" / "b" / "one.zip").read_bytes() == release(1)
    client.download(target.url("releases/app-3.zip"), str(tmp_path / "new") + "/")
    assert (tmp_path / "new" / "app-3.zip").read_bytes() == release(3)
    # verify
    for v in (1, 2, 3):
        result = client.verify(target.url(f"releases/app-{v}.zip"))
        assert result["Valid"] is True, result
        assert result["Size"] == len(release(v))
        assert result["Key"] == f"releases/app-{v}.zip"
        if v == 2:
            assert result["Sha256"] == second["Sha256"]
        assert result["IsDelta"] is (v != 3)
    # errors: ClientErrors with S3's codes
    with pytest.raises(client.exceptions.NoSuchKey):
        client.download(target.url("releases/none.zip"), tmp_path)
    with pytest.raises(client.exceptions.NoSuchKey):
        client.verify(target.url("releases/none.zip"))
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.download(f"s3://{target.bucket}-gone/k", tmp_path)
    with pytest.raises(ValueError):
        client.download(target.url("releases/"), tmp_path)
    with pytest.raises(ValueError):
        client.upload(tmp_path / "app-1.zip", "https://example.com/x")


def test_verify_reports_damage(target: Target, tmp_path: Path) -> None:
    client = target.client
    client.put_object(Bucket=target.bucket, Key="d/app-1.zip", Body=release(1))
    client.put_object(Bucket=target.bucket, Key="d/app-2.zip", Body=release(2))
    client.put_object(Bucket=target.bucket, Key="d/notes.txt", Body=b"the notes")
    tamper(client, target.bucket, "d/notes.txt", b"the n0tes")
    result = client.verify(target.url("d/notes.txt"))
    assert result["Valid"] is False
    assert result["IsDelta"] is False and result["Size"] == 9
    assert "sha256" in result["Message"]
    # a reference that is not the one the deltas were made against: read by a client with a
    # cold cache (the warm one still holds the right reference, keyed by its sha256)
    tamper(client, target.bucket, fmt.reference_key("d"), release(5))
    fresh = target.fresh()
    try:
        result = fresh.verify(target.url("d/app-2.zip"))
        assert result["Valid"] is False and result["IsDelta"] is True
        assert "reference" in result["Message"]
        # a delta whose reference is gone
        fresh.storage.delete(target.bucket, fmt.reference_key("d"))
        result = fresh.verify(target.url("d/app-1.zip"))
        assert result["Valid"] is False and result["Sha256"] is None
        with pytest.raises(fresh.exceptions.NoSuchKey):
            fresh.verify(target.url("d/app-9.zip"))
    finally:
        fresh.close()


# --- stats --------------------------------------------------------------------------------


def test_get_bucket_stats(target: Target) -> None:
    client = target.client
    sizes = []
    for v in (1, 2, 3):
        data = release(v)
        sizes.append(len(data))
        client.put_object(Bucket=target.bucket, Key=f"s/app-{v}.zip", Body=data)
    client.put_object(Bucket=target.bucket, Key="other/readme.txt", Body=b"read me")
    stats = client.get_bucket_stats(target.bucket, mode="detailed")
    assert isinstance(stats, BucketStats)
    assert (stats.objects, stats.deltas, stats.direct) == (4, 3, 1)
    assert stats.logical_bytes == sum(sizes) + 7 and stats.exact
    stored = client.storage.iter_objects(target.bucket)
    assert stats.stored_bytes == sum(
        o.size for o in stored if not o.key.startswith(fmt.RESERVED_PREFIX)
    )
    assert stats.savings > 0.3
    assert client.get_bucket_stats(target.bucket, mode="detailed").cache.status == "hit"
    assert client.get_bucket_stats(target.bucket, mode="detailed", refresh=True).cache.status == (
        "refresh"
    )
    assert client.get_bucket_stats(
        target.bucket, mode="detailed", use_cache=False
    ).cache.status == ("disabled")
    quick = client.get_bucket_stats(target.bucket, "s/")
    assert (quick.mode, quick.objects, quick.prefix) == ("quick", 3, "s/")
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.get_bucket_stats(target.bucket + "-gone")


# --- batches ------------------------------------------------------------------------------


def test_upload_batch(target: Target, tmp_path: Path) -> None:
    client = target.client
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for v in range(1, 7):
        p = folder / f"app-{v}.zip"
        p.write_bytes(release(v))
        paths.append(p)
    (folder / "notes.txt").write_bytes(b"notes " * 1000)
    paths.append(folder / "notes.txt")
    counter = Counter()
    results = client.upload_batch(
        paths, target.url("batch"), callback=counter, metadata={"batch": "yes"}
    )
    assert [r["Key"] for r in results] == [f"batch/{p.name}" for p in paths]
    assert all("Error" not in r for r in results), results
    assert counter.total == sum(p.stat().st_size for p in paths)
    assert not counter.overlapped
    physical = target.physical_keys("batch/")
    assert sum(k.endswith(".delta") for k in physical) == 6
    assert "batch/reference.bin" in physical and "batch/notes.txt" in physical
    # The reference is the middle release, reported as what it costs (stored whole, as the
    # original reported its first file); the deltas of the others against it stay small.
    reference = results[3]
    assert reference.operation == "create_reference" and not reference.is_delta
    assert reference["DeltaGliderInfo"]["Savings"] == 0.0
    assert reference["DeltaGliderInfo"]["StoredAs"] == "batch/reference.bin"
    assert reference.stored_size == reference.original_size == paths[3].stat().st_size
    for r in results[:3] + results[4:6]:
        assert r.is_delta and r.operation == "create_delta"
        assert r["DeltaGliderInfo"]["Savings"] > 0.9 and r.savings_percent > 90
    for p in paths:
        key = f"batch/{p.name}"
        assert client.get_object(Bucket=target.bucket, Key=key)["Body"].read() == p.read_bytes()
        assert client.head_object(Bucket=target.bucket, Key=key)["Metadata"] == {"batch": "yes"}


def test_upload_batch_failures_do_not_stop_the_others(target: Target, tmp_path: Path) -> None:
    client = target.client
    (tmp_path / "a.txt").write_bytes(b"a" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(b"other a")
    (tmp_path / "b.zip").write_bytes(release(1))
    files = [tmp_path / "a.txt", tmp_path / "missing.zip", tmp_path / "sub" / "a.txt"]
    files.append(tmp_path / "b.zip")
    results = client.upload_batch(files, target.url("p/"))
    assert [r["Key"] for r in results] == ["p/a.txt", "p/missing.zip", "p/a.txt", "p/b.zip"]
    assert "Error" not in results[0] and "Error" not in results[3]
    assert results[1]["Error"]["Code"] == "FileNotFoundError"
    assert results[2]["Error"]["Code"] == "InvalidArgument"  # the same key as the first
    assert client.get_object(Bucket=target.bucket, Key="p/a.txt")["Body"].read() == b"a" * 100
    # a bucket that is not there: every file fails, with S3's code
    target.forget(target.bucket + "-gone")
    gone = client.upload_batch(
        [tmp_path / "a.txt", tmp_path / "b.zip"], f"s3://{target.bucket}-gone/"
    )
    if target.kind == "local":
        assert [r["Error"]["Code"] for r in gone] == ["NoSuchBucket", "NoSuchBucket"]
    else:
        # SeaweedFS makes a bucket on the fly for an admin, as for boto3, but two puts at
        # once can both find it missing: each file either failed with S3's code or is there.
        assert len(gone) == 2, gone
        for r, want in zip(gone, [b"a" * 100, release(1)], strict=True):
            if "Error" in r:
                assert r["Error"]["Code"] == "NoSuchBucket", r
            else:
                got = client.get_object(Bucket=r["Bucket"], Key=r["Key"])["Body"].read()
                assert got == want, r["Key"]


def test_download_batch(target: Target, tmp_path: Path) -> None:
    client = target.client
    sizes = 0
    for v in range(1, 6):
        data = release(v)
        sizes += len(data)
        client.put_object(Bucket=target.bucket, Key=f"dl/app-{v}.zip", Body=data)
    client.put_object(Bucket=target.bucket, Key="dl/x/app-1.zip", Body=b"same basename")
    urls = [target.url(f"dl/app-{v}.zip") for v in range(1, 6)]
    urls.insert(2, target.url("dl/missing.zip"))
    urls.append(target.url("dl/x/app-1.zip"))
    counter = Counter()
    results = client.download_batch(urls, tmp_path / "out", callback=counter)
    assert [r["Key"] for r in results] == [u.split("/", 3)[3] for u in urls]
    assert results[2]["Error"]["Code"] == "NoSuchKey"
    assert results[-1]["Error"]["Code"] == "InvalidArgument"  # would overwrite app-1.zip
    for v in range(1, 6):
        assert (tmp_path / "out" / f"app-{v}.zip").read_bytes() == release(v)
    assert sorted(os.listdir(tmp_path / "out")) == [f"app-{v}.zip" for v in range(1, 6)]
    assert counter.total == sizes and not counter.overlapped
    ok = [r for r in results if "Error" not in r]
    assert len(ok) == 5 and all(r["DeltaGliderInfo"]["IsDelta"] for r in ok)
    # keys of a bucket given apart
    again = client.download_batch(["dl/app-1.zip"], tmp_path / "k", bucket=target.bucket)
    assert again[0]["Filename"] == str(tmp_path / "k" / "app-1.zip")
    assert (tmp_path / "k" / "app-1.zip").read_bytes() == release(1)
    with pytest.raises(ValueError):
        client.download_batch(["dl/app-1.zip"], tmp_path / "k")


# --- one client, many threads -------------------------------------------------------------


def test_one_client_from_eight_threads(target: Target, tmp_path: Path) -> None:
    client = target.client
    # Deltas in one deltaspace (sharing its reference) and plain files, both ways at once.
    files = {f"t/app-{v}.zip": release(v) for v in range(1, 9)}
    files.update({f"t/blob-{i}.bin": noise(200_000 + i, seed=i) for i in range(8)})
    for key in list(files)[::2]:  # half are there already, to be read while others are written
        client.put_object(Bucket=target.bucket, Key=key, Body=files[key])
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i, (key, data) in enumerate(files.items()):
                if i % 8 != n and (i + 1) % 8 != n:
                    continue
                src = tmp_path / f"{n}-{i}.src"
                src.write_bytes(data)
                counter = Counter()
                new_key = key.replace("t/", f"t/{n}/") if i % 2 else key.replace("t/", "t/w/")
                client.upload_file(str(src), target.bucket, new_key, Callback=counter)
                assert counter.total == len(data)
                out = tmp_path / f"{n}-{i}.out"
                client.download_file(target.bucket, new_key, str(out))
                assert out.read_bytes() == data
                if i % 2 == 0:
                    buf = io.BytesIO()
                    client.download_fileobj(target.bucket, key, buf)
                    assert buf.getvalue() == data
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key in client.list_objects_v2(Bucket=target.bucket, Prefix="t/")["Contents"]:
        name = key["Key"].rsplit("/", 1)[1]
        expected = files["t/" + name]
        body = client.get_object(Bucket=target.bucket, Key=key["Key"])["Body"].read()
        assert body == expected, key["Key"]
    assert any(k.endswith(".delta") for k in target.physical_keys("t/"))


def test_one_client_object_calls_from_eight_threads(dg: DeltaGliderClient, made: Made) -> None:
    """One client, eight threads, each doing put_object, get_object, list_objects_v2,
    copy_object and delete_object at once (deltas of one deltaspace and plain objects):
    every answer is checked."""
    bucket = made.bucket("mt")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    rounds = 4

    def body(n: int, r: int) -> bytes:
        return release(1 + (n * rounds + r) % 9) if n % 2 == 0 else noise(50_000 + n, seed=r)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                key = f"mt/{n}/app-{r}.zip" if n % 2 == 0 else f"mt/{n}/blob-{r}.bin"
                data = body(n, r)
                put = dg.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"n": str(n)})
                assert put["DeltaGliderInfo"]["OriginalSize"] == len(data)
                got = dg.get_object(Bucket=bucket, Key=key)
                assert got["Body"].read() == data and got["Metadata"] == {"n": str(n)}
                assert got["ContentLength"] == len(data)
                copy_key = key.replace(f"mt/{n}/", f"mt/{n}/copy-")
                copied = dg.copy_object(
                    Bucket=bucket, Key=copy_key, CopySource={"Bucket": bucket, "Key": key}
                )
                assert copied["DeltaGliderInfo"]["OriginalSize"] == len(data)
                back = dg.get_object(Bucket=bucket, Key=copy_key, Range="bytes=0-99")
                assert back["Body"].read() == data[:100]
                listed = dg.list_objects_v2(Bucket=bucket, Prefix=f"mt/{n}/")
                names = {o["Key"]: o["Size"] for o in listed.get("Contents", [])}
                assert names[key] == names[copy_key] == len(data), names
                if r % 2:
                    assert dg.delete_object(Bucket=bucket, Key=key)[
                        "ResponseMetadata"]["HTTPStatusCode"] == 204  # fmt: skip
                    with pytest.raises(botocore.exceptions.ClientError) as gone:
                        dg.get_object(Bucket=bucket, Key=key)
                    assert gone.value.response["Error"]["Code"] == "NoSuchKey"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected: dict[str, bytes] = {}
    for n in range(8):
        for r in range(rounds):
            key = f"mt/{n}/app-{r}.zip" if n % 2 == 0 else f"mt/{n}/blob-{r}.bin"
            expected[key.replace(f"mt/{n}/", f"mt/{n}/copy-")] = body(n, r)
            if r % 2 == 0:
                expected[key] = body(n, r)
    listed = [
        o["Key"]
        for page in dg.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert sorted(listed) == sorted(expected)
    for key, data in expected.items():
        assert dg.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key
    stored = [o["Key"] for o in made.raw.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.endswith(".delta") for k in stored)
