"""The sanitized fuzz runs' shared pieces: this checkout's extension built with clang under
ASan/UBSan and libFuzzer's coverage (once per session: the ``sanitized_build`` fixture in this
folder's conftest.py), and a short atheris run of one harness in ``fuzz/`` against it, checked
the same way for every harness.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"

# Loaded first by the fuzzing interpreter (its folder is on PYTHONPATH): an editable install of
# deltaglider (a development checkout) puts a finder ahead of sys.path that would import that
# checkout instead of the sanitized build.
_SITECUSTOMIZE = """\
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "deltaglider" not in repr(f).lower()
                    and "_editable" not in type(f).__module__]
"""


@dataclass(frozen=True)
class SanitizedBuild:
    """Where the sanitized package was installed (a --target folder) and its module."""

    pkg: Path
    ext: Path
    runtime: Path  # atheris's asan_with_fuzzer.so: the ASan runtime with libFuzzer linked in


def atheris_expected() -> bool:
    # atheris ships wheels for Linux x86_64 only; it is in the test extras there.
    return sys.platform == "linux" and platform.machine() == "x86_64"


def sanitizer_runtime() -> Path:
    """The ASan runtime with libFuzzer linked in that atheris's wheel ships (atheris.path())."""
    if importlib.util.find_spec("atheris") is None:
        if atheris_expected():
            pytest.fail("atheris is not installed: pip install '.[test]'")
        pytest.skip("atheris has no wheel for this platform")
    import atheris

    runtime = Path(atheris.path()) / "asan_with_fuzzer.so"
    assert runtime.is_file(), f"{runtime} is missing: atheris was not installed from its wheel"
    return runtime


def build(dest: Path, build_dir: Path) -> SanitizedBuild:
    """This checkout's extension, built with clang under ASan/UBSan and libFuzzer's coverage.

    CMakeLists.txt's DG_SANITIZE compiles our binding and the vendored xdelta3 with
    -fsanitize=address,undefined; CFLAGS adds -fsanitize=fuzzer-no-link so that the same C code
    reports coverage to libFuzzer. Installed into ``dest`` only (a --target folder), never over
    the package under test; no build isolation, so nothing is fetched from a registry.
    """
    runtime = sanitizer_runtime()
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
            "--upgrade",  # replaces what an earlier build put in dest
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
        timeout=900,
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
    (dest / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return SanitizedBuild(dest, ext, runtime)


def fuzz(
    san: SanitizedBuild,
    harness: str,
    corpus: Path,
    work: Path,
    seconds: int,
    *,
    min_edges: int,
    min_runs: int = 1_000,
    extra: tuple[str, ...] = (),
) -> str:
    """Runs ``fuzz/<harness>`` on the sanitized build for ``seconds`` (from ``corpus``, new
    inputs and artifacts in ``work``); fails on any crash, sanitizer report, hang, OOM,
    oversized allocation or oracle violation, with the input in base64, unless the harness
    ran the sanitized module with native coverage (``min_edges`` at start) for ``min_runs``
    inputs. Returns the log. ``DG_FUZZ_SEED`` repeats a run (its seed is printed on failure).
    """
    seed = int(os.environ.get("DG_FUZZ_SEED", random.randrange(1, 1 << 31)))
    grown = work / "corpus"
    grown.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(FUZZ / harness),
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-malloc_limit_mb=256",
        f"-seed={seed}",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
        *extra,
        str(grown),
        str(corpus),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(san.pkg),
        "LD_PRELOAD": str(san.runtime),
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
        timeout=seconds + 180,
        cwd=work,
        env=env,
    )
    log = proc.stdout + proc.stderr
    artifacts = sorted(
        p for p in work.iterdir() if re.match(r"(crash|timeout|oom|leak|slow-unit)-", p.name)
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
    assert f"deltaglider._xdelta3 from {san.ext}" in log, (
        f"the harness did not load the sanitized build:\n{log[-3000:]}"
    )
    inited = re.search(r"INITED cov: (\d+)", log)
    assert inited and int(inited.group(1)) > min_edges, (
        f"no native coverage reached libFuzzer:\n{log[-3000:]}"
    )
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    assert runs and int(runs.group(1)) > min_runs, f"the fuzzer barely ran:\n{log[-3000:]}"
    return log


def finding(data: bytes, exc: BaseException) -> str:
    """An input that failed, as a test reports it (base64, to become a regression input)."""
    return (
        f"{type(exc).__name__}: {exc}\n"
        f"input ({len(data)} bytes, base64): {base64.b64encode(data).decode()}"
    )


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def fixed_seed_loop(
    check: Callable[[bytes], object], make: Callable[[], bytes], count: int, what: str
) -> None:
    """``count`` inputs from ``make`` through ``check``: each within 5 s, only accepted outcomes,
    and memory flat across them (measured after a warm-up fifth: pools, caches and arenas)."""
    rss_start = None
    slowest = 0.0
    for i in range(count):
        if i == count // 5:
            rss_start = rss_bytes()
        data = make()
        t = time.perf_counter()
        try:
            check(data)
        except Exception as exc:
            pytest.fail(f"{what} {i}: {finding(data, exc)}")
        slowest = max(slowest, time.perf_counter() - t)
    assert slowest < 5, f"an input took {slowest:.1f} s"
    rss_end = rss_bytes()
    if rss_start is not None and rss_end is not None:
        growth = rss_end - rss_start
        assert growth < 32 << 20, f"RSS grew {growth >> 20} MiB over {count} inputs"


def load_target(filename: str) -> ModuleType:
    """A target module of ``fuzz/`` (what one input goes through), loaded by its path."""
    spec = importlib.util.spec_from_file_location(f"dg_fuzz_{Path(filename).stem}", FUZZ / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus(folder: Path) -> dict[str, bytes]:
    """A corpus kept in the repo, by file name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
