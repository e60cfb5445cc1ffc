"""The reference cache works across commands by default: the first ``deltaglider cp`` into a
folder keeps its reference in the encrypted filesystem cache under the user's key file, and
the next command (another process) makes no GET of the reference, counted on the wire.
``DG_CACHE_EPHEMERAL=1`` gives the old per-process cache back (and then it GETs it)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from cli_conftest import Target, executable, write
from test_cp import release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from faultproxy import FaultProxy


def _run(
    target: Target, proxy: FaultProxy, workdir: Path, cache: Path, *args: str, **env: str
) -> list[tuple[str, str]]:
    """Runs the installed ``deltaglider`` in a process of its own with the default cache
    settings (no key given) and returns the requests it sent, (method, last path part)."""
    full = {**os.environ, **target.env, **env}
    for name in ("AWS_PROFILE", "DG_CACHE_ENCRYPTION_KEY", "DG_CACHE_EPHEMERAL"):
        full.pop(name, None)
    full.update(env)
    full.update(
        DG_CACHE_BACKEND="filesystem", DG_CACHE_DIR=str(cache), DG_ENDPOINT_URL=proxy.endpoint_url
    )
    proxy.clear()
    proc = subprocess.run(
        [executable(), *args], cwd=workdir, env=full, capture_output=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return [(r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.records]


def test_second_upload_makes_no_get_of_the_reference(
    s3_target: Target, proxy: FaultProxy, workdir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for v in (1, 2, 3, 4):
        write(workdir / f"app-{v}.zip", release(v))
    first = _run(s3_target, proxy, workdir, cache, "cp", "app-1.zip", s3_target.url("rel/"))
    assert ("PUT", "reference.bin") in first
    key_file = cache / "key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    (entry,) = cache.rglob("*.ref")  # the reference, encrypted, in the key's folder
    assert release(1)[:64] not in entry.read_bytes()

    second = _run(s3_target, proxy, workdir, cache, "cp", "app-2.zip", s3_target.url("rel/"))
    assert ("PUT", "app-2.zip.delta") in second, second
    assert ("GET", "reference.bin") not in second, second
    assert not [r for r in second if r[0] == "GET"], second
    # A download in a third process needs the reference too: not fetched either.
    third = _run(s3_target, proxy, workdir, cache, "cp", s3_target.url("rel/app-2.zip"), "back.zip")
    assert (workdir / "back.zip").read_bytes() == release(2)
    assert ("GET", "reference.bin") not in third, third
    assert key_file.read_bytes() == key  # one key, never rewritten

    # The per-process cache on request: a new process fetches the reference again, and
    # leaves neither a key file nor entries behind.
    other = tmp_path / "ephemeral"
    ephemeral = _run(
        s3_target,
        proxy,
        workdir,
        other,
        "cp",
        "app-3.zip",
        s3_target.url("rel/"),
        DG_CACHE_EPHEMERAL="1",
    )
    assert ("PUT", "app-3.zip.delta") in ephemeral
    assert ("GET", "reference.bin") in ephemeral, ephemeral
    assert not (other / "key").exists() and not list(other.rglob("*.ref"))
    # The default cache is still warm for the next command.
    fourth = _run(s3_target, proxy, workdir, cache, "cp", "app-4.zip", s3_target.url("rel/"))
    assert ("PUT", "app-4.zip.delta") in fourth and ("GET", "reference.bin") not in fourth


def test_an_unsafe_key_file_is_one_usage_error(
    s3_target: Target, proxy: FaultProxy, workdir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    write(workdir / "app-1.zip", release(1))
    _run(s3_target, proxy, workdir, cache, "cp", "app-1.zip", s3_target.url("rel/"))
    key_file = cache / "key"
    key = key_file.read_bytes()
    key_file.chmod(0o644)
    full = {
        **os.environ,
        **s3_target.env,
        "DG_CACHE_BACKEND": "filesystem",
        "DG_CACHE_DIR": str(cache),
    }
    full.pop("DG_CACHE_ENCRYPTION_KEY", None)
    proc = subprocess.run(
        [executable(), "cp", "app-1.zip", s3_target.url("rel/app-9.zip")],
        cwd=workdir,
        env=full,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.decode().strip().splitlines()
    assert line.startswith("deltaglider: error: the cache key ") and "chmod 600" in line, line
    assert key_file.read_bytes() == key
    assert "rel/app-9.zip.delta" not in s3_target.physical_keys("rel/")
