"""The type stub of the native binding (src/deltaglider/_xdelta3.pyi) matches the compiled module,
as mypy's stubtest sees it: every name, signature and class of the stub exists at runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import deltaglider

# Names Cython adds to every module; they are not part of the binding.
ALLOWLIST = """\
deltaglider._xdelta3.__reduce_cython__
deltaglider._xdelta3.__setstate_cython__
deltaglider._xdelta3.__test__
"""


@pytest.mark.slow
def test_stub_matches_the_compiled_module(tmp_path: Path) -> None:
    import mypy.stubtest  # noqa: F401  (in the test extras: missing is a failure, not a skip)

    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(ALLOWLIST)
    src = str(Path(deltaglider.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "deltaglider._xdelta3",
            "--allowlist",
            str(allowlist),
        ],
        cwd=tmp_path,  # mypy's cache goes there, not into the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
