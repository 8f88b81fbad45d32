// SPDX-License-Identifier: Apache-2.0
/*
 * model.c - the object model's helpers: label sets, deep copies and frees,
 * addresses, prefixes and protocols. See model.h for the contracts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ::ffff:0:0/96, the IPv4-mapped prefix every IPv4 address is stored under. */
static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* --- labels --------------------------------------------------------------- */

void vakt_labels_free(struct vakt_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Index of key, or of where it would be inserted (with *found = 0). */
static size_t labels_search(const struct vakt_labels *l, const char *key, int *found)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].key, key);

		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

int vakt_labels_set(struct vakt_labels *l, const char *key, const char *value)
{
	struct vakt_label *v;
	char *k, *val;
	int found;
	size_t i = labels_search(l, key, &found);

	val = strdup(value);
	if (!val)
		return -ENOMEM;
	if (found) {
		free(l->v[i].value);
		l->v[i].value = val;
		return 0;
	}
	k = strdup(key);
	if (!k)
		goto err_val;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		goto err_key;
	l->v = v;
	memmove(&v[i + 1], &v[i], (l->n - i) * sizeof(*v));
	v[i].key = k;
	v[i].value = val;
	l->n++;
	return 0;

err_key:
	free(k);
err_val:
	free(val);
	return -ENOMEM;
}

const char *vakt_labels_get(const struct vakt_labels *l, const char *key)
{
	int found;
	size_t i = labels_search(l, key, &found);

	return found ? l->v[i].value : NULL;
}

int vakt_labels_cmp(const struct vakt_labels *a, const struct vakt_labels *b)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a->v[i].key, b->v[i].key);

		if (!c)
			c = strcmp(a->v[i].value, b->v[i].value);
		if (c)
			return c < 0 ? -1 : 1;
	}
	if (a->n == b->n)
		return 0;
	return a->n < b->n ? -1 : 1;
}

int vakt_labels_copy(struct vakt_labels *dst, const struct vakt_labels *src)
{
	struct vakt_labels out = { 0 };

	if (src->n) {
		out.v = calloc(src->n, sizeof(*out.v));
		if (!out.v)
			return -ENOMEM;
	}
	for (; out.n < src->n; out.n++) {
		out.v[out.n].key = strdup(src->v[out.n].key);
		out.v[out.n].value = strdup(src->v[out.n].value);
		if (!out.v[out.n].key || !out.v[out.n].value) {
			out.n++; /* so the partial pair is freed too */
			vakt_labels_free(&out);
			return -ENOMEM;
		}
	}
	*dst = out;
	return 0;
}

/* --- selectors ------------------------------------------------------------ */

static void sel_expr_free(struct vakt_sel_expr *e)
{
	free(e->key);
	for (size_t i = 0; i < e->nvalues; i++)
		free(e->values[i]);
	free(e->values);
}

void vakt_selector_free(struct vakt_selector *s)
{
	if (!s)
		return;
	vakt_labels_free(&s->match_labels);
	for (size_t i = 0; i < s->nexprs; i++)
		sel_expr_free(&s->exprs[i]);
	free(s->exprs);
	s->exprs = NULL;
	s->nexprs = 0;
}

static int sel_expr_copy(struct vakt_sel_expr *dst, const struct vakt_sel_expr *src)
{
	struct vakt_sel_expr e = { .op = src->op };

	e.key = strdup(src->key);
	if (!e.key)
		return -ENOMEM;
	if (src->nvalues) {
		e.values = calloc(src->nvalues, sizeof(*e.values));
		if (!e.values)
			goto err;
	}
	for (; e.nvalues < src->nvalues; e.nvalues++) {
		e.values[e.nvalues] = strdup(src->values[e.nvalues]);
		if (!e.values[e.nvalues])
			goto err;
	}
	*dst = e;
	return 0;
err:
	sel_expr_free(&e);
	return -ENOMEM;
}

static int selector_copy(struct vakt_selector *dst, const struct vakt_selector *src)
{
	struct vakt_selector s = { 0 };

	if (vakt_labels_copy(&s.match_labels, &src->match_labels))
		return -ENOMEM;
	if (src->nexprs) {
		s.exprs = calloc(src->nexprs, sizeof(*s.exprs));
		if (!s.exprs)
			goto err;
	}
	for (; s.nexprs < src->nexprs; s.nexprs++)
		if (sel_expr_copy(&s.exprs[s.nexprs], &src->exprs[s.nexprs]))
			goto err;
	*dst = s;
	return 0;
err:
	vakt_selector_free(&s);
	return -ENOMEM;
}

/* A heap copy of an optional selector: NULL stays NULL. */
static int selector_dup_opt(struct vakt_selector **dst, const struct vakt_selector *src)
{
	struct vakt_selector *s;

	*dst = NULL;
	if (!src)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (selector_copy(s, src)) {
		free(s);
		return -ENOMEM;
	}
	*dst = s;
	return 0;
}

/* --- namespaces ----------------------------------------------------------- */

void vakt_namespace_free(struct vakt_namespace *ns)
{
	if (!ns)
		return;
	free(ns->name);
	free(ns->resource_version);
	vakt_labels_free(&ns->labels);
	free(ns);
}

/* strdup that keeps NULL: for optional fields. Returns -ENOMEM only on failure. */
static int strdup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

struct vakt_namespace *vakt_namespace_dup(const struct vakt_namespace *ns)
{
	struct vakt_namespace *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (strdup_opt(&d->name, ns->name) || strdup_opt(&d->resource_version, ns->resource_version) ||
	    vakt_labels_copy(&d->labels, &ns->labels)) {
		vakt_namespace_free(d);
		return NULL;
	}
	return d;
}

/* --- pods ----------------------------------------------------------------- */

void vakt_pod_free(struct vakt_pod *pod)
{
	if (!pod)
		return;
	free(pod->ns);
	free(pod->name);
	free(pod->node);
	free(pod->resource_version);
	vakt_labels_free(&pod->labels);
	for (size_t i = 0; i < pod->nports; i++)
		free(pod->ports[i].name);
	free(pod->ports);
	free(pod);
}

struct vakt_pod *vakt_pod_dup(const struct vakt_pod *pod)
{
	struct vakt_pod *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->host_network = pod->host_network;
	d->nips = pod->nips;
	memcpy(d->ips, pod->ips, sizeof(d->ips));
	if (strdup_opt(&d->ns, pod->ns) || strdup_opt(&d->name, pod->name) ||
	    strdup_opt(&d->node, pod->node) ||
	    strdup_opt(&d->resource_version, pod->resource_version) ||
	    vakt_labels_copy(&d->labels, &pod->labels))
		goto err;
	if (pod->nports) {
		d->ports = calloc(pod->nports, sizeof(*d->ports));
		if (!d->ports)
			goto err;
	}
	for (; d->nports < pod->nports; d->nports++) {
		d->ports[d->nports] = pod->ports[d->nports];
		d->ports[d->nports].name = NULL;
		if (strdup_opt(&d->ports[d->nports].name, pod->ports[d->nports].name))
			goto err;
	}
	return d;
err:
	vakt_pod_free(d);
	return NULL;
}

/* --- policies ------------------------------------------------------------- */

static void peer_fini(struct vakt_peer *p)
{
	vakt_selector_free(p->pod_sel);
	free(p->pod_sel);
	vakt_selector_free(p->ns_sel);
	free(p->ns_sel);
	free(p->ipblock.except);
}

static void rule_fini(struct vakt_rule *r)
{
	for (size_t i = 0; i < r->npeers; i++)
		peer_fini(&r->peers[i]);
	free(r->peers);
	for (size_t i = 0; i < r->nports; i++)
		free(r->ports[i].name);
	free(r->ports);
}

void vakt_policy_free(struct vakt_policy *pol)
{
	if (!pol)
		return;
	free(pol->ns);
	free(pol->name);
	free(pol->resource_version);
	vakt_selector_free(&pol->pod_sel);
	for (int d = 0; d < VAKT_DIR_MAX; d++) {
		for (size_t i = 0; i < pol->nrules[d]; i++)
			rule_fini(&pol->rules[d][i]);
		free(pol->rules[d]);
	}
	free(pol);
}

static int peer_copy(struct vakt_peer *dst, const struct vakt_peer *src)
{
	struct vakt_peer p = { .has_ipblock = src->has_ipblock };

	p.ipblock.cidr = src->ipblock.cidr;
	if (selector_dup_opt(&p.pod_sel, src->pod_sel) ||
	    selector_dup_opt(&p.ns_sel, src->ns_sel))
		goto err;
	if (src->ipblock.nexcept) {
		p.ipblock.except = malloc(src->ipblock.nexcept * sizeof(*p.ipblock.except));
		if (!p.ipblock.except)
			goto err;
		memcpy(p.ipblock.except, src->ipblock.except,
		       src->ipblock.nexcept * sizeof(*p.ipblock.except));
		p.ipblock.nexcept = src->ipblock.nexcept;
	}
	*dst = p;
	return 0;
err:
	peer_fini(&p);
	return -ENOMEM;
}

static int rule_copy(struct vakt_rule *dst, const struct vakt_rule *src)
{
	struct vakt_rule r = { 0 };

	if (src->npeers) {
		r.peers = calloc(src->npeers, sizeof(*r.peers));
		if (!r.peers)
			goto err;
	}
	for (; r.npeers < src->npeers; r.npeers++)
		if (peer_copy(&r.peers[r.npeers], &src->peers[r.npeers]))
			goto err;
	if (src->nports) {
		r.ports = calloc(src->nports, sizeof(*r.ports));
		if (!r.ports)
			goto err;
	}
	for (; r.nports < src->nports; r.nports++) {
		r.ports[r.nports] = src->ports[r.nports];
		r.ports[r.nports].name = NULL;
		if (strdup_opt(&r.ports[r.nports].name, src->ports[r.nports].name))
			goto err;
	}
	*dst = r;
	return 0;
err:
	rule_fini(&r);
	return -ENOMEM;
}

struct vakt_policy *vakt_policy_dup(const struct vakt_policy *pol)
{
	struct vakt_policy *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->types = pol->types;
	if (strdup_opt(&d->ns, pol->ns) || strdup_opt(&d->name, pol->name) ||
	    strdup_opt(&d->resource_version, pol->resource_version) ||
	    selector_copy(&d->pod_sel, &pol->pod_sel))
		goto err;
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++) {
		if (!pol->nrules[dir])
			continue;
		d->rules[dir] = calloc(pol->nrules[dir], sizeof(*d->rules[dir]));
		if (!d->rules[dir])
			goto err;
		for (; d->nrules[dir] < pol->nrules[dir]; d->nrules[dir]++)
			if (rule_copy(&d->rules[dir][d->nrules[dir]], &pol->rules[dir][d->nrules[dir]]))
				goto err;
	}
	return d;
err:
	vakt_policy_free(d);
	return NULL;
}

/* --- addresses and prefixes ----------------------------------------------- */

int vakt_addr_parse(const char *s, struct vakt_addr *out, int *is_v4)
{
	struct in_addr a4;
	int v4 = 0;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, sizeof(*out));
		memcpy(out->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(&out->b[12], &a4, 4);
		v4 = 1;
	} else if (inet_pton(AF_INET6, s, out->b) != 1) {
		return -EINVAL;
	}
	if (is_v4)
		*is_v4 = v4;
	return 0;
}

int vakt_addr_is_v4(const struct vakt_addr *a)
{
	return !memcmp(a->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
}

const char *vakt_addr_str(const struct vakt_addr *a, char *buf, size_t len)
{
	const void *src = vakt_addr_is_v4(a) ? (const void *)&a->b[12] : (const void *)a->b;
	int af = vakt_addr_is_v4(a) ? AF_INET : AF_INET6;

	if (!inet_ntop(af, src, buf, (socklen_t)len)) {
		if (len)
			buf[0] = '\0';
	}
	return buf;
}

/* Clears every bit of a at and after bit plen. */
static void addr_mask(struct vakt_addr *a, unsigned int plen)
{
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = plen > i * 8 ? plen - i * 8 : 0;

		if (bits >= 8)
			continue;
		a->b[i] &= (uint8_t)(0xff00u >> bits);
	}
}

/* Prefix length: decimal digits only, no sign, no leading zeros (as Go's netip). */
static int parse_plen(const char *s, unsigned int max, unsigned int *out)
{
	unsigned int v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int vakt_cidr_parse(const char *s, struct vakt_cidr *out)
{
	const char *slash = strchr(s, '/');
	char addr[INET6_ADDRSTRLEN];
	struct vakt_cidr c = { 0 };
	unsigned int plen;
	size_t alen;
	int v4;

	if (!slash)
		return -EINVAL;
	alen = (size_t)(slash - s);
	if (!alen || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (vakt_addr_parse(addr, &c.addr, &v4))
		return -EINVAL;
	if (parse_plen(slash + 1, v4 ? 32 : 128, &plen))
		return -EINVAL;
	c.plen = (uint8_t)(v4 ? 96 + plen : plen);
	c.v4 = (uint8_t)v4;
	addr_mask(&c.addr, c.plen);
	*out = c;
	return 0;
}

int vakt_cidr_has(const struct vakt_cidr *c, const struct vakt_addr *a)
{
	struct vakt_addr m = *a;

	addr_mask(&m, c->plen);
	return !memcmp(m.b, c->addr.b, sizeof(m.b));
}

int vakt_cidr_contains(const struct vakt_cidr *outer, const struct vakt_cidr *inner)
{
	return outer->plen <= inner->plen && vakt_cidr_has(outer, &inner->addr);
}

const char *vakt_cidr_str(const struct vakt_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	/* IPv4 prefixes print as written: dotted quad and /n. */
	if (c->v4 && c->plen >= 96 && vakt_addr_is_v4(&c->addr)) {
		inet_ntop(AF_INET, &c->addr.b[12], a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, c->plen - 96u);
	} else {
		inet_ntop(AF_INET6, c->addr.b, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, (unsigned int)c->plen);
	}
	return buf;
}

/* --- protocols ------------------------------------------------------------ */

int vakt_proto_parse(const char *s)
{
	/* Case-sensitive, as the Kubernetes API validates it. */
	if (!strcmp(s, "TCP"))
		return IPPROTO_TCP;
	if (!strcmp(s, "UDP"))
		return IPPROTO_UDP;
	if (!strcmp(s, "SCTP"))
		return IPPROTO_SCTP;
	return -EINVAL;
}

const char *vakt_proto_name(int proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "ICMPv6";
	default:
		return "unknown";
	}
}
