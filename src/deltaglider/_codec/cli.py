"""``python -m deltaglider.codec``: encode and decode files as the ``xdelta3`` tool does, or see
the codec work on two consecutive releases of a wheel from PyPI (``demo``).

A client of the public :mod:`deltaglider.codec` like any other; ``codec.py`` imports it only
under its ``__main__`` guard. The demo stays here rather than in ``bench/corpus.py`` (where
the proposal sent it): the README documents ``python -m deltaglider.codec demo``, and the
download it shares with the corpus and the quick start is :func:`deltaglider._releases.download`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._releases import DownloadError, download
from ..codec import Decoder, Encoder
from ..errors import DecodeError, EncodeError
from .tuning import DEFAULT_LEVEL, DEFAULT_SECONDARY, SECONDARY_IDS

__all__ = ["demo", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deltaglider.codec",
        description="xdelta3-compatible deltas with deltaglider's codec.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="write the delta that turns REFERENCE into TARGET")
    dec = sub.add_parser("decode", help="write the target that DELTA rebuilds from REFERENCE")
    demo = sub.add_parser("demo", help="delta two consecutive releases of a wheel from PyPI")
    for p, names in (
        (enc, ("reference", "target", "delta")),
        (dec, ("reference", "delta", "output")),
    ):
        for name in names:
            p.add_argument(name, type=Path)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    enc.add_argument("--level", type=int, choices=range(1, 10), default=DEFAULT_LEVEL)
    dec.add_argument(
        "--max-output-size",
        type=int,
        default=1 << 40,
        metavar="BYTES",
        help="refuse deltas that rebuild more than this (default 1 TiB)",
    )
    enc.add_argument(
        "--secondary", choices=[*sorted(SECONDARY_IDS), "auto"], default=DEFAULT_SECONDARY
    )
    demo.add_argument("--package", default="botocore")
    demo.add_argument("--versions", nargs=2, default=["1.35.5", "1.35.6"], metavar="V")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _mapped(path: Path) -> Any:
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _atomic_write(path: Path, produce: Callable[[Any], Any]) -> Any:
    """``produce(file)`` into a temporary file beside ``path``, renamed to ``path`` once done:
    never leave a partial output where the caller asked for the file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            result = produce(fh)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m deltaglider.codec``: encode, decode, or see it work on two real releases."""
    args = _parser().parse_args(argv)
    try:
        t = time.perf_counter()
        if args.command == "encode":
            encoder = Encoder(_mapped(args.reference), level=args.level, secondary=args.secondary)
            with open(args.target, "rb") as src:
                size, written = _atomic_write(args.delta, lambda out: encoder.copy_stream(src, out))
            result = {"target_bytes": size, "delta_bytes": written}
        elif args.command == "decode":
            decoder = Decoder(_mapped(args.reference))
            with open(args.delta, "rb") as src:
                size, written = _atomic_write(
                    args.output,
                    lambda out: decoder.copy_stream(src, out, max_output_size=args.max_output_size),
                )
            result = {"delta_bytes": size, "output_bytes": written}
        else:
            return demo(args.package, args.versions)
        result["seconds"] = time.perf_counter() - t
    except OSError as exc:
        return _fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    except (DecodeError, EncodeError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result))
    elif args.command == "encode":
        print(
            f"{args.target}: {size} bytes -> delta {written} bytes "
            f"({100 * written / max(1, size):.2f}%) in {result['seconds'] * 1e3:.0f} ms"
        )
    else:
        print(
            f"{args.output}: {written} bytes from a {size}-byte delta "
            f"in {result['seconds'] * 1e3:.0f} ms"
        )
    return 0


def demo(package: str, versions: list[str]) -> int:
    """Downloads two releases of ``package``, deltas the second against the first and decodes
    it back, printing sizes and times."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for version in versions:
            print(f"fetching {package}=={version} from PyPI ...", flush=True)
            try:
                files.append(download(package, version, Path(tmp)))
            except DownloadError as exc:
                return _fail(f"could not download {package}=={version}: {exc}")
        ref, tgt = files[0].read_bytes(), files[1].read_bytes()
        t = time.perf_counter()
        delta = Encoder(ref).encode(tgt)
        t_enc = time.perf_counter() - t
        t = time.perf_counter()
        back = Decoder(ref).decode(delta, max_output_size=len(tgt))
        t_dec = time.perf_counter() - t
        same = hashlib.sha256(back).digest() == hashlib.sha256(tgt).digest()
        print(f"reference {files[0].name}: {len(ref):,} bytes")
        print(f"target    {files[1].name}: {len(tgt):,} bytes")
        print(
            f"delta: {len(delta):,} bytes = {100 * len(delta) / len(tgt):.2f}% of the target "
            f"(saves {100 - 100 * len(delta) / len(tgt):.1f}%), encoded in {t_enc * 1e3:.0f} ms"
        )
        print(f"decoded in {t_dec * 1e3:.1f} ms: {'byte-exact' if same else 'MISMATCH'}")
        return 0 if same else 1
