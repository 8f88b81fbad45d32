// SPDX-License-Identifier: Apache-2.0
/*
 * Ids freed and allocated within one batch never alias, and an endpoint
 * policy changing while endpoints join or leave it shows none of them
 * content of the other side of the batch.
 *
 * Between two applies the compiler compiles any number of events; the map
 * writer then writes the batch make-before-break: puts of policy, cidr and
 * ipcache entries, endpoint records, then deletes. When content goes (a pod
 * with a label set of its own, an ipBlock policy, an endpoint policy) its id
 * is freed; if new content of the same batch got that id, the maps would
 * hold, between the puts and the deletes, entries of both meanings under it
 * and could allow what neither the state before the batch nor the one after
 * it allows (a peer judged by entries meant for another label set, an
 * endpoint seeing another policy's entries).
 *
 * Random batches are compiled incrementally, and each batch is drained,
 * exactly as vakt_dataplane_apply() writes it, into a copy of the maps
 * (tests/lib/restartcheck.h): after every single write, no verdict may allow
 * what neither the state before nor the state after the batch allows. At
 * the end the tables still equal a fresh full compile.
 *
 * Churn batches change pods or policies (vakt_gen_event_churn(): objects
 * added, deleted, or replaced by one of other content, which frees ids and
 * allocates others), one kind per batch, and are checked strictly.
 *
 * Mixed batches add any event (pods relabelled and moved, namespaces
 * relabelled, policies changed in place: an endpoint policy's content and
 * its users changing in one batch) and churn of both kinds. There an
 * endpoint that switches policies while its peer changes identity can meet
 * a "cross" of the two sides (its old record and entries with the peer's
 * new identity, or the reverse) that no order of single writes avoids, so
 * those verdicts are accepted, and only those (vakt_rcheck_allow_cross(),
 * docs/architecture.md, map writer). Two hand-written batches check
 * strictly that an endpoint joining or leaving an endpoint policy whose
 * content changes never sees that policy's content of the other side.
 *
 * VAKT_SEEDS and VAKT_BATCHES override the number of clusters and batches.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
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

/* --- the ids a state of the tables uses, per kind ----------------------------------- */

enum kind { K_IDENT, K_CLASS, K_EPOL, K_EP, K_COUNT };

static const char *const kind_names[K_COUNT] = { "identity", "class", "endpoint policy",
						  "endpoint" };

struct idset {
	uint32_t *v;
	size_t n, cap;
};

static void idset_add(struct idset *s, uint32_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	s->v[s->n++] = id;
}

static int ids_ipcache(void *arg, const void *key, const void *val)
{
	const struct vakt_ip_val *v = val;

	(void)key;
	if (v->identity >= VAKT_ID_FIRST_POD)
		idset_add(&((struct idset *)arg)[K_IDENT], v->identity);
	return 0;
}

static int ids_endpoint(void *arg, const void *key, const void *val)
{
	struct idset *s = arg;
	const struct vakt_ep_val *v = val;

	(void)key;
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++)
		if (v->policy[dir])
			idset_add(&s[K_EPOL], v->policy[dir]);
	idset_add(&s[K_EP], v->ep_id);
	return 0;
}

static int ids_cidr(void *arg, const void *key, const void *val)
{
	const struct vakt_cidr_val *v = val;

	(void)key;
	if (v->class_id)
		idset_add(&((struct idset *)arg)[K_CLASS], v->class_id);
	return 0;
}

static int ids_policy(void *arg, const void *key, const void *val)
{
	struct idset *s = arg;
	const struct vakt_policy_key *k = key;

	(void)val;
	idset_add(&s[K_EPOL], k->policy);
	if (k->peer & VAKT_PEER_CLASS)
		idset_add(&s[K_CLASS], k->peer & ~VAKT_PEER_CLASS);
	else if (k->peer >= VAKT_ID_FIRST_POD)
		idset_add(&s[K_IDENT], k->peer);
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void ids_of(const struct vakt_tables *t, struct idset s[K_COUNT])
{
	memset(s, 0, K_COUNT * sizeof(*s));
	vakt_tables_foreach(t, VAKT_T_IPCACHE, ids_ipcache, s);
	vakt_tables_foreach(t, VAKT_T_ENDPOINTS, ids_endpoint, s);
	vakt_tables_foreach(t, VAKT_T_CIDR, ids_cidr, s);
	vakt_tables_foreach(t, VAKT_T_POLICY, ids_policy, s);
	for (int k = 0; k < K_COUNT; k++) {
		size_t i, j;

		if (s[k].n)
			qsort(s[k].v, s[k].n, sizeof(*s[k].v), u32_cmp);
		for (i = j = 0; i < s[k].n; i++)
			if (!j || s[k].v[j - 1] != s[k].v[i])
				s[k].v[j++] = s[k].v[i];
		s[k].n = j;
	}
}

/* How many ids of x are not in y (both sorted). */
static size_t ids_missing(const struct idset *x, const struct idset *y)
{
	size_t i, j = 0, n = 0;

	for (i = 0; i < x->n; i++) {
		while (j < y->n && y->v[j] < x->v[i])
			j++;
		n += j == y->n || y->v[j] != x->v[i];
	}
	return n;
}

/* --- one random history of batches ---------------------------------------------------- */

struct run {
	size_t batches, writes, violations;
	size_t churn[K_COUNT]; /* batches in which ids of the kind went and others came */
	char first[1024];
};

static void assert_equals_fresh_compile(const struct vakt_store *s, const struct vakt_compiler *c,
					const char *node)
{
	char *inc = vakt_gen_dump(c), *full = vakt_gen_fresh_dump(s, node);

	assert_non_null(inc);
	assert_non_null(full);
	assert_string_equal(inc, full);
	free(inc);
	free(full);
}

/*
 * Events of one batch. Churn: pods or policies added, deleted, replaced.
 * Mixed: any event (pods added, deleted, relabelled, moved; namespaces
 * relabelled; policies added, changed in place, deleted) and churn of both
 * kinds, in one batch.
 */
static void batch_events(struct vakt_gen *g, struct vakt_store *s, int mixed, char desc[][256],
			 size_t *n)
{
	enum vakt_gen_kind kind = vakt_gen_rand(g) % 2 ? VAKT_GEN_PODS : VAKT_GEN_POLICIES;
	size_t want = 2 + vakt_gen_rand(g) % 5;

	for (*n = 0; *n < want; (*n)++) {
		if (!mixed) {
			assert_int_equal(vakt_gen_event_churn(g, s, kind, desc[*n], sizeof(desc[0])), 0);
			continue;
		}
		kind = vakt_gen_rand(g) % 2 ? VAKT_GEN_PODS : VAKT_GEN_POLICIES;
		switch (vakt_gen_rand(g) % 3) {
		case 0:
			assert_int_equal(vakt_gen_event(g, s, desc[*n], sizeof(desc[0])), 0);
			break;
		case 1:
			assert_int_equal(vakt_gen_event_policy_change(g, s, desc[*n],
								      sizeof(desc[0])), 0);
			break;
		default:
			assert_int_equal(vakt_gen_event_churn(g, s, kind, desc[*n], sizeof(desc[0])), 0);
		}
	}
}

static void one_batch(struct run *r, struct vakt_gen *g, struct vakt_store *s,
		      struct vakt_compiler *c, uint64_t seed, int mixed)
{
	struct vakt_tables *t = vakt_compiler_tables(c);
	struct vakt_tables *before = vakt_rcheck_tables_copy(t);
	struct idset ia[K_COUNT], ib[K_COUNT];
	struct vakt_rcheck *rc;
	char desc[8][256];
	size_t nev, i;

	assert_non_null(before);
	ids_of(before, ia);
	batch_events(g, s, mixed, desc, &nev);
	rc = vakt_rcheck_new(before, t, before);
	assert_non_null(rc);
	if (mixed)
		assert_int_equal(vakt_rcheck_allow_cross(rc), 0);
	vakt_rcheck_now(rc);
	assert_int_equal(vakt_rcheck_violations(rc), 0); /* the checker accepts the start */
	r->writes += vakt_rcheck_drain(rc, t);
	assert_true(vakt_rcheck_tables_equal(vakt_rcheck_mirror(rc), t));
	if (vakt_rcheck_violations(rc) && !r->violations) {
		int len = snprintf(r->first, sizeof(r->first), "seed %llu batch %zu: %s; events:",
				   (unsigned long long)seed, r->batches, vakt_rcheck_first(rc));

		for (i = 0; i < nev && len > 0 && (size_t)len < sizeof(r->first); i++)
			len += snprintf(r->first + len, sizeof(r->first) - (size_t)len, " [%s]",
					desc[i]);
	}
	r->violations += vakt_rcheck_violations(rc);
	vakt_rcheck_free(rc);
	ids_of(t, ib);
	for (int k = 0; k < K_COUNT; k++) {
		r->churn[k] += ids_missing(&ia[k], &ib[k]) && ids_missing(&ib[k], &ia[k]);
		free(ia[k].v);
		free(ib[k].v);
	}
	vakt_tables_free(before);
	r->batches++;
}

static void run_seed(struct run *r, uint64_t seed, const char *node, unsigned int batches,
		     int mixed)
{
	struct vakt_gen_opts go = {
		.seed = seed, .namespaces = 4, .pods = 32, .policies = 14, .nodes = 2,
		.apps_per_ns = 4, .dual_stack_pct = 20, .named_port_ipblocks = 1,
	};
	struct vakt_compiler_opts co = { .node = node };
	struct vakt_store *s = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_compiler *c;
	struct vakt_compiler_stats st;

	assert_non_null(s);
	assert_non_null(g);
	assert_int_equal(vakt_gen_populate(g, s), 0);
	c = vakt_compiler_new(s, &co);
	assert_non_null(c);
	assert_int_equal(vakt_compiler_full(c), 0);
	/* The maps now hold the full compile. */
	assert_int_equal(vakt_rcheck_mark_written(vakt_compiler_tables(c)), 0);
	for (unsigned int b = 0; b < batches; b++)
		one_batch(r, g, s, c, seed, mixed);
	assert_equals_fresh_compile(s, c, node);
	vakt_compiler_stats(c, &st);
	assert_int_equal(st.errors, 0);
	vakt_compiler_free(c);
	vakt_gen_free(g);
	vakt_store_free(s);
}

static void batch_runs(uint64_t base, const char *node, int mixed)
{
	unsigned int seeds = env_uint("VAKT_SEEDS", 3), batches = env_uint("VAKT_BATCHES", 12);
	struct run r;

	memset(&r, 0, sizeof(r));
	for (unsigned int i = 1; i <= seeds; i++)
		run_seed(&r, base + i, node, batches, mixed);
	print_message("%zu batches, %zu writes checked; batches freeing and allocating ids of "
		      "one kind: %s %zu, %s %zu, %s %zu, %s %zu\n",
		      r.batches, r.writes, kind_names[K_IDENT], r.churn[K_IDENT],
		      kind_names[K_CLASS], r.churn[K_CLASS], kind_names[K_EPOL], r.churn[K_EPOL],
		      kind_names[K_EP], r.churn[K_EP]);
	if (r.violations)
		fail_msg("%zu verdicts allowed that neither side of their batch allows; first: %s",
			 r.violations, r.first);
	/* The batches really free ids and allocate others, or nothing is proved. */
	assert_true(r.writes > 0);
	assert_true(r.churn[K_IDENT] > 0);
	assert_true(r.churn[K_CLASS] > 0);
	assert_true(r.churn[K_EPOL] > 0);
}

static void test_batch_never_allows_what_neither_side_allows_on_a_node(void **state)
{
	(void)state;
	batch_runs(0, "node-0", 0);
}

static void test_batch_never_allows_what_neither_side_allows_every_pod_local(void **state)
{
	(void)state;
	batch_runs(100, NULL, 0);
}

/* --- hand-written batches: an endpoint policy whose content and users change at once --- */

static struct vakt_pod *mkpod(const char *name, const char *ip, const char *app,
			       const char *node)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup("ns");
	p->name = strdup(name);
	p->node = strdup(node);
	assert_int_equal(vakt_addr_parse(ip, &p->ips[0], NULL), 0);
	p->nips = 1;
	assert_int_equal(vakt_labels_set(&p->labels, "app", app), 0);
	return p;
}

/* Ingress policy selecting app=target (every pod: NULL), from app=peer on TCP 80. */
static struct vakt_policy *mkpol(const char *name, const char *target, const char *peer)
{
	struct vakt_policy *p = calloc(1, sizeof(*p));
	struct vakt_rule *r;

	assert_non_null(p);
	p->ns = strdup("ns");
	p->name = strdup(name);
	p->types = 1 << VAKT_DIR_INGRESS;
	if (target)
		assert_int_equal(vakt_labels_set(&p->pod_sel.match_labels, "app", target), 0);
	r = p->rules[VAKT_DIR_INGRESS] = calloc(1, sizeof(*r));
	assert_non_null(r);
	p->nrules[VAKT_DIR_INGRESS] = 1;
	r->peers = calloc(1, sizeof(*r->peers));
	r->peers[0].pod_sel = calloc(1, sizeof(*r->peers[0].pod_sel));
	assert_non_null(r->peers[0].pod_sel);
	assert_int_equal(vakt_labels_set(&r->peers[0].pod_sel->match_labels, "app", peer), 0);
	r->npeers = 1;
	r->ports = calloc(1, sizeof(*r->ports));
	r->ports[0] = (struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = 80 };
	r->nports = 1;
	return p;
}

/*
 * Local pods x, z and peers a, b, c on another node; policy "both" selects
 * every pod and allows from c. The batch replaces policy "a" (before,
 * after); with reuse, pod x is also deleted and pod x2 (app=x) takes its
 * address. Asserts that no write of the batch allows what neither side does.
 */
static void one_event_batch(struct vakt_policy *before, struct vakt_policy *after, int reuse)
{
	struct vakt_compiler_opts co = { .node = "node-0" };
	struct vakt_store *s = vakt_store_new();
	struct vakt_compiler *c;
	struct vakt_tables *pre;
	struct vakt_rcheck *rc;

	assert_non_null(s);
	assert_int_equal(vakt_store_put_pod(s, mkpod("x", "10.0.0.1", "x", "node-0")), 0);
	assert_int_equal(vakt_store_put_pod(s, mkpod("z", "10.0.0.2", "z", "node-0")), 0);
	assert_int_equal(vakt_store_put_pod(s, mkpod("pa", "10.0.1.1", "a", "node-1")), 0);
	assert_int_equal(vakt_store_put_pod(s, mkpod("pb", "10.0.1.2", "b", "node-1")), 0);
	assert_int_equal(vakt_store_put_pod(s, mkpod("pc", "10.0.1.3", "c", "node-1")), 0);
	assert_int_equal(vakt_store_put_policy(s, mkpol("both", NULL, "c")), 0);
	assert_int_equal(vakt_store_put_policy(s, before), 0);
	c = vakt_compiler_new(s, &co);
	assert_non_null(c);
	assert_int_equal(vakt_compiler_full(c), 0);
	assert_int_equal(vakt_rcheck_mark_written(vakt_compiler_tables(c)), 0);
	pre = vakt_rcheck_tables_copy(vakt_compiler_tables(c));
	assert_non_null(pre);
	if (reuse) {
		assert_int_equal(vakt_store_del_pod(s, "ns", "x"), 0);
		assert_int_equal(vakt_store_put_pod(s, mkpod("x2", "10.0.0.1", "x", "node-0")), 0);
	}
	assert_int_equal(vakt_store_put_policy(s, after), 0);
	rc = vakt_rcheck_new(pre, vakt_compiler_tables(c), pre);
	assert_non_null(rc);
	assert_true(vakt_rcheck_drain(rc, vakt_compiler_tables(c)) > 0);
	if (vakt_rcheck_violations(rc))
		fail_msg("%s", vakt_rcheck_first(rc));
	assert_true(vakt_rcheck_tables_equal(vakt_rcheck_mirror(rc), vakt_compiler_tables(c)));
	vakt_rcheck_free(rc);
	vakt_tables_free(pre);
	assert_equals_fresh_compile(s, c, "node-0");
	vakt_compiler_free(c);
	vakt_store_free(s);
}

/* x leaves the endpoint policy {a, both} that z keeps, whose rules change:
 * x must never see the new rule (from b) before it switches to {both}. */
static void test_leaver_never_sees_the_new_rules_of_the_policy_it_leaves(void **state)
{
	(void)state;
	one_event_batch(mkpol("a", NULL, "a"), mkpol("a", "z", "b"), 0);
}

/* x joins the endpoint policy {a, both} that z keeps, whose rules change:
 * x must never see its old rule (from a) after it switched from {both}. */
static void test_joiner_never_sees_the_old_rules_of_the_policy_it_joins(void **state)
{
	(void)state;
	one_event_batch(mkpol("a", "z", "a"), mkpol("a", NULL, "b"), 0);
}

/* The same for a new pod that takes over the address of a pod deleted in
 * the batch: the maps still hold the old pod's record there. */
static void test_pod_reusing_an_address_never_sees_the_old_rules_of_the_policy_it_joins(void **state)
{
	(void)state;
	one_event_batch(mkpol("a", "z", "a"), mkpol("a", NULL, "b"), 1);
}

static void test_mixed_batch_never_allows_what_neither_side_allows_on_a_node(void **state)
{
	(void)state;
	batch_runs(200, "node-0", 1);
}

static void test_mixed_batch_never_allows_what_neither_side_allows_every_pod_local(void **state)
{
	(void)state;
	batch_runs(300, NULL, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_never_allows_what_neither_side_allows_on_a_node),
		cmocka_unit_test(test_batch_never_allows_what_neither_side_allows_every_pod_local),
		cmocka_unit_test(test_leaver_never_sees_the_new_rules_of_the_policy_it_leaves),
		cmocka_unit_test(test_joiner_never_sees_the_old_rules_of_the_policy_it_joins),
		cmocka_unit_test(
			test_pod_reusing_an_address_never_sees_the_old_rules_of_the_policy_it_joins),
		cmocka_unit_test(test_mixed_batch_never_allows_what_neither_side_allows_on_a_node),
		cmocka_unit_test(test_mixed_batch_never_allows_what_neither_side_allows_every_pod_local),
	};

	vakt_log_set_level(VAKT_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
