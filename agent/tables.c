// SPDX-License-Identifier: Apache-2.0
/*
 * The userspace mirror of the BPF maps.
 *
 * Every table keeps its entries in one hash by exact key (LPM keys masked to
 * their prefix length, prefixlen included). Longest-prefix lookups then
 * probe that hash once per prefix length in use, longest first, which is the
 * kernel trie's answer. The policy table adds an index by its first 64 bits
 * (endpoint policy, peer), which every compiled entry fixes: one probe finds
 * the few (protocol, port prefix) entries of that peer, scanned longest
 * first, so a policy lookup costs one hash probe whatever the table size.
 *
 * Entries deleted since the last drain stay in the hash (present == 0)
 * until the drain has reported them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "log.h"
#include "tables.h"

_Static_assert(VAKT_PLEN_ANY_PROTO == 8 * (offsetof(struct vakt_policy_key, proto) -
					   offsetof(struct vakt_policy_key, policy)),
	       "VAKT_PLEN_ANY_PROTO must end at proto");
_Static_assert(VAKT_PLEN_ANY_PORT == 8 * (offsetof(struct vakt_policy_key, port) -
					  offsetof(struct vakt_policy_key, policy)),
	       "VAKT_PLEN_ANY_PORT must end at port");
_Static_assert(VAKT_PLEN_FULL == 8 * (sizeof(struct vakt_policy_key) -
				      offsetof(struct vakt_policy_key, policy)),
	       "VAKT_PLEN_FULL must cover the key");
_Static_assert(offsetof(struct vakt_cidr_key, addr) == 4, "cidr key data follows prefixlen");
_Static_assert(offsetof(struct vakt_policy_key, policy) == 4, "policy key data follows prefixlen");

#define KEY_MAX 20
#define VAL_MAX 24
#define LPM_BITS_MAX 128
#define NODE_BITS 64 /* policy index: the first 64 key bits after prefixlen */

struct tent {
	uint64_t hash;
	uint8_t present;
	uint8_t journaled;
	uint8_t pad[6];
	unsigned char data[]; /* key (masked), then value */
};

/* Policy entries sharing their first 64 bits, longest prefix first. */
struct pnode {
	uint64_t hash;
	unsigned char k8[8];
	uint32_t n, cap;
	struct tent **v;
};

/*
 * Exact tables also keep key and value inline in one open-addressing array,
 * so that a lookup touches one cache line instead of a slot and an entry:
 * the verdict does two of them per packet.
 */
struct flat {
	unsigned char *slots; /* stride bytes each: u64 tag (0: empty), key, value */
	size_t mask, n, stride;
};

struct ktab {
	size_t ksz, vsz, limit, count;
	struct flat flat; /* exact tables only */
	unsigned int lpm_bits; /* 0: exact hash */
	struct vakt_htab h;
	size_t lencount[LPM_BITS_MAX + 1];
	uint8_t lens[LPM_BITS_MAX + 1]; /* prefix lengths in use, descending (policy: < 64 only) */
	unsigned int nlens;
	struct vakt_htab nodes; /* policy only */
};

struct jrec {
	struct tent *e;
	uint8_t table;
	uint8_t orig_present;
	unsigned char orig[VAL_MAX];
};

struct vakt_tables {
	struct ktab tab[VAKT_T_COUNT];
	struct jrec *journal;
	size_t njournal, jcap;
};

static const struct {
	const char *name;
	size_t ksz, vsz, cap;
	unsigned int lpm_bits;
} tinfo[VAKT_T_COUNT] = {
	[VAKT_T_IPCACHE] = { "ipcache", sizeof(struct vakt_addr), sizeof(struct vakt_ip_val),
			     VAKT_IPCACHE_MAX, 0 },
	[VAKT_T_ENDPOINTS] = { "endpoints", sizeof(struct vakt_addr), sizeof(struct vakt_ep_val),
			       VAKT_MAX_ENDPOINTS, 0 },
	[VAKT_T_CIDR] = { "cidr", sizeof(struct vakt_cidr_key), sizeof(struct vakt_cidr_val),
			  VAKT_CIDR_MAX, 128 },
	[VAKT_T_POLICY] = { "policy", sizeof(struct vakt_policy_key),
			    sizeof(struct vakt_policy_val), VAKT_POLICY_MAX, VAKT_PLEN_FULL },
};

_Static_assert(sizeof(struct vakt_cidr_key) <= KEY_MAX && sizeof(struct vakt_policy_key) <= KEY_MAX,
	       "KEY_MAX");
_Static_assert(sizeof(struct vakt_ep_val) <= VAL_MAX, "VAL_MAX");

const char *vakt_table_name(enum vakt_table_id id)
{
	return (unsigned int)id < VAKT_T_COUNT ? tinfo[id].name : "unknown";
}

size_t vakt_table_key_size(enum vakt_table_id id)
{
	return (unsigned int)id < VAKT_T_COUNT ? tinfo[id].ksz : 0;
}

size_t vakt_table_value_size(enum vakt_table_id id)
{
	return (unsigned int)id < VAKT_T_COUNT ? tinfo[id].vsz : 0;
}

size_t vakt_table_capacity(enum vakt_table_id id)
{
	return (unsigned int)id < VAKT_T_COUNT ? tinfo[id].cap : 0;
}

struct vakt_tables *vakt_tables_new(void)
{
	struct vakt_tables *t = calloc(1, sizeof(*t));
	unsigned int i;

	if (!t) {
		log_error("tables: out of memory", NULL);
		return NULL;
	}
	for (i = 0; i < VAKT_T_COUNT; i++) {
		t->tab[i].ksz = tinfo[i].ksz;
		t->tab[i].vsz = tinfo[i].vsz;
		t->tab[i].limit = tinfo[i].cap;
		t->tab[i].lpm_bits = tinfo[i].lpm_bits;
	}
	return t;
}

void vakt_tables_free(struct vakt_tables *t)
{
	unsigned int i;
	size_t j;

	if (!t)
		return;
	for (i = 0; i < VAKT_T_COUNT; i++) {
		struct ktab *k = &t->tab[i];

		for (j = 0; j < vakt_htab_cap(&k->h); j++)
			free(k->h.slots[j].item);
		for (j = 0; j < vakt_htab_cap(&k->nodes); j++) {
			struct pnode *n = k->nodes.slots[j].item;

			if (n) {
				free(n->v);
				free(n);
			}
		}
		vakt_htab_fini(&k->h);
		vakt_htab_fini(&k->nodes);
		free(k->flat.slots);
	}
	free(t->journal);
	free(t);
}

void vakt_tables_set_limit(struct vakt_tables *t, enum vakt_table_id id, size_t limit)
{
	if ((unsigned int)id < VAKT_T_COUNT)
		t->tab[id].limit = limit;
}

size_t vakt_tables_count(const struct vakt_tables *t, enum vakt_table_id id)
{
	return (unsigned int)id < VAKT_T_COUNT ? t->tab[id].count : 0;
}

size_t vakt_tables_journal_len(const struct vakt_tables *t)
{
	return t->njournal;
}

/* --- keys -------------------------------------------------------------- */

static uint32_t key_plen(const void *key)
{
	uint32_t plen;

	memcpy(&plen, key, sizeof(plen));
	return plen;
}

/* Clears the bits of the LPM data (after the 4-byte prefixlen) beyond plen. */
static void mask_bits(unsigned char *data, unsigned int nbits, unsigned int plen)
{
	unsigned int i, nbytes = nbits / 8;

	for (i = plen / 8; i < nbytes; i++) {
		if (i == plen / 8 && (plen & 7))
			data[i] &= (unsigned char)(0xff00 >> (plen & 7));
		else
			data[i] = 0;
	}
}

static uint64_t key_hash(const struct ktab *k, const void *key)
{
	return vakt_hash_bytes(k->ksz, key, k->ksz);
}

struct keyq {
	const void *key;
	size_t ksz;
};

static int tent_eq(const void *item, const void *key)
{
	const struct tent *e = item;
	const struct keyq *q = key;

	return !memcmp(e->data, q->key, q->ksz);
}

static struct tent *tent_find(const struct ktab *k, const void *key, uint64_t hash)
{
	struct keyq q = { key, k->ksz };

	return vakt_htab_find(&k->h, hash, tent_eq, &q);
}

static inline const void *tent_val(const struct ktab *k, const struct tent *e)
{
	return e->data + k->ksz;
}

/* Copies and masks a caller's key; -EINVAL if prefixlen exceeds the key. */
static int key_prepare(const struct ktab *k, const void *key, unsigned char *out)
{
	uint32_t plen;

	memcpy(out, key, k->ksz);
	if (!k->lpm_bits)
		return 0;
	plen = key_plen(key);
	if (plen > k->lpm_bits)
		return -EINVAL;
	mask_bits(out + 4, k->lpm_bits, plen);
	return 0;
}


/* --- inline index of exact tables ------------------------------------------ */

static inline uint64_t flat_tag(uint64_t h)
{
	return h | 1;
}

static inline unsigned char *flat_slot(const struct flat *f, size_t i)
{
	return f->slots + i * f->stride;
}

static inline unsigned char *flat_find_mut(const struct ktab *k, const void *key, uint64_t h)
{
	const struct flat *f = &k->flat;
	uint64_t tag = flat_tag(h), st;
	size_t i;

	if (!f->n)
		return NULL;
	for (i = tag & f->mask;; i = (i + 1) & f->mask) {
		unsigned char *s = flat_slot(f, i);

		memcpy(&st, s, sizeof(st));
		if (!st)
			return NULL;
		if (st == tag && !memcmp(s + 8, key, k->ksz))
			return s + 8 + k->ksz;
	}
}

static inline const unsigned char *flat_find(const struct ktab *k, const void *key, uint64_t h)
{
	return flat_find_mut(k, key, h);
}

static void flat_place(struct flat *f, const unsigned char *slot)
{
	uint64_t tag;
	size_t i;

	memcpy(&tag, slot, sizeof(tag));
	for (i = tag & f->mask;; i = (i + 1) & f->mask) {
		unsigned char *s = flat_slot(f, i);
		uint64_t st;

		memcpy(&st, s, sizeof(st));
		if (!st) {
			memcpy(s, slot, f->stride);
			return;
		}
	}
}

static int flat_grow(struct ktab *k)
{
	struct flat *f = &k->flat, nf;
	size_t cap = f->slots ? 2 * (f->mask + 1) : 64, i;

	nf.stride = 8 + k->ksz + k->vsz;
	nf.stride = (nf.stride + 7) & ~(size_t)7;
	nf.slots = calloc(cap, nf.stride);
	if (!nf.slots)
		return -ENOMEM;
	nf.mask = cap - 1;
	nf.n = f->n;
	for (i = 0; f->slots && i <= f->mask; i++) {
		const unsigned char *s = flat_slot(f, i);
		uint64_t st;

		memcpy(&st, s, sizeof(st));
		if (st)
			flat_place(&nf, s);
	}
	free(f->slots);
	*f = nf;
	return 0;
}

/* Inserts or updates. */
static int flat_put(struct ktab *k, const struct tent *e)
{
	struct flat *f = &k->flat;
	uint64_t tag = flat_tag(e->hash);
	unsigned char *v = flat_find_mut(k, e->data, e->hash);
	unsigned char slot[8 + KEY_MAX + VAL_MAX + 8];

	if (v) {
		memcpy(v, e->data + k->ksz, k->vsz);
		return 0;
	}
	if ((!f->slots || 2 * (f->n + 1) > f->mask + 1) && flat_grow(k))
		return -ENOMEM;
	memset(slot, 0, sizeof(slot));
	memcpy(slot, &tag, sizeof(tag));
	memcpy(slot + 8, e->data, k->ksz + k->vsz);
	flat_place(f, slot);
	f->n++;
	return 0;
}

static void flat_del(struct ktab *k, const struct tent *e)
{
	struct flat *f = &k->flat;
	uint64_t tag = flat_tag(e->hash), st;
	size_t i, j, home;

	if (!f->n)
		return;
	for (i = tag & f->mask;; i = (i + 1) & f->mask) {
		unsigned char *s = flat_slot(f, i);

		memcpy(&st, s, sizeof(st));
		if (!st)
			return;
		if (st == tag && !memcmp(s + 8, e->data, k->ksz))
			break;
	}
	/* Backward shift, as in htab.c. */
	for (j = (i + 1) & f->mask;; j = (j + 1) & f->mask) {
		unsigned char *s = flat_slot(f, j);

		memcpy(&st, s, sizeof(st));
		if (!st)
			break;
		home = st & f->mask;
		if (((j - home) & f->mask) >= ((j - i) & f->mask)) {
			memcpy(flat_slot(f, i), s, f->stride);
			i = j;
		}
	}
	memset(flat_slot(f, i), 0, f->stride);
	f->n--;
}

/* --- prefix-length and policy indexes ------------------------------------ */

static void lens_rebuild(struct ktab *k)
{
	int l;

	/* The policy table never counts lengths >= 64 here: its node index answers them. */
	k->nlens = 0;
	for (l = (int)k->lpm_bits; l >= 0; l--)
		if (k->lencount[l])
			k->lens[k->nlens++] = (uint8_t)l;
}

static uint64_t node_hash(const unsigned char *k8)
{
	return vakt_hash_bytes(0x6e6f6465, k8, 8);
}

static int node_eq(const void *item, const void *key)
{
	return !memcmp(((const struct pnode *)item)->k8, key, 8);
}

static int node_add(struct ktab *k, struct tent *e)
{
	const unsigned char *k8 = e->data + 4;
	uint64_t h = node_hash(k8);
	struct pnode *n = vakt_htab_find(&k->nodes, h, node_eq, k8);
	uint32_t plen = key_plen(e->data), i;

	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		n->hash = h;
		memcpy(n->k8, k8, 8);
		if (vakt_htab_insert(&k->nodes, h, n)) {
			free(n);
			return -ENOMEM;
		}
	}
	if (n->n == n->cap) {
		uint32_t cap = n->cap ? n->cap * 2 : 2;
		struct tent **v = realloc(n->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM; /* the node may stay empty; lookups cope */
		n->v = v;
		n->cap = cap;
	}
	for (i = n->n; i > 0 && key_plen(n->v[i - 1]->data) < plen; i--)
		n->v[i] = n->v[i - 1];
	n->v[i] = e;
	n->n++;
	return 0;
}

static void node_del(struct ktab *k, struct tent *e)
{
	const unsigned char *k8 = e->data + 4;
	uint64_t h = node_hash(k8);
	struct pnode *n = vakt_htab_find(&k->nodes, h, node_eq, k8);
	uint32_t i;

	if (!n)
		return;
	for (i = 0; i < n->n && n->v[i] != e; i++)
		;
	if (i == n->n)
		return;
	memmove(&n->v[i], &n->v[i + 1], (n->n - i - 1) * sizeof(*n->v));
	n->n--;
	if (!n->n) {
		vakt_htab_remove(&k->nodes, h, n);
		free(n->v);
		free(n);
	}
}

/* Adds a present entry to the lookup indexes. */
static int index_add(struct ktab *k, struct tent *e)
{
	uint32_t plen;

	if (!k->lpm_bits)
		return flat_put(k, e);
	plen = key_plen(e->data);
	if (k->lpm_bits == VAKT_PLEN_FULL && plen >= NODE_BITS)
		return node_add(k, e);
	if (!k->lencount[plen]++)
		lens_rebuild(k);
	return 0;
}

static void index_del(struct ktab *k, struct tent *e)
{
	uint32_t plen;

	if (!k->lpm_bits) {
		flat_del(k, e);
		return;
	}
	plen = key_plen(e->data);
	if (k->lpm_bits == VAKT_PLEN_FULL && plen >= NODE_BITS) {
		node_del(k, e);
		return;
	}
	if (!--k->lencount[plen])
		lens_rebuild(k);
}

/* --- journal ------------------------------------------------------------- */

static int journal_touch(struct vakt_tables *t, unsigned int id, struct tent *e)
{
	struct ktab *k = &t->tab[id];
	struct jrec *r;

	if (e->journaled)
		return 0;
	if (t->njournal == t->jcap) {
		size_t cap = t->jcap ? t->jcap * 2 : 256;
		struct jrec *j = realloc(t->journal, cap * sizeof(*j));

		if (!j)
			return -ENOMEM;
		t->journal = j;
		t->jcap = cap;
	}
	r = &t->journal[t->njournal++];
	r->e = e;
	r->table = (uint8_t)id;
	r->orig_present = e->present;
	if (e->present)
		memcpy(r->orig, tent_val(k, e), k->vsz);
	e->journaled = 1;
	return 0;
}

/* --- writes -------------------------------------------------------------- */

int vakt_tables_put(struct vakt_tables *t, enum vakt_table_id id, const void *key, const void *val)
{
	unsigned char kb[KEY_MAX];
	struct ktab *k;
	struct tent *e;
	uint64_t h;
	int err;

	if ((unsigned int)id >= VAKT_T_COUNT)
		return -EINVAL;
	k = &t->tab[id];
	err = key_prepare(k, key, kb);
	if (err)
		return err;
	h = key_hash(k, kb);
	e = tent_find(k, kb, h);
	if (e && e->present) {
		if (!memcmp(tent_val(k, e), val, k->vsz))
			return 0;
		err = journal_touch(t, id, e);
		if (err)
			return err;
		memcpy(e->data + k->ksz, val, k->vsz);
		if (!k->lpm_bits)
			return flat_put(k, e); /* an update in place: cannot fail */
		return 0;
	}
	if (k->limit && k->count >= k->limit)
		return -ENOSPC;
	if (!e) {
		e = calloc(1, sizeof(*e) + k->ksz + k->vsz);
		if (!e)
			return -ENOMEM;
		e->hash = h;
		memcpy(e->data, kb, k->ksz);
		if (vakt_htab_insert(&k->h, h, e)) {
			free(e);
			return -ENOMEM;
		}
		err = journal_touch(t, id, e);
		if (err) {
			vakt_htab_remove(&k->h, h, e);
			free(e);
			return err;
		}
	}
	memcpy(e->data + k->ksz, val, k->vsz);
	err = index_add(k, e);
	if (err)
		return err; /* journaled but absent: the drain drops it */
	e->present = 1;
	k->count++;
	return 0;
}

int vakt_tables_del(struct vakt_tables *t, enum vakt_table_id id, const void *key)
{
	unsigned char kb[KEY_MAX];
	struct ktab *k;
	struct tent *e;
	int err;

	if ((unsigned int)id >= VAKT_T_COUNT)
		return -EINVAL;
	k = &t->tab[id];
	if (key_prepare(k, key, kb))
		return -ENOENT;
	e = tent_find(k, kb, key_hash(k, kb));
	if (!e || !e->present)
		return -ENOENT;
	err = journal_touch(t, id, e);
	if (err)
		return err;
	index_del(k, e);
	e->present = 0;
	k->count--;
	return 0;
}

/* --- reads --------------------------------------------------------------- */

const void *vakt_tables_get(const struct vakt_tables *t, enum vakt_table_id id, const void *key)
{
	unsigned char kb[KEY_MAX];
	const struct ktab *k;
	struct tent *e;

	if ((unsigned int)id >= VAKT_T_COUNT)
		return NULL;
	k = &t->tab[id];
	if (key_prepare(k, key, kb))
		return NULL;
	e = tent_find(k, kb, key_hash(k, kb));
	return e && e->present ? tent_val(k, e) : NULL;
}

int vakt_tables_foreach(const struct vakt_tables *t, enum vakt_table_id id,
			int (*cb)(void *arg, const void *key, const void *val), void *arg)
{
	const struct ktab *k;
	size_t i;
	int ret;

	if ((unsigned int)id >= VAKT_T_COUNT)
		return -EINVAL;
	k = &t->tab[id];
	for (i = 0; i < vakt_htab_cap(&k->h); i++) {
		const struct tent *e = k->h.slots[i].item;

		if (e && e->present && (ret = cb(arg, e->data, tent_val(k, e))))
			return ret;
	}
	return 0;
}

int vakt_tables_keys(const struct vakt_tables *t, enum vakt_table_id id, void **keys, size_t *n)
{
	const struct ktab *k;
	unsigned char *v;
	size_t i, cnt;

	*keys = NULL;
	*n = 0;
	if ((unsigned int)id >= VAKT_T_COUNT)
		return -EINVAL;
	k = &t->tab[id];
	cnt = vakt_tables_count(t, id);
	if (!cnt)
		return 0;
	v = malloc(cnt * k->ksz);
	if (!v)
		return -ENOMEM;
	for (i = 0; i < vakt_htab_cap(&k->h); i++) {
		const struct tent *e = k->h.slots[i].item;

		if (e && e->present)
			memcpy(v + (*n)++ * k->ksz, e->data, k->ksz);
	}
	*keys = v;
	return 0;
}

static inline const void *exact_lookup(const struct ktab *k, const struct vakt_addr *a)
{
	return flat_find(k, a, vakt_hash_bytes(k->ksz, a, sizeof(*a)));
}

const struct vakt_ip_val *vakt_tables_ipcache(const struct vakt_tables *t, const struct vakt_addr *a)
{
	return exact_lookup(&t->tab[VAKT_T_IPCACHE], a);
}

const struct vakt_ep_val *vakt_tables_endpoint(const struct vakt_tables *t, const struct vakt_addr *a)
{
	return exact_lookup(&t->tab[VAKT_T_ENDPOINTS], a);
}

/* Probes the exact hash for each prefix length in use (from the longest <= plen). */
static const struct tent *lens_lookup(const struct ktab *k, const void *key, uint32_t plen)
{
	unsigned char kb[KEY_MAX];
	unsigned int i;

	for (i = 0; i < k->nlens; i++) {
		uint32_t l = k->lens[i];
		const struct tent *e;

		if (l > plen)
			continue;
		memcpy(kb, key, k->ksz);
		memcpy(kb, &l, sizeof(l));
		mask_bits(kb + 4, k->lpm_bits, l);
		e = tent_find(k, kb, key_hash(k, kb));
		if (e && e->present)
			return e;
	}
	return NULL;
}

const struct vakt_cidr_val *vakt_tables_cidr(const struct vakt_tables *t, const struct vakt_cidr_key *key)
{
	const struct ktab *k = &t->tab[VAKT_T_CIDR];
	uint32_t plen = key->prefixlen > 128 ? 128 : key->prefixlen;
	const struct tent *e = lens_lookup(k, key, plen);

	return e ? tent_val(k, e) : NULL;
}

/* Bits [from, to) of the key data (after prefixlen) are equal. */
static inline int bits_equal(const unsigned char *a, const unsigned char *b, unsigned int from,
			     unsigned int to)
{
	unsigned int i;

	for (i = from; i < to;) {
		unsigned int byte = i / 8;

		if (!(i & 7) && i + 8 <= to) {
			if (a[byte] != b[byte])
				return 0;
			i += 8;
			continue;
		}
		if (((a[byte] ^ b[byte]) >> (7 - (i & 7))) & 1)
			return 0;
		i++;
	}
	return 1;
}

const struct vakt_policy_val *vakt_tables_policy(const struct vakt_tables *t,
						 const struct vakt_policy_key *key)
{
	const struct ktab *k = &t->tab[VAKT_T_POLICY];
	uint32_t plen = key->prefixlen > VAKT_PLEN_FULL ? VAKT_PLEN_FULL : key->prefixlen;
	unsigned char data[12];
	const struct tent *e;
	uint32_t i;

	/* The key data after prefixlen, field by field, as the trie sees it. */
	memcpy(data, &key->policy, 4);
	memcpy(data + 4, &key->peer, 4);
	data[8] = key->proto;
	data[9] = key->pad;
	memcpy(data + 10, &key->port, 2);
	if (plen >= NODE_BITS && k->nodes.n) {
		const struct pnode *n = vakt_htab_find(&k->nodes, node_hash(data), node_eq, data);

		for (i = 0; n && i < n->n; i++) {
			uint32_t l = key_plen(n->v[i]->data);

			if (l <= plen && bits_equal(n->v[i]->data + 4, data, NODE_BITS, l))
				return tent_val(k, n->v[i]);
		}
	}
	e = lens_lookup(k, key, plen);
	return e ? tent_val(k, e) : NULL;
}

const struct vakt_ip_val *vakt_lookup_ipcache(vakt_ctx_t t, const struct vakt_addr *a)
{
	return vakt_tables_ipcache(t, a);
}

const struct vakt_cidr_val *vakt_lookup_cidr(vakt_ctx_t t, const struct vakt_cidr_key *k)
{
	return vakt_tables_cidr(t, k);
}

const struct vakt_policy_val *vakt_lookup_policy(vakt_ctx_t t, const struct vakt_policy_key *k)
{
	return vakt_tables_policy(t, k);
}

int vakt_tables_verdict(const struct vakt_tables *t, const struct vakt_addr *self,
			const struct vakt_flow *f, struct vakt_verdict *v)
{
	const struct vakt_ep_val *ep = vakt_tables_endpoint(t, self);

	if (!ep)
		return -ENOENT;
	return vakt_verdict(t, ep, self, f, v);
}

/* --- drain --------------------------------------------------------------- */

enum jkind { J_NONE, J_PUT, J_DEL };

static enum jkind jrec_kind(const struct vakt_tables *t, const struct jrec *r)
{
	const struct ktab *k = &t->tab[r->table];

	if (r->e->present)
		return !r->orig_present || memcmp(r->orig, tent_val(k, r->e), k->vsz) ? J_PUT : J_NONE;
	return r->orig_present ? J_DEL : J_NONE;
}

static int jrec_revokes(const struct vakt_tables *t, const struct jrec *r, enum jkind kind)
{
	struct vakt_ip_val now, was;

	if (kind == J_DEL)
		return 1;
	if (kind != J_PUT || !r->orig_present)
		return 0;
	if (r->table == VAKT_T_ENDPOINTS)
		return 1;
	if (r->table != VAKT_T_IPCACHE)
		return 0;
	memcpy(&now, tent_val(&t->tab[r->table], r->e), sizeof(now));
	memcpy(&was, r->orig, sizeof(was));
	return now.identity != was.identity;
}

static int cidr_plen_asc(const void *a, const void *b)
{
	const struct vakt_cidr_key *x = (const void *)(*(const struct jrec *const *)a)->e->data;
	const struct vakt_cidr_key *y = (const void *)(*(const struct jrec *const *)b)->e->data;

	return (x->prefixlen > y->prefixlen) - (x->prefixlen < y->prefixlen);
}

static int cidr_plen_desc(const void *a, const void *b)
{
	return cidr_plen_asc(b, a);
}

/*
 * The journal records of one phase, in the order the kernel must see them.
 * CIDR prefixes nest: written in journal order, a new short prefix could
 * briefly become the longest match of an address whose own new (longer)
 * prefix is not there yet, giving it a class that is neither its old nor
 * its new one. So puts go longest prefix first and deletes shortest first:
 * every address matches its old or its new prefix throughout.
 */
static int drain_phase(struct vakt_tables *t, enum jkind kind, enum vakt_table_id id,
		       int (*cb)(void *arg, enum vakt_table_id id, const void *key,
				 const void *val),
		       void *arg, int *rev)
{
	const struct ktab *k = &t->tab[id];
	const struct jrec **recs;
	size_t i, n = 0;
	int ret = 0;

	recs = malloc((t->njournal ? t->njournal : 1) * sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	for (i = 0; i < t->njournal; i++) {
		const struct jrec *r = &t->journal[i];

		if (r->table == id && jrec_kind(t, r) == kind)
			recs[n++] = r;
	}
	if (id == VAKT_T_CIDR)
		qsort(recs, n, sizeof(*recs), kind == J_PUT ? cidr_plen_desc : cidr_plen_asc);
	for (i = 0; i < n && !ret; i++) {
		*rev |= jrec_revokes(t, recs[i], kind);
		ret = cb(arg, id, recs[i]->e->data, kind == J_PUT ? tent_val(k, recs[i]->e) : NULL);
	}
	free(recs);
	return ret;
}

int vakt_tables_drain(struct vakt_tables *t,
		      int (*cb)(void *arg, enum vakt_table_id id, const void *key, const void *val),
		      void *arg, int *revoked)
{
	static const struct {
		enum jkind kind;
		enum vakt_table_id id;
	} order[] = {
		{ J_PUT, VAKT_T_POLICY },    { J_PUT, VAKT_T_CIDR },   { J_PUT, VAKT_T_IPCACHE },
		{ J_PUT, VAKT_T_ENDPOINTS }, { J_DEL, VAKT_T_ENDPOINTS }, { J_DEL, VAKT_T_IPCACHE },
		{ J_DEL, VAKT_T_CIDR },      { J_DEL, VAKT_T_POLICY },
	};
	int rev = 0, ret;
	size_t i, p;

	for (p = 0; p < sizeof(order) / sizeof(order[0]); p++) {
		ret = drain_phase(t, order[p].kind, order[p].id, cb, arg, &rev);
		if (ret)
			return ret;
	}
	for (i = 0; i < t->njournal; i++) {
		struct tent *e = t->journal[i].e;

		e->journaled = 0;
		if (!e->present) {
			vakt_htab_remove(&t->tab[t->journal[i].table].h, e->hash, e);
			free(e);
		}
	}
	t->njournal = 0;
	if (revoked)
		*revoked = rev;
	return 0;
}
