// SPDX-License-Identifier: Apache-2.0
/*
 * Identities (interned pod label sets) and the peer-selector cache.
 *
 * A selector is matched against every identity once, when either of them
 * appears; the result is kept in both (sel->idents, ident->sels), so a new
 * pod with a new label set costs one match per cached selector that can
 * select its namespace, and a policy change re-matches only its new
 * selectors. Matching itself is the engine's (vakt_peer_selects_pod), on a
 * representative pod and namespace built from the identity.
 */
#include <stdio.h>

#include "compiler_int.h"
#include "engine.h"
#include "log.h"

/* --- ids ----------------------------------------------------------------- */

long idseed_find(const struct idseed *s, uint32_t id)
{
	size_t lo = 0, hi = s ? s->n : 0;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (s->ids[m] < id)
			lo = m + 1;
		else
			hi = m;
	}
	return s && lo < s->n && s->ids[lo] == id ? (long)lo : -1;
}

void idlist_add(struct idlist *l, uint32_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->err = -ENOMEM;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
}

/* Endpoint ids are few: rather a reserved one than none (the pod would fail closed). */
static uint32_t soft_take(struct idalloc *a)
{
	struct idseed *s = a->seed;

	for (size_t i = 0; s && a->soft && i < s->n; i++) {
		if (!(s->st[i] & (IDS_TAKEN | IDS_QUAR)) && s->ids[i] >= a->first &&
		    s->ids[i] <= a->max) {
			s->st[i] |= IDS_TAKEN;
			return s->ids[i];
		}
	}
	return 0;
}

/*
 * The last resort of soft allocators: the id quarantined longest. For an
 * endpoint id that only risks a moment of shared conntrack scope and
 * counters within the batch (no policy lookup uses ep_ids); failing the pod
 * closed would last until it is deleted.
 */
static uint32_t quar_take(struct idalloc *a)
{
	uint32_t id;
	long i;

	if (!a->soft || !a->quar.n)
		return 0;
	id = a->quar.v[0];
	memmove(a->quar.v, a->quar.v + 1, --a->quar.n * sizeof(*a->quar.v));
	i = idseed_find(a->seed, id);
	if (i >= 0)
		a->seed->st[i] = (uint8_t)((a->seed->st[i] & ~IDS_QUAR) | IDS_TAKEN);
	return id;
}

uint32_t idalloc_get(struct idalloc *a)
{
	uint32_t id;

	if (a->free.n)
		return a->free.v[--a->free.n];
	if (!a->next)
		a->next = a->first;
	/* The free list never holds reserved ids; the counter may meet some above fill_max. */
	while (a->next <= a->max && a->next != 0) {
		id = a->next++;
		if (!a->seed || id <= a->seed->fill_max || idseed_find(a->seed, id) < 0)
			return id;
	}
	id = soft_take(a);
	return id ? id : quar_take(a);
}

uint32_t idalloc_get_pref(struct idalloc *a, uint32_t want)
{
	long i = want ? idseed_find(a->seed, want) : -1;

	/* Only below fill_max: after the release the counter never reaches adopted ids. */
	if (i >= 0 && !a->seed->st[i] && want >= a->first && want <= a->seed->fill_max) {
		a->seed->st[i] |= IDS_TAKEN;
		return want;
	}
	return idalloc_get(a);
}

void idalloc_put(struct idalloc *a, uint32_t id)
{
	long i;

	if (!id)
		return;
	/* A reserved id stays reserved: its content may differ from what the maps mean by it. */
	i = idseed_find(a->seed, id);
	if (i >= 0)
		a->seed->st[i] = (uint8_t)((a->seed->st[i] & ~IDS_TAKEN) | IDS_QUAR);
	idlist_add(&a->quar, id); /* on failure the id leaks: harmless, the space is large */
}

void idalloc_settle(struct idalloc *a)
{
	for (size_t k = 0; k < a->quar.n; k++) {
		uint32_t id = a->quar.v[k];
		long i = idseed_find(a->seed, id);

		if (i >= 0)
			a->seed->st[i] &= (uint8_t)~IDS_QUAR;
		else
			idlist_add(&a->free, id);
	}
	a->quar.n = 0;
}

void idalloc_fini(struct idalloc *a)
{
	free(a->free.v);
	free(a->quar.v);
	memset(&a->free, 0, sizeof(a->free));
	memset(&a->quar, 0, sizeof(a->quar));
	a->next = 0;
	a->seed = NULL;
}

/*
 * Reserved ids are never on the free list and the counter starts above the
 * highest of them (ids in between go to the free list), so that once the
 * reservations are lifted the counter cannot reach an adopted id. Ids beyond
 * IDS_FILL_MAX above first (a foreign or corrupted map) are skipped by the
 * counter while reserved and never adopted.
 */
void idalloc_seed(struct idalloc *a, struct idseed *s)
{
	uint32_t top = 0, id;
	size_t i;

	for (i = 0; i < s->n; i++) {
		s->st[i] &= (uint8_t)~(IDS_TAKEN | IDS_QUAR);
		if (s->ids[i] >= a->first && s->ids[i] <= a->max &&
		    s->ids[i] - a->first < IDS_FILL_MAX && s->ids[i] > top)
			top = s->ids[i];
	}
	a->seed = s;
	s->fill_max = top;
	if (!top)
		return;
	/* Pushed downwards: the lowest ids come off the free list first. */
	for (id = top; id >= a->first && id; id--)
		if (idseed_find(s, id) < 0)
			idlist_add(&a->free, id);
	if (!a->next || a->next <= top)
		a->next = top + 1;
}

/*
 * Reserved ids nobody took are quarantined like freed ones, so that the
 * release is safe even before the batch holding the reconcile's deletions
 * has been drained; those already quarantined are there once.
 */
void idalloc_unseed(struct idalloc *a)
{
	struct idseed *s = a->seed;
	size_t i;

	if (!s)
		return;
	a->seed = NULL;
	for (i = s->n; i-- > 0;)
		if (!(s->st[i] & (IDS_TAKEN | IDS_QUAR)) && s->ids[i] >= a->first &&
		    s->ids[i] <= s->fill_max)
			idlist_add(&a->quar, s->ids[i]);
}

int idmap_set(struct idmap *m, size_t idx, void *p)
{
	if (idx >= m->n) {
		size_t n = m->n ? m->n : 64;
		void **v;

		if (!p)
			return 0;
		while (n <= idx)
			n *= 2;
		v = realloc(m->v, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + m->n, 0, (n - m->n) * sizeof(*v));
		m->v = v;
		m->n = n;
	}
	m->v[idx] = p;
	return 0;
}

/* --- named port lists --------------------------------------------------------- */

uint64_t nports_hash(uint64_t h, const struct vakt_named_port *p, size_t n)
{
	h = vakt_hash_u64(h, n);
	for (size_t i = 0; i < n; i++) {
		h = vakt_hash_str(h, p[i].name);
		h = vakt_hash_u64(h, ((uint64_t)p[i].proto << 16) | p[i].port);
	}
	return h;
}

int nports_eq(const struct vakt_named_port *a, size_t na, const struct vakt_named_port *b,
	      size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (a[i].port != b[i].port || a[i].proto != b[i].proto || strcmp(a[i].name, b[i].name))
			return 0;
	return 1;
}

void nports_free(struct vakt_named_port *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].name);
	free(p);
}

int nports_dup(struct vakt_named_port **out, const struct vakt_named_port *p, size_t n)
{
	struct vakt_named_port *d;

	*out = NULL;
	if (!n)
		return 0;
	d = calloc(n, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		d[i] = p[i];
		d[i].name = strdup(p[i].name);
		if (!d[i].name) {
			nports_free(d, i);
			return -ENOMEM;
		}
	}
	*out = d;
	return 0;
}

void nports_print(FILE *f, const struct vakt_named_port *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s/%u/%u", i ? "," : "", p[i].name, p[i].proto, p[i].port);
}

/* --- identities ------------------------------------------------------------ */

struct identkey {
	const char *ns;
	const struct vakt_labels *labels;
	int ns_known;
	const struct vakt_labels *nsl;
	size_t nports;
	const struct vakt_named_port *ports;
};

static uint64_t hash_labels(uint64_t h, const struct vakt_labels *l)
{
	size_t i;

	h = vakt_hash_u64(h, l->n);
	for (i = 0; i < l->n; i++) {
		h = vakt_hash_str(h, l->v[i].key);
		h = vakt_hash_str(h, l->v[i].value);
	}
	return h;
}

static uint64_t identkey_hash(const struct identkey *k)
{
	uint64_t h = vakt_hash_str(0x6964, k->ns);

	h = hash_labels(h, k->labels);
	h = vakt_hash_u64(h, (uint64_t)k->ns_known);
	if (k->ns_known)
		h = hash_labels(h, k->nsl);
	return nports_hash(h, k->ports, k->nports);
}

static int ident_eq(const void *item, const void *key)
{
	const struct ident *id = item;
	const struct identkey *k = key;

	return id->ns_known == k->ns_known && !strcmp(id->rep.ns, k->ns) &&
	       !vakt_labels_cmp(&id->rep.labels, k->labels) &&
	       (!k->ns_known || !vakt_labels_cmp(&id->rep_ns.labels, k->nsl)) &&
	       nports_eq(id->rep.ports, id->rep.nports, k->ports, k->nports);
}

static int idns_eq(const void *item, const void *key)
{
	return !strcmp(((const struct idns *)item)->ns, key);
}

static struct idns *idns_find(const struct vakt_compiler *c, const char *ns)
{
	return vakt_htab_find(&c->idns, vakt_hash_str(0x6e73, ns), idns_eq, ns);
}

static struct idns *idns_get(struct vakt_compiler *c, const char *ns)
{
	struct idns *b = idns_find(c, ns);

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ns = strdup(ns);
	b->hash = vakt_hash_str(0x6e73, ns);
	if (!b->ns || vakt_htab_insert(&c->idns, b->hash, b)) {
		free(b->ns);
		free(b);
		return NULL;
	}
	return b;
}

static void idns_put_if_empty(struct vakt_compiler *c, struct idns *b)
{
	if (b->idents.n || b->sels.n)
		return;
	vakt_htab_remove(&c->idns, b->hash, b);
	vec_free(&b->idents);
	vec_free(&b->sels);
	free(b->ns);
	free(b);
}

static int sel_matches(const struct sel *s, const struct ident *id)
{
	size_t i;

	if (s->kind == SEL_PORTNAME) {
		for (i = 0; i < id->rep.nports; i++)
			if (id->rep.ports[i].proto == s->pproto && id->rep.ports[i].port &&
			    !strcmp(id->rep.ports[i].name, s->pname))
				return 1;
		return 0;
	}
	return vakt_peer_selects_pod(&s->peer, s->policy_ns, &id->rep,
				     id->ns_known ? &id->rep_ns : NULL) == 1;
}

static uint64_t ptr_hash(const void *p)
{
	return vakt_hash_u64(0x70, (uint64_t)(uintptr_t)p);
}

static void sel_mark_users(struct vakt_compiler *c, struct sel *s, const struct ident *id)
{
	size_t i;

	for (i = 0; i < s->users.n; i++)
		epol_mark_ident(c, s->users.v[i], id->id);
}

static int ptr_eq(const void *item, const void *key)
{
	return item == key;
}

int sel_has(const struct sel *s, const struct ident *id)
{
	return vakt_htab_find(&s->idents, ptr_hash(id), ptr_eq, id) != NULL;
}

static int link(struct sel *s, struct ident *id)
{
	if (vec_push(&id->sels, s))
		return -ENOMEM;
	if (vakt_htab_insert(&s->idents, ptr_hash(id), id)) {
		id->sels.n--;
		return -ENOMEM;
	}
	return 0;
}

static void ident_free(struct ident *id)
{
	vakt_labels_free(&id->rep.labels);
	vakt_labels_free(&id->rep_ns.labels);
	nports_free(id->rep.ports, id->rep.nports);
	free(id->rep.ns);
	vec_free(&id->sels);
	free(id);
}

static struct ident *ident_new(const struct identkey *k, uint64_t h)
{
	struct ident *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	id->hash = h;
	id->ns_known = k->ns_known;
	id->rep.ns = strdup(k->ns);
	id->rep_ns.name = id->rep.ns;
	if (!id->rep.ns || vakt_labels_copy(&id->rep.labels, k->labels) ||
	    (k->ns_known && vakt_labels_copy(&id->rep_ns.labels, k->nsl)) ||
	    nports_dup(&id->rep.ports, k->ports, k->nports))
		goto err;
	id->rep.nports = k->nports;
	return id;
err:
	ident_free(id);
	return NULL;
}

/* Matches a new identity against the cached selectors that can select it. */
static int ident_match_sels(struct vakt_compiler *c, struct ident *id)
{
	struct vec *lists[2] = { &id->bucket->sels, &c->global_sels };
	size_t l, i;

	for (l = 0; l < 2; l++) {
		for (i = 0; i < lists[l]->n; i++) {
			struct sel *s = lists[l]->v[i];

			if (!sel_matches(s, id))
				continue;
			if (link(s, id))
				return -ENOMEM;
			sel_mark_users(c, s, id);
		}
	}
	return 0;
}

static void ident_unlink_all(struct vakt_compiler *c, struct ident *id)
{
	size_t i;

	for (i = 0; i < id->sels.n; i++) {
		struct sel *s = id->sels.v[i];

		vakt_htab_remove(&s->idents, ptr_hash(id), id);
		sel_mark_users(c, s, id);
	}
	id->sels.n = 0;
}

struct ident *ident_get(struct vakt_compiler *c, const struct vakt_pod *pod,
			const struct vakt_namespace *ns)
{
	struct identkey k = {
		.ns = pod->ns,
		.labels = &pod->labels,
		.ns_known = ns != NULL,
		.nsl = ns ? &ns->labels : NULL,
		.nports = pod->nports,
		.ports = pod->ports,
	};
	uint64_t h = identkey_hash(&k);
	struct ident *id = vakt_htab_find(&c->idents, h, ident_eq, &k);

	if (id) {
		id->refs++;
		return id;
	}
	id = ident_new(&k, h);
	if (!id)
		goto err_nomem;
	id->id = idalloc_get_pref(&c->ident_ids, seed_want_ident(c, pod));
	if (!id->id) {
		log_error("compiler: identity space exhausted", "ns=%s pod=%s", pod->ns, pod->name);
		goto err_free;
	}
	id->bucket = idns_get(c, pod->ns);
	if (!id->bucket || vakt_htab_insert(&c->idents, h, id))
		goto err_bucket;
	id->bidx = id->bucket->idents.n;
	if (vec_push(&id->bucket->idents, id) ||
	    idmap_set(&c->ident_by_id, id->id - VAKT_ID_FIRST_POD, id))
		goto err_insert;
	id->refs = 1;
	if (ident_match_sels(c, id)) {
		/* Partially linked: it must not stay half-matched. */
		id->refs = 0;
		ident_put(c, id);
		goto err_log;
	}
	return id;

err_insert:
	if (id->bucket->idents.n > id->bidx && id->bucket->idents.v[id->bidx] == id)
		id->bucket->idents.n--;
	vakt_htab_remove(&c->idents, h, id);
err_bucket:
	if (id->bucket)
		idns_put_if_empty(c, id->bucket);
	idalloc_put(&c->ident_ids, id->id);
err_free:
	ident_free(id);
	compiler_error(c);
	return NULL;
err_nomem:
err_log:
	log_error("compiler: out of memory", "what=identity ns=%s pod=%s", pod->ns, pod->name);
	compiler_error(c);
	return NULL;
}

void ident_put(struct vakt_compiler *c, struct ident *id)
{
	struct idns *b = id->bucket;
	struct ident *last;

	if (id->refs > 1) {
		id->refs--;
		return;
	}
	ident_unlink_all(c, id);
	last = b->idents.v[b->idents.n - 1];
	b->idents.v[id->bidx] = last;
	last->bidx = id->bidx;
	b->idents.n--;
	idns_put_if_empty(c, b);
	vakt_htab_remove(&c->idents, id->hash, id);
	idmap_set(&c->ident_by_id, id->id - VAKT_ID_FIRST_POD, NULL);
	idalloc_put(&c->ident_ids, id->id);
	ident_free(id);
}

/* --- text forms ----------------------------------------------------------------- */

static void put_labels(FILE *f, const struct vakt_labels *l)
{
	size_t i;

	fputc('{', f);
	for (i = 0; i < l->n; i++)
		fprintf(f, "%s%s=%s", i ? "," : "", l->v[i].key, l->v[i].value);
	fputc('}', f);
}

static void put_selector(FILE *f, const struct vakt_selector *s)
{
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	size_t i, j;

	if (!s) {
		fputc('-', f);
		return;
	}
	put_labels(f, &s->match_labels);
	fputc('[', f);
	for (i = 0; i < s->nexprs; i++) {
		const struct vakt_sel_expr *e = &s->exprs[i];

		fprintf(f, "%s%s %s (", i ? "," : "", e->key,
			(unsigned int)e->op < 4 ? ops[e->op] : "?");
		for (j = 0; j < e->nvalues; j++)
			fprintf(f, "%s%s", j ? "," : "", e->values[j]);
		fputc(')', f);
	}
	fputc(']', f);
}

int ident_desc(const struct ident *id, char **out)
{
	size_t len;
	FILE *f = open_memstream(out, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "ns=%s labels=", id->rep.ns);
	put_labels(f, &id->rep.labels);
	fputs(" nslabels=", f);
	if (id->ns_known)
		put_labels(f, &id->rep_ns.labels);
	else
		fputs("(unknown)", f);
	fputs(" ports=[", f);
	nports_print(f, id->rep.ports, id->rep.nports);
	fputc(']', f);
	return fclose(f) ? -ENOMEM : 0;
}

/* --- selectors ------------------------------------------------------------------ */

static int sel_eq(const void *item, const void *key)
{
	return !strcmp(((const struct sel *)item)->key, key);
}

static int selector_copy(struct vakt_selector **dst, const struct vakt_selector *src)
{
	struct vakt_selector *d;
	size_t i, j;

	*dst = NULL;
	if (!src)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*dst = d;
	if (vakt_labels_copy(&d->match_labels, &src->match_labels))
		return -ENOMEM;
	if (!src->nexprs)
		return 0;
	d->exprs = calloc(src->nexprs, sizeof(*d->exprs));
	if (!d->exprs)
		return -ENOMEM;
	for (i = 0; i < src->nexprs; i++) {
		struct vakt_sel_expr *e = &d->exprs[i];

		d->nexprs = i + 1;
		e->op = src->exprs[i].op;
		e->key = strdup(src->exprs[i].key);
		if (!e->key)
			return -ENOMEM;
		if (!src->exprs[i].nvalues)
			continue;
		e->values = calloc(src->exprs[i].nvalues, sizeof(*e->values));
		if (!e->values)
			return -ENOMEM;
		for (j = 0; j < src->exprs[i].nvalues; j++) {
			e->nvalues = j + 1;
			e->values[j] = strdup(src->exprs[i].values[j]);
			if (!e->values[j])
				return -ENOMEM;
		}
	}
	return 0;
}

static void selector_free(struct vakt_selector *s)
{
	if (s) {
		vakt_selector_free(s);
		free(s);
	}
}

static void sel_free(struct sel *s)
{
	selector_free(s->peer.pod_sel);
	selector_free(s->peer.ns_sel);
	vakt_htab_fini(&s->idents);
	vec_free(&s->users);
	free(s->policy_ns);
	free(s->pname);
	free(s->key);
	free(s);
}

static char *peer_key(const struct vakt_peer *peer, const char *policy_ns)
{
	size_t len;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	/* The policy namespace only matters when no namespaceSelector is given. */
	fprintf(f, "P|%s|", peer->ns_sel ? "" : policy_ns);
	put_selector(f, peer->pod_sel);
	fputc('|', f);
	put_selector(f, peer->ns_sel);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static struct vec *sel_list(struct vakt_compiler *c, const struct sel *s, int create)
{
	struct idns *b;

	if (s->kind == SEL_PORTNAME || s->peer.ns_sel)
		return &c->global_sels;
	b = create ? idns_get(c, s->policy_ns) : idns_find(c, s->policy_ns);
	return b ? &b->sels : NULL;
}

static int sel_scan_bucket(struct sel *s, struct idns *b)
{
	size_t i;

	for (i = 0; i < b->idents.n; i++)
		if (sel_matches(s, b->idents.v[i]) && link(s, b->idents.v[i]))
			return -ENOMEM;
	return 0;
}

/* Matches a new selector against the identities it can select. */
static int sel_scan(struct vakt_compiler *c, struct sel *s)
{
	struct vakt_peer nsonly = { .ns_sel = s->peer.ns_sel };
	struct idns *b;
	size_t i;

	if (s->kind == SEL_PEER && !s->peer.ns_sel) {
		b = idns_find(c, s->policy_ns);
		return b ? sel_scan_bucket(s, b) : 0;
	}
	for (i = 0; i < vakt_htab_cap(&c->idns); i++) {
		struct ident *first;

		b = c->idns.slots[i].item;
		if (!b || !b->idents.n)
			continue;
		/* Identities of one namespace share its labels: decide the
		 * namespaceSelector once per namespace. */
		first = b->idents.v[0];
		if (s->kind == SEL_PEER &&
		    vakt_peer_selects_pod(&nsonly, s->policy_ns, &first->rep,
					  first->ns_known ? &first->rep_ns : NULL) != 1)
			continue;
		if (sel_scan_bucket(s, b))
			return -ENOMEM;
	}
	return 0;
}

static void sel_unlink_all(struct sel *s)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&s->idents); i++) {
		struct ident *id = s->idents.slots[i].item;

		if (id)
			vec_del(&id->sels, s);
	}
	vakt_htab_clear(&s->idents);
}

static struct sel *sel_install(struct vakt_compiler *c, struct sel *s, struct epol *user)
{
	struct vec *list;

	s->hash = vakt_hash_str(0x73656c, s->key);
	list = sel_list(c, s, 1);
	if (!list || vakt_htab_insert(&c->sels, s->hash, s))
		goto err_free;
	if (vec_push(list, s))
		goto err_htab;
	if (sel_scan(c, s) || vec_push(&s->users, user))
		goto err_list;
	s->refs = 1;
	return s;

err_list:
	sel_unlink_all(s);
	vec_del(list, s);
err_htab:
	vakt_htab_remove(&c->sels, s->hash, s);
err_free:
	if (s->kind == SEL_PEER && !s->peer.ns_sel) {
		struct idns *b = idns_find(c, s->policy_ns);

		if (b)
			idns_put_if_empty(c, b);
	}
	sel_free(s);
	return NULL;
}

static struct sel *sel_ref(struct sel *s, struct epol *user)
{
	if (vec_push(&s->users, user))
		return NULL;
	s->refs++;
	return s;
}

/*
 * The cached selector with this key, taken for user; or a new one holding
 * key and kind for the caller to complete and install (*fresh set). Takes
 * key (NULL: out of memory already). NULL when out of memory.
 */
static struct sel *sel_find_or_new(struct vakt_compiler *c, char *key, enum sel_kind kind,
				   struct epol *user, int *fresh)
{
	struct sel *s;

	*fresh = 0;
	if (!key)
		return NULL;
	s = vakt_htab_find(&c->sels, vakt_hash_str(0x73656c, key), sel_eq, key);
	if (s) {
		free(key);
		return sel_ref(s, user) ? s : NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(key);
		return NULL;
	}
	s->key = key;
	s->kind = kind;
	*fresh = 1;
	return s;
}

/* A new selector whose fields were filled (ok) or not (out of memory). */
static struct sel *sel_finish(struct vakt_compiler *c, struct sel *s, int ok, struct epol *user)
{
	if (!ok) {
		sel_free(s);
		return NULL;
	}
	return sel_install(c, s, user);
}

struct sel *sel_get_peer(struct vakt_compiler *c, const struct vakt_peer *peer,
			 const char *policy_ns, struct epol *user)
{
	int fresh;
	struct sel *s = sel_find_or_new(c, peer_key(peer, policy_ns), SEL_PEER, user, &fresh);

	if (s && fresh) {
		s->policy_ns = strdup(policy_ns);
		s = sel_finish(c, s,
			       s->policy_ns && !selector_copy(&s->peer.pod_sel, peer->pod_sel) &&
				       !selector_copy(&s->peer.ns_sel, peer->ns_sel),
			       user);
	}
	if (!s)
		log_error("compiler: out of memory", "what=selector ns=%s", policy_ns);
	return s;
}

struct sel *sel_get_portname(struct vakt_compiler *c, const char *name, uint8_t proto,
			     struct epol *user)
{
	char *key = NULL;
	int fresh;
	struct sel *s;

	if (asprintf(&key, "N|%u|%s", proto, name) < 0)
		key = NULL;
	s = sel_find_or_new(c, key, SEL_PORTNAME, user, &fresh);
	if (s && fresh) {
		s->pproto = proto;
		s->pname = strdup(name);
		s = sel_finish(c, s, s->pname != NULL, user);
	}
	if (!s)
		log_error("compiler: out of memory", "what=named port selector name=%s", name);
	return s;
}

void sel_put(struct vakt_compiler *c, struct sel *s, struct epol *user)
{
	struct vec *list;

	vec_del(&s->users, user);
	if (--s->refs)
		return;
	sel_unlink_all(s);
	list = sel_list(c, s, 0);
	if (list)
		vec_del(list, s);
	vakt_htab_remove(&c->sels, s->hash, s);
	if (s->kind == SEL_PEER && !s->peer.ns_sel) {
		struct idns *b = idns_find(c, s->policy_ns);

		if (b)
			idns_put_if_empty(c, b);
	}
	sel_free(s);
}

void identity_fini(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&c->sels); i++)
		if (c->sels.slots[i].item)
			sel_free(c->sels.slots[i].item);
	for (i = 0; i < vakt_htab_cap(&c->idents); i++)
		if (c->idents.slots[i].item)
			ident_free(c->idents.slots[i].item);
	for (i = 0; i < vakt_htab_cap(&c->idns); i++) {
		struct idns *b = c->idns.slots[i].item;

		if (b) {
			vec_free(&b->idents);
			vec_free(&b->sels);
			free(b->ns);
			free(b);
		}
	}
	vakt_htab_fini(&c->sels);
	vakt_htab_fini(&c->idents);
	vakt_htab_fini(&c->idns);
	vec_free(&c->global_sels);
	idalloc_fini(&c->ident_ids);
	free(c->ident_by_id.v);
	c->ident_by_id.v = NULL;
	c->ident_by_id.n = 0;
}
