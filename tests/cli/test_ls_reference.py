"""``ls --stored``: the first file of a folder, which the engine stores as the folder's
reference plus a zero-diff delta, is shown as what it is: stored whole, as the reference (its
bytes and its delta's, no saving; JSON ``delta`` false, ``reference`` true, ``stored_as`` the
reference), as its upload line said (``new reference``) and the SDK reports it. ls knows it
from the HEAD it already makes of every delta for its logical size (the delta's sha256 is its
reference's): no other request, and the summary then needs no HEAD of that reference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cli_conftest import Dg, Target, ok, write
from test_cp import release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from faultproxy import FaultProxy


def _physical_total(target: Target, prefix: str) -> int:
    return sum(o.size for o in target.storage().iter_objects(target.bucket, prefix=prefix))


def _lines(dg: Dg, *args: str) -> list[str]:
    return ok(dg("ls", *args)).stdout.splitlines()


def test_first_file_is_reported_as_the_reference(dg: Dg, target: Target, workdir: Path) -> None:
    for v in (1, 2, 3):
        write(workdir / f"tree/app-{v}.zip", release(v))
    write(workdir / "tree/readme.txt", b"readme")
    upload = ok(dg("cp", "-r", "tree", target.url("r/"))).stdout
    # The batch stored the middle release first: it became the reference, as its line says.
    assert "r/app-2.zip (new reference, 195.3 KiB)" in upload
    rows = {line.split()[-1]: line.split() for line in _lines(dg, "--stored", target.url("r/"))}
    size = len(release(2))
    ref_delta = target.storage().head(target.bucket, "r/app-2.zip.delta").size
    assert rows["app-2.zip"][2:5] == [str(size), str(size + ref_delta), "0%"]
    for name in ("app-1.zip", "app-3.zip"):
        assert int(rows[name][3]) < 1000 and rows[name][4] == "100%", rows[name]
    assert rows["readme.txt"][2:5] == ["6", "6", "0%"]
    records = {
        r["key"]: r for r in map(json.loads, _lines(dg, "--json", "--stored", target.url("r/")))
    }
    assert records["r/app-2.zip"] == {
        **records["r/app-2.zip"],
        "delta": False,
        "reference": True,
        "stored_as": "r/reference.bin",
        "stored_size": size + ref_delta,
    }
    assert records["r/app-1.zip"]["delta"] is True and not records["r/app-1.zip"]["reference"]
    assert records["r/app-1.zip"]["stored_as"] == "r/app-1.zip.delta"
    assert records["r/readme.txt"]["stored_as"] == "r/readme.txt"
    # The lines add up to the summary, which is what the store holds.
    summary = _lines(dg, "--stored", "--summarize", target.url("r/"))
    stored = sum(int(line.split()[3]) for line in summary if line and line.split()[-1] in rows)
    total = _physical_total(target, "r/")
    assert stored == total
    assert f"Stored Size: {total} (with 1 reference(s), {size})" in [s.strip() for s in summary]


def test_one_reference_per_folder(dg: Dg, target: Target, workdir: Path) -> None:
    """Another file of the reference's very bytes is a delta (a few bytes): one file of a
    folder holds the reference, the first listed of those bytes."""
    write(workdir / "app-1.zip", release(1))
    ok(dg("cp", "app-1.zip", target.url("d/")))
    ok(dg("cp", "app-1.zip", target.url("d/same.zip")))
    ok(dg("cp", "app-1.zip", target.url("d/sub/")))  # another folder, its own reference
    rows = _lines(dg, "-r", "--stored", "--summarize", target.url("d/"))
    marked = [line.split()[-1] for line in rows[:3] if line.split()[4] == "0%"]
    assert marked == ["d/app-1.zip", "d/sub/app-1.zip"]
    assert f"Stored Size: {_physical_total(target, 'd/')} " in rows[-2]
    # Listed alone, the other file of those bytes is the one that holds it.
    partial = _lines(dg, "--stored", "--summarize", target.url("d/same"))
    delta = target.storage().head(target.bucket, "d/same.zip.delta").size
    assert partial[0].split()[3:5] == [str(200_000 + delta), "0%"]
    assert partial[-2].strip() == f"Stored Size: {delta + 200_000} (with 1 reference(s), 200000)"


def test_requests(s3_target: Target, proxy: FaultProxy, workdir: Path) -> None:
    """Counted on the wire: one listing and one HEAD per delta (which ls makes for the logical
    sizes anyway); a reference is HEADed only when no file listed holds it."""
    dg = Dg(s3_target, workdir)
    for v in (1, 2, 3):
        write(workdir / f"tree/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "tree", s3_target.url("a/")))
    ok(dg("cp", "-r", "tree", s3_target.url("b/")))
    via = {"DG_ENDPOINT_URL": proxy.endpoint_url}

    def sent(*args: str) -> list[tuple[str, str]]:
        proxy.clear()
        ok(dg("ls", *args, env=via))
        return [(r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.records]

    # (The fast HEAD path's first HEAD in a bucket is also made through boto3, to check they
    # agree: one HEAD more per run.)
    deltas = [f"app-{v}.zip.delta" for v in (1, 2, 3)] * 2
    everything = sent("-r", "--stored", "--summarize", s3_target.url())
    assert everything[0] == ("GET", s3_target.bucket)
    heads = sorted(p for m, p in everything[1:] if m == "HEAD")
    assert len(everything) == 1 + len(deltas) + 1 and set(heads) == set(deltas), everything
    assert "reference.bin" not in heads
    # Without the summary, or --stored: the same requests.
    assert sorted(sent("-r", s3_target.url())) == sorted(everything)
    # Listing a file that does not hold its folder's reference: the summary HEADs it.
    without_first = sent("-r", "--stored", "--summarize", s3_target.url("a/app-1"))
    assert sorted(set(without_first)) == [
        ("GET", s3_target.bucket),
        ("HEAD", "app-1.zip.delta"),
        ("HEAD", "reference.bin"),
    ]
    assert len(without_first) == 4


def test_every_write_says_which_file_became_the_reference(
    dg: Dg, target: Target, workdir: Path
) -> None:
    """The upload line of a folder's first file ends with ``(new reference, SIZE)`` (the
    original printed ``(reference: N bytes)``; aws prints nothing after the destination, and
    the line still starts as aws's does): one file, several, stdin, S3 to S3, sync, migrate."""
    write(workdir / "a/app-1.zip", release(1))
    write(workdir / "b/app-2.zip", release(2))
    note = "(new reference, 195.3 KiB)"
    runs = {
        "one/app-1.zip": ("cp", "a/app-1.zip", target.url("one/")),
        "many/app-2.zip": ("cp", "a/app-1.zip", "b/app-2.zip", target.url("many/")),
        "in/app.zip": ("cp", "-", target.url("in/app.zip")),
        "copy/app-1.zip": ("cp", target.url("one/app-1.zip"), target.url("copy/")),
        "sync/app-1.zip": ("sync", "a", target.url("sync/")),
        "m/one/app-1.zip": ("migrate", target.url("one/"), target.url("m/"), "--yes"),
    }
    for key, args in runs.items():
        out = ok(dg(*args, input=release(1) if "-" in args else None)).stdout
        (line,) = [line for line in out.splitlines() if note in line]
        assert line.endswith(f"{target.url(key)} {note}"), line
        assert line.split(":")[0] in ("upload", "copy", "migrate"), line
