"""deltaglider: versioned artifacts in S3-compatible storage as binary deltas, byte-exact."""

from __future__ import annotations

__version__ = "7.0.0.dev0"

__all__ = ["__version__"]
