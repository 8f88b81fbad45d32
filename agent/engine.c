// SPDX-License-Identifier: Apache-2.0
/*
 * engine.c - the reference evaluation of NetworkPolicy over the store.
 *
 * Deliberately naive: it walks every policy of the pod's namespace and every
 * rule, so that it reads like the API documentation. The compiled tables are
 * tested against it; speed is the compiler's job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"

/* A wrapper rather than a bare pointer array so element sizes read plainly. */
struct pol_ref {
	const struct vakt_policy *pol;
};

struct pol_list {
	struct pol_ref *v;
	size_t n;
	size_t cap;
};

static int pol_list_push(void *arg, const struct vakt_policy *pol)
{
	struct pol_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct pol_ref *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++].pol = pol;
	return 0;
}

static int pol_cmp(const void *a, const void *b)
{
	const struct vakt_policy *x = ((const struct pol_ref *)a)->pol;
	const struct vakt_policy *y = ((const struct pol_ref *)b)->pol;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* A hostNetwork pod stands for its node address: as a peer it is just an address. */
static const struct vakt_pod *peer_pod(const struct vakt_end *e)
{
	return e->pod && !e->pod->host_network ? e->pod : NULL;
}

static int peer_matches(const struct vakt_peer *p, const char *policy_ns, const struct vakt_end *end,
			const struct vakt_namespace *end_ns)
{
	const struct vakt_pod *pod = peer_pod(end);

	if (p->has_ipblock) {
		/* A pod without an IP has no address an ipBlock could contain. */
		if (end->pod && end->pod->nips == 0)
			return 0;
		return vakt_ipblock_has(&p->ipblock, &end->addr);
	}
	return pod && vakt_peer_selects_pod(p, policy_ns, pod, end_ns);
}

static int port_matches(const struct vakt_port_spec *ps, const struct vakt_pod *named_pod, uint8_t proto,
			uint16_t port)
{
	uint8_t rproto;
	uint16_t lo, hi;
	int ret;

	ret = vakt_port_resolve(ps, named_pod ? named_pod->ports : NULL, named_pod ? named_pod->nports : 0,
				&rproto, &lo, &hi);
	if (ret <= 0)
		return ret;
	if (rproto != proto)
		return 0;
	/* "Every port of the protocol" carries no port condition at all (the
	 * compiled entry stops before the port bits), so it also covers port 0. */
	if (!ps->name && ps->port == 0)
		return 1;
	return port >= lo && port <= hi;
}

int vakt_rule_allows(const struct vakt_policy *pol, int dir, uint32_t rule, const struct vakt_end *peer,
		     const struct vakt_namespace *peer_ns, const struct vakt_pod *named_pod, uint8_t proto,
		     uint16_t port)
{
	const struct vakt_rule *r;
	int peer_ok = 0, port_ok = 0;

	if (dir < 0 || dir >= VAKT_DIR_MAX || rule >= pol->nrules[dir])
		return -EINVAL;
	r = &pol->rules[dir][rule];

	peer_ok = r->npeers == 0;
	for (size_t i = 0; i < r->npeers && !peer_ok; i++)
		peer_ok = peer_matches(&r->peers[i], pol->ns, peer, peer_ns);
	if (!peer_ok)
		return 0;

	port_ok = r->nports == 0;
	for (size_t i = 0; i < r->nports && !port_ok; i++) {
		int ret = port_matches(&r->ports[i], named_pod, proto, port);

		if (ret < 0) {
			log_error("invalid port in policy rule", "policy=%s/%s dir=%s rule=%u port_index=%zu",
				  pol->ns, pol->name, dir == VAKT_DIR_INGRESS ? "ingress" : "egress", rule, i);
			return ret;
		}
		port_ok = ret;
	}
	return port_ok;
}

struct dir_query {
	const struct vakt_store *s;
	const struct vakt_pod *pod;       /* the enforced pod */
	int dir;
	const struct vakt_end *peer;      /* the other end */
	const struct vakt_pod *named_pod; /* where named ports resolve */
	uint8_t proto;
	uint16_t port;
	int evaluate;                     /* 0 for self traffic: isolation is reported, rules are not consulted */
};

static int eval_policy(const struct dir_query *q, const struct vakt_policy *pol, const struct vakt_namespace *peer_ns,
		       struct vakt_dir_explain *de)
{
	for (uint32_t i = 0; i < pol->nrules[q->dir]; i++) {
		int ret = vakt_rule_allows(pol, q->dir, i, q->peer, peer_ns, q->named_pod, q->proto, q->port);

		if (ret < 0)
			return ret;
		if (!ret)
			continue;
		if (de->nhits < VAKT_EXPLAIN_MAX)
			de->hits[de->nhits] = (struct vakt_rule_hit){ .pol = pol, .rule = i };
		de->nhits++;
	}
	return 0;
}

static int eval_dir(const struct dir_query *q, struct vakt_dir_explain *de)
{
	struct pol_list l = { 0 };
	const struct vakt_namespace *peer_ns = NULL;
	const struct vakt_pod *ppod = peer_pod(q->peer);
	int ret;

	memset(de, 0, sizeof(*de));
	if (!q->pod || q->pod->host_network) {
		de->allowed = 1;
		return 0;
	}
	de->enforced = 1;
	ret = vakt_store_foreach_policy_in(q->s, q->pod->ns, pol_list_push, &l);
	if (ret < 0) {
		log_error("engine: cannot list policies", "ns=%s err=%d", q->pod->ns, ret);
		goto out;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), pol_cmp);
	if (ppod)
		peer_ns = vakt_store_namespace(q->s, ppod->ns);
	for (size_t i = 0; i < l.n; i++) {
		if (!vakt_policy_selects(l.v[i].pol, q->pod, q->dir))
			continue;
		de->isolated = 1;
		if (!q->evaluate)
			continue;
		ret = eval_policy(q, l.v[i].pol, peer_ns, de);
		if (ret < 0)
			goto out;
	}
	de->allowed = !q->evaluate || !de->isolated || de->nhits > 0;
	ret = 0;
out:
	free(l.v);
	return ret;
}

static int same_pod(const struct vakt_end *a, const struct vakt_end *b)
{
	if (!a->pod || !b->pod)
		return 0;
	return a->pod == b->pod || (strcmp(a->pod->ns, b->pod->ns) == 0 && strcmp(a->pod->name, b->pod->name) == 0);
}

int vakt_engine_eval(const struct vakt_store *s, const struct vakt_end *src, const struct vakt_end *dst,
		     uint8_t proto, uint16_t port, struct vakt_explain *out)
{
	struct dir_query q = { .s = s, .proto = proto, .port = port };
	int ret;

	if (!s || !src || !dst || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->self = same_pod(src, dst);
	q.evaluate = !out->self;
	/* Named ports always name a port of the destination; an address outside
	 * the cluster (or a node address) has none. */
	q.named_pod = peer_pod(dst);

	q.pod = src->pod;
	q.dir = VAKT_DIR_EGRESS;
	q.peer = dst;
	ret = eval_dir(&q, &out->egress);
	if (ret < 0)
		return ret;

	q.pod = dst->pod;
	q.dir = VAKT_DIR_INGRESS;
	q.peer = src;
	ret = eval_dir(&q, &out->ingress);
	if (ret < 0)
		return ret;

	out->allowed = out->self || (out->egress.allowed && out->ingress.allowed);
	return 0;
}
