"""The client's bucket operations, ACLs, presigned URLs and the cleanup of their temporary
copies."""

from __future__ import annotations

__all__ = ["BucketMixin"]


class BucketMixin:
    """Mixed into :class:`~deltaglider.client.DeltaGliderClient`."""
