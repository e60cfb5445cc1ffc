"""What the atheris harnesses share: instrument the Python code under test, say which build of
the native module is loaded, and run one target's ``check``."""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable

import atheris


def _instrument(prefixes: tuple[str, ...]) -> int:
    # Functions are instrumented after import rather than through
    # atheris.instrument_imports(), which skips modules behind a custom loader, as an
    # editable install of deltaglider is.
    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(prefixes):
            atheris.instrument_func(obj)
            count += 1
    return count


def fuzz(check: Callable[[bytes], object], prefixes: tuple[str, ...]) -> None:
    import deltaglider._xdelta3 as native

    # Which build is being fuzzed (the tests check it is the sanitized one they built).
    print(f"deltaglider._xdelta3 from {native.__file__}", file=sys.stderr, flush=True)
    _instrument(prefixes)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
