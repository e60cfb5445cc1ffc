/* Our single entry point to the vendored xdelta3 header.
 *
 * xdelta3.h defines one-letter printf helper macros (W, Q, Z) and a few short debug macros
 * that would collide with identifiers in the Cython-generated translation unit; they are
 * only needed inside xdelta3.c, so they are removed here after the include. */
#ifndef DG_XD3_H
#define DG_XD3_H

/* Python.h, included first, already chose these feature-test macros; xdelta3.h defines them
 * again with other values, which would only earn a redefinition warning. */
#undef _POSIX_SOURCE
#undef _ISOC99_SOURCE
#include "xdelta3.h"

#undef W
#undef Q
#undef Z
#undef XPR
#undef NT
#undef NTR
#undef DP
#undef RINT

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Adler-32 (zlib's, starting at 1), as VCDIFF windows carry it. xdelta3's own is a scalar
 * loop of dependent additions; this one sums 16 bytes per step with SSE2 (part of every
 * x86-64): s1 through SAD against zero, s2 through 16-bit multiply-adds by the weights
 * 16..1, and the 16 * s1 carried into s2 by each step through a running sum of s1. It is the
 * checksum every decoded window is verified with, and every encoded window carries. */
#define DG_ADLER_BASE 65521U
#define DG_ADLER_NMAX 5552U /* the largest n with 255 n (n + 1) / 2 + (n + 1) (BASE - 1) < 2^32 */

static inline uint32_t dg_adler32_scalar(uint32_t s1, uint32_t s2, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n < DG_ADLER_NMAX ? n : DG_ADLER_NMAX;
        n -= k;
        while (k--) {
            s1 += *p++;
            s2 += s1;
        }
        s1 %= DG_ADLER_BASE;
        s2 %= DG_ADLER_BASE;
    }
    return (s2 << 16) | s1;
}

static inline uint32_t dg_adler32(const uint8_t *p, size_t n)
{
    uint32_t s1 = 1, s2 = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    const __m128i w_lo = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9);
    const __m128i w_hi = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
    while (n >= 16) {
        /* Blocks of 16 bytes, at most NMAX bytes between reductions: per 32-bit lane, the sum
         * of bytes stays below 2^21, their running sum below 2^29, the weighted sums below
         * 2^23; the totals are combined in 64 bits. */
        size_t blocks = (n < DG_ADLER_NMAX ? n : DG_ADLER_NMAX) / 16;
        __m128i v_s1 = zero, v_ps = zero, v_s2 = zero;
        size_t i;
        uint64_t a, b, ps;
        uint32_t t[4];
        n -= blocks * 16;
        for (i = 0; i < blocks; i++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * i));
            v_ps = _mm_add_epi32(v_ps, v_s1);
            v_s1 = _mm_add_epi32(v_s1, _mm_sad_epu8(x, zero));
            v_s2 = _mm_add_epi32(v_s2, _mm_madd_epi16(_mm_unpacklo_epi8(x, zero), w_lo));
            v_s2 = _mm_add_epi32(v_s2, _mm_madd_epi16(_mm_unpackhi_epi8(x, zero), w_hi));
        }
        p += blocks * 16;
        _mm_storeu_si128((__m128i *)t, v_s1);
        a = (uint64_t)t[0] + t[1] + t[2] + t[3];
        _mm_storeu_si128((__m128i *)t, v_ps);
        ps = (uint64_t)t[0] + t[1] + t[2] + t[3];
        _mm_storeu_si128((__m128i *)t, v_s2);
        b = (uint64_t)t[0] + t[1] + t[2] + t[3];
        b += 16 * ps + 16 * (uint64_t)blocks * s1 + s2;
        s1 = (uint32_t)((s1 + a) % DG_ADLER_BASE);
        s2 = (uint32_t)(b % DG_ADLER_BASE);
    }
#endif
    return dg_adler32_scalar(s1, s2, p, n);
}

/* One anchor into the reference's table, from any number of threads at once (linear probing;
 * a slot is a tag above a position, 0 when empty). Where several positions have the same tag,
 * the table keeps the smallest, whatever the order the threads insert in, so the table (and
 * every delta made with it) does not depend on scheduling. Returns 1 when the tag was new. */
static inline int dg_anchor_put(uint64_t *slots, size_t mask, size_t slot, uint64_t tag,
                                uint64_t value, uint64_t tag_mask)
{
    for (;;) {
        uint64_t cur = __atomic_load_n(&slots[slot], __ATOMIC_RELAXED);
        if (cur == 0) {
            if (__atomic_compare_exchange_n(&slots[slot], &cur, value, 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                return 1;
            continue; /* taken meanwhile: look at it again */
        }
        if ((cur & tag_mask) == tag) {
            if (cur <= value)
                return 0;
            if (__atomic_compare_exchange_n(&slots[slot], &cur, value, 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        slot = (slot + 1) & mask;
    }
}

#endif
