"""Storage backends: S3 (any S3-compatible service) and a local directory."""

from __future__ import annotations

from .base import Body, BucketInfo, ListPage, ObjectInfo, Storage

__all__ = ["Body", "BucketInfo", "ListPage", "ObjectInfo", "Storage", "open_storage"]


def open_storage(endpoint_url: str | None = None, **options: object) -> Storage:
    """The store an endpoint URL names: ``file:///path`` is a local directory, anything else
    (or nothing: AWS) is S3 through boto3 with ``options`` (see :class:`~.s3.S3Storage`)."""
    if endpoint_url and endpoint_url.startswith("file:"):
        from urllib.parse import unquote, urlparse

        from .local import LocalStorage

        parsed = urlparse(endpoint_url)
        if parsed.netloc not in ("", "localhost"):
            from ..errors import ConfigError

            raise ConfigError(f"file URLs name a local path (file:///path), not {endpoint_url}")
        return LocalStorage(unquote(parsed.path))
    if endpoint_url:
        from urllib.parse import urlparse

        try:
            parsed = urlparse(endpoint_url)
            port = parsed.port  # raises ValueError when out of range
            valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and port != 0
        except ValueError:
            valid = False
        if not valid:
            from ..errors import ConfigError

            raise ConfigError(
                f"endpoint URL {endpoint_url!r} is neither http(s)://host[:port] nor file:///path"
            )
    from .s3 import S3Storage

    return S3Storage(endpoint_url=endpoint_url, **options)  # type: ignore[arg-type]
