"""What the encoder fuzzer checks for one input; shared by the atheris harness and the tests.

One input drives all the native code of the large-reference path (``deltaglider._xdelta3``:
``AnchorIndex``, ``LocalEncoder``, ``copy_window``, ``compose_window``, ``LzmaSections``) and
the Python that plans with it (``_codec/plan.py``, ``_codec/encode.py``). Its first
:data:`HEADER` bytes are knobs (which reference, index and encoder parameters, thresholds,
stretches); the rest is a script that builds the target from the reference (copies, literal
bytes, runs, random bytes, repeats of the target so far), or, in one mode, the reference and
target themselves (the input's two halves). Then:

a. ``AnchorIndex`` built whole (``build=True``) and in parts (``index_part``, in an
   input-chosen order) must agree (the same anchors, the same matches) unless the table was
   filled to its limit; every match must be exact, in order, not overlapping, at least
   ``min_length`` long and maximal; out-of-range arguments raise ``ValueError``;
b. with the thresholds scaled down (``tests/codec_modes.py``, ``local_mode``: blocks of a few
   KiB, one thread), ``Encoder(ref, secondary=s).encode(tgt)`` must decode back to the
   target, one-shot and through ``copy_stream`` fed by short reads; then the streamed encode
   (other blocks) must too, or ``max_delta_size`` around the delta's size is refused exactly
   when the delta is larger, else gives the same delta. ``s`` (none, DJW or LZMA) and which of
   the two are the input's choice; ``check(data, every_secondary=True)`` runs all;
c. ``LzmaSections.recode`` of the raw input, of a real window and of a mutated one returns
   bytes or raises ``ValueError``/``EncodeError``; what it returns is one well-framed window
   (``scan_window_header``), and a real window's recoding decodes to the same bytes;
d. ``LocalEncoder.encode_window`` with an input-chosen stretch and hint: ``ValueError`` for a
   bad stretch or an oversized target, else a window that decodes to the target;
e. ``copy_window`` of reference bytes decodes back to them; of bytes that are not there, or
   past the reference's end, the decoder refuses it (``DecodeError``);
f. ``compose_window`` of the matches found in (a) decodes to the target; with one copy moved
   by the input, ``ValueError`` when the copies are out of order or out of the target, else a
   window that decodes to the target or that the decoder refuses.

Accepted outcomes only: anything else raises ``AssertionError`` with what was wrong (or lets
an unexpected exception through), and crashes, sanitizer reports, hangs and memory growth are
the fuzzer's to catch. One input's work is kept to about a millisecond on the plain build
(10 to 100 ms under ASan): references of at most 24 KiB, targets of at most 16 KiB.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

from deltaglider import _xdelta3
from deltaglider._codec import tuning
from deltaglider.codec import Decoder, Encoder
from deltaglider.errors import DecodeError, DeltaTooLargeError, EncodeError

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
try:
    from codec_modes import local_mode
except ImportError:  # the harness: the helper lives with the tests
    sys.path.append(str(HERE.parent / "tests"))
    from codec_modes import local_mode

from decoder_target import SOURCE, ShortReader  # noqa: E402

#: Knob bytes at the start of an input (missing ones read as 0).
HEADER = 17
#: Bounds that keep one input's work small.
MAX_REFERENCE = 24 << 10
MAX_TARGET = 16 << 10
MAX_OPS = 48
#: Window size of the encoders (the smallest Encoder accepts).
WINDOW = 4096
#: The file header of a delta whose windows were recoded by LzmaSections (as encode.py writes).
LZMA_HEADER = b"\xd6\xc3\xc4\x00\x01\x02"
#: Anchor bits AnchorIndex accepts.
ANCHOR_BITS = range(1, 33)

SECONDARIES = ("none", "djw", "lzma")


class Knobs:
    """The input's first bytes, read as small integers."""

    def __init__(self, data: bytes) -> None:
        # 0 mode, 1-2 reference length, 3-6 AnchorIndex (bits, table, parts, min_length),
        # 7 level, 8-9 local_mode's thresholds and the secondary streamed, 10-13 two u16
        # (short reads, read_size, the local stretch), 14-15 small choices (max_delta_size,
        # LzmaSections, hints, offsets), 16 LocalEncoder's configuration.
        self._b = data[:HEADER].ljust(HEADER, b"\0")

    def byte(self, i: int) -> int:
        return self._b[i]

    def u16(self, i: int) -> int:
        return self._b[i] | self._b[i + 1] << 8


class Script:
    """Reads the script bytes; exhausted reads give 0."""

    def __init__(self, data: bytes) -> None:
        self._d = data
        self._pos = 0

    def more(self) -> bool:
        return self._pos < len(self._d)

    def byte(self) -> int:
        if self._pos >= len(self._d):
            return 0
        self._pos += 1
        return self._d[self._pos - 1]

    def u16(self) -> int:
        return self.byte() | self.byte() << 8

    def take(self, n: int) -> bytes:
        out = self._d[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def build_target(ref: bytes, script: bytes) -> bytes:
    """The target the script describes; an empty script gives the reference itself."""
    if not script:
        return ref[:MAX_TARGET]
    s = Script(script)
    out = bytearray()
    ops = 0
    while s.more() and ops < MAX_OPS and len(out) < MAX_TARGET:
        ops += 1
        op = s.byte() % 5
        if op == 0:  # a stretch of the reference
            off = s.u16() % (len(ref) + 1)
            out += ref[off : off + 1 + s.u16() % 8192]
        elif op == 1:  # literal bytes of the script
            out += s.take(1 + s.byte() % 32)
        elif op == 2:  # a run of one byte
            value = s.byte()
            out += bytes((value,)) * (1 + s.u16() % 4096)
        elif op == 3:  # random bytes (nothing in common with anything)
            seed = s.byte()
            out += random.Random(seed).randbytes(1 + s.u16() % 4096)
        else:  # a repeat of the target so far
            off = s.u16() % (len(out) + 1)
            out += out[off : off + 1 + s.u16() % 4096]
    return bytes(out[:MAX_TARGET])


def derive(data: bytes) -> tuple[bytes, bytes]:
    """The reference and target of an input (see the module's docstring)."""
    k = Knobs(data)
    body = data[HEADER:]
    mode = k.byte(0) % 4
    sel = k.u16(1)
    if mode == 0:  # the corpus's fixed reference, cut to a length
        ref = SOURCE[: sel % (len(SOURCE) + 1)]
    elif mode == 1:  # the script itself
        ref = body[:MAX_REFERENCE]
    elif mode == 2:  # periodic: the same anchors over and over
        period = body[: 1 + sel % 512]
        ref = (period * (MAX_REFERENCE // max(1, len(period)) + 1))[: sel % MAX_REFERENCE]
    else:  # the two halves of the input
        cut = sel % (len(body) + 1)
        return body[:cut][:MAX_REFERENCE], body[cut:][:MAX_TARGET]
    return ref, build_target(ref, body)


# --- a. the anchor index ---------------------------------------------------------------------


def _check_matches(ref: bytes, tgt: bytes, found: list, min_length: int, what: str) -> None:
    last = 0
    for start, end, src in found:
        m = f"{what}: match ({start}, {end}, {src}) after {last}"
        assert last <= start < end <= len(tgt), f"{m}: out of order or out of the target"
        assert end - start >= max(64, min_length), f"{m}: shorter than {min_length}"
        assert src + (end - start) <= len(ref), f"{m}: past the reference's end"
        assert tgt[start:end] == ref[src : src + end - start], f"{m}: bytes differ"
        src_end = src + end - start
        assert end == len(tgt) or src_end == len(ref) or tgt[end] != ref[src_end], (
            f"{m}: not extended forward as far as it goes"
        )
        assert start == last or src == 0 or tgt[start - 1] != ref[src - 1], (
            f"{m}: not extended backward as far as it goes"
        )
        last = end


def check_anchors(ref: bytes, tgt: bytes, k: Knobs) -> list[tuple[int, int, int]]:
    """Returns the matches found (none when the input's anchor_bits are refused)."""
    b = k.byte(3)
    # Mostly 3..7; now and then anything from -1 to 64, some out of range.
    bits = 3 + b % 5 if b < 224 else (-1, 0, 1, 2, 8, 12, 20, 31, 32, 33, 63, 64)[b % 12]
    table = 1 << (6 + k.byte(4) % 16)
    parts = 1 + k.byte(5) % 6
    min_length = 0 if k.byte(6) < 128 else 64 + 8 * (k.byte(6) - 128)
    if bits not in ANCHOR_BITS:
        for build in (True, False):
            try:
                _xdelta3.AnchorIndex(ref, bits, table, build=build)
            except ValueError:
                continue
            raise AssertionError(f"AnchorIndex accepted anchor_bits={bits}")
        return []
    whole = _xdelta3.AnchorIndex(ref, bits, table)
    split = _xdelta3.AnchorIndex(ref, bits, table, build=False)
    assert split.anchors == 0, "an index built with build=False has anchors before index_part"
    order = list(range(parts))
    random.Random(k.byte(5)).shuffle(order)
    for part in order:
        split.index_part(ref, part, parts)
    for bad in ((parts, parts), (0, 0)):
        try:
            split.index_part(ref, *bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"index_part accepted part, parts = {bad}")
    try:
        whole.matches(ref + b"x", tgt)
    except ValueError:
        pass
    else:
        raise AssertionError("matches accepted a source of another length")

    got = whole.matches(ref, tgt, min_length)
    _check_matches(ref, tgt, got, min_length, "AnchorIndex(build=True).matches")
    in_parts = split.matches(ref, tgt, min_length)
    _check_matches(ref, tgt, in_parts, min_length, "AnchorIndex(build=False).matches")
    # The table stops filling at 3/4 (degenerate references); each part at its share. Below
    # those limits the two ways give the same table.
    slots = whole.table_bytes // 8
    if whole.anchors * 4 <= (slots - 1) * 3 and whole.anchors <= (slots * 3 // 4) // parts:
        assert split.anchors == whole.anchors, (
            f"anchors: {whole.anchors} built whole, {split.anchors} in {parts} parts {order}"
        )
        assert in_parts == got, f"matches differ between the whole index and {parts} parts"
    if tgt:
        segments = whole.segment(tgt, 64, 256)
        pos = 0
        for lo, hi, _shared, _hint in segments:
            assert lo == pos and hi > lo, f"segment() does not cover the target: {segments}"
            pos = hi
        assert pos == len(tgt), f"segment() does not cover the target: {segments}"
    return got


# --- b. the encoder's large-reference path ---------------------------------------------------


def _decode_both_ways(ref: bytes, delta: bytes, tgt: bytes, step: int, what: str) -> None:
    try:
        out = Decoder(ref, threads=1).decode(delta, max_output_size=len(tgt))
    except DecodeError as exc:
        raise AssertionError(f"{what}: the delta does not decode: {exc}") from exc
    assert out == tgt, f"{what}: decodes to {len(out)} bytes that are not the target"
    sink = io.BytesIO()
    try:
        Decoder(ref).copy_stream(ShortReader(delta, step), sink, max_output_size=len(tgt))
    except DecodeError as exc:
        raise AssertionError(f"{what}: copy_stream refuses the delta: {exc}") from exc
    assert sink.getvalue() == tgt, f"{what}: copy_stream gives other bytes than the target"


def check_encoder(ref: bytes, tgt: bytes, k: Knobs, every_secondary: bool = False) -> None:
    b8, b9 = k.byte(8), k.byte(9)
    level = 1 + k.byte(7) % 9
    step = 32 + k.u16(10) % 1024  # short reads, not byte by byte
    scaled = {
        "LOCAL_BLOCK": 4096 << (b8 & 3),
        "LONG_MATCH": 128 << (b8 >> 2 & 3),
        "COPY_WINDOW": 1024 << (b8 >> 4 & 3),
        "LOCAL_ANCHOR_BITS": 4 + (b8 >> 6),
        "REGION_MAX": 2048 << (b9 & 3),
        "REGION_MARGIN": 64 << (b9 >> 2 & 3),
        "PROBE_MIN_GAP": 1024 << (b9 >> 4 & 3),
    }
    chosen = SECONDARIES[(b9 >> 6) % 3]
    # liblzma's preset changes nothing of ours but its memory (fresh pages under ASan: a
    # preset-2 encoder costs a fuzzing run more than the rest of an input).
    with local_mode(**scaled, LZMA_DATA_PRESET=0):
        for secondary in SECONDARIES if every_secondary else (chosen,):
            what = f"Encoder(secondary={secondary!r}, level={level}, {scaled})"
            enc = Encoder(ref, secondary=secondary, level=level, window_size=WINDOW, threads=1)
            assert enc._windows.local, "local_mode did not select the large-reference path"
            delta = enc.encode(tgt)
            _decode_both_ways(ref, delta, tgt, step, what)
            if secondary != chosen:
                continue
            if every_secondary or k.u16(12) & 1:
                # Streamed: other blocks, another delta, as exact.
                streamed = io.BytesIO()
                read_size = 512 + k.u16(12) % 8192
                enc.copy_stream(ShortReader(tgt, step), streamed, read_size=read_size)
                _decode_both_ways(ref, streamed.getvalue(), tgt, step, f"{what}, streamed")
            if every_secondary or not k.u16(12) & 1:
                _check_max_delta_size(enc, tgt, delta, len(delta) + k.byte(14) % 9 - 4, what)


def _check_max_delta_size(enc: Encoder, tgt: bytes, delta: bytes, limit: int, what: str) -> None:
    """max_delta_size: refused exactly when the delta is larger than it."""
    try:
        bounded = enc.encode(tgt, max_delta_size=limit)
    except DeltaTooLargeError:
        assert limit < len(delta), (
            f"{what}: max_delta_size={limit} refused a delta of {len(delta)} bytes"
        )
    else:
        assert limit >= len(delta), (
            f"{what}: max_delta_size={limit} gave a delta of {len(delta)} bytes"
        )
        assert bounded == delta, f"{what}: max_delta_size changed the delta"


# --- c. LzmaSections --------------------------------------------------------------------------


def recode_checked(
    sections: _xdelta3.LzmaSections, window: bytes, what: str, entropy: float = 7.9
) -> bytes | None:
    """``sections.recode(window)``: None when refused, else the window, checked to be framed."""
    try:
        out = sections.recode(window, entropy)
    except (ValueError, EncodeError):
        return None
    assert isinstance(out, bytes), f"{what}: recode returned {type(out).__name__}"
    try:
        length, _target, need, _compressed = _xdelta3.scan_window_header(out, 0, True)
    except DecodeError as exc:
        raise AssertionError(
            f"{what}: recode accepted {window.hex()} and returned a window the decoder "
            f"refuses: {exc} ({out.hex()})"
        ) from exc
    assert need == 0 and length == len(out), (
        f"{what}: recode returned {len(out)} bytes that are not one window "
        f"(framed as {length}, need {need})"
    )
    return out


def check_recode(data: bytes, window: bytes, target: bytes, ref: bytes, k: Knobs) -> None:
    b = k.byte(15)
    sections = _xdelta3.LzmaSections(b & 1, b >> 1 & 1)
    recode_checked(sections, data, "recode(the input)")
    if not window:
        return
    # A real window (no secondary compression), mutated: one byte set, or cut short.
    bad = bytearray(window)
    i = k.u16(12) % len(bad)
    if b & 0x80:
        del bad[i:]
    else:
        bad[i] = k.byte(14)
    recode_checked(sections, bytes(bad), "recode(a mutated window)")
    # The same window untouched, first on a fresh recoder: it decodes to its target.
    fresh = _xdelta3.LzmaSections(b & 1, b >> 1 & 1)
    out = recode_checked(fresh, window, "recode(a window of LocalEncoder)", 6.0 + (b >> 2) % 3)
    assert out is not None, "recode refused a window of LocalEncoder"
    try:
        got = Decoder(ref, threads=1).decode(LZMA_HEADER + out, max_output_size=len(target))
    except DecodeError as exc:
        raise AssertionError(f"a recoded window does not decode: {exc}") from exc
    assert got == target, "a recoded window decodes to other bytes"


# --- d. LocalEncoder --------------------------------------------------------------------------


def check_local_encoder(ref: bytes, tgt: bytes, k: Knobs) -> tuple[bytes, bytes]:
    """One window of LocalEncoder; returns it (b"" if refused) and its target."""
    b = k.byte(16)
    matchers: list[object] = [1, 2, 3, 4, tuning.matcher(6, len(ref))]
    matcher = matchers[b % 5]
    secondary = b >> 3 & 1
    window_size = 64 << (b >> 5 & 7)
    enc = _xdelta3.LocalEncoder(
        ref,
        matcher=matcher,
        window_size=window_size,
        secondary=secondary,
        level=1 + k.byte(7) % 9,
        compress_data=bool(b & 0x10),
    )
    lo = k.u16(10) % (len(ref) + 2)
    hi = lo + k.u16(12) % 4096
    start = (k.u16(10) * 7) % (len(tgt) + 1)
    piece = tgt[start : start + window_size + (1 if k.byte(14) & 1 else 0)]
    hint = (0, lo + k.byte(14), hi, 1 << 63 | k.u16(12))[k.byte(15) >> 4 & 3]
    what = f"LocalEncoder.encode_window({len(piece)} bytes, lo={lo}, hi={hi}, hint={hint})"
    bad = lo >= hi or hi > len(ref) or len(piece) > window_size
    try:
        window = enc.encode_window(piece, lo, hi, hint)
    except ValueError:
        assert bad, f"{what} refused a valid stretch"
        return b"", b""
    assert not bad, f"{what} accepted a bad stretch (reference of {len(ref)} bytes)"
    if not piece:
        assert window == b"", f"{what}: an empty target gives {window!r}"
        return b"", b""
    try:
        got = Decoder(ref, threads=1).decode(enc.header + window, max_output_size=len(piece))
    except DecodeError as exc:
        raise AssertionError(f"{what}: the window does not decode: {exc}") from exc
    assert got == piece, f"{what}: the window decodes to other bytes"
    return (window, piece) if secondary == 0 else (b"", b"")


# --- e. copy_window ---------------------------------------------------------------------------


def check_copy_window(ref: bytes, tgt: bytes, k: Knobs) -> None:
    header = b"\xd6\xc3\xc4\x00\x00"
    try:
        _xdelta3.copy_window(b"", 0)
    except ValueError:
        pass
    else:
        raise AssertionError("copy_window accepted an empty target")
    decoder = Decoder(ref, threads=1)
    if ref:
        off = k.u16(1) % len(ref)
        piece = ref[off : off + 1 + k.u16(12) % 8192]
        try:
            got = decoder.decode(
                header + _xdelta3.copy_window(piece, off), max_output_size=len(piece)
            )
        except DecodeError as exc:
            raise AssertionError(f"copy_window({len(piece)} bytes, {off}): {exc}") from exc
        assert got == piece, f"copy_window({len(piece)} bytes, {off}) decodes to other bytes"
    # Bytes of the target at an input-chosen offset, perhaps not the reference's, perhaps past
    # its end: the same bytes back, or DecodeError (checksum, segment out of range).
    piece = tgt[: 1 + k.byte(4) * 16]
    if not piece:
        return
    off = (k.u16(10), len(ref), 1 << 62, (1 << 64) - 1)[k.byte(15) >> 6]
    try:
        window = _xdelta3.copy_window(piece, off)
    except (ValueError, OverflowError) as exc:
        raise AssertionError(f"copy_window({len(piece)} bytes, {off}) refused: {exc}") from exc
    try:
        got = decoder.decode(header + window, max_output_size=len(piece))
    except DecodeError:
        assert ref[off : off + len(piece)] != piece, (
            f"copy_window({len(piece)} bytes, {off}) of bytes that are there does not decode"
        )
        return
    assert got == piece == ref[off : off + len(piece)], (
        f"copy_window({len(piece)} bytes, {off}) decodes to bytes that are not there"
    )


# --- f. compose_window ------------------------------------------------------------------------


def check_compose_window(
    ref: bytes, tgt: bytes, found: list[tuple[int, int, int]], k: Knobs
) -> None:
    """The matches found (true copies) compose a window that decodes to the target; copies
    moved by the input are refused when out of order or out of the target, else give a window
    that decodes to the target or is refused by the decoder (checksum, segment)."""
    header = b"\xd6\xc3\xc4\x00\x00"
    decoder = Decoder(ref, threads=1)
    if not tgt:
        try:
            _xdelta3.compose_window(tgt, [])
        except ValueError:
            return
        raise AssertionError("compose_window accepted an empty target")
    copies = [(s, e, src) for s, e, src in found]
    try:
        got = decoder.decode(
            header + _xdelta3.compose_window(tgt, copies), max_output_size=len(tgt)
        )
    except DecodeError as exc:
        raise AssertionError(f"compose_window of {len(copies)} true copies: {exc}") from exc
    assert got == tgt, f"compose_window of {len(copies)} true copies decodes to other bytes"
    # The input moves one copy's start, end or source, or adds one of its own.
    b, shift = k.byte(14), k.byte(6) - 128
    if copies and b % 4 < 3:
        i = k.u16(10) % len(copies)
        s, e, src = copies[i]
        s, e, src = [(s + shift, e, src), (s, e + shift, src), (s, e, src + shift)][b % 4]
        copies[i] = (max(0, s), max(0, e), max(0, src))
    else:
        start = k.u16(10) % (len(tgt) + 1)
        copies.append((start, start + 1 + k.u16(12) % 4096, k.u16(1) + (b >> 7 << 63)))
        copies.sort()
    what = f"compose_window(target of {len(tgt)} bytes, {copies})"
    pos, valid, true = 0, True, True
    for s, e, src in copies:
        valid = valid and pos <= s < e <= len(tgt)
        true = true and ref[src : src + e - s] == tgt[s:e]
        pos = e
    try:
        window = _xdelta3.compose_window(tgt, copies)
    except ValueError:
        assert not valid, f"{what} refused valid copies"
        return
    assert valid, f"{what} accepted copies out of order or out of the target"
    try:
        got = decoder.decode(header + window, max_output_size=len(tgt))
    except DecodeError:
        assert not true, f"{what}: copies of bytes that are there do not decode"
        return
    assert got == tgt, f"{what}: decodes to other bytes than the target"


def check(data: bytes, *, every_secondary: bool = False) -> None:
    """The fuzz target: raises on a finding; the accepted outcomes never escape.

    The encoder runs with the secondary compressor the input chooses, and then either encodes
    the target streamed or under max_delta_size (each encode costs a fuzzing run dearly: under
    ASan, every window's xdelta3 stream is fresh pages); ``every_secondary`` (the tests'
    corpus replay and fixed-seed loop) runs all three, and both checks.
    """
    k = Knobs(data)
    ref, tgt = derive(data)
    found = check_anchors(ref, tgt, k)
    check_encoder(ref, tgt, k, every_secondary)
    window, piece = check_local_encoder(ref, tgt, k)
    check_recode(data, window, piece, ref, k)
    check_copy_window(ref, tgt, k)
    check_compose_window(ref, tgt, found, k)
