/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfload_tables.h - copy compiled tables (agent/tables.h) into the maps of
 * a datapath loaded with bpfload.h.
 *
 * Header-only so that libvakttest.a itself needs nothing from libvakt.a:
 * only tests that fill maps from compiled tables pull that code in.
 */
#ifndef VAKT_TEST_BPFLOAD_TABLES_H
#define VAKT_TEST_BPFLOAD_TABLES_H

#include <errno.h>
#include <stdio.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfload.h"
#include "dptest.h"
#include "tables.h"

#include "skel.h"

/*
 * Copies every table of t into the maps of the same name: the fill that
 * `vakt sim --dataplane` uses (agent/dptest.c). Returns 0 or -errno.
 */
static inline int dp_fill_tables(struct vakt_bpf *skel, const struct vakt_tables *t)
{
	return vakt_dptest_fill_obj(skel->obj, t);
}

#endif /* VAKT_TEST_BPFLOAD_TABLES_H */
