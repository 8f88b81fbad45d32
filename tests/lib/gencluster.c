// SPDX-License-Identifier: Apache-2.0
/* Deterministic synthetic clusters; see gencluster.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gencluster.h"

struct objref {
	size_t ns;
	char *name;
};

struct vakt_gen {
	struct vakt_gen_opts o;
	uint64_t rng;
	uint32_t next_ip;
	uint64_t next_pod, next_pol;
	unsigned int teams;    /* about ten namespaces per team label */
	unsigned int *ns_team; /* current team label of each namespace */
	uint8_t *ns_present;
	struct objref *pods, *pols;
	size_t npods, podcap, npols, polcap;
};

uint64_t vakt_gen_rand(struct vakt_gen *g)
{
	/* xorshift64*: deterministic across platforms, good enough for tests. */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545F4914F6CDD1DULL;
}

static unsigned int rnd(struct vakt_gen *g, unsigned int n)
{
	return n ? (unsigned int)(vakt_gen_rand(g) % n) : 0;
}

static int chance(struct vakt_gen *g, unsigned int pct)
{
	return rnd(g, 100) < pct;
}

const char *vakt_gen_ns_name(const struct vakt_gen *g, size_t idx, char *buf, size_t len)
{
	(void)g;
	snprintf(buf, len, "ns-%zu", idx);
	return buf;
}

const char *vakt_gen_node_name(size_t idx, char *buf, size_t len)
{
	snprintf(buf, len, "node-%zu", idx);
	return buf;
}

static unsigned int apps(const struct vakt_gen *g)
{
	return g->o.apps_per_ns ? g->o.apps_per_ns : 15;
}

struct vakt_gen *vakt_gen_new(const struct vakt_gen_opts *o)
{
	struct vakt_gen *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->o = *o;
	if (!g->o.namespaces)
		g->o.namespaces = 1;
	if (!g->o.nodes)
		g->o.nodes = 1;
	g->rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
	if (!g->rng)
		g->rng = 1;
	g->next_ip = 0x000101;
	g->teams = (unsigned int)(g->o.namespaces / 10 < 3 ? 3 : g->o.namespaces / 10);
	g->ns_team = calloc(g->o.namespaces, sizeof(*g->ns_team));
	g->ns_present = calloc(g->o.namespaces, 1);
	if (!g->ns_team || !g->ns_present) {
		vakt_gen_free(g);
		return NULL;
	}
	return g;
}

void vakt_gen_free(struct vakt_gen *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->npods; i++)
		free(g->pods[i].name);
	for (i = 0; i < g->npols; i++)
		free(g->pols[i].name);
	free(g->pods);
	free(g->pols);
	free(g->ns_team);
	free(g->ns_present);
	free(g);
}

static int ref_add(struct objref **v, size_t *n, size_t *cap, size_t ns, const char *name)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct objref *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[*n].ns = ns;
	(*v)[*n].name = strdup(name);
	if (!(*v)[*n].name)
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void ref_del(struct objref *v, size_t *n, size_t i)
{
	free(v[i].name);
	v[i] = v[--(*n)];
}

/* --- namespaces ---------------------------------------------------------------- */

static struct vakt_namespace *gen_namespace(struct vakt_gen *g, size_t idx)
{
	static const char *const envs[] = { "prod", "staging", "dev" };
	struct vakt_namespace *ns = calloc(1, sizeof(*ns));
	char name[32], team[32];

	if (!ns)
		return NULL;
	vakt_gen_ns_name(g, idx, name, sizeof(name));
	snprintf(team, sizeof(team), "team-%u", g->ns_team[idx]);
	ns->name = strdup(name);
	if (!ns->name || vakt_labels_set(&ns->labels, "kubernetes.io/metadata.name", name) ||
	    vakt_labels_set(&ns->labels, "team", team) ||
	    vakt_labels_set(&ns->labels, "env", envs[idx % 3])) {
		vakt_namespace_free(ns);
		return NULL;
	}
	return ns;
}

/* --- pods ------------------------------------------------------------------------ */

static void next_addr(struct vakt_gen *g, struct vakt_addr *v4, struct vakt_addr *v6)
{
	uint32_t n = g->next_ip++;

	memset(v4, 0, sizeof(*v4));
	v4->b[10] = 0xff;
	v4->b[11] = 0xff;
	v4->b[12] = 10;
	v4->b[13] = (uint8_t)(n >> 16);
	v4->b[14] = (uint8_t)(n >> 8);
	v4->b[15] = (uint8_t)n;
	memset(v6, 0, sizeof(*v6));
	v6->b[0] = 0xfd;
	v6->b[12] = (uint8_t)(n >> 24);
	v6->b[13] = (uint8_t)(n >> 16);
	v6->b[14] = (uint8_t)(n >> 8);
	v6->b[15] = (uint8_t)n;
}

static int add_port(struct vakt_pod *p, const char *name, uint8_t proto, uint16_t port)
{
	struct vakt_named_port *v = realloc(p->ports, (p->nports + 1) * sizeof(*v));
	size_t i;

	if (!v)
		return -ENOMEM;
	p->ports = v;
	/* Kept sorted by name, as the loader does. */
	for (i = p->nports; i > 0 && strcmp(v[i - 1].name, name) > 0; i--)
		v[i] = v[i - 1];
	v[i].name = strdup(name);
	v[i].proto = proto;
	v[i].port = port;
	p->nports++;
	return v[i].name ? 0 : -ENOMEM;
}

/* Labels and ports of app a; variant != 0 makes a new label set. */
static int pod_shape(struct vakt_gen *g, struct vakt_pod *p, unsigned int a, unsigned int variant)
{
	static const char *const tiers[] = { "frontend", "backend", "db" };
	static const uint16_t http[] = { 8080, 80, 9090 };
	char buf[32];

	snprintf(buf, sizeof(buf), "app-%u", a);
	if (vakt_labels_set(&p->labels, "app", buf) ||
	    vakt_labels_set(&p->labels, "tier", tiers[a % 3]))
		return -ENOMEM;
	if (variant) {
		snprintf(buf, sizeof(buf), "v%u", variant);
		if (vakt_labels_set(&p->labels, "version", buf))
			return -ENOMEM;
	}
	if (add_port(p, "http", IPPROTO_TCP, (uint16_t)(http[a % 3] + (variant % 2))))
		return -ENOMEM;
	if (a % 2 == 0 && add_port(p, "metrics", IPPROTO_TCP, 9100))
		return -ENOMEM;
	if (a % 7 == 0 && add_port(p, "dns", IPPROTO_UDP, 53))
		return -ENOMEM;
	(void)g;
	return 0;
}

static struct vakt_pod *pod_make(struct vakt_gen *g, size_t ns, unsigned int app, unsigned int variant)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));
	char buf[48];

	if (!p)
		return NULL;
	vakt_gen_ns_name(g, ns, buf, sizeof(buf));
	p->ns = strdup(buf);
	snprintf(buf, sizeof(buf), "p-%llu", (unsigned long long)g->next_pod++);
	p->name = strdup(buf);
	vakt_gen_node_name(rnd(g, (unsigned int)g->o.nodes), buf, sizeof(buf));
	p->node = strdup(buf);
	if (!p->ns || !p->name || !p->node || pod_shape(g, p, app, variant))
		goto err;
	next_addr(g, &p->ips[0], &p->ips[1]);
	p->nips = chance(g, g->o.dual_stack_pct) ? 2 : 1;
	/* A few hostNetwork pods, which policies never apply to. */
	p->host_network = chance(g, 1);
	return p;
err:
	vakt_pod_free(p);
	return NULL;
}

struct vakt_pod *vakt_gen_pod(struct vakt_gen *g, int replica)
{
	size_t ns = rnd(g, (unsigned int)g->o.namespaces);

	return pod_make(g, ns, rnd(g, apps(g)), replica ? 0 : 1 + rnd(g, 1000));
}

/* --- policies -------------------------------------------------------------------------- */

static struct vakt_selector *sel_new(void)
{
	return calloc(1, sizeof(struct vakt_selector));
}

static struct vakt_selector *sel_app(struct vakt_gen *g)
{
	struct vakt_selector *s = sel_new();
	char buf[32];

	snprintf(buf, sizeof(buf), "app-%u", rnd(g, apps(g)));
	if (s && vakt_labels_set(&s->match_labels, "app", buf)) {
		vakt_selector_free(s);
		free(s);
		return NULL;
	}
	return s;
}

static struct vakt_selector *sel_team(struct vakt_gen *g)
{
	struct vakt_selector *s = sel_new();
	char buf[32];

	snprintf(buf, sizeof(buf), "team-%u", rnd(g, g->teams));
	if (s && vakt_labels_set(&s->match_labels, "team", buf)) {
		vakt_selector_free(s);
		free(s);
		return NULL;
	}
	return s;
}

static struct vakt_selector *sel_expr(struct vakt_gen *g)
{
	struct vakt_selector *s = sel_new();
	struct vakt_sel_expr *e;

	if (!s)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto err;
	s->exprs = e;
	s->nexprs = 1;
	switch (rnd(g, 4)) {
	case 0:
	case 1:
		e->op = rnd(g, 2) ? VAKT_SEL_IN : VAKT_SEL_NOT_IN;
		e->key = strdup("tier");
		e->values = calloc(2, sizeof(*e->values));
		if (!e->key || !e->values)
			goto err;
		e->nvalues = 2;
		e->values[0] = strdup("backend");
		e->values[1] = strdup("frontend");
		if (!e->values[0] || !e->values[1])
			goto err;
		break;
	case 2:
		e->op = VAKT_SEL_EXISTS;
		e->key = strdup("version");
		break;
	default:
		e->op = VAKT_SEL_DOES_NOT_EXIST;
		e->key = strdup("version");
		break;
	}
	if (!e->key)
		goto err;
	return s;
err:
	vakt_selector_free(s);
	free(s);
	return NULL;
}

static int cidr(const char *s, struct vakt_cidr *out)
{
	return vakt_cidr_parse(s, out);
}

static int gen_ipblock(struct vakt_gen *g, struct vakt_peer *p, int internet)
{
	char buf[64];

	p->has_ipblock = 1;
	if (internet) {
		int v6 = chance(g, 20);

		if (cidr(v6 ? "::/0" : "0.0.0.0/0", &p->ipblock.cidr))
			return -EINVAL;
		p->ipblock.except = calloc(2, sizeof(*p->ipblock.except));
		if (!p->ipblock.except)
			return -ENOMEM;
		if (cidr(v6 ? "fd00::/8" : "10.0.0.0/8", &p->ipblock.except[0]))
			return -EINVAL;
		p->ipblock.nexcept = 1;
		if (!v6 && chance(g, 50)) {
			if (cidr("172.16.0.0/12", &p->ipblock.except[1]))
				return -EINVAL;
			p->ipblock.nexcept = 2;
		}
		return 0;
	}
	if (chance(g, 20)) {
		if (cidr("fd00::/64", &p->ipblock.cidr))
			return -EINVAL;
		p->ipblock.except = calloc(1, sizeof(*p->ipblock.except));
		if (!p->ipblock.except)
			return -ENOMEM;
		snprintf(buf, sizeof(buf), "fd00::%x:0/112", rnd(g, 4));
		p->ipblock.nexcept = 1;
		return cidr(buf, &p->ipblock.except[0]) ? -EINVAL : 0;
	}
	/* Small pools so that blocks repeat across policies, as in real clusters. */
	snprintf(buf, sizeof(buf), "10.%u.0.0/16", rnd(g, 4));
	if (cidr(buf, &p->ipblock.cidr))
		return -EINVAL;
	if (chance(g, 70)) {
		p->ipblock.except = calloc(1, sizeof(*p->ipblock.except));
		if (!p->ipblock.except)
			return -ENOMEM;
		snprintf(buf, sizeof(buf), "10.%u.%u.0/24", p->ipblock.cidr.addr.b[13], rnd(g, 8));
		p->ipblock.nexcept = 1;
		if (cidr(buf, &p->ipblock.except[0]))
			return -EINVAL;
	}
	return 0;
}

static int gen_port(struct vakt_gen *g, struct vakt_port_spec *ps, int allow_named)
{
	static const uint16_t nums[] = { 80, 443, 8080, 9090, 5432, 53 };
	static const char *const names[] = { "http", "metrics", "dns" };
	unsigned int r = rnd(g, 100);

	ps->proto = IPPROTO_TCP;
	if (r < 40) {
		ps->port = nums[rnd(g, 6)];
	} else if (r < 62 && allow_named) {
		unsigned int n = rnd(g, 3);

		ps->name = strdup(names[n]);
		ps->proto = n == 2 ? IPPROTO_UDP : IPPROTO_TCP;
		return ps->name ? 0 : -ENOMEM;
	} else if (r < 77) {
		if (rnd(g, 2)) {
			ps->port = 30000;
			ps->end_port = 32767;
		} else {
			ps->port = (uint16_t)(8000 + rnd(g, 100));
			ps->end_port = (uint16_t)(ps->port + rnd(g, 200));
		}
	} else if (r < 87) {
		ps->proto = IPPROTO_UDP;
		ps->port = 53;
	} else if (r < 92) {
		ps->proto = IPPROTO_SCTP;
		ps->port = 9999;
	} else {
		ps->proto = rnd(g, 2) ? IPPROTO_TCP : IPPROTO_UDP;
	}
	return 0;
}

static int gen_ports(struct vakt_gen *g, struct vakt_rule *r, int allow_named)
{
	size_t i, n = rnd(g, 3);

	if (!n)
		return 0;
	r->ports = calloc(n, sizeof(*r->ports));
	if (!r->ports)
		return -ENOMEM;
	r->nports = n;
	for (i = 0; i < n; i++)
		if (gen_port(g, &r->ports[i], allow_named))
			return -ENOMEM;
	return 0;
}

/* One more port spec, named (http, metrics or dns): the shape named_port_ipblocks tests. */
static int add_named_port(struct vakt_gen *g, struct vakt_rule *r)
{
	static const char *const names[] = { "http", "metrics", "dns" };
	struct vakt_port_spec *v = realloc(r->ports, (r->nports + 1) * sizeof(*v));
	unsigned int n = rnd(g, 3);

	if (!v)
		return -ENOMEM;
	r->ports = v;
	v[r->nports] = (struct vakt_port_spec){ .proto = n == 2 ? IPPROTO_UDP : IPPROTO_TCP };
	v[r->nports].name = strdup(names[n]);
	if (!v[r->nports].name)
		return -ENOMEM;
	r->nports++;
	return 0;
}

/* Egress ports of an ipBlock rule; with named_port_ipblocks, often a named one. */
static int gen_block_ports(struct vakt_gen *g, struct vakt_rule *r)
{
	int named = g->o.named_port_ipblocks;

	if (gen_ports(g, r, named))
		return -ENOMEM;
	return named && chance(g, 60) ? add_named_port(g, r) : 0;
}

static struct vakt_peer *peers_new(struct vakt_rule *r, size_t n)
{
	r->peers = calloc(n, sizeof(*r->peers));
	if (r->peers)
		r->npeers = n;
	return r->peers;
}

static struct vakt_rule *rules_new(struct vakt_policy *p, int dir, size_t n)
{
	p->rules[dir] = calloc(n, sizeof(*p->rules[dir]));
	if (p->rules[dir])
		p->nrules[dir] = n;
	return p->rules[dir];
}

/* One peer of a selector shape. */
static int gen_sel_peer(struct vakt_gen *g, struct vakt_peer *p)
{
	switch (rnd(g, 5)) {
	case 0:
		p->ns_sel = sel_team(g);
		return p->ns_sel ? 0 : -ENOMEM;
	case 1:
		p->ns_sel = sel_team(g);
		p->pod_sel = sel_app(g);
		return p->ns_sel && p->pod_sel ? 0 : -ENOMEM;
	case 2:
		p->pod_sel = sel_expr(g);
		return p->pod_sel ? 0 : -ENOMEM;
	default:
		p->pod_sel = sel_app(g);
		return p->pod_sel ? 0 : -ENOMEM;
	}
}

static int gen_rules(struct vakt_gen *g, struct vakt_policy *p, unsigned int shape)
{
	struct vakt_rule *r;
	struct vakt_peer *peer;
	size_t i;

	if (shape < 45) { /* ingress from selector peers */
		if (!(r = rules_new(p, VAKT_DIR_INGRESS, 1 + rnd(g, 2))))
			return -ENOMEM;
		for (i = 0; i < p->nrules[VAKT_DIR_INGRESS]; i++) {
			size_t k, n = 1 + rnd(g, 2);

			if (!peers_new(&r[i], n))
				return -ENOMEM;
			for (k = 0; k < n; k++)
				if (gen_sel_peer(g, &r[i].peers[k]))
					return -ENOMEM;
			if (gen_ports(g, &r[i], 1))
				return -ENOMEM;
		}
		return 0;
	}
	if (shape < 53) { /* ingress from ipBlocks */
		if (!(r = rules_new(p, VAKT_DIR_INGRESS, 1)) || !(peer = peers_new(r, 1 + rnd(g, 2))))
			return -ENOMEM;
		for (i = 0; i < r->npeers; i++)
			if (gen_ipblock(g, &peer[i], 0))
				return -ENOMEM;
		return gen_ports(g, r, 1);
	}
	if (shape < 70) { /* egress to an app, plus DNS */
		p->types |= VAKT_PT_EGRESS;
		if (!(r = rules_new(p, VAKT_DIR_EGRESS, 2)) || !(peer = peers_new(&r[0], 1)))
			return -ENOMEM;
		if (g->o.named_port_ipblocks && chance(g, 35)) {
			/* to the pods of a block instead of an app */
			if (gen_ipblock(g, peer, 0) || gen_block_ports(g, &r[0]))
				return -ENOMEM;
		} else if (gen_sel_peer(g, peer) || gen_ports(g, &r[0], 1)) {
			return -ENOMEM;
		}
		if (!(peer = peers_new(&r[1], 1)))
			return -ENOMEM;
		peer->ns_sel = sel_new();
		peer->pod_sel = sel_new();
		r[1].ports = calloc(2, sizeof(*r[1].ports));
		if (!peer->ns_sel || !peer->pod_sel || !r[1].ports)
			return -ENOMEM;
		if (vakt_labels_set(&peer->ns_sel->match_labels, "team", "team-0") ||
		    vakt_labels_set(&peer->pod_sel->match_labels, "app", "app-0"))
			return -ENOMEM;
		r[1].nports = 2;
		r[1].ports[0] = (struct vakt_port_spec){ .proto = IPPROTO_UDP, .port = 53 };
		r[1].ports[1] = (struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = 53 };
		return 0;
	}
	if (shape < 78) { /* egress to the internet */
		p->types |= VAKT_PT_EGRESS;
		if (!(r = rules_new(p, VAKT_DIR_EGRESS, 1)) || !(peer = peers_new(r, 1)))
			return -ENOMEM;
		if (gen_ipblock(g, peer, chance(g, g->o.named_port_ipblocks ? 30 : 70)))
			return -ENOMEM;
		return gen_block_ports(g, r);
	}
	if (shape < 86) { /* default deny */
		if (chance(g, 40))
			p->types |= VAKT_PT_EGRESS;
		return 0;
	}
	if (shape < 94) { /* all pods of the namespace, by expression */
		if (!(r = rules_new(p, VAKT_DIR_INGRESS, 1)) || !(peer = peers_new(r, 1)))
			return -ENOMEM;
		peer->pod_sel = sel_new();
		return peer->pod_sel ? gen_ports(g, r, 1) : -ENOMEM;
	}
	/* Rules without peers: any peer, maybe named egress ports. */
	if (chance(g, 50)) {
		p->types |= VAKT_PT_EGRESS;
		if (!(r = rules_new(p, VAKT_DIR_EGRESS, 1)))
			return -ENOMEM;
		return gen_ports(g, r, 1);
	}
	if (!(r = rules_new(p, VAKT_DIR_INGRESS, 1)))
		return -ENOMEM;
	return gen_ports(g, r, 1);
}

struct vakt_policy *vakt_gen_policy(struct vakt_gen *g, size_t ns_idx, const char *name)
{
	struct vakt_policy *p = calloc(1, sizeof(*p));
	unsigned int shape = rnd(g, 100);
	char buf[32];

	if (!p)
		return NULL;
	vakt_gen_ns_name(g, ns_idx, buf, sizeof(buf));
	p->ns = strdup(buf);
	p->name = strdup(name);
	if (!p->ns || !p->name)
		goto err;
	p->types = VAKT_PT_INGRESS;
	if (shape >= 78 && shape < 86) {
		/* default deny selects every pod */
	} else if (shape >= 86 && shape < 94) {
		struct vakt_selector *s = sel_expr(g);

		if (!s)
			goto err;
		p->pod_sel = *s;
		free(s);
	} else {
		snprintf(buf, sizeof(buf), "app-%u", rnd(g, apps(g)));
		if (vakt_labels_set(&p->pod_sel.match_labels, "app", buf))
			goto err;
	}
	if (gen_rules(g, p, shape))
		goto err;
	/* Egress-only policies exist too. */
	if ((p->types & VAKT_PT_EGRESS) && !p->nrules[VAKT_DIR_INGRESS] && chance(g, 50))
		p->types = VAKT_PT_EGRESS;
	return p;
err:
	vakt_policy_free(p);
	return NULL;
}

/* --- population and events --------------------------------------------------------------- */

static int put_pod(struct vakt_gen *g, struct vakt_store *s, struct vakt_pod *p, size_t ns)
{
	if (!p)
		return -ENOMEM;
	if (ref_add(&g->pods, &g->npods, &g->podcap, ns, p->name)) {
		vakt_pod_free(p);
		return -ENOMEM;
	}
	return vakt_store_put_pod(s, p);
}

static int put_policy(struct vakt_gen *g, struct vakt_store *s, size_t ns)
{
	char name[32];
	struct vakt_policy *p;

	snprintf(name, sizeof(name), "pol-%llu", (unsigned long long)g->next_pol++);
	p = vakt_gen_policy(g, ns, name);
	if (!p)
		return -ENOMEM;
	if (ref_add(&g->pols, &g->npols, &g->polcap, ns, name)) {
		vakt_policy_free(p);
		return -ENOMEM;
	}
	return vakt_store_put_policy(s, p);
}

int vakt_gen_populate(struct vakt_gen *g, struct vakt_store *s)
{
	size_t i, per_app;
	int err;

	for (i = 0; i < g->o.namespaces; i++) {
		g->ns_team[i] = (unsigned int)(i % g->teams);
		g->ns_present[i] = 1;
		err = vakt_store_put_namespace(s, gen_namespace(g, i));
		if (err)
			return err;
	}
	/* vakt_gen_new() makes namespaces >= 1; the analyzer cannot see it. */
	if (!g->o.namespaces)
		return -EINVAL;
	per_app = g->o.pods / (g->o.namespaces * apps(g));
	for (i = 0; i < g->o.pods; i++) {
		size_t ns = (i / (per_app ? per_app * apps(g) : 1)) % g->o.namespaces;
		unsigned int app = (unsigned int)(per_app ? (i / per_app) % apps(g) : rnd(g, apps(g)));

		/* One pod in ten is a variant (canary, new version): its own identity. */
		err = put_pod(g, s, pod_make(g, ns, app, chance(g, 10) ? 1 + rnd(g, 3) : 0), ns);
		if (err)
			return err;
	}
	for (i = 0; i < g->o.policies; i++) {
		err = put_policy(g, s, i % g->o.namespaces);
		if (err)
			return err;
	}
	return 0;
}

static int ev_pod_add(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t ns = rnd(g, (unsigned int)g->o.namespaces);
	struct vakt_pod *p = pod_make(g, ns, rnd(g, apps(g)), chance(g, 60) ? 0 : 1 + rnd(g, 5));

	if (p)
		snprintf(d, n, "pod add %s/%s", p->ns, p->name);
	return put_pod(g, s, p, ns);
}

static int ev_pod_del(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t i;
	char ns[32];
	int err;

	if (!g->npods)
		return ev_pod_add(g, s, d, n);
	i = rnd(g, (unsigned int)g->npods);
	vakt_gen_ns_name(g, g->pods[i].ns, ns, sizeof(ns));
	snprintf(d, n, "pod del %s/%s", ns, g->pods[i].name);
	err = vakt_store_del_pod(s, ns, g->pods[i].name);
	ref_del(g->pods, &g->npods, i);
	return err;
}

/* Relabel, move to another node, change IP or ports: a replaced pod object. */
static int ev_pod_change(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	const struct vakt_pod *cur;
	struct vakt_pod *p;
	size_t i;
	char ns[32], buf[32];
	unsigned int kind = rnd(g, 5);

	if (!g->npods)
		return ev_pod_add(g, s, d, n);
	i = rnd(g, (unsigned int)g->npods);
	vakt_gen_ns_name(g, g->pods[i].ns, ns, sizeof(ns));
	cur = vakt_store_pod(s, ns, g->pods[i].name);
	if (!cur)
		return -ENOENT;
	p = vakt_pod_dup(cur);
	if (!p)
		return -ENOMEM;
	snprintf(d, n, "pod change(%u) %s/%s", kind, ns, p->name);
	switch (kind) {
	case 0: /* another app: new labels and ports */
		vakt_labels_free(&p->labels);
		for (size_t k = 0; k < p->nports; k++)
			free(p->ports[k].name);
		free(p->ports);
		p->ports = NULL;
		p->nports = 0;
		if (pod_shape(g, p, rnd(g, apps(g)), rnd(g, 3)))
			goto err;
		break;
	case 1:
		snprintf(buf, sizeof(buf), "v%u", rnd(g, 3));
		if (vakt_labels_set(&p->labels, "version", buf))
			goto err;
		break;
	case 2:
		free(p->node);
		p->node = strdup(vakt_gen_node_name(rnd(g, (unsigned int)g->o.nodes), buf, sizeof(buf)));
		if (!p->node)
			goto err;
		break;
	case 3: /* pending -> running and back, or a new address */
		if (p->nips && chance(g, 50))
			p->nips = 0;
		else {
			next_addr(g, &p->ips[0], &p->ips[1]);
			p->nips = 1 + chance(g, 30);
		}
		break;
	default:
		p->host_network = !p->host_network && chance(g, 20);
		break;
	}
	return vakt_store_put_pod(s, p);
err:
	vakt_pod_free(p);
	return -ENOMEM;
}

static int ev_namespace(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t i = rnd(g, (unsigned int)g->o.namespaces);
	char name[32];

	vakt_gen_ns_name(g, i, name, sizeof(name));
	if (g->ns_present[i] && chance(g, 20)) {
		snprintf(d, n, "namespace del %s", name);
		g->ns_present[i] = 0;
		return vakt_store_del_namespace(s, name);
	}
	g->ns_team[i] = rnd(g, g->teams);
	g->ns_present[i] = 1;
	snprintf(d, n, "namespace put %s team-%u", name, g->ns_team[i]);
	return vakt_store_put_namespace(s, gen_namespace(g, i));
}

static int ev_policy_add(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t i = rnd(g, (unsigned int)g->o.namespaces);
	char ns[32];

	snprintf(d, n, "policy add %s/pol-%llu", vakt_gen_ns_name(g, i, ns, sizeof(ns)),
		 (unsigned long long)g->next_pol);
	return put_policy(g, s, i);
}

static int ev_policy_del(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t i = rnd(g, (unsigned int)g->npols);
	char ns[32];
	int err;

	vakt_gen_ns_name(g, g->pols[i].ns, ns, sizeof(ns));
	snprintf(d, n, "policy del %s/%s", ns, g->pols[i].name);
	err = vakt_store_del_policy(s, ns, g->pols[i].name);
	ref_del(g->pols, &g->npols, i);
	return err;
}

static int ev_policy(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	unsigned int r = rnd(g, 100);
	size_t i;
	char ns[32];
	struct vakt_policy *p;

	if (r < 45 || !g->npols)
		return ev_policy_add(g, s, d, n);
	if (r >= 75)
		return ev_policy_del(g, s, d, n);
	i = rnd(g, (unsigned int)g->npols);
	vakt_gen_ns_name(g, g->pols[i].ns, ns, sizeof(ns));
	snprintf(d, n, "policy change %s/%s", ns, g->pols[i].name);
	p = vakt_gen_policy(g, g->pols[i].ns, g->pols[i].name);
	return p ? vakt_store_put_policy(s, p) : -ENOMEM;
}

int vakt_gen_event(struct vakt_gen *g, struct vakt_store *s, char *desc, size_t len)
{
	char scratch[128];
	unsigned int r = rnd(g, 100);

	if (!desc) {
		desc = scratch;
		len = sizeof(scratch);
	}
	if (r < 22)
		return ev_pod_add(g, s, desc, len);
	if (r < 40)
		return ev_pod_del(g, s, desc, len);
	if (r < 62)
		return ev_pod_change(g, s, desc, len);
	if (r < 70)
		return ev_namespace(g, s, desc, len);
	return ev_policy(g, s, desc, len);
}

/* Two events: the description of the second follows the first's. */
static int ev_pair(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n,
		   int (*first)(struct vakt_gen *, struct vakt_store *, char *, size_t),
		   int (*second)(struct vakt_gen *, struct vakt_store *, char *, size_t))
{
	size_t used;
	int err = first(g, s, d, n);

	if (err)
		return err;
	used = strlen(d);
	if (used + 4 >= n)
		return second(g, s, d, n);
	snprintf(d + used, n - used, " + ");
	return second(g, s, d + used + 3, n - used - 3);
}

static int ev_pod_add_new_labels(struct vakt_gen *g, struct vakt_store *s, char *d, size_t n)
{
	size_t ns = rnd(g, (unsigned int)g->o.namespaces);
	/* A variant label of its own: a new identity. */
	struct vakt_pod *p = pod_make(g, ns, rnd(g, apps(g)), 1 + rnd(g, 1000));

	if (p)
		snprintf(d, n, "pod add %s/%s (new labels)", p->ns, p->name);
	return put_pod(g, s, p, ns);
}

int vakt_gen_event_policy_change(struct vakt_gen *g, struct vakt_store *s, char *desc, size_t len)
{
	char scratch[128], ns[32];
	struct vakt_policy *p;
	size_t i;

	if (!desc) {
		desc = scratch;
		len = sizeof(scratch);
	}
	if (!g->npols)
		return ev_policy_add(g, s, desc, len);
	i = rnd(g, (unsigned int)g->npols);
	vakt_gen_ns_name(g, g->pols[i].ns, ns, sizeof(ns));
	snprintf(desc, len, "policy change %s/%s", ns, g->pols[i].name);
	p = vakt_gen_policy(g, g->pols[i].ns, g->pols[i].name);
	return p ? vakt_store_put_policy(s, p) : -ENOMEM;
}

int vakt_gen_event_churn(struct vakt_gen *g, struct vakt_store *s, enum vakt_gen_kind kind,
			 char *desc, size_t len)
{
	char scratch[128];
	unsigned int r = rnd(g, 4);

	if (!desc) {
		desc = scratch;
		len = sizeof(scratch);
	}
	if (kind == VAKT_GEN_PODS) {
		if (!g->npods || r == 0)
			return ev_pod_add(g, s, desc, len);
		if (r == 1)
			return ev_pod_del(g, s, desc, len);
		return ev_pair(g, s, desc, len, ev_pod_del, ev_pod_add_new_labels);
	}
	if (!g->npols || r == 0)
		return ev_policy_add(g, s, desc, len);
	if (r == 1)
		return ev_policy_del(g, s, desc, len);
	return ev_pair(g, s, desc, len, ev_policy_del, ev_policy_add);
}

static int copy_ns(void *arg, const struct vakt_namespace *ns)
{
	return vakt_store_put_namespace(arg, vakt_namespace_dup(ns));
}

static int copy_pod(void *arg, const struct vakt_pod *p)
{
	return vakt_store_put_pod(arg, vakt_pod_dup(p));
}

static int copy_pol(void *arg, const struct vakt_policy *p)
{
	return vakt_store_put_policy(arg, vakt_policy_dup(p));
}

struct vakt_store *vakt_gen_store_copy(const struct vakt_store *s)
{
	struct vakt_store *d = vakt_store_new();

	if (!d)
		return NULL;
	if (vakt_store_foreach_namespace(s, copy_ns, d) ||
	    vakt_store_foreach_policy(s, copy_pol, d) || vakt_store_foreach_pod(s, copy_pod, d)) {
		vakt_store_free(d);
		return NULL;
	}
	return d;
}

char *vakt_gen_dump(const struct vakt_compiler *c)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (vakt_compiler_dump_canonical(c, f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *vakt_gen_fresh_dump(const struct vakt_store *s, const char *node)
{
	struct vakt_compiler_opts o = { .node = node };
	struct vakt_store *copy = vakt_gen_store_copy(s);
	struct vakt_compiler *c = copy ? vakt_compiler_new(copy, &o) : NULL;
	char *d = c && !vakt_compiler_full(c) ? vakt_gen_dump(c) : NULL;

	vakt_compiler_free(c);
	vakt_store_free(copy);
	return d;
}
