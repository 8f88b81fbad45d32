// SPDX-License-Identifier: Apache-2.0
/*
 * ports.c - NetworkPolicyPort resolution and port-range decomposition.
 *
 * A port spec is resolved per pod because named ports mean different numbers
 * on different pods. Ranges become prefixes over the 16 port bits so the
 * policy LPM never holds one entry per port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "engine.h"

static int proto_ok(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static int resolve_named(const struct vakt_port_spec *ps, const struct vakt_named_port *ports, size_t nports,
			 uint16_t *port)
{
	uint16_t best = 0;

	/* Names may repeat across containers; the lowest port wins so the answer
	 * never depends on the order the ports were listed in. */
	for (size_t i = 0; i < nports; i++) {
		const struct vakt_named_port *np = &ports[i];

		if (np->proto != ps->proto || np->port == 0 || strcmp(np->name, ps->name) != 0)
			continue;
		if (!best || np->port < best)
			best = np->port;
	}
	*port = best;
	return best != 0;
}

int vakt_port_resolve(const struct vakt_port_spec *ps, const struct vakt_named_port *ports, size_t nports,
		      uint8_t *proto, uint16_t *lo, uint16_t *hi)
{
	uint16_t port;

	if (!proto_ok(ps->proto))
		return -EINVAL;
	if (ps->name) {
		/* endPort needs a numeric port; a name with a number is not a spec the API can express. */
		if (!ps->name[0] || ps->port || ps->end_port)
			return -EINVAL;
		if (!resolve_named(ps, ports, nports, &port))
			return 0;
		*proto = ps->proto;
		*lo = *hi = port;
		return 1;
	}
	if (ps->port == 0) {
		if (ps->end_port)
			return -EINVAL;
		*proto = ps->proto;
		*lo = 1;
		*hi = 65535;
		return 1;
	}
	if (ps->end_port && ps->end_port < ps->port)
		return -EINVAL;
	*proto = ps->proto;
	*lo = ps->port;
	*hi = ps->end_port ? ps->end_port : ps->port;
	return 1;
}

int vakt_port_range_prefixes(uint16_t lo, uint16_t hi, int (*cb)(void *arg, uint16_t value, uint8_t plen), void *arg)
{
	/* 32-bit arithmetic: hi = 65535 must not wrap the cursor. */
	uint32_t cur = lo, end = (uint32_t)hi + 1;

	if (lo > hi)
		return -EINVAL;
	while (cur < end) {
		uint32_t size = 1;
		uint8_t plen = 16;
		int ret;

		/* Grow the block while it stays aligned at cur and inside the range. */
		while (plen > 0 && (cur & (size * 2 - 1)) == 0 && cur + size * 2 <= end) {
			size *= 2;
			plen--;
		}
		ret = cb(arg, (uint16_t)cur, plen);
		if (ret)
			return ret;
		cur += size;
	}
	return 0;
}
