"""``python -m deltaglider.quickstart``: the main job, shown with the real commands.

Two consecutive releases of a real archive (botocore wheels from PyPI, unless ``--files``
names two local files) are uploaded with ``deltaglider cp`` into the embedded local store
(``--endpoint-url file://...``, a temporary folder unless ``--store``), listed with their
savings, downloaded back and verified byte-exact. Every command is printed before it runs,
so it doubles as a first lesson in the CLI.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ._releases import DownloadError, download

__all__ = ["main"]


def _deltaglider() -> list[str]:
    """The installed ``deltaglider`` command (beside this Python), else the module."""
    exe = Path(sys.executable).parent / "deltaglider"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("deltaglider")
    return [found] if found else [sys.executable, "-m", "deltaglider.cli"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(package: str, versions: list[str], into: Path) -> list[Path]:
    files = []
    for version in versions:
        print(f"# fetching {package}=={version} from PyPI", flush=True)
        try:
            files.append(download(package, version, into))
        except DownloadError as exc:
            raise SystemExit(f"error: could not download {package}=={version}: {exc}") from None
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deltaglider.quickstart",
        description="Upload two releases to a local store, list the savings, download, verify.",
    )
    parser.add_argument("--files", nargs=2, type=Path, metavar="FILE", help="two local files")
    parser.add_argument("--package", default="botocore", help="a PyPI package (default botocore)")
    parser.add_argument("--versions", nargs=2, default=["1.35.5", "1.35.6"], metavar="V")
    parser.add_argument("--store", type=Path, help="the local store's folder (default: temporary)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="deltaglider-quickstart-")).resolve()
    try:
        store = (args.store or work / "store").resolve()
        store.mkdir(parents=True, exist_ok=True)
        if args.files:
            files = [p.resolve() for p in args.files]
            for path in files:
                if not path.is_file():
                    raise SystemExit(f"error: {path}: no such file")
        else:
            (work / "downloads").mkdir()
            files = _fetch(args.package, args.versions, work / "downloads")
        env = {**os.environ, "DG_ENDPOINT_URL": store.as_uri()}
        dg = _deltaglider()

        def here(path: Path) -> str:
            """A path as typed in the work folder (relative when it is inside)."""
            return str(path.relative_to(work)) if path.is_relative_to(work) else str(path)

        def run(*command: str) -> None:
            shown = " ".join(shlex.quote(c) for c in ("deltaglider", *command))
            print(f"\n$ {shown}", flush=True)
            proc = subprocess.run([*dg, "--no-progress", *command], env=env, cwd=work)
            if proc.returncode:
                raise SystemExit(proc.returncode)

        print(f"# the local store: DG_ENDPOINT_URL={store.as_uri()}")
        bucket = "releases"
        if not (store / bucket).exists():
            run("mb", f"s3://{bucket}")
        for path in files:
            run("cp", here(path), f"s3://{bucket}/{args.package}/")
        run("ls", "--human-readable", "--stored", "--summarize", f"s3://{bucket}/{args.package}/")
        name = files[-1].name
        url = f"s3://{bucket}/{args.package}/{name}"
        back = work / "back" / name
        run("cp", url, here(back))
        run("verify", url)
        same = _sha256(back) == _sha256(files[-1])
        print(f"\n# {name}: downloaded {'byte-exact' if same else 'DIFFERENT'}")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
