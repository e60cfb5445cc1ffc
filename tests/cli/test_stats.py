"""``deltaglider stats``: the figures against ground truth (the files uploaded and the physical
listing), the three accuracy modes, the result cache in the bucket, prefixes, errors, output."""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_conftest import Dg, Target, executable, ok, write
from test_cp import release

from deltaglider.cli._console import human_size

CACHE = ".deltaglider/stats_detailed.json"


def sized(version: int) -> bytes:
    """A release of a series whose sizes differ from version to version (and not linearly, so
    that an estimate from a few of them is not exact by chance)."""
    return release(version) + bytes(version * version * 300)


def tree() -> dict[str, bytes]:
    """Three deltaspaces: app/ (five releases, a text file, a file that does not delta),
    lib/ (three releases) and the bucket root (a text file only)."""
    files = {f"app/app-{v}.zip": sized(v) for v in range(1, 6)}
    files["app/README.txt"] = b"read me\n" * 50
    files["app/noise.zip"] = random.Random(7).randbytes(60_000)
    files.update({f"lib/lib-{v}.zip": release(v + 20, size=120_000) for v in (1, 2, 3)})
    files["top.txt"] = b"top\n" * 10
    return files


def upload(dg: Dg, target: Target, workdir: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        write(workdir / "tree" / key, data)
    ok(dg("cp", "--recursive", "tree", target.url()))


def space_of(key: str) -> str:
    return key.rpartition("/")[0]


def physical(target: Target, prefix: str = "") -> dict[str, int]:
    """Physical key -> size, without deltaglider's own objects."""
    return {
        o.key: o.size
        for o in target.storage().iter_objects(target.bucket, prefix=prefix)
        if not o.key.startswith(".deltaglider/")
    }


def truth(target: Target, files: dict[str, bytes]) -> dict[str, dict[str, int]]:
    """Per deltaspace: objects and logical bytes from the files, stored bytes, deltas and
    references from the physical listing."""
    spaces: dict[str, dict[str, int]] = {}

    def space(name: str) -> dict[str, int]:
        return spaces.setdefault(
            name, {"objects": 0, "logical": 0, "stored": 0, "deltas": 0, "references": 0}
        )

    for key, data in files.items():
        s = space(space_of(key))
        s["objects"] += 1
        s["logical"] += len(data)
    for key, size in physical(target).items():
        s = space(space_of(key))
        s["stored"] += size
        s["deltas"] += key.endswith(".delta")
        s["references"] += key.rpartition("/")[2] == "reference.bin"
    return spaces


def stats(dg: Dg, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = ok(dg("stats", *args, "--json", env=env))
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def spaces_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["deltaspace"]: d for d in doc["deltaspaces"]}


def assert_matches(doc: dict[str, Any], expected: dict[str, dict[str, int]]) -> None:
    """Every figure of ``doc`` (whole and per deltaspace) is the ground truth's."""
    got = spaces_of(doc)
    assert set(got) == set(expected)
    for name, want in expected.items():
        space = got[name]
        assert space["objects"] == want["objects"], name
        assert space["logical_bytes"] == want["logical"], name
        assert space["stored_bytes"] == want["stored"], name
        assert space["deltas"] == want["deltas"], name
        assert space["has_reference"] == bool(want["references"]), name
        assert space["saved_bytes"] == want["logical"] - want["stored"], name
    assert doc["objects"] == sum(s["objects"] for s in expected.values())
    assert doc["logical_bytes"] == sum(s["logical"] for s in expected.values())
    assert doc["stored_bytes"] == sum(s["stored"] for s in expected.values())
    assert doc["deltas"] == sum(s["deltas"] for s in expected.values())
    assert doc["references"] == sum(s["references"] for s in expected.values())
    assert doc["saved_bytes"] == doc["logical_bytes"] - doc["stored_bytes"]
    if doc["logical_bytes"]:
        assert abs(doc["savings"] - (1 - doc["stored_bytes"] / doc["logical_bytes"])) < 1e-5


def test_detailed_is_exact(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    keys = physical(target)
    # The layout the figures are checked on: deltas, direct objects (one that would not
    # delta) and a reference in app/ and lib/, a direct object alone at the root.
    assert "app/noise.zip" in keys and "app/app-3.zip.delta" in keys and "top.txt" in keys
    assert "lib/reference.bin" in keys
    expected = truth(target, files)
    doc = stats(dg, target.bucket, "--detailed")
    assert_matches(doc, expected)
    assert doc["mode"] == "detailed" and doc["exact"] is True
    assert all(s["exact"] for s in doc["deltaspaces"])
    assert doc["objects"] == len(files) == 11
    assert doc["deltas"] == 8 and doc["direct"] == 3 and doc["references"] == 2
    assert doc["heads"] == 8  # one per delta, nothing from a cache
    assert doc["savings"] > 0.5
    assert doc["bucket"] == target.bucket and doc["prefix"] == ""
    assert doc["warnings"] == []
    # Largest stored first.
    stored = [s["stored_bytes"] for s in doc["deltaspaces"]]
    assert stored == sorted(stored, reverse=True)


def test_quick_and_sampled_estimate(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    expected = truth(target, files)
    keys = physical(target)
    size = {k: len(v) for k, v in files.items()}
    app_direct = size["app/README.txt"] + size["app/noise.zip"]
    ref = keys["app/reference.bin"]

    quick = stats(dg, target.bucket)
    assert quick["mode"] == "quick" and quick["exact"] is False
    assert quick["heads"] == 0
    assert quick["cache"]["status"] == "unused" and quick["cache"]["written"] is False
    # Counts and stored bytes come from the listing: exact in every mode.
    assert quick["objects"] == doc_objects(expected)
    assert quick["stored_bytes"] == sum(keys.values())
    app = spaces_of(quick)["app"]
    assert app["exact"] is False and app["measured"] == 0
    # Each delta counted at the reference's size.
    assert app["logical_bytes"] == app_direct + 5 * ref
    assert app["logical_bytes"] != expected["app"]["logical"]
    root = spaces_of(quick)[""]
    assert root["exact"] is True and root["logical_bytes"] == size["top.txt"]
    assert not any(k.startswith(".deltaglider/") for k in target.physical_keys())

    sampled = stats(dg, target.bucket, "--sampled")
    assert sampled["mode"] == "sampled" and sampled["exact"] is False
    assert sampled["heads"] == 3 + 3  # three of app's five deltas, all three of lib's
    app = spaces_of(sampled)["app"]
    lib = spaces_of(sampled)["lib"]
    assert app["exact"] is False and app["measured"] == 3
    # The first, middle and last listed; the other two as the mean of those.
    seen = [size[f"app/app-{v}.zip"] for v in (1, 3, 5)]
    assert app["logical_bytes"] == app_direct + sum(seen) + round(sum(seen) / 3 * 2)
    assert app["logical_bytes"] != expected["app"]["logical"]
    assert lib["exact"] is True and lib["logical_bytes"] == expected["lib"]["logical"]
    assert sampled["objects"] == quick["objects"]
    assert sampled["stored_bytes"] == quick["stored_bytes"]
    assert sampled["cache"]["status"] == "miss" and sampled["cache"]["written"] is True
    assert ".deltaglider/stats_sampled.json" in target.physical_keys(".deltaglider/")
    # The quick mode does not count deltaglider's own objects.
    again = stats(dg, target.bucket)
    assert again["stored_bytes"] == quick["stored_bytes"]
    assert again["internal_objects"] == 1


def doc_objects(expected: dict[str, dict[str, int]]) -> int:
    return sum(s["objects"] for s in expected.values())


@pytest.mark.slow
def test_cache_hit_partial_refresh(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    first = stats(dg, target.bucket, "--detailed")
    assert first["cache"] == {
        "status": "miss",
        "key": CACHE,
        "written": True,
        "reused": 0,
        "computed": 3,
    }
    assert CACHE in target.physical_keys(".deltaglider/")
    cached = json.loads(target.storage().get(target.bucket, CACHE)[1].read())
    assert cached["version"] == 2 and cached["mode"] == "detailed"

    hit = stats(dg, target.bucket, "--detailed")
    assert hit["cache"]["status"] == "hit" and hit["cache"]["written"] is False
    assert hit["heads"] == 0
    assert hit["computed_at"] == first["computed_at"]
    assert_matches(hit, truth(target, files))
    assert hit["exact"] is True

    # A new release in app/: app alone is recomputed.
    write(workdir / "app-6.zip", sized(6))
    ok(dg("cp", "app-6.zip", target.url("app/")))
    files["app/app-6.zip"] = sized(6)
    partial = stats(dg, target.bucket, "--detailed")
    assert partial["cache"]["status"] == "partial"
    assert partial["cache"]["reused"] == 2 and partial["cache"]["computed"] == 1
    assert partial["heads"] == 6  # app's deltas
    assert_matches(partial, truth(target, files))
    assert partial["exact"] is True
    assert stats(dg, target.bucket, "--detailed")["cache"]["status"] == "hit"

    # --refresh: not read (every delta HEADed again), written.
    refreshed = stats(dg, target.bucket, "--detailed", "--refresh")
    assert refreshed["cache"]["status"] == "refresh" and refreshed["cache"]["written"] is True
    assert refreshed["heads"] == 9
    assert refreshed["computed_at"] > partial["computed_at"]
    assert_matches(refreshed, truth(target, files))
    after = stats(dg, target.bucket, "--detailed")
    assert after["cache"]["status"] == "hit"
    assert after["computed_at"] == refreshed["computed_at"]

    # A removal: the deltaspace it was in is recomputed.
    ok(dg("rm", target.url("lib/lib-2.zip")))
    del files["lib/lib-2.zip"]
    removed = stats(dg, target.bucket, "--detailed")
    assert removed["cache"]["status"] == "partial" and removed["cache"]["computed"] == 1
    assert_matches(removed, truth(target, files))


def test_no_cache_neither_reads_nor_writes(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    doc = stats(dg, target.bucket, "--detailed", "--no-cache")
    assert doc["cache"]["status"] == "disabled" and doc["cache"]["written"] is False
    assert doc["cache"]["key"] is None
    assert_matches(doc, truth(target, files))
    assert target.physical_keys(".deltaglider/") == []
    # With a cache in place: not read (every delta HEADed), not rewritten.
    ok(dg("stats", target.bucket, "--detailed"))
    before = target.storage().head(target.bucket, CACHE)
    again = stats(dg, target.bucket, "--detailed", "--no-cache")
    assert again["heads"] == 8 and again["cache"]["status"] == "disabled"
    after = target.storage().head(target.bucket, CACHE)
    assert (after.etag, after.last_modified) == (before.etag, before.last_modified)
    assert again["computed_at"] != doc["computed_at"]


def put_cache(target: Target, body: bytes, key: str = CACHE) -> None:
    target.storage().put(target.bucket, key, body, size=len(body))


@pytest.mark.slow
def test_foreign_and_broken_cache_documents_are_ignored(
    dg: Dg, target: Target, workdir: Path
) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    expected = truth(target, files)
    stored = sum(s["stored"] for s in expected.values())
    # What the original DeltaGlider 6.2.0 writes (version "1.0", its own figures), here with
    # figures that are wrong for this bucket: taken for valid, they would show.
    original = {
        "version": "1.0",
        "mode": "detailed",
        "computed_at": "2025-01-01T00:00:00+00:00",
        "validation": {"object_count": 13, "compressed_size": stored},
        "stats": {
            "bucket": target.bucket,
            "object_count": 1,
            "total_size": 1,
            "compressed_size": 1,
            "space_saved": 0,
            "average_compression_ratio": 0.0,
            "delta_objects": 0,
            "direct_objects": 1,
            "object_limit_reached": False,
        },
    }
    garbage: list[bytes] = [
        json.dumps(original).encode(),
        b"\x00\xffnot json at all{",
        b"[1, 2, 3]",
        b"null",
        json.dumps({"version": 2, "mode": "detailed", "prefix": ""}).encode(),
        json.dumps(
            {
                "version": 2,
                "mode": "detailed",
                "prefix": "",
                "computed_at": "2025-01-01T00:00:00Z",
                "validation": {"fingerprint": "0" * 64},
                "stats": {"deltaspaces": [{"deltaspace": "app", "objects": "many"}]},
            }
        ).encode(),
        json.dumps(
            {
                "version": 2,
                "mode": "detailed",
                "prefix": "",
                "computed_at": 7,
                "validation": {"fingerprint": None},
                "stats": {"deltaspaces": "app"},
            }
        ).encode(),
    ]
    for body in garbage:
        put_cache(target, body)
        result = ok(dg("stats", target.bucket, "--detailed", "--json"))
        doc = json.loads(result.stdout)
        assert doc["cache"]["status"] == "miss", body
        assert doc["cache"]["written"] is True, body
        assert doc["heads"] == 8, body
        assert_matches(doc, expected)
        assert result.stderr == "", body
        # Replaced by a document of ours, which the next run takes.
        assert stats(dg, target.bucket, "--detailed")["cache"]["status"] == "hit"


def test_an_object_replaced_by_one_of_the_same_size_is_seen(
    dg: Dg, target: Target, workdir: Path
) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    stats(dg, target.bucket, "--detailed")
    # Same key, same size, other bytes: count and stored bytes alike, the cache stale.
    readme = files["app/README.txt"]
    files["app/README.txt"] = readme.upper()
    assert len(files["app/README.txt"]) == len(readme)
    write(workdir / "README.txt", files["app/README.txt"])
    ok(dg("cp", "README.txt", target.url("app/")))
    doc = stats(dg, target.bucket, "--detailed")
    assert doc["cache"]["status"] == "partial" and doc["cache"]["computed"] == 1
    assert doc["heads"] == 5
    assert_matches(doc, truth(target, files))
    # A delta rewritten with as many bytes but another original size (what a listing cannot
    # show): the new size is read.
    storage = target.storage()
    key = "lib/lib-3.zip.delta"
    info, body = storage.get(target.bucket, key)
    data = bytearray(body.read())
    body.close()
    data[-1] ^= 0xFF
    meta = dict(info.metadata or {})
    name = next(k for k in meta if k.lower() in ("dg-file-size", "dg_file_size", "file_size"))
    meta[name] = str(int(meta[name]) + 12345)
    storage.put(target.bucket, key, bytes(data), size=len(data), metadata=meta)
    assert storage.head(target.bucket, key).size == info.size
    doc = stats(dg, target.bucket, "--detailed")
    assert doc["cache"]["status"] == "partial" and doc["cache"]["computed"] == 1
    assert doc["heads"] == 3
    assert spaces_of(doc)["lib"]["logical_bytes"] == truth(target, files)["lib"]["logical"] + 12345


def test_prefixes(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    files["application/x.txt"] = b"not app/\n"
    upload(dg, target, workdir, files)
    expected = truth(target, files)
    folder = stats(dg, target.url("app/"), "--detailed")
    assert folder["prefix"] == "app/"
    assert_matches(folder, {"app": expected["app"]})
    assert folder["exact"] is True and folder["internal_objects"] == 0
    key = folder["cache"]["key"]
    assert key.startswith(".deltaglider/stats/") and key.endswith("_detailed.json")
    assert key in target.physical_keys(".deltaglider/")
    assert stats(dg, target.url("app/"), "--detailed")["cache"]["status"] == "hit"
    # The whole bucket's cache is another document.
    assert CACHE not in target.physical_keys(".deltaglider/")
    # Without s3:// and without the slash: a key prefix, as S3 takes it (app/ and application/).
    bare = stats(dg, f"{target.bucket}/app", "--detailed")
    assert bare["prefix"] == "app"
    assert_matches(bare, {"app": expected["app"], "application": expected["application"]})
    assert stats(dg, f"s3://{target.bucket}/lib/")["stored_bytes"] == expected["lib"]["stored"]

    # A prefix through a deltaspace: the release and the reference it needs.
    cut = stats(dg, target.url("app/app-2"), "--detailed")
    keys = physical(target)
    assert cut["objects"] == 1 and cut["deltas"] == 1 and cut["references"] == 1
    assert cut["logical_bytes"] == len(files["app/app-2.zip"])
    assert cut["stored_bytes"] == keys["app/app-2.zip.delta"] + keys["app/reference.bin"]
    assert cut["exact"] is True and cut["warnings"] == []
    assert cut["heads"] == 2  # the reference (outside the prefix) and the delta
    quick_cut = stats(dg, target.url("app/app-2"))
    assert quick_cut["stored_bytes"] == cut["stored_bytes"]
    assert quick_cut["logical_bytes"] == keys["app/reference.bin"]

    # A prefix with nothing under it.
    nothing = stats(dg, target.url("nothing/"), "--detailed")
    assert nothing["objects"] == 0 and nothing["stored_bytes"] == 0
    assert nothing["deltaspaces"] == [] and nothing["exact"] is True


def test_empty_bucket(dg: Dg, target: Target) -> None:
    for mode in ((), ("--sampled",), ("--detailed",)):
        doc = stats(dg, target.url(), *mode)
        assert doc["objects"] == 0 and doc["logical_bytes"] == 0 and doc["stored_bytes"] == 0
        assert doc["savings"] == 0 and doc["deltaspaces"] == [] and doc["exact"] is True
    assert stats(dg, target.url(), "--detailed")["cache"]["status"] == "hit"
    human = ok(dg("stats", target.bucket))
    assert "Total Objects:        0\n  Delta Objects:      0\n  Direct Objects:     0" in (
        human.stdout
    )
    assert "Space Saved:" in human.stdout and "Deltaspace" not in human.stdout
    assert "Compression Ratio:    -\n" in human.stdout


def test_errors(dg: Dg, target: Target) -> None:
    missing = dg("stats", f"{target.bucket}-missing")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deltaglider: error: ")
    assert "does not exist" in lines[0]
    for args in (
        (target.bucket, "--sampled", "--detailed"),
        (target.bucket, "--refresh", "--no-cache"),
        ("s3://",),
        ("s3:///key",),
        (target.bucket, "--top", "-1"),
        (target.bucket, "--bogus"),
        (),
    ):
        result = dg("stats", *args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stderr.strip() and "Traceback" not in result.stderr, args
        assert result.stdout == "", args


@pytest.mark.slow
def test_human_output(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    expected = truth(target, files)
    out = ok(dg("stats", target.url(), "--detailed")).stdout
    # The original DeltaGlider's labels, in its order, then ours.
    assert out.startswith(f"Bucket Statistics: {target.bucket}\n{'=' * 60}\n")
    assert (
        "Total Objects:        11\n  Delta Objects:      8\n  Direct Objects:     3\n"
        "  References:         2\n\nOriginal Size:        "
    ) in out
    logical = sum(s["logical"] for s in expected.values())
    assert f"Original Size:        {human_size(logical)} ({logical:,} bytes)\n" in out
    for label in ("Compressed Size:", "Space Saved:", "Compression Ratio:"):
        assert f"\n{label:<22}" in out, label
    assert "Numbers:              exact (detailed)" in out
    assert "Cache:                miss, written" in out
    table = out[out.index("Deltaspace") :].splitlines()
    assert table[0].split() == ["Deltaspace", "Objects", "Logical", "Stored", "Saved"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"app/", "lib/", "(bucket"}
    assert rows["app/"][1] == "7" and rows["lib/"][1] == "3"
    assert "~ estimated" not in out
    again = ok(dg("stats", target.url(), "--detailed")).stdout
    assert "Cache:                hit (computed " in again

    quick = ok(dg("stats", target.bucket, "--top", "1")).stdout
    assert "Numbers:              estimated (quick" in quick
    assert "... and 2 more deltaspace(s)" in quick
    rows = quick[quick.index("Deltaspace") :].splitlines()[1:]
    assert rows[0].startswith("app/") and rows[0].endswith("~")
    assert "~ estimated" in quick
    everything = ok(dg("stats", target.bucket, "--top", "0")).stdout
    assert "more deltaspace" not in everything and "(bucket root)" in everything
    # --quiet: nothing on stdout; --json: one document, whatever --top says.
    assert ok(dg("stats", target.bucket, "--quiet")).stdout == ""
    doc = stats(dg, target.bucket, "--top", "1")
    assert len(doc["deltaspaces"]) == 3


def test_the_executable(dg: Dg, target: Target, workdir: Path) -> None:
    files = tree()
    upload(dg, target, workdir, files)
    proc = dg.exe("stats", target.url(), "--detailed", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert_matches(doc, truth(target, files))
    assert proc.stderr == b""
    missing = dg.exe("stats", f"s3://{target.bucket}-missing/")
    assert missing.returncode == 1 and missing.stdout == b""
    assert len(missing.stderr.decode().strip().splitlines()) == 1


def run_on_a_terminal(dg: Dg, *args: str) -> tuple[int, str, str]:
    """The executable with stderr on a pseudo-terminal (where progress may be drawn)."""
    master, slave = pty.openpty()
    env = {**os.environ, **dg.target.env}
    env.pop("AWS_PROFILE", None)
    try:
        proc = subprocess.Popen(
            [executable(), *args],
            cwd=dg.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = proc.stdout.read() if proc.stdout else b""
        code = proc.wait(timeout=120)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return code, out.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_progress_only_on_a_terminal(dg: Dg, target: Target, workdir: Path) -> None:
    upload(dg, target, workdir, tree())
    code, out, err = run_on_a_terminal(dg, "stats", target.bucket, "--detailed", "--no-cache")
    assert code == 0 and "Bucket Statistics: " in out
    assert "stats " in err and "file(s) remaining" in err and "\r" in err
    for flag in ("--no-progress", "--quiet"):
        code, out, err = run_on_a_terminal(
            dg, "stats", target.bucket, "--detailed", "--no-cache", flag
        )
        assert code == 0 and err == "", flag
    # Not a terminal (the runner's stderr): no progress either.
    assert ok(dg("stats", target.bucket, "--detailed", "--no-cache")).stderr == ""


def test_a_read_only_principal(s3_target: Target, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    files = tree()
    upload(dg, s3_target, workdir, files)
    expected = truth(s3_target, files)
    server = s3_target.server
    assert server is not None and server.reader_key and server.reader_secret
    reader = {"AWS_ACCESS_KEY_ID": server.reader_key, "AWS_SECRET_ACCESS_KEY": server.reader_secret}
    quick = ok(dg("stats", s3_target.bucket, "--json", env=reader))
    assert quick.stderr == ""
    assert json.loads(quick.stdout)["stored_bytes"] == sum(s["stored"] for s in expected.values())
    # The cache cannot be written: a warning, the figures all the same, exit 0.
    detailed = ok(dg("stats", s3_target.bucket, "--detailed", "--json", env=reader))
    doc = json.loads(detailed.stdout)
    assert_matches(doc, expected)
    assert doc["cache"]["status"] == "miss" and doc["cache"]["written"] is False
    assert any("could not write the stats cache" in w for w in doc["warnings"])
    warnings = detailed.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("deltaglider: warning: could not write")
    assert s3_target.physical_keys(".deltaglider/") == []
    # A cache the owner wrote is read.
    ok(dg("stats", s3_target.bucket, "--detailed"))
    hit = ok(dg("stats", s3_target.bucket, "--detailed", "--json", env=reader))
    assert json.loads(hit.stdout)["cache"]["status"] == "hit" and hit.stderr == ""


def test_sampled_and_detailed_conflict(dg: Dg, target: Target) -> None:
    for args in (("--sampled", "--detailed"), ("--detailed", "--sampled", "--json")):
        out = dg("stats", target.bucket, *args)
        assert out.exit_code == 2 and out.stdout == "", args
        assert out.stderr == (
            "deltaglider: error: --sampled and --detailed cannot be used together\n"
        ), out.stderr
    # Nothing was computed or cached.
    assert [k for k in target.physical_keys() if k.startswith(".deltaglider/")] == []
