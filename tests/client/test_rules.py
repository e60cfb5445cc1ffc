"""The client's rules that are not a comparison with boto3: the documented differences are
one list, rendered in docs/sdk.md; on a store that cannot tag, put_object with Tagging stores
nothing; a put whose tagging fails leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from client_conftest import Buckets, deltaglider_client, physical_keys
from data import release
from servers import Server

from deltaglider import create_client
from deltaglider.client import BEHAVIOURS, DIFFERENCES, NotSupportedError, differences_markdown
from deltaglider.config import Config

SDK_DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n") + len(f"## {title}\n")
    end = text.find("\n## ", start)
    return text[start : end + 1 if end >= 0 else len(text)].strip("\n") + "\n"


def test_the_doc_renders_the_one_list() -> None:
    """docs/sdk.md's "Differences from boto3" is differences_markdown(): every entry of
    DIFFERENCES and BEHAVIOURS, and nothing else."""
    section = _section(SDK_DOC.read_text(encoding="utf-8"), "Differences from boto3")
    assert section == differences_markdown(), (
        "docs/sdk.md's Differences section is out of step with deltaglider.client: paste "
        "differences_markdown() into it"
    )
    for name in (*DIFFERENCES, *BEHAVIOURS):
        assert f"| {name} |" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(DIFFERENCES) + len(BEHAVIOURS) + 2  # two header rows
    # What used to be prose only is in the list now.
    for name in ("TransferConfig", "generate_presigned_url", "delete_bucket", "head_object Range"):
        assert name in BEHAVIOURS


def _local(tmp_path: Path) -> Any:
    client = create_client(
        (tmp_path / "store").as_uri(),
        deltaglider_config=Config.from_env(environ={}, cache_backend="memory"),
    )
    client.create_bucket(Bucket="local")
    return client


@pytest.mark.parametrize("key, body", [("t/a.txt", b"plain"), ("t/app-1.0.zip", release(0))])
def test_tagging_on_a_local_store_stores_nothing(tmp_path: Path, key: str, body: bytes) -> None:
    client = _local(tmp_path)
    try:
        with pytest.raises(NotSupportedError, match="Tagging") as info:
            client.put_object(Bucket="local", Key=key, Body=body, Tagging="a=1")
        assert info.value.operation == "PutObject" and info.value.parameter == "Tagging"
        assert "Contents" not in client.list_objects_v2(Bucket="local")
        files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
        assert not [p for p in files if "t" in p.relative_to(tmp_path / "store").parts[1:2]]
        with pytest.raises(NotSupportedError, match="Tagging"):
            client.copy_object(
                Bucket="local", Key="c", CopySource="local/x", TaggingDirective="REPLACE",
                Tagging="a=1",
            )  # fmt: skip
        # Without tags the same put works.
        client.put_object(Bucket="local", Key=key, Body=body)
        assert client.get_object(Bucket="local", Key=key)["Body"].read() == body
    finally:
        client.close()


def test_put_and_content_checks_on_a_local_store(tmp_path: Path) -> None:
    import base64
    import hashlib

    client = _local(tmp_path)
    try:
        wrong = base64.b64encode(hashlib.md5(b"no").digest()).decode()
        for kwargs, expected in (
            ({"ContentMD5": wrong}, "BadDigest"),
            ({"ContentMD5": "%%%"}, "InvalidDigest"),
            ({"ContentLength": 99}, "IncompleteBody"),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                client.put_object(Bucket="local", Key="k", Body=b"body", **kwargs)
            assert caught.value.response["Error"]["Code"] == expected
        assert "Contents" not in client.list_objects_v2(Bucket="local")
        right = base64.b64encode(hashlib.md5(b"body").digest()).decode()
        client.put_object(Bucket="local", Key="k", Body=b"body", ContentMD5=right, ContentLength=4)
        assert client.get_object(Bucket="local", Key="k")["Body"].read() == b"body"
    finally:
        client.close()


@pytest.mark.parametrize("key, body", [("u/a.txt", b"plain"), ("u/app-1.0.zip", release(0))])
def test_a_put_writes_its_tags_with_the_object(
    seaweedfs: Server, buckets: Buckets, key: str, body: bytes
) -> None:
    """put_object's tags go in the request that writes the object (x-amz-tagging), so the
    object never exists untagged; a copy whose tagging fails (here: a stand-in for a lost
    permission) is removed again and the error raised."""
    client = deltaglider_client(seaweedfs)
    bucket = buckets.new("tg")
    calls: list[dict[str, Any]] = []
    sent: list[dict[str, str]] = []

    def refuse(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
             "ResponseMetadata": {"HTTPStatusCode": 403}},
            "PutObjectTagging",
        )  # fmt: skip

    try:
        client.boto_client.put_object_tagging = refuse
        client.storage.client.meta.events.register(
            "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
        )
        client.put_object(Bucket=bucket, Key=key, Body=body, Tagging="a=1&b=x y")
        assert calls == []  # no second request that could fail after the object exists
        tagged = [h["x-amz-tagging"] for h in sent if h.get("x-amz-tagging")]
        assert tagged == [b"a=1&b=x+y"]
        head = client.head_object(Bucket=bucket, Key=key)
        got = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert sorted((t["Key"], t["Value"]) for t in got) == [("a", "1"), ("b", "x y")]
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert head["ContentLength"] == len(body)
        client.delete_object(Bucket=bucket, Key=key)
        assert physical_keys(client.boto_client, bucket) == []
        # copy_object with new tags likewise
        client.put_object(Bucket=bucket, Key="u/src.txt", Body=b"src")
        with pytest.raises(botocore.exceptions.ClientError):
            client.copy_object(
                Bucket=bucket, Key="u/dst.txt", CopySource=f"{bucket}/u/src.txt",
                TaggingDirective="REPLACE", Tagging="b=2",
            )  # fmt: skip
        assert physical_keys(client.boto_client, bucket) == ["u/src.txt"]
    finally:
        client.close()
