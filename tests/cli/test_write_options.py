"""S3's write options on every CLI path that stores objects (``--sse``, ``--sse-kms-key-id``,
``--storage-class``, ``--acl``, ``--cache-control``, ``--content-encoding``, as ``aws s3 cp``
takes them): cp uploads (one file, several, ``-r``, stdin), cp S3 to S3, sync uploads and
copies, migrate. Against moto, which implements them: every physical object the write stored
(the delta or direct object and the reference it created) is checked with a plain boto3
client's ``head_object``/``get_object_acl``. The local store refuses them with one usage
error, before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_conftest import Dg, Target, drop_target, make_target, ok, write
from servers import REGION
from test_cp import release

#: The flags, and what each physical object must then carry.
FLAGS = (
    "--sse",
    "--storage-class",
    "STANDARD_IA",
    "--acl",
    "public-read",
    "--cache-control",
    "max-age=60",
    "--content-encoding",
    "gzip",
)
EXPECTED = {
    "ServerSideEncryption": "AES256",
    "StorageClass": "STANDARD_IA",
    "CacheControl": "max-age=60",
    "ContentEncoding": "gzip",
    "public": True,
}
PLAIN = {
    "ServerSideEncryption": None,
    "StorageClass": "STANDARD",
    "CacheControl": None,
    "ContentEncoding": None,
    "public": False,
}


@pytest.fixture
def moto(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t = make_target("moto_server", tmp_path, request)
    yield t
    drop_target(t)


@pytest.fixture
def mdg(moto: Target, workdir: Path) -> Dg:
    return Dg(moto, workdir)


@pytest.fixture
def raw(moto: Target) -> Any:
    assert moto.server is not None
    return boto3.client(
        "s3",
        endpoint_url=moto.server.endpoint_url,
        aws_access_key_id=moto.server.access_key,
        aws_secret_access_key=moto.server.secret_key,
        region_name=REGION,
    )


def stored(raw: Any, bucket: str, key: str) -> dict[str, Any]:
    """What S3 keeps of the write options on one physical object."""
    head = raw.head_object(Bucket=bucket, Key=key)
    grants = raw.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return {
        "ServerSideEncryption": head.get("ServerSideEncryption"),
        "StorageClass": head.get("StorageClass", "STANDARD"),
        "CacheControl": head.get("CacheControl"),
        "ContentEncoding": head.get("ContentEncoding"),
        "public": any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants),
    }


def _check(raw: Any, target: Target, physical: list[str], expected: dict[str, Any]) -> None:
    assert physical, "nothing to check"
    for key in physical:
        assert stored(raw, target.bucket, key) == expected, key


def test_cp_uploads_apply_them_to_every_object_stored(
    mdg: Dg, moto: Target, raw: Any, workdir: Path
) -> None:
    for v in (1, 2, 3):
        write(workdir / f"tree/app-{v}.zip", release(v))
    write(workdir / "tree/readme.txt", b"readme")
    write(workdir / "one/app-1.zip", release(1))
    write(workdir / "many/app-4.zip", release(4))
    write(workdir / "many/app-5.zip", release(5))
    # -r (a batch: put_many), one file, several sources, stdin.
    ok(mdg("cp", "-r", "tree", moto.url("r/"), *FLAGS))
    ok(mdg("cp", "one/app-1.zip", moto.url("one/"), *FLAGS))
    ok(mdg("cp", "many/app-4.zip", "many/app-5.zip", moto.url("many/"), *FLAGS))
    ok(mdg("cp", "-", moto.url("in/app-9.zip"), *FLAGS, input=release(9)))
    physical = moto.physical_keys()
    assert "r/reference.bin" in physical and "r/readme.txt" in physical
    assert {"one/reference.bin", "many/reference.bin", "in/reference.bin"} <= set(physical)
    assert sum(k.endswith(".delta") for k in physical) == 7
    _check(raw, moto, physical, EXPECTED)
    # The bytes read back (Content-Encoding is a label: nothing decodes them on the way).
    for key, data in (("r/app-2.zip", release(2)), ("r/readme.txt", b"readme")):
        assert moto.read(key) == data
    down = ok(mdg("cp", moto.url("many/app-5.zip"), "back.zip"))
    assert down.stdout.startswith("download:") and (workdir / "back.zip").read_bytes() == release(5)


def test_without_them_nothing_is_set(mdg: Dg, moto: Target, raw: Any, workdir: Path) -> None:
    write(workdir / "app-1.zip", release(1))
    ok(mdg("cp", "app-1.zip", moto.url("p/")))
    _check(raw, moto, moto.physical_keys("p/"), PLAIN)


@pytest.fixture
def plain(mdg: Dg, moto: Target, workdir: Path) -> str:
    """A folder stored without write options: ``plain/app-1.zip``, ``plain/app-2.zip``."""
    for v in (1, 2):
        write(workdir / f"src/app-{v}.zip", release(v))
    ok(mdg("cp", "-r", "src", moto.url("plain/")))
    return moto.url("plain/")


def test_s3_to_s3_copies_take_them(mdg: Dg, moto: Target, raw: Any, plain: str) -> None:
    # Into a new folder (rebuilt, a new reference) and into the same one (the delta copied
    # server-side); -r.
    ok(mdg("cp", moto.url("plain/app-2.zip"), moto.url("c/"), *FLAGS))
    ok(mdg("cp", moto.url("plain/app-1.zip"), moto.url("plain/again.zip"), *FLAGS))
    ok(mdg("cp", "-r", plain, moto.url("cr/"), *FLAGS))
    _check(raw, moto, [*moto.physical_keys("c/"), "plain/again.zip.delta"], EXPECTED)
    _check(raw, moto, moto.physical_keys("cr/"), EXPECTED)
    _check(raw, moto, ["plain/reference.bin", "plain/app-1.zip.delta"], PLAIN)
    assert moto.read("c/app-2.zip") == release(2)


def test_sync_takes_them(mdg: Dg, moto: Target, raw: Any, plain: str) -> None:
    ok(mdg("sync", "src", moto.url("s/"), *FLAGS))
    ok(mdg("sync", plain, moto.url("s2/"), *FLAGS))
    physical = moto.physical_keys("s/") + moto.physical_keys("s2/")
    assert len(physical) == 6
    _check(raw, moto, physical, EXPECTED)


def test_migrate_takes_them(mdg: Dg, moto: Target, raw: Any, plain: str) -> None:
    ok(mdg("migrate", plain, moto.url("m/"), "--yes", *FLAGS))
    migrated = moto.physical_keys("m/")
    assert "m/plain/reference.bin" in migrated and len(migrated) == 3
    _check(raw, moto, migrated, EXPECTED)
    assert moto.read("m/plain/app-2.zip") == release(2)


def test_kms_with_a_key(mdg: Dg, moto: Target, raw: Any, workdir: Path) -> None:
    write(workdir / "app-1.zip", release(1))
    write(workdir / "app-2.zip", release(2))
    kms = ("--sse", "aws:kms", "--sse-kms-key-id", "alias/dg-cli")
    ok(mdg("cp", "app-1.zip", moto.url("k/"), *kms))
    ok(mdg("cp", "app-2.zip", moto.url("k/"), "--sse=aws:kms", "--sse-kms-key-id=alias/dg-cli"))
    physical = moto.physical_keys("k/")
    assert len(physical) == 3
    for key in physical:
        head = raw.head_object(Bucket=moto.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith("alias/dg-cli"), head["SSEKMSKeyId"]
    assert moto.read("k/app-2.zip") == release(2)


def test_sse_given_bare_is_aes256(mdg: Dg, moto: Target, raw: Any, workdir: Path) -> None:
    """As ``aws s3``: ``--sse`` without a value (last, or before another option) is AES256."""
    write(workdir / "notes.txt", b"notes")
    ok(mdg("cp", "notes.txt", moto.url("a.txt"), "--sse"))
    ok(mdg("cp", "notes.txt", moto.url("b.txt"), "--sse", "--acl", "public-read"))
    ok(mdg("cp", "--sse", "--", "notes.txt", moto.url("c.txt")))
    for key in ("a.txt", "b.txt", "c.txt"):
        assert stored(raw, moto.bucket, key)["ServerSideEncryption"] == "AES256", key
    assert stored(raw, moto.bucket, "b.txt")["public"]
    assert not stored(raw, moto.bucket, "a.txt")["public"]


def test_archive_classes_keep_the_reference_readable(
    mdg: Dg, moto: Target, raw: Any, workdir: Path
) -> None:
    """A folder's reference in GLACIER could not be read to write or rebuild its deltas (moto
    refuses the GET, as S3 does): the deltas go to the archive class, the reference stays
    STANDARD, and the folder's next upload is still a delta."""
    write(workdir / "app-1.zip", release(1))
    write(workdir / "app-2.zip", release(2))
    for archive, folder in (("GLACIER", "g/"), ("DEEP_ARCHIVE", "d/")):
        for name in ("app-1.zip", "app-2.zip"):
            ok(mdg("cp", name, moto.url(folder), "--storage-class", archive))
        assert stored(raw, moto.bucket, f"{folder}reference.bin")["StorageClass"] == "STANDARD"
        for name in ("app-1.zip", "app-2.zip"):
            head = raw.head_object(Bucket=moto.bucket, Key=f"{folder}{name}.delta")
            assert head["StorageClass"] == archive, name
    ok(mdg("cp", "app-1.zip", moto.url("n/"), "--storage-class", "GLACIER", "--no-delta"))
    assert raw.head_object(Bucket=moto.bucket, Key="n/app-1.zip")["StorageClass"] == "GLACIER"
    ok(mdg("cp", "app-1.zip", moto.url("ir/"), "--storage-class", "GLACIER_IR"))
    assert moto.read("ir/app-1.zip") == release(1)


def test_usage_errors(mdg: Dg, moto: Target, workdir: Path) -> None:
    write(workdir / "app-1.zip", release(1))
    for args, words in (
        (("--sse-kms-key-id", "alias/x"), "--sse-kms-key-id needs --sse aws:kms"),
        (("--sse", "AES256", "--sse-kms-key-id", "alias/x"), "needs --sse aws:kms"),
        (("--sse", "aes256"), "'aes256' is not one of"),
        (("--storage-class", "COLD"), "'COLD' is not one of"),
        (("--acl", "everyone"), "'everyone' is not one of"),
    ):
        run = mdg("cp", "app-1.zip", moto.url("u/"), *args)
        assert run.exit_code == 2, (args, run.stderr)
        assert words in run.stderr, (args, run.stderr)
    assert moto.physical_keys() == []


def test_downloads_ignore_them(mdg: Dg, moto: Target, workdir: Path) -> None:
    """As aws: a download writes nothing to S3, the options are not for it."""
    write(workdir / "up/app-1.zip", release(1))
    ok(mdg("cp", "-r", "up", moto.url("d/")))
    ok(mdg("cp", moto.url("d/app-1.zip"), "x.zip", *FLAGS))
    ok(mdg("sync", moto.url("d/"), "down", *FLAGS))
    assert (workdir / "x.zip").read_bytes() == (workdir / "down/app-1.zip").read_bytes()


@pytest.fixture
def local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t = make_target("local", tmp_path, request)
    yield t
    drop_target(t)


def test_the_local_store_refuses_them_before_anything_is_stored(
    local: Target, workdir: Path
) -> None:
    dg = Dg(local, workdir)
    write(workdir / "tree/app-1.zip", release(1))
    write(workdir / "tree/app-2.zip", release(2))
    ok(dg("cp", "-r", "tree", local.url("have/")))
    before = local.physical_keys()
    runs = [
        ("cp", "tree/app-1.zip", local.url("x/"), "--sse"),
        ("cp", "-r", "tree", local.url("x/"), "--storage-class", "STANDARD_IA"),
        ("cp", "tree/app-1.zip", "tree/app-2.zip", local.url("x/"), "--acl", "private"),
        ("cp", "-r", "tree", local.url("x/"), "--cache-control", "no-cache", "--dryrun"),
        ("cp", local.url("have/app-1.zip"), local.url("x/"), "--content-encoding", "gzip"),
        ("sync", "tree", local.url("x/"), "--sse", "aws:kms", "--sse-kms-key-id", "k"),
        ("sync", local.url("have/"), local.url("x/"), "--acl", "private"),
        ("migrate", local.url("have/"), local.url("x/"), "--yes", "--sse"),
    ]
    for args in runs:
        run = dg(*args)
        assert run.exit_code == 2, (args, run.stdout, run.stderr)
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and "the local store (file://) has no S3 write options" in lines[0]
        assert lines[0].startswith("deltaglider: error: --"), lines
        assert run.stdout == ""
    stdin = dg("cp", "-", local.url("x/in.zip"), "--sse", input=release(3))
    assert stdin.exit_code == 2 and "--sse: the local store" in stdin.stderr
    assert local.physical_keys() == before
    # Downloads from it ignore them, as from S3.
    ok(dg("cp", local.url("have/app-1.zip"), "back.zip", "--sse"))
    assert (workdir / "back.zip").read_bytes() == release(1)


def test_json_records_still_report_what_was_stored(mdg: Dg, moto: Target, workdir: Path) -> None:
    write(workdir / "app-1.zip", release(1))
    out = ok(mdg("cp", "app-1.zip", moto.url("j/"), "--json", *FLAGS)).stdout
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["status"] == "ok" and record["reference"] is True


@pytest.mark.slow
def test_same_flags_same_objects_as_aws(mdg: Dg, moto: Target, raw: Any, workdir: Path) -> None:
    """The AWS CLI (1.x) and deltaglider given the same flags: the object aws stores carries
    what each of deltaglider's objects carries; both refuse the same bad values (exit 2) and
    read a bare ``--sse`` as AES256."""
    import os
    import subprocess

    from originals import awscli

    assert moto.server is not None
    env = {**os.environ, **moto.env, "AWS_ENDPOINT_URL": moto.server.endpoint_url, "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)

    def aws(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(awscli()), "s3", *args],
            cwd=workdir,
            env=env,
            input=input,
            capture_output=True,
            timeout=120,
        )

    write(workdir / "app-1.zip", release(1))
    write(workdir / "app-2.zip", release(2))
    for flags in (FLAGS, ("--sse", "aws:kms", "--sse-kms-key-id", "alias/dg", "--acl", "private")):
        name = "kms" if "aws:kms" in flags else "all"
        assert aws("cp", "app-1.zip", moto.url(f"aws-{name}/app-1.zip"), *flags).returncode == 0
        ok(mdg("cp", "app-1.zip", moto.url(f"dg-{name}/"), *flags))
        ok(mdg("cp", "app-2.zip", moto.url(f"dg-{name}/"), *flags))
        theirs = raw.head_object(Bucket=moto.bucket, Key=f"aws-{name}/app-1.zip")
        for key in moto.physical_keys(f"dg-{name}/"):
            ours = raw.head_object(Bucket=moto.bucket, Key=key)
            for field in ("ServerSideEncryption", "SSEKMSKeyId", "StorageClass", "CacheControl"):
                assert ours.get(field) == theirs.get(field), (key, field)
            assert ours.get("ContentEncoding") == theirs.get("ContentEncoding"), key
            assert stored(raw, moto.bucket, key)["public"] == (name == "all"), key
    # Bare --sse before another option; bad values refused by both, as usage errors.
    assert aws("cp", "app-1.zip", moto.url("aws-bare"), "--sse", "--acl", "private").returncode == 0
    ok(mdg("cp", "app-1.zip", moto.url("dg-bare"), "--sse", "--acl", "private", "--no-delta"))
    for key in ("aws-bare", "dg-bare"):
        assert raw.head_object(Bucket=moto.bucket, Key=key)["ServerSideEncryption"] == "AES256"
    for bad in (("--sse", "aes256"), ("--storage-class", "COLD"), ("--acl", "everyone")):
        assert aws("cp", "app-1.zip", moto.url("x"), *bad).returncode == 2, bad
        assert mdg("cp", "app-1.zip", moto.url("x"), *bad).exit_code == 2, bad
