"""deltaglider: versioned artifacts in S3-compatible storage as binary deltas, byte-exact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = ["DeltaGliderClient", "__version__", "create_client"]

if TYPE_CHECKING:
    from .client import DeltaGliderClient, create_client


def __getattr__(name: str) -> Any:
    # The client pulls in boto3: imported when asked for, not by ``import deltaglider``.
    if name in ("create_client", "DeltaGliderClient"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'deltaglider' has no attribute {name!r}")
