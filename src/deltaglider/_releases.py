"""Released wheels fetched from the package index with pip: the one downloader behind the quick
start (``python -m deltaglider.quickstart``), the codec's demo (``python -m deltaglider.codec
demo``) and the benchmark corpus (``bench/corpus.py``).

It shells out to ``python -m pip download`` so that the machine's index settings apply. A leaf:
it imports nothing of the package.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DownloadError", "download"]


class DownloadError(Exception):
    """pip downloaded nothing; the message is the last line pip wrote to its error output."""


def download(package: str, version: str, into: Path, pip_args: Sequence[str] = ()) -> Path:
    """The wheel of ``package==version``, downloaded without its dependencies into the folder
    ``into``; ``pip_args`` are more options for ``pip download`` (``--platform ...`` for
    another machine's wheel). Raises :class:`DownloadError` if no new file appeared."""
    before = set(into.iterdir())
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary", ":all:", *pip_args, f"{package}=={version}", "-d", str(into),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    new = sorted(set(into.iterdir()) - before)
    if proc.returncode or not new:
        last = proc.stderr.strip().splitlines()[-1:] or ["no file"]
        raise DownloadError(last[0])
    return new[0]
