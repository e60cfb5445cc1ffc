"""``DG_METRICS`` as the original DeltaGlider reads it: ``logging`` (METRIC lines on
deltaglider's log at INFO), ``none`` (nothing), ``cloudwatch`` (sent to CloudWatch: moto here;
and one warning, no failure, when none is reachable). Nothing but 127.0.0.1 is ever contacted:
a guard refuses any other address during these tests."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_conftest import Dg, Target, ok, write
from servers import REGION, Server, free_ports
from test_cp import release


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection to an address other than 127.0.0.1 fails the test."""
    real = socket.socket.connect
    tried: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
        ):
            tried.append(address)
            raise OSError(f"test guard: {address} is not 127.0.0.1")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert tried == [], tried


def _two_releases(dg: Dg, target: Target, workdir: Path, env: dict[str, str]) -> Any:
    write(workdir / "r/app-1.zip", release(1))
    write(workdir / "r/app-2.zip", release(2))
    ok(dg("cp", "r/app-1.zip", target.url("m/"), env=env))
    return dg("cp", "r/app-2.zip", target.url("m/"), env=env)


@pytest.mark.slow
def test_logging_and_none(dg: Dg, target: Target, workdir: Path) -> None:
    # DG_LOG_LEVEL unset: INFO, the original's default, at which the metrics are logged.
    env = {"DG_METRICS": "logging", "DG_LOG_LEVEL": ""}
    second = ok(_two_releases(dg, target, workdir, env))
    lines = second.stderr.splitlines()
    assert "deltaglider: INFO: METRIC:INCREMENT deltaglider.delta.created=1 tags=" in lines[0]
    assert any(line.startswith("deltaglider: INFO: METRIC:GAUGE deltaglider.delta.ratio=0.0")
               for line in lines)  # fmt: skip
    assert any("METRIC:TIMING deltaglider.command.duration=" in line and "'command': 'cp'" in line
               for line in lines)  # fmt: skip
    assert second.stdout.startswith("upload: ")  # stdout untouched
    first_ref = ok(dg("cp", "r/app-1.zip", target.url("n/"), env=env)).stderr
    assert "METRIC:INCREMENT deltaglider.reference.created=1" in first_ref
    down = ok(dg("cp", target.url("m/app-2.zip"), "back.zip", env=env)).stderr
    assert "METRIC:TIMING deltaglider.get.duration=" in down
    verify = ok(dg("verify", target.url("m/app-2.zip"), "--json", env=env)).stderr
    assert "METRIC:TIMING deltaglider.verify.duration=" in verify
    rm = ok(dg("rm", "-r", target.url("n/"), env=env)).stderr
    assert "METRIC:TIMING deltaglider.delete.duration=" in rm
    # Logged at INFO: a higher DG_LOG_LEVEL hides them.
    quiet = ok(dg("cp", "r/app-1.zip", target.url("o/"), env={**env, "DG_LOG_LEVEL": "WARNING"}))
    assert "METRIC" not in quiet.stderr
    # none, noop and unset: nothing, even at INFO.
    for value in ("none", "noop", "NONE", ""):
        out = ok(
            dg(
                "cp",
                "r/app-2.zip",
                target.url("m/"),
                env={"DG_METRICS": value, "DG_LOG_LEVEL": "INFO"},
            )
        )
        assert out.stderr == "", value
    # Anything else: a warning, and no metrics (the original took it as none, silently).
    odd = ok(
        dg(
            "cp",
            "r/app-2.zip",
            target.url("m/"),
            env={"DG_METRICS": "statsd", "DG_LOG_LEVEL": "INFO"},
        )
    )
    assert odd.stderr == (
        "deltaglider: WARNING: DG_METRICS='statsd' is not logging, cloudwatch or none: no metrics\n"
    )


def _cloudwatch_env(endpoint: str, namespace: str) -> dict[str, str]:
    return {
        "DG_METRICS": "cloudwatch",
        "DG_METRICS_NAMESPACE": namespace,
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint,
        "DG_LOG_LEVEL": "INFO",
    }


def test_cloudwatch(s3_target: Target, moto_server: Server, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    namespace = f"DGTest{os.getpid()}{time.monotonic_ns()}"
    env = _cloudwatch_env(moto_server.endpoint_url, namespace)
    second = ok(_two_releases(dg, s3_target, workdir, env))
    assert second.stderr == ""  # sent, nothing to say
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=moto_server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=moto_server.access_key,
        aws_secret_access_key=moto_server.secret_key,
    )
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]}
    assert {
        "deltaglider.reference.created",
        "deltaglider.delta.created",
        "deltaglider.delta.ratio",
        "deltaglider.command.duration",
    } <= names


@pytest.mark.slow
def test_cloudwatch_unreachable_does_not_fail_the_command(s3_target: Target, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    (closed,) = free_ports(1)  # nothing listens there
    env = _cloudwatch_env(f"http://127.0.0.1:{closed}", "DGTest")
    started = time.monotonic()
    out = _two_releases(dg, s3_target, workdir, env)
    assert out.exit_code == 0
    assert out.stdout.startswith("upload: r/app-2.zip to ")
    (warning,) = out.stderr.splitlines()
    assert warning.startswith("deltaglider: WARNING: CloudWatch metrics not sent (")
    assert time.monotonic() - started < 20
    assert s3_target.read("m/app-2.zip") == release(2)
