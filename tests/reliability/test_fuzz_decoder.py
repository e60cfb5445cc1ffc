"""The native decoder under hostile input: the fuzz corpus replayed, a fixed-seed mutation loop,
and a short coverage-guided atheris run on an ASan/UBSan build of the extension (the longer run
is fuzz/run.sh).

Every input goes through ``fuzz/decoder_target.py``: one-shot, copy_stream and stream_reader
decoding against the corpus's reference and against a reference derived from the input. The
only accepted failure is DecodeError; the three forms must agree and stay within
max_output_size. Anything else, a crash, a hang or memory growth fails the test with the input
(base64) so that it can become a regression test.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import sanitized
from sanitized import FUZZ, SanitizedBuild

from deltaglider.errors import DecodeError

CORPUS = FUZZ / "corpus" / "decoder"

#: The sanitized atheris run's share of the CI budget (DG_FUZZ_SECONDS overrides); the build
#: before it takes about 30 s more.
FUZZ_SECONDS = 45
#: Inputs of the fixed-seed mutation loop.
MUTATIONS = 20_000


target = sanitized.load_target("decoder_target.py")


def _corpus() -> dict[str, bytes]:
    return sanitized.corpus(CORPUS)


def test_corpus_is_kept_in_the_repo() -> None:
    corpus = _corpus()
    seeds = [n for n in corpus if n.startswith("seed-")]
    assert any(n.startswith("seed-ours-") for n in seeds)
    assert any(n.startswith("seed-xdelta3-") for n in seeds)
    assert {"lzma", "djw", "fgk", "none"} <= {
        s for n in seeds for s in ("lzma", "djw", "fgk", "none") if f"-{s}-" in n
    }
    assert sum(len(d) for d in corpus.values()) < 256 << 10, "keep the corpus small"


def test_seeds_decode() -> None:
    """The seeds are real deltas against the fixed reference: every one decodes, every way."""
    for name, data in _corpus().items():
        if name.startswith("seed-"):
            out = target.check_with(target.SOURCE, data, 100)
            assert not isinstance(out, DecodeError), f"{name}: {out}"


def test_corpus_replays_cleanly() -> None:
    failures = []
    for name, data in _corpus().items():
        try:
            target.check(data)
        except Exception as exc:
            failures.append(f"{name}: {sanitized.finding(data, exc)}")
    assert not failures, "\n".join(failures)


def test_findings_stay_fixed() -> None:
    """Inputs the fuzzer once flagged (fuzz/README.md, "Findings") are clean DecodeErrors."""
    # UBSan in vendored xdelta3: an ADD of size 0 from an empty, NULL data section is
    # memcpy(out, NULL, 0); the window is then refused.
    data = (CORPUS / "regress-ubsan-add0-null-data.vcdiff").read_bytes()
    out = target.check_with(target.SOURCE, data, 7)
    assert isinstance(out, DecodeError) and "data underflow" in str(out)


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One of the mutations that break real deltas: flips, truncation, splices, edits."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        kind = rng.randrange(8)
        n = len(b)
        if kind == 0 and n:  # flip bits
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1 and n:  # a byte set to an interesting value
            b[rng.randrange(n)] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, 0x04, 0x05))
        elif kind == 2:  # truncate
            del b[rng.randrange(n + 1) :]
        elif kind == 3:  # splice: this input's head, another's tail
            other = rng.choice(corpus)
            b = b[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1) :]
        elif kind == 4 and n:  # delete a range
            i = rng.randrange(n)
            del b[i : i + rng.randrange(1, 64)]
        elif kind == 5 and n:  # duplicate a range
            i = rng.randrange(n)
            b[i:i] = b[i : i + rng.randrange(1, 256)]
        elif kind == 6 and n:  # a large VCDIFF integer where a small one was
            i = rng.randrange(n)
            b[i : i + 1] = rng.choice((b"\xff\xff\xff\xff\x0f", b"\xa0\x80\x80\x00", b"\x84\x00"))
        elif kind == 7 and n:  # random bytes over a range
            i = rng.randrange(n)
            b[i : i + 8] = rng.randbytes(8)
    return bytes(b)


@pytest.mark.slow
def test_fixed_seed_mutations() -> None:
    """Reproducible hostile inputs, with memory checked to stay flat across them."""
    corpus = list(_corpus().values())
    rng = random.Random(0xF0221)
    sanitized.fixed_seed_loop(
        target.check, lambda: _mutate(rng, rng.choice(corpus), corpus), MUTATIONS, "mutation"
    )


@pytest.mark.slow
def test_atheris_sanitized_run(tmp_path: Path, sanitized_build: SanitizedBuild) -> None:
    """Coverage-guided fuzzing of the ASan/UBSan build for FUZZ_SECONDS (DG_FUZZ_SECONDS).

    The extension is rebuilt from this checkout with clang, sanitizers and libFuzzer's coverage
    of its C code (xdelta3's decoder and our binding; once per session, the sanitized_build
    fixture), then atheris's harness runs against it with atheris's ASan runtime preloaded. Any
    crash, sanitizer report, hang, OOM, oversized allocation or oracle violation fails the
    test, with the input in base64.
    """
    seconds = int(os.environ.get("DG_FUZZ_SECONDS", FUZZ_SECONDS))
    # Python-level coverage alone is about 160 edges; the instrumented C code brings it to 770+.
    sanitized.fuzz(
        sanitized_build,
        "fuzz_decoder.py",
        CORPUS,
        tmp_path,
        seconds,
        min_edges=400,
        extra=(f"-dict={FUZZ / 'vcdiff.dict'}",),
    )
