# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, embedsignature=True
"""Private binding of the vendored xdelta3 3.1.1 library; ``deltaglider.codec`` is the public API.

What lives here is only what has to be native: driving xdelta3's encode and decode state machines
without the GIL, holding the caller's buffers for the whole C call, and parsing VCDIFF framing
(file header, window boundaries) so windows can be decoded independently. Policy (defaults,
threading, streaming, limits) is in ``codec.py``.

Two xdelta3 internals are used on purpose, both fields of the public ``xd3_stream`` struct:

* The source index (``large_table``) is built once per reference by an "owner" stream and lent
  to every stream that encodes against that reference (``srcwin_cksum_pos`` set to the end of
  the source tells xdelta3 the index is complete). Windows are then encoded by independent
  streams in parallel without rebuilding a 32 MiB table for each.
* The decoder writes a window straight into the caller's output (``next_out``/``space_out`` set
  when xdelta3 reports the window header), which saves a copy of every reconstructed byte.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memset, memcpy, memcmp
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.math cimport log2
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo,
                             PyBUF_SIMPLE, PyBUF_WRITABLE)
from cpython.bytes cimport PyBytes_FromStringAndSize

from deltaglider.errors import DecodeError, EncodeError


cdef extern from "dg_xd3.h" nogil:
    # The real typedefs (64-bit on every supported platform) come from the header; Cython only
    # needs to know these are unsigned integers.
    ctypedef unsigned long long usize_t
    ctypedef unsigned long long xoff_t

    ctypedef enum xd3_rvalues:
        XD3_INPUT
        XD3_OUTPUT
        XD3_GETSRCBLK
        XD3_GOTHEADER
        XD3_WINSTART
        XD3_WINFINISH
        XD3_TOOFARBACK
        XD3_INTERNAL
        XD3_INVALID
        XD3_INVALID_INPUT
        XD3_NOSECOND
        XD3_UNIMPLEMENTED

    ctypedef enum xd3_flags:
        XD3_FLUSH
        XD3_SEC_DJW
        XD3_SEC_FGK
        XD3_SEC_LZMA
        XD3_SEC_NODATA
        XD3_SEC_NOINST
        XD3_SEC_NOADDR
        XD3_ADLER32
        XD3_ADLER32_NOVER
        XD3_ADLER32_RECODE
        XD3_NOCOMPRESS
        XD3_COMPLEVEL_SHIFT

    ctypedef enum xd3_smatch_cfg:
        XD3_SMATCH_DEFAULT
        XD3_SMATCH_SLOW
        XD3_SMATCH_FAST
        XD3_SMATCH_FASTER
        XD3_SMATCH_FASTEST
        XD3_SMATCH_SOFT

    ctypedef enum xd3_match_state:
        MATCH_TARGET
        MATCH_SEARCHING

    ctypedef struct xd3_smatcher:
        usize_t large_look
        usize_t large_step
        usize_t small_look
        usize_t small_chain
        usize_t small_lchain
        usize_t max_lazy
        usize_t long_enough

    ctypedef struct xd3_config:
        usize_t winsize
        usize_t sprevsz
        usize_t iopt_size
        uint32_t flags
        xd3_smatch_cfg smatch_cfg
        xd3_smatcher smatcher_soft

    ctypedef struct xd3_source:
        usize_t blksize
        const char *name
        xoff_t max_winsize
        xoff_t curblkno
        usize_t onblk
        const uint8_t *curblk

    ctypedef struct xd3_hash_cfg:
        usize_t size

    ctypedef struct xd3_stream:
        xd3_smatcher smatcher
        const uint8_t *next_in
        usize_t avail_in
        uint8_t *next_out
        usize_t avail_out
        usize_t space_out
        const char *msg
        usize_t *large_table
        xd3_hash_cfg large_hash
        xoff_t srcwin_cksum_pos
        xd3_match_state match_state
        xoff_t match_srcpos
        xoff_t match_last_srcpos
        xoff_t current_window
        usize_t dec_tgtlen
        uint32_t recode_adler32
        usize_t dec_win_ind
        uint32_t dec_adler32

    int xd3_config_stream(xd3_stream *stream, xd3_config *config)
    int xd3_set_source_and_size(xd3_stream *stream, xd3_source *source, xoff_t source_size)
    int xd3_encode_input(xd3_stream *stream)
    int xd3_decode_input(xd3_stream *stream)
    void xd3_free_stream(xd3_stream *stream)
    void xd3_avail_input(xd3_stream *stream, const uint8_t *idata, usize_t isize)
    void xd3_consume_output(xd3_stream *stream)
    const char *xd3_strerror(int ret)

    uint32_t dg_adler32(const uint8_t *p, size_t n)
    int dg_anchor_put(uint64_t *slots, size_t mask, size_t slot, uint64_t tag, uint64_t value,
                      uint64_t tag_mask)


cdef extern from "lzma.h" nogil:
    ctypedef struct lzma_stream:
        const uint8_t *next_in
        size_t avail_in
        uint8_t *next_out
        size_t avail_out
    ctypedef enum lzma_ret:
        LZMA_OK
        LZMA_STREAM_END
    ctypedef enum lzma_action:
        LZMA_SYNC_FLUSH
    ctypedef enum lzma_check:
        LZMA_CHECK_NONE
    lzma_ret lzma_easy_encoder(lzma_stream *strm, uint32_t preset, lzma_check check)
    lzma_ret lzma_code(lzma_stream *strm, lzma_action action)
    void lzma_end(lzma_stream *strm)


# --- VCDIFF framing (RFC 3284 section 4, with xdelta3's secondary-compression extension) --------

cdef enum:
    VCD_SECONDARY = 0x01  # header indicator bits
    VCD_CODETABLE = 0x02
    VCD_APPHEADER = 0x04
    VCD_SOURCE = 0x01  # window indicator bits
    VCD_TARGET = 0x02
    VCD_ADLER32 = 0x04
    C_HARD_MAX_WINDOW = 1 << 26
    C_MAX_APPHEADER = 1 << 20
    NEED_MORE = 0  # parser outcomes other than a length
    BAD = -1

#: xdelta3 refuses target windows above this (XD3_HARDMAXWINSIZE): the per-window memory bound.
HARD_MAX_WINDOW = C_HARD_MAX_WINDOW
#: Application headers above this are refused before anything is allocated for them.
MAX_APPHEADER = C_MAX_APPHEADER

SECONDARY_NONE = 0
SECONDARY_DJW = 1
SECONDARY_LZMA = 2
SECONDARY_FGK = 16


cdef struct WindowInfo:
    Py_ssize_t length      # bytes of the whole window, from the window indicator on
    Py_ssize_t need        # when NEED_MORE: total bytes needed, or 0 if not known yet
    usize_t target_length  # bytes this window reconstructs
    int indicator
    int compressed         # the delta indicator: which sections are secondary-compressed
    const char *error


cdef inline Py_ssize_t read_varint(const uint8_t *p, Py_ssize_t n, Py_ssize_t pos,
                                   uint64_t *value) noexcept nogil:
    """Reads a VCDIFF integer at p[pos]; returns the position after it, NEED_MORE or BAD."""
    cdef uint64_t v = 0
    cdef int i
    cdef uint8_t b
    for i in range(10):
        if pos >= n:
            return NEED_MORE
        b = p[pos]
        pos += 1
        if v > 0x01FFFFFFFFFFFFFFULL:  # another 7 bits would overflow 64
            return BAD
        v = (v << 7) | (b & 0x7F)
        if not (b & 0x80):
            value[0] = v
            return pos
    return BAD


cdef Py_ssize_t parse_file_header(const uint8_t *p, Py_ssize_t n, int *secondary,
                                  const char **error) noexcept nogil:
    """Length of the VCDIFF file header at p, NEED_MORE, or BAD with *error set."""
    cdef Py_ssize_t pos
    cdef uint64_t applen = 0
    cdef int ind, sec
    cdef bint bad_magic
    if n < 5:
        bad_magic = (n > 0 and p[0] != 0xD6) or (n > 1 and p[1] != 0xC3) or \
            (n > 2 and p[2] != 0xC4)
        if bad_magic:
            error[0] = "not a VCDIFF delta (bad magic)"
            return BAD
        return NEED_MORE
    if p[0] != 0xD6 or p[1] != 0xC3 or p[2] != 0xC4:
        error[0] = "not a VCDIFF delta (bad magic)"
        return BAD
    if p[3] != 0:
        error[0] = "unsupported VCDIFF version"
        return BAD
    ind = p[4]
    pos = 5
    if ind & ~0x07:
        error[0] = "unrecognized VCDIFF header indicator bits"
        return BAD
    if ind & VCD_CODETABLE:
        error[0] = "VCDIFF application-defined code tables are not supported"
        return BAD
    secondary[0] = 0
    if ind & VCD_SECONDARY:
        if pos >= n:
            return NEED_MORE
        sec = p[pos]
        pos += 1
        if sec != 1 and sec != 2 and sec != 16:
            error[0] = "unknown secondary compressor ID"
            return BAD
        secondary[0] = sec
    if ind & VCD_APPHEADER:
        pos = read_varint(p, n, pos, &applen)
        if pos == BAD:
            error[0] = "invalid application header length"
            return BAD
        if pos == NEED_MORE:
            return NEED_MORE
        if applen > C_MAX_APPHEADER:
            error[0] = "application header too large"
            return BAD
        if <uint64_t>(n - pos) < applen:
            return NEED_MORE
        pos += <Py_ssize_t>applen
    return pos


cdef Py_ssize_t scan_window(const uint8_t *p, Py_ssize_t n, bint has_secondary,
                            WindowInfo *info) noexcept nogil:
    """Validates the framing of the window at p (the whole of it once it is available).

    Everything xdelta3 would allocate from is bounded here first: the target length by
    xdelta3's hard window limit, and each secondary-compressed section's decoded size by what a
    window of that length can legitimately need, so a hostile delta cannot make the decoder
    allocate memory out of proportion to the output it is allowed to produce.
    """
    cdef Py_ssize_t pos = 0, start, body, end, sect
    cdef uint64_t cpylen = 0, cpyoff = 0, enclen = 0, tgtlen = 0
    cdef uint64_t lens[3]
    cdef uint64_t declen = 0, limit
    cdef int ind, delind, k
    info.need = 0
    info.error = NULL
    if n < 1:
        return NEED_MORE
    ind = p[0]
    pos = 1
    if ind & ~0x07:
        info.error = "unrecognized window indicator bits"
        return BAD
    if (ind & VCD_SOURCE) and (ind & VCD_TARGET):
        info.error = "window copies from both source and target"
        return BAD
    if ind & VCD_TARGET:
        info.error = "VCD_TARGET windows are not supported"
        return BAD
    if ind & VCD_SOURCE:
        pos = read_varint(p, n, pos, &cpylen)
        if pos <= 0:
            return _varint_outcome(pos, info, "invalid source segment length")
        pos = read_varint(p, n, pos, &cpyoff)
        if pos <= 0:
            return _varint_outcome(pos, info, "invalid source segment offset")
        if cpyoff + cpylen < cpyoff:
            info.error = "source segment overflows"
            return BAD
    pos = read_varint(p, n, pos, &enclen)
    if pos <= 0:
        return _varint_outcome(pos, info, "invalid delta encoding length")
    start = pos
    # A window encodes at most C_HARD_MAX_WINDOW bytes; its instructions and addresses can take a
    # few times that at most. Anything larger is garbage, not a large window.
    if enclen > <uint64_t>C_HARD_MAX_WINDOW * 8:
        info.error = "delta window encoding length too large"
        return BAD
    end = start + <Py_ssize_t>enclen
    if n < end:
        info.need = end
        return NEED_MORE
    pos = read_varint(p, end, pos, &tgtlen)
    if pos <= 0:
        info.error = "invalid target window length"
        return BAD
    if tgtlen > C_HARD_MAX_WINDOW:
        info.error = "target window larger than xdelta3's hard limit (64 MiB)"
        return BAD
    if pos >= end:
        info.error = "truncated window header"
        return BAD
    delind = p[pos]
    pos += 1
    if delind & ~0x07:
        info.error = "unrecognized delta indicator bits"
        return BAD
    if delind and not has_secondary:
        info.error = "compressed sections without a secondary compressor"
        return BAD
    for k in range(3):
        pos = read_varint(p, end, pos, &lens[k])
        if pos <= 0:
            info.error = "invalid section length"
            return BAD
    if ind & VCD_ADLER32:
        pos += 4
    body = pos
    if body > end or <uint64_t>(end - body) != lens[0] + lens[1] + lens[2] or \
            lens[0] > enclen or lens[1] > enclen or lens[2] > enclen:
        info.error = "window section lengths do not match its encoding length"
        return BAD
    # Sections are data, instructions, addresses, in that order; a compressed one starts with
    # its decoded size. Data never exceeds the target; an instruction produces at least one
    # byte and takes a code byte plus at most two sizes; an address takes at most ten bytes
    # per copy.
    sect = body
    for k in range(3):
        if delind & (1 << k):
            if read_varint(p, sect + <Py_ssize_t>lens[k], sect, &declen) <= 0:
                info.error = "invalid compressed section size"
                return BAD
            if k == 0:
                limit = tgtlen
            elif k == 1:
                limit = 21 * tgtlen + 64
            else:
                limit = 10 * tgtlen + 64
            if declen > limit:
                info.error = "compressed section claims more data than the window can hold"
                return BAD
        sect += <Py_ssize_t>lens[k]
    info.length = end
    info.target_length = <usize_t>tgtlen
    info.indicator = ind
    info.compressed = delind
    return end


cdef inline Py_ssize_t _varint_outcome(Py_ssize_t pos, WindowInfo *info,
                                       const char *msg) noexcept nogil:
    if pos == NEED_MORE:
        return NEED_MORE
    info.error = msg
    return BAD


def file_header_length(data):
    """``(length, secondary_id)`` of the VCDIFF file header at the start of ``data``.

    ``length`` is 0 when ``data`` is a valid but incomplete prefix of a header.
    Raises DecodeError when ``data`` cannot start a VCDIFF delta.
    """
    cdef Py_buffer view
    cdef Py_ssize_t r
    cdef int sec = 0
    cdef const char *error = NULL
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        r = parse_file_header(<const uint8_t *>view.buf, view.len, &sec, &error)
    finally:
        PyBuffer_Release(&view)
    if r == BAD:
        raise DecodeError(error.decode())
    return (r if r > 0 else 0), sec


def scan_window_header(data, Py_ssize_t offset, bint has_secondary):
    """Frames the window starting at ``data[offset:]``.

    Returns ``(length, target_length, need, compressed)``: when the whole window is present,
    its length in bytes, the number of bytes it reconstructs and its delta indicator (non-zero
    when a section is secondary-compressed: with LZMA, only such windows need the stream's
    state); otherwise ``(0, 0, need, 0)`` where ``need`` is how many bytes from ``offset`` are
    needed (0 if not known yet: read more and ask again). Raises DecodeError for malformed
    framing.
    """
    cdef Py_buffer view
    cdef WindowInfo info
    cdef Py_ssize_t r
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if offset < 0 or offset > view.len:
            raise ValueError("offset out of range")
        r = scan_window(<const uint8_t *>view.buf + offset, view.len - offset, has_secondary,
                        &info)
    finally:
        PyBuffer_Release(&view)
    if r == BAD:
        raise DecodeError(info.error.decode())
    if r == NEED_MORE:
        return 0, 0, info.need, 0
    return r, info.target_length, 0, info.compressed


def scan_windows(data, Py_ssize_t offset, bint has_secondary):
    """Frames every window of a complete delta from ``offset`` on.

    Returns a list of ``(start, end, target_length)`` and raises DecodeError if the data ends
    inside a window or a window is malformed.
    """
    cdef Py_buffer view
    cdef WindowInfo info
    cdef Py_ssize_t r, pos = offset
    cdef const uint8_t *p
    out = []
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t *>view.buf
        while pos < view.len:
            r = scan_window(p + pos, view.len - pos, has_secondary, &info)
            if r == BAD:
                raise DecodeError(f"window {len(out)}: {info.error.decode()}")
            if r == NEED_MORE:
                raise DecodeError(f"truncated delta: window {len(out)} is incomplete")
            out.append((pos, pos + r, info.target_length))
            pos += r
    finally:
        PyBuffer_Release(&view)
    return out


# --- helpers ---------------------------------------------------------------------------------

cdef struct OutBuf:
    uint8_t *data
    size_t length
    size_t capacity


cdef int outbuf_append(OutBuf *b, const uint8_t *p, size_t n) noexcept nogil:
    cdef size_t cap
    cdef uint8_t *grown
    if b.length + n > b.capacity:
        cap = b.capacity * 2 if b.capacity else 65536
        while cap < b.length + n:
            cap *= 2
        grown = <uint8_t *>realloc(b.data, cap)
        if grown == NULL:
            return -1
        b.data = grown
        b.capacity = cap
    memcpy(b.data + b.length, p, n)
    b.length += n
    return 0


cdef str _message(int ret, const char *msg):
    """xdelta3's explanation of a failure: its stream message, else its name for the code."""
    cdef const char *name
    if msg != NULL and msg[0] != 0:
        return msg.decode("ascii", "replace")
    name = xd3_strerror(ret)
    if name != NULL:
        return name.decode("ascii", "replace")
    if ret == 12:  # ENOMEM
        return "out of memory"
    return f"xdelta3 error {ret}"


cdef usize_t _block_size_for(size_t n) noexcept nogil:
    """A power of two strictly above n: the whole source is one xdelta3 block, and its last
    block is never exactly full (xdelta3 would then ask for a following, empty block)."""
    cdef usize_t b = 1 << 14
    while b <= n:
        b <<= 1
    return b


cdef struct Stream:
    xd3_stream stream
    xd3_source source
    bint borrowed_table


cdef int stream_open(Stream *s, xd3_config *config, const uint8_t *src, size_t srclen,
                     usize_t blksize, Stream *owner) noexcept nogil:
    """Configures s against src; with an owner, s uses the owner's source index."""
    cdef int ret
    memset(s, 0, sizeof(Stream))
    ret = xd3_config_stream(&s.stream, config)
    if ret != 0:
        return ret
    if owner != NULL and (s.stream.smatcher.large_look != owner.stream.smatcher.large_look or
                          s.stream.smatcher.large_step != owner.stream.smatcher.large_step):
        # xdelta3 sizes and hashes the index from these two and the source window: a stream
        # that disagreed with the owner would index out of its table.
        s.stream.msg = "internal error: index configuration mismatch"
        return XD3_INTERNAL
    if srclen > 0:
        s.source.blksize = blksize
        s.source.max_winsize = blksize
        s.source.curblkno = 0
        s.source.onblk = srclen
        s.source.curblk = src
        ret = xd3_set_source_and_size(&s.stream, &s.source, srclen)
        if ret != 0:
            return ret
        if owner != NULL:
            s.stream.large_table = owner.stream.large_table
            s.stream.srcwin_cksum_pos = srclen
            s.borrowed_table = True
    return 0


cdef void stream_close(Stream *s) noexcept nogil:
    if s == NULL:
        return
    if s.borrowed_table:
        s.stream.large_table = NULL
    xd3_free_stream(&s.stream)
    free(s)


cdef int encode_one(Stream *s, const uint8_t *data, size_t n, bint has_source, xoff_t hint,
                    OutBuf *out) noexcept nogil:
    """Encodes data as exactly one window of stream s and appends the output to out."""
    cdef int ret
    if has_source:
        # Every window is encoded on its own, so start by trying the source where this
        # window's bytes sat in the source: for unchanged regions the match is found without
        # any hashing.
        s.stream.match_state = MATCH_TARGET
        s.stream.match_srcpos = hint
        s.stream.match_last_srcpos = 0
    # The window's checksum, computed here (SSE2, dg_xd3.h) rather than by xdelta3's scalar
    # loop: with XD3_ADLER32_RECODE instead of XD3_ADLER32 it writes the one it is given.
    s.stream.recode_adler32 = dg_adler32(data, n)
    xd3_avail_input(&s.stream, data, n)
    while True:
        ret = xd3_encode_input(&s.stream)
        if ret == XD3_OUTPUT:
            if outbuf_append(out, s.stream.next_out, s.stream.avail_out) != 0:
                s.stream.msg = "out of memory"
                return XD3_INTERNAL
            xd3_consume_output(&s.stream)
        elif ret == XD3_INPUT:
            return 0
        elif ret == XD3_WINSTART or ret == XD3_WINFINISH:
            continue
        elif ret == XD3_GETSRCBLK:
            s.stream.msg = "xdelta3 asked for a source block beyond the reference"
            return XD3_INTERNAL
        else:
            return ret


# --- encoder ---------------------------------------------------------------------------------

cdef bytes _configure(xd3_config *config, object matcher, size_t window_size, int secondary,
                      int level, size_t sprevsz, size_t iopt_size, bint compress_data):
    """Fills ``config`` for encoding; returns the VCDIFF file header its deltas start with."""
    cdef uint32_t flags
    # XD3_FLUSH: every input we hand xdelta3 is a whole window, never to be buffered.
    # XD3_ADLER32_RECODE: windows carry the Adler-32 that encode_one computes.
    flags = XD3_FLUSH | XD3_ADLER32_RECODE | <uint32_t>(level << XD3_COMPLEVEL_SHIFT)
    if secondary == 1:
        flags |= XD3_SEC_DJW
    elif secondary == 2:
        flags |= XD3_SEC_LZMA
    elif secondary != 0:
        raise ValueError("secondary must be 0 (none), 1 (DJW) or 2 (LZMA)")
    if secondary and not compress_data:
        # Secondary compression of the data section (the ADDed bytes) is where it costs
        # most and, for archives, gains least: those bytes are mostly compressed already.
        flags |= XD3_SEC_NODATA
    memset(config, 0, sizeof(xd3_config))
    config.winsize = window_size
    config.sprevsz = sprevsz
    config.iopt_size = iopt_size
    config.flags = flags
    if isinstance(matcher, int):
        # XD3_SMATCH_DEFAULT is not accepted: with it xdelta3 picks the matcher from the
        # level bits in the flags, which here only choose the LZMA preset.
        if matcher not in (XD3_SMATCH_SLOW, XD3_SMATCH_FAST, XD3_SMATCH_FASTER,
                           XD3_SMATCH_FASTEST):
            raise ValueError("unknown string-matcher preset")
        config.smatch_cfg = <xd3_smatch_cfg>matcher
    else:
        ll, ls, sl, sc, slc, ml, le = matcher
        if ll < 4 or ls < 1 or sl < 4 or sc < 1 or slc < 1:
            raise ValueError("invalid string-matcher parameters")
        config.smatch_cfg = XD3_SMATCH_SOFT
        config.smatcher_soft.large_look = ll
        config.smatcher_soft.large_step = ls
        config.smatcher_soft.small_look = sl
        config.smatcher_soft.small_chain = sc
        config.smatcher_soft.small_lchain = slc
        config.smatcher_soft.max_lazy = ml
        config.smatcher_soft.long_enough = le
    hdr = bytearray(b"\xd6\xc3\xc4\x00")
    if secondary:
        hdr += bytes((VCD_SECONDARY, secondary))
    else:
        hdr.append(0)
    return bytes(hdr)


cdef class EncoderCore:
    """A reference, its xdelta3 source index and one encoder configuration.

    ``matcher`` is xdelta3's string-matcher tuple ``(large_look, large_step, small_look,
    small_chain, small_lchain, max_lazy, long_enough)`` or an int naming a compiled preset
    (``XD3_SMATCH_*``). Windows are encoded by :class:`EncodeSession` objects.
    """

    cdef Py_buffer _view
    cdef bint _have_view
    cdef const uint8_t *_src
    cdef size_t _srclen
    cdef usize_t _blksize
    cdef xd3_config _config
    cdef Stream *_owner
    cdef readonly bytes header
    cdef readonly size_t window_size
    cdef readonly int secondary
    cdef readonly size_t index_bytes

    def __cinit__(self):
        self._have_view = False
        self._owner = NULL

    def __init__(self, source, *, object matcher, size_t window_size, int secondary=0,
                 int level=9, size_t sprevsz=1 << 18, size_t iopt_size=1 << 15,
                 bint compress_data=True):
        cdef uint32_t flags
        cdef int ret = 0
        cdef xd3_config owner_config
        cdef Stream *owner
        cdef const char *msg = NULL
        cdef uint8_t dummy[64]
        cdef OutBuf scratch

        if self._have_view:
            raise RuntimeError("EncoderCore is already initialized")
        if window_size < 64 or window_size > C_HARD_MAX_WINDOW:
            raise ValueError("window_size must be between 64 bytes and 64 MiB")
        if sprevsz & (sprevsz - 1) or sprevsz == 0:
            raise ValueError("sprevsz must be a power of two")
        if not 0 <= level <= 9:
            raise ValueError("level must be between 0 and 9")
        PyObject_GetBuffer(source, &self._view, PyBUF_SIMPLE)
        self._have_view = True
        self._src = <const uint8_t *>self._view.buf
        self._srclen = <size_t>self._view.len
        self._blksize = _block_size_for(self._srclen)
        self.window_size = window_size
        self.secondary = secondary

        self.header = _configure(&self._config, matcher, window_size, secondary, level,
                                 sprevsz, iopt_size, compress_data)
        flags = self._config.flags

        if self._srclen == 0:
            return
        # Build the source index once with an owner stream that exists only to hold it: a
        # small dummy window makes xdelta3 index the whole source (its window is the whole
        # source), without target matching or secondary compression.
        owner_config = self._config
        owner_config.winsize = 1 << 16
        owner_config.flags = XD3_FLUSH | XD3_NOCOMPRESS | (flags & 0xF00000)  # level bits
        memset(dummy, 0x5A, sizeof(dummy))
        memset(&scratch, 0, sizeof(OutBuf))
        owner = <Stream *>malloc(sizeof(Stream))
        if owner == NULL:
            raise MemoryError()
        with nogil:
            ret = stream_open(owner, &owner_config, self._src, self._srclen, self._blksize, NULL)
            if ret == 0:
                owner.stream.match_state = MATCH_SEARCHING
                ret = encode_one(owner, dummy, sizeof(dummy), False, 0, &scratch)
            if ret != 0:
                msg = owner.stream.msg
        free(scratch.data)
        if ret != 0:
            text = _message(ret, msg)
            stream_close(owner)
            raise EncodeError(f"cannot index the source: {text}")
        if owner.stream.srcwin_cksum_pos != self._srclen or owner.stream.large_table == NULL:
            stream_close(owner)
            raise EncodeError("internal error: xdelta3 did not index the whole source")
        self._owner = owner
        self.index_bytes = owner.stream.large_hash.size * sizeof(usize_t)

    def __dealloc__(self):
        stream_close(self._owner)
        self._owner = NULL
        if self._have_view:
            PyBuffer_Release(&self._view)
            self._have_view = False

    @property
    def source_size(self):
        return self._srclen

    def session(self):
        """A new encoding stream against this reference (see :class:`EncodeSession`)."""
        return EncodeSession(self)


cdef class EncodeSession:
    """One xdelta3 encoding stream. Not thread-safe: use one session per thread.

    Each call to :meth:`encode_window` produces one VCDIFF window, without the file header
    (:attr:`EncoderCore.header`). Without secondary compression or with DJW, windows are
    self-contained, so windows of one target may come from different sessions. With LZMA the
    compressor's state carries from window to window: one session must encode all windows of a
    delta, in order, and must not be used for another delta.
    """

    cdef EncoderCore _core
    cdef Stream *_s
    cdef OutBuf _out

    def __cinit__(self, EncoderCore core not None):
        cdef int ret
        cdef const char *msg = NULL
        self._core = core
        self._s = <Stream *>malloc(sizeof(Stream))
        memset(&self._out, 0, sizeof(OutBuf))
        if self._s == NULL:
            raise MemoryError()
        with nogil:
            ret = stream_open(self._s, &core._config, core._src, core._srclen, core._blksize,
                              core._owner)
            if ret != 0:
                msg = self._s.stream.msg
        if ret != 0:
            raise EncodeError(_message(ret, msg))

    def __dealloc__(self):
        stream_close(self._s)
        self._s = NULL
        free(self._out.data)
        self._out.data = NULL

    def encode_window(self, target, unsigned long long hint=0):
        """Encodes ``target`` (at most ``window_size`` bytes) as one window; returns its bytes.

        ``hint`` is where in the reference the target's bytes are expected; it only speeds up
        unchanged regions. The GIL is released for the whole encode.
        """
        cdef Py_buffer view
        cdef int ret
        cdef const char *msg = NULL
        cdef Py_ssize_t skip = 0
        cdef EncoderCore core = self._core
        cdef bint has_source = core._srclen > 0
        cdef bint first
        PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
        try:
            if <size_t>view.len > core.window_size:
                raise ValueError("target is larger than the window size")
            if view.len == 0:
                return b""
            if hint >= core._srclen:
                hint = 0
            first = self._s.stream.current_window == 0
            self._out.length = 0
            with nogil:
                ret = encode_one(self._s, <const uint8_t *>view.buf, <size_t>view.len,
                                 has_source, hint, &self._out)
                if ret != 0:
                    msg = self._s.stream.msg
        finally:
            PyBuffer_Release(&view)
        if ret != 0:
            raise EncodeError(_message(ret, msg))
        if first:
            # xdelta3 writes the file header before a stream's first window; the caller writes
            # the header once per delta, so strip it here (and check it is the one we expect).
            skip = len(core.header)
            if self._out.length < <size_t>skip or \
                    memcmp(self._out.data, <const char *>core.header, skip) != 0:
                raise EncodeError("internal error: unexpected VCDIFF header from xdelta3")
        return PyBytes_FromStringAndSize(<const char *>self._out.data + skip,
                                         <Py_ssize_t>self._out.length - skip)


cdef class LocalEncoder:
    """Encodes windows against a stretch of a reference that may be far larger than any index.

    Each call indexes only ``source[lo:hi]`` (exactly, as xdelta3 indexes a source that fits
    its window) and encodes one window against it; the window's source segment is then
    moved to where the stretch sits in the whole reference, so the window decodes against the
    whole reference like any other. The caller chooses the stretch (where the target's bytes
    were found); nothing is shared between calls, so calls may run in parallel.

    Secondary compression must be stateless across windows (none or DJW): LZMA's state would
    have to carry from window to window of one stream.
    """

    cdef Py_buffer _view
    cdef bint _have_view
    cdef const uint8_t *_src
    cdef size_t _srclen
    cdef xd3_config _config
    cdef readonly bytes header
    cdef readonly size_t window_size

    def __cinit__(self):
        self._have_view = False

    def __init__(self, source, *, object matcher, size_t window_size, int secondary=0,
                 int level=9, size_t sprevsz=1 << 18, size_t iopt_size=1 << 15,
                 bint compress_data=True):
        if self._have_view:
            raise RuntimeError("LocalEncoder is already initialized")
        if window_size < 64 or window_size > C_HARD_MAX_WINDOW:
            raise ValueError("window_size must be between 64 bytes and 64 MiB")
        if secondary == 2:
            raise ValueError("LZMA keeps state across windows: not for local windows")
        if not 0 <= level <= 9:
            raise ValueError("level must be between 0 and 9")
        self.header = _configure(&self._config, matcher, window_size, secondary, level,
                                 sprevsz, iopt_size, compress_data)
        PyObject_GetBuffer(source, &self._view, PyBUF_SIMPLE)
        self._have_view = True
        self._src = <const uint8_t *>self._view.buf
        self._srclen = <size_t>self._view.len
        self.window_size = window_size

    def __dealloc__(self):
        if self._have_view:
            PyBuffer_Release(&self._view)
            self._have_view = False

    def encode_window(self, target, size_t lo, size_t hi, size_t hint=0):
        """One window of ``target`` against ``source[lo:hi]``; ``hint`` is where the target's
        first bytes are expected in the reference (absolute). Returns the window's bytes."""
        cdef Py_buffer view
        cdef Stream *s = NULL
        cdef OutBuf out
        cdef int ret = 0
        cdef const char *msg = NULL
        cdef size_t skip = len(self.header)
        cdef size_t rel
        if lo >= hi or hi > self._srclen:
            raise ValueError("source stretch out of range")
        rel = hint - lo if lo <= hint < hi else 0
        memset(&out, 0, sizeof(OutBuf))
        PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
        try:
            if <size_t>view.len > self.window_size:
                raise ValueError("target is larger than the window size")
            if view.len == 0:
                return b""
            s = <Stream *>malloc(sizeof(Stream))
            if s == NULL:
                raise MemoryError()
            with nogil:
                ret = stream_open(s, &self._config, self._src + lo, hi - lo,
                                  _block_size_for(hi - lo), NULL)
                if ret == 0:
                    ret = encode_one(s, <const uint8_t *>view.buf, <size_t>view.len, True,
                                     rel, &out)
                if ret != 0:
                    msg = s.stream.msg
            if ret != 0:
                raise EncodeError(_message(ret, msg))
            if out.length < skip or memcmp(out.data, <const char *>self.header, skip) != 0:
                raise EncodeError("internal error: unexpected VCDIFF header from xdelta3")
            return _moved_window(out.data + skip, out.length - skip, lo)
        finally:
            PyBuffer_Release(&view)
            stream_close(s)
            free(out.data)


cdef bytes _moved_window(const uint8_t *w, size_t n, uint64_t shift):
    """The window ``w`` with its source segment moved ``shift`` bytes further into the source."""
    cdef uint64_t cpylen = 0, cpyoff = 0
    cdef Py_ssize_t pos
    cdef uint8_t head[21]
    cdef uint8_t *q
    if n == 0:
        raise EncodeError("internal error: empty window from xdelta3")
    if not (w[0] & VCD_SOURCE):
        return PyBytes_FromStringAndSize(<const char *>w, <Py_ssize_t>n)
    pos = read_varint(w, <Py_ssize_t>n, 1, &cpylen)
    if pos > 0:
        pos = read_varint(w, <Py_ssize_t>n, pos, &cpyoff)
    if pos <= 0:
        raise EncodeError("internal error: unreadable window from xdelta3")
    head[0] = w[0]
    q = put_varint(head + 1, cpylen)
    q = put_varint(q, cpyoff + shift)
    return PyBytes_FromStringAndSize(<const char *>head, q - head) + \
        PyBytes_FromStringAndSize(<const char *>w + pos, <Py_ssize_t>n - pos)


def compose_window(target, list copies):
    """One VCDIFF window for ``target`` made of COPY instructions from the reference where
    ``copies`` says (``(start, end, source)`` stretches of ``target``, in order, not
    overlapping, whose bytes the caller has checked are the reference's at ``source``) and
    ADD instructions for every byte between them. The source segment spans the copies; the
    window is Adler-32 checksummed. At most 64 MiB of target."""
    cdef Py_buffer view
    cdef const uint8_t *t
    cdef size_t n, k, count, pos = 0, start, end, seg_lo = <size_t>-1, seg_hi = 0
    cdef size_t data_len = 0, inst_len = 0, addr_len = 0, enclen, total, head
    cdef uint64_t src
    cdef uint8_t *q
    cdef uint8_t *qd
    cdef uint8_t *qi
    cdef uint8_t *qa
    cdef uint32_t a32
    count = len(copies)
    cdef size_t *c = <size_t *>malloc((3 * count + 1) * sizeof(size_t))
    if c == NULL:
        raise MemoryError()
    PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
    try:
        n = <size_t>view.len
        t = <const uint8_t *>view.buf
        if n == 0 or n > C_HARD_MAX_WINDOW:
            raise ValueError("a window holds 1 byte to 64 MiB")
        for k in range(count):
            start, end, src = copies[k]
            if start < pos or end <= start or end > n:
                raise ValueError("copies must be in order, not overlapping, within the target")
            c[3 * k], c[3 * k + 1], c[3 * k + 2] = start, end, <size_t>src
            if start > pos:
                data_len += start - pos
                inst_len += 1 + varint_size(start - pos)
            inst_len += 1 + varint_size(end - start)
            seg_lo = min(seg_lo, <size_t>src)
            seg_hi = max(seg_hi, <size_t>src + end - start)
            pos = end
        if pos < n:
            data_len += n - pos
            inst_len += 1 + varint_size(n - pos)
        for k in range(count):
            addr_len += varint_size(c[3 * k + 2] - seg_lo)
        enclen = varint_size(n) + 1 + varint_size(data_len) + varint_size(inst_len) + \
            varint_size(addr_len) + 4 + data_len + inst_len + addr_len
        head = 1 + (varint_size(seg_hi - seg_lo) + varint_size(seg_lo) if count else 0)
        total = head + varint_size(enclen) + enclen
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>total)
        q = <uint8_t *><char *>out
        with nogil:
            a32 = dg_adler32(t, n)
            q[0] = VCD_ADLER32 | (VCD_SOURCE if count else 0)
            q += 1
            if count:
                q = put_varint(q, seg_hi - seg_lo)
                q = put_varint(q, seg_lo)
            q = put_varint(q, enclen)
            q = put_varint(q, n)
            q[0] = 0
            q = put_varint(q + 1, data_len)
            q = put_varint(q, inst_len)
            q = put_varint(q, addr_len)
            put_be32(q, a32)
            qd = q + 4
            qi = qd + data_len
            qa = qi + inst_len
            pos = 0
            for k in range(count + 1):
                start = c[3 * k] if k < count else n
                if start > pos:
                    memcpy(qd, t + pos, start - pos)
                    qd += start - pos
                    qi[0] = 1                      # ADD, size follows
                    qi = put_varint(qi + 1, start - pos)
                if k == count:
                    break
                end = c[3 * k + 1]
                qi[0] = 19                         # COPY mode 0, size follows
                qi = put_varint(qi + 1, end - start)
                qa = put_varint(qa, c[3 * k + 2] - seg_lo)
                pos = end
        return out
    finally:
        PyBuffer_Release(&view)
        free(c)


def copy_window(target, unsigned long long source_offset):
    """One VCDIFF window that copies ``target`` (at most 64 MiB, non-empty) from the reference
    at ``source_offset``: a single COPY instruction, Adler-32 checksummed. The caller has
    checked that the reference holds exactly these bytes there."""
    cdef Py_buffer view
    cdef size_t n, inst_len, enclen, total
    cdef uint8_t *q
    cdef uint32_t a32
    PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
    try:
        n = <size_t>view.len
        if n == 0 or n > C_HARD_MAX_WINDOW:
            raise ValueError("a copy window holds 1 byte to 64 MiB")
        # Code 19 of the RFC 3284 instruction table is COPY, mode 0 (the address as it is),
        # with the size following; the address section holds the address 0: the segment's
        # first byte.
        inst_len = 1 + varint_size(n)
        enclen = varint_size(n) + 1 + 1 + varint_size(inst_len) + 1 + 4 + inst_len + 1
        total = 1 + varint_size(n) + varint_size(source_offset) + varint_size(enclen) + enclen
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>total)
        q = <uint8_t *><char *>out
        with nogil:
            a32 = dg_adler32(<const uint8_t *>view.buf, n)
            q[0] = VCD_SOURCE | VCD_ADLER32
            q = put_varint(q + 1, n)             # source segment length
            q = put_varint(q, source_offset)     # source segment position
            q = put_varint(q, enclen)
            q = put_varint(q, n)                 # target window length
            q[0] = 0                             # delta indicator: nothing compressed
            q[1] = 0                             # data section length
            q = put_varint(q + 2, inst_len)      # instruction section length
            q[0] = 1                             # address section length
            put_be32(q + 1, a32)
            q[5] = 19
            q = put_varint(q + 6, n)
            q[0] = 0                             # the address
        return out
    finally:
        PyBuffer_Release(&view)


cdef enum:
    VCD_DATACOMP = 0x01  # delta indicator bits: which sections are secondary-compressed
    VCD_INSTCOMP = 0x02
    VCD_ADDRCOMP = 0x04
    SECONDARY_MIN_INPUT = 10  # xdelta3 leaves shorter sections as they are


cdef int _lzma_section(lzma_stream *z, const uint8_t *p, size_t n, OutBuf *out) noexcept nogil:
    """Appends p[:n] compressed by z, flushed to a chunk boundary (as xdelta3 does)."""
    cdef size_t room
    cdef lzma_ret ret
    cdef uint8_t *grown
    z.next_in = p
    z.avail_in = n
    while True:
        if out.capacity - out.length < 4096 + n // 4:
            room = out.capacity * 2 + 4096 + n
            grown = <uint8_t *>realloc(out.data, room)
            if grown == NULL:
                return -1
            out.data = grown
            out.capacity = room
        z.next_out = out.data + out.length
        z.avail_out = out.capacity - out.length
        ret = lzma_code(z, LZMA_SYNC_FLUSH)
        out.length = out.capacity - z.avail_out
        if ret == LZMA_STREAM_END:
            return 0
        if ret != LZMA_OK:
            return -1


cdef class LzmaSections:
    """Recompresses the sections of windows written without secondary compression with LZMA,
    as xdelta3's LZMA secondary does: one LZMA stream per kind of section (data,
    instructions, addresses) running through every window of the delta, each section flushed
    where it ends and preceded by its decompressed size.

    Matching can then run in parallel on independent streams (local windows) while the one
    thing that must be sequential, the LZMA state, runs here, window after window in order.
    A section may be left uncompressed (its delta-indicator bit clear: the decoder's LZMA
    state does not see it), which is how data that looks random is passed through. Not
    thread-safe; windows must come in delta order.
    """

    cdef lzma_stream _z[3]
    cdef bint _started[3]
    cdef uint32_t _presets[3]

    def __cinit__(self, uint32_t data_preset=6, uint32_t other_preset=1):
        memset(self._z, 0, sizeof(self._z))
        memset(self._started, 0, sizeof(self._started))
        self._presets[0] = data_preset
        self._presets[1] = other_preset
        self._presets[2] = other_preset

    def __dealloc__(self):
        cdef int k
        for k in range(3):
            if self._started[k]:
                lzma_end(&self._z[k])

    def recode(self, window, double data_max_entropy=7.9):
        """``window`` (one VCDIFF window, no section compressed) with its sections
        LZMA-compressed; the data section only if its order-0 entropy is below
        ``data_max_entropy`` bits per byte."""
        cdef Py_buffer view
        cdef const uint8_t *w
        cdef Py_ssize_t n, pos, head_end, secstart
        cdef uint64_t v = 0, tgtlen = 0
        cdef uint64_t lens[3]
        cdef uint8_t ind
        cdef int k, adler
        cdef OutBuf sec[3]
        cdef bint comp[3]
        cdef uint8_t tmp[32]
        cdef uint8_t *q
        cdef uint64_t enclen
        cdef int failed = 0
        cdef WindowInfo info
        cdef Py_ssize_t framed
        memset(sec, 0, sizeof(sec))
        PyObject_GetBuffer(window, &view, PyBUF_SIMPLE)
        try:
            w = <const uint8_t *>view.buf
            n = view.len
            pos = 1
            if n < 1:
                raise ValueError("empty window")
            # The framing is validated as the decoder validates it (window indicator, lengths
            # within the window, sections adding up, no compressed section) before anything is
            # read: the section lengths below are then within the window, never wrapping.
            framed = scan_window(w, n, False, &info)
            if framed == BAD:
                raise ValueError(f"not a window without secondary compression: "
                                 f"{info.error.decode()}")
            if framed != n:
                raise ValueError("not exactly one whole window")
            ind = w[0]
            if ind & (VCD_SOURCE | VCD_TARGET):
                pos = read_varint(w, n, pos, &v)
                if pos > 0:
                    pos = read_varint(w, n, pos, &v)
            if pos > 0:
                head_end = pos
                pos = read_varint(w, n, pos, &v)          # length of the delta encoding
            if pos > 0:
                pos = read_varint(w, n, pos, &tgtlen)
            if pos <= 0 or pos >= n or w[pos] != 0:
                raise ValueError("not a window without secondary compression")
            pos += 1
            for k in range(3):
                if pos > 0:
                    pos = read_varint(w, n, pos, &lens[k])
            if pos <= 0:
                raise ValueError("unreadable window")
            adler = 4 if ind & VCD_ADLER32 else 0
            secstart = pos + adler
            if secstart > n or <uint64_t>(n - secstart) != lens[0] + lens[1] + lens[2]:
                raise ValueError("window sections do not add up")
            # What the decoder accepts of a compressed section's decoded size (scan_window):
            # beyond it, no real window, and the recoded one would be refused.
            if lens[0] > tgtlen or lens[1] > 21 * tgtlen + 64 or lens[2] > 10 * tgtlen + 64:
                raise ValueError("window sections larger than its target can need")
            comp[0] = lens[0] >= SECONDARY_MIN_INPUT and \
                entropy_bits(window[secstart:secstart + lens[0]]) < data_max_entropy
            comp[1] = lens[1] >= SECONDARY_MIN_INPUT
            comp[2] = lens[2] >= SECONDARY_MIN_INPUT
            for k in range(3):
                if comp[k] and not self._started[k]:
                    if lzma_easy_encoder(&self._z[k], self._presets[k], LZMA_CHECK_NONE) != LZMA_OK:
                        raise MemoryError("cannot start LZMA")
                    self._started[k] = True
            with nogil:
                v = <uint64_t>secstart
                for k in range(3):
                    if comp[k]:
                        q = put_varint(tmp, lens[k])
                        if outbuf_append(&sec[k], tmp, q - tmp) != 0 or \
                                _lzma_section(&self._z[k], w + v, lens[k], &sec[k]) != 0:
                            failed = 1
                            break
                    v += lens[k]
            if failed:
                raise EncodeError("LZMA compression failed")
            parts = [PyBytes_FromStringAndSize(<const char *>w, head_end), None,
                     PyBytes_FromStringAndSize(<const char *>w + pos, adler)]
            v = <uint64_t>secstart
            for k in range(3):
                if comp[k]:
                    parts.append(PyBytes_FromStringAndSize(<const char *>sec[k].data,
                                                           <Py_ssize_t>sec[k].length))
                else:
                    parts.append(PyBytes_FromStringAndSize(<const char *>w + v,
                                                           <Py_ssize_t>lens[k]))
                v += lens[k]
                if comp[k]:
                    lens[k] = sec[k].length
            enclen = varint_size(tgtlen) + 1 + varint_size(lens[0]) + varint_size(lens[1]) + \
                varint_size(lens[2]) + adler + lens[0] + lens[1] + lens[2]
            q = put_varint(tmp, enclen)
            q = put_varint(q, tgtlen)
            q[0] = (VCD_DATACOMP if comp[0] else 0) | (VCD_INSTCOMP if comp[1] else 0) | \
                (VCD_ADDRCOMP if comp[2] else 0)
            q += 1
            for k in range(3):
                q = put_varint(q, lens[k])
            parts[1] = PyBytes_FromStringAndSize(<const char *>tmp, q - tmp)
            return b"".join(parts)
        finally:
            PyBuffer_Release(&view)
            for k in range(3):
                free(sec[k].data)


# --- decoder ---------------------------------------------------------------------------------

cdef class DecodeSession:
    """One xdelta3 decoding stream for deltas with a given file header.

    Windows are fed whole (framed by :func:`scan_windows`). With no or DJW secondary
    compression any window may be decoded by any session; with LZMA or FGK one session must
    decode all windows of a delta in order. Not thread-safe: one session per thread.
    """

    cdef Py_buffer _view
    cdef bint _have_view
    cdef Stream *_s

    def __cinit__(self):
        self._have_view = False
        self._s = NULL

    def __init__(self, source, header):
        cdef xd3_config config
        cdef Py_buffer hview
        cdef int ret
        cdef const char *msg = NULL
        cdef size_t srclen
        if self._have_view:
            raise RuntimeError("DecodeSession is already initialized")
        PyObject_GetBuffer(source, &self._view, PyBUF_SIMPLE)
        self._have_view = True
        srclen = <size_t>self._view.len
        self._s = <Stream *>malloc(sizeof(Stream))
        if self._s == NULL:
            raise MemoryError()
        memset(&config, 0, sizeof(xd3_config))
        # decode_span verifies each window's Adler-32 itself, with the faster dg_adler32.
        config.flags = XD3_ADLER32_NOVER
        PyObject_GetBuffer(header, &hview, PyBUF_SIMPLE)
        try:
            with nogil:
                ret = stream_open(self._s, &config, <const uint8_t *>self._view.buf, srclen,
                                  _block_size_for(srclen), NULL)
                if ret == 0:
                    xd3_avail_input(&self._s.stream, <const uint8_t *>hview.buf,
                                    <usize_t>hview.len)
                    ret = xd3_decode_input(&self._s.stream)
                    if ret == XD3_INPUT:
                        ret = 0
                    elif ret == 0:
                        ret = XD3_INTERNAL
                if ret != 0:
                    msg = self._s.stream.msg
        finally:
            PyBuffer_Release(&hview)
        if ret != 0:
            raise DecodeError(f"invalid VCDIFF header: {_message(ret, msg)}")

    def __dealloc__(self):
        stream_close(self._s)
        self._s = NULL
        if self._have_view:
            PyBuffer_Release(&self._view)
            self._have_view = False

    def decode_windows(self, delta, Py_ssize_t start, Py_ssize_t end, out,
                       Py_ssize_t out_offset, Py_ssize_t out_length):
        """Decodes the whole windows in ``delta[start:end]`` into ``out[out_offset:]``.

        ``out_length`` is the number of bytes those windows reconstruct (from the framing);
        every byte of it is written or DecodeError is raised. The GIL is released throughout.
        """
        cdef Py_buffer dview, oview
        cdef int ret = 0
        cdef const char *msg = NULL
        cdef const char *problem = NULL
        PyObject_GetBuffer(delta, &dview, PyBUF_SIMPLE)
        try:
            PyObject_GetBuffer(out, &oview, PyBUF_SIMPLE | PyBUF_WRITABLE)
        except BaseException:
            PyBuffer_Release(&dview)
            raise
        try:
            if start < 0 or end < start or end > dview.len:
                raise ValueError("window span out of range")
            if out_offset < 0 or out_length < 0 or out_offset + out_length > oview.len:
                raise ValueError("output span out of range")
            with nogil:
                ret = decode_span(self._s, <const uint8_t *>dview.buf + start, end - start,
                                  <uint8_t *>oview.buf + out_offset, <size_t>out_length,
                                  &problem)
                if ret != 0 and problem == NULL:
                    msg = self._s.stream.msg
        finally:
            PyBuffer_Release(&oview)
            PyBuffer_Release(&dview)
        if ret != 0:
            if problem != NULL:
                raise DecodeError(problem.decode())
            raise DecodeError(_message(ret, msg))


cdef int decode_span(Stream *s, const uint8_t *data, Py_ssize_t n, uint8_t *out,
                     size_t out_length, const char **problem) noexcept nogil:
    cdef int ret
    cdef size_t produced = 0
    cdef usize_t tgtlen
    cdef bint in_window = False
    xd3_avail_input(&s.stream, data, <usize_t>n)
    while True:
        ret = xd3_decode_input(&s.stream)
        if ret == XD3_GOTHEADER or ret == XD3_WINSTART:
            # The window header is parsed: point xdelta3's output at the caller's buffer.
            tgtlen = s.stream.dec_tgtlen
            if tgtlen > out_length - produced:
                problem[0] = "delta reconstructs more bytes than its framing says"
                return XD3_INVALID_INPUT
            s.stream.next_out = out + produced
            s.stream.space_out = tgtlen
            s.stream.avail_out = 0
            in_window = True
        elif ret == XD3_OUTPUT:
            if not in_window or s.stream.avail_out > out_length - produced:
                problem[0] = "delta reconstructs more bytes than its framing says"
                return XD3_INVALID_INPUT
            if s.stream.next_out != out + produced:
                memcpy(out + produced, s.stream.next_out, s.stream.avail_out)
            if (s.stream.dec_win_ind & VCD_ADLER32) and \
                    dg_adler32(out + produced, s.stream.avail_out) != s.stream.dec_adler32:
                problem[0] = "target window checksum mismatch"  # xdelta3's words
                return XD3_INVALID_INPUT
            produced += s.stream.avail_out
            xd3_consume_output(&s.stream)
            in_window = False
        elif ret == XD3_WINFINISH:
            continue
        elif ret == XD3_INPUT:
            if produced != out_length:
                problem[0] = "delta ended before reconstructing all windows"
                return XD3_INVALID_INPUT
            return 0
        elif ret == XD3_GETSRCBLK:
            problem[0] = ("delta copies from beyond the end of the source "
                          "(it was made against another reference)")
            return XD3_INVALID_INPUT
        else:
            return ret


# --- literal windows -------------------------------------------------------------------------

def adler32(data):
    """Adler-32 of ``data`` as VCDIFF windows carry it (zlib's, starting at 1)."""
    cdef Py_buffer view
    cdef uint32_t a32
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        with nogil:
            a32 = dg_adler32(<const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return a32


cdef inline size_t varint_size(uint64_t v) noexcept nogil:
    cdef size_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline void put_be32(uint8_t *p, uint32_t v) noexcept nogil:
    """A window's Adler-32, as VCDIFF writes it (big-endian)."""
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline uint8_t *put_varint(uint8_t *p, uint64_t v) noexcept nogil:
    cdef size_t n = varint_size(v)
    cdef size_t i
    for i in range(n):
        p[n - 1 - i] = <uint8_t>((v & 0x7F) | (0x80 if i else 0))
        v >>= 7
    return p + n


def literal_window(target):
    """One VCDIFF window that carries ``target`` verbatim (one ADD, Adler-32 checksummed).

    Used for stretches of a target that share nothing with the reference and look random:
    running xdelta3's matcher over them costs far more than it can save. An empty target gives
    the empty window xdelta3 itself writes for an empty file.
    """
    cdef Py_buffer view
    cdef size_t n, inst_len, enclen, total
    cdef uint8_t *q
    cdef uint32_t a32
    PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
    try:
        n = <size_t>view.len
        if n > C_HARD_MAX_WINDOW:
            raise ValueError("literal window larger than 64 MiB")
        # Code 1 of the RFC 3284 instruction table is ADD with the size following.
        inst_len = 1 + varint_size(n) if n else 0
        enclen = varint_size(n) + 1 + varint_size(n) + varint_size(inst_len) + 1 + 4 + n + inst_len
        total = 1 + varint_size(enclen) + enclen
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>total)
        q = <uint8_t *><char *>out
        with nogil:
            a32 = dg_adler32(<const uint8_t *>view.buf, n)
            q[0] = VCD_ADLER32
            q = put_varint(q + 1, enclen)
            q = put_varint(q, n)           # target window length
            q[0] = 0                       # delta indicator: no section is compressed
            q = put_varint(q + 1, n)       # data section length
            q = put_varint(q, inst_len)    # instruction section length
            q = put_varint(q, 0)           # address section length
            put_be32(q, a32)
            if n:
                memcpy(q + 4, view.buf, n)
                q += 4 + n
                q[0] = 1
                put_varint(q + 1, n)
        return out
    finally:
        PyBuffer_Release(&view)


cdef class OutputBuffer:
    """A bytes object of a known size, writable through the buffer protocol until taken.

    Decoding writes the reconstructed bytes straight into the object it then returns, instead
    of into a bytearray that would have to be copied into bytes at the end.
    """

    cdef object _data
    cdef Py_ssize_t _exports

    def __cinit__(self, Py_ssize_t size):
        if size < 0:
            raise ValueError("size must not be negative")
        self._data = PyBytes_FromStringAndSize(NULL, size)
        self._exports = 0

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._data is None:
            raise BufferError("the buffer was already taken")
        PyBuffer_FillInfo(view, self, <void *><char *>self._data, len(self._data), 0, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    def take(self):
        """The finished bytes; the buffer cannot be written any more."""
        if self._exports:
            raise BufferError("the buffer is still in use")
        data = self._data
        self._data = None
        return data


def entropy_bits(data):
    """Order-0 entropy of ``data`` in bits per byte (8.0 for random or compressed bytes)."""
    cdef Py_buffer view
    cdef size_t counts[256]
    cdef size_t i, n
    cdef const uint8_t *p
    cdef double h = 0.0, f
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = <size_t>view.len
        p = <const uint8_t *>view.buf
        memset(counts, 0, sizeof(counts))
        with nogil:
            for i in range(n):
                counts[p[i]] += 1
            for i in range(256):
                if counts[i]:
                    f = <double>counts[i] / <double>n
                    h -= f * log2(f)
    finally:
        PyBuffer_Release(&view)
    return h


# --- anchor probe ----------------------------------------------------------------------------
#
# Content-defined anchors find what a target shares with the reference at a fraction of the
# cost of xdelta3's matcher: a gear hash rolls over both (one shift and add per byte, no random
# memory access), positions where its top bits are zero are anchors, and the reference's anchors
# go into a small table keyed by the hash (which covers the 64 bytes before the anchor). A
# target anchor found in the table marks bytes shared with the reference. Stretches of the
# target with no hit over a long distance share nothing worth a COPY, so xdelta3 never has to
# look at them: on a rebuilt native wheel that is most of the file, and where xdelta3 crawls.

cdef uint64_t GEAR[256]


cdef void _init_gear() noexcept:
    cdef uint64_t x = 0x9E3779B97F4A7C15ULL
    cdef uint64_t z
    cdef int i
    for i in range(256):  # splitmix64: fixed, well-mixed constants
        x += 0x9E3779B97F4A7C15ULL
        z = x
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
        GEAR[i] = z ^ (z >> 31)


_init_gear()


# A slot is one 64-bit word: a 24-bit tag of the anchor's hash (never 0; 0 is an empty slot)
# above the reference offset of the anchor's 64 bytes (40 bits: references up to 1 TiB; anchors
# beyond are not indexed).
ctypedef uint64_t AnchorSlot

cdef enum:
    POSITION_BITS = 40
cdef uint64_t POSITION_MASK = (<uint64_t>1 << POSITION_BITS) - 1


cdef inline uint64_t _tag(uint64_t h) noexcept nogil:
    cdef uint64_t t = (h * 0xD6E8FEB86659FD93ULL) >> (64 - (64 - POSITION_BITS))
    return (t | 1) << POSITION_BITS


cdef inline uint64_t _slot_position(AnchorSlot slot) noexcept nogil:
    return slot & POSITION_MASK


cdef inline size_t _find(const AnchorSlot *slots, int bits, size_t mask,
                         uint64_t h) noexcept nogil:
    """The slot holding anchor hash h, or the empty slot where it would go (linear probing)."""
    cdef uint64_t tag = _tag(h)
    cdef size_t slot = <size_t>((h * 0x9E3779B97F4A7C15ULL) >> (64 - bits))
    while slots[slot] != 0 and (slots[slot] & ~POSITION_MASK) != tag:
        slot = (slot + 1) & mask
    return slot


cdef class AnchorIndex:
    """The reference's content-defined anchors, for :meth:`segment`."""

    cdef AnchorSlot *_slots
    cdef int _bits
    cdef readonly int anchor_bits
    cdef readonly size_t anchors
    cdef readonly size_t table_bytes
    cdef readonly size_t source_size

    def __cinit__(self):
        self._slots = NULL

    def __init__(self, source, int anchor_bits=6, size_t max_table_bytes=4 << 20,
                 bint build=True):
        """Indexes ``source``; with ``build=False`` the table is only sized, and the caller
        fills it with :meth:`index_part` (from several threads at once)."""
        cdef Py_buffer view
        cdef size_t n, want, slots
        if self._slots != NULL:
            raise RuntimeError("AnchorIndex is already initialized")
        # The hash's top anchor_bits bits select anchors (a shift by 64 - anchor_bits).
        if not 1 <= anchor_bits <= 32:
            raise ValueError("anchor_bits must be between 1 and 32")
        PyObject_GetBuffer(source, &view, PyBUF_SIMPLE)
        try:
            n = <size_t>view.len
            self.source_size = n
            # Half-full table at most; for huge references, sparser anchors instead of a
            # bigger table (they then only find longer shared stretches, which is all that
            # matters at that scale).
            while anchor_bits < 20 and (n >> anchor_bits) * 2 * sizeof(AnchorSlot) > max_table_bytes:
                anchor_bits += 1
            self.anchor_bits = anchor_bits
            want = (n >> anchor_bits) * 2 + 16
            slots = 16
            self._bits = 4
            while slots < want:
                slots <<= 1
                self._bits += 1
            self._slots = <AnchorSlot *>calloc(slots, sizeof(AnchorSlot))
            if self._slots == NULL:
                raise MemoryError()
            self.table_bytes = slots * sizeof(AnchorSlot)
            if build:
                with nogil:
                    self.anchors = _index_anchors(self._slots, self._bits, slots - 1,
                                                  <const uint8_t *>view.buf, n,
                                                  64 - anchor_bits)
        finally:
            PyBuffer_Release(&view)

    def index_part(self, source, size_t part, size_t parts):
        """Adds the anchors of part ``part`` of ``parts`` of the source (the anchors whose 64
        bytes end in it). Parts may be added from several threads at once, in any order; once
        all are, the table is the same whatever the order. Returns the anchors added."""
        cdef Py_buffer view
        cdef size_t n, lo, hi, added
        if parts == 0 or part >= parts:
            raise ValueError("part out of range")
        PyObject_GetBuffer(source, &view, PyBUF_SIMPLE)
        try:
            n = <size_t>view.len
            if n != self.source_size:
                raise ValueError("source is not the buffer this index was built from")
            lo = n // parts * part
            hi = n if part == parts - 1 else n // parts * (part + 1)
            with nogil:
                added = _index_part(self._slots, self._bits, (<size_t>1 << self._bits) - 1,
                                    <const uint8_t *>view.buf, lo, hi, 64 - self.anchor_bits,
                                    ((<size_t>1 << self._bits) * 3 // 4) // parts)
        finally:
            PyBuffer_Release(&view)
        self.anchors += added
        return added

    def __dealloc__(self):
        free(self._slots)
        self._slots = NULL

    def matches(self, source, target, size_t min_length=64, size_t base=0):
        """The stretches of ``target`` found in ``source`` (the reference this index was built
        from), verified byte for byte and extended both ways as far as they go.

        Returns ``[(start, end, source_start), ...]`` in target order, not overlapping, each
        at least ``min_length`` (and 64) bytes long. Scanning skips over each stretch found,
        so an unchanged target costs one comparison, not one lookup per anchor.

        Where the same bytes are in the source several times, the copy on the diagonal of the
        previous match is taken first, then the one where the target's bytes sit (``base``:
        the target's offset in the whole target), then the first in the source: layouts that
        moved keep their neighbourhoods. After an edit of up to 64 bytes, the previous
        diagonal is tried again right away, without waiting for an anchor.
        """
        cdef Py_buffer sview, tview
        cdef MatchList found
        cdef int ok = 0
        cdef size_t k
        memset(&found, 0, sizeof(MatchList))
        PyObject_GetBuffer(source, &sview, PyBUF_SIMPLE)
        try:
            if <size_t>sview.len != self.source_size:
                raise ValueError("source is not the buffer this index was built from")
            PyObject_GetBuffer(target, &tview, PyBUF_SIMPLE)
            try:
                with nogil:
                    ok = _scan_matches(self._slots, self._bits, 64 - self.anchor_bits,
                                       <const uint8_t *>sview.buf, <size_t>sview.len,
                                       <const uint8_t *>tview.buf, <size_t>tview.len,
                                       min_length if min_length > 64 else 64, base, &found)
            finally:
                PyBuffer_Release(&tview)
        finally:
            PyBuffer_Release(&sview)
        try:
            if ok != 0:
                raise MemoryError()
            return [(found.items[k].start, found.items[k].end, found.items[k].source)
                    for k in range(found.count)]
        finally:
            free(found.items)

    def segment(self, target, size_t margin, size_t min_gap):
        """Splits ``target`` into shared and unshared stretches.

        Returns ``[(start, end, shared, hint), ...]`` covering the whole target in order.
        Shared stretches surround anchors found in the reference, widened by ``margin`` on
        both sides and merged when closer than ``min_gap``; ``hint`` is where the stretch is
        expected to start in the reference. Unshared stretches are at least ``min_gap`` long.
        """
        cdef Py_buffer view
        cdef const uint8_t *p
        cdef size_t n
        cdef Hits first, second
        cdef size_t *spans = NULL
        cdef size_t nspans = 0
        cdef int ok = 0
        memset(&first, 0, sizeof(Hits))
        memset(&second, 0, sizeof(Hits))
        PyObject_GetBuffer(target, &view, PyBUF_SIMPLE)
        try:
            p = <const uint8_t *>view.buf
            n = <size_t>view.len
            with nogil:
                ok = _find_hits(self._slots, self._bits, 64 - self.anchor_bits, p, n,
                                &first, &second)
                if ok == 0:
                    ok = _merge_spans(&first, &second, n, margin, min_gap, &spans, &nspans)
        finally:
            PyBuffer_Release(&view)
            free(first.items)
            free(second.items)
        if ok != 0:
            free(spans)
            raise MemoryError()
        try:
            return _spans_to_segments(spans, nspans, n, min_gap)
        finally:
            free(spans)


cdef struct Match:
    size_t start   # target offsets [start, end)
    size_t end
    size_t source  # where start is in the source


cdef struct MatchList:
    Match *items
    size_t count
    size_t capacity


cdef inline size_t _common_forward(const uint8_t *a, const uint8_t *b, size_t n) noexcept nogil:
    """Length of the common prefix of a and b, at most n (8 bytes a step)."""
    cdef size_t i = 0
    cdef uint64_t x, y
    while i + 8 <= n:
        memcpy(&x, a + i, 8)
        memcpy(&y, b + i, 8)
        if x != y:
            break
        i += 8
    while i < n and a[i] == b[i]:
        i += 1
    return i


cdef inline bint _same64(const uint8_t *p, size_t n, size_t t, const uint8_t *src,
                         size_t srclen, int64_t r) noexcept nogil:
    """Whether target p[t:t+64] equals source[r:r+64] (both in range)."""
    return r >= 0 and <size_t>r + 64 <= srclen and t + 64 <= n and \
        memcmp(p + t, src + r, 64) == 0


cdef int _scan_matches(const AnchorSlot *slots, int bits, int shift, const uint8_t *src,
                       size_t srclen, const uint8_t *p, size_t n, size_t min_length,
                       size_t base, MatchList *out) noexcept nogil:
    cdef size_t mask = (<size_t>1 << bits) - 1
    cdef size_t pos = 0, warm = 0, last_end = 0, slot, t, r, back, fwd, cap, k
    # source - target of the previous match; before any, where the target's bytes sit
    cdef int64_t diag = <int64_t>base
    cdef bint have_diag = True, resync
    cdef uint64_t h = 0
    cdef Match *grown
    while pos < n:
        resync = False
        if have_diag and pos == last_end and pos < n:
            # Just past a match: an edit of up to 64 bytes, then the same diagonal again?
            for k in range(65):
                if _same64(p, n, pos + k, src, srclen, <int64_t>(pos + k) + diag):
                    t = pos + k
                    r = <size_t>(<int64_t>t + diag)
                    resync = True
                    break
        if not resync:
            h = (h << 1) + GEAR[p[pos]]
            pos += 1
            warm += 1
            if warm < 64 or (h >> shift) != 0:
                continue
            slot = _find(slots, bits, mask, h)
            if slots[slot] == 0:
                continue
            t = pos - 64
            if have_diag and _same64(p, n, t, src, srclen, <int64_t>t + diag):
                r = <size_t>(<int64_t>t + diag)
            elif _same64(p, n, t, src, srclen, <int64_t>(base + t)):
                r = base + t
            else:
                r = <size_t>_slot_position(slots[slot])
                if not _same64(p, n, t, src, srclen, <int64_t>r):
                    continue
        back = 0
        while t - back > last_end and r - back > 0 and p[t - back - 1] == src[r - back - 1]:
            back += 1
        fwd = 64 + _common_forward(p + t + 64, src + r + 64,
                                   min(n - t - 64, srclen - r - 64))
        if back + fwd < min_length:
            if resync:
                # Not worth a match: scan on from where the edit started.
                have_diag = False
            continue
        if out.count == out.capacity:
            cap = out.capacity * 2 if out.capacity else 64
            grown = <Match *>realloc(out.items, cap * sizeof(Match))
            if grown == NULL:
                return -1
            out.items = grown
            out.capacity = cap
        out.items[out.count].start = t - back
        out.items[out.count].end = t + fwd
        out.items[out.count].source = r - back
        out.count += 1
        last_end = t + fwd
        diag = <int64_t>r - <int64_t>t
        have_diag = True
        pos = last_end
        h = 0
        warm = 0
    return 0


cdef struct Hit:
    size_t position   # target offset of the 64 hashed bytes
    size_t reference  # their offset in the reference (a hint)


cdef struct Hits:
    Hit *items
    size_t count
    size_t capacity


cdef inline int _push(Hits *hits, size_t position, size_t reference) noexcept nogil:
    cdef size_t cap
    cdef Hit *grown
    if hits.count == hits.capacity:
        cap = hits.capacity * 2 if hits.capacity else 256
        grown = <Hit *>realloc(hits.items, cap * sizeof(Hit))
        if grown == NULL:
            return -1
        hits.items = grown
        hits.capacity = cap
    hits.items[hits.count].position = position
    hits.items[hits.count].reference = reference
    hits.count += 1
    return 0


cdef inline int _probe_at(const AnchorSlot *slots, int bits, size_t mask, uint64_t h,
                          size_t end, Hits *hits) noexcept nogil:
    """Records a hit when the anchor hash h, ending at target offset ``end``, is known."""
    cdef size_t slot = _find(slots, bits, mask, h)
    if slots[slot] == 0:
        return 0
    return _push(hits, end - 63, <size_t>_slot_position(slots[slot]))


cdef int _find_hits(const AnchorSlot *slots, int bits, int shift, const uint8_t *p, size_t n,
                    Hits *first, Hits *second) noexcept nogil:
    """Target anchors found in the reference, in order: ``first`` then ``second``.

    The gear hash is a chain of dependent operations, so the target is hashed as two halves
    at once (the second half starts 63 bytes early to warm up): twice the work per cycle.
    """
    cdef size_t mask = (<size_t>1 << bits) - 1
    cdef size_t j, m, len_a, len_b, b0
    cdef uint64_t ha = 0, hb = 0
    if n < 1024:
        for j in range(n):
            ha = (ha << 1) + GEAR[p[j]]
            if (ha >> shift) == 0 and j >= 63:
                if _probe_at(slots, bits, mask, ha, j, first) != 0:
                    return -1
        return 0
    len_a = (n + 63) // 2          # lane A: anchors in [0, len_a)
    b0 = len_a - 63                # lane B: hashes [b0, n), anchors from len_a on
    len_b = n - b0
    m = len_a if len_a < len_b else len_b
    for j in range(m):
        ha = (ha << 1) + GEAR[p[j]]
        hb = (hb << 1) + GEAR[p[b0 + j]]
        if (ha >> shift) == 0 and j >= 63:
            if _probe_at(slots, bits, mask, ha, j, first) != 0:
                return -1
        if (hb >> shift) == 0 and j >= 63:
            if _probe_at(slots, bits, mask, hb, b0 + j, second) != 0:
                return -1
    for j in range(m, len_a):
        ha = (ha << 1) + GEAR[p[j]]
        if (ha >> shift) == 0:
            if _probe_at(slots, bits, mask, ha, j, first) != 0:
                return -1
    for j in range(m, len_b):
        hb = (hb << 1) + GEAR[p[b0 + j]]
        if (hb >> shift) == 0:
            if _probe_at(slots, bits, mask, hb, b0 + j, second) != 0:
                return -1
    return 0


cdef int _merge_spans(const Hits *first, const Hits *second, size_t n, size_t margin,
                      size_t min_gap, size_t **out, size_t *count) noexcept nogil:
    """Shared stretches around the hits: (lo, hi, hint) triples in ``out``."""
    cdef const Hits *lanes[2]
    cdef size_t k, i, lo, hi, hint, back, cap = 0
    cdef size_t cur_lo = 0, cur_hi = 0, cur_hint = 0
    cdef bint have = False
    cdef size_t *spans = NULL
    cdef size_t *grown
    lanes[0] = first
    lanes[1] = second
    for k in range(2):
        for i in range(lanes[k].count):
            lo = lanes[k].items[i].position
            lo = lo - margin if lo > margin else 0
            hi = lanes[k].items[i].position + 64 + margin
            if hi > n:
                hi = n
            # Where the stretch is expected to start in the reference.
            back = lanes[k].items[i].position - lo
            hint = lanes[k].items[i].reference
            hint = hint - back if hint >= back else 0
            if have and lo <= cur_hi + min_gap:
                if hi > cur_hi:
                    cur_hi = hi
                continue
            if have:
                if count[0] + 3 > cap:
                    cap = cap * 2 if cap else 96
                    grown = <size_t *>realloc(spans, cap * sizeof(size_t))
                    if grown == NULL:
                        free(spans)
                        return -1
                    spans = grown
                spans[count[0]] = cur_lo
                spans[count[0] + 1] = cur_hi
                spans[count[0] + 2] = cur_hint
                count[0] += 3
            have = True
            cur_lo = lo
            cur_hi = hi
            cur_hint = hint
    if have:
        if count[0] + 3 > cap:
            grown = <size_t *>realloc(spans, (cap + 3) * sizeof(size_t))
            if grown == NULL:
                free(spans)
                return -1
            spans = grown
        spans[count[0]] = cur_lo
        spans[count[0] + 1] = cur_hi
        spans[count[0] + 2] = cur_hint
        count[0] += 3
    out[0] = spans
    return 0


cdef size_t _index_anchors(AnchorSlot *slots, int bits, size_t mask, const uint8_t *p, size_t n,
                           int shift) noexcept nogil:
    cdef uint64_t h = 0
    cdef size_t i, slot, count = 0
    for i in range(n):
        h = (h << 1) + GEAR[p[i]]
        if (h >> shift) != 0 or i < 63:
            continue
        if i - 63 > POSITION_MASK:
            break
        slot = _find(slots, bits, mask, h)
        if slots[slot] == 0:
            slots[slot] = _tag(h) | <uint64_t>(i - 63)
            count += 1
            # The table was sized for the expected anchor count; degenerate input (long
            # periodic runs) could exceed it, so stop before it gets full.
            if count * 4 > mask * 3:
                break
    return count


cdef inline size_t _put_anchor(AnchorSlot *slots, int bits, size_t mask, uint64_t h,
                               size_t end) noexcept nogil:
    """The anchor whose 64 bytes end at ``end``, into the table (thread-safe)."""
    if end - 63 > POSITION_MASK:
        return 0
    return <size_t>dg_anchor_put(slots, mask,
                                 <size_t>((h * 0x9E3779B97F4A7C15ULL) >> (64 - bits)),
                                 _tag(h), _tag(h) | <uint64_t>(end - 63), ~POSITION_MASK)


cdef size_t _index_part(AnchorSlot *slots, int bits, size_t mask, const uint8_t *p, size_t lo,
                        size_t hi, int shift, size_t limit) noexcept nogil:
    """Anchors ending in p[lo:hi], thread-safe. The gear hash is a chain of dependent
    operations: the part is hashed as two halves at once (each starting 63 bytes early to warm
    up), twice the work per cycle."""
    cdef uint64_t ha = 0, hb = 0
    cdef size_t j, count = 0, mid, a0, b0, len_a, len_b, m
    if hi <= lo:
        return 0
    mid = lo + (hi - lo) // 2
    a0 = lo - 63 if lo >= 63 else 0     # lane A hashes [a0, mid), anchors from lo
    b0 = mid - 63 if mid >= 63 else 0   # lane B hashes [b0, hi), anchors from mid
    len_a = mid - a0
    len_b = hi - b0
    m = len_a if len_a < len_b else len_b
    for j in range(m):
        ha = (ha << 1) + GEAR[p[a0 + j]]
        hb = (hb << 1) + GEAR[p[b0 + j]]
        if (ha >> shift) == 0 and a0 + j >= lo and a0 + j >= 63:
            count += _put_anchor(slots, bits, mask, ha, a0 + j)
        if (hb >> shift) == 0 and b0 + j >= mid and b0 + j >= 63:
            count += _put_anchor(slots, bits, mask, hb, b0 + j)
        # Degenerate input could fill the table: each part stops at its share.
        if count > limit:
            return count
    for j in range(m, len_a):
        ha = (ha << 1) + GEAR[p[a0 + j]]
        if (ha >> shift) == 0 and a0 + j >= lo and a0 + j >= 63:
            count += _put_anchor(slots, bits, mask, ha, a0 + j)
    for j in range(m, len_b):
        hb = (hb << 1) + GEAR[p[b0 + j]]
        if (hb >> shift) == 0 and b0 + j >= mid and b0 + j >= 63:
            count += _put_anchor(slots, bits, mask, hb, b0 + j)
    return count


cdef list _spans_to_segments(size_t *spans, size_t nspans, size_t n, size_t min_gap):
    cdef list out = []
    cdef size_t k, pos = 0, lo, hi
    for k in range(0, nspans, 3):
        lo = spans[k]
        hi = spans[k + 1]
        if lo < min_gap:  # a short unshared head is not worth its own window
            lo = 0
        if lo > pos:
            out.append((pos, lo, False, 0))
        out.append((lo, hi, True, spans[k + 2]))
        pos = hi
    if pos < n:
        if out and n - pos < min_gap:
            lo, hi, shared, hint = out[len(out) - 1]
            out[len(out) - 1] = (lo, n, shared, hint)
        else:
            out.append((pos, n, False, 0))
    return out
