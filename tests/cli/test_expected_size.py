"""``cp - s3://b/k --expected-size N``: stdin must give N bytes. Fewer (at its end) or more (as
soon as they are read) is an error that leaves no object: the engine reads the whole stream
before it stores anything. A regular file as stdin (``< file``) is measured, not read. On
SeaweedFS and the local store."""

from __future__ import annotations

import json
import os
import subprocess

from cli_conftest import Dg, Target, executable, ok, write
from test_cp import release


def test_the_bytes_said_are_stored(dg: Dg, target: Target) -> None:
    data = release(1)
    out = ok(dg("cp", "-", target.url("in/app-1.zip"), "--expected-size", str(len(data)),
                "--json", input=data)).stdout  # fmt: skip
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["size"] == len(data) and record["reference"] is True
    assert target.read("in/app-1.zip") == data
    # A delta too, and an empty stream said to be empty.
    ok(dg("cp", "-", target.url("in/app-2.zip"), "--expected-size", "200000", input=release(2)))
    assert target.head("in/app-2.zip").is_delta
    ok(dg("cp", "-", target.url("in/empty.txt"), "--expected-size", "0", input=b""))
    assert target.read("in/empty.txt") == b""


def test_another_count_is_an_error_that_stores_nothing(dg: Dg, target: Target) -> None:
    data = release(1)
    short = dg("cp", "-", target.url("in/a.zip"), "--expected-size", str(len(data) + 1), input=data)
    assert short.exit_code == 1
    assert short.stderr == (
        f"deltaglider: error: {target.url('in/a.zip')}: stdin gave {len(data)} bytes, "
        f"--expected-size said {len(data) + 1}; nothing was stored\n"
    )
    long = dg("cp", "-", target.url("in/a.zip"), "--expected-size", "1000", input=data)
    assert long.exit_code == 1
    assert "stdin gave more than --expected-size 1000 bytes; nothing was stored" in long.stderr
    empty = dg("cp", "-", target.url("in/a.zip"), "--expected-size", "5", input=b"")
    assert empty.exit_code == 1 and "stdin gave 0 bytes" in empty.stderr
    assert long.stdout == short.stdout == ""
    assert target.physical_keys("in/") == []  # no object, no reference
    # Not a count: a usage error.
    for bad in ("-1", "12MB", "x"):
        run = dg("cp", "-", target.url("in/a.zip"), "--expected-size", bad, input=data)
        assert run.exit_code == 2, bad
    assert target.physical_keys("in/") == []


def test_a_regular_file_as_stdin_is_measured(dg: Dg, target: Target) -> None:
    """``< file``: its size is checked before anything is read (the engine maps the file)."""
    path = write(dg.workdir / "app-1.zip", release(1))
    env = {**os.environ, **target.env}
    env.pop("AWS_PROFILE", None)

    def run(expected: int) -> subprocess.CompletedProcess[bytes]:
        with open(path, "rb") as stdin:
            return subprocess.run(
                [executable(), "cp", "-", target.url("f/app-1.zip"), "--expected-size",
                 str(expected)],
                stdin=stdin, env=env, capture_output=True, timeout=120,
            )  # fmt: skip

    wrong = run(len(release(1)) - 1)
    assert wrong.returncode == 1
    assert b"stdin gives 200000 bytes, --expected-size said 199999" in wrong.stderr
    assert target.physical_keys("f/") == []
    right = run(len(release(1)))
    assert right.returncode == 0, right.stderr
    assert right.stdout.decode().startswith(f"upload: - to {target.url('f/app-1.zip')}")
    assert target.read("f/app-1.zip") == release(1)


def test_ignored_where_aws_ignores_it(dg: Dg, target: Target) -> None:
    """Only a stream has a size to say: on a file or a download it changes nothing, as aws."""
    write(dg.workdir / "app-1.zip", release(1))
    ok(dg("cp", "app-1.zip", target.url("g/"), "--expected-size", "1"))
    ok(dg("cp", target.url("g/app-1.zip"), "back.zip", "--expected-size", "1"))
    assert (dg.workdir / "back.zip").read_bytes() == release(1)
