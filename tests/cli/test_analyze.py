"""``deltaglider analyze``: the estimate against what deltaglider really stores (the engine's
batch upload of the same files), nothing written, the read-only principal, a mixed bucket,
the sampling options, errors and the executable."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from typing import Any

import pytest
from cli_conftest import Dg, Target, executable, ok
from data import noise, release

from deltaglider import format as fmt
from deltaglider.cli._console import human_size, percent
from deltaglider.cli.analyze import parse_size

SAVINGS_LINE = re.compile(r"Potential savings: \d+\.\d% \(.* -> .*\)")


def put_plain(target: Target, items: dict[str, bytes], prefix: str = "") -> None:
    """Plain objects, as another tool would have uploaded them."""
    storage = target.storage()
    for key, data in items.items():
        storage.put(target.bucket, prefix + key, data, size=len(data))


def snapshot(target: Target) -> list[tuple[str, str, int]]:
    return sorted((o.key, o.etag, o.size) for o in target.storage().iter_objects(target.bucket))


def stored_by_space(target: Target, prefix: str) -> Counter[str]:
    """Physical bytes per deltaspace under ``prefix`` (named relative to it; "" for its
    root), deltaglider's own bookkeeping left out."""
    out: Counter[str] = Counter()
    for o in target.storage().iter_objects(target.bucket, prefix=prefix):
        out[relative(fmt.deltaspace(o.key), prefix)] += o.size
    return out


def relative(space: str, prefix: str) -> str:
    return "" if space == prefix.rstrip("/") else space[len(prefix) :]


def upload(target: Target, items: dict[str, bytes], prefix: str, **options: Any) -> None:
    """What a migration does: the engine's batch upload (it chooses the references)."""
    results = list(
        target.engine().put_many(
            target.bucket, [(prefix + k, v) for k, v in items.items()], **options
        )
    )
    assert [exc for _, _, exc in results if exc is not None] == []


def analysis(dg: Dg, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = ok(dg("analyze", *args, "--json", env=env))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    doc: dict[str, Any] = json.loads(lines[0])
    return doc


def spaces(doc: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    return {relative(s["deltaspace"], prefix): s for s in doc["spaces"]}


def plain_tree() -> dict[str, bytes]:
    """Deltaspaces of similar releases, files that are no candidates, an undeltable candidate,
    an empty one, a deltaspace with a single candidate and a file at the root."""
    items = {f"rel/app-{v}.zip": release(v) for v in range(1, 11)}
    items["rel/README.txt"] = b"read me first\n" * 150
    items["rel/noise.zip"] = noise(60_000, 1)
    items["rel/empty.zip"] = b""
    items.update({f"tools/cli-{v}.tar.gz": release(v, seed=3) for v in (1, 2, 3)})
    items["single/only.zip"] = release(1, seed=5)
    items["notes.txt"] = b"notes\n" * 100
    return items


def test_estimate_against_a_real_upload(dg: Dg, target: Target) -> None:
    items = plain_tree()
    put_plain(target, items, "plain/")
    before = snapshot(target)

    text = ok(dg("analyze", target.url("plain/"))).stdout
    default = analysis(dg, target.url("plain/"))
    full = analysis(dg, target.url("plain"), "--sample", "100")
    assert snapshot(target) == before  # nothing written, not even a temporary object

    match = SAVINGS_LINE.search(text)
    assert match, text
    assert f"Potential savings: {percent(default['savings'])} " in match.group()
    # Binary units, as ls -h and stats show sizes.
    assert f"-> {human_size(default['estimated_stored'])})" in match.group()
    rows = [line.split()[0] for line in text.splitlines()[1:5]]
    assert sorted(rows) == ["plain/", "plain/rel/", "plain/single/", "plain/tools/"], text
    total = sum(len(v) for v in items.values())
    for doc in (default, full):
        assert doc["estimate"] is True and doc["prefix"] == "plain/"
        assert doc["objects"] == len(items) and doc["size"] == total
        assert doc["already_deltaglider"] == {"objects": 0, "stored_size": 0}
        assert doc["errors"] == [] and doc["unsampled_deltaspaces"] == 0
    assert set(spaces(full, "plain/")) == {"rel", "tools", "single", ""}
    rel = spaces(full, "plain/")["rel"]
    assert (rel["objects"], rel["candidates"]) == (13, 12)
    # The middle of all 12 candidates in version order, the empty one included, as put_many.
    assert rel["reference"] == "plain/rel/app-7.zip"
    # Every candidate but the reference and the empty file, the undeltable one among them.
    assert rel["sampled"] == 11 and rel["deltas"] == 9
    assert spaces(full, "plain/")["single"]["sampled"] == 0
    assert spaces(default, "plain/")["rel"]["sampled"] == 5  # the reference and 4

    # The ground truth: what deltaglider stores for the same files.
    upload(target, items, "dg/")
    real = stored_by_space(target, "dg/")
    ref = target.storage().head(target.bucket, "dg/rel/reference.bin")
    assert (ref.metadata or {})["dg-source-name"] == "app-7.zip"
    # Every candidate sampled: the estimate is what was stored, to the byte; a deltaspace with
    # one candidate is counted at its size, without the few bytes of the reference file's own
    # delta (about 28 bytes a window; this one has one).
    for name, space in spaces(full, "plain/").items():
        if name == "single":
            assert 0 < real[name] - space["estimated_stored"] <= 64, (real[name], space)
        else:
            assert space["estimated_stored"] == real[name], (name, real[name], space)
    real_total = sum(real.values())
    assert 0 < real_total - full["estimated_stored"] <= 64
    # Sampled: an estimate. 25% leaves room for a sample that misses the undeltable file (it
    # is here 40% of what rel/ stores) while still telling a 90% saving from a 50% one.
    assert abs(default["estimated_stored"] - real_total) <= 0.25 * real_total
    assert default["savings"] > 0.6 and full["savings"] > 0.6


def test_read_only_principal(s3_target: Target, workdir: Any) -> None:
    dg = Dg(s3_target, workdir)
    items = {f"r/app-{v}.zip": release(v) for v in range(1, 5)} | {"r/a.txt": b"text"}
    put_plain(s3_target, items)
    server = s3_target.server
    assert server is not None and server.reader_key and server.reader_secret
    reader = {"AWS_ACCESS_KEY_ID": server.reader_key, "AWS_SECRET_ACCESS_KEY": server.reader_secret}
    # The reader really cannot write.
    denied = dg("cp", "-", s3_target.url("r/x.zip"), input=b"x", env=reader)
    assert denied.exit_code == 1 and "access denied" in denied.stderr
    before = snapshot(s3_target)
    text = ok(dg("analyze", s3_target.url(), env=reader))
    assert SAVINGS_LINE.search(text.stdout) and text.stderr == ""
    as_reader = analysis(dg, s3_target.url(), env=reader)
    as_owner = analysis(dg, s3_target.url())
    assert as_reader == as_owner
    assert as_reader["objects"] == 5 and as_reader["sampled_objects"] == 4
    assert as_reader["savings"] > 0.6
    assert snapshot(s3_target) == before


def test_objects_deltaglider_stored_are_counted_apart(dg: Dg, target: Target) -> None:
    engine = target.engine()
    stored = {f"app-{v}.zip": release(v) for v in (1, 2, 3)}
    stored["README.txt"] = b"docs\n" * 100  # direct: not a candidate
    stored["noise.zip"] = noise(40_000, 2)  # direct: no delta helps
    for space in ("mix/", "copy/"):  # the same deltaspace twice: one to analyze, one to fill
        for name, data in stored.items():
            engine.put(target.bucket, space + name, data)
    assert fmt.physical("mix/README.txt").kind == "direct"  # looks plain by its name
    plain = {f"app-{v}.zip": release(v) for v in (4, 5, 6)}
    plain["CHANGES.txt"] = b"changes\n" * 40
    plain["noise-2.zip"] = noise(30_000, 3)
    put_plain(target, plain, "mix/")
    fresh = {f"fresh/app-{v}.zip": release(v, seed=9) for v in (1, 2)}
    put_plain(target, fresh)
    before = snapshot(target)
    theirs = {"mix/" + k for k in plain} | set(fresh)
    ours = [(k, s) for k, _, s in before if k not in theirs]

    doc = analysis(dg, target.url(), "--sample", "100")
    text = ok(dg("analyze", target.url())).stdout
    assert snapshot(target) == before
    assert doc["already_deltaglider"] == {
        "objects": len(ours),
        "stored_size": sum(s for _, s in ours),
    }
    assert f"Already deltaglider: {len(ours)} object(s)" in text
    by_space = spaces(doc)
    assert set(by_space) == {"mix", "fresh"}  # copy/ holds deltaglider's objects only
    mix = by_space["mix"]
    assert mix["objects"] == 5 and mix["size"] == sum(len(v) for v in plain.values())
    assert mix["candidates"] == 4
    assert mix["reference"] == "mix/reference.bin" and mix["existing_reference"] is True
    assert mix["sampled"] == 5 and mix["deltas"] == 3  # the reference, then the 4 candidates
    assert by_space["fresh"]["existing_reference"] is False

    # Stored into the twin deltaspace, against its reference: what the estimate says.
    was = stored_by_space(target, "copy/")[""]
    upload(target, plain, "copy/")
    assert stored_by_space(target, "copy/")[""] - was == mix["estimated_stored"]


def test_max_sample_bytes(dg: Dg, target: Target) -> None:
    big = {f"big/app-{v}.zip": release(v) for v in range(1, 7)}
    small = {f"small/lib-{v}.zip": release(v, seed=9) for v in (1, 2)}
    put_plain(target, big | small)
    ref_and_one = max(len(v) for v in big.values()) * 2
    assert ref_and_one < 300_000 < ref_and_one + min(len(v) for v in small.values())

    doc = analysis(dg, target.url(), "--max-sample-bytes", "300kB")
    assert doc["settings"]["max_sample_bytes"] == 300_000
    assert doc["sampled_bytes"] <= 300_000
    by_space = spaces(doc)
    # The deltaspace that can save the most is sampled first; the other does not fit.
    assert by_space["big"]["sampled"] == 2 and by_space["big"]["skipped"] is False
    assert by_space["big"]["estimated_stored"] < by_space["big"]["size"] / 3
    skipped = by_space["small"]
    assert skipped["skipped"] is True and skipped["sampled"] == 0
    assert skipped["estimated_stored"] == skipped["size"] and skipped["savings"] == 0
    assert doc["unsampled_deltaspaces"] == 1 and doc["unsampled_size"] == skipped["size"]
    # Units: decimal unless binary is asked for.
    assert analysis(dg, target.url(), "--max-sample-bytes", "0.3MB") == doc
    assert analysis(dg, target.url(), "--max-sample-bytes", "300000") == doc
    binary = analysis(dg, target.url(), "--max-sample-bytes", "1MiB")
    assert binary["settings"]["max_sample_bytes"] == 1 << 20
    assert binary["unsampled_deltaspaces"] == 0

    text = ok(dg("analyze", target.url(), "--max-sample-bytes", "300kB")).stdout
    row = next(line for line in text.splitlines() if line.startswith("small/"))
    assert row.split()[-1] == "0*"
    assert "* 1 deltaspace(s) (" in text and "counted as stored whole" in text

    nothing = analysis(dg, target.url(), "--max-sample-bytes", "0")
    assert nothing["sampled_objects"] == 0 and nothing["unsampled_deltaspaces"] == 2
    assert nothing["estimated_stored"] == nothing["size"] and nothing["savings"] == 0


def test_max_ratio_as_the_engine_applies_it(dg: Dg, target: Target) -> None:
    # Each file shares 60% with the others: deltas of about 40% of a file.
    base = noise(100_000, 10)
    items = {f"half/v{v}.zip": base[:60_000] + noise(40_000, 100 + v) for v in range(1, 5)}
    put_plain(target, items)
    loose = analysis(dg, target.url("half/"), "--sample", "100")
    strict = analysis(dg, target.url("half/"), "--sample", "100", "--max-ratio", "0.3")
    assert loose["settings"]["max_ratio"] == 0.5 and strict["settings"]["max_ratio"] == 0.3
    assert spaces(loose, "half/")[""]["deltas"] == 3
    assert spaces(strict, "half/")[""]["deltas"] == 0
    assert loose["estimated_stored"] < 0.6 * loose["size"]
    # A reference, its file as a delta against itself, and the 3 others whole.
    assert strict["estimated_stored"] > strict["size"]

    upload(target, items, "loose/")
    upload(target, items, "strict/", max_ratio=0.3)
    assert stored_by_space(target, "loose/")["half"] == loose["estimated_stored"]
    assert stored_by_space(target, "strict/")["half"] == strict["estimated_stored"]
    for bad in ("0", "1.5", "half"):
        assert dg("analyze", target.url(), "--max-ratio", bad).exit_code == 2


def test_sample_count(dg: Dg, target: Target) -> None:
    put_plain(target, {f"rel/app-{v}.zip": release(v) for v in range(1, 9)})
    sampled = {
        n: spaces(analysis(dg, target.url(), "--sample", str(n)))["rel"]["sampled"]
        for n in (1, 3, 100)
    }
    assert sampled == {1: 2, 3: 4, 100: 8}
    result = dg("analyze", target.url(), "--sample", "0")
    assert result.exit_code == 2 and "--sample" in result.stderr


def test_errors(dg: Dg, target: Target) -> None:
    for args in (
        ("--max-sample-bytes", "lots"),
        ("--max-sample-bytes", "-5"),
        ("--sample", "x"),
        ("--bogus",),
    ):
        result = dg("analyze", target.url(), *args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr
    assert "not a size" in dg("analyze", target.url(), "--max-sample-bytes", "lots").stderr
    assert dg("analyze", "not-a-url").exit_code == 2
    assert dg("analyze").exit_code == 2
    for json_flag in ((), ("--json",)):
        missing = dg("analyze", f"s3://{target.bucket}-missing/", *json_flag)
        assert missing.exit_code == 1 and missing.stdout == ""
        assert missing.stderr.startswith("deltaglider: error: ")
        assert missing.stderr.strip().endswith("does not exist")
        assert len(missing.stderr.strip().splitlines()) == 1


def test_empty_bucket_and_prefix(dg: Dg, target: Target) -> None:
    for url in (target.url(), target.url("nothing/here/")):
        text = ok(dg("analyze", url)).stdout
        assert "Potential savings: 0.0% (0 Bytes -> 0 Bytes)" in text
        assert f"No plain objects under {url}" in text
        doc = analysis(dg, url)
        assert (doc["objects"], doc["size"], doc["estimated_stored"]) == (0, 0, 0)
        assert doc["spaces"] == [] and doc["savings"] == 0
    put_plain(target, {"other/a.zip": release(1)})
    doc = analysis(dg, target.url("nothing"))
    assert doc["prefix"] == "nothing/" and doc["objects"] == 0
    # A prefix is a folder: "oth" is not "other/".
    assert analysis(dg, target.url("oth"))["objects"] == 0
    assert analysis(dg, target.url("other"))["objects"] == 1


def test_executable_json_and_quiet(dg: Dg, target: Target) -> None:
    put_plain(target, {f"rel/app-{v}.zip": release(v) for v in (1, 2, 3)})
    run = dg.exe("analyze", target.url(), "--json")
    assert run.returncode == 0, run.stderr
    assert run.stderr == b""  # no progress line when stderr is not a terminal
    doc = json.loads(run.stdout)
    assert doc["objects"] == 3 and 0.6 < doc["savings"] < 1
    assert doc == analysis(dg, target.url())
    text = dg.exe("analyze", target.url())
    assert text.returncode == 0 and text.stderr == b""
    assert SAVINGS_LINE.search(text.stdout.decode())
    quiet = dg.exe("analyze", target.url(), "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")
    missing = dg.exe("analyze", f"s3://{target.bucket}-missing")
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1


def on_a_terminal(dg: Dg, *args: str) -> tuple[bytes, bytes]:
    """Runs the executable with stderr on a pseudo-terminal: (stdout, what the terminal got)."""
    env = {**os.environ, **dg.target.env}
    env.pop("AWS_PROFILE", None)
    leader, follower = os.openpty()
    try:
        run = subprocess.run(
            [executable(), *args],
            stdout=subprocess.PIPE,
            stderr=follower,
            env=env,
            cwd=dg.workdir,
            timeout=300,
        )
        os.close(follower)
        follower = -1
        assert run.returncode == 0
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not chunk:
                break
            seen += chunk
        return run.stdout, seen
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_progress_only_on_a_terminal(dg: Dg, target: Target) -> None:
    put_plain(target, {f"rel/app-{v}.zip": release(v) for v in (1, 2, 3)})
    out, tty = on_a_terminal(dg, "analyze", target.url())
    assert SAVINGS_LINE.search(out.decode())
    assert b"\ranalyze " in tty and b"file(s) remaining" in tty
    assert tty.endswith(b"\r")  # the line is cleared before the result is printed
    for flag in ("--no-progress", "--quiet"):
        out, tty = on_a_terminal(dg, "analyze", target.url(), flag)
        assert tty == b""
        assert bool(SAVINGS_LINE.search(out.decode())) is (flag == "--no-progress")


def test_parse_size() -> None:
    assert parse_size("1000") == 1000
    assert parse_size("500MB") == 500_000_000
    assert parse_size("1.5g") == 1_500_000_000
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("10 kb") == 10_000
    for bad in ("", "MB", "-1", "1.2.3", "5 XB"):
        with pytest.raises(ValueError):
            parse_size(bad)
