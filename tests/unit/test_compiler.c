// SPDX-License-Identifier: Apache-2.0
/* The compiler on hand-written scenarios: identities, CIDR classes, named
 * ports, rule references, host addresses, full tables failing closed. */
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

/* --- builders ------------------------------------------------------------- */

static struct vakt_pod *mkpod(const char *ns, const char *name, const char *ip, const char *app,
			      const char *portname, uint16_t port)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->node = strdup("n1");
	assert_int_equal(vakt_addr_parse(ip, &p->ips[0], NULL), 0);
	p->nips = 1;
	assert_int_equal(vakt_labels_set(&p->labels, "app", app), 0);
	if (portname) {
		p->ports = calloc(1, sizeof(*p->ports));
		p->ports[0] = (struct vakt_named_port){ strdup(portname), port, IPPROTO_TCP };
		p->nports = 1;
	}
	return p;
}

static struct vakt_selector *selapp(const char *app)
{
	struct vakt_selector *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	if (app)
		assert_int_equal(vakt_labels_set(&s->match_labels, "app", app), 0);
	return s;
}

/* A policy selecting app=target with one rule in dir. */
static struct vakt_policy *mkpol(const char *ns, const char *name, const char *target, int dir)
{
	struct vakt_policy *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->types = 1 << dir;
	if (target)
		assert_int_equal(vakt_labels_set(&p->pod_sel.match_labels, "app", target), 0);
	p->rules[dir] = calloc(1, sizeof(struct vakt_rule));
	p->nrules[dir] = 1;
	return p;
}

static struct vakt_rule *rule0(struct vakt_policy *p, int dir)
{
	return &p->rules[dir][0];
}

static void add_peer_app(struct vakt_rule *r, const char *app)
{
	r->peers = realloc(r->peers, (r->npeers + 1) * sizeof(*r->peers));
	memset(&r->peers[r->npeers], 0, sizeof(*r->peers));
	r->peers[r->npeers++].pod_sel = selapp(app);
}

static void add_peer_block(struct vakt_rule *r, const char *cidr, const char *except)
{
	struct vakt_peer *p;

	r->peers = realloc(r->peers, (r->npeers + 1) * sizeof(*r->peers));
	p = &r->peers[r->npeers++];
	memset(p, 0, sizeof(*p));
	p->has_ipblock = 1;
	assert_int_equal(vakt_cidr_parse(cidr, &p->ipblock.cidr), 0);
	if (except) {
		p->ipblock.except = calloc(1, sizeof(*p->ipblock.except));
		assert_int_equal(vakt_cidr_parse(except, &p->ipblock.except[0]), 0);
		p->ipblock.nexcept = 1;
	}
}

static void add_port(struct vakt_rule *r, uint16_t port, const char *name)
{
	r->ports = realloc(r->ports, (r->nports + 1) * sizeof(*r->ports));
	r->ports[r->nports++] = (struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = port,
							 .name = name ? strdup(name) : NULL };
}

static struct vakt_addr addr(const char *s)
{
	struct vakt_addr a;

	assert_int_equal(vakt_addr_parse(s, &a, NULL), 0);
	return a;
}

/* Verdict at the endpoint at self for traffic with peer in dir on TCP port. */
static int verdict(struct vakt_compiler *c, const char *self, const char *peer, int dir,
		   uint16_t port, struct vakt_verdict *v)
{
	struct vakt_addr s = addr(self);
	struct vakt_flow f = { .peer = addr(peer), .dport = port, .proto = IPPROTO_TCP,
			       .dir = (uint8_t)dir };
	struct vakt_verdict tmp;

	return vakt_tables_verdict(vakt_compiler_tables(c), &s, &f, v ? v : &tmp);
}

static uint32_t identity_of(struct vakt_compiler *c, const char *ip)
{
	struct vakt_addr a = addr(ip);
	const struct vakt_ip_val *v = vakt_tables_ipcache(vakt_compiler_tables(c), &a);

	return v ? v->identity : 0;
}

static const struct vakt_ep_val *ep_of(struct vakt_compiler *c, const char *ip)
{
	struct vakt_addr a = addr(ip);

	return vakt_tables_endpoint(vakt_compiler_tables(c), &a);
}

static int count_table(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	int *n = arg;

	(void)key;
	(void)val;
	n[id]++;
	return 0;
}

struct fixture {
	struct vakt_store *s;
	struct vakt_compiler *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vakt_compiler_opts o = { .node = "n1" };

	f->s = vakt_store_new();
	f->c = vakt_compiler_new(f->s, &o);
	*state = f;
	return f->s && f->c ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vakt_compiler_free(f->c);
	vakt_store_free(f->s);
	free(f);
	return 0;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_identities_shared_and_stable_across_policy_changes(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p;
	int counts[VAKT_T_COUNT] = { 0 };
	int revoked = 0;
	uint32_t a1, a2, b;

	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a1", "10.0.0.1", "a", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a2", "10.0.0.2", "a", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "b", "10.0.0.3", "b", NULL, 0)), 0);
	a1 = identity_of(f->c, "10.0.0.1");
	a2 = identity_of(f->c, "10.0.0.2");
	b = identity_of(f->c, "10.0.0.3");
	assert_true(a1 >= VAKT_ID_FIRST_POD);
	assert_int_equal(a1, a2);
	assert_int_not_equal(a1, b);
	assert_int_equal(vakt_tables_drain(vakt_compiler_tables(f->c), count_table, counts, NULL), 0);

	/* a policy change rewrites policy and endpoint entries, never the ipcache */
	p = mkpol("x", "allow-a", "b", VAKT_DIR_INGRESS);
	add_peer_app(rule0(p, VAKT_DIR_INGRESS), "a");
	add_port(rule0(p, VAKT_DIR_INGRESS), 80, NULL);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	memset(counts, 0, sizeof(counts));
	assert_int_equal(vakt_tables_drain(vakt_compiler_tables(f->c), count_table, counts, &revoked), 0);
	assert_int_equal(counts[VAKT_T_IPCACHE], 0);
	assert_true(counts[VAKT_T_POLICY] > 0);
	assert_int_equal(counts[VAKT_T_ENDPOINTS], 1);
	assert_int_equal(revoked, 1); /* b became isolated */
	assert_int_equal(identity_of(f->c, "10.0.0.1"), a1);
	assert_int_equal(verdict(f->c, "10.0.0.3", "10.0.0.1", VAKT_DIR_INGRESS, 80, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.3", "10.0.0.1", VAKT_DIR_INGRESS, 81, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.3", "10.0.0.9", VAKT_DIR_INGRESS, 80, NULL), 0);

	/* the last pod of a label set gone: its identity goes, the other stays */
	assert_int_equal(vakt_store_del_pod(f->s, "x", "a1"), 0);
	assert_int_equal(identity_of(f->c, "10.0.0.2"), a1);
	assert_int_equal(identity_of(f->c, "10.0.0.1"), 0);
	assert_int_equal(vakt_store_del_pod(f->s, "x", "a2"), 0);
	assert_int_equal(verdict(f->c, "10.0.0.3", "10.0.0.2", VAKT_DIR_INGRESS, 80, NULL), 0);
}

static void test_ipblock_classes_respect_excepts_and_families(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "blocks", "b", VAKT_DIR_INGRESS);
	struct vakt_cidr_key k = { .prefixlen = 128 };
	const struct vakt_cidr_val *c1, *c2;
	struct vakt_verdict v;

	add_peer_block(rule0(p, VAKT_DIR_INGRESS), "10.0.0.0/8", "10.1.0.0/16");
	add_peer_block(rule0(p, VAKT_DIR_INGRESS), "10.0.0.0/16", NULL);
	add_peer_block(rule0(p, VAKT_DIR_INGRESS), "::/0", NULL);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "b", "10.9.0.3", "b", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_true(ep_of(f->c, "10.9.0.3")->flags & VAKT_EPF_CLASS(VAKT_DIR_INGRESS));

	assert_int_equal(verdict(f->c, "10.9.0.3", "10.2.0.1", VAKT_DIR_INGRESS, 80, &v), 1);
	assert_int_equal(v.peer & VAKT_PEER_CLASS, VAKT_PEER_CLASS);
	assert_int_equal(verdict(f->c, "10.9.0.3", "10.1.2.3", VAKT_DIR_INGRESS, 80, NULL), 0);
	assert_int_equal(verdict(f->c, "10.9.0.3", "10.0.0.5", VAKT_DIR_INGRESS, 80, NULL), 1);
	/* ::/0 is IPv6 only: it never admits IPv4 traffic, but does admit IPv6 */
	assert_int_equal(verdict(f->c, "10.9.0.3", "192.168.0.1", VAKT_DIR_INGRESS, 80, NULL), 0);
	assert_int_equal(verdict(f->c, "10.9.0.3", "2001:db8::1", VAKT_DIR_INGRESS, 80, NULL), 1);
	/* inside both blocks and inside only the first: two different classes */
	k.addr = addr("10.0.0.5");
	c1 = vakt_tables_cidr(vakt_compiler_tables(f->c), &k);
	k.addr = addr("10.2.0.1");
	c2 = vakt_tables_cidr(vakt_compiler_tables(f->c), &k);
	assert_non_null(c1);
	assert_non_null(c2);
	assert_int_not_equal(c1->class_id, c2->class_id);

	/* the policy gone: no blocks, an empty cidr table */
	assert_int_equal(vakt_store_del_policy(f->s, "x", "blocks"), 0);
	assert_int_equal(vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR), 0);
	assert_int_equal(vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_POLICY), 0);
}

static void test_named_ingress_ports_make_distinct_endpoint_policies(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "http", "web", VAKT_DIR_INGRESS);

	add_port(rule0(p, VAKT_DIR_INGRESS), 0, "http");
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w1", "10.0.0.1", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w2", "10.0.0.2", "web", "http", 8080)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w3", "10.0.0.3", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_int_not_equal(ep_of(f->c, "10.0.0.1")->policy[VAKT_DIR_INGRESS],
			     ep_of(f->c, "10.0.0.2")->policy[VAKT_DIR_INGRESS]);
	assert_int_equal(ep_of(f->c, "10.0.0.1")->policy[VAKT_DIR_INGRESS],
			 ep_of(f->c, "10.0.0.3")->policy[VAKT_DIR_INGRESS]);
	assert_int_equal(verdict(f->c, "10.0.0.1", "10.0.0.2", VAKT_DIR_INGRESS, 80, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.1", "10.0.0.2", VAKT_DIR_INGRESS, 8080, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.2", "10.0.0.1", VAKT_DIR_INGRESS, 8080, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.2", "10.0.0.1", VAKT_DIR_INGRESS, 80, NULL), 0);
}

static void test_named_egress_ports_resolve_per_peer_identity(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "out", "cli", VAKT_DIR_EGRESS);
	struct vakt_policy *q = mkpol("x", "out-any", "cli2", VAKT_DIR_EGRESS);

	add_peer_app(rule0(p, VAKT_DIR_EGRESS), "web");
	add_port(rule0(p, VAKT_DIR_EGRESS), 0, "http");
	add_port(rule0(q, VAKT_DIR_EGRESS), 0, "http"); /* no peers: any pod with the name */
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "c", "10.0.0.9", "cli", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "c2", "10.0.0.8", "cli2", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w1", "10.0.0.1", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w2", "10.0.0.2", "web", "http", 8080)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_int_equal(vakt_store_put_policy(f->s, q), 0);
	/* same app label, different ports: different identities */
	assert_int_not_equal(identity_of(f->c, "10.0.0.1"), identity_of(f->c, "10.0.0.2"));
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 80, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 8080, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.2", VAKT_DIR_EGRESS, 8080, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.8", "10.0.0.2", VAKT_DIR_EGRESS, 8080, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.8", "10.0.0.2", VAKT_DIR_EGRESS, 80, NULL), 0);
	/* a named port never matches an address outside the cluster */
	assert_int_equal(verdict(f->c, "10.0.0.8", "192.168.0.1", VAKT_DIR_EGRESS, 80, NULL), 0);
	/* a new pod with the name is reachable at once (incremental) */
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w3", "10.0.0.3", "other", "http", 9000)), 0);
	assert_int_equal(verdict(f->c, "10.0.0.8", "10.0.0.3", VAKT_DIR_EGRESS, 9000, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.3", VAKT_DIR_EGRESS, 9000, NULL), 0);
}

static void test_named_egress_ports_with_ipblock_match_pods_in_the_block(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "out-block", "cli", VAKT_DIR_EGRESS);
	struct vakt_pod *w;
	int cidr_before;

	add_peer_block(rule0(p, VAKT_DIR_EGRESS), "10.0.0.0/24", "10.0.0.128/25");
	add_port(rule0(p, VAKT_DIR_EGRESS), 0, "http");
	add_port(rule0(p, VAKT_DIR_EGRESS), 53, NULL);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "c", "10.0.0.9", "cli", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w1", "10.0.0.1", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w2", "10.0.0.2", "web", "http", 8080)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "m", "10.0.0.3", "db", "metrics", 80)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "ex", "10.0.0.200", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "out", "10.0.1.1", "web", "http", 80)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);

	/* each pod in the block on the number it gives the name, and only that */
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 80, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 8080, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.2", VAKT_DIR_EGRESS, 8080, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.2", VAKT_DIR_EGRESS, 80, NULL), 0);
	/* a pod without the name, a pod in the except, a pod outside the block */
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.3", VAKT_DIR_EGRESS, 80, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.200", VAKT_DIR_EGRESS, 80, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.1.1", "10.0.1.1", VAKT_DIR_EGRESS, 80, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.1.1", VAKT_DIR_EGRESS, 80, NULL), 0);
	/* an address in the block that is no pod: a named port never matches it */
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.77", VAKT_DIR_EGRESS, 80, NULL), 0);
	/* the numeric port of the same rule still covers every address of the block */
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.77", VAKT_DIR_EGRESS, 53, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 53, NULL), 1);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.200", VAKT_DIR_EGRESS, 53, NULL), 0);

	/* incremental: the pod's port changes, a new pod appears, a pod goes */
	cidr_before = (int)vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR);
	w = mkpod("x", "w1", "10.0.0.1", "web", "http", 81);
	assert_int_equal(vakt_store_put_pod(f->s, w), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 80, NULL), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.1", VAKT_DIR_EGRESS, 81, NULL), 1);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "w4", "10.0.0.4", "new", "http", 9000)), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.4", VAKT_DIR_EGRESS, 9000, NULL), 1);
	assert_int_equal((int)vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR), cidr_before + 1);
	assert_int_equal(vakt_store_del_pod(f->s, "x", "w4"), 0);
	assert_int_equal(verdict(f->c, "10.0.0.9", "10.0.0.4", VAKT_DIR_EGRESS, 9000, NULL), 0);
	assert_int_equal((int)vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR), cidr_before);
	/* a pod without any of the names used gets no prefix of its own */
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "d2", "10.0.0.5", "db", "metrics", 80)), 0);
	assert_int_equal((int)vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR), cidr_before);

	/* the policy gone: no per-pod prefixes remain */
	assert_int_equal(vakt_store_del_policy(f->s, "x", "out-block"), 0);
	assert_int_equal(vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_CIDR), 0);
	assert_int_equal(vakt_tables_count(vakt_compiler_tables(f->c), VAKT_T_POLICY), 0);
}

static void test_rule_reference_names_policy_and_rule(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "pol", "b", VAKT_DIR_INGRESS);
	struct vakt_rule_ref r;
	struct vakt_ep_meta m;
	struct vakt_verdict v;

	add_peer_app(rule0(p, VAKT_DIR_INGRESS), "a");
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a", "10.0.0.1", "a", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "b", "10.0.0.2", "b", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_int_equal(verdict(f->c, "10.0.0.2", "10.0.0.1", VAKT_DIR_INGRESS, 443, &v), 1);
	assert_int_equal(vakt_compiler_rule(f->c, v.rule, &r), 0);
	assert_string_equal(r.ns, "x");
	assert_string_equal(r.name, "pol");
	assert_int_equal(r.dir, VAKT_DIR_INGRESS);
	assert_int_equal(r.index, 0);
	assert_int_equal(vakt_compiler_rule(f->c, 99999, &r), -ENOENT);
	assert_int_equal(vakt_compiler_ep_meta(f->c, ep_of(f->c, "10.0.0.2")->ep_id, &m), 0);
	assert_string_equal(m.ns, "x");
	assert_string_equal(m.name, "b");
}

static void test_host_addresses_are_always_allowed(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "deny", NULL, VAKT_DIR_INGRESS);
	struct vakt_addr h[2] = { addr("192.168.1.10"), addr("fd00:1::10") };
	struct vakt_verdict v;

	free(p->rules[VAKT_DIR_INGRESS]);
	p->rules[VAKT_DIR_INGRESS] = NULL;
	p->nrules[VAKT_DIR_INGRESS] = 0; /* default deny */
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a", "10.0.0.1", "a", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_int_equal(verdict(f->c, "10.0.0.1", "192.168.1.10", VAKT_DIR_INGRESS, 80, NULL), 0);
	assert_int_equal(vakt_compiler_set_host_addrs(f->c, h, 2), 0);
	assert_int_equal(verdict(f->c, "10.0.0.1", "192.168.1.10", VAKT_DIR_INGRESS, 80, &v), 1);
	assert_int_equal(v.reason, VAKT_R_HOST);
	assert_int_equal(identity_of(f->c, "fd00:1::10"), VAKT_ID_HOST);
	/* survives a full recompile; a new set replaces the old one */
	assert_int_equal(vakt_compiler_full(f->c), 0);
	assert_int_equal(identity_of(f->c, "192.168.1.10"), VAKT_ID_HOST);
	assert_int_equal(vakt_compiler_set_host_addrs(f->c, h + 1, 1), 0);
	assert_int_equal(identity_of(f->c, "192.168.1.10"), 0);
	assert_int_equal(verdict(f->c, "10.0.0.1", "192.168.1.10", VAKT_DIR_INGRESS, 80, NULL), 0);
}

static void test_full_policy_table_fails_closed(void **state)
{
	struct fixture *f = *state;
	struct vakt_policy *p = mkpol("x", "many", "b", VAKT_DIR_INGRESS);
	struct vakt_compiler_stats st;
	struct vakt_verdict v;

	add_peer_app(rule0(p, VAKT_DIR_INGRESS), "a");
	for (uint16_t port = 1; port <= 20; port++)
		add_port(rule0(p, VAKT_DIR_INGRESS), port, NULL);
	vakt_tables_set_limit(vakt_compiler_tables(f->c), VAKT_T_POLICY, 5);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a", "10.0.0.1", "a", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "b", "10.0.0.2", "b", NULL, 0)), 0);
	assert_int_equal(vakt_store_put_policy(f->s, p), 0);
	assert_true(ep_of(f->c, "10.0.0.2")->flags & VAKT_EPF_FAIL_CLOSED);
	/* even a port whose entry was written is dropped: never a partial policy */
	assert_int_equal(verdict(f->c, "10.0.0.2", "10.0.0.1", VAKT_DIR_INGRESS, 1, &v), 0);
	assert_int_equal(v.reason, VAKT_R_FAIL_CLOSED);
	/* other endpoints are unaffected */
	assert_false(ep_of(f->c, "10.0.0.1")->flags & VAKT_EPF_FAIL_CLOSED);
	vakt_compiler_stats(f->c, &st);
	assert_true(st.errors > 0);
	assert_int_equal(st.fail_closed, 1);
	/* room again: the next change that frees entries lets it recover */
	vakt_tables_set_limit(vakt_compiler_tables(f->c), VAKT_T_POLICY, 0);
	assert_int_equal(vakt_compiler_full(f->c), 0);
	assert_false(ep_of(f->c, "10.0.0.2")->flags & VAKT_EPF_FAIL_CLOSED);
	assert_int_equal(verdict(f->c, "10.0.0.2", "10.0.0.1", VAKT_DIR_INGRESS, 20, NULL), 1);
}

static void test_endpoint_ids_exhausted_fail_closed(void **state)
{
	struct fixture *f = *state;
	char name[32], ip[32];
	const struct vakt_ep_val *ep;
	struct vakt_verdict v;

	for (int i = 0; i < VAKT_MAX_ENDPOINTS; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, 1 + i % 250);
		assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", name, ip, "a", NULL, 0)), 0);
	}
	/* ids 1..1023 are taken: the 1024th local pod has a record that drops */
	ep = ep_of(f->c, ip);
	assert_non_null(ep);
	assert_int_equal(ep->ep_id, 0);
	assert_true(ep->flags & VAKT_EPF_FAIL_CLOSED);
	assert_int_equal(verdict(f->c, ip, "10.0.0.1", VAKT_DIR_INGRESS, 80, &v), 0);
	assert_int_equal(v.reason, VAKT_R_FAIL_CLOSED);
	assert_int_equal(ep_of(f->c, "10.0.0.1")->ep_id > 0, 1);
}

static void drain(struct vakt_compiler *c)
{
	int counts[VAKT_T_COUNT] = { 0 };

	assert_int_equal(vakt_tables_drain(vakt_compiler_tables(c), count_table, counts, NULL), 0);
}

/* An id freed in a batch is not given to new content of the same batch (the
 * maps would briefly hold both meanings), but is once the batch is written. */
static void test_freed_ids_are_reused_only_after_their_batch_is_drained(void **state)
{
	struct fixture *f = *state;
	uint32_t id_a, ep_a;

	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "a", "10.0.0.1", "a", NULL, 0)), 0);
	id_a = identity_of(f->c, "10.0.0.1");
	ep_a = ep_of(f->c, "10.0.0.1")->ep_id;
	drain(f->c);

	assert_int_equal(vakt_store_del_pod(f->s, "x", "a"), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "b", "10.0.0.2", "b", NULL, 0)), 0);
	assert_true(identity_of(f->c, "10.0.0.2") >= VAKT_ID_FIRST_POD);
	assert_int_not_equal(identity_of(f->c, "10.0.0.2"), id_a);
	assert_int_not_equal(ep_of(f->c, "10.0.0.2")->ep_id, ep_a);
	drain(f->c);

	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "c", "10.0.0.3", "c", NULL, 0)), 0);
	assert_int_equal(identity_of(f->c, "10.0.0.3"), id_a);
	assert_int_equal(ep_of(f->c, "10.0.0.3")->ep_id, ep_a);
}

/* Endpoint ids are few: a pod would rather take one freed in this batch than fail closed. */
static void test_endpoint_ids_exhausted_within_a_batch_take_a_quarantined_one(void **state)
{
	struct fixture *f = *state;
	char name[32], ip[32];
	const struct vakt_ep_val *ep;
	uint32_t freed;

	for (int i = 0; i < VAKT_MAX_ENDPOINTS - 1; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, 1 + i % 250);
		assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", name, ip, "a", NULL, 0)), 0);
	}
	drain(f->c);
	freed = ep_of(f->c, "10.0.0.1")->ep_id;
	assert_int_equal(vakt_store_del_pod(f->s, "x", "p0"), 0);
	assert_int_equal(vakt_store_put_pod(f->s, mkpod("x", "q", "10.9.0.1", "a", NULL, 0)), 0);
	ep = ep_of(f->c, "10.9.0.1");
	assert_non_null(ep);
	assert_int_equal(ep->ep_id, freed);
	assert_false(ep->flags & VAKT_EPF_FAIL_CLOSED);
}

static void test_non_local_pods_get_no_endpoint(void **state)
{
	struct fixture *f = *state;
	struct vakt_pod *p = mkpod("x", "far", "10.0.0.7", "a", NULL, 0);

	free(p->node);
	p->node = strdup("n2");
	assert_int_equal(vakt_store_put_pod(f->s, p), 0);
	assert_null(ep_of(f->c, "10.0.0.7"));
	assert_true(identity_of(f->c, "10.0.0.7") >= VAKT_ID_FIRST_POD);
	/* moved to this node: now an endpoint */
	p = mkpod("x", "far", "10.0.0.7", "a", NULL, 0);
	assert_int_equal(vakt_store_put_pod(f->s, p), 0);
	assert_non_null(ep_of(f->c, "10.0.0.7"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identities_shared_and_stable_across_policy_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipblock_classes_respect_excepts_and_families, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_named_ingress_ports_make_distinct_endpoint_policies,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_named_egress_ports_resolve_per_peer_identity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_named_egress_ports_with_ipblock_match_pods_in_the_block,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rule_reference_names_policy_and_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_addresses_are_always_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_policy_table_fails_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_ids_exhausted_fail_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_local_pods_get_no_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_freed_ids_are_reused_only_after_their_batch_is_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_endpoint_ids_exhausted_within_a_batch_take_a_quarantined_one, setup,
			teardown),
	};

	vakt_log_set_level(VAKT_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
