"""The cache key: a key file per user (as SSH keeps its keys), DG_CACHE_ENCRYPTION_KEY over it,
and an ephemeral key per process on request."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deltaglider.cache import KEY_FILE, FilesystemCache, cache_key, open_cache
from deltaglider.config import Config
from deltaglider.errors import ConfigError


def config(tmp_path: Path, **env: str) -> Config:
    return Config.from_env({"DG_CACHE_DIR": str(tmp_path), **env})


def opened(tmp_path: Path, **env: str) -> FilesystemCache:
    cache = open_cache(config(tmp_path, **env))
    assert isinstance(cache, FilesystemCache)
    return cache


def test_the_key_file_is_made_once_owner_only(tmp_path: Path) -> None:
    first = opened(tmp_path)
    key_file = tmp_path / KEY_FILE
    st = key_file.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    key = base64.b64decode(key_file.read_bytes().strip(), validate=True)
    assert len(key) == 32
    # Entries go in the key's own folder, and a second cache (another command) reads them.
    data = os.urandom(1000)
    digest = hashlib.sha256(data).hexdigest()
    first.put(digest, data)
    second = opened(tmp_path)
    assert second.directory == first.directory and second.get(digest) == data
    assert key_file.read_bytes().strip() == base64.b64encode(key)
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE, first.directory.name]


_WORKER = """
import sys, time
from pathlib import Path
from deltaglider.cache import cache_key
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
print(cache_key(Path(sys.argv[1])).hex())
"""


def test_processes_starting_together_end_with_one_key(tmp_path: Path) -> None:
    """The first use by several processes at once: one key file, every process uses it."""
    for attempt in range(3):
        root, go = tmp_path / f"cache-{attempt}", tmp_path / f"go-{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(root), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        go.touch()
        keys = set()
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            keys.add(out.strip())
        assert len(keys) == 1
        assert base64.b64decode((root / KEY_FILE).read_bytes()).hex() in keys
        assert sorted(p.name for p in root.iterdir()) == [KEY_FILE]  # no temporary left


def test_a_second_process_reads_what_the_first_cached(tmp_path: Path) -> None:
    data = os.urandom(5000)
    digest = hashlib.sha256(data).hexdigest()
    code = (
        "import sys; from pathlib import Path; from deltaglider.cache import open_cache; "
        "from deltaglider.config import Config; "
        f"c = open_cache(Config.from_env({{'DG_CACHE_DIR': {str(tmp_path)!r}}})); "
        f"c.put({digest!r}, Path(sys.argv[1]).read_bytes())"
    )
    source = tmp_path / "data"
    source.write_bytes(data)
    subprocess.run([sys.executable, "-c", code, str(source)], check=True, timeout=60)
    assert opened(tmp_path).get(digest) == data


def test_the_environment_key_overrides_the_key_file(tmp_path: Path) -> None:
    env_key = os.urandom(32)
    cache = opened(tmp_path, DG_CACHE_ENCRYPTION_KEY=base64.b64encode(env_key).decode())
    assert not (tmp_path / KEY_FILE).exists()  # not even made
    assert cache.directory == FilesystemCache(tmp_path, 1 << 20, env_key).directory
    data = os.urandom(100)
    digest = hashlib.sha256(data).hexdigest()
    cache.put(digest, data)
    assert opened(tmp_path).get(digest) is None  # the key file's key is another key


def test_ephemeral_mode(tmp_path: Path) -> None:
    cache = opened(tmp_path, DG_CACHE_EPHEMERAL="1")
    assert cache.directory.name.startswith(f"process-{os.getpid()}-")
    assert not (tmp_path / KEY_FILE).exists()
    data = os.urandom(100)
    digest = hashlib.sha256(data).hexdigest()
    cache.put(digest, data)
    assert cache.get(digest) == data
    assert opened(tmp_path, DG_CACHE_EPHEMERAL="yes").get(digest) is None  # its own key
    cache.close()
    assert not cache.directory.exists()
    assert opened(tmp_path, DG_CACHE_EPHEMERAL="0").directory.name.startswith("shared-")
    zero_key = base64.b64encode(bytes(32)).decode()
    for bad, says in (
        ({"DG_CACHE_EPHEMERAL": "maybe"}, "DG_CACHE_EPHEMERAL='maybe'"),
        ({"DG_CACHE_EPHEMERAL": "1", "DG_CACHE_ENCRYPTION_KEY": zero_key}, "set one of them"),
    ):
        with pytest.raises(ConfigError, match=says):
            Config.from_env(bad)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o700])
def test_a_key_file_others_can_reach_is_refused(tmp_path: Path, mode: int) -> None:
    opened(tmp_path)
    key_file = tmp_path / KEY_FILE
    content = key_file.read_bytes()
    key_file.chmod(mode)
    if mode == 0o700:  # executable by the owner: still the owner's alone
        opened(tmp_path)
        return
    with pytest.raises(ConfigError, match=f"chmod 600 {key_file}") as info:
        opened(tmp_path)
    assert f"mode {mode:04o}" in str(info.value) and "\n" not in str(info.value)
    assert key_file.read_bytes() == content  # nothing removed or rewritten
    key_file.chmod(0o600)
    opened(tmp_path)


def test_key_files_that_cannot_be_used(tmp_path: Path) -> None:
    key_file = tmp_path / KEY_FILE
    tmp_path.mkdir(exist_ok=True)
    cases = {
        "not a key": lambda: key_file.write_bytes(b"hello\n"),
        "a key of 16 bytes": lambda: key_file.write_bytes(base64.b64encode(bytes(16))),
    }
    for what, make in cases.items():
        make()
        key_file.chmod(0o600)
        with pytest.raises(ConfigError, match="is not a deltaglider cache key"):
            cache_key(tmp_path)
        assert key_file.exists(), what
        key_file.unlink()
    # A symbolic link (to a key that is fine) is refused: a link may point anywhere.
    real = tmp_path / "elsewhere"
    real.write_bytes(base64.b64encode(os.urandom(32)))
    real.chmod(0o600)
    key_file.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        cache_key(tmp_path)
    key_file.unlink()
    key_file.mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        cache_key(tmp_path)


def test_a_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    opened(tmp_path)
    key_file = tmp_path / KEY_FILE
    with pytest.raises(ConfigError, match="belongs to another user"):
        cache_key(tmp_path, owner=os.geteuid() + 1)  # as that user would see it
    assert key_file.exists()
    if os.geteuid() == 0:  # root can give the file away for real
        os.chown(key_file, 65534, 65534)
        with pytest.raises(ConfigError, match="belongs to another user"):
            opened(tmp_path)
        assert key_file.exists()
