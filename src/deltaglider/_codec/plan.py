"""Planning the windows of a target block against a large reference.

A reference too large for an exact index of the whole (gigabytes) is matched in two steps.
The content-defined anchors of the reference (:class:`~deltaglider._xdelta3.AnchorIndex`) find
where the target's stretches sit in it; each is verified byte for byte and extended both ways
(``AnchorIndex.matches``). Then :func:`plan` turns those matches into windows:

- a long match becomes **copy** windows: one COPY instruction each, no search at all (an
  unchanged gigabyte costs a few hundred bytes of delta);
- the target between long matches (edits, inserts, moved or new data) is cut into windows
  encoded by xdelta3 against a **local** stretch of the reference: where the short matches
  inside the window and the long matches on either side say its bytes came from, widened by a
  margin. xdelta3 indexes that stretch exactly (every position its matcher samples), so its
  search is as thorough as over a reference that fits its window, whatever the reference's
  size;
- a window with nothing found inside it and no neighbour close enough to matter is **plain**:
  compressed without the reference (or stored verbatim if it looks random).

The plan is pure arithmetic over the matches (tested on its own with hypothesis); the windows
it describes cover the block exactly, in order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Copy", "Local", "Plain", "Window", "plan"]


class Copy(NamedTuple):
    """Target ``[start, end)`` equals the reference at ``source``."""

    start: int
    end: int
    source: int


class Local(NamedTuple):
    """Target ``[start, end)`` encoded against reference ``[lo, hi)``; ``hint``: where its
    first byte is expected in the reference; ``copies``: the matches found inside it
    (``(start, end, source)``, clipped to the window), ``covered`` the bytes they cover."""

    start: int
    end: int
    lo: int
    hi: int
    hint: int
    copies: tuple[tuple[int, int, int], ...] = ()
    covered: int = 0


class Plain(NamedTuple):
    """Target ``[start, end)`` compressed without the reference."""

    start: int
    end: int


Window = Copy | Local | Plain


def plan(
    matches: Sequence[tuple[int, int, int]],
    size: int,
    source_size: int,
    *,
    window: int,
    long_match: int,
    copy_max: int,
    margin: int,
    region_max: int,
    near: int,
) -> list[Window]:
    """Windows covering a target block of ``size`` bytes, in order.

    ``matches``: ``(start, end, source)`` stretches of the block found in the reference, in
    order, not overlapping. Matches of at least ``long_match`` bytes become copy windows of at
    most ``copy_max`` bytes; the rest of the block is cut into windows of at most ``window``
    bytes, each local to a stretch of the reference of at most ``region_max`` bytes (the
    diagonals of the matches inside it, or of the long matches beside it when it is shorter
    than ``near``), or plain when there is none.
    """
    out: list[Window] = []
    shorts = [m for m in matches if m[1] - m[0] < long_match]
    short_starts = [m[0] for m in shorts]
    pos = 0
    before: int | None = None  # diagonal (source - target) of the long match ending at pos
    for start, end, source in (m for m in matches if m[1] - m[0] >= long_match):
        if start > pos:
            _between(out, pos, start, before, source - start, shorts, short_starts,
                     source_size, window, margin, region_max, near)  # fmt: skip
        for lo in range(start, end, copy_max):
            out.append(Copy(lo, min(lo + copy_max, end), source + lo - start))
        pos = end
        before = source - start
    if pos < size:
        _between(out, pos, size, before, None, shorts, short_starts, source_size, window,
                 margin, region_max, near)  # fmt: skip
    return out


def _between(
    out: list[Window],
    start: int,
    end: int,
    before: int | None,
    after: int | None,
    shorts: Sequence[tuple[int, int, int]],
    short_starts: Sequence[int],
    source_size: int,
    window: int,
    margin: int,
    region_max: int,
    near: int,
) -> None:
    """Windows for the target between two long matches (diagonals ``before``/``after``)."""
    first = bisect_left(short_starts, start)
    for lo in range(start, end, window):
        hi = min(lo + window, end)
        # (diagonal, weight): bytes matched inside the window weigh what they cover; the
        # long matches beside the stretch count only where nothing inside says otherwise.
        diagonals: list[tuple[int, int]] = []
        inside: list[tuple[int, int, int]] = []
        k = first
        while k < len(shorts) and shorts[k][0] < hi:
            s_start, s_end, s_source = shorts[k]
            a, b = max(s_start, lo), min(s_end, hi)
            if b > a:
                diagonals.append((s_source - s_start, b - a))
                inside.append((a, b, s_source + a - s_start))
            k += 1
        if not diagonals and end - start >= near:
            out.append(Plain(lo, hi))
            continue
        for side in (before, after):
            if side is not None:
                diagonals.append((side, 1))
        if not diagonals:
            out.append(Plain(lo, hi))
            continue
        chosen = _cluster(diagonals, region_max - (hi - lo) - 2 * margin)
        best = max(chosen, key=lambda d: d[1])[0]
        r_lo = max(0, lo + min(d for d, _ in chosen) - margin)
        r_hi = min(source_size, hi + max(d for d, _ in chosen) + margin)
        if r_lo >= r_hi:
            out.append(Plain(lo, hi))
            continue
        hint = min(max(lo + best, r_lo), r_hi - 1)
        out.append(Local(lo, hi, r_lo, r_hi, hint, tuple(inside), sum(b - a for a, b, _ in inside)))


def _cluster(diagonals: list[tuple[int, int]], spread: int) -> list[tuple[int, int]]:
    """The diagonals within ``spread`` of each other that weigh most together."""
    ordered = sorted(diagonals)
    spread = max(0, spread)
    best: tuple[int, int, int] = (-1, 0, 1)  # weight, first, past the last
    total = 0
    left = 0
    for right, (d, w) in enumerate(ordered):
        total += w
        while d - ordered[left][0] > spread:
            total -= ordered[left][1]
            left += 1
        if total > best[0]:
            best = (total, left, right + 1)
    return ordered[best[1] : best[2]]
