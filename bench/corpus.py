"""Rebuilds the benchmark corpus from PyPI: consecutive releases of real artifacts.

    python bench/corpus.py            # into bench/.corpus (or $DG_BENCH_CORPUS)

Two series, chosen because they are what deltaglider is for:

* ``botocore`` 1.35.0 to 1.35.9: ten consecutive releases of a large pure-Python wheel
  (12.5 MB each), where most files are unchanged from one release to the next;
* ``numpy`` 2.1.0 to 2.2.0, CPython 3.11 manylinux x86_64: five consecutive releases of a native
  wheel (16 MB), where rebuilt shared libraries differ nearly everywhere.

Files are fetched with ``pip download`` (so the machine's package index settings apply) and
checked against the sha256 digests PyPI published for them, recorded below.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import sys
from pathlib import Path

from deltaglider._releases import DownloadError, download

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(os.environ.get("DG_BENCH_CORPUS", HERE / ".corpus"))

# (series, version, file name, sha256)
FILES: list[tuple[str, str, str, str]] = [
    (
        "botocore",
        "1.35.0",
        "botocore-1.35.0-py3-none-any.whl",
        "a3c96fe0b6afe7d00bad6ffbe73f2610953065fcdf0ed697eba4e1e5287cc84f",
    ),
    (
        "botocore",
        "1.35.1",
        "botocore-1.35.1-py3-none-any.whl",
        "bce42967d0f03b79cf25b2b6a36221fb2fb15f98e6fa4155b66b672ab192013b",
    ),
    (
        "botocore",
        "1.35.2",
        "botocore-1.35.2-py3-none-any.whl",
        "92b168d8be79055bb25754aa34d699866d8aa66abc69f8ce99b0c191bd9c6e70",
    ),
    (
        "botocore",
        "1.35.3",
        "botocore-1.35.3-py3-none-any.whl",
        "3ff54075e125304a8978e5d3f27ab96485f2deedb561d458b0567a0a921dc243",
    ),
    (
        "botocore",
        "1.35.4",
        "botocore-1.35.4-py3-none-any.whl",
        "10195e5ca764745f02b9a51df048b996ddbdc1899a44a2caf35dfb225dfea489",
    ),
    (
        "botocore",
        "1.35.5",
        "botocore-1.35.5-py3-none-any.whl",
        "8116b72c7ae845c195146e437e2afd9d17538a37b3f3548dcf67c12c86ba0742",
    ),
    (
        "botocore",
        "1.35.6",
        "botocore-1.35.6-py3-none-any.whl",
        "8378c6cfef2dee15eb7b3ebbb55ba9c1de959f231292039b81eb35b72c50ad59",
    ),
    (
        "botocore",
        "1.35.7",
        "botocore-1.35.7-py3-none-any.whl",
        "324e58518a92f2946bc6653e5e1272bc88d4b6313413f938bdc51cb90d34cbba",
    ),
    (
        "botocore",
        "1.35.8",
        "botocore-1.35.8-py3-none-any.whl",
        "adf389eb8fd87775f193300e3431d1353f925807ad3a39958172cb644f0d60a1",
    ),
    (
        "botocore",
        "1.35.9",
        "botocore-1.35.9-py3-none-any.whl",
        "92962460e4f35d139a23bca28149722030143257ee2916de442243c2464a7434",
    ),
    (
        "numpy",
        "2.1.0",
        "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "f5ebbf9fbdabed208d4ecd2e1dfd2c0741af2f876e7ae522c2537d404ca895c3",
    ),
    (
        "numpy",
        "2.1.1",
        "numpy-2.1.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d51fc141ddbe3f919e91a096ec739f49d686df8af254b2053ba21a910ae518bf",
    ),
    (
        "numpy",
        "2.1.2",
        "numpy-2.1.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "e2b49c3c0804e8ecb05d59af8386ec2f74877f7ca8fd9c1e00be2672e4d399b1",
    ),
    (
        "numpy",
        "2.1.3",
        "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "bc6f24b3d1ecc1eebfbf5d6051faa49af40b03be1aaa781ebdadcbc090b4539b",
    ),
    (
        "numpy",
        "2.2.0",
        "numpy-2.2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "c2aed8fcf8abc3020d6a9ccb31dbc9e7d7819c56a348cc88fd44be269b37427e",
    ),
]

_PIP_NATIVE = [
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_17_x86_64",
]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(directory: Path = DEFAULT_DIR, quiet: bool = False) -> dict[str, list[Path]]:
    """Downloads what is missing, verifies everything; returns the series in release order."""
    directory.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[Path]] = {}
    for name, version, filename, digest in FILES:
        path = directory / filename
        if not path.exists():
            if not quiet:
                print(f"downloading {name}=={version}", file=sys.stderr)
            extra = _PIP_NATIVE if name == "numpy" else []
            try:
                download(name, version, directory, extra)
            except DownloadError as exc:
                raise SystemExit(f"pip did not produce {filename}: {exc}") from None
        if not path.exists():
            raise SystemExit(f"pip did not produce {filename}")
        if digest and _sha256(path) != digest:
            raise SystemExit(
                f"{filename}: sha256 mismatch (corrupt download?); delete it and retry"
            )
        series.setdefault(name, []).append(path)
    return series


def pairs(directory: Path = DEFAULT_DIR) -> list[tuple[Path, Path]]:
    """Consecutive (reference, target) pairs of every series."""
    out = []
    for files in build(directory, quiet=True).values():
        out.extend(itertools.pairwise(files))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--print-digests",
        action="store_true",
        help="print the sha256 of every file (to update the table above)",
    )
    args = parser.parse_args()
    series = build(args.dir)
    for name, files in series.items():
        total = sum(f.stat().st_size for f in files)
        print(f"{name}: {len(files)} releases, {total / 1e6:.1f} MB in {args.dir}")
    if args.print_digests:
        for files in series.values():
            for f in files:
                print(_sha256(f), f.name)


if __name__ == "__main__":
    main()
