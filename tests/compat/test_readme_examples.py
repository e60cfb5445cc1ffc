"""Every CLI and Python example of the original DeltaGlider's README (6.2.0, from its sdist on
PyPI) runs against this package, on SeaweedFS and on the local store.

The examples are read from the README itself, not copied here. What the tier supplies is what
a reader of the README has before running them, and nothing more:

- the files and buckets they name (``my-app-v1.0.0.zip``, ``dist/``, ``s3://releases``...),
  and the objects an example only reads (``s3://releases/file.zip`` for ``verify``);
- the environment (``AWS_ENDPOINT_URL`` and keys, or ``DG_ENDPOINT_URL=file://...`` for the
  local store; a ``production`` profile for ``--profile production``);
- the MinIO the examples name (``http://localhost:9000``, ``http://minio.internal:9000``):
  a ``sitecustomize`` in the examples' processes connects those names to the SeaweedFS of the
  test, so nothing is contacted beyond 127.0.0.1 and no example is edited.

Shell blocks run command by command (``deltaglider`` lines, continuations joined, each line's
trailing comment dropped: the README's ``--no-delta  # ...`` continuation is one command);
``pip``/``docker``/``tar`` lines are the reader's own setup. The GitHub Actions block's
``${{ github.ref_name }}`` is the tag GitHub substitutes. Python blocks run whole, unchanged,
in a process of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import originals
import pytest
from compat_conftest import ORIGINAL
from data import release
from servers import REGION, Server

from deltaglider import create_client
from deltaglider.config import Config

pytestmark = pytest.mark.slow

#: Buckets the examples use, made before they run (the reader made them: the original does not
#: make buckets either).
BUCKETS = (
    "releases", "backups", "backup", "my-bucket", "old-bucket", "new-bucket", "bucket",
    "compressed-bucket", "old", "new", "test", "your-bucket",
)  # fmt: skip
#: Buckets the SDK examples make or delete themselves (``my-old-bucket`` the reader made).
SDK_BUCKETS = ("my-old-bucket",)
TAG = "v1.0.0"  # what ${{ github.ref_name }} stands for

SITECUSTOMIZE = '''
"""The README's MinIO (localhost:9000, minio.internal:9000) is the test's SeaweedFS."""
import os
import socket

_PORT = int(os.environ["DG_README_MINIO_PORT"])
_NAMES = {("localhost", 9000), ("minio.internal", 9000)}
_real = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    if (host, int(port or 0)) in _NAMES:
        return _real("127.0.0.1", _PORT, *args, **kwargs)
    return _real(host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
'''


@dataclass
class Block:
    language: str
    text: str
    heading: str


def readme_blocks() -> list[Block]:
    text = (originals.source(ORIGINAL) / "README.md").read_text(encoding="utf-8")
    blocks, heading = [], ""
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            body = []
            for inner in lines:
                if inner.startswith("```"):
                    break
                body.append(inner)
            blocks.append(Block(fence.group(1), "\n".join(body), heading))
    return blocks


def commands(block: Block) -> list[str]:
    """The ``deltaglider`` command lines of a shell (or GitHub Actions) block."""
    out: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if raw.strip().startswith("#"):
            continue
        if pending:
            line = pending + " " + line
            pending = ""
        elif line.startswith("--") and out:
            # The Command Flags block lists a command's flags one a line, each with its
            # comment, the continuation lost after the first: they are that command's.
            out[-1] += " " + line
            continue
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        line = line.replace("${{ github.ref_name }}", TAG)
        if line.startswith("deltaglider "):
            out.append(line)
    if pending.startswith("deltaglider "):
        out.append(pending)
    return out


CLI_BLOCKS = [b for b in readme_blocks() if b.language in ("bash", "yaml") and commands(b)]
PY_BLOCKS = [b for b in readme_blocks() if b.language == "python" and "deltaglider" in b.text]


@dataclass
class Reader:
    """A reader's machine: a working folder, an environment, the store the examples reach."""

    kind: str
    workdir: Path
    env: dict[str, str]
    endpoint: str

    def run(self, args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=self.workdir, env=self.env, input=stdin, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip


def _prepare(workdir: Path) -> None:
    """The files the examples name, as the reader has them."""
    today = datetime.now().strftime("%Y%m%d")
    files = {
        "my-app-v1.0.0.zip": release(1),
        "my-app-v2.0.0.zip": release(2),
        "file.zip": release(3),
        "test.zip": release(7),
        "large-file.zip": release(4),
        f"backup-{today}.tar.gz": release(5),
        f"backup-{today}.sql.gz": release(6),
        "dist/app-1.zip": release(1),
        "dist/app-2.zip": release(2),
        "local-dir/notes.txt": b"notes\n",
        "src/main.py": b"print('hi')\n",
        "src/debug.log": b"log\n",
    }
    for n, version in enumerate(("v1.0.0", "v1.0.1", "v1.0.2", "v1.1.0"), 1):
        files[f"dist/my-app-{version}.zip"] = release(n)
    for name, data in files.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _seed(endpoint: str, key: str, secret: str) -> None:
    """The buckets and objects the examples presume."""
    with create_client(
        endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=REGION,
        deltaglider_config=Config.from_env(environ={}, cache_backend="memory"),
    ) as client:
        for name in BUCKETS + SDK_BUCKETS:
            client.create_bucket(Bucket=name)
        client.put_object(Bucket="releases", Key="file.zip", Body=release(3))
        for v in (1, 2):
            client.put_object(Bucket="old-bucket", Key=f"app/app-{v}.zip", Body=release(v))
            client.put_object(Bucket="bucket", Key=f"v1/app-{v}.zip", Body=release(v))
        client.put_object(Bucket="my-bucket", Key="rel/app-1.zip", Body=release(1))
        for bucket, prefix in (("old", "app/"), ("your-bucket", "app/"), ("bucket", "releases/")):
            for v in (1, 2):
                client.put_object(Bucket=bucket, Key=f"{prefix}app-{v}.zip", Body=release(v))
            client.put_object(Bucket=bucket, Key=f"{prefix}build.log", Body=b"log\n")


@pytest.fixture(params=["seaweedfs", "local"])
def reader(
    request: pytest.FixtureRequest, compat_server: Server, tmp_path: Path
) -> Iterator[Reader]:
    workdir = tmp_path / "reader"
    workdir.mkdir()
    _prepare(workdir)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[production]\naws_access_key_id = {compat_server.access_key}\n"
        f"aws_secret_access_key = {compat_server.secret_key}\n"
    )
    (aws / "config").write_text("[profile production]\nregion = us-west-2\n")
    env = compat_server.env(
        PATH=f"{Path(_deltaglider()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path / "home"),
        PYTHONPATH=str(site),
        DG_README_MINIO_PORT=compat_server.endpoint_url.rsplit(":", 1)[1],
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
    )
    # The server is the store of the S3 run and, in both, the MinIO the examples name: fresh
    # state for each run (the examples' bucket names are fixed).
    _clear(compat_server)
    _seed(compat_server.endpoint_url, compat_server.access_key, compat_server.secret_key)
    endpoint = compat_server.endpoint_url
    if request.param == "local":
        endpoint = (tmp_path / "store").as_uri()
        env["DG_ENDPOINT_URL"] = endpoint
        _seed(endpoint, compat_server.access_key, compat_server.secret_key)
    yield Reader(request.param, workdir, env, endpoint)
    _clear(compat_server)


def _clear(server: Server) -> None:
    with create_client(
        server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=REGION,
    ) as client:
        storage = client.storage
        for bucket in storage.list_buckets():
            keys = [o.key for o in storage.iter_objects(bucket.name)]
            if keys:
                storage.delete_many(bucket.name, keys)
            storage.delete_bucket(bucket.name)


def _deltaglider() -> str:
    found = Path(sys.executable).parent / "deltaglider"
    return str(found) if found.exists() else "deltaglider"


def test_the_readme_has_the_examples() -> None:
    """The tier reads what it should: the README's sections with examples are all here."""
    headings = {b.heading for b in CLI_BLOCKS + PY_BLOCKS}
    for heading in ("Basic Usage", "All Commands", "Command Flags", "Daily Backup Script"):
        assert heading in headings, heading
    for heading in ("Bucket Management", "Simple API (Alternative)", "Automated Database Backup"):
        assert heading in headings, heading
    assert sum(len(commands(b)) for b in CLI_BLOCKS) >= 40


def test_every_cli_example_runs(reader: Reader) -> None:
    ran, failures = 0, []
    for block in CLI_BLOCKS:
        for command in commands(block):
            args = command.split()
            interactive = "migrate" in args and "--yes" not in args and "--dry-run" not in args
            # through bash, as a reader runs them: globs (dist/*.zip) and quotes ("*.log")
            done = reader.run(["bash", "-c", command], stdin="y\n" if interactive else "")
            ran += 1
            if done.returncode != 0 or "Traceback" in done.stderr:
                failures.append(f"[{block.heading}] {command}: exit {done.returncode}\n"
                                f"{done.stdout[-800:]}{done.stderr[-1500:]}")  # fmt: skip
    assert not failures, f"{len(failures)} of {ran} failed:\n" + "\n\n".join(failures)
    # What they did, seen from the other side
    got = reader.run([_deltaglider(), "cp", "s3://releases/v1.0.0/app-1.zip", "check.zip"])
    assert got.returncode == 0 and (reader.workdir / "check.zip").read_bytes() == release(1)
    assert (reader.workdir / "downloaded.zip").read_bytes() == release(1)
    assert (reader.workdir / "local-copy" / "app-2.zip").read_bytes() == release(2)
    listing = reader.run([_deltaglider(), "ls", "s3://backups/"]).stdout
    assert f"backup-{datetime.now():%Y%m%d}.tar.gz" in listing


@pytest.mark.parametrize("block", PY_BLOCKS, ids=[b.heading for b in PY_BLOCKS])
def test_every_python_example_runs(reader: Reader, block: Block) -> None:
    script = reader.workdir / "example.py"
    script.write_text(block.text)
    done = reader.run([sys.executable, str(script)])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    if block.heading == "Real-World Examples" or "Stored as" in block.text:
        assert "Stored as reference" in done.stdout, done.stdout
