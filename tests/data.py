"""Deterministic test artifacts: consecutive releases of a zip-packaged project."""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any


def release(
    version: int, *, files: int = 40, seed: int = 7, changed: int = 3, size: int = 3000
) -> bytes:
    """A zip of ``files`` modules; each version changes ``changed`` of them and adds one."""
    rng = random.Random(seed)
    base = {
        f"pkg/mod{i:03d}.py": b"\n".join(
            b"def f%d_%d(x):\n    return x * %d + %d" % (i, j, rng.randint(0, 99), j)
            for j in range(size // 40)
        )
        for i in range(files)
    }
    for v in range(1, version + 1):
        vr = random.Random(seed * 1000 + v)
        for i in vr.sample(range(files), changed):
            base[f"pkg/mod{i:03d}.py"] += b"\n# change %d in version %d" % (vr.random() * 1e9, v)
        base[f"pkg/new_in_{v}.py"] = vr.randbytes(500).hex().encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(base):
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), base[name])
    return buf.getvalue()


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def get_bytes(
    store: Any, bucket: str, key: str, *, start: int = 0, end: int | None = None
) -> bytes:
    """An object's bytes, verified: the engine's ``get`` into memory."""
    out = io.BytesIO()
    store.get(bucket, key, out, start=start, end=end)
    return out.getvalue()
