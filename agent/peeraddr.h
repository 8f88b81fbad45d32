/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peeraddr.h - the addresses configured at the far end of this namespace's
 * veths, in the pods' network namespaces, read over rtnetlink
 * (IFA_TARGET_NETNSID): which veth a pod address lives behind when the
 * node's routes do not say (bridged CNIs route every pod via the bridge).
 * One-shot reads in the current network namespace, like route.h.
 */
#ifndef VAKT_PEERADDR_H
#define VAKT_PEERADDR_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"

struct vakt_peer_addr {
	struct vakt_addr addr; /* IPv4 as ::ffff:a.b.c.d */
	uint32_t ifindex;      /* host side of the veth whose peer holds addr */
};

struct vakt_peer_addrs {
	struct vakt_peer_addr *v;
	size_t n, cap;
};

/*
 * Replaces *out with every address configured on the peer interface of each
 * veth of this namespace that has its peer in another namespace and for
 * which want(arg, ifindex) is nonzero (NULL: every such veth). Returns 0 or
 * -errno; on error *out is left empty.
 */
int vakt_peer_addrs_read(struct vakt_peer_addrs *out, int (*want)(void *arg, int ifindex),
			 void *arg);

/*
 * The distinct host-side veths whose peers hold a: fills up to max of them
 * into ifindex[] and returns how many there are (may exceed max).
 */
size_t vakt_peer_addrs_find(const struct vakt_peer_addrs *pa, const struct vakt_addr *a,
			    uint32_t *ifindex, size_t max);

void vakt_peer_addrs_free(struct vakt_peer_addrs *pa);

#endif /* VAKT_PEERADDR_H */
