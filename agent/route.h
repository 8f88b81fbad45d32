/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route.h - one-shot route lookups in the current network namespace, for
 * vaktd's readiness: which interface does the node send a pod's traffic to.
 */
#ifndef VAKT_ROUTE_H
#define VAKT_ROUTE_H

#include "vakt/maps.h"

/*
 * The output interface of the route the kernel picks for destination a
 * (RTM_GETROUTE, like `ip route get`). Returns the ifindex (> 0), or
 * -ENETUNREACH / -EHOSTUNREACH when there is no usable route, -errno.
 */
int vakt_route_oif(const struct vakt_addr *a);

#endif /* VAKT_ROUTE_H */
