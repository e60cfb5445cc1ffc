"""``cp`` with several sources (what a shell glob gives): the last argument is the destination,
a folder or prefix they all go into; anything else is refused before anything is copied."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, executable, ok, write
from test_cp import release


@pytest.mark.slow
def test_the_documented_examples(dg: Dg, target: Target, workdir: Path) -> None:
    # The CI example: cp dist/*.zip s3://releases/TAG/ (one batch: deltas against one reference).
    for v in (1, 2, 3):
        write(workdir / f"dist/app-1.{v}.zip", release(v))
    zips = sorted(str(p.relative_to(workdir)) for p in (workdir / "dist").glob("*.zip"))
    out = ok(dg("cp", *zips, target.url("v1/")))
    lines = out.stdout.splitlines()
    assert sorted(line.split()[1] for line in lines[:-1]) == zips
    assert lines[-1].startswith("3 uploaded; ")
    assert target.logical_keys("v1/") == [f"v1/app-1.{v}.zip" for v in (1, 2, 3)]
    physical = target.physical_keys("v1/")
    assert "v1/reference.bin" in physical and sum(k.endswith(".delta") for k in physical) == 3
    for v in (1, 2, 3):
        assert target.read(f"v1/app-1.{v}.zip") == release(v)
    # The backup script, through a shell: cp backup-*.tar.gz s3://backups/ (bucket root).
    for day in (1, 2):
        write(workdir / f"backup-2024-01-0{day}.tar.gz", release(10 + day))
    proc = subprocess.run(
        f"{executable()} cp backup-*.tar.gz s3://{target.bucket}/",
        shell=True,
        cwd=workdir,
        env={**dg_env(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [k for k in target.logical_keys() if k.startswith("backup-")] == [
        "backup-2024-01-01.tar.gz",
        "backup-2024-01-02.tar.gz",
    ]


def dg_env(target: Target) -> dict[str, str]:
    env = {**os.environ, **target.env}
    env.pop("AWS_PROFILE", None)
    return env


def test_downloads_and_copies(dg: Dg, target: Target, workdir: Path) -> None:
    for v in (1, 2):
        write(workdir / f"r/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "r", target.url("r/")))
    sources = [target.url("r/app-1.zip"), target.url("r/app-2.zip")]
    # Into a folder named with a trailing slash (made), or one that exists.
    ok(dg("cp", *sources, "out/"))
    assert (workdir / "out/app-2.zip").read_bytes() == release(2)
    (workdir / "there").mkdir()
    text = ok(dg("cp", *sources, "there")).stdout
    assert text.splitlines()[-1].startswith("2 downloaded")
    assert sorted(p.name for p in (workdir / "there").iterdir()) == ["app-1.zip", "app-2.zip"]
    # S3 to S3.
    ok(dg("cp", *sources, target.url("copy/")))
    assert target.logical_keys("copy/") == ["copy/app-1.zip", "copy/app-2.zip"]
    assert target.read("copy/app-1.zip") == release(1)
    # --dryrun: what would be done, nothing done.
    dry = ok(dg("cp", *sources, target.url("dry/"), "--dryrun")).stdout.splitlines()
    assert [line.split()[0] for line in dry] == ["(dryrun)", "(dryrun)"]
    assert target.logical_keys("dry/") == []


def test_refused_before_anything_is_copied(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    write(workdir / "b.zip", release(2))
    write(workdir / "x/a.zip", release(3))
    (workdir / "file").write_bytes(b"not a folder")
    for args, says in (
        (("a.zip", "b.zip", target.url("rel")), f"{target.url('rel')} does not end in /"),
        (("a.zip", "b.zip", target.url("rel/new.zip")), "does not end in /"),
        (("a.zip", "missing.zip", target.url("rel/")), "missing.zip does not exist"),
        (("a.zip", "x/a.zip", target.url("rel/")), "would both be written to"),
        (("-r", "a.zip", "b.zip", target.url("rel/")), "cannot be copied with --recursive"),
        (("a.zip", "-", target.url("rel/")), "- (stdin/stdout) takes one source"),
        ((target.url("a.zip"), target.url("b.zip"), "nowhere"), "nowhere is not a folder"),
        ((target.url("a.zip"), target.url("b.zip"), "file"), "file is not a folder"),
        (("a.zip", "b.zip", "local/"), "one side must be an s3:// URL"),
    ):
        out = dg("cp", *args)
        assert out.exit_code == 2, (args, out.stderr)
        assert out.stderr.startswith("deltaglider: error: ") and says in out.stderr, out.stderr
        assert out.stdout == ""
    assert target.logical_keys() == []
    assert not (workdir / "nowhere").exists() and not (workdir / "local").exists()
    # One argument: click's usage error, as for any missing argument.
    alone = dg("cp", "a.zip")
    assert alone.exit_code == 2 and "Missing argument 'DST'" in alone.stderr
