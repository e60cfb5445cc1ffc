"""The original DeltaGlider (PyPI ``deltaglider``) in its own virtual environment.

Used by the compatibility tests and by ``bench/engine.py``. Environments are kept between runs
in ``$DG_ORIGINAL_VENVS`` (default ``~/.cache/deltaglider-tests/originals``).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

VENV_ROOT = Path(
    os.environ.get("DG_ORIGINAL_VENVS", Path.home() / ".cache" / "deltaglider-tests" / "originals")
)


def build(version: str) -> Path:
    """The ``deltaglider`` executable of ``deltaglider==version``, installing it if needed."""
    target = VENV_ROOT / f"deltaglider-{version}"
    exe = target / "bin" / "deltaglider"
    stamp = target / ".complete"
    if stamp.exists() and exe.exists():
        return exe
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    subprocess.run(
        [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"deltaglider=={version}",
        ],
        check=True,
    )
    stamp.write_text(version)
    return exe
