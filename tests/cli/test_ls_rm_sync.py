"""``ls``, ``rm``, ``sync``, ``mb``/``rb`` and ``verify`` through the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, ok, write
from test_cp import release


def _seed(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "seed/app/app-1.zip", release(1))
    write(workdir / "seed/app/app-2.zip", release(2))
    write(workdir / "seed/app/readme.txt", b"hello")
    write(workdir / "seed/other/x.bin", b"x" * 3000)
    write(workdir / "seed/top.txt", b"top")
    ok(dg("cp", "-r", "seed", target.url()))


def test_ls_like_aws_with_logical_sizes(dg: Dg, target: Target, workdir: Path) -> None:
    _seed(dg, target, workdir)
    root = ok(dg("ls", target.url())).stdout.splitlines()
    assert root[0] == f"{'PRE':>30} app/"
    assert root[1] == f"{'PRE':>30} other/"
    assert root[2].endswith(f"{3:>10} top.txt")
    app = ok(dg("ls", target.url("app/"))).stdout.splitlines()
    names = [line.split()[-1] for line in app]
    assert names == ["app-1.zip", "app-2.zip", "readme.txt"]  # no reference.bin, no .delta
    sizes = [int(line.split()[2]) for line in app]
    assert sizes == [200_000, 200_000, 5]  # what a download gives, not the delta's size
    # A prefix without a slash, as aws: the matching folder and objects at that level.
    partial = ok(dg("ls", target.url("ap"))).stdout.splitlines()
    assert partial == [f"{'PRE':>30} app/"]
    # Recursive: whole keys; human-readable and a summary.
    rec = ok(dg("ls", "-r", "-h", "--summarize", target.url())).stdout.splitlines()
    assert [line.split()[-1] for line in rec[:5]] == [
        "app/app-1.zip", "app/app-2.zip", "app/readme.txt", "other/x.bin", "top.txt",
    ]  # fmt: skip
    assert rec[5] == ""
    assert "195.3 KiB" in rec[0]
    assert rec[-2].strip() == "Total Objects: 5"
    assert rec[-1].strip() == f"Total Size: {_human(400_000 + 5 + 3000 + 3)}"
    # --stored: stored size and savings per object, the references counted in the total.
    stored = ok(dg("ls", "--stored", "--summarize", target.url("app/"))).stdout.splitlines()
    assert "Stored Size:" in "\n".join(stored) and "reference(s)" in "\n".join(stored)
    # JSON
    records = [
        json.loads(x) for x in ok(dg("ls", "--json", target.url("app/"))).stdout.splitlines()
    ]
    assert [r["key"] for r in records] == ["app/app-1.zip", "app/app-2.zip", "app/readme.txt"]
    # app-2.zip, the batch's first, became the folder's reference: shown as stored whole.
    assert records[0]["size"] == 200_000 and records[0]["delta"] is True
    assert records[0]["stored_size"] < 10_000
    assert records[1]["delta"] is False and records[1]["reference"] is True
    assert records[1]["stored_size"] > 200_000
    # Nothing under a prefix: exit 1, as aws.
    assert dg("ls", target.url("nothing-here/")).exit_code == 1


def _human(n: int) -> str:
    from deltaglider.cli._console import human_size

    return human_size(n)


@pytest.mark.slow
def test_ls_buckets_and_many_pages(dg: Dg, target: Target, workdir: Path) -> None:
    buckets = ok(dg("ls")).stdout
    assert f" {target.bucket}\n" in buckets
    # More than a page of deltas (S3 gives 1000 keys a page): all listed once, in order.
    storage = target.storage()
    engine = target.engine()
    items = [(f"many/f-{i:04d}.zip", release(1, 2000)[:1990] + b"%010d" % i) for i in range(1205)]
    for _key, _, exc in engine.put_many(target.bucket, items):
        assert exc is None
    lines = ok(dg("ls", target.url("many/"))).stdout.splitlines()
    assert [line.split()[-1] for line in lines] == [f"f-{i:04d}.zip" for i in range(1205)]
    assert all(int(line.split()[2]) == 2000 for line in lines)
    assert len([k for k in target.physical_keys("many/") if k.endswith(".delta")]) == 1205
    del storage


def test_rm_single_recursive_filters_and_reference_cleanup(
    dg: Dg, target: Target, workdir: Path
) -> None:
    _seed(dg, target, workdir)
    out = ok(dg("rm", target.url("app/app-1.zip")))
    assert out.stdout == f"delete: {target.url('app/app-1.zip')}\n"
    assert "app/reference.bin" in target.physical_keys("app/")  # app-2 still needs it
    dry = ok(dg("rm", "-r", target.url("app/"), "--dryrun"))
    assert "(dryrun) delete:" in dry.stdout and len(target.logical_keys("app/")) == 2
    ok(dg("rm", "-r", target.url("app/"), "--exclude", "*.txt"))
    assert target.logical_keys("app/") == ["app/readme.txt"]
    assert "app/reference.bin" not in target.physical_keys("app/")  # the last delta took it
    ok(dg("rm", "--recursive", target.url()))
    assert target.physical_keys() == []
    # rm of a prefix without --recursive is about an object named so (aws): nothing fails.
    assert dg("rm", target.url()).exit_code == 2


def test_sync_up_and_down_is_idempotent(dg: Dg, target: Target, workdir: Path) -> None:
    src = workdir / "site"
    write(src / "app-1.zip", release(1))
    write(src / "app-2.zip", release(2))
    write(src / "docs/index.html", b"<html>1</html>")
    # A download killed midway left its partial file: never uploaded (cp -r or sync).
    write(src / "docs/.index.html.k3x_9a0b.dgpart", b"<ht")
    first = ok(dg("sync", "site", target.url("mirror/")))
    assert first.stdout.count("upload: ") == 3
    assert not [k for k in target.logical_keys("mirror/") if k.endswith(".dgpart")]
    ok(dg("cp", "-r", "site", target.url("tree/")))
    assert sorted(target.logical_keys("tree/")) == [
        "tree/app-1.zip",
        "tree/app-2.zip",
        "tree/docs/index.html",
    ]
    again = ok(dg("sync", "site", target.url("mirror/")))
    assert again.stdout == "Sync completed: Already up to date\n"
    # A changed file (new size) and a new one go up; nothing else.
    write(src / "docs/index.html", b"<html>two</html>")
    write(src / "app-3.zip", release(3))
    third = ok(dg("sync", "site", target.url("mirror/")))
    lines = third.stdout.splitlines()
    uploaded = sorted(line.split()[1] for line in lines if line.startswith("upload:"))
    assert uploaded == ["site/app-3.zip", "site/docs/index.html"]
    # Down into an empty folder, then again: nothing the second time.
    down = ok(dg("sync", target.url("mirror/"), "copy"))
    assert down.stdout.count("download: ") == 4
    assert (workdir / "copy/app-3.zip").read_bytes() == release(3)
    assert ok(dg("sync", target.url("mirror/"), "copy")).stdout.count("download:") == 0
    # The local files took the objects' times (so a later sync compares like aws).
    # Exactly the listing's time (what sync compares), not merely close: a download that
    # kept its own time would be within a second of the upload in a run this fast.
    for obj in target.engine().iter_objects(target.bucket, prefix="mirror/"):
        local = workdir / "copy" / obj.key[len("mirror/") :]
        assert obj.last_modified is not None
        assert abs(local.stat().st_mtime - obj.last_modified.timestamp()) < 0.01, obj.key
    # --delete both ways.
    (src / "app-1.zip").unlink()
    gone = ok(dg("sync", "site", target.url("mirror/"), "--delete"))
    assert f"delete: {target.url('mirror/app-1.zip')}" in gone.stdout
    assert "mirror/app-1.zip" not in target.logical_keys("mirror/")
    down = ok(dg("sync", target.url("mirror/"), "copy", "--delete"))
    assert "delete: copy/app-1.zip" in down.stdout and not (workdir / "copy/app-1.zip").exists()
    # S3 to S3, twice.
    s3 = ok(dg("sync", target.url("mirror/"), target.url("second/")))
    assert s3.stdout.count("copy: ") == 3
    assert ok(dg("sync", target.url("mirror/"), target.url("second/"))).stdout.count("copy:") == 0
    assert target.read("second/app-3.zip") == release(3)


def test_sync_size_only_exact_timestamps_and_local_newer(
    dg: Dg, target: Target, workdir: Path
) -> None:
    write(workdir / "s/a.txt", b"aaaa")
    ok(dg("sync", "s", target.url("t/")))
    ok(dg("sync", target.url("t/"), "d"))
    local = workdir / "d/a.txt"
    # Same size, local file newer than the object: aws downloads it again (the object wins).
    future = time.time() + 3600
    local.write_bytes(b"bbbb")
    os.utime(local, (future, future))
    assert ok(dg("sync", target.url("t/"), "d", "--size-only")).stdout.count("download:") == 0
    assert ok(dg("sync", target.url("t/"), "d")).stdout.count("download:") == 1
    assert local.read_bytes() == b"aaaa"
    # Same size, local older: skipped by default, fetched with --exact-timestamps.
    past = time.time() - 3600 * 24
    local.write_bytes(b"cccc")
    os.utime(local, (past, past))
    assert ok(dg("sync", target.url("t/"), "d")).stdout.count("download:") == 0
    assert (
        ok(dg("sync", target.url("t/"), "d", "--exact-timestamps")).stdout.count("download:") == 1
    )
    assert local.read_bytes() == b"aaaa"


def test_mb_rb_and_verify(dg: Dg, target: Target, workdir: Path) -> None:
    name = f"{target.bucket}-mb"
    assert ok(dg("mb", f"s3://{name}")).stdout == f"make_bucket: {name}\n"
    write(workdir / "v/app-1.zip", release(1))
    write(workdir / "v/app-2.zip", release(2))
    ok(dg("cp", "-r", "v", f"s3://{name}/v/"))
    not_empty = dg("rb", f"s3://{name}")
    assert not_empty.exit_code == 1 and "not empty" in not_empty.stderr
    checked = ok(dg("verify", "-r", f"s3://{name}/"))
    assert checked.stdout.count("ok: ") == 2 and "2 ok, 0 failed" in checked.stdout
    one = ok(dg("verify", f"s3://{name}/v/app-2.zip", "--json"))
    record = json.loads(one.stdout)
    assert record["valid"] is True and record["delta"] is True and record["size"] == 200_000
    out = ok(dg("rb", "--force", f"s3://{name}"))
    assert out.stdout.endswith(f"remove_bucket: {name}\n")
    # What rm -r prints: the logical keys, not the .delta files and reference.bin they are.
    assert out.stdout.splitlines() == [
        f"delete: s3://{name}/v/app-1.zip",
        f"delete: s3://{name}/v/app-2.zip",
        f"delete: 1 deltaglider bookkeeping object(s) in s3://{name} (references, .deltaglider/)",
        f"remove_bucket: {name}",
    ]
    assert name not in ok(dg("ls")).stdout


def test_ls_takes_a_bare_bucket_like_aws(dg: Dg, target: Target, workdir: Path) -> None:
    _seed(dg, target, workdir)
    for bare, url in (
        (target.bucket, target.url()),
        (f"{target.bucket}/app/", target.url("app/")),
        (f"{target.bucket}/ap", target.url("ap")),
    ):
        got = ok(dg("ls", bare))
        assert got.stdout == ok(dg("ls", url)).stdout and got.stdout, bare
    assert dg("ls", "not a bucket").exit_code == 2


def test_sync_dryrun_transfers_nothing(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "site/app-1.zip", release(1))
    write(workdir / "site/docs/index.html", b"<html/>")
    up = ok(dg("sync", "site", target.url("dry/"), "--dryrun"))
    assert up.stdout.splitlines() == [
        f"(dryrun) upload: site/app-1.zip to {target.url('dry/app-1.zip')}",
        f"(dryrun) upload: site/docs/index.html to {target.url('dry/docs/index.html')}",
    ]
    assert target.physical_keys("dry/") == []
    ok(dg("sync", "site", target.url("real/")))
    down = ok(dg("sync", target.url("real/"), "down", "--dryrun"))
    assert down.stdout.count("(dryrun) download: ") == 2 and not (workdir / "down").exists()
    s3 = ok(dg("sync", target.url("real/"), target.url("copy/"), "--dryrun"))
    assert s3.stdout.count("(dryrun) copy: ") == 2 and target.physical_keys("copy/") == []
    (workdir / "site/app-1.zip").unlink()
    gone = ok(dg("sync", "site", target.url("real/"), "--delete", "--dryrun"))
    assert gone.stdout == f"(dryrun) delete: {target.url('real/app-1.zip')}\n"
    assert target.logical_keys("real/") == ["real/app-1.zip", "real/docs/index.html"]
