/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfload_tables.h - copy compiled tables (agent/tables.h) into the maps of
 * a datapath loaded with bpfload.h.
 *
 * Header-only so that libvakttest.a itself needs nothing from libvakt.a:
 * only tests that fill maps from compiled tables pull the table code in.
 */
#ifndef VAKT_TEST_BPFLOAD_TABLES_H
#define VAKT_TEST_BPFLOAD_TABLES_H

#include <errno.h>
#include <stdio.h>

#include <bpf/bpf.h>

#include "bpfload.h"
#include "tables.h"

struct dp_fill_arg {
	int fd;
	const char *name;
};

static inline int dp_fill_one(void *arg, const void *key, const void *val)
{
	struct dp_fill_arg *a = arg;

	if (bpf_map_update_elem(a->fd, key, val, BPF_ANY)) {
		int err = -errno;

		fprintf(stderr, "dp_fill_tables: update %s failed err=%d\n", a->name, err);
		return err;
	}
	return 0;
}

/* Copies every table of t into the maps of the same name. Returns 0 or -errno. */
static inline int dp_fill_tables(struct vakt_bpf *skel, const struct vakt_tables *t)
{
	int id, err;

	for (id = 0; id < VAKT_T_COUNT; id++) {
		struct dp_fill_arg a = { .name = vakt_table_name((enum vakt_table_id)id) };

		a.fd = dp_map_fd(skel, a.name);
		if (a.fd < 0)
			return a.fd;
		err = vakt_tables_foreach(t, (enum vakt_table_id)id, dp_fill_one, &a);
		if (err)
			return err;
	}
	return 0;
}

#endif /* VAKT_TEST_BPFLOAD_TABLES_H */
