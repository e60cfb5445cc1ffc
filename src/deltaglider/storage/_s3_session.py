"""The one place a boto3 session and S3 client are built, for the storage (``S3Storage``, the
command line) and the SDK (``create_client``) alike, so that the same profile behaves the same
everywhere.

- Credentials and region come from one boto3 Session: of ``profile`` when given (never mixed
  with keys from elsewhere), else of explicit keys, else boto3's usual chain.
- A named profile's region wins over ``AWS_DEFAULT_REGION`` (boto3 lets the environment
  override it, so a profile's credentials would be used in another region than it names); the
  environment's only fills in for a profile that names none; us-east-1 when nothing does.
- Retries in botocore's adaptive mode; connect and read timeouts; TCP keepalive; a connection
  pool sized by the caller (:func:`deltaglider._executor.connections_for`); path-style
  addressing with an endpoint URL; checksums only where S3 requires them, so S3-compatible
  stores that do not implement the newer checksum headers work.
- A caller's own ``botocore.config.Config`` is merged over these.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from ..errors import ConfigError

__all__ = ["build_client"]

#: Seconds, as the AWS CLI's defaults: 0 or None waits forever.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


def build_client(
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    verify: bool | str | None = True,
    max_attempts: int = 8,
    max_pool_connections: int = 32,
    addressing_style: str | None = None,
    connect_timeout: float | None = CONNECT_TIMEOUT,
    read_timeout: float | None = READ_TIMEOUT,
    config: Any = None,
) -> tuple[Any, Any]:
    """A boto3 S3 client and the session it came from (see the module's notes)."""
    if profile and (aws_access_key_id or aws_secret_access_key):
        raise ConfigError("give either a profile or access keys, not both")
    try:
        session = boto3.Session(
            profile_name=profile or None,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(str(exc)) from None
    style = addressing_style or ("path" if endpoint_url else "auto")
    if style not in ("path", "virtual", "auto"):
        raise ConfigError(f"addressing style must be path, virtual or auto, not {style!r}")
    if not region and profile:
        region = session._session.get_scoped_config().get("region")
    ours = BotoConfig(
        region_name=region or session.region_name or "us-east-1",
        retries={"max_attempts": max_attempts, "mode": "adaptive"},
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )
    merged = ours.merge(config) if config is not None else ours
    client = session.client("s3", endpoint_url=endpoint_url, config=merged, verify=verify)
    return client, session
