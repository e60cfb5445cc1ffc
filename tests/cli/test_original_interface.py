"""The original DeltaGlider's documented command-line interface, run against our command: its
import path (``deltaglider.app.cli.main``) under click's CliRunner, ``stats --json``'s fields and
the human report's labels, ``verify``'s JSON document, the summary lines scripts look for
(``Sync completed: ...``, ``Deleted N object(s)``), ``migrate --dry-run`` into a bucket that does
not exist yet, ``DG_LOG_LEVEL``'s default, and output without ``-0.0%`` in one unit system.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from cli_conftest import Dg, Target, ok, write
from click.testing import CliRunner
from test_cp import release
from test_errors_and_options import _corrupt_release_folder

from deltaglider.cli._console import human_size, percent


def extract_json_from_cli_output(output: str) -> dict[str, Any]:
    """The original's e2e helper (tests/e2e/test_localstack.py), as it reads our output: the
    first line starting with ``{`` up to the next line that is ``}``."""
    lines = output.split("\n")
    for i, line in enumerate(lines):
        if line.strip().startswith("{"):
            end = next((j for j in range(i, len(lines)) if lines[j].strip() == "}"), len(lines) - 1)
            doc = json.loads("\n".join(lines[i : end + 1]))
            assert isinstance(doc, dict)
            return doc
    raise ValueError("No JSON found in CLI output")


def test_the_original_import_path_under_clirunner(s3_target: Target, tmp_path: Path) -> None:
    """The original's e2e flow (upload two plugins, download, verify, stats), through
    ``from deltaglider.app.cli.main import cli`` and CliRunner, the endpoint in
    AWS_ENDPOINT_URL as the original's tests give it, DG_LOG_LEVEL at its default."""
    from deltaglider.app.cli.main import cli
    from deltaglider.cli import cli as ours

    assert cli is ours
    assert s3_target.server is not None
    env: dict[str, str | None] = {
        **s3_target.env,
        "DG_ENDPOINT_URL": None,
        "DG_LOG_LEVEL": None,
        "AWS_ENDPOINT_URL": s3_target.server.endpoint_url,
    }
    bucket = s3_target.bucket
    runner = CliRunner()
    file1 = tmp_path / "plugin-v1.0.0.zip"
    file1.write_text("Plugin version 1.0.0 content")
    file2 = tmp_path / "plugin-v1.0.1.zip"
    file2.write_text("Plugin version 1.0.1 content with minor changes")
    for path in (file1, file2):
        result = runner.invoke(cli, ["cp", str(path), f"s3://{bucket}/plugins/"], env=env)
        assert result.exit_code == 0, result.output
        assert "upload:" in result.output
    # (Files this small are stored whole: a delta would not pay. The original stored deltas.)
    assert s3_target.logical_keys() == ["plugins/plugin-v1.0.0.zip", "plugins/plugin-v1.0.1.zip"]
    out = tmp_path / "downloaded.zip"
    url = f"s3://{bucket}/plugins/plugin-v1.0.1.zip"
    result = runner.invoke(cli, ["cp", url, str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_text() == file2.read_text()
    result = runner.invoke(cli, ["verify", url], env=env)
    assert result.exit_code == 0, result.output
    assert extract_json_from_cli_output(result.output)["valid"] is True
    # The original's stats test reads result.output (stdout and stderr) as one document.
    result = runner.invoke(cli, ["stats", bucket, "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["bucket"] == bucket and doc["object_count"] == 2
    assert doc["delta_objects"] + doc["direct_objects"] == 2
    # DG_LOG_LEVEL unset is INFO, as the original documents it.
    assert logging.getLogger("deltaglider").level == logging.INFO


def test_stats_json_has_the_original_fields_and_ours(dg: Dg, target: Target, workdir: Path) -> None:
    for v in range(1, 5):
        write(workdir / f"rel/app-{v}.zip", release(v))
    write(workdir / "rel/notes.txt", b"notes\n" * 100)
    ok(dg("cp", "-r", "rel", target.url("rel/")))
    stored = sum(
        o.size
        for o in target.storage().iter_objects(target.bucket)
        if not o.key.startswith(".deltaglider/")
    )
    logical = 4 * 200_000 + 600
    for mode in ("--sampled", "--detailed"):
        doc = json.loads(ok(dg("stats", target.bucket, mode, "--json")).stdout)
        # The original's fields are ours under its names, in every mode.
        assert (doc["object_count"], doc["total_size"], doc["compressed_size"]) == (
            doc["objects"],
            doc["logical_bytes"],
            doc["stored_bytes"],
        )
        assert (doc["delta_objects"], doc["direct_objects"]) == (doc["deltas"], doc["direct"])
        assert doc["space_saved"] == max(doc["saved_bytes"], 0)
        assert abs(doc["average_compression_ratio"] - doc["savings"]) < 1e-5
        if mode == "--sampled":
            continue
        # Detailed: exact; the original's document, field for field (its types too).
        original = {
            "bucket": target.bucket,
            "object_count": 5,
            "total_size": logical,
            "compressed_size": stored,
            "space_saved": logical - stored,
            "average_compression_ratio": 1 - stored / logical,
            "delta_objects": 4,
            "direct_objects": 1,
            "object_limit_reached": False,
        }
        assert {k: doc[k] for k in original} == original
        assert isinstance(doc["average_compression_ratio"], float)
        # Ours, in the same document.
        assert doc["objects"] == 5 and doc["logical_bytes"] == logical
        assert doc["stored_bytes"] == stored and doc["references"] == 1
        assert doc["mode"] == "detailed" and doc["exact"] is True


def test_stats_human_report_uses_the_original_labels(dg: Dg, target: Target, workdir: Path) -> None:
    for v in (1, 2):
        write(workdir / f"rel/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "rel", target.url("rel/")))
    doc = json.loads(ok(dg("stats", target.bucket, "--detailed", "--json")).stdout)
    out = ok(dg("stats", target.bucket, "--detailed")).stdout
    lines = out.splitlines()
    assert lines[:10] == [
        f"Bucket Statistics: {target.bucket}",
        "=" * 60,
        "Total Objects:        2",
        "  Delta Objects:      2",
        "  Direct Objects:     0",
        "  References:         1",
        "",
        f"Original Size:        {human_size(400_000)} (400,000 bytes)",
        f"Compressed Size:      {human_size(doc['stored_bytes'])} ({doc['stored_bytes']:,} bytes)",
        f"Space Saved:          {human_size(doc['saved_bytes'])} ({doc['saved_bytes']:,} bytes)",
    ]
    assert lines[10] == f"Compression Ratio:    {percent(doc['savings'])}"
    # And ours after them.
    assert lines[11] == "Numbers:              exact (detailed)"
    assert lines[12].startswith("Cache:                ")
    prefix = ok(dg("stats", target.url("rel/"))).stdout
    assert prefix.startswith(f"Bucket Statistics: {target.bucket}, prefix rel/\n")


@pytest.mark.slow
def test_stats_refresh_in_every_mode(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a/app-1.zip", release(1))
    ok(dg("cp", "-r", "a", target.url("a/")))
    for n, mode in enumerate(((), ("--sampled",), ("--detailed",)), 2):
        first = json.loads(ok(dg("stats", target.bucket, *mode, "--json")).stdout)
        # Another release arrives; --refresh recomputes whatever the mode.
        write(workdir / f"b{n}/app-{n}.zip", release(n))
        ok(dg("cp", "-r", f"b{n}", target.url("a/")))
        again = json.loads(ok(dg("stats", target.bucket, *mode, "--refresh", "--json")).stdout)
        assert again["object_count"] == first["object_count"] + 1, mode
        assert again["cache"]["status"] == "refresh", mode
        text = ok(dg("stats", target.bucket, *mode, "--refresh")).stdout
        assert "Cache:                refreshed" in text, (mode, text)


def test_verify_prints_the_original_json_document(dg: Dg, target: Target, workdir: Path) -> None:
    victim = _corrupt_release_folder(dg, target, workdir)
    good = target.url("c/app-2.zip")
    sha = target.head("c/app-2.zip").sha256
    result = ok(dg("verify", good))
    # stdout: one JSON document (the original's fields, then ours); stderr: our ok line.
    doc = json.loads(result.stdout)
    assert list(doc)[:4] == ["valid", "expected_sha256", "actual_sha256", "message"]
    assert doc["valid"] is True and doc["message"] == "Integrity verified"
    assert doc["expected_sha256"] == doc["actual_sha256"] == doc["sha256"] == sha
    assert doc["key"] == "c/app-2.zip" and doc["bucket"] == target.bucket
    assert doc["size"] == 200_000 and doc["delta"] is True
    assert result.stdout.startswith("{\n  ")  # indented, as the original printed it
    assert result.stderr.startswith(f"ok: {good} (delta, 200000 bytes, sha256 {sha})")
    assert extract_json_from_cli_output(result.output)["valid"] is True
    # A bad one: exit 1, the document says why; the FAILED line on stderr.
    bad = dg("verify", target.url(victim))
    assert bad.exit_code == 1
    doc = json.loads(bad.stdout)
    assert doc["valid"] is False and doc["message"].startswith("Integrity check failed: ")
    assert doc["expected_sha256"] and doc["error"]
    assert bad.stderr.startswith(f"FAILED: {target.url(victim)}: ")
    # --json: the same record on one line, nothing else; -r --json: one per object.
    one = ok(dg("verify", good, "--json"))
    assert one.stderr == "" and len(one.stdout.splitlines()) == 1
    assert json.loads(one.stdout)["actual_sha256"] == sha
    many = dg("verify", "-r", target.url("c/"), "--json")
    records = [json.loads(line) for line in many.stdout.splitlines()]
    assert sorted(r["valid"] for r in records) == [False, True, True]
    assert all({"valid", "expected_sha256", "actual_sha256", "message"} <= set(r) for r in records)
    # --quiet: errors only (the exit code says the rest).
    quiet = ok(dg("verify", good, "--quiet"))
    assert quiet.stdout == quiet.stderr == ""


@pytest.mark.slow
def test_the_summary_lines_scripts_look_for(dg: Dg, target: Target, workdir: Path) -> None:
    """``aws s3 sync`` and ``aws s3 rm --recursive`` end with no summary (measured: their
    stdout is the action lines alone); we end with the original's line on stdout."""
    for v in (1, 2, 3):
        write(workdir / f"site/app-{v}.zip", release(v))
    up = ok(dg("sync", "site", target.url("s/"))).stdout.splitlines()
    assert all(line.startswith("upload: ") for line in up[:-1]) and len(up) == 4
    assert re.fullmatch(r"Sync completed: 3 uploaded, 0 deleted; .* stored as .* saved\)", up[-1])
    assert ok(dg("sync", "site", target.url("s/"))).stdout == "Sync completed: Already up to date\n"
    (workdir / "site/app-3.zip").unlink()
    deleted = ok(dg("sync", "site", target.url("s/"), "--delete")).stdout.splitlines()
    assert deleted[-1] == "Sync completed: 0 uploaded, 1 deleted"
    down = ok(dg("sync", target.url("s/"), "mirror")).stdout.splitlines()
    assert down[-1] == "Sync completed: 2 downloaded, 0 deleted"
    # Not with --dryrun (as the original), --quiet or --json.
    write(workdir / "site/app-4.zip", release(4))
    dry = ok(dg("sync", "site", target.url("s/"), "--dryrun")).stdout
    assert "Sync completed" not in dry and dry.startswith("(dryrun) upload: ")
    assert ok(dg("sync", "site", target.url("s/"), "--quiet")).stdout == ""
    # rm -r: "Deleted N object(s)"; with --dryrun "Would delete N object(s)"; rm of one: none.
    dry = ok(dg("rm", "-r", target.url("s/"), "--dryrun")).stdout.splitlines()
    assert dry[-1] == "Would delete 3 object(s)" and len(dry) == 4
    one = ok(dg("rm", target.url("s/app-4.zip"))).stdout
    assert one == f"delete: {target.url('s/app-4.zip')}\n"
    gone = ok(dg("rm", "-r", target.url("s/"))).stdout.splitlines()
    assert gone[-1] == "Deleted 2 object(s)" and len(gone) == 3
    assert ok(dg("rm", "-r", target.url("s/"))).stdout == "Deleted 0 object(s)\n"
    lines = ok(dg("rm", "-r", target.url("s/"), "--json")).stdout.splitlines()
    assert (
        "Deleted" not in "".join(lines) and json.loads(lines[-1])["summary"].get("deleted", 0) == 0
    )


def test_migrate_dry_run_into_a_bucket_that_does_not_exist_yet(
    dg: Dg, target: Target, workdir: Path
) -> None:
    for v in (1, 2):
        write(workdir / f"old/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "old", target.url("old/")))
    new = f"{target.bucket}-new"
    for flag in ("--dry-run", "--dryrun"):
        out = ok(dg("migrate", target.url("old/"), f"s3://{new}/", flag))
        assert "2 object(s)" in out.stdout
        assert f"bucket {new} does not exist yet: deltaglider mb s3://{new}" in out.stdout
        assert out.stdout.count("(dryrun) migrate: ") == 2
    record = json.loads(
        ok(dg("migrate", target.url("old/"), f"s3://{new}/", "--dryrun", "--json")).stdout.split(
            "\n"
        )[0]
    )
    assert record["plan"]["destination_exists"] is False and record["plan"]["to_migrate"] == 2
    assert new not in [b.name for b in target.storage().list_buckets()]
    # Not a preview: the same error as before.
    real = dg("migrate", target.url("old/"), f"s3://{new}/", "--yes")
    assert real.exit_code == 1 and f"bucket {new} does not exist" in real.stderr


def test_no_negative_zero_and_one_unit_system(dg: Dg, target: Target, workdir: Path) -> None:
    """A lone release costs a few bytes more than the file (its reference and an empty
    delta): a loss too small for one decimal, shown with more, never as "-0.0%"; and sizes
    in binary units in ls, stats and analyze alike."""
    write(workdir / "one/app-1.zip", release(1))
    outputs = [ok(dg("cp", "-r", "one", target.url("one/"))).stdout]
    outputs.append(ok(dg("ls", "-h", "--stored", "--summarize", target.url("one/"))).stdout)
    for mode in ((), ("--detailed",)):
        outputs.append(ok(dg("stats", target.bucket, *mode)).stdout)
    target.storage().put(target.bucket, "plain/app-1.zip", release(1), size=200_000)
    target.storage().put(target.bucket, "plain/app-2.zip", release(2), size=200_000)
    outputs.append(ok(dg("analyze", target.url("plain/"))).stdout)
    text = "\n".join(outputs)
    assert "-0.0%" not in text and "-0%" not in text
    assert re.search(r"\(-0\.0\d+% saved\)", outputs[0]), outputs[0]
    assert "195.3 KiB" in outputs[1] and "195.3 KiB" in outputs[2] and "KiB" in outputs[4]
    for decimal in (" kB", " MB", " GB"):
        assert decimal not in text, decimal
    assert percent(-0.0) == percent(-1e-12) == "0.0%" and percent(-0.00025) == "-0.03%"
