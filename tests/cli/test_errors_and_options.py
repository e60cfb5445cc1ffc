"""What users get wrong and what goes wrong: one clear line, the right exit code, nothing
left behind. And the global options, before or after the command."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, executable, ok, write
from test_cp import release

from deltaglider import __version__
from deltaglider.errors import ObjectNotFound


def test_usage_errors_exit_2(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", b"a")
    for args in (
        ("cp", "a.zip", "s3://"),
        ("cp", "a.zip", "b.zip"),  # local to local
        ("ls", "not-a-url"),
        ("cp", "missing.zip", target.url()),
        ("cp", "-r", "a.zip", target.url()),
        ("sync", "a.zip", target.url()),
        ("rm", "s3:///key"),
        ("cp", "a.zip", target.url(), "--bogus-flag"),
    ):
        result = dg(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stderr.strip(), args
        assert "Traceback" not in result.stderr


def test_missing_bucket_and_object(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    up = dg("cp", "a.zip", f"s3://{target.bucket}-missing/")
    assert up.exit_code == 1
    assert up.stderr.strip().endswith("does not exist")
    assert len(up.stderr.strip().splitlines()) == 1
    ls = dg("ls", f"s3://{target.bucket}-missing/")
    assert ls.exit_code == 1 and "does not exist" in ls.stderr
    down = dg("cp", target.url("nothing.zip"), "x.zip")
    assert down.exit_code == 1 and "does not exist" in down.stderr
    assert not (workdir / "x.zip").exists()


def test_wrong_credentials(s3_target: Target, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    result = dg("ls", s3_target.url(), env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert result.exit_code == 1
    assert "access denied" in result.stderr and "secret key is wrong" in result.stderr
    assert "wrong" not in result.stderr.replace("secret key is wrong", "")  # no secret echoed
    # The read-only principal can list and download, not upload.
    server = s3_target.server
    assert server is not None and server.reader_key and server.reader_secret
    write(workdir / "a.zip", release(1))
    ok(dg("cp", "a.zip", s3_target.url("r/")))
    reader = {"AWS_ACCESS_KEY_ID": server.reader_key, "AWS_SECRET_ACCESS_KEY": server.reader_secret}
    assert ok(dg("ls", s3_target.url("r/"), env=reader)).stdout.endswith("a.zip\n")
    ok(dg("cp", s3_target.url("r/a.zip"), "back.zip", env=reader))
    denied = dg("cp", "a.zip", s3_target.url("r/b.zip"), env=reader)
    assert denied.exit_code == 1 and "access denied" in denied.stderr


def _without_file_override() -> None:
    """In the child, before exec: drop the capabilities that let root read any file, so that
    permissions apply to it as to anyone (PR_CAPBSET_DROP of CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_local_file_fails_alone(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "d/good.zip", release(1))
    write(workdir / "d/bad.zip", release(2))
    os.chmod(workdir / "d/bad.zip", 0o000)
    env = {**os.environ, **target.env}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [executable(), "cp", "-r", "d", target.url("u/")],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=120,
        preexec_fn=_without_file_override if os.geteuid() == 0 else None,
    )
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.decode()
    assert "upload failed: d/bad.zip" in err and "permission denied" in err
    assert "Traceback" not in err
    assert target.read("u/good.zip") == release(1)
    assert target.logical_keys("u/") == ["u/good.zip"]


def _corrupt_delta(target: Target, key: str) -> None:
    storage = target.storage()
    info, body = storage.get(target.bucket, key + ".delta")
    data = bytearray(body.read())
    body.close()
    data[len(data) // 2] ^= 0xFF
    storage.put(
        target.bucket, key + ".delta", bytes(data), metadata=info.metadata,
        content_type=info.content_type,
    )  # fmt: skip


def test_corrupt_delta_fails_cleanly_and_leaves_nothing(
    dg: Dg, target: Target, workdir: Path
) -> None:
    for v in (1, 2, 3):
        write(workdir / f"c/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "c", target.url("c/")))
    victim = next(k for k in target.logical_keys("c/") if not k.endswith("app-2.zip"))
    _corrupt_delta(target, victim)
    single = dg("cp", target.url(victim), "out.zip")
    assert single.exit_code == 1
    assert victim in single.stderr and len(single.stderr.strip().splitlines()) == 1
    assert list(workdir.glob("out.zip*")) == [] and list(workdir.glob(".out.zip*")) == []
    # Recursive: the others arrive, the bad one does not, exit 1.
    many = dg("cp", "-r", target.url("c/"), "all")
    assert many.exit_code == 1
    got = sorted(p.name for p in (workdir / "all").iterdir())
    assert (
        len(got) == 2 and Path(victim).name not in got and not any(n.startswith(".") for n in got)
    )
    checked = dg("verify", "-r", target.url("c/"))
    assert checked.exit_code == 1 and f"FAILED: {target.url(victim)}" in checked.stderr


def test_global_options_before_or_after_the_command(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    # The environment names a dead endpoint (on 127.0.0.1): only the option reaches the store.
    runner_env = {"DG_ENDPOINT_URL": "http://127.0.0.1:9", "DG_MAX_ATTEMPTS": "1"}
    after = dg(
        "cp", "a.zip", target.url("g/"), "--endpoint-url", target.endpoint_url, env=runner_env
    )
    ok(after)
    before = dg("--endpoint-url", target.endpoint_url, "ls", target.url("g/"), env=runner_env)
    assert ok(before).stdout.endswith("a.zip\n")
    quiet = ok(dg("cp", "a.zip", target.url("g/b.zip"), "--quiet"))
    assert quiet.stdout == ""
    assert ok(dg("--version")).stdout.strip() == f"deltaglider {__version__}"
    dead = dg("ls", target.url("g/"), env=runner_env)
    assert dead.exit_code == 1 and dead.stdout == ""


def test_debug_and_log_level(dg: Dg, target: Target, workdir: Path) -> None:
    with pytest.raises(ObjectNotFound):
        dg("--debug", "cp", target.url("missing.zip"), "x")
    bad = dg("ls", target.url(), env={"DG_LOG_LEVEL": "LOUD"})
    assert bad.exit_code == 2 and "DG_LOG_LEVEL" in bad.stderr
    proc = dg.exe("cp", target.url("missing.zip"), "x", "--debug")
    assert proc.returncode == 1 and b"Traceback" in proc.stderr
    proc = dg.exe("cp", target.url("missing.zip"), "x")
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr
    assert proc.stderr.decode().count("\n") == 1
