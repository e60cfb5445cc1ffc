"""Properties of the large-reference path: the window plan (``_codec/plan.py``) over any
matches, and byte-exact round trips through it for references and targets of every relation."""

from __future__ import annotations

from codec_modes import local_mode
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import encoder_options, pairs

from deltaglider._codec.plan import Copy, Local, Plain, plan
from deltaglider.codec import Decoder, Encoder


@st.composite
def matches(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], int, int]:
    """Non-overlapping matches in order in a block, with the reference's size."""
    size = draw(st.integers(0, 1 << 20))
    source_size = draw(st.integers(1, 1 << 22))
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=40, unique=True)))
    out = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        if end - start >= 1 and end - start <= source_size:
            out.append((start, end, draw(st.integers(0, source_size - (end - start)))))
    return out, size, source_size


@given(
    matches(),
    st.integers(1, 1 << 18),
    st.integers(1, 1 << 16),
    st.integers(1, 1 << 18),
    st.integers(0, 1 << 15),
    st.integers(1, 1 << 20),
    st.integers(0, 1 << 16),
)
def test_plan_covers_the_block(
    found: tuple[list[tuple[int, int, int]], int, int],
    window: int,
    long_match: int,
    copy_max: int,
    margin: int,
    region_max: int,
    near: int,
) -> None:
    ms, size, source_size = found
    windows = plan(
        ms, size, source_size, window=window, long_match=long_match, copy_max=copy_max,
        margin=margin, region_max=region_max, near=near,
    )  # fmt: skip
    pos = 0
    for w in windows:
        assert w.start == pos < w.end <= size
        pos = w.end
        if isinstance(w, Copy):
            assert w.end - w.start <= copy_max
            # Inside one long match, at the same diagonal.
            assert any(
                s <= w.start <= w.end <= e and e - s >= long_match and src - s == w.source - w.start
                for s, e, src in ms
            )
        elif isinstance(w, Local):
            assert w.end - w.start <= window
            assert 0 <= w.lo <= w.hint < w.hi <= source_size
            assert w.hi - w.lo <= max(region_max, w.end - w.start + 2 * margin)
        else:
            assert isinstance(w, Plain) and w.end - w.start <= window
    assert pos == size
    # Every long match is copied whole.
    copied = sum(w.end - w.start for w in windows if isinstance(w, Copy))
    assert copied == sum(e - s for s, e, _ in ms if e - s >= long_match)


@settings(max_examples=60, deadline=None)
@given(pairs(max_size=256 << 10), encoder_options)
def test_large_reference_path_round_trips(pair: tuple[bytes, bytes, str], options: dict) -> None:
    ref, tgt, _ = pair
    with local_mode(
        LOCAL_BLOCK=64 << 10, COPY_WINDOW=16 << 10, LONG_MATCH=1024, REGION_MAX=32 << 10,
        REGION_MARGIN=1024,
    ):  # fmt: skip
        enc = Encoder(ref, **options)
        delta = enc.encode(tgt)
    assert Decoder(ref).decode(delta, max_output_size=len(tgt)) == tgt
    if ref and ref == tgt:
        assert len(delta) < 64 + 30 * (len(ref) // (16 << 10) + 1)
