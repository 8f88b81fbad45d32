/* SPDX-License-Identifier: Apache-2.0 */
/*
 * htab.h - a generic open-addressing hash table of item pointers.
 *
 * The table stores (hash, item) pairs; the caller owns the items and
 * supplies the hash and an equality callback at lookup time, so one table
 * type serves every key shape (strings, addresses, fixed binary keys).
 * Linear probing with backward-shift deletion: no tombstones, so lookups stay
 * short after any number of deletes. The lookup is inline so that a known
 * equality callback is inlined into the caller's hot path.
 *
 * Several items with equal keys may be inserted; a lookup returns one of
 * them and vakt_htab_remove() removes exactly the item pointer given.
 */
#ifndef VAKT_HTAB_H
#define VAKT_HTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct vakt_htab_slot {
	uint64_t hash;
	void *item; /* NULL: empty */
};

struct vakt_htab {
	struct vakt_htab_slot *slots;
	size_t mask; /* capacity - 1; capacity is a power of two, or 0 */
	size_t n;
};

/* Zero-initialised tables are valid and empty; init only preallocates. */
int vakt_htab_init(struct vakt_htab *h, size_t hint);
void vakt_htab_fini(struct vakt_htab *h);
/* -ENOMEM on allocation failure; the table is unchanged then. */
int vakt_htab_insert(struct vakt_htab *h, uint64_t hash, void *item);
/* Removes this exact item; returns 0 or -ENOENT. */
int vakt_htab_remove(struct vakt_htab *h, uint64_t hash, const void *item);
int vakt_htab_reserve(struct vakt_htab *h, size_t n);
void vakt_htab_clear(struct vakt_htab *h);

static inline size_t vakt_htab_count(const struct vakt_htab *h)
{
	return h->n;
}

/* Walk: for (size_t i = 0; i < vakt_htab_cap(h); i++) if (h->slots[i].item) ... */
static inline size_t vakt_htab_cap(const struct vakt_htab *h)
{
	return h->slots ? h->mask + 1 : 0;
}

static inline void *vakt_htab_find(const struct vakt_htab *h, uint64_t hash,
				   int (*eq)(const void *item, const void *key), const void *key)
{
	size_t i;

	if (!h->n)
		return NULL;
	for (i = hash & h->mask;; i = (i + 1) & h->mask) {
		const struct vakt_htab_slot *s = &h->slots[i];

		if (!s->item)
			return NULL;
		if (s->hash == hash && eq(s->item, key))
			return s->item;
	}
}

/* Hashing: fast 64-bit mixing, good enough for adversary-free keys (names
 * and addresses come from the API server, which authenticates writers). */
static inline uint64_t vakt_hash_mix(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

static inline uint64_t vakt_hash_u64(uint64_t h, uint64_t v)
{
	return vakt_hash_mix(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

static inline uint64_t vakt_hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t w;

	while (len >= 8) {
		memcpy(&w, b, 8);
		h = vakt_hash_u64(h, w);
		b += 8;
		len -= 8;
	}
	if (len) {
		w = 0;
		memcpy(&w, b, len);
		h = vakt_hash_u64(h, w ^ ((uint64_t)len << 56));
	}
	return h;
}

static inline uint64_t vakt_hash_str(uint64_t h, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	/* The length separates ("ab","c") from ("a","bc") when chained. */
	return vakt_hash_u64(vakt_hash_bytes(h, s, len), len + (s ? 1 : 0));
}

#endif /* VAKT_HTAB_H */
