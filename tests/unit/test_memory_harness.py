"""The memory harness (tests/memory.py) sees what it must: anonymous memory a child holds (the
heap, including a grandchild's), and not a mapped file's pages, which are the point of mapping."""

from __future__ import annotations

import sys
from pathlib import Path

from memory import MiB, big_file, edited, measure, measure_python


def test_the_heap_of_a_child_counts() -> None:
    # Held a moment: a child that exits at once can be gone between two samples.
    held = measure_python(
        "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(0.3)"
    ).check()
    idle = measure_python("pass").check()
    assert held.peak >= idle.peak + 190 * MiB
    assert idle.peak < 100 * MiB


def test_a_grandchild_counts() -> None:
    inner = (
        "b = bytearray(150 << 20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(0.3)"
    )
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
    result = measure_python(code).check()
    assert result.peak >= 150 * MiB


def test_a_mapped_file_does_not_count(tmp_path: Path) -> None:
    path = big_file(tmp_path / "f.bin", 256 * MiB)
    code = (
        f"import mmap, hashlib; f = open({str(path)!r}, 'rb');"
        "m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); hashlib.sha256(m).hexdigest()"
    )
    result = measure_python(code).check()
    assert result.peak < 100 * MiB


def test_a_failed_command_says_so() -> None:
    result = measure([sys.executable, "-c", "raise SystemExit(3)"])
    assert result.returncode == 3
    try:
        result.check()
    except AssertionError as exc:
        assert "exit code 3" in str(exc)
    else:
        raise AssertionError("check() passed a failed run")


def test_big_files_are_what_they_say(tmp_path: Path) -> None:
    first = big_file(tmp_path / "a", 10 * MiB + 5)
    second = edited(first, tmp_path / "b", edits=8)
    a, b = first.read_bytes(), second.read_bytes()
    assert len(a) == len(b) == 10 * MiB + 5
    assert a != b
    assert sum(x != y for x, y in zip(a[::997], b[::997], strict=True)) < len(a[::997]) // 50
    blocks = {a[i : i + 4 * MiB] for i in range(0, 8 * MiB + 1, 4 * MiB)}
    assert len(blocks) == 3  # not one block repeated
