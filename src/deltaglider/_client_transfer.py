"""The client's file transfers (upload_file, download_file, upload_fileobj,
download_fileobj), the simple API (upload, download, verify), batches and bucket stats."""

from __future__ import annotations

__all__ = ["TransferMixin"]


class TransferMixin:
    """Mixed into :class:`~deltaglider.client.DeltaGliderClient`."""
