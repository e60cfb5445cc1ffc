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

#endif
