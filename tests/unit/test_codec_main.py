"""``python -m deltaglider.codec``: encode, decode, errors, and no partial output on failure."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from deltaglider._codec.cli import main as _main


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(11)
    ref = rng.randbytes(500_000)
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "new").write_bytes(ref[:1000] + b"change" + ref[1000:])
    return tmp_path / "ref", tmp_path / "new"


def test_encode_then_decode(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ref, new = files
    delta, out = ref.parent / "d", ref.parent / "out"
    assert _main(["encode", "--json", str(ref), str(new), str(delta)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["target_bytes"] == new.stat().st_size
    assert result["delta_bytes"] == delta.stat().st_size < 2000
    assert _main(["decode", str(ref), str(delta), str(out)]) == 0
    assert "bytes from a" in capsys.readouterr().out
    assert out.read_bytes() == new.read_bytes()


def test_failed_decode_leaves_nothing(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, new = files
    delta, out = ref.parent / "d", ref.parent / "out"
    assert _main(["encode", str(ref), str(new), str(delta)]) == 0
    assert _main(["decode", str(new), str(delta), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert sorted(p.name for p in ref.parent.iterdir()) == ["d", "new", "ref"]
    assert _main(["decode", "--max-output-size", "10", str(ref), str(delta), str(out)]) == 1
    assert "max_output_size" in capsys.readouterr().err
    assert not out.exists()


def test_missing_files_are_one_line_errors(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, new = files
    assert _main(["encode", str(ref), str(tmp_path / "nope"), str(tmp_path / "d")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: No such file or directory\n"
    assert _main(["encode", str(ref), str(new), str(tmp_path / "no" / "d")]) == 1
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'no' / 'd'}: No such file or directory\n"
    )


def test_runs_as_a_module(files: tuple[Path, Path]) -> None:
    ref, new = files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deltaglider.codec",
            "encode",
            str(ref),
            str(new),
            str(ref.parent / "d"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "-> delta" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "deltaglider.codec", "frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
