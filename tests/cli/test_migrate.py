"""``deltaglider migrate``: plain and deltaglider sources, where things go, resuming (also
after SIGKILL, with 1,000 objects), confirmation, filters, dry runs, errors and EC2 region
detection against a local stand-in for the metadata service."""

from __future__ import annotations

import http.server
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest
from cli_conftest import Dg, Target, executable, ok, remove_bucket, write
from data import get_bytes
from test_cp import release

from deltaglider import format as fmt
from deltaglider.cli import _ec2
from deltaglider.cli._paths import S3Url
from deltaglider.cli.migrate import destination_prefix


@pytest.fixture
def dest(other_bucket: str) -> str:
    return other_bucket


def _plain(target: Target, files: dict[str, bytes], **put: object) -> None:
    """Objects as another tool writes them: no deltaglider metadata."""
    storage = target.storage()
    for key, data in files.items():
        storage.put(target.bucket, key, data, size=len(data), **put)  # type: ignore[arg-type]


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _logical(target: Target, bucket: str, prefix: str = "") -> dict[str, bytes]:
    engine = target.engine()
    return {
        o.key: get_bytes(engine, bucket, o.key) for o in engine.iter_objects(bucket, prefix=prefix)
    }


def test_destination_prefix_rule() -> None:
    src, dst = S3Url("old", "a/b/c/"), S3Url("new", "x/")
    assert destination_prefix(src, dst, True) == "x/c/"
    assert destination_prefix(S3Url("old", "a/b/c"), dst, True) == "x/c/"
    assert destination_prefix(src, dst, False) == "x/"
    assert destination_prefix(S3Url("old", ""), dst, True) == "x/"
    assert destination_prefix(S3Url("old", "p/"), S3Url("new", ""), True) == "p/"


def test_plain_bucket_becomes_deltas(dg: Dg, target: Target, dest: str) -> None:
    files = {f"builds/app/app-1.{v}.zip": release(v) for v in range(6)}
    files["builds/app/notes.txt"] = b"release notes\n"
    files["builds/other/tool.jar"] = release(20, 50_000)
    _plain(target, files)
    storage = target.storage()
    storage.put(
        target.bucket,
        "builds/app/meta.zip",
        release(7),
        size=200_000,
        metadata={"owner": "ci"},
        content_type="application/x-custom",
    )
    files["builds/app/meta.zip"] = release(7)
    before = target.physical_keys()
    result = ok(dg("migrate", target.url("builds/"), f"s3://{dest}/", "--yes"))
    out = result.stdout.splitlines()
    assert out[0] == f"Migrate {target.url('builds/')} to s3://{dest}/builds/"
    assert out[1].startswith("  9 object(s), ")
    assert sum(line.startswith("migrate: ") for line in out) == 9
    assert out[-1].startswith("9 migrated; ") and "saved)" in out[-1]
    # Preserve-prefix: the source's last folder under the destination; bytes exact.
    got = _logical(target, dest)
    assert got == {"builds/" + k[len("builds/") :]: v for k, v in files.items()}
    # Stored as deltas, with one reference per deltaspace: a real saving.
    physical = [o.key for o in storage.iter_objects(dest)]
    deltas = [k for k in physical if k.endswith(".delta")]
    assert len(deltas) == 8  # the lone jar is its deltaspace's reference (and zero-diff delta)
    assert {"builds/app/reference.bin", "builds/other/reference.bin"} <= set(physical)
    stored = sum(o.size for o in storage.iter_objects(dest))
    assert stored < sum(len(v) for v in files.values()) / 3
    # The middle release in version order became the reference.
    ref = fmt.parse_metadata(storage.head(dest, "builds/app/reference.bin").metadata or {}, "")
    assert ref.source_name == "app-1.3.zip"
    # User metadata and content type come along; the source is untouched.
    head = target.engine().head(dest, "builds/app/meta.zip")
    assert head.metadata == {"owner": "ci"} and head.content_type == "application/x-custom"
    assert target.physical_keys() == before


def test_resume_skips_verified_and_redoes_the_rest(dg: Dg, target: Target, dest: str) -> None:
    _plain(target, {f"r/app-{v}.zip": release(v) for v in range(4)})
    first = _json_lines(ok(dg("migrate", target.url("r/"), f"s3://{dest}/", "-y", "--json")).stdout)
    assert first[0]["plan"]["to_migrate"] == 4  # type: ignore[index]
    assert first[-1]["summary"]["migrated"] == 4  # type: ignore[index]
    again = ok(dg("migrate", target.url("r/"), f"s3://{dest}/", "-y"))
    assert "0 object(s), 0 Bytes to migrate; 4 already migrated and verified" in again.stdout
    assert again.stdout.rstrip().endswith("Nothing to do.")
    # A source object changed in place (same size, other bytes): its sha256 differs for a
    # deltaglider source, its time for a plain one. A foreign object at the destination
    # is not deltaglider's: replaced. A new source object: migrated.
    time.sleep(1.1)  # S3 times are whole seconds
    _plain(target, {"r/app-1.zip": release(11), "r/app-9.zip": release(9)})
    foreign = release(12)
    target.storage().put(dest, "r/app-2.zip", foreign, size=len(foreign))
    engine = target.engine()
    target.storage().delete(dest, "r/app-2.zip.delta")  # make the foreign object the one
    plan = _json_lines(ok(dg("migrate", target.url("r/"), f"s3://{dest}/", "-y", "--json")).stdout)
    assert plan[0]["plan"] == {  # type: ignore[comparison-overlap]
        "source": target.url("r/"),
        "destination": f"s3://{dest}/r/",
        "to_migrate": 3,
        "to_migrate_bytes": 600_000,
        "already_migrated": 2,
        "already_migrated_bytes": 400_000,
        "to_replace": 2,
        "excluded": 0,
        "destination_exists": True,
    }
    assert sorted(str(r["source"]) for r in plan[1:-1]) == [
        target.url(f"r/app-{v}.zip") for v in (1, 2, 9)
    ]
    assert get_bytes(engine, dest, "r/app-1.zip") == release(11)
    assert get_bytes(engine, dest, "r/app-2.zip") == release(2)
    assert engine.head(dest, "r/app-2.zip").is_delta


def test_deltaglider_source_is_verified_by_sha256(
    dg: Dg, target: Target, dest: str, workdir: Path
) -> None:
    for v in range(3):
        write(workdir / f"s/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "s", target.url("s/")))
    ok(dg("migrate", target.url("s/"), f"s3://{dest}/", "-y", "--no-preserve-prefix"))
    assert _logical(target, dest) == {f"app-{v}.zip": release(v) for v in range(3)}
    # The source replaced by other bytes of the same size, via deltaglider: the sha256s
    # differ, so it is migrated again even though the destination is newer.
    write(workdir / "s/app-1.zip", release(31))
    ok(dg("cp", "s/app-1.zip", target.url("s/app-1.zip")))
    out = ok(dg("migrate", target.url("s/"), f"s3://{dest}/", "-y", "--no-preserve-prefix"))
    assert "1 object(s), 195.3 KiB to migrate; 2 already migrated and verified" in out.stdout
    assert target.read("s/app-1.zip") == release(31)
    assert get_bytes(target.engine(), dest, "app-1.zip") == release(31)


def test_confirmation_dryrun_and_filters(dg: Dg, target: Target, dest: str) -> None:
    _plain(target, {"p/a-1.zip": release(1), "p/a-2.zip": release(2), "p/x.log": b"log"})
    no = dg("migrate", target.url("p/"), f"s3://{dest}/", input="n\n")
    assert no.exit_code == 0 and "Proceed? [y/N]" in no.stderr
    assert "nothing was copied" in no.stderr
    assert list(target.storage().iter_objects(dest)) == []
    dry = ok(dg("migrate", target.url("p/"), f"s3://{dest}/", "--dryrun"))
    assert f"(dryrun) migrate: {target.url('p/x.log')} to s3://{dest}/p/x.log" in dry.stdout
    assert list(target.storage().iter_objects(dest)) == []
    yes = ok(dg("migrate", target.url("p/"), f"s3://{dest}/", "--exclude", "*.log", input="y\n"))
    assert "1 excluded" in yes.stdout
    assert sorted(_logical(target, dest)) == ["p/a-1.zip", "p/a-2.zip"]
    # --no-delta stores whole files.
    ok(dg("migrate", target.url("p/"), f"s3://{dest}/whole/", "-y", "--no-delta"))
    whole = [o.key for o in target.storage().iter_objects(dest, prefix="whole/")]
    assert sorted(whole) == ["whole/p/a-1.zip", "whole/p/a-2.zip", "whole/p/x.log"]


def test_usage_and_missing_buckets(dg: Dg, target: Target, dest: str) -> None:
    local = dg("migrate", "folder/", f"s3://{dest}/", "-y")
    assert local.exit_code == 2 and "SRC must be an s3:// URL" in local.stderr
    overlap = dg("migrate", target.url(""), target.url("inside/"), "-y")
    assert overlap.exit_code == 2 and "overlap" in overlap.stderr
    missing = dg("migrate", target.url(""), "s3://no-such-bucket-dg/", "-y")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "deltaglider: error: bucket no-such-bucket-dg does not exist "
        "(create it with: deltaglider mb s3://no-such-bucket-dg)"
    )
    # Worded as every other command words it.
    nosrc = dg("migrate", "s3://no-such-bucket-dg/", f"s3://{dest}/", "-y")
    assert nosrc.exit_code == 1
    assert nosrc.stderr.strip() == "deltaglider: error: bucket no-such-bucket-dg does not exist"


def test_confirmation_without_a_terminal_is_a_usage_error(
    dg: Dg, target: Target, dest: str
) -> None:
    """stdin at its end (a script, no terminal) and no --yes: exit 2 and one line saying what
    to do, not "cancelled" and 130 as if interrupted."""
    _plain(target, {"p/a-1.zip": release(1)})
    for stdin in (None, ""):
        out = dg("migrate", target.url("p/"), f"s3://{dest}/", input=stdin)
        assert out.exit_code == 2, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("deltaglider:")]
        assert errors == ["deltaglider: error: no terminal to confirm: pass --yes"]
        assert "cancelled" not in out.stderr
        assert list(target.storage().iter_objects(dest)) == []
    # An answer that is neither yes nor no asks again; then the end of input.
    again = dg("migrate", target.url("p/"), f"s3://{dest}/", input="maybe\n")
    assert again.exit_code == 2 and again.stderr.count("Proceed? [y/N]") == 2


def test_a_failure_does_not_stop_the_others(
    dg: Dg, target: Target, dest: str, workdir: Path
) -> None:
    for v in range(3):
        write(workdir / f"f/a-{v}.zip", release(v))
    ok(dg("cp", "-r", "f", target.url("f/")))
    # One stored delta corrupted in place (its metadata kept): it cannot be rebuilt.
    storage = target.storage()
    victim = storage.head(target.bucket, "f/a-1.zip.delta")
    storage.put(target.bucket, victim.key, b"garbage", size=7, metadata=victim.metadata)
    out = dg("migrate", target.url("f/"), f"s3://{dest}/", "-y")
    assert out.exit_code == 1
    failed = [line for line in out.stderr.splitlines() if line.startswith("migrate failed: ")]
    assert len(failed) == 1 and target.url("f/a-1.zip") in failed[0]
    assert "run the same command again" in out.stderr
    assert "2 migrated, 1 failed" in out.stdout
    assert _logical(target, dest) == {"f/a-0.zip": release(0), "f/a-2.zip": release(2)}


# --- EC2 region detection ------------------------------------------------------------------


class _Imds(http.server.BaseHTTPRequestHandler):
    region = "eu-west-3"
    hits: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        self.hits.append(self.path)
        ok = self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        )
        self._answer(200 if ok else 400, b"token-123")

    def do_GET(self) -> None:
        self.hits.append(self.path)
        ok = self.headers.get("X-aws-ec2-metadata-token") == "token-123"
        if ok and self.path == "/latest/meta-data/placement/region":
            self._answer(200, self.region.encode())
        else:
            self._answer(401, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    """A stand-in for the instance metadata service, on 127.0.0.1."""
    _Imds.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ec2_detection(imds: str) -> None:
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds}
    warnings = _ec2.region_warnings(
        ["a", "b"], {"a": "us-east-1", "b": "eu-west-3"}.get, environ=env
    )
    assert len(warnings) == 2
    assert "this EC2 instance is in eu-west-3, but s3://a is in us-east-1" in warnings[0]
    assert _Imds.hits == ["/latest/api/token", "/latest/meta-data/placement/region"]
    # Same region: nothing to say.
    assert _ec2.region_warnings(["b"], lambda _: "eu-west-3", environ=env) == []
    # Disabled: no connection at all.
    _Imds.hits = []
    for off in ({"DG_DISABLE_EC2_DETECTION": "1"}, {"AWS_EC2_METADATA_DISABLED": "true"}):
        assert _ec2.region_warnings(["a"], lambda _: "us-east-1", environ={**env, **off}) == []
    assert _Imds.hits == []
    # Not EC2 (nothing listening): silence, quickly.
    started = time.monotonic()
    assert _ec2.instance_region("http://127.0.0.1:9", timeout=0.5) is None
    assert time.monotonic() - started < 2


def test_migrate_warns_across_regions(dg: Dg, s3_target: Target, imds: str, workdir: Path) -> None:
    storage = s3_target.storage()
    other = f"{s3_target.bucket}-dst"
    storage.create_bucket(other)
    try:
        env = {
            "DG_DISABLE_EC2_DETECTION": "",
            "AWS_EC2_METADATA_DISABLED": "false",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds,
        }
        out = Dg(s3_target, workdir)("migrate", s3_target.url(), f"s3://{other}/", "-y", env=env)
        assert out.exit_code == 0
        # The test server's buckets are in us-east-1; the "instance" is in eu-west-3.
        assert "this EC2 instance is in eu-west-3, but s3://" in out.stderr
        assert "AWS charges for data moved across regions" in out.stderr
        _Imds.hits = []
        quiet = Dg(s3_target, workdir)("migrate", s3_target.url(), f"s3://{other}/", "-y")
        assert "EC2" not in quiet.stderr and _Imds.hits == []
    finally:
        storage.delete_bucket(other)


# --- killed midway, 1,000 objects ----------------------------------------------------------


def _series(space: int, version: int) -> bytes:
    base = random.Random(space).randbytes(24_000)
    rng = random.Random(space * 1000 + version)
    data = bytearray(base)
    for _ in range(3):
        pos = rng.randrange(len(data) - 8)
        data[pos : pos + 8] = rng.randbytes(8)
    return bytes(data)


@pytest.mark.slow
def test_killed_midway_resumes_with_nothing_lost_or_duplicated(
    s3_target: Target, workdir: Path
) -> None:
    storage = s3_target.storage()
    src = s3_target.bucket
    dst = f"{src}-dst"
    storage.create_bucket(dst)
    files = {
        f"builds/svc-{s:02d}/svc-{s:02d}-1.{v}.zip": _series(s, v)
        for s in range(20)
        for v in range(50)
    }
    files.update({f"builds/docs/page-{i:03d}.html": b"<p>%d</p>" % i for i in range(50)})
    assert len(files) == 1050
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: storage.put(src, kv[0], kv[1], size=len(kv[1])), files.items()))
    env = {**os.environ, **s3_target.env, "DG_MAX_WORKERS": "4"}
    env.pop("AWS_PROFILE", None)
    command = [executable(), "migrate", f"s3://{src}/builds/", f"s3://{dst}/", "--yes"]
    proc = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            done = sum(1 for o in storage.iter_objects(dst) if o.key.endswith(".delta"))
            if done >= 300:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "migrate ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    midway = {o.key for o in s3_target.engine().iter_objects(dst)}
    assert 300 <= len(midway) < len(files)
    # Run it again: what is there is verified and skipped, the rest migrated.
    second = subprocess.run(
        [*command, "--json"], cwd=workdir, env=env, capture_output=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    lines = _json_lines(second.stdout.decode())
    plan = lines[0]["plan"]
    assert isinstance(plan, dict)
    assert plan["already_migrated"] == len(midway)
    assert plan["to_migrate"] == len(files) - len(midway)
    assert lines[-1]["summary"]["migrated"] == len(files) - len(midway)  # type: ignore[index]
    # Nothing lost: every object reads back byte-exactly under its name.
    engine = s3_target.engine()
    logical = sorted(o.key for o in engine.iter_objects(dst))
    assert logical == sorted(files)
    with ThreadPoolExecutor(8) as pool:
        got = dict(pool.map(lambda k: (k, get_bytes(engine, dst, k)), logical))
    assert got == files
    # Nothing duplicated: one stored object per file, one reference per deltaspace, no
    # temporary objects.
    physical = [o.key for o in storage.iter_objects(dst)]
    refs = [k for k in physical if k.endswith("/reference.bin")]
    assert sorted(refs) == sorted(f"builds/svc-{s:02d}/reference.bin" for s in range(20))
    others = [k for k in physical if not k.endswith("/reference.bin")]
    assert len(others) == len(files)
    assert sorted(fmt.physical(k).logical for k in others) == sorted(files)
    assert sum(k.endswith(".delta") for k in others) == 1000
    # And a third run has nothing to do.
    third = subprocess.run(command, cwd=workdir, env=env, capture_output=True, timeout=300)
    assert third.returncode == 0 and b"Nothing to do." in third.stdout
    remove_bucket(storage, dst)
