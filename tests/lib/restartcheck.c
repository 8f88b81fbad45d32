// SPDX-License-Identifier: Apache-2.0
/* Verdict safety of maps moving from one compile to another; see restartcheck.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "restartcheck.h"

struct probe {
	uint8_t proto;
	uint16_t port;
};

/* Ports the generated clusters use (numbers, ranges, named ports' numbers), and ICMP. */
static const struct probe probes[] = {
	{ IPPROTO_TCP, 53 },   { IPPROTO_TCP, 80 },    { IPPROTO_TCP, 81 },
	{ IPPROTO_TCP, 443 },  { IPPROTO_TCP, 5432 },  { IPPROTO_TCP, 8050 },
	{ IPPROTO_TCP, 8080 }, { IPPROTO_TCP, 8081 },  { IPPROTO_TCP, 9090 },
	{ IPPROTO_TCP, 9091 }, { IPPROTO_TCP, 9100 },  { IPPROTO_TCP, 31000 },
	{ IPPROTO_UDP, 53 },   { IPPROTO_SCTP, 9999 }, { IPPROTO_ICMP, 0 },
};

static const char *const outside[] = { "8.8.8.8",     "10.1.3.7",   "10.2.200.1",
				       "172.16.5.5",  "192.168.1.1", "fd00::1:5",
				       "2001:db8::1" };

struct keys {
	unsigned char *v;
	size_t n, ksz;
};

static void collect(const struct vakt_tables *t, enum vakt_table_id id, struct keys *k);

struct vakt_rcheck {
	const struct vakt_tables *a, *b;
	struct vakt_tables *m;
	struct vakt_tables *cross[2]; /* NULL unless vakt_rcheck_allow_cross() */
	struct vakt_addr *peers;
	size_t npeers, cap;
	struct vakt_addr *eps;
	size_t neps, epcap;
	size_t writes, violations;
	char first[512];
};

static int add_peer(struct vakt_rcheck *rc, const struct vakt_addr *a)
{
	for (size_t i = 0; i < rc->npeers; i++)
		if (!memcmp(&rc->peers[i], a, sizeof(*a)))
			return 0;
	if (rc->npeers == rc->cap) {
		size_t cap = rc->cap ? rc->cap * 2 : 128;
		struct vakt_addr *v = realloc(rc->peers, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rc->peers = v;
		rc->cap = cap;
	}
	rc->peers[rc->npeers++] = *a;
	return 0;
}

static int peer_cb(void *arg, const void *key, const void *val)
{
	(void)val;
	return add_peer(arg, key);
}

struct copy {
	struct vakt_tables *dst;
	enum vakt_table_id id;
};

static int copy_cb(void *arg, const void *key, const void *val)
{
	struct copy *c = arg;

	return vakt_tables_put(c->dst, c->id, key, val);
}

static int discard(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	(void)arg;
	(void)id;
	(void)key;
	(void)val;
	return 0;
}

int vakt_rcheck_mark_written(struct vakt_tables *t)
{
	return vakt_tables_drain(t, discard, NULL, NULL);
}

struct vakt_tables *vakt_rcheck_tables_copy(const struct vakt_tables *t)
{
	struct vakt_tables *d = vakt_tables_new();
	int err = 0;

	if (!d)
		return NULL;
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct copy c = { d, (enum vakt_table_id)id };

		vakt_tables_set_limit(d, c.id, 0);
		err |= vakt_tables_foreach(t, c.id, copy_cb, &c);
	}
	if (err || vakt_rcheck_mark_written(d)) {
		vakt_tables_free(d);
		return NULL;
	}
	return d;
}

struct cmp {
	const struct vakt_tables *other;
	enum vakt_table_id id;
};

static int cmp_cb(void *arg, const void *key, const void *val)
{
	const struct cmp *c = arg;
	const void *o = vakt_tables_get(c->other, c->id, key);

	return !o || memcmp(o, val, vakt_table_value_size(c->id));
}

int vakt_rcheck_tables_equal(const struct vakt_tables *x, const struct vakt_tables *y)
{
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct cmp c = { y, (enum vakt_table_id)id };

		if (vakt_tables_count(x, c.id) != vakt_tables_count(y, c.id) ||
		    vakt_tables_foreach(x, c.id, cmp_cb, &c))
			return 0;
	}
	return 1;
}

struct vakt_rcheck *vakt_rcheck_new(const struct vakt_tables *a, const struct vakt_tables *b,
				    const struct vakt_tables *start)
{
	struct vakt_rcheck *rc = calloc(1, sizeof(*rc));
	struct vakt_addr x;
	int err = 0;

	if (!rc)
		return NULL;
	rc->a = a;
	rc->b = b;
	rc->m = vakt_rcheck_tables_copy(start);
	if (!rc->m)
		goto err;
	err |= vakt_tables_foreach(a, VAKT_T_IPCACHE, peer_cb, rc);
	err |= vakt_tables_foreach(b, VAKT_T_IPCACHE, peer_cb, rc);
	err |= vakt_tables_foreach(a, VAKT_T_ENDPOINTS, peer_cb, rc);
	err |= vakt_tables_foreach(b, VAKT_T_ENDPOINTS, peer_cb, rc);
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		err |= vakt_addr_parse(outside[i], &x, NULL) || add_peer(rc, &x);
	if (err)
		goto err;
	return rc;
err:
	vakt_rcheck_free(rc);
	return NULL;
}

void vakt_rcheck_free(struct vakt_rcheck *rc)
{
	if (!rc)
		return;
	vakt_tables_free(rc->m);
	vakt_tables_free(rc->cross[0]);
	vakt_tables_free(rc->cross[1]);
	free(rc->peers);
	free(rc->eps);
	free(rc);
}

/* Allowed, or not enforced here at all (no endpoint record: the datapath passes). */
static int allows(const struct vakt_tables *t, const struct vakt_addr *self,
		  const struct vakt_flow *f)
{
	struct vakt_verdict v;
	int r = vakt_tables_verdict(t, self, f, &v);

	return r == -ENOENT ? 1 : r;
}

/* The records and entries of one state with the addresses (ipcache, cidr) of another. */
static struct vakt_tables *cross_state(const struct vakt_tables *policy_side,
				       const struct vakt_tables *addr_side)
{
	static const enum vakt_table_id from_addr[] = { VAKT_T_IPCACHE, VAKT_T_CIDR };
	struct vakt_tables *d = vakt_rcheck_tables_copy(policy_side);
	int err = 0;

	if (!d)
		return NULL;
	for (size_t i = 0; i < 2; i++) {
		struct keys k = { 0 };
		struct copy c = { d, from_addr[i] };

		collect(d, from_addr[i], &k);
		for (size_t j = 0; j < k.n; j++)
			vakt_tables_del(d, from_addr[i], k.v + j * k.ksz);
		free(k.v);
		err |= vakt_tables_foreach(addr_side, from_addr[i], copy_cb, &c);
	}
	if (err || vakt_rcheck_mark_written(d)) {
		vakt_tables_free(d);
		return NULL;
	}
	return d;
}

int vakt_rcheck_allow_cross(struct vakt_rcheck *rc)
{
	rc->cross[0] = cross_state(rc->a, rc->b);
	rc->cross[1] = cross_state(rc->b, rc->a);
	return rc->cross[0] && rc->cross[1] ? 0 : -ENOMEM;
}

static int cross_allows(const struct vakt_rcheck *rc, const struct vakt_addr *self,
			const struct vakt_flow *f)
{
	return rc->cross[0] && (allows(rc->cross[0], self, f) || allows(rc->cross[1], self, f));
}

static int ep_cb(void *arg, const void *key, const void *val)
{
	struct vakt_rcheck *rc = arg;

	(void)val;
	if (rc->neps == rc->epcap) {
		size_t cap = rc->epcap ? rc->epcap * 2 : 64;
		struct vakt_addr *v = realloc(rc->eps, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rc->eps = v;
		rc->epcap = cap;
	}
	rc->eps[rc->neps++] = *(const struct vakt_addr *)key;
	return 0;
}

static void violation(struct vakt_rcheck *rc, const struct vakt_addr *self,
		      const struct vakt_flow *f)
{
	char s[64], p[64];

	if (!rc->violations++)
		snprintf(rc->first, sizeof(rc->first),
			 "after write %zu: endpoint %s %s peer %s proto %u port %u allowed, "
			 "but neither before nor after",
			 rc->writes, vakt_addr_str(self, s, sizeof(s)),
			 f->dir == VAKT_DIR_EGRESS ? "egress to" : "ingress from",
			 vakt_addr_str(&f->peer, p, sizeof(p)), f->proto, f->dport);
}

void vakt_rcheck_now(struct vakt_rcheck *rc)
{
	rc->neps = 0;
	if (vakt_tables_foreach(rc->m, VAKT_T_ENDPOINTS, ep_cb, rc)) {
		rc->violations++;
		snprintf(rc->first, sizeof(rc->first), "out of memory in the checker");
		return;
	}
	for (size_t e = 0; e < rc->neps; e++) {
		for (size_t p = 0; p < rc->npeers; p++) {
			for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
				for (uint8_t dir = 0; dir < VAKT_DIR_MAX; dir++) {
					struct vakt_flow f = { .peer = rc->peers[p],
							       .dport = probes[k].port,
							       .proto = probes[k].proto,
							       .dir = dir };

					if (allows(rc->m, &rc->eps[e], &f) &&
					    !allows(rc->a, &rc->eps[e], &f) &&
					    !allows(rc->b, &rc->eps[e], &f) &&
					    !cross_allows(rc, &rc->eps[e], &f))
						violation(rc, &rc->eps[e], &f);
				}
			}
		}
	}
}

void vakt_rcheck_write(struct vakt_rcheck *rc, enum vakt_table_id id, const void *key,
		       const void *val)
{
	rc->writes++;
	if (val)
		vakt_tables_put(rc->m, id, key, val);
	else
		vakt_tables_del(rc->m, id, key);
	vakt_rcheck_mark_written(rc->m);
	vakt_rcheck_now(rc);
}

const struct vakt_tables *vakt_rcheck_mirror(const struct vakt_rcheck *rc)
{
	return rc->m;
}

size_t vakt_rcheck_violations(const struct vakt_rcheck *rc)
{
	return rc->violations;
}

size_t vakt_rcheck_writes(const struct vakt_rcheck *rc)
{
	return rc->writes;
}

const char *vakt_rcheck_first(const struct vakt_rcheck *rc)
{
	return rc->first;
}

/* --- the reconcile order of agent/mapwriter.c, in userspace ------------------------ */

/* A snapshot of t's keys in k, replacing what k held. */
static void collect(const struct vakt_tables *t, enum vakt_table_id id, struct keys *k)
{
	free(k->v);
	k->ksz = vakt_table_key_size(id);
	if (vakt_tables_keys(t, id, (void **)&k->v, &k->n))
		abort(); /* out of memory in a test: nothing meaningful to check */
}

size_t vakt_rcheck_reconcile(struct vakt_rcheck *rc, const struct vakt_tables *b)
{
	static const enum vakt_table_id puts[] = { VAKT_T_POLICY, VAKT_T_CIDR, VAKT_T_IPCACHE,
						   VAKT_T_ENDPOINTS };
	static const enum vakt_table_id dels[] = { VAKT_T_ENDPOINTS, VAKT_T_IPCACHE, VAKT_T_CIDR,
						   VAKT_T_POLICY };
	struct keys k = { 0 };
	size_t before = rc->writes, i, j;

	for (i = 0; i < 4; i++) {
		size_t vsz = vakt_table_value_size(puts[i]);

		collect(b, puts[i], &k);
		for (j = 0; j < k.n; j++) {
			const void *key = k.v + j * k.ksz;
			const void *want = vakt_tables_get(b, puts[i], key);
			const void *have = vakt_tables_get(rc->m, puts[i], key);

			if (!have || memcmp(have, want, vsz))
				vakt_rcheck_write(rc, puts[i], key, want);
		}
	}
	for (i = 0; i < 4; i++) {
		collect(rc->m, dels[i], &k);
		for (j = 0; j < k.n; j++)
			if (!vakt_tables_get(b, dels[i], k.v + j * k.ksz))
				vakt_rcheck_write(rc, dels[i], k.v + j * k.ksz, NULL);
	}
	free(k.v);
	return rc->writes - before;
}

/* --- a batch as vakt_dataplane_apply() writes it ------------------------------------- */

static int drain_cb(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	vakt_rcheck_write(arg, id, key, val);
	return 0;
}

size_t vakt_rcheck_drain(struct vakt_rcheck *rc, struct vakt_tables *t)
{
	size_t before = rc->writes;

	if (vakt_tables_drain(t, drain_cb, rc, NULL)) {
		rc->violations++;
		snprintf(rc->first, sizeof(rc->first), "the journal could not be drained");
	}
	return rc->writes - before;
}
