"""The same scripted session of ``aws s3`` commands, run by the AWS CLI against one bucket and
by ``deltaglider`` against another (same SeaweedFS), from two identical working folders: after
every step the keys in the buckets (deltaglider's logical keys), the local files and their
bytes, and the exit codes must be the same.

Covers the destination rules (trailing slashes, renames, existing folders), recursive
copies in all directions, include/exclude order, sync both ways with --delete, and rm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_conftest import Target, executable, remove_bucket
from data import get_bytes
from originals import awscli
from test_cp import release

# Slow (a scripted session against the AWS CLI: a minute): CI runs it, -m "not slow" does not.
pytestmark = pytest.mark.slow

T0 = 1_700_000_000  # fixed file times, the same in both folders


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _put(root: Path, rel: str, data: bytes, when: int = T0) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))


def _seed(root: Path) -> None:
    _put(root, "a.zip", release(1))
    _put(root, "notes.txt", b"notes\n")
    for v in range(1, 5):
        _put(root, f"tree/app-1.{v}.zip", release(v))
    _put(root, "tree/readme.txt", b"readme\n")
    _put(root, "tree/sub/app-2.0.zip", release(9))
    _put(root, "tree/sub/debug.log", b"log\n")
    _put(root, "tree/sub/deep/keep.txt", b"keep\n")
    (root / "existing").mkdir()


#: (command, arguments with {b} for the bucket); a "!" command changes the local folders.
SCRIPT: list[tuple[str, ...]] = [
    ("cp", "a.zip", "s3://{b}/"),
    ("cp", "a.zip", "s3://{b}/dir/"),
    ("cp", "a.zip", "s3://{b}/dir/renamed.zip"),
    ("cp", "a.zip", "s3://{b}/noext"),
    ("cp", "notes.txt", "s3://{b}/dir/notes"),
    ("cp", "--recursive", "tree", "s3://{b}/t/", "--exclude", "*", "--include", "*.zip",
     "--exclude", "sub/*", "--include", "sub/deep/*"),
    ("cp", "--recursive", "tree", "s3://{b}/t2"),
    ("cp", "--recursive", "tree", "s3://{b}/t3/", "--exclude", "*.txt", "--exclude", "*.log"),
    ("cp", "s3://{b}/dir/renamed.zip", "out/"),
    ("cp", "s3://{b}/dir/renamed.zip", "out2.zip"),
    ("cp", "s3://{b}/dir/renamed.zip", "existing"),
    ("cp", "s3://{b}/noext", "noext-copy"),
    ("cp", "--recursive", "s3://{b}/t", "dl"),
    ("cp", "--recursive", "s3://{b}/t2/", "dl2/", "--exclude", "sub/*"),
    ("cp", "s3://{b}/a.zip", "s3://{b}/copy/"),
    ("cp", "s3://{b}/a.zip", "s3://{b}/copy/b.zip"),
    ("cp", "--recursive", "s3://{b}/t/", "s3://{b}/t4/", "--exclude", "*1.2*"),
    ("cp", "s3://{b}/missing.zip", "nothing.zip"),
    ("sync", "tree", "s3://{b}/s/"),
    ("sync", "tree", "s3://{b}/s/"),
    ("!", "change"),
    ("sync", "tree", "s3://{b}/s/", "--delete"),
    ("sync", "s3://{b}/s/", "down/"),
    ("sync", "s3://{b}/s/", "down/"),
    ("!", "change-down"),
    ("sync", "s3://{b}/s/", "down/", "--delete", "--exclude", "*.txt"),
    ("sync", "s3://{b}/s/", "s3://{b}/s2/", "--exclude", "sub/*"),
    ("sync", "s3://{b}/s/", "s3://{b}/s2/", "--delete"),
    ("rm", "s3://{b}/dir/renamed.zip"),
    ("rm", "--recursive", "s3://{b}/t2/", "--exclude", "*.zip"),
    ("rm", "--recursive", "s3://{b}/t3", "--exclude", "*", "--include", "*1.3*"),
    ("rm", "s3://{b}/not-there.zip"),
]  # fmt: skip


def _change(root: Path, what: str) -> None:
    if what == "change":
        _put(root, "tree/readme.txt", b"readme, longer now\n", T0 + 10)
        _put(root, "tree/app-1.5.zip", release(5), T0 + 10)
        (root / "tree/app-1.1.zip").unlink()
    elif what == "change-down":
        _put(root, "down/stray.bin", b"stray", T0)
        _put(root, "down/readme.txt", b"local edit!!!!!!!!!", T0)


@pytest.fixture
def parity(s3_target: Target, tmp_path: Path):  # type: ignore[no-untyped-def]
    storage = s3_target.storage()
    aws_bucket = f"{s3_target.bucket}-aws"
    storage.create_bucket(aws_bucket)
    yield s3_target, aws_bucket
    remove_bucket(storage, aws_bucket)


def test_scripted_session_matches_aws_s3(parity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target, aws_bucket = parity
    assert target.server is not None
    aws = str(awscli())
    env = {
        **os.environ,
        **target.env,
        "AWS_ENDPOINT_URL": target.server.endpoint_url,
        "AWS_PAGER": "",
    }
    env.pop("AWS_PROFILE", None)
    folders = {"aws": tmp_path / "aws", "dg": tmp_path / "dg"}
    for folder in folders.values():
        folder.mkdir()
        _seed(folder)
    tools = {
        "aws": ([aws, "s3"], aws_bucket),
        "dg": ([executable(), "--no-progress"], target.bucket),
    }
    storage = target.storage()
    engine = target.engine()
    for step, command in enumerate(SCRIPT):
        if command[0] == "!":
            for folder in folders.values():
                _change(folder, command[1])
            continue
        codes = {}
        for name, (prefix, bucket) in tools.items():
            args = [a.replace("{b}", bucket) for a in command]
            proc = subprocess.run(
                [*prefix, *args], cwd=folders[name], env=env, capture_output=True, timeout=300
            )
            codes[name] = proc.returncode
            if proc.returncode not in (0, 1):
                raise AssertionError(f"{name} {args}: exit {proc.returncode}\n{proc.stderr!r}")
        where = f"step {step}: {' '.join(command)}"
        assert codes["aws"] == codes["dg"], (where, codes)
        aws_keys = sorted(o.key for o in storage.iter_objects(aws_bucket))
        dg_keys = sorted(o.key for o in engine.iter_objects(target.bucket))
        assert dg_keys == aws_keys, where
        aws_files, dg_files = _tree(folders["aws"]), _tree(folders["dg"])
        assert sorted(dg_files) == sorted(aws_files), where
        assert dg_files == aws_files, where
    # Every object reads back as the bytes aws stored under the same key.
    for key in aws_keys:
        _, body = storage.get(aws_bucket, key)
        try:
            expected = body.read()
        finally:
            body.close()
        assert get_bytes(engine, target.bucket, key) == expected, key
    # And deltaglider stored deltas, not copies.
    physical = [o.key for o in storage.iter_objects(target.bucket)]
    assert sum(k.endswith(".delta") for k in physical) >= 10
    shutil.rmtree(tmp_path / "aws", ignore_errors=True)
