/* SPDX-License-Identifier: Apache-2.0 */
/*
 * skel.h - includes the bpftool-generated skeleton (build/vakt.skel.h) for
 * the two places that load the program: the agent (dataplane.c) and the
 * BPF_PROG_TEST_RUN helper (dptest.c).
 *
 * The generated code casts const away, and the clang analyzer reports a leak
 * in its error path because it cannot see that bpf_object__destroy_skeleton()
 * frees: not ours to fix. Under the analyzer only (never in a binary), its
 * allocations go through an opaque declaration the analyzer does not track.
 */
#ifndef VAKT_SKEL_H
#define VAKT_SKEL_H

#include <stdlib.h>

#ifdef __clang_analyzer__
void *vakt_analyzer_opaque_calloc(size_t n, size_t size);
#define calloc vakt_analyzer_opaque_calloc
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "vakt.skel.h"
#pragma GCC diagnostic pop
#ifdef __clang_analyzer__
#undef calloc
#endif

#endif /* VAKT_SKEL_H */
