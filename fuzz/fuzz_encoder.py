"""Coverage-guided fuzzing of deltaglider's native encoder pieces with atheris (libFuzzer).

    python fuzz/fuzz_encoder.py [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/fuzz_encoder.py crash-1234abcd        # replay one input

What is checked for each input is in ``encoder_target.py`` (the anchor index, the
large-reference encoder, LzmaSections, LocalEncoder and copy windows); how to run it, with or
without the ASan/UBSan build of the extension, is in ``README.md`` (``FUZZ_TARGET=encoder
run.sh`` does it all).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Python-level coverage of the planning and scheduling code; the native module's own coverage
# comes from building it with clang's -fsanitize=fuzzer-no-link (run.sh). Functions are
# instrumented after import, as in fuzz_decoder.py (an editable install hides modules from
# atheris.instrument_imports()).
import _atheris
import encoder_target


def main() -> None:
    _atheris.fuzz(encoder_target.check, ("deltaglider", "encoder_target", "codec_modes"))


if __name__ == "__main__":
    main()
