"""Test helpers: the codec's large-reference path at small sizes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from deltaglider import codec
from deltaglider._codec import encode as _encode


@contextlib.contextmanager
def local_mode(**overrides: int) -> Iterator[None]:
    """The large-reference path for small references: thresholds scaled down."""
    values = {
        "LOCAL_MIN": 0,
        "LOCAL_BLOCK": 1 << 20,
        "COPY_WINDOW": 256 << 10,
        "LONG_MATCH": 4096,
        "REGION_MAX": 256 << 10,
        "REGION_MARGIN": 8192,
        "LOCAL_ANCHOR_BITS": 6,
        **overrides,
    }
    saved = {name: getattr(_encode, name) for name in values}
    saved_codec = codec.LOCAL_MIN
    try:
        for name, value in values.items():
            setattr(_encode, name, value)
        codec.LOCAL_MIN = values["LOCAL_MIN"]
        yield
    finally:
        for name, value in saved.items():
            setattr(_encode, name, value)
        codec.LOCAL_MIN = saved_codec
