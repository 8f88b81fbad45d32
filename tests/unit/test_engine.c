// SPDX-License-Identifier: Apache-2.0
/*
 * The reference engine over a store: isolation per direction, policyTypes,
 * union of rules, peers (podSelector / namespaceSelector / both / ipBlock),
 * ports (numeric, named per pod, ranges, protocol only, SCTP, portless
 * protocols), self traffic, hostNetwork pods, the explanation of verdicts,
 * and a transcription of upstream e2e scenarios as reachability matrices over
 * the x/y/z, a/b/c model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "engine.h"

/* --- builders --------------------------------------------------------------- */

static void labels_of(struct vakt_labels *l, const char *spec)
{
	char *dup = strdup(spec), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		assert_non_null(eq);
		*eq = '\0';
		assert_int_equal(vakt_labels_set(l, t, eq + 1), 0);
	}
	free(dup);
}

static void sel_add_expr(struct vakt_selector *s, const char *key, enum vakt_sel_op op, const char *values)
{
	struct vakt_sel_expr *e;
	char *dup, *save = NULL;

	s->exprs = realloc(s->exprs, (s->nexprs + 1) * sizeof(*s->exprs));
	assert_non_null(s->exprs);
	e = &s->exprs[s->nexprs++];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	e->op = op;
	if (!values)
		return;
	dup = strdup(values);
	for (char *v = strtok_r(dup, "|", &save); v; v = strtok_r(NULL, "|", &save)) {
		e->values = realloc(e->values, (e->nvalues + 1) * sizeof(*e->values));
		assert_non_null(e->values);
		e->values[e->nvalues++] = strdup(v);
	}
	free(dup);
}

/*
 * Test-only selector notation, terms separated by ',':
 *   k=v          matchLabels
 *   k in a|b     In        k notin a|b   NotIn
 *   k?           Exists    !k            DoesNotExist
 * "" is the empty selector {}.
 */
static void sel_fill(struct vakt_selector *s, const char *spec)
{
	char *dup = strdup(spec), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *sp = strchr(t, ' ');
		size_t n = strlen(t);

		if (sp && strncmp(sp, " in ", 4) == 0) {
			*sp = '\0';
			sel_add_expr(s, t, VAKT_SEL_IN, sp + 4);
		} else if (sp && strncmp(sp, " notin ", 7) == 0) {
			*sp = '\0';
			sel_add_expr(s, t, VAKT_SEL_NOT_IN, sp + 7);
		} else if (t[0] == '!') {
			sel_add_expr(s, t + 1, VAKT_SEL_DOES_NOT_EXIST, NULL);
		} else if (n && t[n - 1] == '?') {
			t[n - 1] = '\0';
			sel_add_expr(s, t, VAKT_SEL_EXISTS, NULL);
		} else {
			char *eq = strchr(t, '=');

			assert_non_null(eq);
			*eq = '\0';
			assert_int_equal(vakt_labels_set(&s->match_labels, t, eq + 1), 0);
		}
	}
	free(dup);
}

static struct vakt_selector *sel_opt(const char *spec)
{
	struct vakt_selector *s;

	if (!spec)
		return NULL;
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	sel_fill(s, spec);
	return s;
}

static void add_ns(struct vakt_store *s, const char *name, const char *labels)
{
	struct vakt_namespace *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->name = strdup(name);
	labels_of(&n->labels, labels);
	assert_int_equal(vakt_labels_set(&n->labels, VAKT_NS_NAME_LABEL, name), 0);
	assert_int_equal(vakt_store_put_namespace(s, n), 0);
}

static int proto_of(const char *s)
{
	int p = vakt_proto_parse(s);

	assert_true(p > 0);
	return p;
}

/* ports: "name:port/PROTO,..." or NULL; ips: up to two addresses or NULL. */
static struct vakt_pod *pod_new(const char *ns, const char *name, const char *labels, const char *ip4,
				const char *ip6, const char *ports)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));
	char *dup, *save = NULL;

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	labels_of(&p->labels, labels);
	if (ip4)
		assert_int_equal(vakt_addr_parse(ip4, &p->ips[p->nips++], NULL), 0);
	if (ip6)
		assert_int_equal(vakt_addr_parse(ip6, &p->ips[p->nips++], NULL), 0);
	if (!ports)
		return p;
	dup = strdup(ports);
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':'), *slash = strchr(t, '/');
		struct vakt_named_port np;
		size_t i;

		assert_non_null(colon);
		assert_non_null(slash);
		*colon = *slash = '\0';
		np.name = strdup(t);
		np.port = (uint16_t)atoi(colon + 1);
		np.proto = (uint8_t)proto_of(slash + 1);
		p->ports = realloc(p->ports, (p->nports + 1) * sizeof(*p->ports));
		assert_non_null(p->ports);
		/* Keep the model's order: sorted by name. */
		for (i = p->nports; i > 0 && strcmp(p->ports[i - 1].name, np.name) > 0; i--)
			p->ports[i] = p->ports[i - 1];
		p->ports[i] = np;
		p->nports++;
	}
	free(dup);
	return p;
}

static void add_pod(struct vakt_store *s, const char *ns, const char *name, const char *labels, const char *ip4,
		    const char *ip6, const char *ports)
{
	assert_int_equal(vakt_store_put_pod(s, pod_new(ns, name, labels, ip4, ip6, ports)), 0);
}

static struct vakt_policy *pol_new(const char *ns, const char *name, const char *podsel, int types)
{
	struct vakt_policy *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	sel_fill(&p->pod_sel, podsel);
	p->types = types;
	return p;
}

/* The returned pointer is valid until the next rule_add on the same direction. */
static struct vakt_rule *rule_add(struct vakt_policy *p, int dir)
{
	struct vakt_rule *r;

	p->rules[dir] = realloc(p->rules[dir], (p->nrules[dir] + 1) * sizeof(*p->rules[dir]));
	assert_non_null(p->rules[dir]);
	r = &p->rules[dir][p->nrules[dir]++];
	memset(r, 0, sizeof(*r));
	return r;
}

static struct vakt_peer *peer_add(struct vakt_rule *r)
{
	struct vakt_peer *pe;

	r->peers = realloc(r->peers, (r->npeers + 1) * sizeof(*r->peers));
	assert_non_null(r->peers);
	pe = &r->peers[r->npeers++];
	memset(pe, 0, sizeof(*pe));
	return pe;
}

/* podsel / nssel: NULL = field absent. */
static void peer_sel(struct vakt_rule *r, const char *podsel, const char *nssel)
{
	struct vakt_peer *pe = peer_add(r);

	pe->pod_sel = sel_opt(podsel);
	pe->ns_sel = sel_opt(nssel);
}

/* cidr then excepts, NULL-terminated */
static void peer_ipb(struct vakt_rule *r, const char *cidr, ...)
{
	struct vakt_peer *pe = peer_add(r);
	const char *e;
	va_list ap;

	pe->has_ipblock = 1;
	assert_int_equal(vakt_cidr_parse(cidr, &pe->ipblock.cidr), 0);
	va_start(ap, cidr);
	while ((e = va_arg(ap, const char *))) {
		struct vakt_ipblock *b = &pe->ipblock;

		b->except = realloc(b->except, (b->nexcept + 1) * sizeof(*b->except));
		assert_non_null(b->except);
		assert_int_equal(vakt_cidr_parse(e, &b->except[b->nexcept++]), 0);
	}
	va_end(ap);
}

static void port_add(struct vakt_rule *r, uint8_t proto, uint16_t port, uint16_t end, const char *name)
{
	struct vakt_port_spec *ps;

	r->ports = realloc(r->ports, (r->nports + 1) * sizeof(*r->ports));
	assert_non_null(r->ports);
	ps = &r->ports[r->nports++];
	*ps = (struct vakt_port_spec){ .proto = proto, .port = port, .end_port = end, .name = name ? strdup(name) : NULL };
}

static void pol_put(struct vakt_store *s, struct vakt_policy *p)
{
	assert_int_equal(vakt_store_put_policy(s, p), 0);
}

/* --- evaluation helpers ------------------------------------------------------ */

/* "ns/name" is a pod (its address of the family asked for), anything else an address. */
static void end_of(const struct vakt_store *s, const char *spec, int v6, struct vakt_end *e)
{
	char ns[64];
	const char *slash = strchr(spec, '/');

	memset(e, 0, sizeof(*e));
	if (slash && vakt_addr_parse(spec, &e->addr, NULL) != 0 && !strchr(spec, ':')) {
		assert_true((size_t)(slash - spec) < sizeof(ns));
		memcpy(ns, spec, (size_t)(slash - spec));
		ns[slash - spec] = '\0';
		memset(&e->addr, 0, sizeof(e->addr));
		e->pod = vakt_store_pod(s, ns, slash + 1);
		assert_non_null(e->pod);
		for (size_t i = 0; i < e->pod->nips; i++)
			if (!vakt_addr_is_v4(&e->pod->ips[i]) == !!v6)
				e->addr = e->pod->ips[i];
		return;
	}
	assert_int_equal(vakt_addr_parse(spec, &e->addr, NULL), 0);
	e->pod = vakt_store_pod_by_addr(s, &e->addr);
}

static int explain_fam(const struct vakt_store *s, const char *from, const char *to, uint8_t proto, uint16_t port,
		       int v6, struct vakt_explain *ex)
{
	struct vakt_end src, dst;

	end_of(s, from, v6, &src);
	end_of(s, to, v6, &dst);
	assert_int_equal(vakt_engine_eval(s, &src, &dst, proto, port, ex), 0);
	/* Invariants every verdict keeps. */
	assert_int_equal(ex->allowed, ex->self || (ex->egress.allowed && ex->ingress.allowed));
	if (!ex->self) {
		assert_int_equal(ex->egress.allowed, !ex->egress.isolated || ex->egress.nhits > 0);
		assert_int_equal(ex->ingress.allowed, !ex->ingress.isolated || ex->ingress.nhits > 0);
	}
	return ex->allowed;
}

static int explain(const struct vakt_store *s, const char *from, const char *to, uint8_t proto, uint16_t port,
		   struct vakt_explain *ex)
{
	return explain_fam(s, from, to, proto, port, 0, ex);
}

static int reach(const struct vakt_store *s, const char *from, const char *to, uint8_t proto, uint16_t port)
{
	struct vakt_explain ex;

	return explain(s, from, to, proto, port, &ex);
}

static int reach6(const struct vakt_store *s, const char *from, const char *to, uint8_t proto, uint16_t port)
{
	struct vakt_explain ex;

	return explain_fam(s, from, to, proto, port, 1, &ex);
}

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define SCTP IPPROTO_SCTP
#define ICMP IPPROTO_ICMP
#define IN VAKT_DIR_INGRESS
#define EG VAKT_DIR_EGRESS
#define PT_IN VAKT_PT_INGRESS
#define PT_EG VAKT_PT_EGRESS

/* A small world: namespaces x (team=blue) and y (team=red), pods with two families. */
static struct vakt_store *small_world(void)
{
	struct vakt_store *s = vakt_store_new();

	assert_non_null(s);
	add_ns(s, "x", "team=blue");
	add_ns(s, "y", "team=red");
	add_pod(s, "x", "a", "app=a", "10.0.1.1", "fd00::1:1", "http:8080/TCP");
	add_pod(s, "x", "b", "app=b", "10.0.1.2", "fd00::1:2", "http:9090/TCP,dns:53/UDP");
	add_pod(s, "x", "c", "app=c", "10.0.1.3", "fd00::1:3", NULL);
	add_pod(s, "y", "a", "app=a", "10.0.2.1", "fd00::2:1", "http:8080/TCP");
	add_pod(s, "y", "b", "app=b", "10.0.2.2", "fd00::2:2", NULL);
	return s;
}

/* --- isolation and policy types ---------------------------------------------- */

static void test_no_policy_allows_everything(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_explain ex;

	(void)state;
	assert_true(explain(s, "x/a", "y/b", TCP, 80, &ex));
	assert_true(ex.egress.enforced);
	assert_false(ex.egress.isolated);
	assert_true(ex.ingress.enforced);
	assert_false(ex.ingress.isolated);
	assert_int_equal(ex.egress.nhits, 0);
	assert_true(reach(s, "8.8.8.8", "x/a", UDP, 53));
	assert_true(reach(s, "x/a", "8.8.8.8", ICMP, 0));
	vakt_store_free(s);
}

static void test_default_deny_ingress_isolates_only_ingress(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_explain ex;

	(void)state;
	pol_put(s, pol_new("x", "deny", "", PT_IN));
	assert_false(explain(s, "y/a", "x/a", TCP, 80, &ex));
	assert_true(ex.egress.allowed);
	assert_false(ex.egress.isolated);
	assert_true(ex.ingress.isolated);
	assert_false(ex.ingress.allowed);
	assert_false(reach(s, "x/b", "x/a", TCP, 80));
	assert_false(reach(s, "1.2.3.4", "x/c", TCP, 80));
	/* Egress of x pods is untouched, and y is not affected at all. */
	assert_true(reach(s, "x/a", "y/a", TCP, 80));
	assert_true(reach(s, "x/a", "1.2.3.4", TCP, 443));
	assert_true(reach(s, "y/b", "y/a", TCP, 80));
	vakt_store_free(s);
}

static void test_egress_only_policy_isolates_only_egress(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_explain ex;

	(void)state;
	pol_put(s, pol_new("x", "deny-egress", "app=a", PT_EG));
	assert_false(explain(s, "x/a", "y/a", TCP, 80, &ex));
	assert_true(ex.egress.isolated);
	assert_false(ex.egress.allowed);
	assert_false(ex.ingress.isolated);
	assert_true(ex.ingress.allowed);
	assert_false(reach(s, "x/a", "9.9.9.9", UDP, 53));
	/* x/a still receives, and other pods of x still send. */
	assert_true(reach(s, "y/a", "x/a", TCP, 80));
	assert_true(reach(s, "x/b", "y/a", TCP, 80));
	vakt_store_free(s);
}

static void test_rules_of_a_type_the_policy_lacks_are_ignored(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "ingress-only", "app=a", PT_IN);

	(void)state;
	/* policyTypes: [Ingress] with an egress section: the egress rules do nothing. */
	rule_add(p, IN);
	peer_sel(rule_add(p, EG), "app=b", NULL);
	pol_put(s, p);
	assert_true(reach(s, "x/a", "x/c", TCP, 80));
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_policy_in_other_namespace_does_not_isolate(void **state)
{
	struct vakt_store *s = small_world();

	(void)state;
	pol_put(s, pol_new("y", "deny", "", PT_IN | PT_EG));
	assert_true(reach(s, "x/a", "x/b", TCP, 80));
	assert_false(reach(s, "x/a", "y/a", TCP, 80));
	assert_false(reach(s, "y/a", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_egress_and_ingress_must_both_allow(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p;
	struct vakt_explain ex;

	(void)state;
	/* y/a lets x/a in, but x/a may only talk to x. */
	p = pol_new("y", "let-x-in", "app=a", PT_IN);
	peer_sel(rule_add(p, IN), NULL, "team=blue");
	pol_put(s, p);
	p = pol_new("x", "stay-home", "app=a", PT_EG);
	peer_sel(rule_add(p, EG), "", NULL);
	pol_put(s, p);
	assert_false(explain(s, "x/a", "y/a", TCP, 80, &ex));
	assert_false(ex.egress.allowed);
	assert_true(ex.ingress.allowed);
	assert_int_equal(ex.ingress.nhits, 1);
	assert_true(reach(s, "x/a", "x/b", TCP, 80));
	assert_true(reach(s, "x/b", "y/a", TCP, 80));
	assert_false(reach(s, "y/b", "y/a", TCP, 80));
	vakt_store_free(s);
}

/* --- rules: union, empty parts ------------------------------------------------ */

static void test_allowed_traffic_is_the_union_of_all_selecting_policies(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p;
	struct vakt_explain ex;

	(void)state;
	/* Added out of name order: the explanation must not depend on it. */
	p = pol_new("x", "p3-from-b-again", "app=a", PT_IN);
	peer_sel(rule_add(p, IN), "app=c", NULL);
	peer_sel(rule_add(p, IN), "app=b", NULL);
	pol_put(s, p);
	p = pol_new("x", "p2-from-c", "app=a", PT_IN);
	peer_sel(rule_add(p, IN), "app=c", NULL);
	pol_put(s, p);
	p = pol_new("x", "p1-from-b", "", PT_IN);
	peer_sel(rule_add(p, IN), "app=b", NULL);
	pol_put(s, p);

	assert_true(explain(s, "x/b", "x/a", TCP, 80, &ex));
	/* Every allowing rule is listed, by policy name then rule index. */
	assert_int_equal(ex.ingress.nhits, 2);
	assert_string_equal(ex.ingress.hits[0].pol->name, "p1-from-b");
	assert_int_equal(ex.ingress.hits[0].rule, 0);
	assert_string_equal(ex.ingress.hits[1].pol->name, "p3-from-b-again");
	assert_int_equal(ex.ingress.hits[1].rule, 1);

	assert_true(explain(s, "x/c", "x/a", TCP, 80, &ex));
	assert_int_equal(ex.ingress.nhits, 2);
	assert_string_equal(ex.ingress.hits[0].pol->name, "p2-from-c");
	assert_string_equal(ex.ingress.hits[1].pol->name, "p3-from-b-again");
	assert_int_equal(ex.ingress.hits[1].rule, 0);

	/* x/c is selected only by p1: c -> c is self, b -> c allowed, a -> c not. */
	assert_true(reach(s, "x/b", "x/c", TCP, 80));
	assert_false(reach(s, "x/a", "x/c", TCP, 80));
	assert_false(reach(s, "y/b", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_rule_without_peers_allows_every_peer_including_outside(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "port-80-from-all", "app=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), TCP, 80, 0, NULL);
	pol_put(s, p);
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_true(reach(s, "203.0.113.9", "x/a", TCP, 80));
	assert_true(reach6(s, "2001:db8::9", "x/a", TCP, 80));
	assert_false(reach(s, "y/b", "x/a", TCP, 81));
	assert_false(reach(s, "y/b", "x/a", UDP, 80));
	vakt_store_free(s);
}

static void test_rule_without_ports_allows_every_port_and_protocol(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "from-b", "app=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), "app=b", NULL);
	pol_put(s, p);
	assert_true(reach(s, "x/b", "x/a", TCP, 1));
	assert_true(reach(s, "x/b", "x/a", UDP, 65535));
	assert_true(reach(s, "x/b", "x/a", SCTP, 9));
	assert_true(reach(s, "x/b", "x/a", ICMP, 0));
	assert_false(reach(s, "x/c", "x/a", TCP, 1));
	vakt_store_free(s);
}

static void test_empty_rule_allows_everything(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "allow-all", "", PT_IN | PT_EG);

	(void)state;
	rule_add(p, IN);
	rule_add(p, EG);
	pol_put(s, p);
	pol_put(s, pol_new("x", "deny-all", "", PT_IN | PT_EG));
	assert_true(reach(s, "x/a", "x/b", TCP, 80));
	assert_true(reach(s, "198.51.100.1", "x/b", UDP, 1000));
	assert_true(reach(s, "x/c", "198.51.100.1", ICMP, 0));
	vakt_store_free(s);
}

/* --- peers ------------------------------------------------------------------------ */

static void test_pod_and_namespace_selector_in_one_peer_are_anded(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "and", "app=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), "app=b", "team=red");
	pol_put(s, p);
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_false(reach(s, "y/a", "x/a", TCP, 80));
	assert_false(reach(s, "x/b", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_separate_peers_are_ored(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "or", "app=a", PT_IN);
	struct vakt_rule *r;

	(void)state;
	r = rule_add(p, IN);
	peer_sel(r, "app=b", NULL);
	peer_sel(r, NULL, "team=red");
	pol_put(s, p);
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_true(reach(s, "y/a", "x/a", TCP, 80));
	assert_true(reach(s, "x/b", "x/a", TCP, 80));
	assert_false(reach(s, "x/c", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_pod_selector_alone_stays_in_policy_namespace(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "from-b", "app=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), "app=b", NULL);
	pol_put(s, p);
	assert_true(reach(s, "x/b", "x/a", TCP, 80));
	assert_false(reach(s, "y/b", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_namespace_selector_by_metadata_name(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "from-y", "app=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), NULL, VAKT_NS_NAME_LABEL "=y");
	pol_put(s, p);
	assert_true(reach(s, "y/a", "x/a", TCP, 80));
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_false(reach(s, "x/b", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_pod_in_unknown_namespace_has_only_the_name_label(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "from-q", "app=a", PT_IN);
	struct vakt_rule *r;

	(void)state;
	/* Namespace q was never seen (RBAC, or the watch is behind): its pods still have a namespace name. */
	add_pod(s, "q", "a", "app=a", "10.0.9.1", NULL, NULL);
	add_pod(s, "q2", "a", "app=a", "10.0.9.2", NULL, NULL);
	r = rule_add(p, IN);
	peer_sel(r, NULL, VAKT_NS_NAME_LABEL " in q|z");
	peer_sel(r, NULL, "team=red");
	pol_put(s, p);
	assert_true(reach(s, "q/a", "x/a", TCP, 80));
	assert_false(reach(s, "q2/a", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_namespace_selector_expressions(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "not-red", "app=a", PT_IN);

	(void)state;
	add_ns(s, "z", "");
	add_pod(s, "z", "a", "app=a", "10.0.3.1", NULL, NULL);
	peer_sel(rule_add(p, IN), "app notin b", "team notin red");
	pol_put(s, p);
	assert_true(reach(s, "z/a", "x/a", TCP, 80)); /* no team label at all */
	assert_true(reach(s, "x/c", "x/a", TCP, 80));
	assert_false(reach(s, "x/b", "x/a", TCP, 80));
	assert_false(reach(s, "y/a", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_selectors_never_match_outside_addresses(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "from-everything-with-labels", "app=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), "", "");
	pol_put(s, p);
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_false(reach(s, "192.0.2.1", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_ip_block_covers_pod_ips_and_outside_addresses(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "cidr", "app=a", PT_IN);
	struct vakt_explain ex;

	(void)state;
	peer_ipb(rule_add(p, IN), "10.0.0.0/16", "10.0.1.2/32", NULL);
	pol_put(s, p);
	assert_true(explain(s, "x/c", "x/a", TCP, 80, &ex));
	assert_int_equal(ex.ingress.nhits, 1);
	assert_true(reach(s, "y/b", "x/a", TCP, 80));
	assert_false(reach(s, "x/b", "x/a", TCP, 80)); /* the except */
	assert_true(reach(s, "10.0.200.1", "x/a", TCP, 80));
	assert_false(reach(s, "10.1.0.1", "x/a", TCP, 80));
	/* An IPv4 block says nothing about IPv6 traffic of the same pods. */
	assert_false(reach6(s, "x/c", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_ipv6_block_matches_ipv6_traffic_only(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "v6-egress", "app=a", PT_EG);

	(void)state;
	peer_ipb(rule_add(p, EG), "::/0", "fd00::2:0/112", NULL);
	pol_put(s, p);
	assert_true(reach6(s, "x/a", "x/b", TCP, 80));
	assert_true(reach6(s, "x/a", "2001:db8::1", TCP, 443));
	assert_false(reach6(s, "x/a", "y/a", TCP, 80)); /* the except */
	/* ::/0 never contains IPv4. */
	assert_false(reach(s, "x/a", "x/b", TCP, 80));
	assert_false(reach(s, "x/a", "8.8.8.8", UDP, 53));
	vakt_store_free(s);
}

/* --- ports -------------------------------------------------------------------------- */

static void test_named_port_resolves_per_receiving_pod(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "http-in", "", PT_IN);

	(void)state;
	/* "http" is 8080 on x/a and 9090 on x/b; x/c has no such port. */
	port_add(rule_add(p, IN), TCP, 0, 0, "http");
	pol_put(s, p);
	assert_true(reach(s, "y/b", "x/a", TCP, 8080));
	assert_false(reach(s, "y/b", "x/a", TCP, 9090));
	assert_true(reach(s, "y/b", "x/b", TCP, 9090));
	assert_false(reach(s, "y/b", "x/b", TCP, 8080));
	assert_false(reach(s, "y/b", "x/c", TCP, 8080));
	assert_false(reach(s, "y/b", "x/c", TCP, 9090));
	assert_true(reach(s, "192.0.2.7", "x/b", TCP, 9090)); /* ingress: the receiver is a pod */
	vakt_store_free(s);
}

static void test_named_port_protocol_must_match_the_pods_port(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "names", "", PT_IN);
	struct vakt_rule *r;

	(void)state;
	r = rule_add(p, IN);
	port_add(r, UDP, 0, 0, "http"); /* http is TCP on every pod */
	port_add(r, UDP, 0, 0, "dns");  /* dns is UDP 53 on x/b */
	pol_put(s, p);
	assert_false(reach(s, "y/a", "x/a", UDP, 8080));
	assert_false(reach(s, "y/a", "x/a", TCP, 8080));
	assert_true(reach(s, "y/a", "x/b", UDP, 53));
	assert_false(reach(s, "y/a", "x/b", TCP, 53));
	vakt_store_free(s);
}

static void test_egress_named_port_resolves_against_destination_pod(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "http-out", "app=a", PT_EG);

	(void)state;
	port_add(rule_add(p, EG), TCP, 0, 0, "http");
	pol_put(s, p);
	assert_true(reach(s, "x/a", "x/b", TCP, 9090));
	assert_false(reach(s, "x/a", "x/b", TCP, 8080));
	assert_true(reach(s, "x/a", "y/a", TCP, 8080));
	assert_false(reach(s, "x/a", "y/b", TCP, 8080)); /* y/b has no "http" */
	vakt_store_free(s);
}

static void test_egress_named_port_never_matches_outside_address(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "http-out", "app=a", PT_EG);
	struct vakt_rule *r;

	(void)state;
	r = rule_add(p, EG);
	peer_ipb(r, "0.0.0.0/0", NULL);
	port_add(r, TCP, 0, 0, "http");
	pol_put(s, p);
	assert_false(reach(s, "x/a", "203.0.113.5", TCP, 8080));
	assert_false(reach(s, "x/a", "203.0.113.5", TCP, 9090));
	/* The same ipBlock rule does match a pod inside the block on that pod's "http". */
	assert_true(reach(s, "x/a", "x/b", TCP, 9090));
	assert_false(reach(s, "x/a", "x/b", TCP, 8080));
	vakt_store_free(s);
}

static void test_port_range_with_end_port(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "range", "app=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), TCP, 8000, 8100, NULL);
	pol_put(s, p);
	assert_false(reach(s, "y/a", "x/a", TCP, 7999));
	assert_true(reach(s, "y/a", "x/a", TCP, 8000));
	assert_true(reach(s, "y/a", "x/a", TCP, 8050));
	assert_true(reach(s, "y/a", "x/a", TCP, 8100));
	assert_false(reach(s, "y/a", "x/a", TCP, 8101));
	assert_false(reach(s, "y/a", "x/a", UDP, 8050));
	vakt_store_free(s);
}

static void test_protocol_without_port_allows_every_port_of_that_protocol(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "udp", "app=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), UDP, 0, 0, NULL);
	pol_put(s, p);
	assert_true(reach(s, "y/a", "x/a", UDP, 1));
	assert_true(reach(s, "y/a", "x/a", UDP, 53));
	assert_true(reach(s, "y/a", "x/a", UDP, 65535));
	/* No port condition at all: even port 0 (the compiled entry stops before the port bits). */
	assert_true(reach(s, "y/a", "x/a", UDP, 0));
	assert_false(reach(s, "y/a", "x/a", TCP, 53));
	assert_false(reach(s, "y/a", "x/a", SCTP, 53));
	assert_false(reach(s, "y/a", "x/a", ICMP, 0));
	vakt_store_free(s);
}

static void test_sctp_is_matched_by_protocol(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "sctp", "app=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), SCTP, 80, 0, NULL);
	pol_put(s, p);
	assert_true(reach(s, "y/a", "x/a", SCTP, 80));
	assert_false(reach(s, "y/a", "x/a", TCP, 80));
	assert_false(reach(s, "y/a", "x/a", UDP, 80));
	assert_false(reach(s, "y/a", "x/a", SCTP, 81));
	vakt_store_free(s);
}

static void test_icmp_is_allowed_only_by_rules_without_ports(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "mixed", "app=a", PT_IN);
	struct vakt_rule *r;

	(void)state;
	r = rule_add(p, IN);
	peer_sel(r, "app=b", NULL);
	port_add(r, TCP, 80, 0, NULL);
	port_add(r, UDP, 0, 0, NULL);
	peer_sel(rule_add(p, IN), "app=c", NULL);
	pol_put(s, p);
	assert_false(reach(s, "x/b", "x/a", ICMP, 0));
	assert_true(reach(s, "x/b", "x/a", TCP, 80));
	assert_true(reach(s, "x/c", "x/a", ICMP, 0));
	assert_true(reach(s, "x/c", "x/a", 47 /* GRE */, 0));
	assert_false(reach(s, "y/a", "x/a", ICMP, 0));
	/* Not isolated: ICMP flows freely. */
	assert_true(reach(s, "x/a", "y/a", ICMP, 0));
	vakt_store_free(s);
}

static void test_invalid_port_spec_is_an_error(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "bad", "app=a", PT_IN);
	struct vakt_end src, dst;
	struct vakt_explain ex;

	(void)state;
	port_add(rule_add(p, IN), TCP, 90, 80, NULL);
	pol_put(s, p);
	end_of(s, "x/b", 0, &src);
	end_of(s, "x/a", 0, &dst);
	assert_int_equal(vakt_engine_eval(s, &src, &dst, TCP, 85, &ex), -EINVAL);
	assert_int_equal(vakt_engine_eval(s, NULL, &dst, TCP, 85, &ex), -EINVAL);
	vakt_store_free(s);
}

/* --- self, hostNetwork, pods without IP ------------------------------------- */

static void test_pod_always_reaches_itself(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_explain ex;

	(void)state;
	pol_put(s, pol_new("x", "deny-all", "", PT_IN | PT_EG));
	assert_true(explain(s, "x/a", "x/a", TCP, 80, &ex));
	assert_true(ex.self);
	assert_true(ex.egress.isolated);
	assert_true(ex.ingress.isolated);
	assert_true(ex.egress.allowed);
	assert_true(ex.ingress.allowed);
	assert_int_equal(ex.egress.nhits + ex.ingress.nhits, 0);
	/* By address too. */
	assert_true(reach(s, "10.0.1.1", "x/a", UDP, 9));
	assert_false(explain(s, "x/a", "x/b", TCP, 80, &ex));
	assert_false(ex.self);
	vakt_store_free(s);
}

static void test_host_network_pod_is_not_enforced(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_pod *h = pod_new("x", "h", "app=a", "192.168.0.10", NULL, "http:8080/TCP");
	struct vakt_explain ex;

	(void)state;
	h->host_network = 1;
	assert_int_equal(vakt_store_put_pod(s, h), 0);
	pol_put(s, pol_new("x", "deny-all", "", PT_IN | PT_EG));
	assert_true(explain(s, "x/h", "203.0.113.1", TCP, 80, &ex));
	assert_false(ex.egress.enforced);
	assert_false(ex.egress.isolated);
	assert_true(ex.egress.allowed);
	assert_true(explain(s, "203.0.113.1", "x/h", TCP, 80, &ex));
	assert_false(ex.ingress.enforced);
	assert_true(ex.ingress.allowed);
	/* The other side is still enforced. */
	assert_false(reach(s, "x/h", "x/a", TCP, 80));
	vakt_store_free(s);
}

static void test_host_network_peer_is_matched_by_ip_block_only(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_pod *h = pod_new("x", "h", "app=b", "192.168.0.10", NULL, "http:8080/TCP");
	struct vakt_policy *p;

	(void)state;
	h->host_network = 1;
	assert_int_equal(vakt_store_put_pod(s, h), 0);
	p = pol_new("x", "from-b", "app=a", PT_IN);
	peer_sel(rule_add(p, IN), "app=b", NULL);
	peer_sel(rule_add(p, IN), NULL, "");
	pol_put(s, p);
	assert_true(reach(s, "x/b", "x/a", TCP, 80));
	assert_false(reach(s, "x/h", "x/a", TCP, 80));
	p = pol_new("x", "from-node", "app=a", PT_IN);
	peer_ipb(rule_add(p, IN), "192.168.0.0/24", NULL);
	pol_put(s, p);
	assert_true(reach(s, "x/h", "x/a", TCP, 80));

	/* Egress to it: named ports of a hostNetwork pod do not count, it is an address. */
	p = pol_new("x", "to-node-http", "app=c", PT_EG);
	port_add(rule_add(p, EG), TCP, 0, 0, "http");
	pol_put(s, p);
	assert_false(reach(s, "x/c", "x/h", TCP, 8080));
	assert_true(reach(s, "x/c", "x/a", TCP, 8080));
	vakt_store_free(s);
}

static void test_pod_without_ip_can_be_a_receiver(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p;
	struct vakt_explain ex;

	(void)state;
	add_pod(s, "x", "pending", "app=p", NULL, NULL, "http:80/TCP");
	p = pol_new("x", "to-pending", "app=p", PT_IN);
	peer_sel(rule_add(p, IN), "app=b", NULL);
	peer_ipb(rule_add(p, IN), "10.0.1.2/32", NULL);
	port_add(rule_add(p, IN), TCP, 0, 0, "http");
	pol_put(s, p);
	assert_true(explain(s, "x/b", "x/pending", UDP, 5, &ex));
	assert_int_equal(ex.ingress.nhits, 2); /* the selector and the /32 of x/b */
	assert_true(reach(s, "x/c", "x/pending", TCP, 80));
	assert_false(reach(s, "x/c", "x/pending", TCP, 81));
	/* As a sender it has no address: ipBlocks do not contain it. */
	p = pol_new("x", "cidr-only", "app=c", PT_IN);
	peer_ipb(rule_add(p, IN), "0.0.0.0/0", NULL);
	peer_ipb(rule_add(p, IN), "::/0", NULL);
	pol_put(s, p);
	assert_false(reach(s, "x/pending", "x/c", TCP, 80));
	assert_false(reach6(s, "x/pending", "x/c", TCP, 80));
	assert_true(reach(s, "x/a", "x/c", TCP, 80));
	assert_true(reach6(s, "x/a", "x/c", TCP, 80));
	vakt_store_free(s);
}

static void test_outside_source_has_no_egress_policy(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_explain ex;

	(void)state;
	pol_put(s, pol_new("x", "deny-all", "", PT_IN | PT_EG));
	assert_false(explain(s, "198.51.100.4", "x/a", TCP, 80, &ex));
	assert_false(ex.egress.enforced);
	assert_true(ex.egress.allowed);
	assert_true(ex.ingress.enforced);
	assert_false(ex.ingress.allowed);
	assert_true(explain(s, "198.51.100.4", "198.51.100.5", TCP, 80, &ex));
	assert_false(ex.ingress.enforced);
	vakt_store_free(s);
}

static void test_many_allowing_rules_are_counted_beyond_the_explain_cap(void **state)
{
	struct vakt_store *s = small_world();
	struct vakt_policy *p = pol_new("x", "many", "app=a", PT_IN);
	struct vakt_explain ex;

	(void)state;
	for (uint16_t i = 0; i < 40; i++)
		port_add(rule_add(p, IN), TCP, (uint16_t)(80 - (i % 2)), (uint16_t)(80 + i), NULL);
	pol_put(s, p);
	assert_true(explain(s, "x/b", "x/a", TCP, 80, &ex));
	assert_int_equal(ex.ingress.nhits, 40);
	assert_int_equal(ex.ingress.hits[31].rule, 31);
	assert_true(explain(s, "x/b", "x/a", TCP, 100, &ex));
	assert_int_equal(ex.ingress.nhits, 20); /* rules 20..39 reach 100 */
	assert_int_equal(ex.ingress.hits[0].rule, 20);
	vakt_store_free(s);
}

/* --- upstream e2e scenarios (test/e2e/network/netpol), as matrices ------------ */

static const char *const model_pods[9] = { "x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c" };

/* Namespaces x, y, z labelled ns=<name>; pods a, b, c labelled pod=<name>, serving 80 and 81 on TCP, UDP, SCTP. */
static struct vakt_store *model(void)
{
	static const char *const ports = "serve-80-tcp:80/TCP,serve-80-udp:80/UDP,serve-80-sctp:80/SCTP,"
					 "serve-81-tcp:81/TCP,serve-81-udp:81/UDP,serve-81-sctp:81/SCTP";
	struct vakt_store *s = vakt_store_new();

	assert_non_null(s);
	for (int n = 0; n < 3; n++) {
		char ns[2] = { (char)('x' + n), 0 }, nsl[8];

		snprintf(nsl, sizeof(nsl), "ns=%s", ns);
		add_ns(s, ns, nsl);
		for (int p = 0; p < 3; p++) {
			char name[2] = { (char)('a' + p), 0 }, pl[8], ip[32];

			snprintf(pl, sizeof(pl), "pod=%s", name);
			snprintf(ip, sizeof(ip), "10.1.%d.%d", n + 1, p + 1);
			add_pod(s, ns, name, pl, ip, NULL, ports);
		}
	}
	return s;
}

/* expect: 9 rows of 9 ('.' allowed, 'X' denied), rows = from, columns = to, separated by spaces. */
static void check_matrix(const struct vakt_store *s, uint8_t proto, uint16_t port, const char *expect)
{
	char got[9 * 10], want[9 * 10];
	size_t w = 0;

	for (const char *c = expect; *c; c++)
		if (*c == '.' || *c == 'X')
			want[w++] = *c;
	assert_int_equal(w, 81);
	for (int i = 0, k = 0; i < 9; i++)
		for (int j = 0; j < 9; j++)
			got[k++] = reach(s, model_pods[i], model_pods[j], proto, port) ? '.' : 'X';
	if (memcmp(got, want, 81) != 0) {
		print_error("proto %u port %u: rows from, columns to (x/a..z/c)\n", proto, port);
		for (int i = 0; i < 9; i++)
			print_error("%-4s got %.9s want %.9s%s\n", model_pods[i], &got[i * 9], &want[i * 9],
				    memcmp(&got[i * 9], &want[i * 9], 9) ? "  <--" : "");
		fail();
	}
}

#define ALL_ALLOWED                                                                                   \
	"......... ......... ......... ......... ......... ......... ......... ......... ........."

static void test_upstream_default_deny_ingress(void **state)
{
	struct vakt_store *s = model();

	(void)state;
	pol_put(s, pol_new("x", "deny-ingress", "", PT_IN));
	check_matrix(s, TCP, 80,
		     ".XX...... X.X...... XX....... XXX...... XXX...... XXX...... XXX...... XXX...... XXX......");
	check_matrix(s, UDP, 81,
		     ".XX...... X.X...... XX....... XXX...... XXX...... XXX...... XXX...... XXX...... XXX......");
	vakt_store_free(s);
}

static void test_upstream_default_deny_all(void **state)
{
	struct vakt_store *s = model();

	(void)state;
	pol_put(s, pol_new("x", "deny-all", "", PT_IN | PT_EG));
	check_matrix(s, TCP, 80,
		     ".XXXXXXXX X.XXXXXXX XX.XXXXXX XXX...... XXX...... XXX...... XXX...... XXX...... XXX......");
	vakt_store_free(s);
}

static void test_upstream_allow_ingress_from_namespaces_on_one_named_port(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "allow-ns-named", "pod=a", PT_IN);
	struct vakt_rule *r = rule_add(p, IN);

	(void)state;
	peer_sel(r, NULL, "ns in y|z");
	port_add(r, TCP, 0, 0, "serve-80-tcp");
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     "......... X........ X........ ......... ......... ......... ......... ......... .........");
	check_matrix(s, TCP, 81,
		     "......... X........ X........ X........ X........ X........ X........ X........ X........");
	vakt_store_free(s);
}

static void test_upstream_pod_selector_and_namespace_selector(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "and", "pod=a", PT_IN);

	(void)state;
	peer_sel(rule_add(p, IN), "pod=b", "ns notin x");
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     "......... X........ X........ X........ ......... X........ X........ ......... X........");
	vakt_store_free(s);
}

static void test_upstream_pod_selector_or_namespace_selector(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "or", "pod=a", PT_IN);
	struct vakt_rule *r = rule_add(p, IN);

	(void)state;
	peer_sel(r, NULL, "ns notin x");
	peer_sel(r, "pod=b", NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     "......... ......... X........ ......... ......... ......... ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_egress_to_other_namespace_pod_and_namespace(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "egress-y-a", "pod=a", PT_EG);
	struct vakt_rule *r;

	(void)state;
	peer_sel(rule_add(p, EG), "pod=a", "ns=y");
	r = rule_add(p, EG); /* DNS, as upstream adds it */
	port_add(r, UDP, 53, 0, NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     ".XX.XXXXX ......... ......... ......... ......... ......... ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_except_clause_on_egress_cidr(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "cidr-except", "pod=a", PT_EG);

	(void)state;
	/* x/a may reach y's /24 but not y/b. */
	peer_ipb(rule_add(p, EG), "10.1.2.0/24", "10.1.2.2/32", NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     ".XX.X.XXX ......... ......... ......... ......... ......... ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_ingress_on_one_named_port(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "allow-81", "", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), TCP, 0, 0, "serve-81-tcp");
	pol_put(s, p);
	check_matrix(s, TCP, 81, ALL_ALLOWED);
	check_matrix(s, TCP, 80,
		     ".XX...... X.X...... XX....... XXX...... XXX...... XXX...... XXX...... XXX...... XXX......");
	/* serve-81-tcp is TCP: UDP 81 is denied. */
	check_matrix(s, UDP, 81,
		     ".XX...... X.X...... XX....... XXX...... XXX...... XXX...... XXX...... XXX...... XXX......");
	vakt_store_free(s);
}

static void test_upstream_egress_on_one_named_port(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "allow-egress-80", "", PT_EG);

	(void)state;
	port_add(rule_add(p, EG), TCP, 0, 0, "serve-80-tcp");
	port_add(rule_add(p, EG), UDP, 53, 0, NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80, ALL_ALLOWED);
	check_matrix(s, TCP, 81,
		     ".XXXXXXXX X.XXXXXXX XX.XXXXXX ......... ......... ......... ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_any_port_on_a_specific_protocol(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "tcp-only", "pod=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), TCP, 0, 0, NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80, ALL_ALLOWED);
	check_matrix(s, TCP, 81, ALL_ALLOWED);
	check_matrix(s, UDP, 80,
		     "......... X........ X........ X........ X........ X........ X........ X........ X........");
	vakt_store_free(s);
}

static void test_upstream_stacked_policies_union(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p;

	(void)state;
	/* Two policies on x/a: one opens 80 from y, the other 81 from z; each only adds. */
	p = pol_new("x", "from-y-80", "pod=a", PT_IN);
	peer_sel(rule_add(p, IN), NULL, "ns=y");
	port_add(&p->rules[IN][0], TCP, 80, 0, NULL);
	pol_put(s, p);
	p = pol_new("x", "from-z-81", "pod=a", PT_IN);
	peer_sel(rule_add(p, IN), NULL, "ns=z");
	port_add(&p->rules[IN][0], TCP, 81, 0, NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     "......... X........ X........ ......... ......... ......... X........ X........ X........");
	check_matrix(s, TCP, 81,
		     "......... X........ X........ X........ X........ X........ ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_deny_egress_on_client_even_if_server_allows(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p;

	(void)state;
	p = pol_new("y", "allow-all-in", "", PT_IN);
	rule_add(p, IN);
	pol_put(s, p);
	p = pol_new("x", "x-a-egress-z-only", "pod=a", PT_EG);
	peer_sel(rule_add(p, EG), NULL, "ns=z");
	pol_put(s, p);
	check_matrix(s, TCP, 80,
		     ".XXXXX... ......... ......... ......... ......... ......... ......... ......... .........");
	vakt_store_free(s);
}

static void test_upstream_port_range(void **state)
{
	struct vakt_store *s = model();
	struct vakt_policy *p = pol_new("x", "range", "pod=a", PT_IN);

	(void)state;
	port_add(rule_add(p, IN), TCP, 80, 81, NULL);
	pol_put(s, p);
	check_matrix(s, TCP, 80, ALL_ALLOWED);
	check_matrix(s, TCP, 81, ALL_ALLOWED);
	check_matrix(s, TCP, 82,
		     "......... X........ X........ X........ X........ X........ X........ X........ X........");
	vakt_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_policy_allows_everything),
		cmocka_unit_test(test_default_deny_ingress_isolates_only_ingress),
		cmocka_unit_test(test_egress_only_policy_isolates_only_egress),
		cmocka_unit_test(test_rules_of_a_type_the_policy_lacks_are_ignored),
		cmocka_unit_test(test_policy_in_other_namespace_does_not_isolate),
		cmocka_unit_test(test_egress_and_ingress_must_both_allow),
		cmocka_unit_test(test_allowed_traffic_is_the_union_of_all_selecting_policies),
		cmocka_unit_test(test_rule_without_peers_allows_every_peer_including_outside),
		cmocka_unit_test(test_rule_without_ports_allows_every_port_and_protocol),
		cmocka_unit_test(test_empty_rule_allows_everything),
		cmocka_unit_test(test_pod_and_namespace_selector_in_one_peer_are_anded),
		cmocka_unit_test(test_separate_peers_are_ored),
		cmocka_unit_test(test_pod_selector_alone_stays_in_policy_namespace),
		cmocka_unit_test(test_namespace_selector_by_metadata_name),
		cmocka_unit_test(test_pod_in_unknown_namespace_has_only_the_name_label),
		cmocka_unit_test(test_namespace_selector_expressions),
		cmocka_unit_test(test_selectors_never_match_outside_addresses),
		cmocka_unit_test(test_ip_block_covers_pod_ips_and_outside_addresses),
		cmocka_unit_test(test_ipv6_block_matches_ipv6_traffic_only),
		cmocka_unit_test(test_named_port_resolves_per_receiving_pod),
		cmocka_unit_test(test_named_port_protocol_must_match_the_pods_port),
		cmocka_unit_test(test_egress_named_port_resolves_against_destination_pod),
		cmocka_unit_test(test_egress_named_port_never_matches_outside_address),
		cmocka_unit_test(test_port_range_with_end_port),
		cmocka_unit_test(test_protocol_without_port_allows_every_port_of_that_protocol),
		cmocka_unit_test(test_sctp_is_matched_by_protocol),
		cmocka_unit_test(test_icmp_is_allowed_only_by_rules_without_ports),
		cmocka_unit_test(test_invalid_port_spec_is_an_error),
		cmocka_unit_test(test_pod_always_reaches_itself),
		cmocka_unit_test(test_host_network_pod_is_not_enforced),
		cmocka_unit_test(test_host_network_peer_is_matched_by_ip_block_only),
		cmocka_unit_test(test_pod_without_ip_can_be_a_receiver),
		cmocka_unit_test(test_outside_source_has_no_egress_policy),
		cmocka_unit_test(test_many_allowing_rules_are_counted_beyond_the_explain_cap),
		cmocka_unit_test(test_upstream_default_deny_ingress),
		cmocka_unit_test(test_upstream_default_deny_all),
		cmocka_unit_test(test_upstream_allow_ingress_from_namespaces_on_one_named_port),
		cmocka_unit_test(test_upstream_pod_selector_and_namespace_selector),
		cmocka_unit_test(test_upstream_pod_selector_or_namespace_selector),
		cmocka_unit_test(test_upstream_egress_to_other_namespace_pod_and_namespace),
		cmocka_unit_test(test_upstream_except_clause_on_egress_cidr),
		cmocka_unit_test(test_upstream_ingress_on_one_named_port),
		cmocka_unit_test(test_upstream_egress_on_one_named_port),
		cmocka_unit_test(test_upstream_any_port_on_a_specific_protocol),
		cmocka_unit_test(test_upstream_stacked_policies_union),
		cmocka_unit_test(test_upstream_deny_egress_on_client_even_if_server_allows),
		cmocka_unit_test(test_upstream_port_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
