// SPDX-License-Identifier: Apache-2.0
/*
 * Restarts without aliased ids, in userspace: the tables of a compile of
 * cluster A stand for the pinned maps; a new compiler compiles the changed
 * cluster B (random events: pods, namespaces, policies added, changed,
 * deleted) and the maps are moved from A to B in the map writer's reconcile
 * order (tests/lib/restartcheck.h). After every single write, no verdict may
 * be one that neither A nor B gives. Without the seed this fails (the test
 * shows it does, so the check can fail); with it, it holds, the new tables
 * mean exactly what a fresh compile of B means, and surviving local pods
 * keep their ep_id. tests/bpf/test_restart_ids.c does the same on real
 * pinned maps through the dataplane API.
 *
 * VAKT_SEEDS overrides the number of random clusters per test.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compiler.h"
#include "log.h"
#include "../lib/gencluster.h"
#include "../lib/restartcheck.h"

static unsigned int env_uint(const char *name, unsigned int dflt)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned int)strtoul(v, NULL, 10) : dflt;
}

static struct vakt_store *store_copy(const struct vakt_store *s)
{
	struct vakt_store *d = vakt_gen_store_copy(s);

	assert_non_null(d);
	return d;
}

/* What vakt_dataplane_pinned_ids() would read from maps holding t. */
static struct vakt_tables *tables_copy(const struct vakt_tables *t)
{
	struct vakt_tables *d = vakt_rcheck_tables_copy(t);

	assert_non_null(d);
	return d;
}

/* --- one restart ------------------------------------------------------------------- */

struct restart {
	struct vakt_store *sa, *sb;
	struct vakt_compiler *ca, *cb;
	struct vakt_gen *g;
	size_t writes, violations, ep_kept, ep_checked;
	char first[512];
};

/* A local pod at the same address before and after keeps its ep_id. */
static int ep_kept_cb(void *arg, const void *key, const void *val)
{
	struct restart *r = arg;
	const struct vakt_ep_val *b = val;
	const struct vakt_ep_val *a = vakt_tables_endpoint(vakt_compiler_tables(r->ca), key);
	struct vakt_ep_meta ma, mb;

	if (!a || vakt_compiler_ep_meta(r->ca, a->ep_id, &ma) ||
	    vakt_compiler_ep_meta(r->cb, b->ep_id, &mb) || strcmp(ma.ns, mb.ns) ||
	    strcmp(ma.name, mb.name))
		return 0;
	r->ep_checked++;
	r->ep_kept += a->ep_id == b->ep_id;
	return 0;
}

static void restart_run(struct restart *r, uint64_t seed, const char *node, unsigned int events,
			int seeded)
{
	struct vakt_gen_opts go = {
		.seed = seed, .namespaces = 4, .pods = 32, .policies = 14, .nodes = 2,
		.apps_per_ns = 4, .dual_stack_pct = 20, .named_port_ipblocks = 1,
	};
	struct vakt_compiler_opts co = { .node = node };
	struct vakt_compiler_seed s = { 0 };
	struct vakt_rcheck *rc;
	char *d1, *d2;

	memset(r, 0, sizeof(*r));
	r->g = vakt_gen_new(&go);
	r->sa = vakt_store_new();
	assert_non_null(r->g);
	assert_non_null(r->sa);
	assert_int_equal(vakt_gen_populate(r->g, r->sa), 0);
	r->ca = vakt_compiler_new(r->sa, &co);
	assert_non_null(r->ca);
	assert_int_equal(vakt_compiler_full(r->ca), 0);

	/* The agent is down; the cluster changes. */
	r->sb = store_copy(r->sa);
	for (unsigned int i = 0; i < events; i++)
		assert_int_equal(vakt_gen_event(r->g, r->sb, NULL, 0), 0);

	r->cb = vakt_compiler_new(r->sb, &co);
	assert_non_null(r->cb);
	if (seeded) {
		s.t = tables_copy(vakt_compiler_tables(r->ca));
		assert_int_equal(vakt_compiler_seed(r->cb, &s), 0);
		assert_null(s.t);
	}
	assert_int_equal(vakt_compiler_full(r->cb), 0);

	/* The seed changes numbers only: B means what a fresh compile of B means. */
	d1 = vakt_gen_dump(r->cb);
	d2 = vakt_gen_fresh_dump(r->sb, node);
	assert_non_null(d1);
	assert_non_null(d2);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);

	rc = vakt_rcheck_new(vakt_compiler_tables(r->ca), vakt_compiler_tables(r->cb),
			     vakt_compiler_tables(r->ca));
	assert_non_null(rc);
	vakt_rcheck_now(rc);
	assert_int_equal(vakt_rcheck_violations(rc), 0); /* the checker accepts A itself */
	r->writes = vakt_rcheck_reconcile(rc, vakt_compiler_tables(r->cb));
	assert_true(vakt_rcheck_tables_equal(vakt_rcheck_mirror(rc), vakt_compiler_tables(r->cb)));
	r->violations = vakt_rcheck_violations(rc);
	snprintf(r->first, sizeof(r->first), "%s", vakt_rcheck_first(rc));
	vakt_rcheck_free(rc);
	vakt_tables_foreach(vakt_compiler_tables(r->cb), VAKT_T_ENDPOINTS, ep_kept_cb, r);
	vakt_compiler_release_seed(r->cb);
}

static void restart_free(struct restart *r)
{
	vakt_compiler_free(r->cb);
	vakt_compiler_free(r->ca);
	vakt_store_free(r->sb);
	vakt_store_free(r->sa);
	vakt_gen_free(r->g);
}

/* --- tests ---------------------------------------------------------------------------- */

static void test_unseeded_restart_can_allow_what_neither_compile_allows(void **state)
{
	unsigned int seeds = env_uint("VAKT_SEEDS", 6);
	size_t violations = 0, hit = 0;
	struct restart r;

	(void)state;
	for (unsigned int i = 1; i <= seeds; i++) {
		restart_run(&r, i, "node-0", 40, 0);
		if (r.violations && !hit++)
			print_message("without the seed, e.g. %s\n", r.first);
		violations += r.violations;
		restart_free(&r);
	}
	print_message("unseeded: %zu of %u restarts aliased (%zu bad verdicts)\n", hit, seeds,
		      violations);
	assert_true(hit > 0);
}

static void seeded_runs(uint64_t base, const char *node)
{
	unsigned int seeds = env_uint("VAKT_SEEDS", 6);
	size_t writes = 0, kept = 0, checked = 0;
	struct restart r;

	for (unsigned int i = 1; i <= seeds; i++) {
		restart_run(&r, base + i, node, 40, 1);
		if (r.violations)
			fail_msg("seed %llu node %s: %s", (unsigned long long)(base + i),
				 node ? node : "(all)", r.first);
		writes += r.writes;
		kept += r.ep_kept;
		checked += r.ep_checked;
		restart_free(&r);
	}
	print_message("seeded: %zu writes checked, %zu/%zu surviving endpoints kept their ep_id\n",
		      writes, kept, checked);
	assert_true(writes > 0);
	assert_true(checked > 0);
	assert_int_equal(kept, checked);
}

static void test_seeded_restart_never_allows_what_neither_allows_on_a_node(void **state)
{
	(void)state;
	seeded_runs(0, "node-0");
}

static void test_seeded_restart_never_allows_what_neither_allows_every_pod_local(void **state)
{
	(void)state;
	seeded_runs(100, NULL);
}

/* Nothing changed while the agent was down: every id is adopted, nothing is written. */
static void test_seeded_restart_of_an_unchanged_cluster_writes_nothing(void **state)
{
	struct restart r;

	(void)state;
	for (unsigned int i = 1; i <= 4; i++) {
		restart_run(&r, 200 + i, i % 2 ? "node-0" : NULL, 0, 1);
		assert_int_equal(r.violations, 0);
		assert_int_equal(r.writes, 0);
		assert_true(vakt_rcheck_tables_equal(vakt_compiler_tables(r.ca), vakt_compiler_tables(r.cb)));
		restart_free(&r);
	}
}

/* Reserved ids are not handed out until the release, then (their batch
 * written) they are reused. */
static void test_reserved_ids_come_back_after_the_release(void **state)
{
	struct vakt_gen_opts go = { .seed = 9, .namespaces = 2, .pods = 24, .policies = 6,
				    .nodes = 1, .apps_per_ns = 6 };
	struct vakt_compiler_opts co = { .node = "node-0" };
	struct vakt_store *sa = vakt_store_new(), *sb = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_compiler *ca, *cb;
	struct vakt_compiler_seed s = { 0 };
	struct vakt_pod *p;
	uint32_t max_a = 0, id;
	const struct vakt_ip_val *v;

	(void)state;
	assert_int_equal(vakt_gen_populate(g, sa), 0);
	ca = vakt_compiler_new(sa, &co);
	assert_int_equal(vakt_compiler_full(ca), 0);
	/* B is empty but for new pods: no identity of A can be adopted. */
	cb = vakt_compiler_new(sb, &co);
	s.t = tables_copy(vakt_compiler_tables(ca));
	assert_int_equal(vakt_compiler_seed(cb, &s), 0);
	assert_int_equal(vakt_compiler_full(cb), 0);
	{
		struct vakt_compiler_stats st;

		vakt_compiler_stats(ca, &st);
		max_a = VAKT_ID_FIRST_POD + (uint32_t)st.identities - 1;
	}
	p = vakt_gen_pod(g, 0);
	assert_non_null(p);
	assert_int_equal(vakt_store_put_pod(sb, vakt_pod_dup(p)), 0);
	v = vakt_tables_ipcache(vakt_compiler_tables(cb), &p->ips[0]);
	assert_non_null(v);
	id = v->identity;
	assert_true(id > max_a); /* every id of A is reserved */
	assert_int_equal(vakt_store_del_pod(sb, p->ns, p->name), 0);
	/* As vaktd: the reconcile has written the batch, then the seed goes. */
	assert_int_equal(vakt_rcheck_mark_written(vakt_compiler_tables(cb)), 0);
	vakt_compiler_release_seed(cb);
	assert_int_equal(vakt_store_put_pod(sb, p), 0);
	v = vakt_tables_ipcache(vakt_compiler_tables(cb), &p->ips[0]);
	assert_non_null(v);
	assert_true(v->identity <= max_a); /* released: the lowest ids come back first */
	vakt_compiler_free(cb);
	vakt_compiler_free(ca);
	vakt_gen_free(g);
	vakt_store_free(sb);
	vakt_store_free(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unseeded_restart_can_allow_what_neither_compile_allows),
		cmocka_unit_test(test_seeded_restart_never_allows_what_neither_allows_on_a_node),
		cmocka_unit_test(test_seeded_restart_never_allows_what_neither_allows_every_pod_local),
		cmocka_unit_test(test_seeded_restart_of_an_unchanged_cluster_writes_nothing),
		cmocka_unit_test(test_reserved_ids_come_back_after_the_release),
	};

	vakt_log_set_level(VAKT_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
