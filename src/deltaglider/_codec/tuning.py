"""How the codec is tuned: the defaults, xdelta3's matcher presets by level, and the memory
budgets that size the reference's indexes, the sessions of an encoder and what streaming decode
holds in flight.

Numbers only, and the arithmetic that turns them into matcher parameters and sizes: every other
stage reads its limits here, so that a budget is changed in one place. ``XDELTA3_VERSION``, the
version of the vendored library rather than a tuning choice, stays in :mod:`deltaglider.codec`
(where vendor/xdelta3/VENDORED.md says to bump it).
"""

from __future__ import annotations

import math
from typing import Final, Literal

__all__ = [
    "ANCHOR_BUDGET",
    "BLOCK_WINDOWS",
    "COPY_WINDOW",
    "DECODE_BUDGET",
    "DECODE_KEEP",
    "DEFAULT_LEVEL",
    "DEFAULT_SECONDARY",
    "DEFAULT_WINDOW_SIZE",
    "ENCODER_BUDGET",
    "INDEX_BUDGET",
    "LEVEL_PRESET",
    "LOCAL_ANCHOR_BITS",
    "LOCAL_ANCHOR_BUDGET",
    "LOCAL_BLOCK",
    "LOCAL_MIN",
    "LONG_MATCH",
    "LZMA_DATA_PRESET",
    "LZMA_RAW_ENTROPY",
    "OWN_COVERED",
    "OWN_GAPS",
    "PLAIN_WINDOW",
    "PRESETS",
    "PROBE_MARGIN",
    "PROBE_MIN_GAP",
    "RANDOM_MARGIN",
    "REGION_MARGIN",
    "REGION_MAX",
    "SECONDARY_IDS",
    "SMATCH_FASTEST",
    "Secondary",
    "anchor_bits",
    "matcher",
    "session_bytes",
]

#: Defaults chosen by measurement (README, "Choosing the defaults"): xdelta3's level 3 matcher
#: with DJW on the instruction and address sections keeps delta sizes within about 2% of
#: ``xdelta3 -e -9`` (LZMA) at several times its speed; against references of LOCAL_MIN bytes
#: and more, ``auto`` takes LZMA, recompressed in order after parallel matching.
DEFAULT_LEVEL: Final = 3
DEFAULT_SECONDARY: Final = "auto"
#: Target bytes per VCDIFF window: the unit of parallel work.
DEFAULT_WINDOW_SIZE: Final = 1 << 19

Secondary = Literal["none", "djw", "lzma"]

SECONDARY_IDS: Final = {"none": 0, "djw": 1, "lzma": 2}

# xdelta3's compiled string-matcher presets by level (as its command line maps -1..-9), with
# their parameters: (large_look, large_step, small_look, small_chain, small_lchain, max_lazy,
# long_enough). Level 6 has no preset constant of its own, so it runs with soft parameters.
_SMATCH_SLOW, _SMATCH_FAST, _SMATCH_FASTER, SMATCH_FASTEST = 1, 2, 3, 4
PRESETS: Final = {
    SMATCH_FASTEST: (9, 26, 4, 1, 1, 6, 6),
    _SMATCH_FASTER: (9, 15, 4, 1, 1, 18, 18),
    _SMATCH_FAST: (9, 8, 4, 4, 1, 18, 35),
    0: (9, 3, 4, 8, 2, 36, 70),
    _SMATCH_SLOW: (9, 2, 4, 44, 13, 90, 70),
}
LEVEL_PRESET: Final = {
    1: SMATCH_FASTEST,
    2: _SMATCH_FASTER,
    3: _SMATCH_FAST,
    4: _SMATCH_FAST,
    5: _SMATCH_FAST,
    6: 0,
    7: _SMATCH_SLOW,
    8: _SMATCH_SLOW,
    9: _SMATCH_SLOW,
}

#: Memory for xdelta3's index of the reference (8 bytes a slot). Beyond it, the index samples
#: the reference more sparsely instead of growing: peak memory stays the reference plus a bound.
INDEX_BUDGET: Final = 16 << 20
#: The probe: a target stretch is "shared" around each anchor found in the reference, widened by
#: this margin (matches run on past the last anchor), and unshared stretches shorter than the
#: gap are not worth splitting off.
PROBE_MARGIN: Final = 4096
PROBE_MIN_GAP: Final = 16384
#: Window size for stretches that share nothing with the reference.
PLAIN_WINDOW: Final = 1 << 17
#: Unshared windows whose bytes look random are stored verbatim: order-0 entropy within three
#: times what random bytes of that length fall short of 8 bits (255 / (2 n ln 2) bits).
RANDOM_MARGIN: Final = 3 * 255 / (2 * math.log(2))
#: Streaming reads the target in blocks of this many windows.
BLOCK_WINDOWS: Final = 4
#: The content-defined probe's table of reference anchors is kept within this.
ANCHOR_BUDGET: Final = 4 << 20
#: Memory of one encoder beyond the reference: its two indexes (at most INDEX_BUDGET and
#: ANCHOR_BUDGET) and its xdelta3 sessions (each has its own window hash tables: about 8.5 MiB
#: for a 512 KiB window at level 3) share this. Sessions are created only while they fit, so
#: peak memory does not grow with the thread count; with the target blocks and windows in
#: flight (about 10 MiB), streaming stays within the reference plus 64 MiB.
ENCODER_BUDGET: Final = 48 << 20
#: Streaming decode: bytes of batches (delta in, output out) in flight at once.
DECODE_BUDGET: Final = 24 << 20
#: Streaming decode keeps free output buffers up to this many bytes for reuse: four COPY
#: windows of large references and their neighbours (see COPY_WINDOW).
DECODE_KEEP: Final = 68 << 20

# Large references (``_codec/plan.py``): above LOCAL_MIN bytes, no index of the whole reference
# is built. Its anchors (at least every 2**LOCAL_ANCHOR_BITS bytes on average, the table within
# LOCAL_ANCHOR_BUDGET) find the target's stretches in it; matches of LONG_MATCH bytes or more
# become COPY windows of at most COPY_WINDOW bytes; the rest is encoded against stretches of the
# reference of at most REGION_MAX bytes around where it was found, widened by REGION_MARGIN.
# Target blocks (the unit of scanning, read ahead in parallel) are LOCAL_BLOCK bytes.
LOCAL_MIN: Final = 64 << 20
LOCAL_ANCHOR_BITS: Final = 10
LOCAL_ANCHOR_BUDGET: Final = 64 << 20
LONG_MATCH: Final = 32 << 10
COPY_WINDOW: Final = 16 << 20
REGION_MAX: Final = 4 << 20
REGION_MARGIN: Final = 64 << 10
LOCAL_BLOCK: Final = 16 << 20
#: A window between long matches whose bytes the matches found inside it cover at least this
#: much is written as those copies and the bytes between (no xdelta3 search of its stretch).
OWN_COVERED: Final = 0.95
#: ... or whose bytes outside the matches are at most this many (a window of their own would
#: cost more than xdelta3 can find in them).
OWN_GAPS: Final = 2048
#: LZMA preset of the data sections when large-reference deltas are recompressed with LZMA
#: (instructions and addresses: preset 1). Preset 2 compresses text about 10 MB/s on one core
#: and keeps deltas of compressible new data within about 0.92x of `xdelta3 -e -9`.
LZMA_DATA_PRESET: Final = 2
#: Data sections of at least this order-0 entropy (bits per byte) are left uncompressed when
#: recompressing with LZMA: random-looking bytes, where LZMA would only spend time.
LZMA_RAW_ENTROPY: Final = 7.9


def anchor_bits(size: int) -> int:
    """The sparsest-needed anchor spacing (bits) whose table for ``size`` bytes fits the budget
    (as AnchorIndex sizes it: a power of two above twice the expected anchors)."""
    bits = 6
    while bits < 20:
        want, slots = (size >> bits) * 2 + 16, 16
        while slots < want:
            slots <<= 1
        if slots * 8 <= ANCHOR_BUDGET:
            break
        bits += 1
    return bits


def session_bytes(window: int, params: tuple[int, ...], sprevsz: int = 1 << 18) -> int:
    """What one xdelta3 encoding session allocates for windows of ``window`` bytes: its target
    hash table (8 bytes a slot, the power of two at most the window), the chain of previous
    positions when the matcher follows chains (8 bytes times sprevsz), the instruction buffer
    (32768 instructions of 48 bytes) and its output (about two windows at worst)."""
    table = 8 << (window.bit_length() - 1)
    chain = 8 * sprevsz if params[3] > 1 or params[4] > 1 else 0
    return table + chain + 48 * (1 << 15) + 2 * window


def matcher(level: int, source_size: int) -> int | tuple[int, int, int, int, int, int, int]:
    """The xdelta3 matcher for ``level`` whose index fits the budget for this reference."""
    preset = LEVEL_PRESET[level]
    params = PRESETS[preset]
    # xdelta3 gives its index one slot for every large_step bytes of the source window (a power
    # of two above the source), rounded down to a power of two.
    window = 1 << 14
    while window <= source_size:
        window <<= 1
    step = params[1]
    slots = 1 << max(0, (window // step).bit_length() - 1)
    if slots * 8 <= INDEX_BUDGET and preset:
        return preset
    budget_slots = INDEX_BUDGET // 8
    while (1 << max(0, (window // step).bit_length() - 1)) > budget_slots:
        step += 1
    return (params[0], step, *params[2:])
