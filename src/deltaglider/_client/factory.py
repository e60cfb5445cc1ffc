"""What :func:`deltaglider.client.create_client` opens: the engine's settings, the store (a
local folder for ``file://``, else S3 through a boto3 client built by
:func:`deltaglider.storage._s3_session.build_client`, the one builder the command line uses
too, or the caller's own), and the engine over it.

``create_client`` itself stays in :mod:`deltaglider.client`, beside the class it returns, so
that no module of this package imports the client's face back.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .._executor import connections_for
from ..config import Config
from ..engine import DeltaStore

__all__ = ["connect"]


def connect(
    endpoint_url: str | None,
    *,
    settings: Config | None,
    max_ratio: float | None,
    boto3_client: Any,
    cache: Any,
    **session: Any,
) -> tuple[DeltaStore, Any | None]:
    """The engine for ``create_client``'s arguments and the boto3 client under it (None over
    a local store). ``session`` goes to ``build_client`` (``profile``, ``region``, keys,
    ``verify``, ``config``) when no ``boto3_client`` is given."""
    settings = settings or Config.from_env()
    if max_ratio is not None:
        if not 0 < max_ratio <= 1:
            raise ValueError("max_ratio must be in (0, 1]")
        settings = dataclasses.replace(settings, max_ratio=max_ratio)
    if boto3_client is None and endpoint_url is None:
        endpoint_url = (
            os.environ.get("DG_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
    if boto3_client is None and endpoint_url and endpoint_url.startswith("file:"):
        from ..storage import open_storage

        return DeltaStore(open_storage(endpoint_url), cache, settings), None
    from ..storage.s3 import S3Storage

    if boto3_client is None:
        from ..storage._s3_session import build_client

        boto3_client, _ = build_client(
            endpoint_url=endpoint_url,
            max_attempts=settings.max_attempts,
            max_pool_connections=connections_for(settings.max_workers),
            **session,
        )
    pool = getattr(getattr(boto3_client, "meta", None), "config", None)
    storage = S3Storage(
        client=boto3_client,
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        # Our threads as many as the client's connections: no more threads than sockets.
        max_pool_connections=int(getattr(pool, "max_pool_connections", None) or 10),
    )
    return DeltaStore(storage, cache, settings), boto3_client
