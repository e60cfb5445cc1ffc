"""Interop with the xdelta3 command-line tool (Debian's package, 3.0.x), which the original
DeltaGlider runs as ``xdelta3 -e -9 -s ref new out`` and ``xdelta3 -d -s ref delta out``.

Every delta deltaglider writes must decode byte-exactly with the tool, and every delta the tool
writes (LZMA secondary compression and an application header by default; DJW, FGK or none on
request) must decode byte-exactly here.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import encoder_options, pairs

from deltaglider.codec import Decoder, Encoder
from deltaglider.errors import DecodeError

XDELTA3 = shutil.which("xdelta3")


@pytest.fixture(scope="module", autouse=True)
def _xdelta3_tool() -> None:
    # Not a skip: interop is part of the contract, and CI installs the tool (.ci/run).
    assert XDELTA3, "the xdelta3 tool is required for interop tests: apt-get install xdelta3"


def cli(*args: str | Path) -> None:
    proc = subprocess.run([XDELTA3 or "xdelta3", *map(str, args)], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _corpus() -> dict[str, tuple[bytes, bytes]]:
    rng = random.Random(2026)
    modules = {
        f"pkg/mod{i}.py": b"\n".join(
            b"def f%d_%d(x): return x * %d" % (i, j, rng.randint(0, 9)) for j in range(400)
        )
        for i in range(30)
    }
    v1 = _zip(modules)
    modules2 = dict(modules)
    for i in (3, 17):
        modules2[f"pkg/mod{i}.py"] += b"\ndef added(): pass\n"
    modules2["pkg/new.py"] = rng.randbytes(20000)
    v2 = _zip(modules2)
    blob = rng.randbytes(3 << 20)
    edited = blob[:700_000] + b"inserted" * 100 + blob[700_000:2_000_000] + blob[2_100_000:]
    return {
        "wheel-like zip": (v1, v2),
        "binary with edits": (blob, edited),
        "moved block": (blob, blob[1 << 20 :] + blob[: 1 << 20]),
        "unrelated": (rng.randbytes(300_000), rng.randbytes(200_000)),
        "empty target": (blob[:1000], b""),
        "empty reference": (b"", v1),
        "identical": (v2, v2),
    }


CORPUS = _corpus()


@pytest.mark.parametrize("name", list(CORPUS))
@pytest.mark.parametrize("secondary", ["none", "djw", "lzma"])
@pytest.mark.parametrize("level", [1, 3, 9])
def test_our_deltas_decode_with_the_xdelta3_tool(
    tmp_path: Path, name: str, secondary: str, level: int
) -> None:
    ref, tgt = CORPUS[name]
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "delta").write_bytes(Encoder(ref, level=level, secondary=secondary).encode(tgt))
    cli("-d", "-s", tmp_path / "ref", tmp_path / "delta", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == tgt


# The original DeltaGlider's exact invocation first, then the tool's other secondary coders and
# framing options: no checksum (-n), no application header (-A), small windows (-W).
CLI_VARIANTS = {
    "as DeltaGlider (-e -9, LZMA)": ["-e", "-9"],
    "default level": ["-e"],
    "-S djw": ["-e", "-9", "-S", "djw"],
    "-S fgk": ["-e", "-9", "-S", "fgk"],
    "-S none": ["-e", "-9", "-S", "none"],
    "-S none -A -n": ["-e", "-1", "-S", "none", "-A", "-n"],
    "LZMA, 64 KiB windows": ["-e", "-9", "-W", "65536"],
    "DJW, 16 KiB windows": ["-e", "-6", "-S", "djw", "-W", "16384"],
}


@pytest.mark.parametrize("name", list(CORPUS))
@pytest.mark.parametrize("variant", list(CLI_VARIANTS))
def test_xdelta3_tool_deltas_decode_here(tmp_path: Path, name: str, variant: str) -> None:
    ref, tgt = CORPUS[name]
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "new").write_bytes(tgt)
    cli(*CLI_VARIANTS[variant], "-s", tmp_path / "ref", tmp_path / "new", tmp_path / "delta")
    delta = (tmp_path / "delta").read_bytes()
    dec = Decoder(ref)
    assert dec.decode(delta, max_output_size=len(tgt)) == tgt
    out = io.BytesIO()
    assert dec.copy_stream(io.BytesIO(delta), out) == (len(delta), len(tgt))
    assert out.getvalue() == tgt
    with dec.stream_reader(io.BytesIO(delta)) as reader:
        assert reader.read() == tgt


def test_wrong_reference_for_a_tool_delta_is_detected(tmp_path: Path) -> None:
    ref, tgt = CORPUS["binary with edits"]
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "new").write_bytes(tgt)
    cli("-e", "-9", "-s", tmp_path / "ref", tmp_path / "new", tmp_path / "delta")
    delta = (tmp_path / "delta").read_bytes()
    wrong = bytearray(ref)
    wrong[100] ^= 1
    with pytest.raises(DecodeError, match="checksum"):
        Decoder(bytes(wrong)).decode(delta, max_output_size=len(tgt))


@pytest.mark.slow
def test_far_copies_decode_with_the_tool(tmp_path: Path) -> None:
    """A block moved across a 100 MiB reference: our delta copies from beyond the tool's own
    64 MiB encoding window, and the tool still decodes it."""
    ref = random.Random(9).randbytes(100 << 20)
    tgt = ref[80 << 20 :] + ref[: 80 << 20]
    delta = Encoder(ref).encode(tgt)
    assert len(delta) < 16 << 10
    (tmp_path / "ref").write_bytes(ref)
    (tmp_path / "delta").write_bytes(delta)
    cli("-d", "-s", tmp_path / "ref", tmp_path / "delta", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == tgt


@settings(max_examples=40)
@given(pairs(max_size=64 << 10), encoder_options)
def test_property_every_delta_we_write_decodes_with_the_tool(
    tmp_path_factory, pair, options
) -> None:
    ref, tgt, _ = pair
    tmp = tmp_path_factory.mktemp("p")
    (tmp / "ref").write_bytes(ref)
    (tmp / "delta").write_bytes(Encoder(ref, **options).encode(tgt))
    cli("-d", "-f", "-s", tmp / "ref", tmp / "delta", tmp / "out")
    assert (tmp / "out").read_bytes() == tgt


@settings(max_examples=25)
@given(pairs(max_size=64 << 10), st.sampled_from(list(CLI_VARIANTS)))
def test_property_every_tool_delta_decodes_here(tmp_path_factory, pair, variant) -> None:
    ref, tgt, _ = pair
    tmp = tmp_path_factory.mktemp("q")
    (tmp / "ref").write_bytes(ref)
    (tmp / "new").write_bytes(tgt)
    cli(*CLI_VARIANTS[variant], "-f", "-s", tmp / "ref", tmp / "new", tmp / "delta")
    delta = (tmp / "delta").read_bytes()
    assert Decoder(ref).decode(delta, max_output_size=len(tgt)) == tgt
