/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netlink.h - rtnetlink over libmnl: the links and addresses of the network
 * namespace the agent runs in. Dump first, then follow change notifications
 * in the event loop. If the kernel drops notifications (ENOBUFS: the socket
 * buffer overflowed), everything is dumped again and the differences are
 * reported as if they were notifications, so callers never see a stale view.
 */
#ifndef VAKT_NETLINK_H
#define VAKT_NETLINK_H

#include <stddef.h>

#include "loop.h"
#include "vakt/maps.h"

struct vakt_nl_cbs {
	void *arg;
	/* removed=0: link exists or changed (kind: IFLA_INFO_KIND, e.g. "veth", may be "");
	 * removed=1: gone. Called for every link during the initial dump. */
	void (*link)(void *arg, int ifindex, const char *name, const char *kind, int up,
		     int removed);
	/* The full current set of this namespace's addresses (all links, v4 and v6,
	 * including loopback), deduplicated, after every change. IPv4 is ::ffff:a.b.c.d.
	 * Called once after the initial dump, then whenever the set changes. */
	void (*addrs)(void *arg, const struct vakt_addr *addrs, size_t n);
};

struct vakt_nl;

/* Callbacks run from vakt_nl_open() and from the loop; they must not call vakt_nl_close(). */

/* Dumps synchronously (callbacks run before this returns), then follows in the
 * loop. NULL on error with *err = -errno. */
struct vakt_nl *vakt_nl_open(struct vakt_loop *l, const struct vakt_nl_cbs *cbs, int *err);
void vakt_nl_close(struct vakt_nl *nl);

/* Statistics for metrics: notifications handled and re-dumps after overflow. */
struct vakt_nl_stats {
	unsigned long long events, resyncs;
};
void vakt_nl_stats(const struct vakt_nl *nl, struct vakt_nl_stats *out);

struct nlmsghdr;
/*
 * The address of an RTM_NEWADDR / RTM_DELADDR message: its own address
 * (IFA_LOCAL, else IFA_ADDRESS; IPv4 as ::ffff:a.b.c.d), the interface, and
 * the prefix length in the 128-bit space. 0, -EAFNOSUPPORT for families
 * other than IPv4 and IPv6, -EINVAL for a short message or address.
 */
int vakt_nl_addr_of(const struct nlmsghdr *nlh, struct vakt_addr *a, int *ifindex,
		    unsigned int *plen);

#endif /* VAKT_NETLINK_H */
