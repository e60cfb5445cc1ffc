"""The progress line: drawn on stderr when it is a terminal (a pseudo-terminal here), with
bytes, rate, ETA and files remaining; never with --no-progress or --quiet, nor into a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from pathlib import Path

import pytest
from cli_conftest import Target, executable, write
from test_cp import release


def _run(
    target: Target, workdir: Path, *args: str, tty: bool, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Runs the executable with stderr on a pseudo-terminal (or a pipe): exit code, stdout,
    and what reached stderr."""
    env = {**os.environ, **target.env, "COLUMNS": "200", **(env or {})}
    env.pop("AWS_PROFILE", None)
    if not tty:
        proc = subprocess.run(
            [executable(), *args], cwd=workdir, env=env, capture_output=True, timeout=120
        )
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [executable(), *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        os.close(slave)
    reader.join(10)
    os.close(master)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


def _seed(workdir: Path) -> None:
    for v in range(12):
        write(workdir / f"up/app-{v}.zip", release(v, 2_000_000))


@pytest.mark.slow
def test_progress_on_a_terminal_only(s3_target: Target, workdir: Path) -> None:
    _seed(workdir)
    code, out, err = _run(s3_target, workdir, "cp", "-r", "up", s3_target.url("a/"), tty=True)
    assert code == 0
    assert out.count("upload: ") == 12  # result lines stay on stdout, whole
    assert "\r" in err and "upload " in err
    assert "file(s) remaining" in err and "/s" in err and "MiB/" in err
    assert "saved" in err  # the running savings
    # Cleared at the end: the last thing on the terminal is not a stale progress line.
    assert err.rstrip(" ").endswith("\r")
    for flag in ("--no-progress", "--quiet"):
        code, out, err = _run(
            s3_target, workdir, "cp", "-r", "up", s3_target.url(f"b{flag}/"), flag, tty=True
        )
        assert code == 0 and "\r" not in err and "remaining" not in err, flag
        assert (out == "") == (flag == "--quiet")
    # The same from their environment variables.
    for var in ("DG_NO_PROGRESS", "DG_QUIET"):
        code, out, err = _run(
            s3_target, workdir, "cp", "-r", "up", s3_target.url(f"e{var}/"), tty=True,
            env={var: "1"},
        )  # fmt: skip
        assert code == 0 and "\r" not in err and "remaining" not in err, var
        assert (out == "") == (var == "DG_QUIET")
    # Not a terminal: no progress either.
    code, out, err = _run(s3_target, workdir, "cp", "-r", "up", s3_target.url("c/"), tty=False)
    assert code == 0 and err == "" and out.count("upload: ") == 12
