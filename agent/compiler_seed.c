// SPDX-License-Identifier: Apache-2.0
/*
 * Restarts without aliased ids.
 *
 * A restarted agent compiles from scratch while the pinned maps still hold
 * the previous agent's numbering, and the map writer's reconcile is a diff
 * of ids: it writes new and changed entries, switches endpoint records, then
 * deletes what is obsolete. An id that the new compile gave to other content
 * than the maps mean by it would, until the reconcile ends, let an endpoint
 * still on its old record see another policy's entries under its old policy
 * id, or a peer whose address already carries a new identity be judged by
 * old entries meant for another label set.
 *
 * So every identity, class, endpoint policy and endpoint id present in the
 * maps is reserved (compiler_int.h, struct idseed) until the reconcile has
 * finished: new content gets other ids. With disjoint ids every lookup of a
 * half-reconciled map answers either as before the restart or as after it,
 * or finds nothing (deny), never a mixture.
 *
 * To avoid rewriting everything on every restart, content may adopt the id
 * the maps already use for it, when the meaning is provably the same:
 *   - an identity I: exactly the addresses the maps map to I get it again;
 *   - a class c: exactly the prefixes the maps map to c get it again;
 *   - an endpoint policy P: its entries equal the maps' entries under P (the
 *     rule references aside, which only attribute verdicts), so nothing under
 *     P changes meaning at any point of the reconcile;
 *   - an endpoint id: the pod at an address keeps the ep_id of the record at
 *     that address (conntrack and counters are per ep_id), no meaning at all.
 * Candidates are taken during the full compile (the id at the pod's address,
 * at the prefix, in the endpoint record) and verified after it; a refuted
 * adoption is banned and the full compile redone (identities and classes
 * are verified independently of numbering; endpoint policy entries depend
 * on the identity and class ids, hence at most three rounds, and a fourth
 * that adopts nothing as the last resort).
 */
#include <stdio.h>

#include "compiler_int.h"
#include "log.h"

/* --- building the seed ---------------------------------------------------------- */

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Turns a list of ids (with repeats) into a seed; the list is consumed. */
static int idseed_make(struct idseed *s, struct idlist *l)
{
	size_t i, j;

	if (l->err)
		return l->err;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), u32_cmp);
	for (i = j = 0; i < l->n; i++)
		if (!j || l->v[j - 1] != l->v[i])
			l->v[j++] = l->v[i];
	s->ids = l->v;
	s->n = j;
	l->v = NULL;
	s->st = calloc(j + 1, 1);
	s->cnt_a = calloc(j + 1, sizeof(*s->cnt_a));
	s->cnt_b = calloc(j + 1, sizeof(*s->cnt_b));
	return s->st && s->cnt_a && s->cnt_b ? 0 : -ENOMEM;
}

static void idseed_free(struct idseed *s)
{
	free(s->ids);
	free(s->st);
	free(s->cnt_a);
	free(s->cnt_b);
	memset(s, 0, sizeof(*s));
}

struct collect {
	struct idlist ident, cls, epol, ep;
	struct cseed *s;
	size_t npk;
};

static int collect_ipcache(void *arg, const void *key, const void *val)
{
	const struct vakt_ip_val *v = val;

	(void)key;
	if (v->identity >= VAKT_ID_FIRST_POD)
		idlist_add(&((struct collect *)arg)->ident, v->identity);
	return 0;
}

static int collect_endpoint(void *arg, const void *key, const void *val)
{
	struct collect *k = arg;
	const struct vakt_ep_val *v = val;

	(void)key;
	if (v->identity >= VAKT_ID_FIRST_POD)
		idlist_add(&k->ident, v->identity);
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++)
		if (v->policy[dir])
			idlist_add(&k->epol, v->policy[dir]);
	if (v->ep_id)
		idlist_add(&k->ep, v->ep_id);
	return 0;
}

static int collect_cidr(void *arg, const void *key, const void *val)
{
	const struct vakt_cidr_val *v = val;

	(void)key;
	if (v->class_id)
		idlist_add(&((struct collect *)arg)->cls, v->class_id);
	return 0;
}

static int collect_policy(void *arg, const void *key, const void *val)
{
	struct collect *k = arg;
	const struct vakt_policy_key *pk = key;
	const struct vakt_policy_val *pv = val;
	struct pkent *e;

	if (pk->policy)
		idlist_add(&k->epol, pk->policy);
	if (pk->peer & VAKT_PEER_CLASS) {
		if (pk->peer & ~VAKT_PEER_CLASS)
			idlist_add(&k->cls, pk->peer & ~VAKT_PEER_CLASS);
	} else if (pk->peer >= VAKT_ID_FIRST_POD) {
		idlist_add(&k->ident, pk->peer);
	}
	e = &k->s->pk[k->npk++];
	e->policy = pk->policy;
	e->peer = pk->peer;
	e->port = pk->port;
	e->proto = pk->proto;
	e->plen = (uint8_t)pk->prefixlen;
	e->action = pv->action;
	return 0;
}

static int pkent_cmp(const void *a, const void *b)
{
	const struct pkent *x = a, *y = b;

	if (x->policy != y->policy)
		return x->policy < y->policy ? -1 : 1;
	if (x->peer != y->peer)
		return x->peer < y->peer ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

static int count_ipcache(void *arg, const void *key, const void *val)
{
	struct idseed *s = arg;
	long i = idseed_find(s, ((const struct vakt_ip_val *)val)->identity);

	(void)key;
	if (i >= 0)
		s->cnt_a[i]++;
	return 0;
}

static int count_cidr(void *arg, const void *key, const void *val)
{
	struct idseed *s = arg;
	uint32_t id = ((const struct vakt_cidr_val *)val)->class_id;
	long i = id ? idseed_find(s, id) : -1;

	(void)key;
	if (i >= 0)
		s->cnt_a[i]++;
	return 0;
}

static void cseed_free(struct cseed *s)
{
	if (!s)
		return;
	vakt_tables_free(s->t);
	idseed_free(&s->ident);
	idseed_free(&s->cls);
	idseed_free(&s->epol);
	idseed_free(&s->ep);
	free(s->pk);
	free(s);
}

static struct cseed *cseed_build(struct vakt_tables *t)
{
	struct cseed *s = calloc(1, sizeof(*s));
	struct collect k = { .s = s };
	int err = -ENOMEM;

	if (!s)
		return NULL;
	s->t = t;
	s->pk = malloc((vakt_tables_count(t, VAKT_T_POLICY) + 1) * sizeof(*s->pk));
	if (!s->pk)
		goto out;
	vakt_tables_foreach(t, VAKT_T_IPCACHE, collect_ipcache, &k);
	vakt_tables_foreach(t, VAKT_T_ENDPOINTS, collect_endpoint, &k);
	vakt_tables_foreach(t, VAKT_T_CIDR, collect_cidr, &k);
	vakt_tables_foreach(t, VAKT_T_POLICY, collect_policy, &k);
	s->npk = k.npk;
	if (s->npk)
		qsort(s->pk, s->npk, sizeof(*s->pk), pkent_cmp);
	err = idseed_make(&s->ident, &k.ident);
	if (!err)
		err = idseed_make(&s->cls, &k.cls);
	if (!err)
		err = idseed_make(&s->epol, &k.epol);
	if (!err)
		err = idseed_make(&s->ep, &k.ep);
	if (err)
		goto out;
	vakt_tables_foreach(t, VAKT_T_IPCACHE, count_ipcache, &s->ident);
	vakt_tables_foreach(t, VAKT_T_CIDR, count_cidr, &s->cls);
out:
	free(k.ident.v);
	free(k.cls.v);
	free(k.epol.v);
	free(k.ep.v);
	if (err) {
		s->t = NULL; /* the caller keeps it */
		cseed_free(s);
		return NULL;
	}
	return s;
}

/* --- public API -------------------------------------------------------------------- */

void vakt_compiler_seed_free(struct vakt_compiler_seed *s)
{
	if (!s)
		return;
	vakt_tables_free(s->t);
	s->t = NULL;
}

int vakt_compiler_seed(struct vakt_compiler *c, struct vakt_compiler_seed *s)
{
	struct cseed *cs;

	if (!s || !s->t)
		return -EINVAL;
	cs = cseed_build(s->t);
	if (!cs) {
		log_error("compiler: out of memory", "what=seed from the pinned maps");
		return -ENOMEM;
	}
	s->t = NULL; /* ours now */
	vakt_compiler_release_seed(c);
	c->seed = cs;
	log_info("compiler: seeded from the pinned maps",
		 "identities=%zu classes=%zu endpoint_policies=%zu endpoints=%zu policy_entries=%zu",
		 cs->ident.n, cs->cls.n, cs->epol.n, cs->ep.n, cs->npk);
	return 0;
}

void vakt_compiler_release_seed(struct vakt_compiler *c)
{
	if (!c->seed)
		return;
	idalloc_unseed(&c->ident_ids);
	idalloc_unseed(&c->class_ids);
	idalloc_unseed(&c->epol_ids);
	idalloc_unseed(&c->ep_ids);
	cseed_free(c->seed);
	c->seed = NULL;
}

/* --- during the full compile ---------------------------------------------------------- */

void seed_attach(struct vakt_compiler *c)
{
	struct cseed *s = c->seed;

	if (!s)
		return;
	idalloc_seed(&c->ident_ids, &s->ident);
	idalloc_seed(&c->class_ids, &s->cls);
	idalloc_seed(&c->epol_ids, &s->epol);
	idalloc_seed(&c->ep_ids, &s->ep);
}

static int adopting(const struct vakt_compiler *c)
{
	return c->seed && c->seed->t && !c->seed->no_adopt;
}

uint32_t seed_want_ident(const struct vakt_compiler *c, const struct vakt_pod *pod)
{
	const struct vakt_ip_val *v;

	if (!adopting(c) || pod->host_network || !pod->nips)
		return 0;
	v = vakt_tables_ipcache(c->seed->t, &pod->ips[0]);
	return v && v->identity >= VAKT_ID_FIRST_POD ? v->identity : 0;
}

uint32_t seed_want_class(const struct vakt_compiler *c, const struct vakt_cidr *p)
{
	struct vakt_cidr_key k = { .prefixlen = p->plen, .addr = p->addr };
	const struct vakt_cidr_val *v;

	if (!adopting(c))
		return 0;
	v = vakt_tables_get(c->seed->t, VAKT_T_CIDR, &k);
	return v ? v->class_id : 0;
}

static const struct vakt_ep_val *seed_ep(const struct vakt_compiler *c, const struct vakt_pod *pod)
{
	const struct vakt_ep_val *v = NULL;

	for (size_t i = 0; !v && i < pod->nips && i < VAKT_POD_MAX_IPS; i++)
		v = vakt_tables_endpoint(c->seed->t, &pod->ips[i]);
	return v;
}

uint32_t seed_want_epol(const struct vakt_compiler *c, const struct vakt_pod *pod, int dir)
{
	const struct vakt_ep_val *v = adopting(c) ? seed_ep(c, pod) : NULL;

	return v ? v->policy[dir] : 0;
}

uint32_t seed_want_ep(const struct vakt_compiler *c, const struct vakt_pod *pod)
{
	/* Endpoint ids carry no meaning a verdict depends on: adopted even in the last round. */
	const struct vakt_ep_val *v = c->seed && c->seed->t ? seed_ep(c, pod) : NULL;

	return v ? v->ep_id : 0;
}

/* --- verification ---------------------------------------------------------------------- */

static size_t ban(struct idseed *s, long i)
{
	if (i < 0 || (s->st[i] & IDS_BANNED))
		return 0;
	s->st[i] |= IDS_BANNED;
	return 1;
}

static size_t verify_counts(struct idseed *s)
{
	size_t bans = 0;

	for (size_t i = 0; i < s->n; i++)
		if ((s->st[i] & IDS_TAKEN) && s->cnt_a[i] != s->cnt_b[i])
			bans += ban(s, (long)i);
	return bans;
}

/* An adopted identity holds exactly the addresses the maps give it. */
static size_t verify_identities(struct vakt_compiler *c)
{
	struct idseed *s = &c->seed->ident;
	size_t bans = 0, i;

	memset(s->cnt_b, 0, s->n * sizeof(*s->cnt_b));
	for (i = 0; i < vakt_htab_cap(&c->addrs); i++) {
		const struct caddr *r = c->addrs.slots[i].item;
		const struct vakt_ip_val *old;
		long k;

		if (!r || !r->ip_written)
			continue;
		k = idseed_find(s, r->ipv.identity);
		if (k < 0 || !(s->st[k] & IDS_TAKEN))
			continue;
		s->cnt_b[k]++;
		old = vakt_tables_ipcache(c->seed->t, &r->a);
		if (!old || old->identity != r->ipv.identity)
			bans += ban(s, k);
	}
	return bans + verify_counts(s);
}

/* An adopted class holds exactly the prefixes the maps give it. */
static size_t verify_classes(struct vakt_compiler *c)
{
	struct idseed *s = &c->seed->cls;
	size_t bans = 0, i;

	memset(s->cnt_b, 0, s->n * sizeof(*s->cnt_b));
	for (i = 0; i < vakt_htab_cap(&c->pfx); i++) {
		const struct cpfx *r = c->pfx.slots[i].item;
		struct vakt_cidr_key key;
		const struct vakt_cidr_val *old;
		long k;

		if (!r || !r->cls->id)
			continue;
		k = idseed_find(s, r->cls->id);
		if (k < 0 || !(s->st[k] & IDS_TAKEN))
			continue;
		s->cnt_b[k]++;
		key.prefixlen = r->c.plen;
		key.addr = r->c.addr;
		old = vakt_tables_get(c->seed->t, VAKT_T_CIDR, &key);
		if (!r->written || !old || old->class_id != r->cls->id)
			bans += ban(s, k);
	}
	return bans + verify_counts(s);
}

static int epol_same_entries(const struct cseed *s, const struct epol *e)
{
	size_t lo = 0, hi = s->npk, i;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (s->pk[m].policy < e->id)
			lo = m + 1;
		else
			hi = m;
	}
	for (i = 0; i < e->nents; i++) {
		const struct pkent *p = lo + i < s->npk ? &s->pk[lo + i] : NULL;
		const struct pentry *n = &e->ents[i];

		if (!p || p->policy != e->id || p->peer != n->peer || p->proto != n->proto ||
		    p->plen != n->plen || p->port != n->port || p->action != VAKT_ACTION_ALLOW)
			return 0;
	}
	return lo + i == s->npk || s->pk[lo + i].policy != e->id;
}

/* An adopted endpoint policy has exactly the entries the maps have under its id. */
static size_t verify_epols(struct vakt_compiler *c)
{
	struct idseed *s = &c->seed->epol;
	size_t bans = 0, i;

	for (i = 0; i < vakt_htab_cap(&c->epols); i++) {
		const struct epol *e = c->epols.slots[i].item;
		long k;

		if (!e)
			continue;
		k = idseed_find(s, e->id);
		if (k < 0 || !(s->st[k] & IDS_TAKEN))
			continue;
		if (e->failed || !epol_same_entries(c->seed, e))
			bans += ban(s, k);
	}
	return bans;
}

size_t seed_verify(struct vakt_compiler *c)
{
	if (!adopting(c))
		return 0;
	return verify_identities(c) + verify_classes(c) + verify_epols(c);
}

static size_t count_taken(const struct idseed *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += (s->st[i] & IDS_TAKEN) != 0;
	return n;
}

/* Adoption is over: the reservations stay until vakt_compiler_release_seed(). */
void seed_done_adopting(struct vakt_compiler *c)
{
	struct cseed *s = c->seed;

	if (!s || !s->t)
		return;
	log_info("compiler: ids adopted from the pinned maps",
		 "identities=%zu/%zu classes=%zu/%zu endpoint_policies=%zu/%zu endpoints=%zu/%zu",
		 count_taken(&s->ident), s->ident.n, count_taken(&s->cls), s->cls.n,
		 count_taken(&s->epol), s->epol.n, count_taken(&s->ep), s->ep.n);
	vakt_tables_free(s->t);
	s->t = NULL;
	free(s->pk);
	s->pk = NULL;
	s->npk = 0;
}
