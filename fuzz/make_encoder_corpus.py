"""Writes the encoder fuzzer's seed corpus: knob headers and target scripts (encoder_target.py).

    python fuzz/make_encoder_corpus.py     # (re)writes fuzz/corpus/encoder/seed-*

Each seed is :data:`encoder_target.HEADER` knob bytes and a script that builds the target from
the reference: point edits, moved blocks, runs, unrelated text, random bytes, a periodic
reference, the input's two halves, the reference unchanged (copies only); and three real
VCDIFF windows (a literal, a LocalEncoder and a copy window) that ``LzmaSections.recode``
accepts as they are, so that mutations of them reach deep into its parser. Every seed is
checked to pass ``encoder_target.check`` and to do what it is for before it is written; the
output is deterministic, so re-running it leaves the committed seeds unchanged.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import encoder_target as t  # noqa: E402

from deltaglider import _xdelta3  # noqa: E402

CORPUS = HERE / "corpus" / "encoder"


def header(
    mode: int = 0,
    sel: int = len(t.SOURCE),
    *,
    bits: int = 3,  # anchor_bits 6
    table: int = 14,  # 1 MiB
    parts: int = 2,  # 3 parts
    min_length: int = 0,
    level: int = 2,  # level 3
    local: int = 0x15,  # blocks of 8 KiB, long matches of 256 B, copy windows of 2 KiB
    region: int = 0x16,  # regions of 8 KiB, margins of 128 B, near 2 KiB; secondary none
    u10: int = 3000,
    u12: int = 2500,
    b14: int = 4,  # max_delta_size: the delta's size exactly
    b15: int = 0x10,  # LzmaSections presets 0 and 0; LocalEncoder's hint: lo + b14
    b16: int = 0x60,  # LocalEncoder: matcher 2 (fast), no secondary, 512-byte windows
) -> bytes:
    out = bytes((mode, sel & 0xFF, sel >> 8, bits, table, parts, min_length, level, local))
    out += bytes((region, u10 & 0xFF, u10 >> 8, u12 & 0xFF, u12 >> 8, b14, b15, b16))
    assert len(out) == t.HEADER
    return out


def u16(v: int) -> bytes:
    return bytes((v & 0xFF, v >> 8))


def copy(off: int, n: int) -> bytes:
    return b"\x00" + u16(off) + u16(n - 1)


def lit(data: bytes) -> bytes:
    assert 1 <= len(data) <= 32
    return bytes((1, len(data) - 1)) + data


def run(value: int, n: int) -> bytes:
    return bytes((2, value)) + u16(n - 1)


def rand(seed: int, n: int) -> bytes:
    return bytes((3, seed)) + u16(n - 1)


def repeat(off: int, n: int) -> bytes:
    return b"\x04" + u16(off) + u16(n - 1)


def scripts() -> dict[str, bytes]:
    text = b"record 0001 ok; record 0002 warn; "
    edited = t.SOURCE[:1000] + b"patched!" + t.SOURCE[1008:3000]
    return {
        "self": header(local=0x00),  # copies only: 1 KiB copy windows, 128-byte long matches
        "edits": header()
        + copy(0, 3000)
        + lit(b"patched!")
        + copy(3008, 5992)
        + rand(1, 300)
        + copy(9500, 8192),
        "moved": header(region=0x56)  # DJW
        + b"".join(copy(o, 1500) for o in (20000, 100, 7000, 100, 15000, 2500)),
        "runs": header(level=8)
        + run(0, 3000)
        + copy(0, 2000)
        + run(255, 1500)
        + copy(0, 2000)
        + lit(b"ab" * 16)
        + repeat(5000, 2000),
        "text": header(region=0x96, b14=3)  # LZMA; max_delta_size one byte short
        + b"".join(lit(text[:32]) + repeat(i * 7, 200) for i in range(20)),
        "random": header(sel=6000)
        + rand(7, 4096)
        + copy(100, 3000)
        + rand(8, 2000)
        + copy(100, 3000),
        "halves": header(mode=3, sel=3000, region=0x96) + t.SOURCE[:3000] + edited,
        "periodic": header(mode=2, sel=8228, bits=1) + b"periodic ref %d; " * 3 + copy(37, 3000),
        "scriptref": header(mode=1, table=2, parts=5)
        + (copy(0, 400) + lit(b"x" * 32) + repeat(0, 1500)) * 8,
    }


def windows() -> dict[str, bytes]:
    """Real windows without secondary compression, whole inputs as they are."""
    rng = random.Random(11)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon"]
    text = b" ".join(rng.choice(words) for _ in range(120))
    enc = _xdelta3.LocalEncoder(t.SOURCE, matcher=2, window_size=4096, level=3)
    piece = t.SOURCE[8000:9000] + b"a local edit" + t.SOURCE[9100:11000]
    return {
        "window-literal": _xdelta3.literal_window(text),
        "window-local": enc.encode_window(piece, 6000, 14000, 8000),
        "window-copy": _xdelta3.copy_window(t.SOURCE[100:2100], 100),
    }


def main() -> None:
    seeds = {f"seed-{name}": data for name, data in {**scripts(), **windows()}.items()}
    for name, data in seeds.items():
        t.check(data)
        ref, tgt = t.derive(data)
        if "window" in name:
            assert _xdelta3.LzmaSections().recode(data), name
        else:
            assert tgt and ref, f"{name}: an empty reference or target"
            assert len(tgt) <= t.MAX_TARGET and len(data) <= 8192, name  # run.sh: -max_len=8192
    CORPUS.mkdir(parents=True, exist_ok=True)
    for old in CORPUS.glob("seed-*"):
        old.unlink()
    for name, data in sorted(seeds.items()):
        (CORPUS / name).write_bytes(data)
    total = sum(len(d) for d in seeds.values())
    print(f"{len(seeds)} seeds, {total} bytes, in {CORPUS}")


if __name__ == "__main__":
    main()
