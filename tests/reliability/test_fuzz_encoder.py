"""The encoder's native pieces under hostile input: the fuzz corpus replayed, a fixed-seed loop
of random and mutated inputs, and a short coverage-guided atheris run on an ASan/UBSan build of
the extension (the longer run is ``FUZZ_TARGET=encoder fuzz/run.sh``).

Every input goes through ``fuzz/encoder_target.py``: the anchor index built whole and in parts
(the same table, exact and maximal matches), the large-reference encoder at small sizes (every
delta decodes to its target, one-shot and streamed; max_delta_size), LzmaSections.recode of
raw and mutated windows (bytes that frame as one window, or ValueError/EncodeError),
LocalEncoder.encode_window with chosen stretches, and copy windows. Anything else fails the test
with the input (base64) so that it can become a regression input.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import sanitized
from sanitized import FUZZ, SanitizedBuild

from deltaglider import _xdelta3
from deltaglider.errors import EncodeError

CORPUS = FUZZ / "corpus" / "encoder"

#: The sanitized atheris run's share of the CI budget (DG_FUZZ_ENCODER_SECONDS, or
#: DG_FUZZ_SECONDS, overrides); the build is shared with the decoder's run.
FUZZ_SECONDS = 30
#: Inputs of the fixed-seed loop.
INPUTS = 3_000


target = sanitized.load_target("encoder_target.py")


def _corpus() -> dict[str, bytes]:
    return sanitized.corpus(CORPUS)


def test_corpus_is_kept_in_the_repo() -> None:
    corpus = _corpus()
    seeds = {n: d for n, d in corpus.items() if n.startswith("seed-")}
    assert len(seeds) >= 8
    assert {"seed-window-literal", "seed-window-local", "seed-window-copy"} <= set(seeds)
    assert sum(len(d) for d in corpus.values()) < 64 << 10, "keep the corpus small"
    assert all(len(d) <= 8192 for d in corpus.values()), "run.sh fuzzes with -max_len=8192"


def test_seeds_do_what_they_are_for() -> None:
    """Script seeds give a reference and a target the encoder has work with; window seeds are
    real windows that LzmaSections recodes as they are."""
    for name, data in _corpus().items():
        if not name.startswith("seed-"):
            continue
        if name.startswith("seed-window-"):
            assert _xdelta3.LzmaSections().recode(data), name
        else:
            ref, tgt = target.derive(data)
            assert (ref and tgt and tgt != ref[: len(tgt)]) or name == "seed-self", name


def test_corpus_replays_cleanly() -> None:
    failures = []
    for name, data in _corpus().items():
        try:
            target.check(data, every_secondary=True)
        except Exception as exc:
            failures.append(f"{name}: {sanitized.finding(data, exc)}")
    assert not failures, "\n".join(failures)


def _corpus_file(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_findings_stay_fixed() -> None:
    """Inputs that were once findings (fuzz/README.md, "Findings", encoder) are refused."""
    # Section lengths that wrap around 2**64 and added up to the window's length: the data
    # section of 2**64 - 100 bytes, left as it is (random), moved the next one 100 bytes before
    # the window (read by LZMA out of bounds); sections of 2**63 bytes each asked for an
    # allocation of 2**63 bytes.
    for name in ("regress-recode-wrapped-sections", "regress-recode-huge-section"):
        with pytest.raises(ValueError, match="invalid section length"):
            _xdelta3.LzmaSections().recode(_corpus_file(name))
    # A data section longer than the window's target: recoded, the decoder refused the window.
    with pytest.raises(ValueError, match="larger than its target"):
        _xdelta3.LzmaSections().recode(_corpus_file("regress-recode-data-beyond-target"))
    # anchor_bits 0: a shift by 64 bits (UBSan).
    data = _corpus_file("regress-anchor-bits-0")
    with pytest.raises(ValueError, match="anchor_bits"):
        _xdelta3.AnchorIndex(data, 0)
    for bits in (-1, 33, 64):
        with pytest.raises(ValueError, match="anchor_bits"):
            _xdelta3.AnchorIndex(data, bits, build=False)
    for name in _corpus():
        if name.startswith("regress-"):
            target.check(_corpus_file(name), every_secondary=True)


def test_max_delta_size_is_exact_with_lzma() -> None:
    """A literal window counts toward max_delta_size only where LzmaSections leaves it as it
    is (fuzz/README.md, encoder finding 4, fixed)."""
    target.check(_corpus_file("regress-lzma-literal-least"))


def test_recode_refuses_what_is_not_one_window() -> None:
    window = _xdelta3.literal_window(b"some text, some text, some text")
    sections = _xdelta3.LzmaSections()
    assert sections.recode(window)
    for bad in (window + b"\x00", window[:-1], b"\x08" + window[1:], b"\x02" + window[1:]):
        with pytest.raises((ValueError, EncodeError)):
            sections.recode(bad)


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """Random bytes now and then; else a corpus input with bytes set, cut, spliced or grown."""
    if rng.random() < 0.2:
        return rng.randbytes(rng.choice((0, 3, 17, 40, 200, 1500)))
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4))):
        n = len(b)
        kind = rng.randrange(6)
        if kind == 0 and n:  # a knob or script byte
            b[rng.randrange(min(n, target.HEADER + 32))] = rng.randrange(256)
        elif kind == 1 and n:
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 2:
            del b[rng.randrange(n + 1) :]
        elif kind == 3:
            other = rng.choice(corpus)
            b = b[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1) :]
        elif kind == 4 and n:  # a large VCDIFF integer (window seeds)
            i = rng.randrange(n)
            b[i : i + 1] = rng.choice((b"\xff\xff\xff\xff\x0f", b"\x81\x80\x80\x80\x00"))
        elif kind == 5:
            b += rng.randbytes(rng.randrange(1, 64))
    return bytes(b[:8192])


@pytest.mark.slow
def test_fixed_seed_inputs() -> None:
    """Reproducible random and mutated inputs (about 1 ms each), memory checked to stay flat."""
    corpus = list(_corpus().values())
    rng = random.Random(0xE2C0DE)
    sanitized.fixed_seed_loop(
        target.check, lambda: _mutate(rng, rng.choice(corpus), corpus), INPUTS, "input"
    )


@pytest.mark.slow
def test_atheris_sanitized_run(tmp_path: Path, sanitized_build: SanitizedBuild) -> None:
    """Coverage-guided fuzzing of the encoder harness on the ASan/UBSan build (the session's,
    shared with the decoder's run) for FUZZ_SECONDS. Any crash, sanitizer report, hang, OOM,
    oversized allocation or oracle violation fails the test, with the input in base64."""
    seconds = int(
        os.environ.get("DG_FUZZ_ENCODER_SECONDS", os.environ.get("DG_FUZZ_SECONDS", FUZZ_SECONDS))
    )
    # About 30 inputs a second (every window is a fresh xdelta3 stream: fresh pages under
    # ASan). Python-level coverage alone is about 520 edges; with the C code, 2,400+.
    sanitized.fuzz(
        sanitized_build,
        "fuzz_encoder.py",
        CORPUS,
        tmp_path,
        seconds,
        min_edges=1_500,
        min_runs=10 * seconds,
        extra=("-max_len=8192",),
    )
