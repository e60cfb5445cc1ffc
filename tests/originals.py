"""Other tools in virtual environments of their own: the original DeltaGlider (PyPI
``deltaglider``, same import name as ours) and the AWS CLI (``awscli``, which pins its own
botocore).

Used by the compatibility tests and by the benchmarks. Environments are kept between runs in
``$DG_ORIGINAL_VENVS`` (default ``~/.cache/deltaglider-tests/originals``).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

VENV_ROOT = Path(
    os.environ.get("DG_ORIGINAL_VENVS", Path.home() / ".cache" / "deltaglider-tests" / "originals")
)

#: The AWS CLI the parity tests and benchmarks compare against (v1, from PyPI).
AWSCLI_VERSION = "1.46.3"


def tool(requirement: str, executable: str, name: str) -> Path:
    """The executable ``executable`` of ``requirement`` installed in a venv named ``name``."""
    target = VENV_ROOT / name
    exe = target / "bin" / executable
    stamp = target / ".complete"
    if stamp.exists() and stamp.read_text() == requirement and exe.exists():
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
            requirement,
        ],
        check=True,
    )
    stamp.write_text(requirement)
    return exe


def build(version: str) -> Path:
    """The ``deltaglider`` executable of ``deltaglider==version``, installing it if needed."""
    return tool(f"deltaglider=={version}", "deltaglider", f"deltaglider-{version}")


def awscli() -> Path:
    """The ``aws`` executable of the pinned AWS CLI v1."""
    return tool(f"awscli=={AWSCLI_VERSION}", "aws", f"awscli-{AWSCLI_VERSION}")
