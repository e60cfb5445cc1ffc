"""``deltaglider cp``: every direction, the aws destination rules, filters and flags."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, ok, write

from deltaglider import format as fmt


def release(version: int, size: int = 200_000) -> bytes:
    """A series of similar archives: the same base with a few bytes changed per version."""
    data = bytearray(random.Random(42).randbytes(size))
    rng = random.Random(version)
    for _ in range(5):
        pos = rng.randrange(size - 16)
        data[pos : pos + 16] = rng.randbytes(16)
    return bytes(data)


def test_upload_download_round_trip_with_savings(dg: Dg, target: Target, workdir: Path) -> None:
    for v in (1, 2, 3):
        write(workdir / f"app-{v}.zip", release(v))
    first = ok(dg("cp", "app-1.zip", target.url("rel/")))
    assert first.stdout.startswith(f"upload: ./app-1.zip to {target.url('rel/app-1.zip')}")
    assert "new reference" in first.stdout
    second = ok(dg("cp", "app-2.zip", target.url("rel/")))
    assert "(delta " in second.stdout and "% of 195.3 KiB)" in second.stdout
    keys = target.physical_keys("rel/")
    assert keys == ["rel/app-1.zip.delta", "rel/app-2.zip.delta", "rel/reference.bin"]
    # The delta is small: a real saving.
    delta = target.storage().head(target.bucket, "rel/app-2.zip.delta")
    assert delta.size < 5_000
    ok(dg("cp", target.url("rel/app-2.zip"), "out/"))
    assert (workdir / "out" / "app-2.zip").read_bytes() == release(2)
    ok(dg("cp", target.url("rel/app-1.zip"), "renamed.bin"))
    assert (workdir / "renamed.bin").read_bytes() == release(1)


def test_destination_rules_like_aws(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    ok(dg("cp", "a.zip", target.url()))  # bucket root: the source's name
    ok(dg("cp", "a.zip", target.url("dir/")))  # trailing slash: into the prefix
    ok(dg("cp", "a.zip", target.url("dir/b.zip")))  # no slash: the new name
    ok(dg("cp", "a.zip", target.url("noslash")))  # even with no extension: a name
    logical = target.logical_keys()
    assert logical == ["a.zip", "dir/a.zip", "dir/b.zip", "noslash"]
    # Downloads: into an existing folder, into a new one named with "/", or a file name.
    (workdir / "existing").mkdir()
    ok(dg("cp", target.url("dir/b.zip"), "existing"))
    ok(dg("cp", target.url("dir/b.zip"), "fresh/"))
    ok(dg("cp", target.url("dir/b.zip"), "file.zip"))
    for path in ("existing/b.zip", "fresh/b.zip", "file.zip"):
        assert (workdir / path).read_bytes() == release(1), path
    # S3 to S3: the same rules.
    ok(dg("cp", target.url("dir/b.zip"), target.url("copies/")))
    ok(dg("cp", target.url("dir/b.zip"), target.url("copies/c.zip")))
    assert {"copies/b.zip", "copies/c.zip"} <= set(target.logical_keys())
    ok(dg("cp", target.url("copies/c.zip"), "c.zip"))
    assert (workdir / "c.zip").read_bytes() == release(1)


def test_recursive_with_filters_in_order(dg: Dg, target: Target, workdir: Path) -> None:
    tree = {
        "build/app-1.zip": release(1),
        "build/app-2.zip": release(2),
        "build/notes.txt": b"notes",
        "build/sub/app-3.zip": release(3),
        "build/sub/debug.log": b"log",
        "build/sub/deep/keep.txt": b"keep",
    }
    for rel, data in tree.items():
        write(workdir / rel, data)
    # Last match wins: everything excluded, zips back in, then sub/ out again, keep.txt back.
    ok(
        dg(
            "cp", "-r", "build", target.url("r/"),
            "--exclude", "*", "--include", "*.zip", "--exclude", "sub/*",
            "--include", "sub/deep/*",
        )
    )  # fmt: skip
    logical = target.logical_keys()
    assert logical == ["r/app-1.zip", "r/app-2.zip", "r/sub/deep/keep.txt"]
    # Download the prefix back: same bytes, same layout.
    ok(dg("cp", "--recursive", target.url("r"), "back"))
    assert (workdir / "back/app-2.zip").read_bytes() == release(2)
    assert (workdir / "back/sub/deep/keep.txt").read_bytes() == b"keep"
    back = workdir / "back"
    files = sorted(p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file())
    assert files == ["app-1.zip", "app-2.zip", "sub/deep/keep.txt"]
    # --include with = and a recursive S3 to S3 copy.
    ok(dg("cp", "-r", target.url("r/"), target.url("s/"), "--exclude=*", "--include=app-1*"))
    assert target.logical_keys("s/") == ["s/app-1.zip"]


def test_recursive_upload_picks_the_middle_release_as_reference(
    dg: Dg, target: Target, workdir: Path
) -> None:
    for v in range(1, 6):
        write(workdir / "series" / f"app-1.{v}.zip", release(v))
    out = ok(dg("cp", "-r", "series", target.url("s/")))
    assert "5 uploaded" in out.stdout
    ref = target.storage().head(target.bucket, "s/reference.bin")
    meta = fmt.parse_metadata(ref.metadata or {}, ref.key)
    assert meta.source_name == "app-1.3.zip"


def test_metadata_content_type_no_delta_and_max_ratio(
    dg: Dg, target: Target, workdir: Path
) -> None:
    write(workdir / "a.zip", release(1))
    write(workdir / "b.zip", release(2))
    write(workdir / "page.html", b"<html></html>")
    ok(dg("cp", "a.zip", target.url("m/"), "--metadata", "build=42,branch=main"))
    ok(
        dg(
            "cp", "b.zip", target.url("m/"),
            "--metadata", '{"build": "43"}', "--content-type", "application/x-app",
        )
    )  # fmt: skip
    ok(dg("cp", "page.html", target.url("m/")))
    storage = target.storage()
    head_a = target.head("m/a.zip")
    assert head_a.metadata == {"build": "42", "branch": "main"}
    head_b = target.head("m/b.zip")
    assert head_b.metadata == {"build": "43"} and head_b.content_type == "application/x-app"
    assert target.head("m/page.html").content_type == "text/html"  # guessed, as aws does
    # --no-delta: stored whole even though it is a .zip in a deltaspace with a reference.
    ok(dg("cp", "b.zip", target.url("m/c.zip"), "--no-delta"))
    assert storage.head(target.bucket, "m/c.zip").size == len(release(2))
    # --max-ratio tiny: the delta is over it, so the file is stored whole.
    out = ok(dg("cp", "b.zip", target.url("m/d.zip"), "--max-ratio", "0.0001"))
    assert "stored whole" in out.stdout
    assert "m/d.zip" in target.physical_keys("m/")
    bad = dg("cp", "b.zip", target.url("m/e.zip"), "--max-ratio", "1.5")
    assert bad.exit_code == 2 and "max-ratio" in bad.stderr
    bad = dg("cp", "b.zip", target.url("m/e.zip"), "--metadata", "novalue")
    assert bad.exit_code == 2 and "key=value" in bad.stderr


def test_dryrun_writes_nothing(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "d/a.zip", release(1))
    write(workdir / "d/b.txt", b"b")
    out = ok(dg("cp", "-r", "d", target.url("x/"), "--dryrun"))
    assert out.stdout.splitlines() == [
        f"(dryrun) upload: d/a.zip to {target.url('x/a.zip')}",
        f"(dryrun) upload: d/b.txt to {target.url('x/b.txt')}",
    ]
    assert target.physical_keys() == []


def test_stdin_and_stdout(dg: Dg, target: Target, workdir: Path) -> None:
    data = release(7)
    out = ok(dg("cp", "-", target.url("s/piped.zip"), input=data))
    assert out.stdout.startswith(f"upload: - to {target.url('s/piped.zip')}")
    back = dg.exe("cp", target.url("s/piped.zip"), "-")
    assert back.returncode == 0, back.stderr
    assert back.stdout == data
    bad = dg("cp", "-", target.url("s/"), input=b"x")
    assert bad.exit_code == 2 and "full key" in bad.stderr


def test_json_lines(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "j/app-1.zip", release(1))
    write(workdir / "j/app-2.zip", release(2))
    out = ok(dg("cp", "-r", "j", target.url("j/"), "--json"))
    records = [json.loads(line) for line in out.stdout.splitlines()]
    uploads = [r for r in records if r.get("action") == "upload"]
    assert {r["destination"] for r in uploads} == {
        target.url("j/app-1.zip"),
        target.url("j/app-2.zip"),
    }
    assert all(r["status"] == "ok" and r["size"] == 200_000 for r in uploads)
    summary = records[-1]["summary"]
    assert summary["uploaded"] == 2 and summary["failed"] == 0
    assert summary["logical_bytes"] == 400_000
    assert summary["stored_bytes"] < 220_000  # one reference and one small delta


def test_installed_executable_round_trip(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "app-1.zip", release(1))
    write(workdir / "app-2.zip", release(2))
    for name in ("app-1.zip", "app-2.zip"):
        up = dg.exe("cp", name, target.url("e/"))
        assert up.returncode == 0, up.stderr
    down = dg.exe("cp", target.url("e/app-2.zip"), "got.zip")
    assert down.returncode == 0, down.stderr
    assert (workdir / "got.zip").read_bytes() == release(2)
    assert down.stdout.decode() == f"download: {target.url('e/app-2.zip')} to ./got.zip\n"


@pytest.mark.parametrize("dest", ["new-dir/", "exists"])
def test_recursive_download_into_folders(dg: Dg, target: Target, workdir: Path, dest: str) -> None:
    write(workdir / "src/a/1.zip", release(1))
    write(workdir / "src/b.txt", b"b")
    ok(dg("cp", "-r", "src", target.url("t/")))
    if dest == "exists":
        (workdir / dest).mkdir()
    ok(dg("cp", "-r", target.url("t/"), dest))
    root = workdir / dest
    assert (root / "a/1.zip").read_bytes() == release(1)
    assert (root / "b.txt").read_bytes() == b"b"


def test_past_tense_of_every_action() -> None:
    from deltaglider.cli._transfer import past_tense

    got = {a: past_tense(a) for a in ("upload", "download", "copy", "delete", "migrate")}
    assert got == {
        "upload": "uploaded",
        "download": "downloaded",
        "copy": "copied",
        "delete": "deleted",
        "migrate": "migrated",
    }


def test_s3_to_s3_summaries_say_copied(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "s/app-1.zip", release(1))
    write(workdir / "s/app-2.zip", release(2))
    ok(dg("cp", "-r", "s", target.url("a/")))
    for command in (("cp", "-r"), ("sync",)):
        name = command[0]
        text = ok(dg(*command, target.url("a/"), target.url(f"{name}-text/"))).stdout
        # cp -r: our summary; sync: the original DeltaGlider's line, with the same figures.
        last = text.splitlines()[-1]
        start = "2 copied; " if name == "cp" else "Sync completed: 2 copied, 0 deleted; "
        assert last.startswith(start), text
        lines = ok(dg(*command, target.url("a/"), target.url(f"{name}-json/"), "--json")).stdout
        summary = json.loads(lines.splitlines()[-1])["summary"]
        assert summary["copied"] == 2 and summary["failed"] == 0, summary
        assert "copyed" not in text + lines
