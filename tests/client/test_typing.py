"""The public API type-checks under ``mypy --strict`` for a program that uses it (the package
ships ``py.typed``), and mypy catches a wrong argument type in such a program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import deltaglider

ROOT = Path(__file__).resolve().parents[2]  # the checkout these tests belong to

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


def _mypy(tmp_path: Path, source: str | None) -> subprocess.CompletedProcess[str]:
    """mypy --strict on a program (``source``), or on the package itself (None)."""
    if source is not None:
        target = tmp_path / "program.py"
        target.write_text(source)
    else:
        target = ROOT / "src" / "deltaglider"
    # The package as it is in the tree (an editable install hides it behind an import hook
    # mypy does not follow); it carries py.typed and the native module's .pyi.
    src = Path(deltaglider.__file__).resolve().parent.parent if source is not None else ROOT / "src"
    env = dict(os.environ)
    if src.name not in ("site-packages", "dist-packages"):  # mypy finds installed ones itself
        env["MYPYPATH"] = str(src)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # for the package, the project's root: its pyproject.toml configures mypy
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


def test_the_package_type_checks_strictly(tmp_path: Path) -> None:
    """src/deltaglider of this checkout (whatever is installed), with the project's mypy
    configuration (strict; boto3 and botocore ship no types)."""
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "src" / "deltaglider").is_dir()
    proc = _mypy(ROOT, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_mypy_catches_a_method_the_client_does_not_have(tmp_path: Path) -> None:
    """``__getattr__`` (which refuses boto3's other operations by name at run time) is hidden
    from type checkers: an unknown method is an attr-defined error, not an Any."""
    wrong = PROGRAM.replace("    s3.close()\n", "    s3.nonexistent_method()\n    s3.close()\n")
    wrong = wrong.replace(
        "    s3.close()\n", "    s3.select_object_content(Bucket='b')\n    s3.close()\n", 1
    )
    assert "nonexistent_method" in wrong
    proc = _mypy(tmp_path, wrong)
    assert proc.returncode == 1, proc.stdout
    assert (
        '"DeltaGliderClient" has no attribute "nonexistent_method"  [attr-defined]' in proc.stdout
    )
    assert '"DeltaGliderClient" has no attribute "select_object_content"  [attr-defined]' in (
        proc.stdout
    )
    # At run time: an S3 operation is refused by name, anything else is an AttributeError.
    from deltaglider import create_client
    from deltaglider.client import NotSupportedError

    client = create_client((tmp_path / "store").as_uri())
    try:
        with pytest.raises(NotSupportedError, match="select_object_content"):
            client.select_object_content(Bucket="b")  # type: ignore[attr-defined]
        with pytest.raises(AttributeError, match="nonexistent_method"):
            client.nonexistent_method()  # type: ignore[attr-defined]
    finally:
        client.close()
