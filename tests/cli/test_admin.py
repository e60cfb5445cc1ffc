"""The original DeltaGlider's ``purge``, ``put-bucket-acl`` and ``get-bucket-acl`` commands, on
SeaweedFS, moto (ACLs as AWS keeps them) and the local store (which has no ACLs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, drop_target, make_target, ok

from deltaglider import format as fmt

TMP = ".deltaglider/tmp/"


def _temp_copy(target: Target, name: str, data: bytes, expires: datetime) -> str:
    """A temporary copy as a presigned URL of a delta leaves it (the SDK's metadata)."""
    key = f"{TMP}{name}/app.zip"
    meta = fmt.temp_copy_metadata(
        source_key="rel/app.zip", file_size=len(data), file_sha256=None, expires=expires
    )
    target.storage().put(target.bucket, key, data, size=len(data), metadata=meta)
    return key


@pytest.mark.slow
def test_purge(dg: Dg, target: Target) -> None:
    now = datetime.now(timezone.utc)
    old = _temp_copy(target, "a", b"x" * 3000, now - timedelta(hours=1))
    fresh = _temp_copy(target, "b", b"y" * 10, now + timedelta(hours=1))
    keep = target.physical_keys()
    # --dry-run (the original's flag; --dryrun too): says what, deletes nothing.
    for flag in ("--dry-run", "--dryrun"):
        dry = ok(dg("purge", target.bucket, flag)).stdout.splitlines()
        assert dry[:4] == [
            "Dry run: Would delete 1 expired file(s)",
            "Total space to free: 3,000 bytes",
            "Kept (URL not expired): 1",
            "Files that would be deleted (first 10):",
        ]
        assert len(dry) == 5 and dry[4].startswith(f"  {old} (expires: ")
    doc = json.loads(ok(dg("purge", f"s3://{target.bucket}/", "--dry-run", "--json")).stdout)
    files = doc.pop("files")
    assert doc.pop("expired_files") == files  # the original's first 10
    assert [(f["key"], f["size"]) for f in files] == [(old, 3000)] and files[0]["expires_at"]
    assert doc == {
        "bucket": target.bucket,
        "prefix": TMP,
        "dry_run": True,
        "would_delete_count": 1,
        "total_size_to_free": 3000,
        "deleted": 1,
        "bytes": 3000,
        "kept": 1,
        "all": False,
    }
    assert target.physical_keys() == keep
    # The purge: the original's report (and document), the expired copy gone.
    text = ok(dg("purge", target.bucket)).stdout.splitlines()
    assert text[:6] == [
        f"Purge Statistics for bucket: {target.bucket}",
        "=" * 60,
        "Expired files found:  1",
        "Files deleted:        1",
        "Errors:               0",
        "Space freed:          3,000 bytes (2.9 KiB)",
    ]
    assert text[6] == "Kept (not expired):   1" and text[7].startswith("Duration:             ")
    assert target.physical_keys() == sorted(k for k in keep if k != old)
    again = json.loads(ok(dg("purge", f"s3://{target.bucket}", "--json")).stdout)
    for field, value in (
        ("bucket", target.bucket),
        ("prefix", TMP),
        ("deleted_count", 0),
        ("expired_count", 0),
        ("error_count", 0),
        ("total_size_freed", 0),
        ("errors", []),
        ("kept", 1),
    ):
        assert again[field] == value, field
    assert isinstance(again["duration_seconds"], float)
    # --all: the unexpired copy too. Nothing else is touched.
    ok(dg("purge", target.bucket, "--all"))
    assert fresh not in target.physical_keys() and not any(
        k.startswith(TMP) for k in target.physical_keys()
    )


def test_purge_errors(dg: Dg, target: Target) -> None:
    missing = dg("purge", f"{target.bucket}-missing")
    assert missing.exit_code == 1
    assert missing.stderr == f"deltaglider: error: bucket {target.bucket}-missing does not exist\n"
    key = dg("purge", f"s3://{target.bucket}/some/key")
    assert key.exit_code == 2 and "names a key" in key.stderr


@pytest.fixture
def moto_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t = make_target("moto_server", tmp_path, request)
    yield t
    drop_target(t)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["seaweedfs", "moto"])
def test_bucket_acls(where: str, s3_target: Target, moto_target: Target, workdir: Path) -> None:
    target = s3_target if where == "seaweedfs" else moto_target
    dg = Dg(target, workdir)
    before = json.loads(ok(dg("get-bucket-acl", target.bucket)).stdout)
    assert "ResponseMetadata" not in before
    assert [g["Permission"] for g in before["Grants"]] == ["FULL_CONTROL"]
    set_acl = ok(dg("put-bucket-acl", f"s3://{target.bucket}", "--acl", "public-read"))
    assert set_acl.stdout == f"ACL updated for bucket: {target.bucket}\n"
    after = json.loads(ok(dg("get-bucket-acl", f"s3://{target.bucket}")).stdout)
    assert {(g["Grantee"].get("URI", ""), g["Permission"]) for g in after["Grants"]} >= {
        ("http://acs.amazonaws.com/groups/global/AllUsers", "READ")
    }
    # The whole policy as JSON (what get-bucket-acl printed), back to private.
    ok(dg("put-bucket-acl", target.bucket, "--acl", "private"))
    private = json.loads(ok(dg("get-bucket-acl", target.bucket)).stdout)
    assert [g["Permission"] for g in private["Grants"]] == ["FULL_CONTROL"]
    if where == "moto":
        policy = json.dumps({"Grants": after["Grants"], "Owner": after["Owner"]})
        ok(dg("put-bucket-acl", target.bucket, "--access-control-policy", policy))
        assert json.loads(ok(dg("get-bucket-acl", target.bucket)).stdout) == after
        grant = f"id={after['Owner']['ID']}"
        ok(dg("put-bucket-acl", target.bucket, "--grant-read", grant, "--grant-write", grant))
        grants = json.loads(ok(dg("get-bucket-acl", target.bucket)).stdout)["Grants"]
        assert {"READ", "WRITE"} <= {g["Permission"] for g in grants}
    # Errors: one line each.
    missing = dg("get-bucket-acl", f"{target.bucket}-missing")
    assert missing.exit_code == 1
    assert missing.stderr == f"deltaglider: error: bucket {target.bucket}-missing does not exist\n"
    for args, code in (
        (("put-bucket-acl", target.bucket), 2),
        (("put-bucket-acl", target.bucket, "--access-control-policy", "{nope"), 2),
        (("put-bucket-acl", target.bucket, "--acl", "everyone"), 2),
    ):
        out = dg(*args)
        assert out.exit_code == code, args
        assert out.stderr.count("\n") <= 4 and "Traceback" not in out.stderr, args


def test_the_local_store_has_no_acls(
    tmp_path: Path, workdir: Path, request: pytest.FixtureRequest
) -> None:
    target = make_target("local", tmp_path, request)
    try:
        dg = Dg(target, workdir)
        for args in (
            ("get-bucket-acl", target.bucket),
            ("put-bucket-acl", target.bucket, "--acl", "private"),
        ):
            out = dg(*args)
            assert out.exit_code == 1 and out.stdout == ""
            assert out.stderr == (
                f"deltaglider: error: {args[0]}: the local store (file://) has no bucket ACLs; "
                "they are S3's\n"
            )
        # purge works there (temporary copies are the SDK's, on any store).
        _temp_copy(target, "a", b"z", datetime.now(timezone.utc) - timedelta(seconds=1))
        assert "Files deleted:        1" in ok(dg("purge", target.bucket)).stdout
    finally:
        drop_target(target)
