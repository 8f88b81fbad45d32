// SPDX-License-Identifier: Apache-2.0
/*
 * The object store: namespaces, pods and policies by key, with a
 * per-namespace index (the compiler asks "policies of namespace N" and
 * "pods of namespace N" on every event) and a pod-by-address index.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "log.h"
#include "store.h"

struct ns_bucket;

/*
 * What pods and policies have in common: a (namespace, name) key in the
 * store's table of their kind, and a place in their namespace's list of that
 * kind (ns and name point into obj, and follow it when obj is replaced).
 */
struct obj_ent {
	void *obj; /* struct vakt_pod or struct vakt_policy */
	const char *ns;
	const char *name;
	struct ns_bucket *b;
	size_t idx; /* position in the bucket's list of this kind */
	uint64_t hash;
};

struct ent_list {
	struct obj_ent **v;
	size_t n, cap;
};

struct pod_ent;

/* One (address, pod) pair of the address index: two pods may briefly share
 * an address (a finished pod and its successor), so the index holds both. */
struct addr_ref {
	struct pod_ent *pe;
	unsigned int i;
};

struct pod_ent {
	struct obj_ent e; /* first: the generic code handles pod entries as obj_ent */
	size_t naddr;     /* addresses in the index (0 for hostNetwork pods) */
	struct addr_ref addrs[VAKT_POD_MAX_IPS];
};

/* Everything known about one namespace name; exists while anything in it does. */
struct ns_bucket {
	char *name;
	uint64_t hash;
	struct vakt_namespace *ns;
	struct ent_list pods;
	struct ent_list pols;
};

struct vakt_store {
	struct vakt_htab buckets; /* name -> ns_bucket */
	struct vakt_htab pods;    /* (ns, name) -> pod_ent */
	struct vakt_htab pols;    /* (ns, name) -> obj_ent of a policy */
	struct vakt_htab addrs;   /* addr -> addr_ref */
	size_t nnamespaces;
	struct vakt_store_listener l;
};

struct objkey {
	const char *ns;
	const char *name;
};

static uint64_t hash_name(const char *name)
{
	return vakt_hash_str(0x6e73, name);
}

static uint64_t hash_objkey(const char *ns, const char *name)
{
	return vakt_hash_str(vakt_hash_str(0x6f626a, ns), name);
}

static uint64_t hash_addr(const struct vakt_addr *a)
{
	return vakt_hash_bytes(0x61, a->b, sizeof(a->b));
}

static int bucket_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ns_bucket *)item)->name, key);
}

static int obj_eq(const void *item, const void *key)
{
	const struct obj_ent *e = item;
	const struct objkey *k = key;

	return !strcmp(e->name, k->name) && !strcmp(e->ns, k->ns);
}

static const struct vakt_pod *ent_pod(const struct pod_ent *pe)
{
	return pe->e.obj;
}

static int addr_eq(const void *item, const void *key)
{
	const struct addr_ref *r = item;

	return !memcmp(&ent_pod(r->pe)->ips[r->i], key, sizeof(struct vakt_addr));
}

struct vakt_store *vakt_store_new(void)
{
	struct vakt_store *s = calloc(1, sizeof(*s));

	if (!s)
		log_error("store: out of memory", NULL);
	return s;
}

static void bucket_free(struct ns_bucket *b)
{
	free(b->pods.v);
	free(b->pols.v);
	free(b->name);
	free(b);
}

void vakt_store_free(struct vakt_store *s)
{
	size_t i, j;

	if (!s)
		return;
	for (i = 0; i < vakt_htab_cap(&s->buckets); i++) {
		struct ns_bucket *b = s->buckets.slots[i].item;

		if (!b)
			continue;
		for (j = 0; j < b->pods.n; j++) {
			vakt_pod_free(b->pods.v[j]->obj);
			free(b->pods.v[j]);
		}
		for (j = 0; j < b->pols.n; j++) {
			vakt_policy_free(b->pols.v[j]->obj);
			free(b->pols.v[j]);
		}
		vakt_namespace_free(b->ns);
		bucket_free(b);
	}
	vakt_htab_fini(&s->buckets);
	vakt_htab_fini(&s->pods);
	vakt_htab_fini(&s->pols);
	vakt_htab_fini(&s->addrs);
	free(s);
}

void vakt_store_set_listener(struct vakt_store *s, const struct vakt_store_listener *l)
{
	if (l)
		s->l = *l;
	else
		memset(&s->l, 0, sizeof(s->l));
}

static struct ns_bucket *bucket_find(const struct vakt_store *s, const char *name)
{
	return vakt_htab_find(&s->buckets, hash_name(name), bucket_eq, name);
}

static struct ns_bucket *bucket_get(struct vakt_store *s, const char *name)
{
	struct ns_bucket *b = bucket_find(s, name);

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->name = strdup(name);
	b->hash = hash_name(name);
	if (!b->name || vakt_htab_insert(&s->buckets, b->hash, b)) {
		free(b->name);
		free(b);
		return NULL;
	}
	return b;
}

static void bucket_put_if_empty(struct vakt_store *s, struct ns_bucket *b)
{
	if (b->ns || b->pods.n || b->pols.n)
		return;
	vakt_htab_remove(&s->buckets, b->hash, b);
	bucket_free(b);
}

/* Appends e to l, recording its position; returns 0 or -ENOMEM. */
static int list_add(struct ent_list *l, struct obj_ent *e)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4;
		struct obj_ent **v = realloc(l->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = ncap;
	}
	e->idx = l->n;
	l->v[l->n++] = e;
	return 0;
}

static void list_remove(struct ent_list *l, struct obj_ent *e)
{
	l->v[e->idx] = l->v[--l->n];
	l->v[e->idx]->idx = e->idx;
}

static void addrs_unindex(struct vakt_store *s, struct obj_ent *e)
{
	struct pod_ent *pe = (struct pod_ent *)e;
	size_t i;

	for (i = 0; i < pe->naddr; i++)
		vakt_htab_remove(&s->addrs, hash_addr(&ent_pod(pe)->ips[i]), &pe->addrs[i]);
	pe->naddr = 0;
}

static int addrs_index(struct vakt_store *s, struct obj_ent *e)
{
	struct pod_ent *pe = (struct pod_ent *)e;
	const struct vakt_pod *pod = ent_pod(pe);
	size_t i, n = pod->host_network ? 0 : pod->nips;
	int err;

	if (n > VAKT_POD_MAX_IPS)
		n = VAKT_POD_MAX_IPS;
	err = vakt_htab_reserve(&s->addrs, s->addrs.n + n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		pe->addrs[i].pe = pe;
		pe->addrs[i].i = (unsigned int)i;
		vakt_htab_insert(&s->addrs, hash_addr(&pod->ips[i]), &pe->addrs[i]);
	}
	pe->naddr = n;
	return 0;
}

static int check_key(const char *kind, const char *ns, const char *name)
{
	if (ns && *ns && name && *name)
		return 0;
	log_error("store: object without namespace or name", "kind=%s ns=%s name=%s", kind,
		  ns ? ns : "(none)", name ? name : "(none)");
	return -EINVAL;
}

int vakt_store_put_namespace(struct vakt_store *s, struct vakt_namespace *ns)
{
	struct vakt_namespace *old;
	struct ns_bucket *b;

	if (!ns)
		return -EINVAL;
	if (!ns->name || !*ns->name) {
		log_error("store: namespace without name", NULL);
		vakt_namespace_free(ns);
		return -EINVAL;
	}
	b = bucket_get(s, ns->name);
	if (!b) {
		log_error("store: out of memory", "kind=Namespace name=%s", ns->name);
		vakt_namespace_free(ns);
		return -ENOMEM;
	}
	old = b->ns;
	b->ns = ns;
	if (!old)
		s->nnamespaces++;
	if (s->l.namespace_changed)
		s->l.namespace_changed(s->l.arg, old, ns);
	vakt_namespace_free(old);
	return 0;
}

/*
 * A kind of namespaced object: where its entries live and what differs
 * between pods and policies (pods also have an address index).
 */
struct obj_kind {
	const char *name; /* for logs: "Pod", "NetworkPolicy" */
	size_t ent_size;
	size_t table_off; /* offsetof(struct vakt_store, its table) */
	size_t list_off;  /* offsetof(struct ns_bucket, its list) */
	int (*index)(struct vakt_store *s, struct obj_ent *e); /* NULL: no extra index */
	void (*unindex)(struct vakt_store *s, struct obj_ent *e);
	void (*changed)(const struct vakt_store_listener *l, const void *old, const void *cur);
	void (*free)(void *obj);
};

static struct vakt_htab *kind_table(const struct obj_kind *k, struct vakt_store *s)
{
	return (struct vakt_htab *)((char *)s + k->table_off);
}

static struct ent_list *kind_list(const struct obj_kind *k, struct ns_bucket *b)
{
	return (struct ent_list *)((char *)b + k->list_off);
}

static struct obj_ent *obj_find(const struct vakt_htab *tab, const char *ns, const char *name)
{
	struct objkey k = { ns, name };

	if (!ns || !name)
		return NULL;
	return vakt_htab_find(tab, hash_objkey(ns, name), obj_eq, &k);
}

static int obj_index(const struct obj_kind *k, struct vakt_store *s, struct obj_ent *e)
{
	return k->index ? k->index(s, e) : 0;
}

static void obj_unindex(const struct obj_kind *k, struct vakt_store *s, struct obj_ent *e)
{
	if (k->unindex)
		k->unindex(s, e);
}

/* Replaces the object of an existing entry. */
static int obj_replace(const struct obj_kind *k, struct vakt_store *s, struct obj_ent *e,
		       void *obj, const char *ns, const char *name)
{
	void *old = e->obj;
	const char *old_ns = e->ns, *old_name = e->name;

	obj_unindex(k, s, e);
	e->obj = obj;
	e->ns = ns;
	e->name = name;
	if (obj_index(k, s, e)) {
		e->obj = old;
		e->ns = old_ns;
		e->name = old_name;
		obj_index(k, s, e); /* capacity was there before */
		return -ENOMEM;
	}
	k->changed(&s->l, old, obj);
	k->free(old);
	return 0;
}

/* A new entry in the table and in its namespace's list. */
static int obj_insert(const struct obj_kind *k, struct vakt_store *s, void *obj, const char *ns,
		      const char *name, uint64_t h)
{
	struct vakt_htab *tab = kind_table(k, s);
	struct ns_bucket *b = bucket_get(s, ns);
	struct obj_ent *e;

	if (!b)
		return -ENOMEM;
	e = calloc(1, k->ent_size);
	if (!e)
		goto err_bucket;
	*e = (struct obj_ent){ .obj = obj, .ns = ns, .name = name, .b = b, .hash = h };
	if (vakt_htab_insert(tab, h, e))
		goto err_ent;
	if (obj_index(k, s, e))
		goto err_table;
	if (list_add(kind_list(k, b), e))
		goto err_index;
	k->changed(&s->l, NULL, obj);
	return 0;

err_index:
	obj_unindex(k, s, e);
err_table:
	vakt_htab_remove(tab, h, e);
err_ent:
	free(e);
err_bucket:
	bucket_put_if_empty(s, b);
	return -ENOMEM;
}

/* Takes ownership of obj (also on error, when it is freed); replaces an object with its key. */
static int obj_put(const struct obj_kind *k, struct vakt_store *s, void *obj, const char *ns,
		   const char *name)
{
	struct obj_ent *e;
	int err = check_key(k->name, ns, name);

	if (err)
		goto err_free;
	e = obj_find(kind_table(k, s), ns, name);
	err = e ? obj_replace(k, s, e, obj, ns, name)
		: obj_insert(k, s, obj, ns, name, hash_objkey(ns, name));
	if (!err)
		return 0;
	log_error("store: out of memory", "kind=%s ns=%s name=%s", k->name, ns, name);
err_free:
	k->free(obj);
	return err;
}

static int obj_del(const struct obj_kind *k, struct vakt_store *s, const char *ns,
		   const char *name)
{
	struct obj_ent *e = obj_find(kind_table(k, s), ns, name);
	struct ns_bucket *b;

	if (!e)
		return -ENOENT;
	b = e->b;
	obj_unindex(k, s, e);
	vakt_htab_remove(kind_table(k, s), e->hash, e);
	list_remove(kind_list(k, b), e);
	k->changed(&s->l, e->obj, NULL);
	k->free(e->obj);
	free(e);
	bucket_put_if_empty(s, b);
	return 0;
}

static void pod_changed(const struct vakt_store_listener *l, const void *old, const void *cur)
{
	if (l->pod_changed)
		l->pod_changed(l->arg, old, cur);
}

static void pod_free(void *obj)
{
	vakt_pod_free(obj);
}

static const struct obj_kind pod_kind = {
	.name = "Pod",
	.ent_size = sizeof(struct pod_ent),
	.table_off = offsetof(struct vakt_store, pods),
	.list_off = offsetof(struct ns_bucket, pods),
	.index = addrs_index,
	.unindex = addrs_unindex,
	.changed = pod_changed,
	.free = pod_free,
};

static void pol_changed(const struct vakt_store_listener *l, const void *old, const void *cur)
{
	if (l->policy_changed)
		l->policy_changed(l->arg, old, cur);
}

static void pol_free(void *obj)
{
	vakt_policy_free(obj);
}

static const struct obj_kind pol_kind = {
	.name = "NetworkPolicy",
	.ent_size = sizeof(struct obj_ent),
	.table_off = offsetof(struct vakt_store, pols),
	.list_off = offsetof(struct ns_bucket, pols),
	.changed = pol_changed,
	.free = pol_free,
};

int vakt_store_put_pod(struct vakt_store *s, struct vakt_pod *pod)
{
	if (!pod)
		return -EINVAL;
	return obj_put(&pod_kind, s, pod, pod->ns, pod->name);
}

int vakt_store_put_policy(struct vakt_store *s, struct vakt_policy *pol)
{
	if (!pol)
		return -EINVAL;
	return obj_put(&pol_kind, s, pol, pol->ns, pol->name);
}

int vakt_store_del_namespace(struct vakt_store *s, const char *name)
{
	struct ns_bucket *b = name ? bucket_find(s, name) : NULL;
	struct vakt_namespace *old;

	if (!b || !b->ns)
		return -ENOENT;
	old = b->ns;
	b->ns = NULL;
	s->nnamespaces--;
	if (s->l.namespace_changed)
		s->l.namespace_changed(s->l.arg, old, NULL);
	vakt_namespace_free(old);
	bucket_put_if_empty(s, b);
	return 0;
}

int vakt_store_del_pod(struct vakt_store *s, const char *ns, const char *name)
{
	return obj_del(&pod_kind, s, ns, name);
}

int vakt_store_del_policy(struct vakt_store *s, const char *ns, const char *name)
{
	return obj_del(&pol_kind, s, ns, name);
}

const struct vakt_namespace *vakt_store_namespace(const struct vakt_store *s, const char *name)
{
	struct ns_bucket *b = name ? bucket_find(s, name) : NULL;

	return b ? b->ns : NULL;
}

const struct vakt_pod *vakt_store_pod(const struct vakt_store *s, const char *ns,
				      const char *name)
{
	const struct obj_ent *e = obj_find(&s->pods, ns, name);

	return e ? e->obj : NULL;
}

const struct vakt_pod *vakt_store_pod_by_addr(const struct vakt_store *s,
					      const struct vakt_addr *a)
{
	struct addr_ref *r = vakt_htab_find(&s->addrs, hash_addr(a), addr_eq, a);

	return r ? ent_pod(r->pe) : NULL;
}

const struct vakt_policy *vakt_store_policy(const struct vakt_store *s, const char *ns,
					    const char *name)
{
	const struct obj_ent *e = obj_find(&s->pols, ns, name);

	return e ? e->obj : NULL;
}

size_t vakt_store_count_namespaces(const struct vakt_store *s)
{
	return s->nnamespaces;
}

size_t vakt_store_count_pods(const struct vakt_store *s)
{
	return vakt_htab_count(&s->pods);
}

size_t vakt_store_count_policies(const struct vakt_store *s)
{
	return vakt_htab_count(&s->pols);
}

int vakt_store_foreach_namespace(const struct vakt_store *s,
				 int (*cb)(void *arg, const struct vakt_namespace *ns), void *arg)
{
	size_t i;
	int ret;

	for (i = 0; i < vakt_htab_cap(&s->buckets); i++) {
		const struct ns_bucket *b = s->buckets.slots[i].item;

		if (b && b->ns && (ret = cb(arg, b->ns)))
			return ret;
	}
	return 0;
}

int vakt_store_foreach_pod(const struct vakt_store *s,
			   int (*cb)(void *arg, const struct vakt_pod *pod), void *arg)
{
	size_t i;
	int ret;

	for (i = 0; i < vakt_htab_cap(&s->pods); i++) {
		const struct obj_ent *e = s->pods.slots[i].item;

		if (e && (ret = cb(arg, e->obj)))
			return ret;
	}
	return 0;
}

int vakt_store_foreach_policy(const struct vakt_store *s,
			      int (*cb)(void *arg, const struct vakt_policy *pol), void *arg)
{
	size_t i;
	int ret;

	for (i = 0; i < vakt_htab_cap(&s->pols); i++) {
		const struct obj_ent *e = s->pols.slots[i].item;

		if (e && (ret = cb(arg, e->obj)))
			return ret;
	}
	return 0;
}

int vakt_store_foreach_policy_in(const struct vakt_store *s, const char *ns,
				 int (*cb)(void *arg, const struct vakt_policy *pol), void *arg)
{
	const struct ns_bucket *b = ns ? bucket_find(s, ns) : NULL;
	size_t i;
	int ret;

	for (i = 0; b && i < b->pols.n; i++)
		if ((ret = cb(arg, b->pols.v[i]->obj)))
			return ret;
	return 0;
}

int vakt_store_foreach_pod_in(const struct vakt_store *s, const char *ns,
			      int (*cb)(void *arg, const struct vakt_pod *pod), void *arg)
{
	const struct ns_bucket *b = ns ? bucket_find(s, ns) : NULL;
	size_t i;
	int ret;

	for (i = 0; b && i < b->pods.n; i++)
		if ((ret = cb(arg, b->pods.v[i]->obj)))
			return ret;
	return 0;
}

static int pod_ptr_cmp(const void *a, const void *b)
{
	const struct vakt_pod *x = *(const struct vakt_pod *const *)a;
	const struct vakt_pod *y = *(const struct vakt_pod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

int vakt_store_pods_sorted(const struct vakt_store *s, const struct vakt_pod ***out, size_t *n)
{
	size_t i, k = 0, cnt = vakt_htab_count(&s->pods);
	const struct vakt_pod **v = malloc((cnt ? cnt : 1) * sizeof(*v));

	if (!v) {
		log_error("store: out of memory", "what=pods_sorted count=%zu", cnt);
		return -ENOMEM;
	}
	for (i = 0; i < vakt_htab_cap(&s->pods); i++) {
		const struct obj_ent *e = s->pods.slots[i].item;

		if (e)
			v[k++] = e->obj;
	}
	qsort(v, k, sizeof(*v), pod_ptr_cmp);
	*out = v;
	*n = k;
	return 0;
}
