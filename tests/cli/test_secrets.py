"""Credentials never reach the output: not in results, errors, --debug logs or tracebacks, for
the commands that talk to the store, with right and with wrong keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, write
from test_cp import release


def _no_secret(proc_out: bytes, proc_err: bytes, *secrets: str) -> None:
    for text in (proc_out, proc_err):
        for secret in secrets:
            assert secret.encode() not in text, text.decode(errors="replace")[-2000:]


@pytest.mark.slow
def test_no_credentials_in_output_or_debug_logs(
    s3_target: Target, workdir: Path, tmp_path: Path
) -> None:
    server = s3_target.server
    assert server is not None and server.reader_secret
    secrets = (server.secret_key, server.reader_secret)
    dg = Dg(s3_target, workdir)
    for v in range(3):
        write(workdir / f"up/app-{v}.zip", release(v))
    # The shared, encrypted filesystem cache: its key is a secret too.
    cache_key = base64.b64encode(os.urandom(32)).decode()
    loud = {
        "DG_LOG_LEVEL": "DEBUG",
        "DG_CACHE_BACKEND": "filesystem",
        "DG_CACHE_DIR": str(tmp_path / "cache"),
        "DG_CACHE_ENCRYPTION_KEY": cache_key,
    }
    secrets = (*secrets, cache_key)
    runs = [
        ("--debug", "cp", "-r", "up", s3_target.url("s/")),
        ("--debug", "ls", "-r", "--stored", s3_target.url()),
        ("--debug", "sync", s3_target.url("s/"), "down/"),
        ("--debug", "stats", s3_target.bucket, "--detailed", "--json"),
        ("--debug", "verify", "-r", s3_target.url("s/")),
        ("--debug", "analyze", s3_target.url("s/")),
        ("--debug", "migrate", s3_target.url("s/"), f"s3://{s3_target.bucket}/m/", "--yes"),
    ]
    logged = b""
    for args in runs:
        proc = dg.exe(*args, env=loud)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        _no_secret(proc.stdout, proc.stderr, *secrets)
        logged += proc.stderr
    assert b"deltaglider: DEBUG: " in logged  # the debug logs were there to look at
    # The cache holds neither the key nor a reference's bytes in the clear.
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert entries
    plain = release(0)[1000:1064]
    for entry in entries:
        blob = entry.read_bytes()
        assert cache_key.encode() not in blob and base64.b64decode(cache_key) not in blob
        assert plain not in blob
    # Wrong keys, and a session token: an error (with a traceback under --debug), and still
    # no secret in it.
    wrong = "not-the-secret-0123456789abcdef"
    token = "session-token-" + os.urandom(12).hex()
    for extra in ((), ("--debug",)):
        for bad in (
            {"AWS_SECRET_ACCESS_KEY": wrong},
            {"AWS_SECRET_ACCESS_KEY": wrong, "AWS_SESSION_TOKEN": token},
        ):
            proc = dg.exe(*extra, "ls", s3_target.url(), env={**loud, **bad})
            assert proc.returncode == 1 and b"access denied" in proc.stderr.lower(), proc.stderr
            _no_secret(proc.stdout, proc.stderr, wrong, token, *secrets)
    # The reader's keys, refused a write.
    reader = {
        **loud,
        "AWS_ACCESS_KEY_ID": server.reader_key or "",
        "AWS_SECRET_ACCESS_KEY": server.reader_secret,
    }
    before = dg.exe("ls", "-r", s3_target.url())
    proc = dg.exe("--debug", "cp", "up/app-0.zip", s3_target.url("r/"), env=reader)
    assert proc.returncode == 1 and b"access denied" in proc.stderr.lower()
    _no_secret(proc.stdout, proc.stderr, *secrets)
    # It wrote nothing: the bucket lists as before, and the reader can still read.
    after = dg.exe("ls", "-r", s3_target.url())
    assert after.returncode == 0 and after.stdout == before.stdout
    assert b" r/" not in after.stdout and b"app-0.zip" in after.stdout
    proc = dg.exe("ls", "-r", s3_target.url("s/"), env=reader)
    assert proc.returncode == 0 and b"app-0.zip" in proc.stdout
