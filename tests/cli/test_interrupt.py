"""One Ctrl-C stops a transfer within a second, exits 130 and leaves nothing half-written: no
object, no open multipart upload, no partial local file (docs/cli.md, "Ctrl-C").

The ``deltaglider`` executable runs in a process of its own and gets a real SIGINT while its
transfer is under way: SeaweedFS behind the fault proxy, whose held answers keep requests on
the wire (an upload's parts, a download's ranged GETs) for seconds, the case where the work
cannot stop by itself and the command must stop waiting and clean up; and delayed PUTs, where
the work stops at its next step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from cli_conftest import Dg, Target, executable, ok, write
from servers import REGION

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from faultproxy import Fault, FaultProxy

from deltaglider.cli._cancel import Cancellation, Cancelled

#: From SIGINT to the process's end: "within a second".
WITHIN = 1.0


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    """The executable, its output read as it comes."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [executable(), "--no-progress", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As a command run in a terminal: SIGINT not ignored, even when this test runs in a
            # process a non-interactive shell started in the background (SIGINT ignored there,
            # and inherited; the command leaves an ignored SIGINT ignored).
            preexec_fn=_sigint_default,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(s, out), daemon=True)
            for s, out in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    def interrupt_when(self, ready: Callable[[], bool], timeout: float = 60) -> float:
        """Sends SIGINT once ``ready()``; the seconds from the signal to the process's end."""
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"ended before the test was ready: {self.stderr}"
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.01)
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        elapsed = time.monotonic() - sent
        for reader in self._readers:
            reader.join(5)
        return elapsed


def _env(target: Target, endpoint: str) -> dict[str, str]:
    env = {**os.environ, **target.env, "DG_ENDPOINT_URL": endpoint}
    env.pop("AWS_PROFILE", None)
    return env


def _open_uploads(target: Target) -> list[str]:
    server = target.server
    assert server is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=REGION,
    )
    uploads = s3.list_multipart_uploads(Bucket=target.bucket).get("Uploads", [])
    return [u["Key"] for u in uploads]


def test_an_upload_whose_parts_are_on_the_wire(
    s3_target: Target, proxy: FaultProxy, workdir: Path
) -> None:
    """A new release (its deltaspace's first: the reference, uploaded in parts, a step that
    reports no progress): its parts' answers are held, so the work cannot stop by itself."""
    write(workdir / "app-1.0.zip", os.urandom(40 << 20))
    proxy.add(Fault.stall(8), method="PUT", query="partNumber", times=10**6)
    run = Run(
        ["cp", "app-1.0.zip", s3_target.url("rel/")], workdir, _env(s3_target, proxy.endpoint_url)
    )
    elapsed = run.interrupt_when(
        lambda: any(r.method == "PUT" and "partNumber" in r.query for r in proxy.records)
    )
    assert run.proc.returncode == 130, run.stderr
    assert elapsed < WITHIN, elapsed
    assert run.stderr[-1] == "deltaglider: cancelled\n" and run.stdout == []
    assert s3_target.physical_keys("rel/") == []
    assert _open_uploads(s3_target) == []


def test_a_download_whose_reads_are_on_the_wire(
    s3_target: Target, proxy: FaultProxy, workdir: Path
) -> None:
    write(workdir / "big.bin", os.urandom(40 << 20))
    dg = Dg(s3_target, workdir)
    ok(dg("cp", "big.bin", s3_target.url("d/big.bin")))
    out = workdir / "out"
    out.mkdir()
    # The object opens; its ranged reads after the first are held.
    proxy.add(Fault.stall(8), method="GET", path=r"/d/big\.bin$", nth=2, times=10**6)
    run = Run(
        ["cp", s3_target.url("d/big.bin"), "out/big.bin"],
        workdir,
        _env(s3_target, proxy.endpoint_url),
    )
    elapsed = run.interrupt_when(lambda: any(out.glob(".big.bin.*.dgpart")))
    assert run.proc.returncode == 130, run.stderr
    assert elapsed < WITHIN, elapsed
    assert list(out.iterdir()) == []  # neither the file nor its partial


def test_a_sync_stops_at_its_next_step(s3_target: Target, proxy: FaultProxy, workdir: Path) -> None:
    """Many files, each PUT delayed a little: Ctrl-C after a few; those done are whole, the
    others absent, no summary line."""
    files = {f"f{i:02}.bin": os.urandom(100_000) for i in range(40)}
    for name, data in files.items():
        write(workdir / "site" / name, data)
    proxy.add(Fault.delay(0.2), method="PUT", times=10**6)
    run = Run(
        ["--max-workers", "2", "sync", "site", s3_target.url("s/")],
        workdir,
        _env(s3_target, proxy.endpoint_url),
    )
    elapsed = run.interrupt_when(lambda: len(run.stdout) >= 3)
    assert run.proc.returncode == 130, run.stderr
    assert elapsed < WITHIN, elapsed
    assert run.stderr == ["deltaglider: cancelled\n"]
    assert not any("Sync completed" in line for line in run.stdout)
    done = s3_target.logical_keys("s/")
    assert 3 <= len(done) < len(files)
    # Every file reported is there; one whose last request was answered as Ctrl-C came may
    # be there unreported (whole: it is read back below).
    assert {line.split()[-1] for line in run.stdout} <= {s3_target.url(k) for k in done}
    for key in done:
        assert s3_target.read(key) == files[key[2:]]
    assert _open_uploads(s3_target) == []


def test_the_cancellation_itself(s3_target: Target, tmp_path: Path) -> None:
    """In-process: SIGINT in the guarded block requests, it does not raise; the work checks;
    leaving the block raises KeyboardInterrupt; the store refuses data requests afterwards
    (not clean-up ones); clean_up removes the partial files of the downloads it tracks."""
    cancel = Cancellation()
    # A process a non-interactive shell started in the background has SIGINT ignored, and the
    # block leaves it so (tested below): here Python's own handler, as in a terminal.
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), cancel.sigint():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert cancel.requested
        with pytest.raises(Cancelled):
            cancel.wrap(None)(1)
    assert signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with cancel.sigint():  # ignored SIGINT stays ignored: no handler installed
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else before)
    storage = s3_target.storage()
    client = storage.client  # type: ignore[attr-defined]
    cancel.guard(client)
    with pytest.raises(Cancelled):
        client.put_object(Bucket=s3_target.bucket, Key="x", Body=b"x")
    client.head_bucket(Bucket=s3_target.bucket)
    client.list_objects_v2(Bucket=s3_target.bucket)
    target = tmp_path / "a.zip"
    partial = tmp_path / ".a.zip.abcd1234.dgpart"
    other = tmp_path / ".b.zip.abcd1234.dgpart"
    partial.write_bytes(b"half")
    other.write_bytes(b"not ours")
    with cancel.download(target):
        cancel.clean_up()
    assert not partial.exists() and other.exists()


def test_an_earlier_interrupted_command_does_not_end_the_next_one() -> None:
    """A process that runs commands one after another through main() (tests, embedders) is
    ended at once only for the interruption of the command it is running, not an earlier one."""
    script = (
        "from deltaglider.cli import _cancel, main\n"
        "_cancel._abandoned.set()  # as an interrupted earlier command leaves it\n"
        "code = main(['--version'])\n"
        "print('returned', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "returned 0" in done.stdout, done.stdout
