// SPDX-License-Identifier: Apache-2.0
/*
 * Anti-spoofing bindings: the ep_ifindex map (include/vakt/datapath.h) and
 * its mirror. The agent decides bindings from the node's routes; this file
 * only keeps the map equal to what it was told, writing on change only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "log.h"
#include "mapwriter.h"
#include "model.h"

struct dp_binding {
	struct vakt_addr a;
	uint32_t ifindex;
};

static uint64_t addr_hash(const struct vakt_addr *a)
{
	return vakt_hash_bytes(0x62, a->b, sizeof(a->b));
}

static int binding_eq(const void *item, const void *key)
{
	return !memcmp(&((const struct dp_binding *)item)->a, key, sizeof(struct vakt_addr));
}

static struct dp_binding *find(const struct vakt_dataplane *dp, const struct vakt_addr *a)
{
	return vakt_htab_find(&dp->bindings, addr_hash(a), binding_eq, a);
}

static int mirror_add(struct vakt_dataplane *dp, const struct vakt_addr *a, uint32_t ifindex)
{
	struct dp_binding *b = malloc(sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->a = *a;
	b->ifindex = ifindex;
	if (vakt_htab_insert(&dp->bindings, addr_hash(a), b)) {
		free(b);
		return -ENOMEM;
	}
	return 0;
}

int dp_bindings_load(struct vakt_dataplane *dp)
{
	struct vakt_addr cur, next, *prev = NULL;
	uint32_t ifindex;
	int err;

	while (!bpf_map_get_next_key(dp->ep_ifindex_fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (bpf_map_lookup_elem(dp->ep_ifindex_fd, &cur, &ifindex))
			continue;
		err = mirror_add(dp, &cur, ifindex);
		if (err) {
			log_error("cannot load the anti-spoofing bindings", "map=%s err=%d",
				  "ep_ifindex", err);
			return err;
		}
	}
	if (errno != ENOENT) {
		err = -errno;
		log_error("cannot read the anti-spoofing bindings", "map=%s err=%d", "ep_ifindex",
			  err);
		return err;
	}
	return 0;
}

void dp_bindings_free(struct vakt_dataplane *dp)
{
	for (size_t i = 0; i < vakt_htab_cap(&dp->bindings); i++)
		free(dp->bindings.slots[i].item);
	vakt_htab_fini(&dp->bindings);
}

int vakt_dataplane_bind(struct vakt_dataplane *dp, const struct vakt_addr *a, uint32_t ifindex)
{
	struct dp_binding *b = find(dp, a);
	char buf[64];
	int err;

	if (!ifindex)
		return vakt_dataplane_unbind(dp, a);
	if (b && b->ifindex == ifindex)
		return 0;
	if (bpf_map_update_elem(dp->ep_ifindex_fd, a, &ifindex, BPF_ANY)) {
		err = -errno;
		dp->stats.map_errors++;
		if (err == -E2BIG || err == -ENOSPC)
			dp->stats.map_full++;
		log_error("anti-spoofing binding not written: address unchecked",
			  "map=%s addr=%s ifindex=%u err=%d", "ep_ifindex",
			  vakt_addr_str(a, buf, sizeof(buf)), ifindex, err);
		return err;
	}
	/*
	 * Established packets skip the binding check (their conntrack entry is
	 * scoped by the veth they came through): an entry admitted from another
	 * veth while the address was unbound must be re-checked against it.
	 */
	dp_bump_gen(dp);
	if (b) {
		b->ifindex = ifindex;
		return 0;
	}
	err = mirror_add(dp, a, ifindex);
	if (err) {
		/* Without the mirror entry the binding could never be lifted: take it back. */
		bpf_map_delete_elem(dp->ep_ifindex_fd, a);
		log_error("out of memory recording an anti-spoofing binding", "addr=%s err=%d",
			  vakt_addr_str(a, buf, sizeof(buf)), err);
	}
	return err;
}

int vakt_dataplane_unbind(struct vakt_dataplane *dp, const struct vakt_addr *a)
{
	struct dp_binding *b = find(dp, a);
	char buf[64];
	int err;

	if (!b)
		return 0;
	if (bpf_map_delete_elem(dp->ep_ifindex_fd, a) && errno != ENOENT) {
		err = -errno;
		dp->stats.map_errors++;
		log_error("anti-spoofing binding not removed", "map=%s addr=%s err=%d", "ep_ifindex",
			  vakt_addr_str(a, buf, sizeof(buf)), err);
		return err;
	}
	vakt_htab_remove(&dp->bindings, addr_hash(a), b);
	free(b);
	return 0;
}

uint32_t vakt_dataplane_bound(const struct vakt_dataplane *dp, const struct vakt_addr *a)
{
	const struct dp_binding *b = find(dp, a);

	return b ? b->ifindex : 0;
}

int vakt_dataplane_foreach_binding(const struct vakt_dataplane *dp,
				   int (*cb)(void *arg, const struct vakt_addr *a, uint32_t ifindex),
				   void *arg)
{
	for (size_t i = 0; i < vakt_htab_cap(&dp->bindings); i++) {
		const struct dp_binding *b = dp->bindings.slots[i].item;
		int ret = b ? cb(arg, &b->a, b->ifindex) : 0;

		if (ret)
			return ret;
	}
	return 0;
}
