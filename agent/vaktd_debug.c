// SPDX-License-Identifier: Apache-2.0
/*
 * vaktd_debug.c - /debug/tables: do the pinned maps hold exactly what the
 * compiler's tables say? The end-to-end tests compare this, after every API
 * fault, with a fresh compile of the API server's objects
 * (vaktd --dump-tables).
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "dataplane.h"
#include "tables.h"
#include "vaktd_agent.h"

#define MAX_REPORTED 20
#define KEY_MAX 64 /* larger than any table key */

struct cmp {
	enum vakt_table_id id;
	int fd;
	const struct vakt_tables *t;
	FILE *out;
	unsigned long missing, extra, changed, reported;
};

static void report(struct cmp *c, const char *what, const void *key)
{
	const unsigned char *k = key;

	if (c->reported++ >= MAX_REPORTED)
		return;
	fprintf(c->out, "# diff %s %s ", vakt_table_name(c->id), what);
	for (size_t i = 0; i < vakt_table_key_size(c->id); i++)
		fprintf(c->out, "%02x", k[i]);
	fputc('\n', c->out);
}

/* The map writer adds FAIL_CLOSED to an endpoint it could not write fully. */
static int same_value(enum vakt_table_id id, const void *map_val, const void *table_val)
{
	struct vakt_ep_val a, b;

	if (id != VAKT_T_ENDPOINTS)
		return !memcmp(map_val, table_val, vakt_table_value_size(id));
	memcpy(&a, map_val, sizeof(a));
	memcpy(&b, table_val, sizeof(b));
	a.flags &= ~VAKT_EPF_FAIL_CLOSED;
	b.flags &= ~VAKT_EPF_FAIL_CLOSED;
	return !memcmp(&a, &b, sizeof(a));
}

static int table_entry(void *arg, const void *key, const void *val)
{
	struct cmp *c = arg;
	unsigned char mval[KEY_MAX];

	if (bpf_map_lookup_elem(c->fd, key, mval)) {
		c->missing++;
		report(c, "missing", key);
	} else if (!same_value(c->id, mval, val)) {
		c->changed++;
		report(c, "changed", key);
	}
	return 0;
}

static int map_entries(struct cmp *c)
{
	unsigned char key[KEY_MAX], next[KEY_MAX];
	void *prev = NULL;
	int err;

	while (!(err = bpf_map_get_next_key(c->fd, prev, next))) {
		if (!vakt_tables_get(c->t, c->id, next)) {
			c->extra++;
			report(c, "extra", next);
		}
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return err == -ENOENT ? 0 : err;
}

int vaktd_debug_tables(struct vakt_dataplane *dp, struct vakt_compiler *comp, FILE *out)
{
	const struct vakt_tables *t = vakt_compiler_tables(comp);
	struct cmp c = { .t = t };
	char *diffs = NULL;
	size_t len = 0;
	int err = 0;

	c.out = open_memstream(&diffs, &len);
	if (!c.out)
		return -ENOMEM;
	for (int id = 0; id < VAKT_T_COUNT && !err; id++) {
		c.id = (enum vakt_table_id)id;
		c.fd = vakt_dataplane_map_fd(dp, vakt_table_name(c.id));
		if (c.fd < 0) {
			err = c.fd;
			break;
		}
		vakt_tables_foreach(t, c.id, table_entry, &c);
		err = map_entries(&c);
	}
	if (fclose(c.out))
		err = err ? err : -ENOMEM;
	if (err) {
		fprintf(out, "# maps: unreadable (err=%d)\n", err);
	} else if (c.missing || c.extra || c.changed) {
		fprintf(out, "# maps: differ (missing=%lu extra=%lu changed=%lu)\n%s", c.missing,
			c.extra, c.changed, diffs ? diffs : "");
	} else {
		fprintf(out, "# maps: equal (ipcache=%zu endpoints=%zu cidr=%zu policy=%zu)\n",
			vakt_tables_count(t, VAKT_T_IPCACHE), vakt_tables_count(t, VAKT_T_ENDPOINTS),
			vakt_tables_count(t, VAKT_T_CIDR), vakt_tables_count(t, VAKT_T_POLICY));
	}
	free(diffs);
	return err ? err : vakt_compiler_dump_canonical(comp, out);
}
