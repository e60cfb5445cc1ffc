"""The storage backends against real stores: the interface's contract, multipart, errors."""

from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from integration_conftest import s3_storage
from servers import Server

from deltaglider.errors import (
    AccessDenied,
    BucketNotEmpty,
    BucketNotFound,
    ObjectNotFound,
    PreconditionFailed,
)
from deltaglider.storage.base import Storage
from deltaglider.storage.s3 import S3Storage


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def read(storage: Storage, bucket: str, key: str, **kw: int) -> bytes:
    _, body = storage.get(bucket, key, **kw)
    try:
        return body.read()
    finally:
        body.close()


def test_put_get_head_with_metadata(storage: Storage, bucket: str) -> None:
    info = storage.put(
        bucket, "a/b.bin", b"hello", metadata={"x-one": "1"}, content_type="text/plain"
    )
    assert info.etag
    head = storage.head(bucket, "a/b.bin")
    assert head.size == 5 and head.metadata == {"x-one": "1"}
    assert head.content_type == "text/plain" and head.etag == info.etag
    assert read(storage, bucket, "a/b.bin") == b"hello"
    assert read(storage, bucket, "a/b.bin", start=1, end=3) == b"el"
    storage.put(bucket, "empty", b"")
    assert read(storage, bucket, "empty") == b""


def test_conditional_writes_and_deletes(storage: Storage, bucket: str) -> None:
    first = storage.put(bucket, "k", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        storage.put(bucket, "k", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        storage.delete(bucket, "k", if_match='"0123456789abcdef0123456789abcdef"')
    storage.delete(bucket, "k", if_match=first.etag)
    with pytest.raises(ObjectNotFound):
        storage.head(bucket, "k")
    storage.delete(bucket, "k")  # missing: not an error


def test_listing_pages_prefixes_and_order(storage: Storage, bucket: str) -> None:
    keys = [f"d/{i:03d}" for i in range(25)] + ["d/sub/x", "d/sub/y", "e", "d-", "d0"]
    for k in keys:
        storage.put(bucket, k, b"")
    seen, token = [], None
    while True:
        page = storage.list_objects(bucket, prefix="d/", max_keys=7, token=token)
        assert len(page.objects) <= 7
        seen += [o.key for o in page.objects]
        if not page.next_token:
            break
        token = page.next_token
    assert seen == sorted(k for k in keys if k.startswith("d/"))
    page = storage.list_objects(bucket, delimiter="/")
    assert [o.key for o in page.objects] == ["d-", "d0", "e"] and page.prefixes == ["d/"]
    page = storage.list_objects(bucket, prefix="d/", delimiter="/", start_after="d/020")
    assert [o.key for o in page.objects] == [f"d/{i:03d}" for i in range(21, 25)]
    assert page.prefixes == ["d/sub/"]


def test_copy_and_delete_many(storage: Storage, bucket: str) -> None:
    storage.put(bucket, "src", b"data", metadata={"a": "1"}, content_type="text/x")
    storage.copy(bucket, "src", bucket, "same")
    assert storage.head(bucket, "same").metadata == {"a": "1"}
    storage.copy(bucket, "src", bucket, "new", metadata={"b": "2"}, content_type="text/y")
    head = storage.head(bucket, "new")
    assert head.metadata == {"b": "2"} and head.content_type == "text/y"
    assert read(storage, bucket, "new") == b"data"
    assert storage.delete_many(bucket, ["src", "same", "new", "never-was"]) == {}
    assert list(storage.iter_objects(bucket)) == []


def test_bucket_errors(storage: Storage, bucket: str) -> None:
    with pytest.raises(BucketNotFound):
        storage.head_bucket("no-such-bucket-here")
    with pytest.raises((BucketNotFound, ObjectNotFound)):
        storage.head("no-such-bucket-here", "k")
    storage.put(bucket, "k", b"1")
    with pytest.raises(BucketNotEmpty):
        storage.delete_bucket(bucket)
    assert bucket in [b.name for b in storage.list_buckets()]


@pytest.fixture(params=["seaweedfs", "moto"])
def small_parts(request: pytest.FixtureRequest) -> S3Storage:
    """An S3 store that goes multipart from 5 MiB, in 5 MiB parts (S3's smallest)."""
    server = request.getfixturevalue("seaweedfs" if request.param == "seaweedfs" else "moto_server")
    return s3_storage(server, multipart_threshold=5 << 20, multipart_chunksize=5 << 20)


def test_multipart_upload_and_parallel_ranged_download(small_parts: S3Storage) -> None:
    st = small_parts
    bucket = f"mp-{os.urandom(4).hex()}"
    st.create_bucket(bucket)
    data = blob(17 << 20, 1)
    st.put(bucket, "buffer", data, metadata={"m": "1"})
    st.put(bucket, "stream", io.BytesIO(data))  # size unknown up front
    ref = st.put(bucket, "created", data, if_none_match=True)
    assert ref.size == len(data)
    with pytest.raises(PreconditionFailed):
        st.put(bucket, "created", data, if_none_match=True)  # create-only on completion
    for key in ("buffer", "stream", "created"):
        info, body = st.get(bucket, key)
        assert info.size == len(data)
        got = bytearray()
        while chunk := body.read(1 << 20):
            got += chunk
        body.close()
        assert bytes(got) == data
    assert st.head(bucket, "buffer").metadata == {"m": "1"}
    assert (
        read(st, bucket, "buffer", start=(5 << 20) - 3, end=(10 << 20) + 3)
        == data[(5 << 20) - 3 : (10 << 20) + 3]
    )
    # Nothing of the refused upload is left behind.
    st.delete_many(bucket, ["buffer", "stream", "created"])
    st.delete_bucket(bucket)
    st.close()


def test_wrong_credentials_and_read_only_principal(seaweedfs: Server) -> None:
    admin = s3_storage(seaweedfs)
    bucket = f"acl-{os.urandom(4).hex()}"
    admin.create_bucket(bucket)
    admin.put(bucket, "k", b"secret")
    wrong = S3Storage(
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key="not-the-secret",
        region="us-east-1",
        max_attempts=1,
    )
    with pytest.raises(AccessDenied, match=r"secret key is wrong|denied"):
        wrong.head_bucket(bucket)
    assert seaweedfs.reader_key and seaweedfs.reader_secret
    reader = S3Storage(
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.reader_key,
        aws_secret_access_key=seaweedfs.reader_secret,
        region="us-east-1",
        max_attempts=1,
    )
    assert read(reader, bucket, "k") == b"secret"
    with pytest.raises(AccessDenied):
        reader.put(bucket, "k2", b"no")
    with pytest.raises(AccessDenied):
        reader.delete(bucket, "k")
    admin.delete(bucket, "k")
    admin.delete_bucket(bucket)


def test_profile_gives_credentials_and_region(
    seaweedfs: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "credentials").write_text(
        f"[dgtest]\naws_access_key_id = {seaweedfs.access_key}\n"
        f"aws_secret_access_key = {seaweedfs.secret_key}\n"
    )
    (tmp_path / "config").write_text("[profile dgtest]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ignored-because-a-profile-is-named")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ignored")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")  # the profile's region wins
    st = S3Storage(endpoint_url=seaweedfs.endpoint_url, profile="dgtest")
    assert st.client.meta.region_name == "eu-west-3"
    st.list_buckets()  # the profile's keys were used: the environment's would be refused
    # A profile that names no region: the environment's fills in; an explicit one wins.
    (tmp_path / "config").write_text("[profile dgtest]\noutput = json\n")
    assert (
        S3Storage(endpoint_url=seaweedfs.endpoint_url, profile="dgtest").client.meta.region_name
        == "us-west-1"
    )
    (tmp_path / "config").write_text("[profile dgtest]\nregion = eu-west-3\n")
    explicit = S3Storage(endpoint_url=seaweedfs.endpoint_url, profile="dgtest", region="ap-south-1")
    assert explicit.client.meta.region_name == "ap-south-1"
    from deltaglider.errors import ConfigError

    with pytest.raises(ConfigError):
        S3Storage(endpoint_url=seaweedfs.endpoint_url, profile="no-such-profile")
    with pytest.raises(ConfigError):
        S3Storage(
            endpoint_url=seaweedfs.endpoint_url,
            profile="dgtest",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )


def test_an_empty_put_does_not_stall_the_next(seaweedfs: Server) -> None:
    """botocore 1.43 with urllib3 2.7 (what CI machines have): an empty PUT sent with
    ``Expect: 100-continue`` made the next upload on its connection wait out the whole read
    timeout. S3Storage sends empty bodies without it."""
    storage = s3_storage(seaweedfs, read_timeout=10)
    bucket = f"stall-{os.getpid()}"
    storage.create_bucket(bucket)
    try:
        bodies = [b"", b"x" * 10, b"", b"y" * 1000]
        for i, body in enumerate(bodies):
            started = time.monotonic()
            storage.put(bucket, f"k{i}", body, metadata={"dg-n": str(i)})
            took = time.monotonic() - started
            assert took < 5, f"put {i} ({len(body)} bytes) took {took:.1f} s: a stall"
        for i, body in enumerate(bodies):
            _, stored = storage.get(bucket, f"k{i}")
            with stored:
                assert stored.read() == body
    finally:
        storage.delete_many(bucket, [f"k{i}" for i in range(4)])
        storage.delete_bucket(bucket)
        storage.close()


def test_head_many_agrees_with_head(storage: Storage, bucket: str) -> None:
    keys = [f"h/{i:03d}-{name}" for i, name in enumerate(["a b", "ü€", "x+y=z", "~t", "p%20q"])]
    for i, key in enumerate(keys):
        storage.put(bucket, key, blob(i * 10, i), metadata={"dg-n": str(i)}, content_type="x/y")
    heads = storage.head_many(bucket, [*keys, "h/missing"])
    assert heads["h/missing"] is None
    for key in keys:
        one = storage.head(bucket, key)
        many = heads[key]
        assert many is not None
        assert (many.key, many.size, many.etag, many.metadata, many.content_type) == (
            one.key,
            one.size,
            one.etag,
            one.metadata,
            one.content_type,
        )
        assert many.last_modified == one.last_modified
    if isinstance(storage, S3Storage):  # the fast path was taken, not only boto3's
        assert storage._fast.buckets[bucket] is True


def test_head_many_with_wrong_credentials_raises_access_denied(seaweedfs: Server) -> None:
    admin = s3_storage(seaweedfs)
    bucket = f"hm-{os.urandom(4).hex()}"
    admin.create_bucket(bucket)
    admin.put(bucket, "k", b"data")
    wrong = S3Storage(
        endpoint_url=seaweedfs.endpoint_url,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key="not-the-secret",
        region="us-east-1",
        max_attempts=1,
    )
    try:
        with pytest.raises(AccessDenied):
            wrong.head_many(bucket, ["k", "k2"])
        assert not wrong._fast.buckets.get(bucket)  # a 403 is never taken for an answer
    finally:
        wrong.close()
        admin.delete(bucket, "k")
        admin.delete_bucket(bucket)
        admin.close()


def test_requests_carry_checksums_only_when_required(seaweedfs: Server) -> None:
    """S3-compatible stores refuse or mishandle the flexible checksums boto3 sends by default:
    a PUT carries none (sha256 of every object is kept in its metadata instead)."""
    st = s3_storage(seaweedfs)
    headers: list[dict[str, str]] = []
    st.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: headers.append(dict(request.headers))
    )
    bucket = f"dg-checksums-{os.getpid()}"
    st.create_bucket(bucket)
    try:
        st.put(bucket, "a.bin", b"x" * 1000, metadata={"k": "v"})
        st.put(bucket, "b.bin", io.BytesIO(b"y" * 1000), size=1000)
        assert len(headers) == 2
        for h in headers:
            sent = {k.lower() for k in h}
            assert not {k for k in sent if k.startswith("x-amz-checksum") or k == "content-md5"}, (
                sent
            )
            assert "x-amz-sdk-checksum-algorithm" not in sent, sent
    finally:
        st.delete_many(bucket, ["a.bin", "b.bin"])
        st.delete_bucket(bucket)
    st.close()


class _Sent(Exception):
    pass


@pytest.mark.parametrize(
    ("style", "host_has_bucket"), [("path", False), ("virtual", True), (None, False)]
)
def test_addressing_style(style: str | None, host_has_bucket: bool) -> None:
    """The addressing style reaches the requests: path puts the bucket in the path, virtual in
    the host name; the default with an endpoint URL is path (what S3-compatible stores expect)."""
    st = S3Storage(
        endpoint_url="http://localhost:9",  # never reached: the request is stopped before
        addressing_style=style,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        max_attempts=1,
    )
    urls: list[str] = []

    def stop(request: Any, **_: Any) -> None:
        urls.append(request.url)
        raise _Sent

    st.client.meta.events.register("before-send.s3", stop)
    with pytest.raises(_Sent):
        st.client.head_object(Bucket="mybucket", Key="k.bin")
    host = urls[0].split("/")[2]
    assert host.startswith("mybucket.") is host_has_bucket, urls
    assert ("/mybucket/k.bin" in urls[0]) is not host_has_bucket, urls


def test_pool_is_sized_for_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_MAX_WORKERS", "20")
    st = S3Storage(
        endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s"
    )
    assert st.client.meta.config.max_pool_connections == 80
    monkeypatch.delenv("DG_MAX_WORKERS")
    st = S3Storage(
        endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s"
    )
    assert st.client.meta.config.max_pool_connections == 32


@pytest.mark.parametrize("backend", ["seaweedfs", "moto"])  # the local store copies files
def test_copy_part_by_part(storage: Storage) -> None:
    """Objects of 5 GiB and more are copied with UploadPartCopy (CopyObject refuses them): the
    same path, taken here at a lowered threshold, keeps bytes, metadata and create-only."""
    assert isinstance(storage, S3Storage)
    storage.multipart_copy_threshold = 6 << 20
    storage.multipart_chunksize = 5 << 20  # S3's smallest part
    bucket = f"dg-copy-parts-{os.getpid()}"
    storage.create_bucket(bucket)
    data = random.Random(7).randbytes(13 << 20)  # three parts
    try:
        storage.put(bucket, "src.bin", data, metadata={"dg-file-sha256": "x", "k": "v"})
        info = storage.copy(bucket, "src.bin", bucket, "dst.bin")
        assert info.size == len(data)
        got, body = storage.get(bucket, "dst.bin")
        assert body.read() == data
        body.close()
        assert got.metadata.get("k") == "v" and got.metadata.get("dg-file-sha256") == "x"
        storage.copy(bucket, "src.bin", bucket, "new.bin", metadata={"a": "b"}, if_none_match=True)
        assert storage.head(bucket, "new.bin").metadata.get("a") == "b"
        if storage.conditional_writes:
            with pytest.raises(PreconditionFailed):
                storage.copy(bucket, "src.bin", bucket, "new.bin", if_none_match=True)
        uploads = storage.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert uploads == []  # a refused completion leaves no upload open
    finally:
        storage.delete_many(bucket, [o.key for o in storage.iter_objects(bucket)])
        storage.delete_bucket(bucket)
