"""Coverage-guided fuzzing of deltaglider's native decoder with atheris (libFuzzer).

    python fuzz/fuzz_decoder.py [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/fuzz_decoder.py crash-1234abcd        # replay one input

What is checked for each input is in ``decoder_target.py``; how to run it, with or without the
ASan/UBSan build of the extension, is in ``README.md`` (``run.sh`` does it all).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Python-level coverage of the codec layer (framing, streaming, limits); the native module's
# own coverage comes from building it with clang's -fsanitize=fuzzer-no-link (run.sh). Functions
# are instrumented after import rather than through atheris.instrument_imports(), which skips
# modules behind a custom loader, as an editable install of deltaglider is.
import _atheris
import decoder_target


def main() -> None:
    _atheris.fuzz(decoder_target.check, ("deltaglider", "decoder_target"))


if __name__ == "__main__":
    main()
