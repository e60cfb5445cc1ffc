"""Settings from the environment, with clear errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from deltaglider.config import DEFAULT_DELTA_EXTENSIONS, Config
from deltaglider.errors import ConfigError


def test_defaults() -> None:
    config = Config.from_env({})
    assert config.max_ratio == 0.5
    assert config.delta_extensions == DEFAULT_DELTA_EXTENSIONS
    assert config.cache_backend == "filesystem" and config.cache_memory_size_mb == 100
    assert config.is_delta_candidate("a/app-1.0.ZIP")
    assert config.is_delta_candidate("x.tar.gz") and config.is_delta_candidate("w.whl")
    assert not config.is_delta_candidate("notes.txt")


def test_environment() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    config = Config.from_env(
        {
            "DG_MAX_RATIO": "0.25",
            "DG_DELTA_EXTENSIONS": "bin, .IMG",
            "DG_CACHE_BACKEND": "Memory",
            "DG_CACHE_MEMORY_SIZE_MB": "7",
            "DG_CACHE_DIR": "/tmp/x",
            "DG_CACHE_ENCRYPTION_KEY": key,
            "DG_MAX_WORKERS": "3",
            "DG_MULTIPART_THRESHOLD_MB": "32",
            "DG_MULTIPART_CHUNKSIZE_MB": "8",
            "DG_CODEC_LEVEL": "6",
            "DG_CODEC_SECONDARY": "lzma",
        }
    )
    assert config.max_ratio == 0.25
    assert config.delta_extensions == (".bin", ".img")
    assert config.cache_backend == "memory" and config.cache_memory_size_mb == 7
    assert config.cache_dir == Path("/tmp/x")
    assert config.cache_encryption_key == base64.b64decode(key)
    assert config.max_workers == 3
    assert (config.multipart_threshold, config.multipart_chunksize) == (32 << 20, 8 << 20)
    assert (config.codec_level, config.codec_secondary) == (6, "lzma")
    assert Config.from_env({"DG_MAX_RATIO": "0.25"}, max_ratio=0.75).max_ratio == 0.75


@pytest.mark.parametrize(
    "env,message",
    [
        ({"DG_MAX_RATIO": "half"}, "DG_MAX_RATIO"),
        ({"DG_MAX_RATIO": "1.5"}, "max ratio"),
        ({"DG_CACHE_BACKEND": "redis"}, "cache backend"),
        ({"DG_CACHE_ENCRYPTION_KEY": "not base64!"}, "base64"),
        ({"DG_CACHE_ENCRYPTION_KEY": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"DG_MULTIPART_CHUNKSIZE_MB": "1"}, "5 MiB"),
        ({"DG_CODEC_LEVEL": "12"}, "level"),
        ({"DG_MAX_WORKERS": "0"}, "max_workers"),
    ],
)
def test_bad_settings_are_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown"):
        Config.from_env({}, frobnicate=1)
