// SPDX-License-Identifier: Apache-2.0
/*
 * Randomised: after every event of a random history (pods, namespaces,
 * policies), the incrementally maintained compiler equals a fresh compiler's
 * full compile of the same objects (canonical dumps), the journal replayed
 * into a shadow copy reproduces the tables, and the userspace verdict over
 * the tables agrees with the reference engine on random flows.
 *
 * VAKT_SEEDS and VAKT_EVENTS override the number of seeds and events.
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
#include "engine.h"
#include "../lib/gencluster.h"
#include "../lib/restartcheck.h"
#include "log.h"

#define HISTORY 64

static unsigned int env_uint(const char *name, unsigned int dflt)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned int)strtoul(v, NULL, 10) : dflt;
}

static char *dump(const struct vakt_compiler *c)
{
	char *d = vakt_gen_dump(c);

	assert_non_null(d);
	return d;
}

/* Prints the first differing lines of two dumps. */
static void report_diff(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	int shown = 0;

	while (*pa && *pb && shown < 1) {
		const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
		size_t la = ea ? (size_t)(ea - pa) : strlen(pa), lb = eb ? (size_t)(eb - pb) : strlen(pb);

		if (la != lb || memcmp(pa, pb, la)) {
			fprintf(stderr, "incremental: %.*s\nfull:        %.*s\n", (int)la, pa, (int)lb, pb);
			shown++;
		}
		pa += la + (ea ? 1 : 0);
		pb += lb + (eb ? 1 : 0);
	}
	if (!shown)
		fprintf(stderr, "dumps differ in length: %zu vs %zu\n", strlen(a), strlen(b));
}

static char *fresh_dump(const struct vakt_store *s, const char *node)
{
	char *d = vakt_gen_fresh_dump(s, node);

	assert_non_null(d);
	return d;
}

/* --- journal replay -------------------------------------------------------------- */

static int replay(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	struct vakt_tables *shadow = arg;

	if (val)
		return vakt_tables_put(shadow, id, key, val);
	return vakt_tables_del(shadow, id, key);
}

static void drain_into(struct vakt_compiler *c, struct vakt_tables *shadow)
{
	int revoked = 0;

	assert_int_equal(vakt_tables_drain(vakt_compiler_tables(c), replay, shadow, &revoked), 0);
	assert_true(vakt_rcheck_tables_equal(vakt_compiler_tables(c), shadow));
}

/* --- verdicts against the engine ------------------------------------------------------ */

struct podlist {
	const struct vakt_pod **v;
	size_t n;
};

static int dir_allowed(const struct vakt_tables *t, const struct vakt_end *self,
		       const struct vakt_end *peer, int dir, uint8_t proto, uint16_t port)
{
	struct vakt_flow f = { .peer = peer->addr, .dport = port, .proto = proto, .dir = (uint8_t)dir };
	struct vakt_verdict v;
	int ret;

	if (!self->pod)
		return 1; /* outside the cluster: no policy of its own */
	ret = vakt_tables_verdict(t, &self->addr, &f, &v);
	if (ret == -ENOENT)
		return -ENOENT;
	return ret;
}

/* Both outcomes must occur, or the comparison proves nothing. */
static size_t g_allowed, g_denied, g_egress_allowed;

static const uint16_t test_ports[] = { 53, 80, 81, 443, 5432, 8000, 8050, 8080, 8081, 8150,
				       9090, 9091, 9100, 9999, 30000, 31000, 32767 };

static void random_end(struct vakt_gen *g, const struct podlist *pods, struct vakt_end *e)
{
	static const char *const outside[] = { "192.168.1.1", "10.1.3.7", "10.2.200.1", "8.8.8.8",
					       "172.16.5.5" };
	unsigned int r = (unsigned int)(vakt_gen_rand(g) % 10);

	memset(e, 0, sizeof(*e));
	if (r == 0 || !pods->n) {
		assert_int_equal(vakt_addr_parse(outside[vakt_gen_rand(g) % 5], &e->addr, NULL), 0);
		return;
	}
	e->pod = pods->v[vakt_gen_rand(g) % pods->n];
	e->addr = e->pod->ips[0];
}

/* Returns the number of flows checked; fails on the first disagreement. */
static size_t check_verdicts(struct vakt_gen *g, const struct vakt_store *s,
			     struct vakt_compiler *c, int all_local, size_t nflows)
{
	const struct vakt_tables *t = vakt_compiler_tables(c);
	const struct vakt_pod **all;
	struct podlist pods = { 0 };
	size_t n, i, checked = 0;

	assert_int_equal(vakt_store_pods_sorted(s, &all, &n), 0);
	pods.v = calloc(n + 1, sizeof(*pods.v));
	assert_non_null(pods.v);
	for (i = 0; i < n; i++)
		if (all[i]->nips)
			pods.v[pods.n++] = all[i];
	for (i = 0; i < nflows; i++) {
		struct vakt_end src, dst;
		struct vakt_explain ex;
		uint8_t proto;
		uint16_t port;
		int eg, in, tbl;
		unsigned int r = (unsigned int)(vakt_gen_rand(g) % 20);

		random_end(g, &pods, &src);
		random_end(g, &pods, &dst);
		proto = r < 12 ? IPPROTO_TCP : r < 16 ? IPPROTO_UDP : r < 19 ? IPPROTO_SCTP : IPPROTO_ICMP;
		port = proto == IPPROTO_ICMP ? 0 : test_ports[vakt_gen_rand(g) % (sizeof(test_ports) / 2)];
		/* Often the port one of the destination's names resolves to, so that
		 * named ports (per identity, per ipBlock class) really decide. */
		if (dst.pod && dst.pod->nports && vakt_gen_rand(g) % 100 < 40) {
			const struct vakt_named_port *np = &dst.pod->ports[vakt_gen_rand(g) % dst.pod->nports];

			proto = np->proto;
			port = np->port;
		}
		if (!src.pod && !dst.pod)
			continue;
		assert_int_equal(vakt_engine_eval(s, &src, &dst, proto, port, &ex), 0);
		eg = dir_allowed(t, &src, &dst, VAKT_DIR_EGRESS, proto, port);
		in = dir_allowed(t, &dst, &src, VAKT_DIR_INGRESS, proto, port);
		/* Only local endpoints are enforced by these tables. */
		if (eg == -ENOENT || in == -ENOENT) {
			const struct vakt_pod *missing = eg == -ENOENT ? src.pod : dst.pod;

			/* a pod without an endpoint record must be non-local or hostNetwork */
			if (all_local && !missing->host_network) {
				fprintf(stderr, "no endpoint for local pod %s/%s\n", missing->ns, missing->name);
				fail();
			}
			continue;
		}
		tbl = eg && in;
		if (ex.self)
			tbl = 1; /* checked by the verdict's self rule through the same address */
		/* Each direction on its own: a conjunction would hide an egress
		 * difference behind an ingress deny. */
		if (tbl != ex.allowed ||
		    (!ex.self && (eg != ex.egress.allowed || in != ex.ingress.allowed))) {
			char a[64], b[64];

			fprintf(stderr,
				"verdict mismatch: %s/%s (%s) -> %s/%s (%s) proto=%u port=%u engine=%d "
				"(egress %d ingress %d) tables=%d (egress %d ingress %d)\n",
				src.pod ? src.pod->ns : "-", src.pod ? src.pod->name : "-",
				vakt_addr_str(&src.addr, a, sizeof(a)), dst.pod ? dst.pod->ns : "-",
				dst.pod ? dst.pod->name : "-", vakt_addr_str(&dst.addr, b, sizeof(b)), proto,
				port, ex.allowed, ex.egress.allowed, ex.ingress.allowed, tbl, eg, in);
			fail();
		}
		if (!ex.self && eg && src.pod)
			g_egress_allowed++;
		checked++;
		if (tbl)
			g_allowed++;
		else
			g_denied++;
	}
	free(pods.v);
	free(all);
	return checked;
}

/* --- the randomised runs --------------------------------------------------------------- */

static void run_seed(uint64_t seed, const char *node, unsigned int events, int verdicts,
		     size_t *flows)
{
	struct vakt_gen_opts go = {
		.seed = seed, .namespaces = 6, .pods = 48, .policies = 18, .nodes = 3,
		.apps_per_ns = 4, .dual_stack_pct = 20, .named_port_ipblocks = 1,
	};
	struct vakt_compiler_opts co = { .node = node };
	struct vakt_store *s = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_tables *shadow = vakt_tables_new();
	struct vakt_compiler *c;
	char hist[HISTORY][128];
	unsigned int ev;

	assert_non_null(s);
	assert_non_null(g);
	assert_non_null(shadow);
	for (unsigned int i = 0; i < VAKT_T_COUNT; i++)
		vakt_tables_set_limit(shadow, (enum vakt_table_id)i, 0);
	/* Registered first: even the initial population is compiled incrementally. */
	c = vakt_compiler_new(s, &co);
	assert_non_null(c);
	assert_int_equal(vakt_gen_populate(g, s), 0);

	for (ev = 0; ev <= events; ev++) {
		char *inc, *full;

		if (ev) {
			int err = vakt_gen_event(g, s, hist[ev % HISTORY], sizeof(hist[0]));

			assert_int_equal(err, 0);
		}
		inc = dump(c);
		full = fresh_dump(s, node);
		if (strcmp(inc, full)) {
			fprintf(stderr, "seed=%llu node=%s: incremental != full after event %u\n",
				(unsigned long long)seed, node ? node : "(all)", ev);
			for (unsigned int k = ev > 8 ? ev - 8 : 1; k <= ev; k++)
				fprintf(stderr, "  event %u: %s\n", k, hist[k % HISTORY]);
			report_diff(inc, full);
			fail();
		}
		free(inc);
		free(full);
		drain_into(c, shadow);
		if (verdicts && ev % 5 == 0)
			*flows += check_verdicts(g, s, c, node == NULL, 40);
	}
	{
		struct vakt_compiler_stats st;

		vakt_compiler_stats(c, &st);
		assert_int_equal(st.errors, 0);
		assert_int_equal(st.fail_closed, 0);
	}
	vakt_compiler_free(c);
	vakt_tables_free(shadow);
	vakt_gen_free(g);
	vakt_store_free(s);
}

static void test_incremental_equals_full_compile_on_a_node(void **state)
{
	unsigned int seeds = env_uint("VAKT_SEEDS", 12), events = env_uint("VAKT_EVENTS", 250);
	size_t flows = 0;

	(void)state;
	for (unsigned int i = 1; i <= seeds; i++)
		run_seed(i, "node-1", events, 1, &flows);
	assert_true(flows > 0);
}

static void test_incremental_equals_full_compile_every_pod_local(void **state)
{
	unsigned int seeds = env_uint("VAKT_SEEDS", 12), events = env_uint("VAKT_EVENTS", 250);
	size_t flows = 0;

	(void)state;
	g_allowed = g_denied = 0;
	for (unsigned int i = 1; i <= seeds; i++)
		run_seed(1000 + i, NULL, events, 1, &flows);
	print_message("verdicts checked against the engine: %zu (%zu allowed, %zu denied)\n", flows,
		      g_allowed, g_denied);
	assert_true(flows > 1000);
	assert_true(g_allowed > flows / 10);
	assert_true(g_denied > flows / 10);
}

/* A full recompile of an unchanged store reports nothing: ids may be
 * renumbered, but the journal holds only real differences, and the tables
 * still equal a fresh compile. */
static void test_full_recompile_keeps_tables_equal(void **state)
{
	struct vakt_gen_opts go = { .seed = 77, .namespaces = 5, .pods = 60, .policies = 20, .nodes = 2 };
	struct vakt_store *s = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_compiler_opts co = { .node = "node-0" };
	struct vakt_compiler *c = vakt_compiler_new(s, &co);
	struct vakt_tables *shadow = vakt_tables_new();
	char *before, *after;

	(void)state;
	assert_int_equal(vakt_gen_populate(g, s), 0);
	drain_into(c, shadow);
	before = dump(c);
	assert_int_equal(vakt_compiler_full(c), 0);
	after = dump(c);
	assert_string_equal(before, after);
	drain_into(c, shadow);
	for (int i = 0; i < 50; i++)
		assert_int_equal(vakt_gen_event(g, s, NULL, 0), 0);
	drain_into(c, shadow);
	free(before);
	free(after);
	vakt_compiler_free(c);
	vakt_tables_free(shadow);
	vakt_gen_free(g);
	vakt_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incremental_equals_full_compile_on_a_node),
		cmocka_unit_test(test_incremental_equals_full_compile_every_pod_local),
		cmocka_unit_test(test_full_recompile_keeps_tables_equal),
	};

	vakt_log_set_level(VAKT_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
