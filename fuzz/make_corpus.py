"""Writes the decoder fuzzer's seed corpus: real deltas against ``decoder_target.SOURCE``.

    python fuzz/make_corpus.py            # (re)writes fuzz/corpus/decoder/seed-*

Seeds come from deltaglider's encoder (several levels and secondary compressors, one and several
windows) and from Debian's ``xdelta3`` tool (``-e -9 -s`` with each secondary compressor,
including FGK, which only the tool writes; with and without application header and checksum;
and without a source). Every seed is checked to decode to its target before it is written. The
output is deterministic, so re-running it leaves the committed seeds unchanged.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decoder_target import MAX_OUTPUT, SOURCE  # noqa: E402

from deltaglider.codec import Decoder, Encoder  # noqa: E402

CORPUS = HERE / "corpus" / "decoder"


def targets() -> dict[str, bytes]:
    """Targets that exercise different instructions: copies, adds, runs, moved blocks."""
    rng = random.Random(7)
    s = SOURCE
    levels = [b"ok", b"warn", b"fail"]
    text = b"".join(b"record %04d %s\n" % (i, rng.choice(levels)) for i in range(400))
    return {
        # A few point edits: long source copies with small adds between them.
        "edits": s[:3000] + b"patched!" + s[3008:9000] + rng.randbytes(300) + s[9500:],
        # Blocks of the source moved around and repeated: copies at many addresses.
        "moved": b"".join(s[o : o + 1500] for o in (20000, 100, 7000, 100, 15000, 2500, 23000)),
        # Long runs of one byte (RUN instructions) and copies from earlier in the target.
        "runs": b"\x00" * 3000 + s[:2000] + b"\xff" * 1500 + s[:2000] + b"ab" * 800,
        # Nothing in common with the source: adds only, compressible by the secondary.
        "text": text,
        "empty": b"",
        # Longer than one 4 KiB window of our encoder: several windows.
        "long": s[12000:] + text[:6000] + s[:8000] + s[4000:12000],
    }


def ours() -> dict[str, bytes]:
    out = {}
    t = targets()
    variants = [
        (1, "none", None, 1 << 19, ("edits", "text", "empty")),
        (3, "djw", None, 1 << 19, ("edits", "moved", "runs", "text")),
        (3, "djw", True, 4096, ("long",)),
        (6, "none", None, 4096, ("long", "moved")),
        (9, "lzma", None, 1 << 19, ("edits", "runs", "text")),
        (9, "lzma", None, 4096, ("long",)),
    ]
    for level, secondary, data, window, names in variants:
        enc = Encoder(
            SOURCE, level=level, secondary=secondary, secondary_data=data, window_size=window
        )
        for name in names:
            tag = f"l{level}-{secondary}{'-data' if data else ''}{'-w4k' if window == 4096 else ''}"
            out[f"seed-ours-{tag}-{name}.vcdiff"] = enc.encode(t[name])
    return out


def tool() -> dict[str, bytes]:
    exe = shutil.which("xdelta3")
    if exe is None:
        raise SystemExit("the xdelta3 tool is needed (apt-get install xdelta3)")
    out = {}
    t = targets()
    variants = [
        ("lzma", ["-S", "lzma"], ("edits", "moved", "text")),
        ("djw", ["-S", "djw"], ("edits", "runs", "text")),
        ("fgk", ["-S", "fgk"], ("edits", "runs", "text")),
        ("none", ["-S", "none"], ("edits", "moved")),
        ("noapp-nocksum", ["-S", "djw", "-A", "-n"], ("edits",)),
        # Smallest input window the tool accepts: several windows, LZMA state across them.
        ("w16k", ["-S", "lzma", "-W", "16384"], ("long",)),
        ("nosource", ["-S", "djw"], ("text", "runs")),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "source").write_bytes(SOURCE)
        for tag, flags, names in variants:
            for name in names:
                (d / "target").write_bytes(t[name])
                src = [] if tag == "nosource" else ["-s", "source"]
                # Relative names: the application header records them.
                subprocess.run(
                    [exe, "-e", "-9", "-f", *flags, *src, "target", "delta"], cwd=d, check=True
                )
                out[f"seed-xdelta3-9-{tag}-{name}.vcdiff"] = (d / "delta").read_bytes()
    return out


def main() -> None:
    t = targets()
    seeds = {**ours(), **tool()}
    decoder = Decoder(SOURCE)
    for name, delta in seeds.items():
        target = t[name.rsplit("-", 1)[1].removesuffix(".vcdiff")]
        assert decoder.decode(delta, max_output_size=MAX_OUTPUT) == target, name
    CORPUS.mkdir(parents=True, exist_ok=True)
    for old in CORPUS.glob("seed-*"):
        old.unlink()
    for name, delta in sorted(seeds.items()):
        (CORPUS / name).write_bytes(delta)
    total = sum(len(d) for d in seeds.values())
    print(f"{len(seeds)} seeds, {total} bytes, in {CORPUS}")


if __name__ == "__main__":
    main()
