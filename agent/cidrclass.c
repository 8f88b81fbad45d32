// SPDX-License-Identifier: Apache-2.0
/*
 * ipBlocks of local endpoint policies and the CIDR classes of the cidr
 * table.
 *
 * The prefixes are every cidr and except of those blocks, plus ::/0. The
 * class of prefix P is the set of blocks B with P inside B.cidr and P inside
 * no except of B. For an address a whose longest matching prefix is P, every
 * cidr or except containing a is itself a prefix containing a, hence no
 * longer than P and containing P: so B contains a exactly when B is in P's
 * class, and one LPM lookup answers for all blocks at once.
 *
 * IPv6 blocks get ::ffff:0:0/96 as an implicit except (the engine never
 * lets an IPv6 block contain an IPv4 address); IPv4 blocks are stored
 * IPv4-mapped and cannot contain IPv6 addresses.
 *
 * Classes are recomputed as a whole when the set of blocks changes (policy
 * changes only, never pod events); class ids are kept by content, and only
 * prefixes whose class changed reach the table.
 *
 * Egress rules that combine an ipBlock with a named port match a destination
 * pod inside the block on the port that pod gives the name; one policy key
 * cannot say "this class and this identity". So the address of every pod
 * that lies in such a block ("named block") and has one of the names such
 * rules use gets its own /128 prefix, whose class carries, besides the
 * blocks, the pod's ports of those names (its signature, struct csig). The
 * entries of a named port are then emitted for the classes of the block
 * whose signature resolves the name. A pod event touches only its own
 * addresses' prefixes (addr_sig_update); a new or vanished class marks only
 * the entries of that class in the endpoint policies using its blocks.
 */
#include <stdio.h>

#include "compiler_int.h"
#include "log.h"

static const struct vakt_cidr v4_space = {
	.addr = { .b = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff } },
	.plen = 96,
};

static int pfx_contains(const struct vakt_cidr *outer, const struct vakt_cidr *inner)
{
	unsigned int full = outer->plen / 8, rem = outer->plen & 7;

	if (outer->plen > inner->plen)
		return 0;
	if (memcmp(outer->addr.b, inner->addr.b, full))
		return 0;
	if (!rem)
		return 1;
	return !((outer->addr.b[full] ^ inner->addr.b[full]) & (0xff00 >> rem));
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct vakt_cidr *x = a, *y = b;
	int c = memcmp(x->addr.b, y->addr.b, sizeof(x->addr.b));

	return c ? c : (int)x->plen - (int)y->plen;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *block_text(const struct vakt_ipblock *b)
{
	char buf[64], **ex = NULL, *out = NULL;
	size_t i, len;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	fputs(vakt_cidr_str(&b->cidr, buf, sizeof(buf)), f);
	if (b->nexcept) {
		ex = calloc(b->nexcept, sizeof(*ex));
		for (i = 0; ex && i < b->nexcept; i++)
			ex[i] = strdup(vakt_cidr_str(&b->except[i], buf, sizeof(buf)));
		for (i = 0; ex && i < b->nexcept; i++)
			if (!ex[i])
				goto fail;
		if (!ex)
			goto fail;
		qsort(ex, b->nexcept, sizeof(*ex), str_cmp);
		fputs(" except ", f);
		for (i = 0; i < b->nexcept; i++)
			fprintf(f, "%s%s", i ? "," : "", ex[i]);
	}
	for (i = 0; ex && i < b->nexcept; i++)
		free(ex[i]);
	free(ex);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
fail:
	for (i = 0; ex && i < b->nexcept; i++)
		free(ex[i]);
	free(ex);
	fclose(f);
	free(out);
	return NULL;
}

static int block_eq(const void *item, const void *key)
{
	return !strcmp(((const struct cblock *)item)->text, key);
}

static void block_free(struct cblock *b)
{
	free(b->b.except);
	vec_free(&b->classes);
	vec_free(&b->users);
	free(b->text);
	free(b);
}

struct cblock *block_get(struct vakt_compiler *c, const struct vakt_ipblock *ib, struct epol *user)
{
	char *text = block_text(ib);
	struct cblock *b;
	uint64_t h;

	if (!text)
		goto err;
	h = vakt_hash_str(0x626c6b, text);
	b = vakt_htab_find(&c->blocks, h, block_eq, text);
	if (b) {
		free(text);
		if (vec_push(&b->users, user))
			goto err;
		if (!b->refs++)
			c->blocks_dirty = 1;
		return b;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		free(text);
		goto err;
	}
	b->text = text;
	b->hash = h;
	b->b.cidr = ib->cidr;
	if (ib->nexcept) {
		b->b.except = calloc(ib->nexcept, sizeof(*b->b.except));
		if (!b->b.except) {
			block_free(b);
			goto err;
		}
		memcpy(b->b.except, ib->except, ib->nexcept * sizeof(*b->b.except));
		b->b.nexcept = ib->nexcept;
	}
	if (vec_push(&b->users, user) || vakt_htab_insert(&c->blocks, h, b)) {
		block_free(b);
		goto err;
	}
	b->refs = 1;
	c->blocks_dirty = 1;
	return b;
err:
	log_error("compiler: out of memory", "what=ipBlock");
	return NULL;
}

/* Freed by the next classes_update(), once no class refers to it. */
void block_put(struct vakt_compiler *c, struct cblock *b, struct epol *user)
{
	vec_del(&b->users, user);
	if (!--b->refs)
		c->blocks_dirty = 1;
}

/* Whether a block is a named block changes which addresses need a prefix. */
void block_named_ref(struct vakt_compiler *c, struct cblock *b, int delta)
{
	uint32_t before = b->named_refs;

	b->named_refs = (uint32_t)((int64_t)b->named_refs + delta);
	if (!before != !b->named_refs)
		c->sig_dirty = 1;
}

/* --- names used by named blocks ------------------------------------------------ */

static int pname_eq(const void *item, const void *key)
{
	return !strcmp(((const struct pname *)item)->name, key);
}

static struct pname *pname_find(const struct vakt_compiler *c, const char *name)
{
	return vakt_htab_find(&c->pnames, vakt_hash_str(0x706e, name), pname_eq, name);
}

struct pname *pname_get(struct vakt_compiler *c, const char *name)
{
	struct pname *n = pname_find(c, name);

	if (n) {
		n->refs++;
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto err;
	n->name = strdup(name);
	n->hash = vakt_hash_str(0x706e, name);
	if (!n->name || vakt_htab_insert(&c->pnames, n->hash, n)) {
		free(n->name);
		free(n);
		goto err;
	}
	n->refs = 1;
	c->sig_dirty = 1;
	return n;
err:
	log_error("compiler: out of memory", "what=named port name=%s", name);
	return NULL;
}

void pname_put(struct vakt_compiler *c, struct pname *n)
{
	if (--n->refs)
		return;
	vakt_htab_remove(&c->pnames, n->hash, n);
	free(n->name);
	free(n);
	c->sig_dirty = 1;
}

/* --- signatures: the relevant named ports of the pod at an address ------------------- */

static void sig_free(struct csig *g)
{
	nports_free(g->ports, g->nports);
	free(g->text);
	free(g);
}

static int sig_eq(const void *item, const void *key)
{
	return !strcmp(((const struct csig *)item)->text, key);
}

static int nport_cmp(const void *a, const void *b)
{
	const struct vakt_named_port *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* Interns the signature of ports (sorted in place); takes a reference. */
static struct csig *sig_get(struct vakt_compiler *c, struct vakt_named_port *ports, size_t n)
{
	char *text = NULL;
	size_t len;
	struct csig *g;
	uint64_t h;
	FILE *f;

	qsort(ports, n, sizeof(*ports), nport_cmp);
	f = open_memstream(&text, &len);
	if (!f)
		goto err;
	nports_print(f, ports, n);
	if (fclose(f))
		goto err;
	h = vakt_hash_str(0x736967, text);
	g = vakt_htab_find(&c->sigs, h, sig_eq, text);
	if (g) {
		free(text);
		g->refs++;
		return g;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		goto err;
	g->text = text;
	g->hash = h;
	if (nports_dup(&g->ports, ports, n))
		goto err_sig;
	g->nports = n;
	if (vakt_htab_insert(&c->sigs, h, g))
		goto err_sig;
	g->refs = 1;
	return g;
err_sig:
	sig_free(g);
	return NULL;
err:
	free(text);
	return NULL;
}

static void sig_put(struct vakt_compiler *c, struct csig *g)
{
	if (!g || --g->refs)
		return;
	vakt_htab_remove(&c->sigs, g->hash, g);
	sig_free(g);
}

/* Block b contains every address of prefix p. */
static int block_covers(const struct cblock *b, const struct vakt_cidr *p)
{
	size_t i;

	if (!pfx_contains(&b->b.cidr, p))
		return 0;
	for (i = 0; i < b->b.nexcept; i++)
		if (pfx_contains(&b->b.except[i], p))
			return 0;
	return b->b.cidr.v4 || !pfx_contains(&v4_space, p);
}

struct ckey {
	size_t nb;
	struct cblock *const *b;
	struct csig *sig;
};

static uint64_t ckey_hash(const struct ckey *k)
{
	uint64_t h = vakt_hash_u64(0x636c73, k->nb);
	size_t i;

	for (i = 0; i < k->nb; i++)
		h = vakt_hash_u64(h, (uint64_t)(uintptr_t)k->b[i]);
	return vakt_hash_u64(h, (uint64_t)(uintptr_t)k->sig);
}

static int class_eq(const void *item, const void *key)
{
	const struct cclass *cl = item;
	const struct ckey *k = key;

	return cl->nb == k->nb && cl->sig == k->sig &&
	       !memcmp(cl->b, k->b, k->nb * sizeof(*k->b));
}

/* Entries of a class appear or go outside a class pass: only the endpoint
 * policies using its blocks, and only that class's entries, are recomputed. */
static void class_mark_users(struct vakt_compiler *c, const struct cclass *cl)
{
	for (size_t i = 0; i < cl->nb; i++)
		for (size_t j = 0; j < cl->b[i]->users.n; j++)
			epol_mark_ident(c, cl->b[i]->users.v[j], VAKT_PEER_CLASS | cl->id);
}

static void class_link(struct vakt_compiler *c, struct cclass *cl)
{
	for (size_t i = 0; i < cl->nb; i++)
		if (vec_push(&cl->b[i]->classes, cl))
			compiler_error(c);
	class_mark_users(c, cl);
}

static struct cclass *class_find_or_new(struct vakt_compiler *c, const struct ckey *k,
					 const struct vakt_cidr *p)
{
	uint64_t h;
	struct cclass *cl;

	if (!k->nb && !k->sig)
		return &c->class0;
	h = ckey_hash(k);
	cl = vakt_htab_find(&c->classes, h, class_eq, k);
	if (cl)
		return cl;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return NULL;
	cl->b = malloc(k->nb * sizeof(*cl->b));
	cl->id = idalloc_get_pref(&c->class_ids, seed_want_class(c, p));
	if (!cl->b || !cl->id || vakt_htab_insert(&c->classes, h, cl)) {
		idalloc_put(&c->class_ids, cl->id);
		free(cl->b);
		free(cl);
		return NULL;
	}
	memcpy(cl->b, k->b, k->nb * sizeof(*cl->b));
	cl->nb = k->nb;
	cl->hash = h;
	cl->sig = k->sig;
	if (cl->sig)
		cl->sig->refs++;
	idmap_set(&c->class_by_id, cl->id, cl);
	/* In a class pass, blocks_relink() links and every user is recomputed. */
	if (!c->in_class_pass)
		class_link(c, cl);
	return cl;
}

static void class_unref(struct vakt_compiler *c, struct cclass *cl)
{
	if (--cl->refs || cl == &c->class0)
		return;
	if (!c->in_class_pass) {
		for (size_t i = 0; i < cl->nb; i++)
			vec_del(&cl->b[i]->classes, cl);
		class_mark_users(c, cl);
	}
	vakt_htab_remove(&c->classes, cl->hash, cl);
	idmap_set(&c->class_by_id, cl->id, NULL);
	idalloc_put(&c->class_ids, cl->id);
	sig_put(c, cl->sig);
	free(cl->b);
	free(cl);
}

static uint64_t pfx_hash(const struct vakt_cidr *p)
{
	return vakt_hash_u64(vakt_hash_bytes(0x706678, p->addr.b, 16), p->plen);
}

static int pfx_eq(const void *item, const void *key)
{
	const struct cpfx *r = item;
	const struct vakt_cidr *p = key;

	return r->c.plen == p->plen && !memcmp(r->c.addr.b, p->addr.b, 16);
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

static int pfx_write(struct vakt_compiler *c, struct cpfx *r)
{
	struct vakt_cidr_key k = { .prefixlen = r->c.plen, .addr = r->c.addr };
	struct vakt_cidr_val v = { .class_id = r->cls->id };
	char buf[64];
	int err = vakt_tables_put(c->t, VAKT_T_CIDR, &k, &v);

	r->written = !err;
	if (err) {
		log_error("compiler: cannot write cidr entry", "prefix=%s err=%d",
			  vakt_cidr_str(&r->c, buf, sizeof(buf)), err);
		compiler_error(c);
	}
	return err;
}

/* The prefix set of the live blocks, sorted and unique. */
static int collect_prefixes(struct cblock **live, size_t nlive, struct vakt_cidr **out, size_t *n)
{
	size_t i, j, k = 0, cap = 2;
	struct vakt_cidr *p;
	int any_v6 = 0;

	for (i = 0; i < nlive; i++)
		cap += 1 + live[i]->b.nexcept;
	p = calloc(cap, sizeof(*p));
	if (!p)
		return -ENOMEM;
	/* Without blocks no lookup happens: the table is empty, as after a
	 * full compile of a cluster without ipBlocks. */
	if (nlive)
		p[k++] = (struct vakt_cidr){ .plen = 0 };
	for (i = 0; i < nlive; i++) {
		p[k++] = live[i]->b.cidr;
		for (j = 0; j < live[i]->b.nexcept; j++)
			p[k++] = live[i]->b.except[j];
		any_v6 |= !live[i]->b.cidr.v4;
	}
	if (any_v6)
		p[k++] = v4_space;
	for (i = 0; i < k; i++)
		p[i].v4 = 0; /* the table key has no family flag */
	qsort(p, k, sizeof(*p), cidr_cmp);
	for (i = j = 0; i < k; i++)
		if (!j || cidr_cmp(&p[j - 1], &p[i]))
			p[j++] = p[i];
	*out = p;
	*n = j;
	return 0;
}

/* The class of prefix p: the live blocks covering it, plus sig for a pod's /128. */
static struct cclass *class_of(struct vakt_compiler *c, const struct vakt_cidr *p,
			       struct csig *sig, struct cblock **live, size_t nlive,
			       struct cblock **tmp)
{
	struct ckey k = { 0, tmp, sig };
	size_t i;

	for (i = 0; i < nlive; i++)
		if (block_covers(live[i], p))
			tmp[k.nb++] = live[i];
	qsort(tmp, k.nb, sizeof(*tmp), ptr_cmp);
	return class_find_or_new(c, &k, p);
}

/* Records p with class cl (creating the prefix), writing it if it changed. */
static int pfx_assign(struct vakt_compiler *c, const struct vakt_cidr *p, struct cclass *cl,
		      struct cpfx **out)
{
	struct cpfx *r = vakt_htab_find(&c->pfx, pfx_hash(p), pfx_eq, p);

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || vakt_htab_insert(&c->pfx, pfx_hash(p), r)) {
			free(r);
			if (!cl->refs)
				class_unref(c, (cl->refs++, cl));
			return -ENOMEM;
		}
		r->c = *p;
		r->hash = pfx_hash(p);
	}
	if (r->mark != c->pfx_mark) {
		r->mark = c->pfx_mark;
		r->is_block = r->is_addr = 0;
	}
	if (r->cls != cl) {
		cl->refs++;
		if (r->cls)
			class_unref(c, r->cls);
		r->cls = cl;
		r->written = 0;
	}
	if (!r->written)
		pfx_write(c, r);
	*out = r;
	return 0;
}

static struct csig *pfx_sig(const struct vakt_compiler *c, const struct vakt_cidr *p)
{
	const struct caddr *r = p->plen == 128 ? caddr_find(c, &p->addr) : NULL;

	return r ? r->sig : NULL;
}

static int assign_prefix(struct vakt_compiler *c, const struct vakt_cidr *p, struct cblock **live,
			 size_t nlive, struct cblock **tmp, int is_block)
{
	struct csig *sig = pfx_sig(c, p);
	struct cclass *cl = class_of(c, p, sig, live, nlive, tmp);
	struct cpfx *r;
	int err;

	if (!cl)
		return -ENOMEM;
	err = pfx_assign(c, p, cl, &r);
	if (err)
		return err;
	r->is_block |= (uint8_t)is_block;
	r->is_addr |= sig != NULL;
	return 0;
}

static void pfx_remove(struct vakt_compiler *c, struct cpfx *r)
{
	struct vakt_cidr_key k = { .prefixlen = r->c.plen, .addr = r->c.addr };

	vakt_tables_del(c->t, VAKT_T_CIDR, &k);
	vakt_htab_remove(&c->pfx, r->hash, r);
	class_unref(c, r->cls);
	free(r);
}

/* --- the signature of an address ---------------------------------------------------- */

static void addr_cidr(const struct caddr *r, struct vakt_cidr *p)
{
	memset(p, 0, sizeof(*p));
	p->addr = r->a;
	p->plen = 128;
}

/*
 * The signature r's /128 prefix must carry (a reference), or NULL: none when
 * the address is no pod's (a hostNetwork pod or a node address has no named
 * ports for a policy), lies in no named block, or its pod has none of the
 * names. *err is set on allocation failure.
 */
static struct csig *addr_want_sig(struct vakt_compiler *c, const struct caddr *r, int *err)
{
	struct vakt_named_port *tmp;
	const struct vakt_pod *pod;
	struct vakt_cidr p;
	struct csig *g = NULL;
	size_t i, n = 0;
	int in = 0;

	if (r->host || !r->ipo || !c->named_blocks.n || !c->pnames.n)
		return NULL;
	pod = r->ipo->pod;
	if (!pod->nports)
		return NULL;
	addr_cidr(r, &p);
	for (i = 0; !in && i < c->named_blocks.n; i++)
		in = block_covers(c->named_blocks.v[i], &p);
	if (!in)
		return NULL;
	tmp = malloc(pod->nports * sizeof(*tmp));
	if (!tmp) {
		*err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < pod->nports; i++)
		if (pname_find(c, pod->ports[i].name))
			tmp[n++] = pod->ports[i];
	if (n) {
		g = sig_get(c, tmp, n);
		if (!g)
			*err = -ENOMEM;
	}
	free(tmp);
	return g;
}

static void addr_sig_set(struct vakt_compiler *c, struct caddr *r, struct csig *g)
{
	struct csig *old = r->sig;

	c->nsig_addrs += (g != NULL) - (old != NULL);
	r->sig = g;
	sig_put(c, old);
}

static struct cblock **live_blocks(struct vakt_compiler *c, size_t *n)
{
	struct cblock **live = calloc(vakt_htab_count(&c->blocks) + 1, sizeof(*live));
	size_t i;

	*n = 0;
	for (i = 0; live && i < vakt_htab_cap(&c->blocks); i++) {
		struct cblock *b = c->blocks.slots[i].item;

		if (b && b->refs)
			live[(*n)++] = b;
	}
	return live;
}

/* Outside a class pass: the /128 prefix of r follows r->sig. */
static void addr_pfx_update(struct vakt_compiler *c, struct caddr *r)
{
	struct cblock **live, **tmp;
	struct vakt_cidr p;
	struct cclass *cl;
	struct cpfx *x;
	size_t nlive;
	int err = -ENOMEM;

	addr_cidr(r, &p);
	x = vakt_htab_find(&c->pfx, pfx_hash(&p), pfx_eq, &p);
	if (!r->sig && (!x || !x->is_addr))
		return;
	if (!r->sig && !x->is_block) {
		pfx_remove(c, x);
		return;
	}
	live = live_blocks(c, &nlive);
	tmp = calloc(nlive + 1, sizeof(*tmp));
	if (live && tmp) {
		cl = class_of(c, &p, r->sig, live, nlive, tmp);
		err = cl ? pfx_assign(c, &p, cl, &x) : -ENOMEM;
		if (!err)
			x->is_addr = r->sig != NULL;
	}
	free(tmp);
	free(live);
	if (err) {
		log_error("compiler: out of memory", "what=cidr prefix of a pod address");
		compiler_error(c);
		c->sig_dirty = 1; /* the next flush redoes the classes */
	} else if (!x->written && !c->cidr_failed) {
		c->cidr_failed = 1;
		eps_mark_all(c);
	}
}

void addr_sig_update(struct vakt_compiler *c, struct caddr *r)
{
	struct csig *g;
	int err = 0;

	/* A class pass is due: it recomputes every address. */
	if (c->blocks_dirty || c->sig_dirty)
		return;
	g = addr_want_sig(c, r, &err);
	if (err) {
		log_error("compiler: out of memory", "what=named port signature");
		compiler_error(c);
		c->sig_dirty = 1;
		return;
	}
	if (g == r->sig) {
		sig_put(c, g);
		return;
	}
	addr_sig_set(c, r, g);
	addr_pfx_update(c, r);
}

void addr_sig_clear(struct vakt_compiler *c, struct caddr *r)
{
	if (!r->sig)
		return;
	addr_sig_set(c, r, NULL);
	if (!c->blocks_dirty && !c->sig_dirty)
		addr_pfx_update(c, r);
}

static void drop_stale_prefixes(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&c->pfx);) {
		struct cpfx *r = c->pfx.slots[i].item;

		if (!r || r->mark == c->pfx_mark) {
			i++;
			continue;
		}
		pfx_remove(c, r);
		/* Backward-shift deletion may have moved another record into slot i. */
	}
}

static void blocks_relink(struct vakt_compiler *c)
{
	size_t i, j;

	for (i = 0; i < vakt_htab_cap(&c->blocks); i++) {
		struct cblock *b = c->blocks.slots[i].item;

		if (b)
			b->classes.n = 0;
	}
	for (i = 0; i < vakt_htab_cap(&c->classes); i++) {
		struct cclass *cl = c->classes.slots[i].item;

		for (j = 0; cl && j < cl->nb; j++)
			if (vec_push(&cl->b[j]->classes, cl))
				compiler_error(c);
	}
}

static void free_dead_blocks(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&c->blocks);) {
		struct cblock *b = c->blocks.slots[i].item;

		if (!b || b->refs) {
			i++;
			continue;
		}
		vakt_htab_remove(&c->blocks, b->hash, b);
		block_free(b);
	}
}

/* Every address's signature, as of the current named blocks and names. */
static int sigs_recompute(struct vakt_compiler *c, struct cblock **live, size_t nlive)
{
	size_t i;
	int err = 0;

	c->named_blocks.n = 0;
	for (i = 0; i < nlive; i++)
		if (live[i]->named_refs && vec_push(&c->named_blocks, live[i]))
			return -ENOMEM;
	if (!c->nsig_addrs && (!c->named_blocks.n || !c->pnames.n))
		return 0;
	for (i = 0; i < vakt_htab_cap(&c->addrs); i++) {
		struct caddr *r = c->addrs.slots[i].item;
		struct csig *g;

		if (!r)
			continue;
		g = addr_want_sig(c, r, &err);
		if (err)
			return err;
		addr_sig_set(c, r, g);
	}
	return 0;
}

static int assign_addr_prefixes(struct vakt_compiler *c, struct cblock **live, size_t nlive,
				 struct cblock **tmp)
{
	struct vakt_cidr p;
	size_t i;
	int err;

	if (!c->nsig_addrs)
		return 0;
	for (i = 0; i < vakt_htab_cap(&c->addrs); i++) {
		const struct caddr *r = c->addrs.slots[i].item;

		if (!r || !r->sig)
			continue;
		addr_cidr(r, &p);
		err = assign_prefix(c, &p, live, nlive, tmp, 0);
		if (err)
			return err;
	}
	return 0;
}

int classes_update(struct vakt_compiler *c)
{
	struct cblock **live = NULL, **tmp = NULL;
	struct vakt_cidr *p = NULL;
	size_t i, nlive = 0, np = 0;
	int err = -ENOMEM, failed = 0;

	if (!c->blocks_dirty && !c->sig_dirty)
		return 0;
	c->in_class_pass = 1;
	live = live_blocks(c, &nlive);
	tmp = calloc(vakt_htab_count(&c->blocks) + 1, sizeof(*tmp));
	if (!live || !tmp)
		goto out;
	err = collect_prefixes(live, nlive, &p, &np);
	if (!err)
		err = sigs_recompute(c, live, nlive);
	if (err)
		goto out;
	c->pfx_mark++;
	for (i = 0; i < np; i++) {
		err = assign_prefix(c, &p[i], live, nlive, tmp, 1);
		if (err)
			goto out;
	}
	err = assign_addr_prefixes(c, live, nlive, tmp);
	if (err)
		goto out;
	drop_stale_prefixes(c);
	blocks_relink(c);
	free_dead_blocks(c);
	for (i = 0; i < vakt_htab_cap(&c->pfx); i++) {
		const struct cpfx *r = c->pfx.slots[i].item;

		failed |= r && !r->written;
	}
	if (failed != c->cidr_failed) {
		c->cidr_failed = failed;
		eps_mark_all(c);
	}
	for (i = 0; i < vakt_htab_cap(&c->epols); i++) {
		struct epol *e = c->epols.slots[i].item;

		if (e && e->dblocks.n)
			epol_mark(c, e, EPOL_DIRTY_ENTRIES);
	}
	c->blocks_dirty = 0;
	c->sig_dirty = 0;
	err = 0;
out:
	c->in_class_pass = 0;
	if (err) {
		log_error("compiler: out of memory", "what=cidr classes");
		compiler_error(c);
	}
	free(p);
	free(tmp);
	free(live);
	return err;
}

int class_desc(const struct cclass *cl, char **out)
{
	char **t = NULL;
	size_t i, len;
	FILE *f;

	if (cl->nb) {
		t = malloc(cl->nb * sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (i = 0; i < cl->nb; i++)
			t[i] = cl->b[i]->text;
		qsort(t, cl->nb, sizeof(*t), str_cmp);
	}
	f = open_memstream(out, &len);
	if (!f) {
		free(t);
		return -ENOMEM;
	}
	fputc('{', f);
	for (i = 0; i < cl->nb; i++)
		fprintf(f, "%s%s", i ? "; " : "", t[i]);
	if (cl->sig)
		fprintf(f, " | ports=%s", cl->sig->text);
	fputc('}', f);
	free(t);
	return fclose(f) ? -ENOMEM : 0;
}

void cidrclass_fini(struct vakt_compiler *c)
{
	size_t i;

	for (i = 0; i < vakt_htab_cap(&c->pfx); i++)
		free(c->pfx.slots[i].item);
	for (i = 0; i < vakt_htab_cap(&c->classes); i++) {
		struct cclass *cl = c->classes.slots[i].item;

		if (cl) {
			free(cl->b);
			free(cl);
		}
	}
	for (i = 0; i < vakt_htab_cap(&c->blocks); i++)
		if (c->blocks.slots[i].item)
			block_free(c->blocks.slots[i].item);
	for (i = 0; i < vakt_htab_cap(&c->sigs); i++)
		if (c->sigs.slots[i].item)
			sig_free(c->sigs.slots[i].item);
	for (i = 0; i < vakt_htab_cap(&c->pnames); i++) {
		struct pname *n = c->pnames.slots[i].item;

		if (n) {
			free(n->name);
			free(n);
		}
	}
	vakt_htab_fini(&c->sigs);
	vakt_htab_fini(&c->pnames);
	vec_free(&c->named_blocks);
	c->nsig_addrs = 0;
	c->sig_dirty = 0;
	c->in_class_pass = 0;
	vakt_htab_fini(&c->pfx);
	vakt_htab_fini(&c->classes);
	vakt_htab_fini(&c->blocks);
	idalloc_fini(&c->class_ids);
	free(c->class_by_id.v);
	c->class_by_id.v = NULL;
	c->class_by_id.n = 0;
	c->class0.refs = 0;
	c->blocks_dirty = 0;
	c->cidr_failed = 0;
}
