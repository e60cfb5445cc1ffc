#!/usr/bin/env bash
# Fuzzes the native decoder (or the encoder's native pieces) for a given time with an ASan/UBSan
# build of the extension whose C code (our binding and xdelta3) is instrumented for libFuzzer's
# coverage. See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS] [libFuzzer flags...]       # default 600 s, the decoder
#   FUZZ_TARGET=encoder fuzz/run.sh [SECONDS] ...    # the encoder harness
#
# Needs clang (with compiler-rt: Debian's clang + libclang-rt-14-dev or newer) and liblzma's
# headers. Environment:
#   FUZZ_VENV   the sanitizer virtual environment (default: $TMPDIR/deltaglider-fuzz-venv);
#               created on first use; atheris's wheel brings asan_with_fuzzer.so, the ASan
#               runtime with libFuzzer linked in (where there is no wheel, atheris is built
#               from source there, about 90 s)
#   FUZZ_TARGET decoder (default) or encoder: fuzz_$FUZZ_TARGET.py, corpus/$FUZZ_TARGET/
#   FUZZ_WORK   new corpus entries and crash artifacts (default: $TMPDIR/deltaglider-fuzz, and
#               $TMPDIR/deltaglider-fuzz-encoder for the encoder)
#   PYTHON      the interpreter to build the venv from (default: python3)
set -euo pipefail

seconds=${1:-600}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tmp=${TMPDIR:-/tmp}
venv=${FUZZ_VENV:-$tmp/deltaglider-fuzz-venv}
target=${FUZZ_TARGET:-decoder}
case "$target" in
  decoder)
    work=${FUZZ_WORK:-$tmp/deltaglider-fuzz}
    # Decodes run with max_output_size = 1 MiB: any single allocation above 256 MiB is a finding.
    flags=(-dict="$here/vcdiff.dict")
    ;;
  encoder)
    work=${FUZZ_WORK:-$tmp/deltaglider-fuzz-encoder}
    # References of at most 24 KiB, targets of 16 KiB; inputs beyond a few KiB add nothing.
    flags=(-max_len=8192)
    ;;
  *)
    echo "run.sh: FUZZ_TARGET is decoder or encoder, not $target" >&2
    exit 2
    ;;
esac
python=${PYTHON:-python3}

command -v clang >/dev/null || {
  echo "run.sh: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
}

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
# atheris's Linux x86_64 wheel ships asan_with_fuzzer.so (the ASan runtime with libFuzzer linked
# in) beside its package; elsewhere it has to be built from source with clang.
"$venv/bin/python" -c 'import atheris' 2>/dev/null || "$venv/bin/pip" install -q atheris || true
runtime=$("$venv/bin/python" -c 'import atheris; print(atheris.path())' 2>/dev/null || true)
if [ -z "$runtime" ] || [ ! -f "$runtime/asan_with_fuzzer.so" ]; then
  echo "== building atheris from source with clang (it then ships asan_with_fuzzer.so)"
  CC=clang CXX=clang++ "$venv/bin/pip" install -q --no-binary atheris --force-reinstall atheris
  runtime=$("$venv/bin/python" -c 'import atheris; print(atheris.path())')
  [ -f "$runtime/asan_with_fuzzer.so" ] || {
    echo "run.sh: atheris did not produce asan_with_fuzzer.so (is compiler-rt installed?)" >&2
    exit 2
  }
fi

# The extension with ASan/UBSan (CMakeLists.txt, DG_SANITIZE) and coverage instrumentation;
# the build directory is kept, so later runs rebuild only what changed.
echo "== building deltaglider with -DDG_SANITIZE=ON -fsanitize=fuzzer-no-link"
"$venv/bin/pip" install -q scikit-build-core cython cython-cmake
CC=clang CFLAGS="-fsanitize=fuzzer-no-link" "$venv/bin/pip" install -q --no-build-isolation "$root" \
  -C cmake.define.DG_SANITIZE=ON -C build-dir="$venv/build" -C install.strip=false
ext=$("$venv/bin/python" -c \
  'import importlib.util as u; print(u.find_spec("deltaglider._xdelta3").origin)')
symbols=$(nm -D "$ext")
for sym in __asan_report_load1 __ubsan_handle_ __sanitizer_cov_8bit_counters_init; do
  grep -q "$sym" <<<"$symbols" || { echo "run.sh: $ext lacks $sym: not the fuzz build" >&2; exit 2; }
done

mkdir -p "$work/corpus"
echo "== fuzzing the $target for $seconds s; new inputs in $work/corpus, crashes in $work/"
# Python leaks at exit by design (leak detection off); any single allocation above 256 MiB is
# a finding: one input's work is bounded far below that.
cd "$work"
LD_PRELOAD="$runtime/asan_with_fuzzer.so" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:symbolize=1:${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
  "$venv/bin/python" "$here/fuzz_$target.py" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
  "${flags[@]}" -artifact_prefix="$work/" -print_final_stats=1 \
  "$@" "$work/corpus" "$here/corpus/$target"
