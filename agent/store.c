// SPDX-License-Identifier: Apache-2.0
/*
 * The object store: namespaces, pods and policies by key, with a
 * per-namespace index (the compiler asks "policies of namespace N" and
 * "pods of namespace N" on every event) and a pod-by-address index.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "log.h"
#include "store.h"

struct ns_bucket;

struct pod_ent;

/* One (address, pod) pair of the address index: two pods may briefly share
 * an address (a finished pod and its successor), so the index holds both. */
struct addr_ref {
	struct pod_ent *pe;
	unsigned int i;
};

struct pod_ent {
	struct vakt_pod *pod;
	struct ns_bucket *b;
	size_t idx; /* position in b->pods */
	uint64_t hash;
	size_t naddr; /* addresses in the index (0 for hostNetwork pods) */
	struct addr_ref addrs[VAKT_POD_MAX_IPS];
};

struct pol_ent {
	struct vakt_policy *pol;
	struct ns_bucket *b;
	size_t idx; /* position in b->pols */
	uint64_t hash;
};

/* Everything known about one namespace name; exists while anything in it does. */
struct ns_bucket {
	char *name;
	uint64_t hash;
	struct vakt_namespace *ns;
	struct pod_ent **pods;
	size_t npods, podcap;
	struct pol_ent **pols;
	size_t npols, polcap;
};

struct vakt_store {
	struct vakt_htab buckets; /* name -> ns_bucket */
	struct vakt_htab pods;    /* (ns, name) -> pod_ent */
	struct vakt_htab pols;    /* (ns, name) -> pol_ent */
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

static int pod_eq(const void *item, const void *key)
{
	const struct vakt_pod *p = ((const struct pod_ent *)item)->pod;
	const struct objkey *k = key;

	return !strcmp(p->name, k->name) && !strcmp(p->ns, k->ns);
}

static int pol_eq(const void *item, const void *key)
{
	const struct vakt_policy *p = ((const struct pol_ent *)item)->pol;
	const struct objkey *k = key;

	return !strcmp(p->name, k->name) && !strcmp(p->ns, k->ns);
}

static int addr_eq(const void *item, const void *key)
{
	const struct addr_ref *r = item;

	return !memcmp(&r->pe->pod->ips[r->i], key, sizeof(struct vakt_addr));
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
	free(b->pods);
	free(b->pols);
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
		for (j = 0; j < b->npods; j++) {
			vakt_pod_free(b->pods[j]->pod);
			free(b->pods[j]);
		}
		for (j = 0; j < b->npols; j++) {
			vakt_policy_free(b->pols[j]->pol);
			free(b->pols[j]);
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
	if (b->ns || b->npods || b->npols)
		return;
	vakt_htab_remove(&s->buckets, b->hash, b);
	bucket_free(b);
}

/* Grows a bucket array of pointers by one slot; returns 0 or -ENOMEM. */
static int grow(void ***arr, size_t n, size_t *cap)
{
	void **v;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 4;
	v = realloc(*arr, ncap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*arr = v;
	*cap = ncap;
	return 0;
}

static void addrs_unindex(struct vakt_store *s, struct pod_ent *pe)
{
	size_t i;

	for (i = 0; i < pe->naddr; i++)
		vakt_htab_remove(&s->addrs, hash_addr(&pe->pod->ips[i]), &pe->addrs[i]);
	pe->naddr = 0;
}

static int addrs_index(struct vakt_store *s, struct pod_ent *pe)
{
	size_t i, n = pe->pod->host_network ? 0 : pe->pod->nips;
	int err;

	if (n > VAKT_POD_MAX_IPS)
		n = VAKT_POD_MAX_IPS;
	err = vakt_htab_reserve(&s->addrs, s->addrs.n + n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		pe->addrs[i].pe = pe;
		pe->addrs[i].i = (unsigned int)i;
		vakt_htab_insert(&s->addrs, hash_addr(&pe->pod->ips[i]), &pe->addrs[i]);
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

int vakt_store_put_pod(struct vakt_store *s, struct vakt_pod *pod)
{
	struct objkey k;
	struct pod_ent *pe;
	struct vakt_pod *old;
	struct ns_bucket *b;
	uint64_t h;
	int err;

	if (!pod)
		return -EINVAL;
	err = check_key("Pod", pod->ns, pod->name);
	if (err)
		goto err_free;
	k.ns = pod->ns;
	k.name = pod->name;
	h = hash_objkey(pod->ns, pod->name);
	pe = vakt_htab_find(&s->pods, h, pod_eq, &k);
	if (pe) {
		old = pe->pod;
		addrs_unindex(s, pe);
		pe->pod = pod;
		err = addrs_index(s, pe);
		if (err) {
			pe->pod = old;
			addrs_index(s, pe); /* capacity was there before */
			goto err_nomem;
		}
		if (s->l.pod_changed)
			s->l.pod_changed(s->l.arg, old, pod);
		vakt_pod_free(old);
		return 0;
	}
	b = bucket_get(s, pod->ns);
	if (!b)
		goto err_nomem;
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		goto err_bucket;
	pe->pod = pod;
	pe->b = b;
	pe->hash = h;
	if (grow((void ***)&b->pods, b->npods, &b->podcap) || vakt_htab_insert(&s->pods, h, pe))
		goto err_ent;
	if (addrs_index(s, pe)) {
		vakt_htab_remove(&s->pods, h, pe);
		goto err_ent;
	}
	pe->idx = b->npods;
	b->pods[b->npods++] = pe;
	if (s->l.pod_changed)
		s->l.pod_changed(s->l.arg, NULL, pod);
	return 0;

err_ent:
	free(pe);
err_bucket:
	bucket_put_if_empty(s, b);
err_nomem:
	err = -ENOMEM;
	log_error("store: out of memory", "kind=Pod ns=%s name=%s", pod->ns, pod->name);
err_free:
	vakt_pod_free(pod);
	return err;
}

int vakt_store_put_policy(struct vakt_store *s, struct vakt_policy *pol)
{
	struct objkey k;
	struct pol_ent *pe;
	struct vakt_policy *old;
	struct ns_bucket *b;
	uint64_t h;
	int err;

	if (!pol)
		return -EINVAL;
	err = check_key("NetworkPolicy", pol->ns, pol->name);
	if (err)
		goto err_free;
	k.ns = pol->ns;
	k.name = pol->name;
	h = hash_objkey(pol->ns, pol->name);
	pe = vakt_htab_find(&s->pols, h, pol_eq, &k);
	if (pe) {
		old = pe->pol;
		pe->pol = pol;
		if (s->l.policy_changed)
			s->l.policy_changed(s->l.arg, old, pol);
		vakt_policy_free(old);
		return 0;
	}
	b = bucket_get(s, pol->ns);
	if (!b)
		goto err_nomem;
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		goto err_bucket;
	pe->pol = pol;
	pe->b = b;
	pe->hash = h;
	if (grow((void ***)&b->pols, b->npols, &b->polcap) || vakt_htab_insert(&s->pols, h, pe))
		goto err_ent;
	pe->idx = b->npols;
	b->pols[b->npols++] = pe;
	if (s->l.policy_changed)
		s->l.policy_changed(s->l.arg, NULL, pol);
	return 0;

err_ent:
	free(pe);
err_bucket:
	bucket_put_if_empty(s, b);
err_nomem:
	err = -ENOMEM;
	log_error("store: out of memory", "kind=NetworkPolicy ns=%s name=%s", pol->ns, pol->name);
err_free:
	vakt_policy_free(pol);
	return err;
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
	struct objkey k = { ns, name };
	struct ns_bucket *b;
	struct pod_ent *pe;

	if (!ns || !name)
		return -ENOENT;
	pe = vakt_htab_find(&s->pods, hash_objkey(ns, name), pod_eq, &k);
	if (!pe)
		return -ENOENT;
	b = pe->b;
	addrs_unindex(s, pe);
	vakt_htab_remove(&s->pods, pe->hash, pe);
	b->pods[pe->idx] = b->pods[--b->npods];
	b->pods[pe->idx]->idx = pe->idx;
	if (s->l.pod_changed)
		s->l.pod_changed(s->l.arg, pe->pod, NULL);
	vakt_pod_free(pe->pod);
	free(pe);
	bucket_put_if_empty(s, b);
	return 0;
}

int vakt_store_del_policy(struct vakt_store *s, const char *ns, const char *name)
{
	struct objkey k = { ns, name };
	struct ns_bucket *b;
	struct pol_ent *pe;

	if (!ns || !name)
		return -ENOENT;
	pe = vakt_htab_find(&s->pols, hash_objkey(ns, name), pol_eq, &k);
	if (!pe)
		return -ENOENT;
	b = pe->b;
	vakt_htab_remove(&s->pols, pe->hash, pe);
	b->pols[pe->idx] = b->pols[--b->npols];
	b->pols[pe->idx]->idx = pe->idx;
	if (s->l.policy_changed)
		s->l.policy_changed(s->l.arg, pe->pol, NULL);
	vakt_policy_free(pe->pol);
	free(pe);
	bucket_put_if_empty(s, b);
	return 0;
}

const struct vakt_namespace *vakt_store_namespace(const struct vakt_store *s, const char *name)
{
	struct ns_bucket *b = name ? bucket_find(s, name) : NULL;

	return b ? b->ns : NULL;
}

const struct vakt_pod *vakt_store_pod(const struct vakt_store *s, const char *ns,
				      const char *name)
{
	struct objkey k = { ns, name };
	struct pod_ent *pe;

	if (!ns || !name)
		return NULL;
	pe = vakt_htab_find(&s->pods, hash_objkey(ns, name), pod_eq, &k);
	return pe ? pe->pod : NULL;
}

const struct vakt_pod *vakt_store_pod_by_addr(const struct vakt_store *s,
					      const struct vakt_addr *a)
{
	struct addr_ref *r = vakt_htab_find(&s->addrs, hash_addr(a), addr_eq, a);

	return r ? r->pe->pod : NULL;
}

const struct vakt_policy *vakt_store_policy(const struct vakt_store *s, const char *ns,
					    const char *name)
{
	struct objkey k = { ns, name };
	struct pol_ent *pe;

	if (!ns || !name)
		return NULL;
	pe = vakt_htab_find(&s->pols, hash_objkey(ns, name), pol_eq, &k);
	return pe ? pe->pol : NULL;
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
		const struct pod_ent *pe = s->pods.slots[i].item;

		if (pe && (ret = cb(arg, pe->pod)))
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
		const struct pol_ent *pe = s->pols.slots[i].item;

		if (pe && (ret = cb(arg, pe->pol)))
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

	for (i = 0; b && i < b->npols; i++)
		if ((ret = cb(arg, b->pols[i]->pol)))
			return ret;
	return 0;
}

int vakt_store_foreach_pod_in(const struct vakt_store *s, const char *ns,
			      int (*cb)(void *arg, const struct vakt_pod *pod), void *arg)
{
	const struct ns_bucket *b = ns ? bucket_find(s, ns) : NULL;
	size_t i;
	int ret;

	for (i = 0; b && i < b->npods; i++)
		if ((ret = cb(arg, b->pods[i]->pod)))
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
		const struct pod_ent *pe = s->pods.slots[i].item;

		if (pe)
			v[k++] = pe->pod;
	}
	qsort(v, k, sizeof(*v), pod_ptr_cmp);
	*out = v;
	*n = k;
	return 0;
}
