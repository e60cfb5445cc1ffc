"""One configuration object for the engine, from the environment and explicit overrides.

Every setting has an environment variable (``DG_*``); :meth:`Config.from_env` reads them,
validates them (a bad value is a :class:`~deltaglider.errors.ConfigError` naming the variable)
and lets callers override any field.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .errors import ConfigError

__all__ = ["DEFAULT_DELTA_EXTENSIONS", "Config"]

#: Suffixes (case-insensitive) stored as deltas by default: the original DeltaGlider's list plus
#: other versioned-artifact formats (wheels, NuGet, Android archives, disk images).
DEFAULT_DELTA_EXTENSIONS: Final = (
    ".tar.gz", ".tar.bz2", ".tar.xz", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z",
    ".rar", ".dmg", ".iso", ".pkg", ".deb", ".rpm", ".apk", ".jar", ".war", ".ear",
    ".whl", ".nupkg", ".aar", ".img", ".qcow2",
)  # fmt: skip


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deltaglider"


@dataclass(frozen=True)
class Config:
    """Engine settings. Build with :meth:`from_env`; fields are documented in the README."""

    #: Store a delta only when delta_size / file_size is at most this (DG_MAX_RATIO).
    max_ratio: float = 0.5
    #: Suffixes stored as deltas (DG_DELTA_EXTENSIONS, comma-separated).
    delta_extensions: tuple[str, ...] = DEFAULT_DELTA_EXTENSIONS
    #: ``filesystem`` or ``memory`` (DG_CACHE_BACKEND).
    cache_backend: str = "filesystem"
    #: Where the filesystem cache lives (DG_CACHE_DIR).
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: Size cap of the memory cache in MiB (DG_CACHE_MEMORY_SIZE_MB).
    cache_memory_size_mb: int = 100
    #: Size cap of the filesystem cache in MiB, least recently used evicted (DG_CACHE_MAX_SIZE_MB):
    #: room for a 10 GB reference and then some (a reference over the cap is fetched each time).
    cache_max_size_mb: int = 16384
    #: Cache encryption key, 32 bytes base64 (DG_CACHE_ENCRYPTION_KEY); None: the user's key
    #: file in ``cache_dir`` (created once, 0600; see ``deltaglider.cache``).
    cache_encryption_key: bytes | None = field(default=None, repr=False)
    #: A random cache key and a private cache folder per process, removed when it exits
    #: (DG_CACHE_EPHEMERAL=1): nothing is reused across commands.
    cache_ephemeral: bool = False
    #: Parallel transfers for multi-file work (DG_MAX_WORKERS).
    max_workers: int = 8
    #: Objects at least this large go up in parts (DG_MULTIPART_THRESHOLD_MB).
    multipart_threshold: int = 16 << 20
    #: Part size of multipart uploads and ranged downloads (DG_MULTIPART_CHUNKSIZE_MB).
    multipart_chunksize: int = 8 << 20
    #: Codec level and secondary compression (DG_CODEC_LEVEL, DG_CODEC_SECONDARY): ``auto`` is
    #: DJW against references under 64 MiB and LZMA against larger ones (see the codec).
    codec_level: int = 3
    codec_secondary: str = "auto"
    #: Attempts per storage request, with backoff on throttling and 5xx (DG_MAX_ATTEMPTS).
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.max_ratio <= 1.0:
            raise ConfigError(f"max ratio must be in (0, 1], not {self.max_ratio}")
        if self.cache_backend not in ("filesystem", "memory"):
            raise ConfigError(
                f"cache backend must be 'filesystem' or 'memory', not {self.cache_backend!r}"
            )
        for name in ("cache_memory_size_mb", "cache_max_size_mb", "max_workers", "max_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.multipart_chunksize < 5 << 20:
            raise ConfigError("multipart chunk size must be at least 5 MiB (an S3 minimum)")
        if self.multipart_threshold < self.multipart_chunksize:
            raise ConfigError("multipart threshold must be at least the chunk size")
        if not 1 <= self.codec_level <= 9:
            raise ConfigError("codec level must be from 1 to 9")
        if self.codec_secondary not in ("auto", "none", "djw", "lzma"):
            raise ConfigError("codec secondary must be 'auto', 'none', 'djw' or 'lzma'")
        if self.cache_encryption_key is not None and len(self.cache_encryption_key) != 32:
            raise ConfigError("the cache encryption key must be 32 bytes (44 characters base64)")
        if self.cache_ephemeral and self.cache_encryption_key is not None:
            raise ConfigError(
                "DG_CACHE_EPHEMERAL and DG_CACHE_ENCRYPTION_KEY ask for different cache keys: "
                "set one of them"
            )
        exts = tuple(
            e.lower() if e.startswith(".") else "." + e.lower() for e in self.delta_extensions if e
        )
        object.__setattr__(self, "delta_extensions", exts)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Settings from ``environ`` (default: the process environment), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        def number(var: str, kind: type, scale: int = 1) -> Any:
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                return None
            try:
                return kind(raw) * scale
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from None

        for name, var, kind, scale in (
            ("max_ratio", "DG_MAX_RATIO", float, 1),
            ("cache_memory_size_mb", "DG_CACHE_MEMORY_SIZE_MB", int, 1),
            ("cache_max_size_mb", "DG_CACHE_MAX_SIZE_MB", int, 1),
            ("max_workers", "DG_MAX_WORKERS", int, 1),
            ("multipart_threshold", "DG_MULTIPART_THRESHOLD_MB", int, 1 << 20),
            ("multipart_chunksize", "DG_MULTIPART_CHUNKSIZE_MB", int, 1 << 20),
            ("codec_level", "DG_CODEC_LEVEL", int, 1),
            ("max_attempts", "DG_MAX_ATTEMPTS", int, 1),
        ):
            value = number(var, kind, scale)
            if value is not None:
                values[name] = value
        if env.get("DG_DELTA_EXTENSIONS"):
            values["delta_extensions"] = tuple(
                e.strip() for e in env["DG_DELTA_EXTENSIONS"].split(",") if e.strip()
            )
        if env.get("DG_CACHE_BACKEND"):
            values["cache_backend"] = env["DG_CACHE_BACKEND"].strip().lower()
        if env.get("DG_CACHE_DIR"):
            values["cache_dir"] = Path(env["DG_CACHE_DIR"]).expanduser()
        if env.get("DG_CODEC_SECONDARY"):
            values["codec_secondary"] = env["DG_CODEC_SECONDARY"].strip().lower()
        if env.get("DG_CACHE_ENCRYPTION_KEY"):
            values["cache_encryption_key"] = decode_key(env["DG_CACHE_ENCRYPTION_KEY"])
        if env.get("DG_CACHE_EPHEMERAL", "").strip():
            values["cache_ephemeral"] = _flag("DG_CACHE_EPHEMERAL", env["DG_CACHE_EPHEMERAL"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def is_delta_candidate(self, key: str) -> bool:
        """Whether a file of this name is stored as a delta (by its suffix)."""
        lower = key.lower()
        return any(lower.endswith(ext) for ext in self.delta_extensions)


def _flag(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var}={raw!r} is not a yes/no value (1, true, yes, on; 0, false, no, off)")


def decode_key(text: str) -> bytes:
    """The 32-byte key in a DG_CACHE_ENCRYPTION_KEY value (standard or URL-safe base64)."""
    import base64
    import binascii

    raw = text.strip()
    try:
        key = base64.b64decode(
            raw + "=" * (-len(raw) % 4),
            altchars=b"-_" if any(c in raw for c in "-_") else None,
            validate=True,
        )
    except (binascii.Error, ValueError):
        raise ConfigError("DG_CACHE_ENCRYPTION_KEY is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(
            f"DG_CACHE_ENCRYPTION_KEY must decode to 32 bytes, not {len(key)} "
            '(make one with: python -c "import os, base64; '
            'print(base64.b64encode(os.urandom(32)).decode())")'
        )
    return key
