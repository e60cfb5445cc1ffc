"""Operation metrics, as the original DeltaGlider emits them, chosen by ``DG_METRICS``:

- ``logging``: one log line a metric on deltaglider's logger at INFO (shown at the default
  ``DG_LOG_LEVEL``): ``METRIC:INCREMENT deltaglider.delta.created=1 tags={...}``, ``METRIC:GAUGE
  deltaglider.delta.ratio=0.01 ...``, ``METRIC:TIMING deltaglider.get.duration=12.30ms ...``;
- ``cloudwatch``: sent to CloudWatch (``PutMetricData``, namespace ``DG_METRICS_NAMESPACE``,
  default ``DeltaGlider``) in one request at the end of the command, with the command's
  credentials and region; the endpoint is boto3's (``AWS_ENDPOINT_URL_CLOUDWATCH``, or
  ``AWS_ENDPOINT_URL``). One attempt with short timeouts; if it fails (no CloudWatch
  reachable, no permission) the command says so in one warning and its result stands;
- ``none`` (also ``noop``, and unset): nothing. The original's default was ``logging``; ours
  is ``none``, so that a command's stderr carries only what went wrong unless metrics are
  asked for. Any other value is warned about and taken as ``none`` (the original took it so,
  silently).

The names are the original's: ``deltaglider.reference.created``, ``deltaglider.delta.created``,
``deltaglider.delta.ratio``, ``deltaglider.direct.uploaded``, ``deltaglider.get.duration``,
``deltaglider.copy.duration``, ``deltaglider.delete.duration``,
``deltaglider.verify.duration``, ``deltaglider.purge.deleted_count`` and
``deltaglider.purge.size_freed``; and ``deltaglider.command.duration`` for the whole command
(tag ``command``). Timings are in milliseconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["Metrics", "metrics_from_env"]

log = logging.getLogger("deltaglider")

#: CloudWatch takes at most this many metrics in one PutMetricData.
_BATCH = 1000


class Metrics:
    """Where metrics go; this base sends them nowhere (``DG_METRICS=none``)."""

    kind = "none"

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self._emit("INCREMENT", name, value, tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._emit("GAUGE", name, value, tags)

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self._emit("TIMING", name, ms, tags)

    def _emit(self, kind: str, name: str, value: float, tags: Mapping[str, str] | None) -> None:
        pass

    def flush(self) -> None:
        """Sends what is buffered (CloudWatch); never raises."""


class LoggingMetrics(Metrics):
    kind = "logging"

    def _emit(self, kind: str, name: str, value: float, tags: Mapping[str, str] | None) -> None:
        shown = {"INCREMENT": f"{value}", "GAUGE": f"{value:.2f}", "TIMING": f"{value:.2f}ms"}
        log.info("METRIC:%s %s=%s tags=%s", kind, name, shown[kind], dict(tags or {}))


_UNITS = {"INCREMENT": "Count", "GAUGE": "None", "TIMING": "Milliseconds"}


class CloudWatchMetrics(Metrics):
    """Buffered; :meth:`flush` sends them. ``client`` makes the CloudWatch client when the
    first batch is sent (never when there is nothing to send)."""

    kind = "cloudwatch"

    def __init__(self, namespace: str, client: Callable[[], Any]) -> None:
        self.namespace = namespace
        self._client = client
        self._data: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _emit(self, kind: str, name: str, value: float, tags: Mapping[str, str] | None) -> None:
        datum: dict[str, Any] = {
            "MetricName": name,
            "Value": float(value),
            "Unit": _UNITS[kind],
            "Timestamp": datetime.now(timezone.utc),
        }
        if tags:
            datum["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in tags.items()][:30]
        with self._lock:
            self._data.append(datum)

    def flush(self) -> None:
        with self._lock:
            data, self._data = self._data, []
        if not data:
            return
        try:
            client = self._client()
            for start in range(0, len(data), _BATCH):
                client.put_metric_data(
                    Namespace=self.namespace, MetricData=data[start : start + _BATCH]
                )
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("CloudWatch metrics not sent (%d metric(s)): %s", len(data), text)


def metrics_from_env(
    client: Callable[[], Any], environ: Mapping[str, str] | None = None
) -> Metrics:
    """The metrics ``DG_METRICS`` asks for; ``client`` makes a CloudWatch client."""
    env = os.environ if environ is None else environ
    kind = env.get("DG_METRICS", "").strip().lower()
    if kind == "logging":
        return LoggingMetrics()
    if kind == "cloudwatch":
        namespace = env.get("DG_METRICS_NAMESPACE", "").strip() or "DeltaGlider"
        return CloudWatchMetrics(namespace, client)
    if kind not in ("", "none", "noop"):
        log.warning("DG_METRICS=%r is not logging, cloudwatch or none: no metrics", kind)
    return Metrics()
