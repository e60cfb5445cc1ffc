"""The public API type-checks under ``mypy --strict`` for a program that uses it (the package
ships ``py.typed``), and mypy catches a wrong argument type in such a program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import deltaglider

PROGRAM = """
from deltaglider import create_client
from deltaglider.client import DeltaGliderClient, NotSupportedError


def main() -> int:
    s3: DeltaGliderClient = create_client("file:///tmp/unused")
    response = s3.put_object(Bucket="bkt", Key="a.zip", Body=b"x", Metadata={"k": "v"})
    stored: int = response["DeltaGliderInfo"]["StoredSize"]
    size: int = s3.head_object(Bucket="bkt", Key="a.zip")["ContentLength"]
    with s3.get_object(Bucket="bkt", Key="a.zip", Range="bytes=0-0")["Body"] as body:
        first: bytes = body.read()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bkt"):
        for obj in page.get("Contents", []):
            print(obj["Key"], obj["Size"])
    try:
        s3.get_object(Bucket="bkt", Key="nope")
    except s3.exceptions.NoSuchKey:
        pass
    except NotSupportedError as exc:
        print(exc.operation)
    s3.close()
    return size + stored + len(first)
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "program.py"
    program.write_text(source)
    # The package as it is in the tree (an editable install hides it behind an import hook
    # mypy does not follow); it carries py.typed and the native module's .pyi.
    src = Path(deltaglider.__file__).resolve().parent.parent
    env = dict(os.environ)
    if src.name not in ("site-packages", "dist-packages"):  # mypy finds installed ones itself
        env["MYPYPATH"] = str(src)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )


def test_a_program_type_checks_strictly(tmp_path: Path) -> None:
    assert (Path(deltaglider.__file__).parent / "py.typed").is_file()
    proc = _mypy(tmp_path, PROGRAM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_mypy_catches_a_wrong_argument(tmp_path: Path) -> None:
    wrong = PROGRAM.replace(
        'Bucket="bkt", Key="a.zip", Body=b"x"', 'Bucket=1, Key="a.zip", Body=b"x"'
    )
    proc = _mypy(tmp_path, wrong)
    assert proc.returncode == 1
    assert 'Argument "Bucket" to "put_object"' in proc.stdout
