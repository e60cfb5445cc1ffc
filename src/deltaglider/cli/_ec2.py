"""Which AWS region this machine runs in (when it is an EC2 instance), so that ``migrate`` can
warn before it moves data across regions, which AWS charges for.

Detection asks the instance metadata service (IMDSv2: a session token, then the placement
region), with 1-second timeouts and every error swallowed: off EC2 it costs one failed
connection and says nothing. It is skipped entirely, without a connection, when
``DG_DISABLE_EC2_DETECTION`` is set (the test suite always sets it) or botocore's
``AWS_EC2_METADATA_DISABLED=true`` is. ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (botocore's name
too) points it at another metadata service.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "METADATA_URL",
    "bucket_region",
    "cross_region_warnings",
    "detection_disabled",
    "instance_region",
    "metadata_url",
    "region_warnings",
]

#: The instance metadata service. Tests pass a local server instead; nothing else should.
METADATA_URL = "http://169.254.169.254"

_TIMEOUT = 1.0
_TOKEN_TTL = "60"  # seconds; the token is used at once


def detection_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``DG_DISABLE_EC2_DETECTION`` is set to anything but an explicit "no", or
    ``AWS_EC2_METADATA_DISABLED`` to "true"."""
    env = os.environ if environ is None else environ
    value = env.get("DG_DISABLE_EC2_DETECTION", "")
    if value.strip().lower() not in ("", "0", "false", "no", "off"):
        return True
    return env.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true"


def metadata_url(environ: Mapping[str, str] | None = None) -> str:
    """The metadata service: ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` or the link-local one."""
    env = os.environ if environ is None else environ
    return env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip() or METADATA_URL


def instance_region(base_url: str = METADATA_URL, timeout: float = _TIMEOUT) -> str | None:
    """The region of the EC2 instance this runs on, or None (not EC2, no answer, any error)."""
    # No proxy: the metadata service is link-local, and a proxy from the environment would
    # either fail slowly or answer for another machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = base_url.rstrip("/")
    try:
        request = urllib.request.Request(
            f"{base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": _TOKEN_TTL},
        )
        with opener.open(request, timeout=timeout) as response:
            token = bytes(response.read(4096)).decode("ascii").strip()
        if not token:
            return None
        request = urllib.request.Request(
            f"{base}/latest/meta-data/placement/region",
            headers={"X-aws-ec2-metadata-token": token},
        )
        with opener.open(request, timeout=timeout) as response:
            region: str = bytes(response.read(256)).decode("ascii").strip()
    except (OSError, ValueError, urllib.error.URLError):
        return None
    # A region name is short and plain (eu-west-1); anything else is not an answer.
    if not region or len(region) > 64 or not all(c.isalnum() or c == "-" for c in region):
        return None
    return region


def bucket_region(client: Any, bucket: str) -> str | None:
    """The region a bucket lives in, from S3's ``x-amz-bucket-region`` header (also sent with
    a redirect or an access error); the client's region if the header is missing."""
    headers: Mapping[str, str] = {}
    try:
        response = client.head_bucket(Bucket=bucket)
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    except Exception as exc:  # botocore's ClientError and connection errors alike
        response = getattr(exc, "response", None) or {}
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    found = headers.get("x-amz-bucket-region")
    if found:
        return str(found)
    try:
        return str(client.meta.region_name) if client.meta.region_name else None
    except AttributeError:
        return None


def cross_region_warnings(instance: str | None, buckets: Mapping[str, str | None]) -> list[str]:
    """The lines to print for buckets outside the instance's region (none when it is not on
    EC2 or a bucket's region is unknown)."""
    if not instance:
        return []
    away = {name: region for name, region in buckets.items() if region and region != instance}
    if not away:
        return []
    where = ", ".join(f"s3://{name} is in {region}" for name, region in away.items())
    return [
        f"deltaglider: warning: this EC2 instance is in {instance}, but {where}: "
        "AWS charges for data moved across regions.",
        "deltaglider: warning: to avoid it, run this on an instance in the buckets' region.",
    ]


def region_warnings(
    buckets: Iterable[str],
    region_of: Callable[[str], str | None],
    *,
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = _TIMEOUT,
) -> list[str]:
    """Warnings about cross-region transfer between this EC2 instance and ``buckets``.

    Never raises; makes no connection at all when detection is disabled, and asks for
    buckets' regions (``region_of``) only when this is an EC2 instance.
    """
    if detection_disabled(environ):
        return []
    try:
        instance = instance_region(base_url or metadata_url(environ), timeout)
        if instance is None:
            return []
        regions: dict[str, str | None] = {}
        for name in dict.fromkeys(buckets):
            try:
                regions[name] = region_of(name)
            except Exception:
                regions[name] = None
        return cross_region_warnings(instance, regions)
    except Exception:
        return []
