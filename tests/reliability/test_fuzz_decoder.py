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

import base64
import importlib.util
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from deltaglider.errors import DecodeError

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
CORPUS = FUZZ / "corpus" / "decoder"

#: The sanitized atheris run's share of the CI budget (DG_FUZZ_SECONDS overrides); the build
#: before it takes about 30 s more.
FUZZ_SECONDS = 45
#: Inputs of the fixed-seed mutation loop.
MUTATIONS = 20_000


def _load_target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dg_fuzz_target", FUZZ / "decoder_target.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


target = _load_target()


def _corpus() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.is_file()}


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _finding(data: bytes, exc: BaseException) -> str:
    return (
        f"{type(exc).__name__}: {exc}\n"
        f"input ({len(data)} bytes, base64): {base64.b64encode(data).decode()}"
    )


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
            failures.append(f"{name}: {_finding(data, exc)}")
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
    rss_start = None
    slowest = 0.0
    for i in range(MUTATIONS):
        if i == MUTATIONS // 5:
            rss_start = _rss_bytes()  # after warm-up: pools, caches and arenas are in place
        data = _mutate(rng, rng.choice(corpus), corpus)
        t = time.perf_counter()
        try:
            target.check(data)
        except Exception as exc:
            pytest.fail(f"mutation {i}: {_finding(data, exc)}")
        slowest = max(slowest, time.perf_counter() - t)
    assert slowest < 5, f"an input took {slowest:.1f} s to reject"
    rss_end = _rss_bytes()
    if rss_start is not None and rss_end is not None:
        growth = rss_end - rss_start
        assert growth < 32 << 20, f"RSS grew {growth >> 20} MiB over {MUTATIONS} inputs"


def _atheris_expected() -> bool:
    # atheris ships wheels for Linux x86_64 only; it is in the test extras there.
    return sys.platform == "linux" and platform.machine() == "x86_64"


def _sanitizer_runtime() -> Path:
    """The ASan runtime with libFuzzer linked in that atheris's wheel ships (atheris.path())."""
    import atheris

    runtime = Path(atheris.path()) / "asan_with_fuzzer.so"
    assert runtime.is_file(), f"{runtime} is missing: atheris was not installed from its wheel"
    return runtime


def _build_sanitized(dest: Path, build_dir: Path) -> Path:
    """This checkout's extension, built with clang under ASan/UBSan and libFuzzer's coverage.

    CMakeLists.txt's DG_SANITIZE compiles our binding and the vendored xdelta3 with
    -fsanitize=address,undefined; CFLAGS adds -fsanitize=fuzzer-no-link so that the same C code
    reports coverage to libFuzzer. Installed into ``dest`` only (a --target folder), never over
    the package under test; no build isolation, so nothing is fetched from a registry.
    """
    if shutil.which("clang") is None:
        pytest.fail(
            "clang is needed for the sanitized fuzz run: "
            "apt-get install clang libclang-rt-14-dev (or newer)"
        )
    env = {**os.environ, "CC": "clang", "CFLAGS": "-fsanitize=fuzzer-no-link"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(dest),
            str(ROOT),
            "-C",
            "cmake.define.DG_SANITIZE=ON",
            "-C",
            f"build-dir={build_dir}",
            "-C",
            "install.strip=false",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"the sanitized build failed:\n{proc.stdout[-3000:]}{proc.stderr[-6000:]}"
    )
    ext = next((dest / "deltaglider").glob("_xdelta3*.so"))
    symbols = subprocess.run(
        ["nm", "-D", str(ext)], capture_output=True, text=True, check=True
    ).stdout
    for sym in ("__asan_report_load1", "__ubsan_handle_", "__sanitizer_cov_8bit_counters_init"):
        assert sym in symbols, f"{ext} lacks {sym}: not a sanitizer and coverage build"
    return ext


@pytest.mark.slow
def test_atheris_sanitized_run(tmp_path: Path) -> None:
    """Coverage-guided fuzzing of the ASan/UBSan build for FUZZ_SECONDS (DG_FUZZ_SECONDS).

    The extension is rebuilt from this checkout with clang, sanitizers and libFuzzer's coverage
    of its C code (xdelta3's decoder and our binding), then atheris's harness runs against it
    with atheris's ASan runtime preloaded. Any crash, sanitizer report, hang, OOM, oversized
    allocation or oracle violation fails the test, with the input in base64.
    """
    if importlib.util.find_spec("atheris") is None:
        if _atheris_expected():
            pytest.fail("atheris is not installed: pip install '.[test]'")
        pytest.skip("atheris has no wheel for this platform")
    runtime = _sanitizer_runtime()
    seconds = int(os.environ.get("DG_FUZZ_SECONDS", FUZZ_SECONDS))
    pkg = tmp_path / "pkg"
    ext = _build_sanitized(pkg, tmp_path / "build")
    seed = int(os.environ.get("DG_FUZZ_SEED", random.randrange(1, 1 << 31)))
    work = tmp_path / "corpus"
    work.mkdir()
    cmd = [
        sys.executable,
        str(FUZZ / "fuzz_decoder.py"),
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-malloc_limit_mb=256",
        f"-seed={seed}",
        f"-dict={FUZZ / 'vcdiff.dict'}",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
        str(work),
        str(CORPUS),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(pkg),
        "LD_PRELOAD": str(runtime),
        # The interpreter's own allocations at exit are not leaks; growth is caught by RSS.
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:symbolize=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    # Started as the grandchild of a shell: Linux keeps a process's peak RSS (ru_maxrss, which
    # libFuzzer's -rss_limit_mb reads) across fork and exec, so a fuzzer exec'd straight from
    # this test process starts with pytest's own peak (over 1 GiB late in a CI run) and reports
    # an OOM on its first check. A child forked by the shell starts counting from zero.
    proc = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=tmp_path,
        env=env,
    )
    log = proc.stdout + proc.stderr
    artifacts = sorted(
        p for p in tmp_path.iterdir() if re.match(r"(crash|timeout|oom|leak|slow-unit)-", p.name)
    )
    if (
        proc.returncode != 0
        or artifacts
        or "ERROR: AddressSanitizer" in log
        or "runtime error:" in log
    ):
        found = "\n".join(
            f"{p.name}: {base64.b64encode(p.read_bytes()).decode()}" for p in artifacts
        )
        pytest.fail(
            f"the fuzzer found a problem (exit {proc.returncode}, DG_FUZZ_SEED={seed}); "
            f"replay as fuzz/README.md says\n{found}\n{log[-6000:]}"
        )
    assert f"deltaglider._xdelta3 from {ext}" in log, (
        f"the harness did not load the sanitized build:\n{log[-3000:]}"
    )
    inited = re.search(r"INITED cov: (\d+)", log)
    # Python-level coverage alone is about 160 edges; the instrumented C code brings it to 770+.
    assert inited and int(inited.group(1)) > 400, (
        f"no native coverage reached libFuzzer:\n{log[-3000:]}"
    )
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    assert runs and int(runs.group(1)) > 1_000, f"the fuzzer barely ran:\n{log[-3000:]}"
