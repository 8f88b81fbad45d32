// SPDX-License-Identifier: Apache-2.0
/*
 * The compiler: store events -> tables, incrementally.
 *
 * Each store event updates the state it touches (a pod's identity and
 * addresses, a local pod's endpoint policies, a policy's rules), which marks
 * endpoint policies dirty; flush() then recomputes only the dirty endpoint
 * policies (their dependencies, the CIDR classes if ipBlocks changed, their
 * entries), diffs the entries against what the table holds, and rewrites
 * the endpoint records whose values changed. Nothing is recompiled as a
 * whole on a pod event.
 */
#include <stdio.h>

#include "compiler_int.h"
#include "engine.h"
#include "log.h"

static void flush(struct vakt_compiler *c);

void compiler_error(struct vakt_compiler *c)
{
	c->st.errors++;
}

/* --- keys and small helpers -------------------------------------------------- */

struct objkey {
	const char *ns;
	const char *name;
};

static uint64_t objkey_hash(const char *ns, const char *name)
{
	return vakt_hash_str(vakt_hash_str(0x636f, ns), name);
}

static int cpod_eq(const void *item, const void *key)
{
	const struct cpod *p = item;
	const struct objkey *k = key;

	return !strcmp(p->name, k->name) && !strcmp(p->ns, k->ns);
}

static int cpol_eq(const void *item, const void *key)
{
	const struct cpol *p = item;
	const struct objkey *k = key;

	return !strcmp(p->name, k->name) && !strcmp(p->ns, k->ns);
}

static struct cpod *cpod_find(const struct vakt_compiler *c, const char *ns, const char *name)
{
	struct objkey k = { ns, name };

	return vakt_htab_find(&c->cpods, objkey_hash(ns, name), cpod_eq, &k);
}

static struct cpol *cpol_find(const struct vakt_compiler *c, const char *ns, const char *name)
{
	struct objkey k = { ns, name };

	return vakt_htab_find(&c->cpols, objkey_hash(ns, name), cpol_eq, &k);
}

static int cpod_cmp(const struct cpod *a, const struct cpod *b)
{
	int r = strcmp(a->ns, b->ns);

	return r ? r : strcmp(a->name, b->name);
}

static uint64_t addr_hash(const struct vakt_addr *a)
{
	return vakt_hash_bytes(0x6164, a->b, sizeof(a->b));
}

static int caddr_eq(const void *item, const void *key)
{
	return !memcmp(((const struct caddr *)item)->a.b, key, sizeof(struct vakt_addr));
}

/* --- addresses: ipcache and endpoint records ------------------------------------ */

struct caddr *caddr_find(const struct vakt_compiler *c, const struct vakt_addr *a)
{
	return vakt_htab_find(&c->addrs, addr_hash(a), caddr_eq, a);
}

static struct caddr *caddr_get(struct vakt_compiler *c, const struct vakt_addr *a, int create)
{
	uint64_t h = addr_hash(a);
	struct caddr *r = vakt_htab_find(&c->addrs, h, caddr_eq, a);

	if (r || !create)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r || vakt_htab_insert(&c->addrs, h, r)) {
		free(r);
		log_error("compiler: out of memory", "what=address");
		compiler_error(c);
		return NULL;
	}
	r->hash = h;
	r->a = *a;
	return r;
}

static void gone_add(struct vakt_compiler *c, const struct vakt_addr *a)
{
	if (c->gone_batch != c->batch) {
		c->gone_batch = c->batch;
		c->ngone = 0;
	}
	if (c->ngone == c->gone_cap) {
		size_t cap = c->gone_cap ? c->gone_cap * 2 : 16;
		struct vakt_addr *v = realloc(c->gone, cap * sizeof(*v));

		if (!v) {
			log_error("compiler: out of memory", "what=deleted endpoint addresses");
			compiler_error(c);
			return;
		}
		c->gone = v;
		c->gone_cap = cap;
	}
	c->gone[c->ngone++] = *a;
}

/*
 * Whether a pod appearing in this batch takes over an address that has an
 * endpoint record (another pod's, or one deleted earlier in the batch that
 * the maps still hold): its policy switch then matters as any other's.
 */
static int addrs_had_record(const struct vakt_compiler *c, const struct vakt_pod *pod)
{
	size_t i, j;

	for (i = 0; i < pod->nips && i < VAKT_POD_MAX_IPS; i++) {
		const struct caddr *r = caddr_find(c, &pod->ips[i]);

		if (r && r->ep_written)
			return 1;
		for (j = 0; c->gone_batch == c->batch && j < c->ngone; j++)
			if (!memcmp(&c->gone[j], &pod->ips[i], sizeof(pod->ips[i])))
				return 1;
	}
	return 0;
}

/* Two pods may briefly share an address: the lowest ns/name wins, so the
 * answer does not depend on event order. */
static void addr_refresh(struct vakt_compiler *c, struct caddr *r)
{
	struct cpod *ipo = NULL, *epo = NULL;
	struct vakt_ip_val ipv = { 0 };
	char buf[64];
	size_t i;
	int want_ip, want_ep, err;

	for (i = 0; i < r->owners.n; i++) {
		struct cpod *p = r->owners.v[i];

		if (p->id && (!ipo || cpod_cmp(p, ipo) < 0))
			ipo = p;
		if (p->ep && p->ep->val_valid && (!epo || cpod_cmp(p, epo) < 0))
			epo = p;
	}
	r->ipo = ipo;
	want_ip = r->host || ipo;
	ipv.identity = r->host ? VAKT_ID_HOST : ipo ? ipo->id->id : 0;
	if (want_ip && (!r->ip_written || memcmp(&ipv, &r->ipv, sizeof(ipv)))) {
		err = vakt_tables_put(c->t, VAKT_T_IPCACHE, &r->a, &ipv);
		if (err) {
			log_error("compiler: cannot write ipcache entry", "addr=%s err=%d",
				  vakt_addr_str(&r->a, buf, sizeof(buf)), err);
			compiler_error(c);
		} else {
			r->ipv = ipv;
			r->ip_written = 1;
		}
	} else if (!want_ip && r->ip_written) {
		vakt_tables_del(c->t, VAKT_T_IPCACHE, &r->a);
		r->ip_written = 0;
	}

	want_ep = epo != NULL;
	if (want_ep && (!r->ep_written || memcmp(&epo->ep->val, &r->epv, sizeof(r->epv)))) {
		err = vakt_tables_put(c->t, VAKT_T_ENDPOINTS, &r->a, &epo->ep->val);
		if (err) {
			/* No record at all: the pod is not enforced. Nothing can be
			 * failed closed without a record, so say so loudly. */
			log_error("compiler: cannot write endpoint entry: pod not enforced",
				  "ns=%s pod=%s addr=%s err=%d", epo->ns, epo->name,
				  vakt_addr_str(&r->a, buf, sizeof(buf)), err);
			compiler_error(c);
			c->st.fail_closed++;
		} else {
			r->epv = epo->ep->val;
			r->ep_written = 1;
		}
	} else if (!want_ep && r->ep_written) {
		vakt_tables_del(c->t, VAKT_T_ENDPOINTS, &r->a);
		r->ep_written = 0;
		gone_add(c, &r->a);
	}

	addr_sig_update(c, r);
	if (!r->host && !r->owners.n && !r->ip_written && !r->ep_written) {
		addr_sig_clear(c, r);
		vakt_htab_remove(&c->addrs, r->hash, r);
		vec_free(&r->owners);
		free(r);
	}
}

static void addr_refresh_at(struct vakt_compiler *c, const struct vakt_addr *a)
{
	struct caddr *r = caddr_get(c, a, 0);

	if (r)
		addr_refresh(c, r);
}

/* --- endpoint policies ----------------------------------------------------------- */

struct epkey {
	uint8_t dir;
	size_t npols;
	struct cpol *const *pols;
	size_t nports;
	const struct vakt_named_port *ports;
};

static uint64_t epkey_hash(const struct epkey *k)
{
	uint64_t h = vakt_hash_u64(0x6570, ((uint64_t)k->dir << 32) | k->npols);
	size_t i;

	for (i = 0; i < k->npols; i++)
		h = vakt_hash_u64(h, (uint64_t)(uintptr_t)k->pols[i]);
	return nports_hash(h, k->ports, k->nports);
}

static int epol_eq(const void *item, const void *key)
{
	const struct epol *e = item;
	const struct epkey *k = key;

	return e->dir == k->dir && e->npols == k->npols &&
	       !memcmp(e->pols, k->pols, k->npols * sizeof(*k->pols)) &&
	       nports_eq(e->ports, e->nports, k->ports, k->nports);
}

void epol_mark(struct vakt_compiler *c, struct epol *e, int why)
{
	e->dirty |= (uint8_t)why;
	if (e->queued)
		return;
	if (vec_push(&c->dirty_epols, e)) {
		log_error("compiler: out of memory", "what=dirty list");
		compiler_error(c);
		return;
	}
	e->queued = 1;
}

void epol_mark_ident(struct vakt_compiler *c, struct epol *e, uint32_t id)
{
	if (!(e->dirty & (EPOL_DIRTY_ENTRIES | EPOL_DIRTY_DEPS))) {
		if (e->ndirty_ids < EPOL_DIRTY_IDS_MAX)
			e->dirty_ids[e->ndirty_ids++] = id;
		else
			e->dirty |= EPOL_DIRTY_ENTRIES;
	}
	epol_mark(c, e, EPOL_DIRTY_IDENT);
}

/*
 * Endpoint policies are updated in place: new entries are put under the id,
 * obsolete ones deleted after the endpoint records are written. An endpoint
 * that uses the id before and after the batch sees, meanwhile, entries of
 * either side, which per flow allows only what one side allows. An endpoint
 * that joins or leaves it in the batch would instead see content it has on
 * neither side (the new rules before it leaves, the old ones after it
 * joined). So when both happen in one batch, whatever the order of the
 * events, the policy moves to a fresh id (epol_renumber()): its old id keeps
 * the old content until the deletes, its users switch with their records.
 * A policy whose id is new in this batch is in no record of the maps yet.
 */
static void epol_batch_note(struct vakt_compiler *c, struct epol *e, int what)
{
	if (e->fresh == c->batch)
		return;
	if (e->bgen != c->batch) {
		e->bgen = c->batch;
		e->bflags = 0;
	}
	e->bflags |= (uint8_t)what;
	if (e->bflags != (EPOL_B_USERS | EPOL_B_ENTS) || e->renum)
		return;
	if (vec_push(&c->renumber, e)) {
		/* In place then: only the transient mixture above is at stake. */
		log_error("compiler: out of memory", "what=renumber list policy_id=%u", e->id);
		compiler_error(c);
		return;
	}
	e->renum = 1;
}

static void cep_mark(struct vakt_compiler *c, struct cep *ep)
{
	if (ep->queued)
		return;
	if (vec_push(&c->dirty_eps, ep)) {
		log_error("compiler: out of memory", "what=dirty list");
		compiler_error(c);
		return;
	}
	ep->queued = 1;
}

void eps_mark_all(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < c->ep_by_id.n; i++)
		if (c->ep_by_id.v[i])
			cep_mark(c, c->ep_by_id.v[i]);
}

static void epol_free(struct epol *e)
{
	nports_free(e->ports, e->nports);
	free(e->pols);
	free(e->ents);
	vec_free(&e->users);
	vec_free(&e->dsels);
	vec_free(&e->dblocks);
	vec_free(&e->dnamed);
	vec_free(&e->dpnames);
	free(e);
}

static struct epol *epol_new(struct vakt_compiler *c, const struct epkey *k, uint64_t h,
			     uint32_t want)
{
	struct epol *e = calloc(1, sizeof(*e));
	size_t i;

	if (!e)
		return NULL;
	e->hash = h;
	e->dir = k->dir;
	e->pols = malloc(k->npols * sizeof(*e->pols));
	if (!e->pols)
		goto err;
	memcpy(e->pols, k->pols, k->npols * sizeof(*e->pols));
	e->npols = k->npols;
	if (nports_dup(&e->ports, k->ports, k->nports))
		goto err;
	e->nports = k->nports;
	e->id = idalloc_get_pref(&c->epol_ids, want);
	e->fresh = c->batch;
	if (!e->id) {
		log_error("compiler: endpoint policy ids exhausted", NULL);
		goto err;
	}
	if (vakt_htab_insert(&c->epols, h, e))
		goto err_id;
	for (i = 0; i < e->npols; i++)
		if (vec_push(&e->pols[i]->epols, e))
			goto err_pols;
	if (idmap_set(&c->epol_by_id, e->id, e))
		goto err_pols;
	return e;

err_pols:
	while (i-- > 0)
		vec_del(&e->pols[i]->epols, e);
	vakt_htab_remove(&c->epols, h, e);
err_id:
	idalloc_put(&c->epol_ids, e->id);
err:
	epol_free(e);
	return NULL;
}

static struct epol *epol_get(struct vakt_compiler *c, const struct epkey *k, struct cep *user)
{
	uint64_t h = epkey_hash(k);
	struct epol *e = vakt_htab_find(&c->epols, h, epol_eq, k);

	if (!e) {
		e = epol_new(c, k, h, seed_want_epol(c, user->pod->pod, k->dir));
		if (!e)
			goto err;
		epol_mark(c, e, EPOL_DIRTY_DEPS);
	}
	if (vec_push(&e->users, user)) {
		if (!e->users.n)
			epol_mark(c, e, 0); /* destroyed by the next flush */
		goto err;
	}
	return e;
err:
	log_error("compiler: cannot create endpoint policy", "ns=%s pod=%s dir=%s", user->pod->ns,
		  user->pod->name, k->dir == VAKT_DIR_INGRESS ? "ingress" : "egress");
	compiler_error(c);
	return NULL;
}

/* Destroyed by flush() when nobody took it again meanwhile. */
static void epol_put(struct vakt_compiler *c, struct epol *e, struct cep *user)
{
	vec_del(&e->users, user);
	if (!e->users.n)
		epol_mark(c, e, 0);
}

/* What an endpoint policy's entries depend on (see deps_update). */
struct deps {
	struct vec sels, blocks, named, pnames;
};

static void deps_release(struct vakt_compiler *c, struct epol *e, struct deps *d)
{
	size_t i;

	for (i = 0; i < d->named.n; i++)
		block_named_ref(c, d->named.v[i], -1);
	for (i = 0; i < d->pnames.n; i++)
		pname_put(c, d->pnames.v[i]);
	for (i = 0; i < d->sels.n; i++)
		sel_put(c, d->sels.v[i], e);
	for (i = 0; i < d->blocks.n; i++)
		block_put(c, d->blocks.v[i], e);
	vec_free(&d->sels);
	vec_free(&d->blocks);
	vec_free(&d->named);
	vec_free(&d->pnames);
}

static struct deps epol_deps(struct epol *e)
{
	return (struct deps){ e->dsels, e->dblocks, e->dnamed, e->dpnames };
}

static void epol_destroy(struct vakt_compiler *c, struct epol *e)
{
	struct vakt_policy_key k = { .policy = e->id };
	struct deps d;
	size_t i;

	for (i = 0; i < e->nents; i++) {
		k.prefixlen = e->ents[i].plen;
		k.peer = e->ents[i].peer;
		k.proto = e->ents[i].proto;
		k.port = e->ents[i].port;
		vakt_tables_del(c->t, VAKT_T_POLICY, &k);
	}
	if (e->nents)
		c->table_deletes = 1;
	d = epol_deps(e);
	deps_release(c, e, &d);
	memset(&e->dsels, 0, sizeof(e->dsels));
	memset(&e->dblocks, 0, sizeof(e->dblocks));
	memset(&e->dnamed, 0, sizeof(e->dnamed));
	memset(&e->dpnames, 0, sizeof(e->dpnames));
	for (i = 0; i < e->npols; i++)
		vec_del(&e->pols[i]->epols, e);
	vec_del(&c->failed_epols, e);
	if (e->renum)
		vec_del(&c->renumber, e);
	vakt_htab_remove(&c->epols, e->hash, e);
	idmap_set(&c->epol_by_id, e->id, NULL);
	idalloc_put(&c->epol_ids, e->id);
	epol_free(e);
}

static int rule_has_named_port(const struct vakt_rule *rule)
{
	for (size_t i = 0; i < rule->nports; i++)
		if (rule->ports[i].name)
			return 1;
	return 0;
}

/* An egress rule with ipBlock peers and named ports: its blocks become named
 * blocks, its names relevant (pods in the blocks get signature prefixes). */
static int deps_named(struct vakt_compiler *c, const struct vakt_rule *rule, struct deps *d,
		      size_t first_block)
{
	size_t i;

	for (i = first_block; i < d->blocks.n; i++) {
		if (vec_push(&d->named, d->blocks.v[i]))
			return -ENOMEM;
		block_named_ref(c, d->blocks.v[i], 1);
	}
	for (i = 0; i < rule->nports; i++) {
		struct pname *n;

		if (!rule->ports[i].name)
			continue;
		n = pname_get(c, rule->ports[i].name);
		if (!n)
			return -ENOMEM;
		if (vec_push(&d->pnames, n)) {
			pname_put(c, n);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The selectors and ipBlocks the entries depend on, in rule walk order:
 * per rule, one per peer (ipBlock -> block, else selector); for egress rules
 * without peers, one named-port selector per named port.
 */
static int deps_update(struct vakt_compiler *c, struct epol *e)
{
	struct deps d = { 0 }, old;
	size_t p, r, i, nb;

	for (p = 0; p < e->npols; p++) {
		const struct vakt_policy *pol = e->pols[p]->pol;

		for (r = 0; pol && r < pol->nrules[e->dir]; r++) {
			const struct vakt_rule *rule = &pol->rules[e->dir][r];

			nb = d.blocks.n;
			for (i = 0; i < rule->npeers; i++) {
				const struct vakt_peer *peer = &rule->peers[i];
				void *x = peer->has_ipblock ?
						  (void *)block_get(c, &peer->ipblock, e) :
						  (void *)sel_get_peer(c, peer, pol->ns, e);

				if (!x)
					goto err;
				if (vec_push(peer->has_ipblock ? &d.blocks : &d.sels, x)) {
					if (peer->has_ipblock)
						block_put(c, x, e);
					else
						sel_put(c, x, e);
					goto err;
				}
			}
			if (e->dir != VAKT_DIR_EGRESS)
				continue;
			if (d.blocks.n > nb && rule_has_named_port(rule) && deps_named(c, rule, &d, nb))
				goto err;
			if (rule->npeers)
				continue;
			for (i = 0; i < rule->nports; i++) {
				struct sel *s;

				if (!rule->ports[i].name)
					continue;
				s = sel_get_portname(c, rule->ports[i].name, rule->ports[i].proto, e);
				if (!s)
					goto err;
				if (vec_push(&d.sels, s)) {
					sel_put(c, s, e);
					goto err;
				}
			}
		}
	}
	old = epol_deps(e);
	deps_release(c, e, &old);
	e->dsels = d.sels;
	e->dblocks = d.blocks;
	e->dnamed = d.named;
	e->dpnames = d.pnames;
	return 0;
err:
	/* What was acquired is released; the old dependencies stay. */
	deps_release(c, e, &d);
	log_error("compiler: out of memory", "what=endpoint policy dependencies");
	compiler_error(c);
	return -ENOMEM;
}

/* --- entries ------------------------------------------------------------------- */

struct gen {
	struct pentry *v;
	size_t n, cap;
	uint32_t seq;
	uint32_t rule;
	const uint32_t *peers; /* targets of the current port prefix */
	size_t npeers;
	uint8_t proto;
	int err;
	const struct ident *only; /* partial: only entries whose peer is this identity */
	const struct cclass *only_cls; /* or this class (VAKT_PEER_CLASS set in only_id) */
	uint32_t only_id;         /* partial when non-zero (only, only_cls may be NULL: gone) */
};

static void emit(struct gen *g, uint32_t peer, uint8_t proto, uint8_t plen, uint16_t port_be)
{
	struct pentry *pe;

	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		struct pentry *v = realloc(g->v, cap * sizeof(*v));

		if (!v) {
			g->err = -ENOMEM;
			return;
		}
		g->v = v;
		g->cap = cap;
	}
	pe = &g->v[g->n++];
	pe->peer = peer;
	pe->proto = proto;
	pe->plen = plen;
	pe->port = port_be;
	pe->rule = g->rule;
	pe->seq = g->seq++;
}

static int emit_prefix(void *arg, uint16_t value, uint8_t plen)
{
	struct gen *g = arg;
	size_t i;

	for (i = 0; i < g->npeers; i++)
		emit(g, g->peers[i], g->proto, (uint8_t)(VAKT_PLEN_ANY_PORT + plen), VAKT_HTONS(value));
	return 0;
}

static void emit_range(struct gen *g, const uint32_t *peers, size_t npeers, uint8_t proto,
		       uint16_t lo, uint16_t hi)
{
	g->peers = peers;
	g->npeers = npeers;
	g->proto = proto;
	vakt_port_range_prefixes(lo, hi, emit_prefix, g);
}

/* A named egress port resolved against every identity of a selector. */
static void emit_named_per_ident(struct gen *g, const struct sel *s, const struct vakt_port_spec *ps)
{
	size_t i;

	if (g->only_id) {
		uint8_t proto;
		uint16_t lo, hi;

		if (g->only && sel_has(s, g->only) &&
		    vakt_port_resolve(ps, g->only->rep.ports, g->only->rep.nports, &proto, &lo, &hi) == 1)
			emit_range(g, &g->only_id, 1, proto, lo, hi);
		return;
	}
	for (i = 0; i < vakt_htab_cap(&s->idents); i++) {
		const struct ident *id = s->idents.slots[i].item;
		uint8_t proto;
		uint16_t lo, hi;

		if (id && vakt_port_resolve(ps, id->rep.ports, id->rep.nports, &proto, &lo, &hi) == 1)
			emit_range(g, &id->id, 1, proto, lo, hi);
	}
}

static int class_has_block(const struct cclass *cl, const struct cblock *b)
{
	for (size_t i = 0; i < cl->nb; i++)
		if (cl->b[i] == b)
			return 1;
	return 0;
}

/*
 * A named egress port with an ipBlock peer: the destination must be a pod in
 * the block that gives the name a port. Such pods' addresses have /128
 * prefixes whose classes carry their named ports (cidrclass.c), so the port
 * is resolved per class of the block.
 */
static void emit_named_per_class(struct gen *g, const struct cblock *b,
				 const struct vakt_port_spec *ps)
{
	uint8_t proto;
	uint16_t lo, hi;
	size_t i;

	if (g->only_id) {
		const struct cclass *cl = g->only_cls;

		if ((g->only_id & VAKT_PEER_CLASS) && cl && cl->sig && class_has_block(cl, b) &&
		    vakt_port_resolve(ps, cl->sig->ports, cl->sig->nports, &proto, &lo, &hi) == 1)
			emit_range(g, &g->only_id, 1, proto, lo, hi);
		return;
	}
	for (i = 0; i < b->classes.n; i++) {
		const struct cclass *cl = b->classes.v[i];
		uint32_t peer = VAKT_PEER_CLASS | cl->id;

		if (cl->sig &&
		    vakt_port_resolve(ps, cl->sig->ports, cl->sig->nports, &proto, &lo, &hi) == 1)
			emit_range(g, &peer, 1, proto, lo, hi);
	}
}

struct rulectx {
	const struct vakt_rule *rule;
	uint32_t *targets; /* peers for unnamed ports */
	size_t ntargets, tcap;
	const struct cblock **peer_blk; /* per peer: its block, or NULL for selectors */
	struct sel **peer_sel; /* per peer: its selector, or NULL for ipBlock */
	struct sel **port_sel; /* per port: named-port selector (egress, no peers) */
};

static int target_add(struct rulectx *rc, uint32_t peer)
{
	if (rc->ntargets == rc->tcap) {
		size_t cap = rc->tcap ? rc->tcap * 2 : 16;
		uint32_t *v = realloc(rc->targets, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rc->targets = v;
		rc->tcap = cap;
	}
	rc->targets[rc->ntargets++] = peer;
	return 0;
}

/* Consumes the rule's dependencies (same walk as deps_update) and lists its peers. */
static int rule_targets(struct epol *e, struct rulectx *rc, const struct gen *g, size_t *si,
			size_t *bi)
{
	const struct vakt_rule *rule = rc->rule;
	size_t i, j;

	rc->ntargets = 0;
	if (!rule->npeers && !g->only_id && target_add(rc, VAKT_PEER_ANY))
		return -ENOMEM;
	for (i = 0; i < rule->npeers; i++) {
		rc->peer_sel[i] = NULL;
		rc->peer_blk[i] = NULL;
		if (rule->peers[i].has_ipblock) {
			const struct cblock *b = e->dblocks.v[(*bi)++];

			rc->peer_blk[i] = b;
			if (g->only_id) {
				/* Partial: the one class, if it lies in this block. */
				if ((g->only_id & VAKT_PEER_CLASS) && g->only_cls &&
				    class_has_block(g->only_cls, b) && target_add(rc, g->only_id))
					return -ENOMEM;
				continue;
			}
			for (j = 0; j < b->classes.n; j++)
				if (target_add(rc, VAKT_PEER_CLASS |
							   ((const struct cclass *)b->classes.v[j])->id))
					return -ENOMEM;
			continue;
		}
		rc->peer_sel[i] = e->dsels.v[(*si)++];
		if (g->only_id) {
			/* Partial: the one identity, if this selector holds it. */
			if (g->only && sel_has(rc->peer_sel[i], g->only) && target_add(rc, g->only_id))
				return -ENOMEM;
			continue;
		}
		for (j = 0; j < vakt_htab_cap(&rc->peer_sel[i]->idents); j++) {
			const struct ident *id = rc->peer_sel[i]->idents.slots[j].item;

			if (id && target_add(rc, id->id))
				return -ENOMEM;
		}
	}
	for (i = 0; i < rule->nports; i++) {
		rc->port_sel[i] = NULL;
		if (e->dir == VAKT_DIR_EGRESS && !rule->npeers && rule->ports[i].name)
			rc->port_sel[i] = e->dsels.v[(*si)++];
	}
	return 0;
}

static void rule_emit(struct gen *g, const struct epol *e, const struct rulectx *rc)
{
	const struct vakt_rule *rule = rc->rule;
	size_t i, j;

	if (!rule->nports) {
		for (i = 0; i < rc->ntargets; i++)
			emit(g, rc->targets[i], 0, VAKT_PLEN_ANY_PROTO, 0);
		return;
	}
	for (i = 0; i < rule->nports; i++) {
		const struct vakt_port_spec *ps = &rule->ports[i];
		uint8_t proto;
		uint16_t lo, hi;

		if (!ps->name) {
			if (vakt_port_resolve(ps, NULL, 0, &proto, &lo, &hi) != 1)
				continue;
			if (!ps->port) {
				for (j = 0; j < rc->ntargets; j++)
					emit(g, rc->targets[j], proto, VAKT_PLEN_ANY_PORT, 0);
			} else {
				emit_range(g, rc->targets, rc->ntargets, proto, lo, hi);
			}
			continue;
		}
		if (e->dir == VAKT_DIR_INGRESS) {
			/* Named ports of the receiving pod: this endpoint policy's pods. */
			if (vakt_port_resolve(ps, e->ports, e->nports, &proto, &lo, &hi) == 1)
				emit_range(g, rc->targets, rc->ntargets, proto, lo, hi);
			continue;
		}
		/* Egress: the port is the destination pod's: the peer identity's,
		 * or for ipBlock peers the signature class's of the pod's address. */
		if (rc->port_sel[i])
			emit_named_per_ident(g, rc->port_sel[i], ps);
		for (j = 0; j < rule->npeers; j++) {
			if (rc->peer_sel[j])
				emit_named_per_ident(g, rc->peer_sel[j], ps);
			else if (rc->peer_blk[j])
				emit_named_per_class(g, rc->peer_blk[j], ps);
		}
	}
}

static int pentry_keycmp(const struct pentry *a, const struct pentry *b)
{
	if (a->peer != b->peer)
		return a->peer < b->peer ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->plen != b->plen)
		return a->plen < b->plen ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

static int pentry_cmp(const void *x, const void *y)
{
	const struct pentry *a = x, *b = y;
	int r = pentry_keycmp(a, b);

	if (r)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* All entries of e, sorted by key, one per key (the first rule in policy name
 * and rule order wins, so the reference does not depend on history). */
static int entries_generate(struct epol *e, struct gen *g)
{
	struct rulectx rc = { 0 };
	size_t p, r, si = 0, bi = 0, i, j, maxp = 1, maxports = 1;
	int err = 0;

	for (p = 0; p < e->npols; p++) {
		const struct vakt_policy *pol = e->pols[p]->pol;

		for (r = 0; pol && r < pol->nrules[e->dir]; r++) {
			if (pol->rules[e->dir][r].npeers > maxp)
				maxp = pol->rules[e->dir][r].npeers;
			if (pol->rules[e->dir][r].nports > maxports)
				maxports = pol->rules[e->dir][r].nports;
		}
	}
	rc.peer_sel = calloc(maxp, sizeof(*rc.peer_sel));
	rc.peer_blk = calloc(maxp, sizeof(*rc.peer_blk));
	rc.port_sel = calloc(maxports, sizeof(*rc.port_sel));
	if (!rc.peer_sel || !rc.peer_blk || !rc.port_sel) {
		err = -ENOMEM;
		goto out;
	}
	for (p = 0; p < e->npols; p++) {
		const struct cpol *cp = e->pols[p];

		for (r = 0; cp->pol && r < cp->pol->nrules[e->dir]; r++) {
			rc.rule = &cp->pol->rules[e->dir][r];
			err = rule_targets(e, &rc, g, &si, &bi);
			if (err)
				goto out;
			g->rule = cp->rule_ids[e->dir][r];
			rule_emit(g, e, &rc);
		}
	}
	err = g->err;
	if (err)
		goto out;
	if (g->n)
		qsort(g->v, g->n, sizeof(*g->v), pentry_cmp);
	for (i = j = 0; i < g->n; i++)
		if (!j || pentry_keycmp(&g->v[j - 1], &g->v[i]))
			g->v[j++] = g->v[i];
	g->n = j;
out:
	free(rc.targets);
	free(rc.peer_sel);
	free(rc.peer_blk);
	free(rc.port_sel);
	return err;
}

static uint32_t entries_kinds(const struct pentry *v, size_t n)
{
	uint32_t k = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].peer == VAKT_PEER_ANY)
			k |= VAKT_EPF_ANY(0);
		else if (v[i].peer & VAKT_PEER_CLASS)
			k |= VAKT_EPF_CLASS(0);
		else
			k |= VAKT_EPF_ID(0);
	}
	return k;
}

static int entry_put(struct vakt_compiler *c, struct epol *e, const struct pentry *pe)
{
	struct vakt_policy_key k = {
		.prefixlen = pe->plen, .policy = e->id, .peer = pe->peer,
		.proto = pe->proto, .port = pe->port,
	};
	struct vakt_policy_val v = { .rule = pe->rule, .action = VAKT_ACTION_ALLOW };

	c->ents_written++;
	return vakt_tables_put(c->t, VAKT_T_POLICY, &k, &v);
}

static void entry_del(struct vakt_compiler *c, struct epol *e, const struct pentry *pe)
{
	struct vakt_policy_key k = {
		.prefixlen = pe->plen, .policy = e->id, .peer = pe->peer,
		.proto = pe->proto, .port = pe->port,
	};

	c->ents_written++;
	if (!vakt_tables_del(c->t, VAKT_T_POLICY, &k))
		c->table_deletes = 1;
}

/* Writes the difference between e's old and new entries; returns put failures. */
static int entries_apply(struct vakt_compiler *c, struct epol *e, const struct pentry *nv, size_t nn)
{
	const struct pentry *ov = e->ents;
	size_t i = 0, j = 0, on = e->nents;
	int failures = 0;

	while (i < on || j < nn) {
		int cmp = i == on ? 1 : j == nn ? -1 : pentry_keycmp(&ov[i], &nv[j]);

		if (cmp < 0) {
			entry_del(c, e, &ov[i++]);
			continue;
		}
		if (cmp == 0 && ov[i].rule == nv[j].rule && !e->failed) {
			i++;
			j++;
			continue;
		}
		if (cmp == 0)
			i++;
		if (entry_put(c, e, &nv[j++]))
			failures++;
	}
	return failures;
}

static int uint32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* [*lo, *hi): the entries of e whose peer is id (entries are sorted by peer first). */
static void peer_range(const struct epol *e, uint32_t id, size_t *lo, size_t *hi)
{
	size_t a = 0, b = e->nents;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (e->ents[m].peer < id)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	for (b = a; b < e->nents && e->ents[b].peer == id; b++)
		;
	*hi = b;
}

/*
 * Recomputes only the entries of the identities in e->dirty_ids: an identity
 * appearing or going away changes no other entry. Returns put failures, or
 * -ENOMEM (the caller then recomputes everything).
 */
static int epol_recompute_ids(struct vakt_compiler *c, struct epol *e)
{
	size_t k, i;
	int failures = 0;

	qsort(e->dirty_ids, e->ndirty_ids, sizeof(e->dirty_ids[0]), uint32_cmp);
	for (k = 0; k < e->ndirty_ids; k++) {
		uint32_t id = e->dirty_ids[k];
		struct gen g = { .only_id = id };
		struct pentry *nv;
		struct epol sub;
		size_t lo, hi, n;

		if (k && id == e->dirty_ids[k - 1])
			continue;
		if (id & VAKT_PEER_CLASS)
			g.only_cls = idmap_get(&c->class_by_id, id & ~VAKT_PEER_CLASS);
		else
			g.only = idmap_get(&c->ident_by_id, id - VAKT_ID_FIRST_POD);
		if (entries_generate(e, &g)) {
			free(g.v);
			return -ENOMEM;
		}
		peer_range(e, id, &lo, &hi);
		/* Diff the old range against the new entries through a view of e. */
		sub = *e;
		sub.ents = e->ents + lo;
		sub.nents = hi - lo;
		failures += entries_apply(c, &sub, g.v, g.n);
		n = e->nents - (hi - lo) + g.n;
		nv = malloc((n ? n : 1) * sizeof(*nv));
		if (!nv) {
			free(g.v);
			return -ENOMEM;
		}
		for (i = 0; i < lo; i++)
			nv[i] = e->ents[i];
		for (i = 0; i < g.n; i++)
			nv[lo + i] = g.v[i];
		for (i = hi; i < e->nents; i++)
			nv[i - hi + lo + g.n] = e->ents[i];
		free(e->ents);
		free(g.v);
		e->ents = nv;
		e->nents = n;
	}
	return failures;
}

static void epol_recompute_once(struct vakt_compiler *c, struct epol *e)
{
	struct gen g = { 0 };
	uint32_t kinds;
	int failures, was_failed = e->failed;

	if (e->dirty == EPOL_DIRTY_IDENT && !e->failed) {
		failures = epol_recompute_ids(c, e);
		e->ndirty_ids = 0;
		if (failures >= 0) {
			if (failures) {
				log_error("compiler: policy table full, endpoints fail closed",
					  "policy_id=%u failed_entries=%d", e->id, failures);
				compiler_error(c);
				e->failed = 1;
				vec_push(&c->failed_epols, e);
			}
			kinds = entries_kinds(e->ents, e->nents);
			if (kinds == e->kinds && !e->failed)
				return;
			e->kinds = kinds;
			goto users;
		}
	}
	e->ndirty_ids = 0;
	if (entries_generate(e, &g)) {
		log_error("compiler: out of memory", "what=policy entries policy_id=%u", e->id);
		compiler_error(c);
		free(g.v);
		e->failed = 1;
		goto users;
	}
	failures = entries_apply(c, e, g.v, g.n);
	free(e->ents);
	e->ents = g.v;
	e->nents = g.n;
	e->failed = failures > 0;
	if (failures) {
		log_error("compiler: policy table full, endpoints fail closed",
			  "policy_id=%u failed_entries=%d entries=%zu", e->id, failures, g.n);
		compiler_error(c);
		if (!was_failed)
			vec_push(&c->failed_epols, e);
	} else if (was_failed) {
		vec_del(&c->failed_epols, e);
	}
	kinds = entries_kinds(g.v, g.n);
	if (kinds == e->kinds && was_failed == e->failed)
		return;
	e->kinds = kinds;
users:
	for (size_t i = 0; i < e->users.n; i++)
		cep_mark(c, e->users.v[i]);
}

static void epol_recompute(struct vakt_compiler *c, struct epol *e)
{
	uint64_t written = c->ents_written;

	epol_recompute_once(c, e);
	if (c->ents_written != written)
		epol_batch_note(c, e, EPOL_B_ENTS);
}

/*
 * Moves e's entries to a fresh id (see epol_batch_note()): all of them put
 * under the new id, all deleted under the old one (the map writer writes the
 * puts first and the deletes last), and every user's record switches.
 */
static void epol_renumber(struct vakt_compiler *c, struct epol *e)
{
	uint32_t id = idalloc_get(&c->epol_ids), old = e->id;
	int failures = 0, was_failed = e->failed;
	size_t i;

	if (!id || idmap_set(&c->epol_by_id, id, e)) {
		log_error("compiler: endpoint policy ids exhausted, policy changed in place",
			  "policy_id=%u", old);
		compiler_error(c);
		idalloc_put(&c->epol_ids, id);
		return;
	}
	/* Deletes first: the tables' limits count the batch's result. */
	for (i = 0; i < e->nents; i++)
		entry_del(c, e, &e->ents[i]);
	idmap_set(&c->epol_by_id, old, NULL);
	idalloc_put(&c->epol_ids, old);
	e->id = id;
	e->fresh = c->batch;
	for (i = 0; i < e->nents; i++)
		failures += entry_put(c, e, &e->ents[i]) != 0;
	e->failed = failures > 0;
	if (failures) {
		log_error("compiler: policy table full, endpoints fail closed",
			  "policy_id=%u failed_entries=%d entries=%zu", id, failures, e->nents);
		compiler_error(c);
		if (!was_failed)
			vec_push(&c->failed_epols, e);
	} else if (was_failed) {
		vec_del(&c->failed_epols, e);
	}
	for (i = 0; i < e->users.n; i++)
		cep_mark(c, e->users.v[i]);
}

/* --- policies ------------------------------------------------------------------ */

static void cpol_rules_free(struct vakt_compiler *c, struct cpol *cp, int dir, size_t from)
{
	size_t i;

	for (i = from; i < cp->nrules[dir]; i++) {
		free(idmap_get(&c->rules, cp->rule_ids[dir][i]));
		idmap_set(&c->rules, cp->rule_ids[dir][i], NULL);
		idalloc_put(&c->rule_ids, cp->rule_ids[dir][i]);
	}
	if (from < cp->nrules[dir])
		cp->nrules[dir] = from;
}

/* Rule ids follow (policy, direction, index): kept while the policy exists. */
static int cpol_rules_update(struct vakt_compiler *c, struct cpol *cp)
{
	int dir;

	for (dir = 0; dir < VAKT_DIR_MAX; dir++) {
		size_t n = cp->pol->nrules[dir];
		uint32_t *ids;

		cpol_rules_free(c, cp, dir, n);
		if (n <= cp->nrules[dir])
			continue;
		ids = realloc(cp->rule_ids[dir], n * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		cp->rule_ids[dir] = ids;
		while (cp->nrules[dir] < n) {
			struct rref *rr = malloc(sizeof(*rr));
			uint32_t id = rr ? idalloc_get(&c->rule_ids) : 0;

			if (!id || idmap_set(&c->rules, id, rr)) {
				idalloc_put(&c->rule_ids, id);
				free(rr);
				return -ENOMEM;
			}
			rr->p = cp;
			rr->dir = (uint8_t)dir;
			rr->index = (uint32_t)cp->nrules[dir];
			ids[cp->nrules[dir]++] = id;
		}
	}
	return 0;
}

static void cpol_free(struct vakt_compiler *c, struct cpol *cp)
{
	int dir;

	for (dir = 0; dir < VAKT_DIR_MAX; dir++) {
		cpol_rules_free(c, cp, dir, 0);
		free(cp->rule_ids[dir]);
	}
	vec_free(&cp->epols);
	free(cp->ns);
	free(cp->name);
	free(cp);
}

static struct cpol *cpol_new(struct vakt_compiler *c, const char *ns, const char *name)
{
	struct cpol *cp = calloc(1, sizeof(*cp));

	if (!cp)
		return NULL;
	cp->ns = strdup(ns);
	cp->name = strdup(name);
	cp->hash = objkey_hash(ns, name);
	if (!cp->ns || !cp->name || vakt_htab_insert(&c->cpols, cp->hash, cp)) {
		free(cp->ns);
		free(cp->name);
		free(cp);
		return NULL;
	}
	return cp;
}

/* --- local endpoints ------------------------------------------------------------- */

static int is_local(const struct vakt_compiler *c, const struct vakt_pod *pod)
{
	if (pod->host_network || !pod->nips)
		return 0;
	return !c->node || (pod->node && !strcmp(pod->node, c->node));
}

struct selecting {
	const struct vakt_pod *pod;
	const struct vakt_compiler *c;
	int dir;
	struct cpol **v;
	size_t n, cap;
	int err;
};

static int collect_selecting(void *arg, const struct vakt_policy *pol)
{
	struct selecting *s = arg;
	struct cpol *cp;

	if (!vakt_policy_selects(pol, s->pod, s->dir))
		return 0;
	cp = cpol_find(s->c, pol->ns, pol->name);
	if (!cp || cp->pol != pol) {
		s->err = -ENOENT; /* store and compiler disagree: a bug */
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct cpol **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = cp;
	return 0;
}

static int cpol_name_cmp(const void *a, const void *b)
{
	return strcmp((*(struct cpol *const *)a)->name, (*(struct cpol *const *)b)->name);
}

static int uses_named_ports(struct cpol *const *pols, size_t n, int dir)
{
	size_t p, r, i;

	for (p = 0; p < n; p++)
		for (r = 0; r < pols[p]->pol->nrules[dir]; r++)
			for (i = 0; i < pols[p]->pol->rules[dir][r].nports; i++)
				if (pols[p]->pol->rules[dir][r].ports[i].name)
					return 1;
	return 0;
}

/* Recomputes which endpoint policy a local pod uses in each direction. */
static void cep_select(struct vakt_compiler *c, struct cep *ep)
{
	const struct vakt_pod *pod = ep->pod->pod;
	int dir, in_maps = ep->born != c->batch || addrs_had_record(c, pod);

	for (dir = 0; dir < VAKT_DIR_MAX; dir++) {
		struct selecting s = { .pod = pod, .c = c, .dir = dir };
		struct epol *e = NULL;
		struct epkey k;
		int ret, no_epol = 0;

		ret = vakt_store_foreach_policy_in(c->s, pod->ns, collect_selecting, &s);
		if (ret || s.err) {
			log_error("compiler: cannot list policies", "ns=%s pod=%s err=%d", pod->ns,
				  pod->name, ret ? ret : s.err);
			compiler_error(c);
			no_epol = 1;
		} else if (s.n) {
			qsort(s.v, s.n, sizeof(*s.v), cpol_name_cmp);
			k.dir = (uint8_t)dir;
			k.pols = s.v;
			k.npols = s.n;
			/* Named ingress ports resolve against the pod: only then do
			 * its ports belong to the inputs (more sharing otherwise). */
			k.nports = dir == VAKT_DIR_INGRESS && uses_named_ports(s.v, s.n, dir) ?
					   pod->nports : 0;
			k.ports = pod->ports;
			e = epol_get(c, &k, ep);
			no_epol = !e;
		}
		free(s.v);
		if (e != ep->epol[dir] && in_maps) {
			if (e)
				epol_batch_note(c, e, EPOL_B_USERS);
			if (ep->epol[dir])
				epol_batch_note(c, ep->epol[dir], EPOL_B_USERS);
		}
		if (ep->epol[dir])
			epol_put(c, ep->epol[dir], ep);
		ep->epol[dir] = e;
		ep->no_epol[dir] = (uint8_t)no_epol;
	}
	cep_mark(c, ep);
}

static struct cep *cep_new(struct vakt_compiler *c, struct cpod *cp)
{
	struct cep *ep = calloc(1, sizeof(*ep));

	if (!ep) {
		log_error("compiler: out of memory", "what=endpoint ns=%s pod=%s", cp->ns, cp->name);
		compiler_error(c);
		return NULL;
	}
	ep->pod = cp;
	ep->born = c->batch;
	ep->ep_id = idalloc_get_pref(&c->ep_ids, seed_want_ep(c, cp->pod));
	if (!ep->ep_id || idmap_set(&c->ep_by_id, ep->ep_id, ep)) {
		log_error("compiler: endpoint ids exhausted, pod fails closed",
			  "ns=%s pod=%s max=%u", cp->ns, cp->name, c->ep_ids.max);
		compiler_error(c);
		idalloc_put(&c->ep_ids, ep->ep_id);
		ep->ep_id = 0;
	}
	c->nlocal++;
	return ep;
}

static void cep_free(struct vakt_compiler *c, struct cep *ep)
{
	int dir;

	for (dir = 0; dir < VAKT_DIR_MAX; dir++)
		if (ep->epol[dir])
			epol_put(c, ep->epol[dir], ep);
	if (ep->queued)
		vec_del(&c->dirty_eps, ep);
	if (ep->ep_id) {
		idmap_set(&c->ep_by_id, ep->ep_id, NULL);
		idalloc_put(&c->ep_ids, ep->ep_id);
	}
	c->nlocal--;
	free(ep);
}

static void cep_compute(struct vakt_compiler *c, struct cep *ep)
{
	struct vakt_ep_val v = { .ep_id = ep->ep_id };
	int dir, fail = !ep->ep_id;

	v.identity = ep->pod->id ? ep->pod->id->id : VAKT_ID_WORLD;
	for (dir = 0; dir < VAKT_DIR_MAX; dir++) {
		const struct epol *e = ep->epol[dir];

		fail |= ep->no_epol[dir];
		if (!e)
			continue;
		v.policy[dir] = e->id;
		v.flags |= e->kinds << (dir * 4);
		fail |= e->failed || (c->cidr_failed && (e->kinds & VAKT_EPF_CLASS(0)));
	}
	if (fail) {
		v.flags |= VAKT_EPF_FAIL_CLOSED;
		if (!ep->was_failed) {
			log_error("compiler: endpoint fails closed", "ns=%s pod=%s ep_id=%u",
				  ep->pod->ns, ep->pod->name, ep->ep_id);
			c->st.fail_closed++;
		}
	}
	ep->was_failed = (uint8_t)fail;
	ep->val = v;
	ep->val_valid = 1;
}

/* --- pods -------------------------------------------------------------------------- */

static int addr_in(const struct vakt_addr *a, const struct vakt_addr *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!memcmp(a, &set[i], sizeof(*a)))
			return 1;
	return 0;
}

static void pod_addrs_update(struct vakt_compiler *c, struct cpod *cp, const struct vakt_pod *pod)
{
	struct vakt_addr old[VAKT_POD_MAX_IPS];
	size_t i, nold = cp->naddr, nnew = pod && !pod->host_network ? pod->nips : 0;

	if (nnew > VAKT_POD_MAX_IPS)
		nnew = VAKT_POD_MAX_IPS;
	memcpy(old, cp->addrs, sizeof(old));
	for (i = 0; i < nold; i++) {
		struct caddr *r;

		if (addr_in(&old[i], pod ? pod->ips : NULL, nnew))
			continue;
		r = caddr_get(c, &old[i], 0);
		if (r)
			vec_del(&r->owners, cp);
	}
	cp->naddr = 0;
	for (i = 0; i < nnew; i++) {
		struct caddr *r;

		cp->addrs[cp->naddr++] = pod->ips[i];
		if (addr_in(&pod->ips[i], old, nold))
			continue;
		r = caddr_get(c, &pod->ips[i], 1);
		if (!r || vec_push(&r->owners, cp)) {
			compiler_error(c);
			cp->naddr--;
		}
	}
	for (i = 0; i < nold; i++)
		addr_refresh_at(c, &old[i]);
	for (i = 0; i < cp->naddr; i++)
		if (!addr_in(&cp->addrs[i], old, nold))
			addr_refresh_at(c, &cp->addrs[i]);
}

static void cpod_release(struct vakt_compiler *c, struct cpod *cp)
{
	if (cp->ep) {
		cep_free(c, cp->ep);
		cp->ep = NULL;
	}
	pod_addrs_update(c, cp, NULL);
	if (cp->id)
		ident_put(c, cp->id);
	vakt_htab_remove(&c->cpods, cp->hash, cp);
	free(cp->ns);
	free(cp->name);
	free(cp);
}

static void pod_sync(struct vakt_compiler *c, struct cpod *cp, const struct vakt_pod *pod)
{
	struct ident *old = cp->id, *id = NULL;

	cp->pod = pod;
	if (!pod->host_network && pod->nips)
		id = ident_get(c, pod, vakt_store_namespace(c->s, pod->ns));
	cp->id = id;
	if (old)
		ident_put(c, old);
	if (is_local(c, pod) && !cp->ep)
		cp->ep = cep_new(c, cp);
	else if (!is_local(c, pod) && cp->ep) {
		cep_free(c, cp->ep);
		cp->ep = NULL;
	}
	if (cp->ep)
		cep_select(c, cp->ep);
	pod_addrs_update(c, cp, pod);
	/* Addresses kept across the change may have changed identity. */
	for (size_t i = 0; i < cp->naddr; i++)
		addr_refresh_at(c, &cp->addrs[i]);
}

static struct cpod *cpod_new(struct vakt_compiler *c, const char *ns, const char *name)
{
	struct cpod *cp = calloc(1, sizeof(*cp));

	if (!cp)
		return NULL;
	cp->ns = strdup(ns);
	cp->name = strdup(name);
	cp->hash = objkey_hash(ns, name);
	if (!cp->ns || !cp->name || vakt_htab_insert(&c->cpods, cp->hash, cp)) {
		free(cp->ns);
		free(cp->name);
		free(cp);
		return NULL;
	}
	return cp;
}

static void pod_event(struct vakt_compiler *c, const struct vakt_pod *old, const struct vakt_pod *cur)
{
	const struct vakt_pod *p = cur ? cur : old;
	struct cpod *cp;

	if (!p)
		return;
	cp = cpod_find(c, p->ns, p->name);
	if (!cur) {
		if (cp)
			cpod_release(c, cp);
		return;
	}
	if (!cp)
		cp = cpod_new(c, cur->ns, cur->name);
	if (!cp) {
		log_error("compiler: out of memory", "what=pod ns=%s pod=%s", cur->ns, cur->name);
		compiler_error(c);
		return;
	}
	pod_sync(c, cp, cur);
}

/* --- policies and namespaces --------------------------------------------------------- */

struct nswalk {
	struct vakt_compiler *c;
	int resync; /* 1: full pod sync (namespace labels); 0: endpoint policies only */
};

static int ns_pod_cb(void *arg, const struct vakt_pod *pod)
{
	struct nswalk *w = arg;
	struct cpod *cp = cpod_find(w->c, pod->ns, pod->name);

	if (!cp)
		return 0;
	if (w->resync)
		pod_sync(w->c, cp, pod);
	else if (cp->ep)
		cep_select(w->c, cp->ep);
	return 0;
}

static void policy_event(struct vakt_compiler *c, const struct vakt_policy *old,
			 const struct vakt_policy *cur)
{
	const struct vakt_policy *p = cur ? cur : old;
	struct nswalk w = { c, 0 };
	struct cpol *cp;
	size_t i;

	if (!p)
		return;
	cp = cpol_find(c, p->ns, p->name);
	if (cur) {
		if (!cp)
			cp = cpol_new(c, cur->ns, cur->name);
		if (!cp) {
			log_error("compiler: out of memory", "what=policy ns=%s name=%s", cur->ns,
				  cur->name);
			compiler_error(c);
			return;
		}
		cp->pol = cur;
		if (cpol_rules_update(c, cp)) {
			log_error("compiler: out of memory", "what=rule ids ns=%s name=%s", cur->ns,
				  cur->name);
			compiler_error(c);
		}
		for (i = 0; i < cp->epols.n; i++)
			epol_mark(c, cp->epols.v[i], EPOL_DIRTY_DEPS);
	} else if (cp) {
		cp->pol = NULL;
		cp->dead = 1;
		vakt_htab_remove(&c->cpols, cp->hash, cp);
		if (vec_push(&c->dead_cpols, cp))
			compiler_error(c); /* leaks one record; never dangles */
	}
	vakt_store_foreach_pod_in(c->s, p->ns, ns_pod_cb, &w);
}

static void namespace_event(struct vakt_compiler *c, const char *name)
{
	struct nswalk w = { c, 1 };

	vakt_store_foreach_pod_in(c->s, name, ns_pod_cb, &w);
}

/* --- flush ------------------------------------------------------------------------- */

static void flush_epols(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < c->dirty_epols.n; i++) {
		struct epol *e = c->dirty_epols.v[i];

		if (!e->users.n) {
			epol_destroy(c, e);
			c->dirty_epols.v[i] = NULL;
			continue;
		}
		if (e->dirty & EPOL_DIRTY_DEPS)
			deps_update(c, e);
	}
	classes_update(c);
	for (i = 0; i < c->dirty_epols.n; i++) {
		struct epol *e = c->dirty_epols.v[i];

		if (!e)
			continue;
		if (e->dirty)
			epol_recompute(c, e);
		e->dirty = 0;
		e->queued = 0;
	}
	c->dirty_epols.n = 0;
}

static void flush_once(struct vakt_compiler *c)
{
	size_t i;
	int retry = 1;

	c->table_deletes = 0;
	flush_epols(c);
	/* Deletions may have made room for endpoint policies that failed. */
	while (retry-- && c->table_deletes && c->failed_epols.n) {
		for (i = 0; i < c->failed_epols.n; i++)
			epol_mark(c, c->failed_epols.v[i], EPOL_DIRTY_ENTRIES);
		flush_epols(c);
	}
	for (i = 0; i < c->renumber.n; i++) {
		struct epol *e = c->renumber.v[i];

		e->renum = 0;
		epol_renumber(c, e);
	}
	c->renumber.n = 0;
	for (i = 0; i < c->dead_cpols.n; i++)
		cpol_free(c, c->dead_cpols.v[i]);
	c->dead_cpols.n = 0;
	for (i = 0; i < c->dirty_eps.n; i++) {
		struct cep *ep = c->dirty_eps.v[i];
		struct vakt_ep_val before = ep->val;
		int was_valid = ep->val_valid;

		ep->queued = 0;
		cep_compute(c, ep);
		if (was_valid && !memcmp(&before, &ep->val, sizeof(before)))
			continue;
		for (size_t a = 0; a < ep->pod->naddr; a++)
			addr_refresh_at(c, &ep->pod->addrs[a]);
	}
	c->dirty_eps.n = 0;
}

static void flush(struct vakt_compiler *c)
{
	int rounds = 4;

	/* Refreshing addresses can still make classes (signature prefixes) and so
	 * mark endpoint policies: settle before returning. */
	do
		flush_once(c);
	while (--rounds && (c->dirty_epols.n || c->dirty_eps.n));
}

/* --- store listener -------------------------------------------------------------------- */

/*
 * Called as an event arrives, before it is compiled. An empty journal means
 * the map writer has written every change, the deletions of the entries of
 * quarantined ids included: the maps no longer hold their old meaning, so
 * new content may have them (struct idalloc). Ids are handed out only while
 * compiling, so settling here rather than at the drain itself loses nothing.
 */
static void ids_settle(struct vakt_compiler *c)
{
	if (vakt_tables_journal_len(c->t))
		return;
	c->batch++;
	idalloc_settle(&c->ident_ids);
	idalloc_settle(&c->class_ids);
	idalloc_settle(&c->epol_ids);
	idalloc_settle(&c->ep_ids);
	idalloc_settle(&c->rule_ids);
}

static void on_namespace(void *arg, const struct vakt_namespace *old, const struct vakt_namespace *cur)
{
	struct vakt_compiler *c = arg;

	ids_settle(c);
	c->st.events++;
	namespace_event(c, cur ? cur->name : old->name);
	flush(c);
}

static void on_pod(void *arg, const struct vakt_pod *old, const struct vakt_pod *cur)
{
	struct vakt_compiler *c = arg;

	ids_settle(c);
	c->st.events++;
	pod_event(c, old, cur);
	flush(c);
}

static void on_policy(void *arg, const struct vakt_policy *old, const struct vakt_policy *cur)
{
	struct vakt_compiler *c = arg;

	ids_settle(c);
	c->st.events++;
	policy_event(c, old, cur);
	flush(c);
}

/* --- lifecycle ------------------------------------------------------------------------- */

static void state_init(struct vakt_compiler *c)
{
	c->ident_ids = (struct idalloc){ .first = VAKT_ID_FIRST_POD, .max = VAKT_ID_MAX };
	c->class_ids = (struct idalloc){ .first = 1, .max = ~VAKT_PEER_CLASS };
	c->rule_ids = (struct idalloc){ .first = 1, .max = UINT32_MAX - 1 };
	c->epol_ids = (struct idalloc){ .first = 1, .max = UINT32_MAX - 1 };
	/* Endpoint ids are few, and a pod without one fails closed: soft. */
	c->ep_ids = (struct idalloc){ .first = 1,
				      .max = c->node ? VAKT_MAX_ENDPOINTS - 1 : UINT32_MAX - 1,
				      .soft = 1 };
}

static void idmap_free(struct idmap *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* Frees every derived structure; the tables are left as they are. */
static void state_fini(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&c->epols); i++) {
		struct epol *e = c->epols.slots[i].item;

		if (e)
			epol_free(e);
	}
	for (i = 0; i < vakt_htab_cap(&c->cpods); i++) {
		struct cpod *cp = c->cpods.slots[i].item;

		if (!cp)
			continue;
		free(cp->ep);
		free(cp->ns);
		free(cp->name);
		free(cp);
	}
	for (i = 0; i < vakt_htab_cap(&c->addrs); i++) {
		struct caddr *r = c->addrs.slots[i].item;

		if (r) {
			vec_free(&r->owners);
			free(r);
		}
	}
	for (i = 0; i < vakt_htab_cap(&c->cpols); i++)
		if (c->cpols.slots[i].item)
			cpol_free(c, c->cpols.slots[i].item);
	for (i = 0; i < c->dead_cpols.n; i++)
		cpol_free(c, c->dead_cpols.v[i]);
	identity_fini(c);
	cidrclass_fini(c);
	vakt_htab_fini(&c->epols);
	vakt_htab_fini(&c->cpods);
	vakt_htab_fini(&c->addrs);
	vakt_htab_fini(&c->cpols);
	vec_free(&c->dead_cpols);
	vec_free(&c->dirty_epols);
	vec_free(&c->failed_epols);
	vec_free(&c->renumber);
	vec_free(&c->dirty_eps);
	idalloc_fini(&c->rule_ids);
	idalloc_fini(&c->epol_ids);
	idalloc_fini(&c->ep_ids);
	idmap_free(&c->rules);
	idmap_free(&c->epol_by_id);
	idmap_free(&c->ep_by_id);
	c->nlocal = 0;
	state_init(c);
}

struct vakt_compiler *vakt_compiler_new(struct vakt_store *s, const struct vakt_compiler_opts *o)
{
	struct vakt_compiler *c = calloc(1, sizeof(*c));
	struct vakt_store_listener l;
	unsigned int i;

	if (!c)
		goto err;
	c->s = s;
	if (o && o->node) {
		c->node = strdup(o->node);
		if (!c->node)
			goto err_free;
	}
	c->t = vakt_tables_new();
	if (!c->t)
		goto err_node;
	if (!c->node)
		for (i = 0; i < VAKT_T_COUNT; i++)
			vakt_tables_set_limit(c->t, (enum vakt_table_id)i, 0);
	state_init(c);
	l = (struct vakt_store_listener){
		.arg = c,
		.namespace_changed = on_namespace,
		.pod_changed = on_pod,
		.policy_changed = on_policy,
	};
	vakt_store_set_listener(s, &l);
	return c;

err_node:
	free(c->node);
err_free:
	free(c);
err:
	log_error("compiler: out of memory", NULL);
	return NULL;
}

void vakt_compiler_free(struct vakt_compiler *c)
{
	if (!c)
		return;
	vakt_store_set_listener(c->s, NULL);
	vakt_compiler_release_seed(c);
	state_fini(c);
	idalloc_fini(&c->ident_ids);
	idalloc_fini(&c->class_ids);
	vakt_tables_free(c->t);
	free(c->gone);
	free(c->host);
	free(c->node);
	free(c);
}

struct vakt_tables *vakt_compiler_tables(struct vakt_compiler *c)
{
	return c->t;
}

/* Deletes every entry: a rebuild then puts back what is still wanted, and the
 * journal reports only real differences. */
static int tables_clear(struct vakt_tables *t)
{
	unsigned int id;
	size_t i;

	for (id = 0; id < VAKT_T_COUNT; id++) {
		size_t ksz = vakt_table_key_size((enum vakt_table_id)id), n;
		unsigned char *keys;
		int err = vakt_tables_keys(t, (enum vakt_table_id)id, (void **)&keys, &n);

		if (err)
			return err;
		for (i = 0; i < n; i++)
			vakt_tables_del(t, (enum vakt_table_id)id, keys + i * ksz);
		free(keys);
	}
	return 0;
}

static int full_policy_cb(void *arg, const struct vakt_policy *pol)
{
	policy_event(arg, NULL, pol);
	return 0;
}

static int full_pod_cb(void *arg, const struct vakt_pod *pod)
{
	pod_event(arg, NULL, pod);
	return 0;
}

static void host_apply(struct vakt_compiler *c, const struct vakt_addr *addrs, size_t n, int on)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct caddr *r = caddr_get(c, &addrs[i], on);

		if (!r)
			continue;
		r->host = on;
		addr_refresh(c, r);
	}
}

static int full_once(struct vakt_compiler *c)
{
	int err;

	state_fini(c);
	seed_attach(c);
	err = tables_clear(c->t);
	if (err) {
		log_error("compiler: out of memory", "what=full compile");
		compiler_error(c);
		return err;
	}
	/* Policies first: pods then find their endpoint policies complete, and
	 * each new selector is matched once against all identities in flush(). */
	vakt_store_foreach_policy(c->s, full_policy_cb, c);
	vakt_store_foreach_pod(c->s, full_pod_cb, c);
	host_apply(c, c->host, c->nhost, 1);
	flush(c);
	return 0;
}

/* Rounds of a seeded full compile: see compiler_seed.c. */
#define SEED_ROUNDS 4

int vakt_compiler_full(struct vakt_compiler *c)
{
	uint64_t errors = c->st.errors;
	int err, round;

	for (round = 1;; round++) {
		err = full_once(c);
		if (err || !seed_verify(c) || round == SEED_ROUNDS)
			break;
		/* Refuted adoptions are banned; the last round adopts nothing. */
		if (round == SEED_ROUNDS - 1)
			c->seed->no_adopt = 1;
		log_info("compiler: some ids of the pinned maps mean something else now, recompiling",
			 "round=%d", round + 1);
	}
	seed_done_adopting(c);
	/* Its content is what the maps get next: later events start a batch. */
	c->batch++;
	c->st.full_compiles++;
	if (err)
		return err;
	return c->st.errors > errors ? -EIO : 0;
}

int vakt_compiler_set_host_addrs(struct vakt_compiler *c, const struct vakt_addr *addrs, size_t n)
{
	struct vakt_addr *copy = NULL;

	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy) {
			log_error("compiler: out of memory", "what=host addresses");
			return -ENOMEM;
		}
		memcpy(copy, addrs, n * sizeof(*copy));
	}
	host_apply(c, c->host, c->nhost, 0);
	free(c->host);
	c->host = copy;
	c->nhost = n;
	host_apply(c, c->host, c->nhost, 1);
	flush(c);
	return 0;
}

int vakt_compiler_rule(const struct vakt_compiler *c, uint32_t rule, struct vakt_rule_ref *out)
{
	const struct rref *rr = idmap_get(&c->rules, rule);

	if (!rr)
		return -ENOENT;
	out->ns = rr->p->ns;
	out->name = rr->p->name;
	out->dir = rr->dir;
	out->index = rr->index;
	return 0;
}

int vakt_compiler_ep_meta(const struct vakt_compiler *c, uint32_t ep_id, struct vakt_ep_meta *out)
{
	const struct cep *ep = idmap_get(&c->ep_by_id, ep_id);

	if (!ep)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	snprintf(out->ns, sizeof(out->ns), "%s", ep->pod->ns);
	snprintf(out->name, sizeof(out->name), "%s", ep->pod->name);
	return 0;
}

void vakt_compiler_stats(const struct vakt_compiler *c, struct vakt_compiler_stats *out)
{
	*out = c->st;
	out->identities = vakt_htab_count(&c->idents);
	out->endpoint_policies = vakt_htab_count(&c->epols);
	out->classes = vakt_htab_count(&c->classes);
	out->local_endpoints = c->nlocal;
}

/* --- canonical dump -------------------------------------------------------------------- */

struct lines {
	char **v;
	size_t n, cap;
	const struct vakt_compiler *c;
	int err;
};

static void lines_add(struct lines *l, char *s)
{
	if (!s) {
		l->err = -ENOMEM;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			free(s);
			l->err = -ENOMEM;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
}

static char *identity_text(const struct vakt_compiler *c, uint32_t id)
{
	const struct ident *i;
	char *s = NULL;

	if (id == VAKT_ID_HOST)
		return strdup("host");
	if (id == VAKT_ID_WORLD)
		return strdup("world");
	i = id >= VAKT_ID_FIRST_POD ? idmap_get(&c->ident_by_id, id - VAKT_ID_FIRST_POD) : NULL;
	if (!i) {
		if (asprintf(&s, "unknown-identity-%u", id) < 0)
			return NULL;
		return s;
	}
	return ident_desc(i, &s) ? NULL : s;
}

static char *epol_text(const struct vakt_compiler *c, uint32_t id)
{
	const struct epol *e = idmap_get(&c->epol_by_id, id);
	char *s = NULL;
	size_t len, i;
	FILE *f;

	if (!id)
		return strdup("none");
	if (!e) {
		if (asprintf(&s, "unknown-policy-%u", id) < 0)
			return NULL;
		return s;
	}
	f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s[", e->dir == VAKT_DIR_INGRESS ? "ingress" : "egress");
	for (i = 0; i < e->npols; i++)
		fprintf(f, "%s%s/%s", i ? "," : "", e->pols[i]->ns, e->pols[i]->name);
	fputs("] ports=[", f);
	nports_print(f, e->ports, e->nports);
	fputc(']', f);
	if (fclose(f)) {
		free(s);
		return NULL;
	}
	return s;
}

static char *peer_text(const struct vakt_compiler *c, uint32_t peer)
{
	const struct cclass *cl;
	char *s = NULL, *d = NULL;

	if (peer == VAKT_PEER_ANY)
		return strdup("any");
	if (!(peer & VAKT_PEER_CLASS))
		return identity_text(c, peer);
	cl = idmap_get(&c->class_by_id, peer & ~VAKT_PEER_CLASS);
	if (!cl || class_desc(cl, &d))
		return asprintf(&s, "unknown-class-%u", peer & ~VAKT_PEER_CLASS) < 0 ? NULL : s;
	if (asprintf(&s, "class%s", d) < 0)
		s = NULL;
	free(d);
	return s;
}

static char *rule_text(const struct vakt_compiler *c, uint32_t rule)
{
	struct vakt_rule_ref r;
	char *s = NULL;

	if (vakt_compiler_rule(c, rule, &r))
		return asprintf(&s, "unknown-rule-%u", rule) < 0 ? NULL : s;
	return asprintf(&s, "%s/%s/%s/%u", r.ns, r.name,
			r.dir == VAKT_DIR_INGRESS ? "ingress" : "egress", r.index) < 0 ?
		       NULL :
		       s;
}

static int dump_ipcache(void *arg, const void *key, const void *val)
{
	struct lines *l = arg;
	const struct vakt_ip_val *v = val;
	char buf[64], *id = identity_text(l->c, v->identity), *s = NULL;

	if (id && asprintf(&s, "ipcache %s %s", vakt_addr_str(key, buf, sizeof(buf)), id) < 0)
		s = NULL;
	free(id);
	lines_add(l, s);
	return 0;
}

static int dump_endpoint(void *arg, const void *key, const void *val)
{
	struct lines *l = arg;
	const struct vakt_ep_val *v = val;
	const struct cep *ep = idmap_get(&l->c->ep_by_id, v->ep_id);
	char buf[64], *id = identity_text(l->c, v->identity), *s = NULL;
	char *in = epol_text(l->c, v->policy[VAKT_DIR_INGRESS]);
	char *eg = epol_text(l->c, v->policy[VAKT_DIR_EGRESS]);

	if (id && in && eg &&
	    asprintf(&s, "endpoint %s pod=%s/%s identity=%s ingress=%s egress=%s flags=%#x ifindex=%u",
		     vakt_addr_str(key, buf, sizeof(buf)), ep ? ep->pod->ns : "?",
		     ep ? ep->pod->name : "?", id, in, eg, v->flags, v->ifindex) < 0)
		s = NULL;
	free(id);
	free(in);
	free(eg);
	lines_add(l, s);
	return 0;
}

static int dump_cidr(void *arg, const void *key, const void *val)
{
	struct lines *l = arg;
	const struct vakt_cidr_key *k = key;
	const struct vakt_cidr_val *v = val;
	struct vakt_cidr p = { .addr = k->addr, .plen = (uint8_t)k->prefixlen };
	char buf[64], *cl = v->class_id ? peer_text(l->c, VAKT_PEER_CLASS | v->class_id) :
					  strdup("class{}");
	char *s = NULL;

	p.v4 = k->prefixlen >= 96 && vakt_addr_is_v4(&k->addr);
	if (cl && asprintf(&s, "cidr %s %s", vakt_cidr_str(&p, buf, sizeof(buf)), cl) < 0)
		s = NULL;
	free(cl);
	lines_add(l, s);
	return 0;
}

static int dump_policy(void *arg, const void *key, const void *val)
{
	struct lines *l = arg;
	const struct vakt_policy_key *k = key;
	const struct vakt_policy_val *v = val;
	char *e = epol_text(l->c, k->policy), *p = peer_text(l->c, k->peer);
	char *r = rule_text(l->c, v->rule), *s = NULL;

	if (e && p && r &&
	    asprintf(&s, "policy %s peer=%s proto=%u plen=%u port=%u rule=%s action=%u", e, p,
		     k->proto, k->prefixlen, (unsigned int)VAKT_HTONS(k->port), r, v->action) < 0)
		s = NULL;
	free(e);
	free(p);
	free(r);
	lines_add(l, s);
	return 0;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vakt_compiler_dump_canonical(const struct vakt_compiler *c, FILE *out)
{
	struct lines l = { .c = c };
	size_t i;

	vakt_tables_foreach(c->t, VAKT_T_IPCACHE, dump_ipcache, &l);
	vakt_tables_foreach(c->t, VAKT_T_ENDPOINTS, dump_endpoint, &l);
	vakt_tables_foreach(c->t, VAKT_T_CIDR, dump_cidr, &l);
	vakt_tables_foreach(c->t, VAKT_T_POLICY, dump_policy, &l);
	if (!l.err) {
		qsort(l.v, l.n, sizeof(*l.v), str_ptr_cmp);
		for (i = 0; i < l.n; i++)
			fprintf(out, "%s\n", l.v[i]);
	}
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	if (l.err)
		log_error("compiler: out of memory", "what=canonical dump");
	return l.err;
}
