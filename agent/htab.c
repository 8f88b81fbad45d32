// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>

#include "htab.h"

/* Load factor at most 1/2 keeps linear-probe chains short. */
static size_t cap_for(size_t n)
{
	size_t cap = 8;

	while (cap < 2 * n)
		cap <<= 1;
	return cap;
}

static void place(struct vakt_htab_slot *slots, size_t mask, uint64_t hash, void *item)
{
	size_t i = hash & mask;

	while (slots[i].item)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].item = item;
}

static int resize(struct vakt_htab *h, size_t cap)
{
	struct vakt_htab_slot *slots = calloc(cap, sizeof(*slots));
	size_t i;

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < vakt_htab_cap(h); i++)
		if (h->slots[i].item)
			place(slots, cap - 1, h->slots[i].hash, h->slots[i].item);
	free(h->slots);
	h->slots = slots;
	h->mask = cap - 1;
	return 0;
}

int vakt_htab_reserve(struct vakt_htab *h, size_t n)
{
	size_t cap = cap_for(n);

	if (cap <= vakt_htab_cap(h))
		return 0;
	return resize(h, cap);
}

int vakt_htab_init(struct vakt_htab *h, size_t hint)
{
	h->slots = NULL;
	h->mask = 0;
	h->n = 0;
	return hint ? vakt_htab_reserve(h, hint) : 0;
}

void vakt_htab_fini(struct vakt_htab *h)
{
	free(h->slots);
	h->slots = NULL;
	h->mask = 0;
	h->n = 0;
}

void vakt_htab_clear(struct vakt_htab *h)
{
	if (h->slots)
		memset(h->slots, 0, vakt_htab_cap(h) * sizeof(*h->slots));
	h->n = 0;
}

int vakt_htab_insert(struct vakt_htab *h, uint64_t hash, void *item)
{
	int err = vakt_htab_reserve(h, h->n + 1);

	if (err)
		return err;
	place(h->slots, h->mask, hash, item);
	h->n++;
	return 0;
}

int vakt_htab_remove(struct vakt_htab *h, uint64_t hash, const void *item)
{
	size_t i, j, home;

	if (!h->n)
		return -ENOENT;
	for (i = hash & h->mask;; i = (i + 1) & h->mask) {
		if (!h->slots[i].item)
			return -ENOENT;
		if (h->slots[i].item == item)
			break;
	}
	/* Backward shift: move later members of the probe run into the hole
	 * when their home slot is not between the hole and their position. */
	for (j = (i + 1) & h->mask; h->slots[j].item; j = (j + 1) & h->mask) {
		home = h->slots[j].hash & h->mask;
		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i].item = NULL;
	h->slots[i].hash = 0;
	h->n--;
	return 0;
}
