"""Other tools in virtual environments of their own: the original DeltaGlider (PyPI
``deltaglider``, same import name as ours) and the AWS CLI (``awscli``, which pins its own
botocore).

Used by the compatibility tests and by the benchmarks. Environments are kept between runs in
``$DG_ORIGINAL_VENVS`` (default ``~/.cache/deltaglider-tests/originals``).
"""

from __future__ import annotations

import os
import subprocess
import threading
import venv
from pathlib import Path

VENV_ROOT = Path(
    os.environ.get("DG_ORIGINAL_VENVS", Path.home() / ".cache" / "deltaglider-tests" / "originals")
)

#: The AWS CLI the parity tests and benchmarks compare against (v1, from PyPI).
AWSCLI_VERSION = "1.46.3"
#: The original DeltaGlider releases the compatibility tests read and write with.
ORIGINAL_VERSIONS = ("6.2.0", "6.1.1", "5.2.0")

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def tool(requirement: str, executable: str, name: str) -> Path:
    """The executable ``executable`` of ``requirement`` installed in a venv named ``name``
    (one install at a time per venv: a second caller waits for the first)."""
    with _locks_lock:
        lock = _locks.setdefault(name, threading.Lock())
    with lock:
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
                "--no-compile",
                "--disable-pip-version-check",
                requirement,
            ],
            check=True,
        )
        stamp.write_text(requirement)
        return exe


def prefetch(originals: bool, aws: bool) -> None:
    """Starts installing the environments the selected tests will need, in the background,
    so that they are (nearly) ready when the first of those tests runs."""

    def quietly(fn: object, *args: str) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except Exception:  # the test that needs it installs it again, and fails
            pass

    jobs: list[tuple[object, tuple[str, ...]]] = []
    if originals:
        jobs += [(build, (v,)) for v in ORIGINAL_VERSIONS]
    if aws:
        jobs.append((awscli, ()))
    for fn, args in jobs:
        threading.Thread(target=quietly, args=(fn, *args), daemon=True).start()


def build(version: str) -> Path:
    """The ``deltaglider`` executable of ``deltaglider==version``, installing it if needed."""
    return tool(f"deltaglider=={version}", "deltaglider", f"deltaglider-{version}")


def awscli() -> Path:
    """The ``aws`` executable of the pinned AWS CLI v1."""
    return tool(f"awscli=={AWSCLI_VERSION}", "aws", f"awscli-{AWSCLI_VERSION}")


def source(version: str) -> Path:
    """The original's source distribution of ``deltaglider==version`` from PyPI, unpacked:
    its own tests and README, which the compatibility tier runs against this package (they
    are fetched, as the original itself is installed, never kept in this repository)."""
    name = f"source-{version}"
    with _locks_lock:
        lock = _locks.setdefault(name, threading.Lock())
    with lock:
        target = VENV_ROOT / name
        tree = target / f"deltaglider-{version}"
        stamp = target / ".complete"
        if stamp.exists() and tree.is_dir():
            return tree
        import shutil
        import sys
        import tarfile

        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                "--dest",
                str(target),
                f"deltaglider=={version}",
            ],
            check=True,
        )
        (archive,) = target.glob("deltaglider-*.tar.gz")
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
            else:  # Python before 3.10.12: the archive is PyPI's, its names were checked
                for member in tar.getmembers():
                    if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                        raise RuntimeError(f"unsafe path in {archive}: {member.name}")
                tar.extractall(target)
        stamp.write_text(version)
        return tree
