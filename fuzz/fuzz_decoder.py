"""Coverage-guided fuzzing of deltaglider's native decoder with atheris (libFuzzer).

    python fuzz/fuzz_decoder.py [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/fuzz_decoder.py crash-1234abcd        # replay one input

What is checked for each input is in ``decoder_target.py``; how to run it, with or without the
ASan/UBSan build of the extension, is in ``README.md`` (``run.sh`` does it all).
"""

from __future__ import annotations

import gc
import sys
import types
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Python-level coverage of the codec layer (framing, streaming, limits); the native module's
# own coverage comes from building it with clang's -fsanitize=fuzzer-no-link (run.sh). Functions
# are instrumented after import rather than through atheris.instrument_imports(), which skips
# modules behind a custom loader, as an editable install of deltaglider is.
import decoder_target


def _instrument(prefixes: tuple[str, ...]) -> int:
    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(prefixes):
            atheris.instrument_func(obj)
            count += 1
    return count


def main() -> None:
    import deltaglider._xdelta3 as native

    # Which build is being fuzzed (the test checks it is the sanitized one it built).
    print(f"deltaglider._xdelta3 from {native.__file__}", file=sys.stderr, flush=True)
    _instrument(("deltaglider", "decoder_target"))
    atheris.Setup(sys.argv, decoder_target.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
