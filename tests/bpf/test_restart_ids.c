// SPDX-License-Identifier: Apache-2.0
/*
 * A restart on real pinned maps never gives an id another meaning.
 *
 * Agent A compiles cluster A and applies it to pinned maps (a private bpffs
 * directory), then stops without cleanup. The cluster changes (random pod,
 * namespace and policy events: policies renamed, reordered, gone). Agent B
 * opens the same pins, compiles cluster B and reconciles; a write hook
 * mirrors every single map write (value read back from the kernel map) into
 * a userspace copy and checks every verdict of it (tests/lib/restartcheck.h):
 * none may be one that neither A nor B gives. Without the seed this fails
 * (shown by the first test, so the check can fail); seeded from the pinned
 * maps it holds, the maps end equal to B, and surviving local pods keep
 * their ep_id. Needs root; fails (never skips) when it cannot run.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>

#include "compiler.h"
#include "dataplane.h"
#include "log.h"
#include "../lib/gencluster.h"
#include "../lib/restartcheck.h"

static int g_seq;

static void new_bpffs(char *buf, size_t len)
{
	snprintf(buf, len, "/sys/fs/bpf/vkt-h12-%d-%d", (int)getpid(), ++g_seq);
}

/* Pins left by a failed test (an assert skips remove_pins()). */
static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf /sys/fs/bpf/vkt-h12-%d-*", (int)getpid());
	if (system(cmd))
		fprintf(stderr, "test_restart_ids: could not remove pins: %s\n", cmd);
}

static struct vakt_dataplane *open_dp(const char *bpffs)
{
	struct vakt_dataplane_opts o = { .bpffs = bpffs };
	struct vakt_dataplane *dp;
	int err = 0;

	dp = vakt_dataplane_open(&o, &err);
	if (!dp)
		fail_msg("vakt_dataplane_open(%s) failed: %d", bpffs, err);
	return dp;
}

static void remove_pins(const char *bpffs)
{
	struct vakt_dataplane *dp = open_dp(bpffs);

	vakt_dataplane_close(dp, 1);
	assert_int_not_equal(access(bpffs, F_OK), 0);
}

struct cmp {
	const struct vakt_tables *other;
	enum vakt_table_id id;
	size_t diff;
};

static int cmp_cb(void *arg, const void *key, const void *val)
{
	struct cmp *c = arg;
	const void *o = vakt_tables_get(c->other, c->id, key);

	if (!o || memcmp(o, val, vakt_table_value_size(c->id)))
		c->diff++;
	return 0;
}

/* The maps hold what the tables hold (endpoint flags may carry the writer's marks). */
static void assert_same_entries(const struct vakt_tables *maps, const struct vakt_tables *t)
{
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct cmp c = { maps, (enum vakt_table_id)id, 0 };

		assert_int_equal(vakt_tables_count(maps, c.id), vakt_tables_count(t, c.id));
		vakt_tables_foreach(t, c.id, cmp_cb, &c);
		assert_int_equal(c.diff, 0);
	}
}

/* --- the write hook: mirror each write, check every verdict ---------------------------- */

struct hook {
	struct vakt_dataplane *dp;
	struct vakt_rcheck *rc;
};

static void on_write(void *arg, const char *map, int del, const void *key)
{
	struct hook *h = arg;
	unsigned char val[64];
	int id, fd;

	if (!key)
		return; /* the generation bump */
	for (id = 0; id < VAKT_T_COUNT; id++)
		if (!strcmp(map, vakt_table_name((enum vakt_table_id)id)))
			break;
	if (id == VAKT_T_COUNT)
		return;
	/* Deletes are reported just before they happen: check the state after. */
	if (del) {
		vakt_rcheck_write(h->rc, (enum vakt_table_id)id, key, NULL);
		return;
	}
	fd = vakt_dataplane_map_fd(h->dp, map);
	assert_true(fd >= 0);
	/* An exact LPM key exists: the lookup returns exactly its value. */
	assert_int_equal(bpf_map_lookup_elem(fd, key, val), 0);
	vakt_rcheck_write(h->rc, (enum vakt_table_id)id, key, val);
}

/* --- one restart ---------------------------------------------------------------------- */

struct result {
	size_t writes, violations, ep_kept, ep_checked;
	char first[512];
};

struct epk {
	const struct vakt_tables *a;
	const struct vakt_compiler *ca, *cb;
	struct result *r;
};

static int ep_kept_cb(void *arg, const void *key, const void *val)
{
	struct epk *k = arg;
	const struct vakt_ep_val *b = val;
	const struct vakt_ep_val *a = vakt_tables_endpoint(k->a, key);
	struct vakt_ep_meta ma, mb;

	if (!a || vakt_compiler_ep_meta(k->ca, a->ep_id, &ma) ||
	    vakt_compiler_ep_meta(k->cb, b->ep_id, &mb) || strcmp(ma.ns, mb.ns) ||
	    strcmp(ma.name, mb.name))
		return 0;
	k->r->ep_checked++;
	k->r->ep_kept += a->ep_id == b->ep_id;
	return 0;
}

static void restart(uint64_t seed, int seeded, struct result *r)
{
	struct vakt_gen_opts go = {
		.seed = seed, .namespaces = 4, .pods = 32, .policies = 14, .nodes = 2,
		.apps_per_ns = 4, .dual_stack_pct = 20, .named_port_ipblocks = 1,
	};
	struct vakt_compiler_opts co = { .node = "node-0" };
	struct vakt_compiler_seed s = { 0 }, pinned = { 0 };
	struct vakt_store *sa = vakt_store_new(), *sb;
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_compiler *ca, *cb;
	struct vakt_dataplane *dp;
	struct hook h;
	struct epk k;
	char bpffs[128];

	memset(r, 0, sizeof(*r));
	assert_non_null(sa);
	assert_non_null(g);
	new_bpffs(bpffs, sizeof(bpffs));

	/* Agent A. */
	assert_int_equal(vakt_gen_populate(g, sa), 0);
	ca = vakt_compiler_new(sa, &co);
	assert_non_null(ca);
	assert_int_equal(vakt_compiler_full(ca), 0);
	dp = open_dp(bpffs);
	assert_int_equal(vakt_dataplane_reconcile(dp, vakt_compiler_tables(ca), ca), 0);
	vakt_dataplane_close(dp, 0);

	/* Down; the cluster changes. */
	sb = vakt_gen_store_copy(sa);
	assert_non_null(sb);
	for (int i = 0; i < 40; i++)
		assert_int_equal(vakt_gen_event(g, sb, NULL, 0), 0);

	/* Agent B. */
	dp = open_dp(bpffs);
	assert_int_equal(vakt_dataplane_pinned_ids(dp, &pinned), 0);
	assert_non_null(pinned.t);
	assert_same_entries(pinned.t, vakt_compiler_tables(ca));
	cb = vakt_compiler_new(sb, &co);
	assert_non_null(cb);
	if (seeded) {
		assert_int_equal(vakt_dataplane_pinned_ids(dp, &s), 0);
		assert_int_equal(vakt_compiler_seed(cb, &s), 0);
	}
	assert_int_equal(vakt_compiler_full(cb), 0);

	h.dp = dp;
	h.rc = vakt_rcheck_new(vakt_compiler_tables(ca), vakt_compiler_tables(cb), pinned.t);
	assert_non_null(h.rc);
	vakt_rcheck_now(h.rc);
	assert_int_equal(vakt_rcheck_violations(h.rc), 0);
	vakt_dataplane_set_write_hook(dp, on_write, &h);
	assert_int_equal(vakt_dataplane_reconcile(dp, vakt_compiler_tables(cb), cb), 0);
	vakt_dataplane_set_write_hook(dp, NULL, NULL);
	if (seeded)
		vakt_compiler_release_seed(cb);
	r->writes = vakt_rcheck_writes(h.rc);
	r->violations = vakt_rcheck_violations(h.rc);
	snprintf(r->first, sizeof(r->first), "%s", vakt_rcheck_first(h.rc));
	vakt_rcheck_free(h.rc);

	/* The maps now hold exactly B. */
	vakt_compiler_seed_free(&pinned);
	assert_int_equal(vakt_dataplane_pinned_ids(dp, &pinned), 0);
	assert_same_entries(pinned.t, vakt_compiler_tables(cb));
	k = (struct epk){ vakt_compiler_tables(ca), ca, cb, r };
	vakt_tables_foreach(vakt_compiler_tables(cb), VAKT_T_ENDPOINTS, ep_kept_cb, &k);

	vakt_compiler_seed_free(&pinned);
	vakt_dataplane_close(dp, 0);
	remove_pins(bpffs);
	vakt_compiler_free(cb);
	vakt_compiler_free(ca);
	vakt_store_free(sb);
	vakt_store_free(sa);
	vakt_gen_free(g);
}

static void test_unseeded_restart_on_pinned_maps_aliases_ids(void **state)
{
	struct result r;
	size_t hit = 0;

	(void)state;
	for (uint64_t seed = 1; seed <= 3; seed++) {
		restart(seed, 0, &r);
		if (r.violations && !hit++)
			print_message("without the seed, e.g. %s\n", r.first);
	}
	assert_true(hit > 0);
}

static void test_seeded_restart_on_pinned_maps_never_allows_what_neither_allows(void **state)
{
	size_t writes = 0, kept = 0, checked = 0;
	struct result r;

	(void)state;
	for (uint64_t seed = 1; seed <= 3; seed++) {
		restart(seed, 1, &r);
		if (r.violations)
			fail_msg("seed %llu: %s", (unsigned long long)seed, r.first);
		writes += r.writes;
		kept += r.ep_kept;
		checked += r.ep_checked;
	}
	print_message("%zu map writes checked; %zu/%zu surviving endpoints kept their ep_id\n",
		      writes, kept, checked);
	assert_true(writes > 0);
	assert_true(checked > 0);
	assert_int_equal(kept, checked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unseeded_restart_on_pinned_maps_aliases_ids),
		cmocka_unit_test(test_seeded_restart_on_pinned_maps_never_allows_what_neither_allows),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_restart_ids: needs root (BPF, bpffs)\n");
		return 1;
	}
	/* close(dp, 1) detaches ours in the whole namespace: keep it private. */
	if (unshare(CLONE_NEWNET)) {
		perror("test_restart_ids: unshare(CLONE_NEWNET)");
		return 1;
	}
	atexit(cleanup);
	vakt_log_set_level(VAKT_LOG_WARN);
	vakt_log_hook_libbpf();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
