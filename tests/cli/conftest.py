"""Fixtures for the CLI: a store to point it at (SeaweedFS or the local directory store), and
two ways to run it: in-process through click's CliRunner (exceptions that are bugs come
through to the test), and the installed ``deltaglider`` executable.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from data import get_bytes
from servers import REGION, Server

from deltaglider.cache import MemoryCache
from deltaglider.cli import cli
from deltaglider.config import Config
from deltaglider.engine import DeltaStore, ObjectSummary
from deltaglider.storage.base import Storage
from deltaglider.storage.local import LocalStorage
from deltaglider.storage.s3 import S3Storage

_names = itertools.count()


@dataclass
class Target:
    """Where the CLI stores: an endpoint, the environment that reaches it, a fresh bucket."""

    kind: str
    endpoint_url: str
    env: dict[str, str]
    bucket: str
    server: Server | None = None
    root: Path | None = None
    _storage: Storage | None = field(default=None, repr=False)
    _engine: DeltaStore | None = field(default=None, repr=False)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def storage(self) -> Storage:
        """Direct access to the store, to look at what the CLI did."""
        if self._storage is None:
            if self.server is not None:
                self._storage = S3Storage(
                    endpoint_url=self.server.endpoint_url,
                    aws_access_key_id=self.server.access_key,
                    aws_secret_access_key=self.server.secret_key,
                    region=REGION,
                )
            else:
                assert self.root is not None
                self._storage = LocalStorage(self.root)
        return self._storage

    def physical_keys(self, prefix: str = "") -> list[str]:
        return sorted(o.key for o in self.storage().iter_objects(self.bucket, prefix=prefix))

    def engine(self) -> DeltaStore:
        """An engine over the same store, to read what the CLI wrote the way users read it."""
        if self._engine is None:
            self._engine = DeltaStore(
                self.storage(),
                MemoryCache(64 << 20),
                Config.from_env(environ={}, cache_backend="memory"),
            )
        return self._engine

    def logical_keys(self, prefix: str = "") -> list[str]:
        return [o.key for o in self.engine().iter_objects(self.bucket, prefix=prefix)]

    def head(self, key: str) -> ObjectSummary:
        return self.engine().head(self.bucket, key)

    def read(self, key: str) -> bytes:
        return get_bytes(self.engine(), self.bucket, key)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()  # closes the storage too
        elif self._storage is not None:
            self._storage.close()
        self._engine = None
        self._storage = None


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DG_CACHE_BACKEND": "memory",
        "DG_DISABLE_EC2_DETECTION": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "DG_LOG_LEVEL": "WARNING",
    }


def make_target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Target:
    bucket = f"dg-cli-{os.getpid()}-{next(_names)}"
    env = base_env(tmp_path)
    if kind == "local":
        root = tmp_path / "store"
        env["DG_ENDPOINT_URL"] = root.as_uri()
        target = Target(kind, root.as_uri(), env, bucket, root=root)
    else:
        server: Server = request.getfixturevalue(kind)
        env.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_DEFAULT_REGION=REGION,
            DG_ENDPOINT_URL=server.endpoint_url,
        )
        target = Target(kind, server.endpoint_url, env, bucket, server=server)
    target.storage().create_bucket(bucket)
    return target


def remove_bucket(storage: Storage, bucket: str) -> None:
    """Deletes a bucket and everything in it."""
    keys = [o.key for o in storage.iter_objects(bucket)]
    if keys:
        storage.delete_many(bucket, keys)
    storage.delete_bucket(bucket)


def drop_target(target: Target) -> None:
    try:
        remove_bucket(target.storage(), target.bucket)
    except Exception:
        pass
    target.close()


@pytest.fixture
def other_bucket(target: Target) -> Iterator[str]:
    """A second bucket on the target's store."""
    storage = target.storage()
    name = f"{target.bucket}-dst"
    storage.create_bucket(name)
    yield name
    remove_bucket(storage, name)


@pytest.fixture(params=["seaweedfs", "local"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    t = make_target(str(request.param), tmp_path, request)
    yield t
    drop_target(t)


@pytest.fixture
def s3_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """SeaweedFS only (for what only a real S3 server can show)."""
    t = make_target("seaweedfs", tmp_path, request)
    yield t
    drop_target(t)


class Dg:
    """Runs ``deltaglider`` with the target's environment in a work folder."""

    def __init__(self, target: Target, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir

    def __call__(
        self, *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """In-process (CliRunner); bugs raise out of it, user errors give exit codes."""
        runner = CliRunner()
        old = Path.cwd()
        os.chdir(self.workdir)
        try:
            return runner.invoke(
                cli,
                list(args),
                input=input,
                env={**self.target.env, **(env or {})},
                catch_exceptions=False,
            )
        finally:
            os.chdir(old)

    def exe(
        self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """The installed executable, in a process of its own."""
        full_env = {**os.environ, **self.target.env, **(env or {})}
        full_env.pop("AWS_PROFILE", None)
        return subprocess.run(
            [executable(), *args],
            cwd=self.workdir,
            env=full_env,
            input=input,
            capture_output=True,
            timeout=300,
        )


def executable() -> str:
    found = Path(sys.executable).parent / "deltaglider"
    if found.exists():
        return str(found)
    which = shutil.which("deltaglider")
    assert which, "the deltaglider executable is not installed"
    return which


@pytest.fixture
def proxy(s3_target: Target) -> Iterator[Any]:
    """A FaultProxy (tests/reliability/faultproxy.py) in front of the S3 target's server:
    what the command sends, on the wire, and faults to inject."""
    reliability = str(Path(__file__).resolve().parents[1] / "reliability")
    if reliability not in sys.path:
        sys.path.insert(0, reliability)
    from faultproxy import FaultProxy

    assert s3_target.server is not None
    p = FaultProxy(s3_target.server.endpoint_url)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def dg(target: Target, workdir: Path) -> Dg:
    return Dg(target, workdir)


def ok(result: Result) -> Result:
    """Asserts a run succeeded, showing its output if not."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def any_args(*args: Any) -> list[str]:
    return [str(a) for a in args]


# Tests import this folder's helpers as ``cli_conftest``: every folder has a ``conftest``, and when
# pytest is given files from several folders it imports all the conftests before any test, so
# the name ``conftest`` would be the last folder's.
sys.modules.setdefault("cli_conftest", sys.modules[__name__])
