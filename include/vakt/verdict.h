/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vakt/verdict.h - the verdict for a new flow at one enforcement point,
 * written once and compiled twice: into the TC program (bpf/vakt.bpf.c) and
 * into userspace (agent/tables.c, used by vakt sim, the tests and the
 * benchmarks). If the two disagree it is a map implementation bug, never a
 * policy logic bug: the differential tests check exactly that.
 *
 * The includer defines, before including this header:
 *
 *   vakt_ctx_t                  what the lookups need (tables, or unused)
 *   VAKT_INLINE                 inline marker (__always_inline for BPF)
 *   const struct vakt_ip_val *vakt_lookup_ipcache(vakt_ctx_t, const struct vakt_addr *);
 *   const struct vakt_cidr_val *vakt_lookup_cidr(vakt_ctx_t, const struct vakt_cidr_key *);
 *   const struct vakt_policy_val *vakt_lookup_policy(vakt_ctx_t, const struct vakt_policy_key *);
 *
 * Cost contract: at most one ipcache lookup, one cidr lookup and three policy
 * lookups, independent of the number of pods, policies and rules; an allowed
 * flow to a pod identity usually costs two (ipcache + one policy lookup).
 */
#ifndef VAKT_VERDICT_H
#define VAKT_VERDICT_H

#include "vakt/maps.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define VAKT_HTONS(x) ((__be16)__builtin_bswap16((__u16)(x)))
#else
#define VAKT_HTONS(x) ((__be16)(x))
#endif

/* What the verdict needs to know of a new flow at one enforcement point. */
struct vakt_flow {
	struct vakt_addr peer; /* remote end: destination on egress, source on ingress */
	__u16 dport;           /* destination port, host order; 0 for portless protocols */
	__u8 proto;            /* IPPROTO_* */
	__u8 dir;              /* VAKT_DIR_* */
};

struct vakt_verdict {
	__u32 reason;        /* enum vakt_reason */
	__u32 rule;          /* rule reference when reason == VAKT_R_POLICY_ALLOW */
	__u32 peer_identity; /* VAKT_ID_WORLD when the peer is no known pod */
	__u32 peer;          /* policy key peer that matched, when allowed by policy */
};

static VAKT_INLINE int vakt_addr_eq(const struct vakt_addr *a, const struct vakt_addr *b)
{
	const __u64 *x = (const __u64 *)a->b;
	const __u64 *y = (const __u64 *)b->b;

	return x[0] == y[0] && x[1] == y[1];
}

static VAKT_INLINE int vakt_policy_match(vakt_ctx_t ctx, struct vakt_policy_key *key, __u32 peer,
					 struct vakt_verdict *v)
{
	const struct vakt_policy_val *pv;

	key->peer = peer;
	pv = vakt_lookup_policy(ctx, key);
	if (!pv || pv->action != VAKT_ACTION_ALLOW)
		return 0;
	v->reason = VAKT_R_POLICY_ALLOW;
	v->rule = pv->rule;
	v->peer = peer;
	return 1;
}

/*
 * vakt_verdict - decide a new flow of endpoint @ep (found at address @self)
 * in direction f->dir. Returns 1 if allowed, 0 if dropped; @v says why.
 */
static VAKT_INLINE int vakt_verdict(vakt_ctx_t ctx, const struct vakt_ep_val *ep,
				    const struct vakt_addr *self, const struct vakt_flow *f,
				    struct vakt_verdict *v)
{
	const struct vakt_ip_val *ip;
	const struct vakt_cidr_val *cv;
	struct vakt_policy_key key = {};
	struct vakt_cidr_key ckey;
	__u32 dir = f->dir & 1;
	__u32 flags = ep->flags;

	v->rule = 0;
	v->peer = 0;
	v->peer_identity = VAKT_ID_WORLD;

	/* A pod's traffic to itself is never subject to policy. */
	if (vakt_addr_eq(&f->peer, self)) {
		v->reason = VAKT_R_SELF;
		return 1;
	}
	ip = vakt_lookup_ipcache(ctx, &f->peer);
	if (ip)
		v->peer_identity = ip->identity;
	/* Node traffic (kubelet probes, host services) is always allowed. */
	if (v->peer_identity == VAKT_ID_HOST) {
		v->reason = VAKT_R_HOST;
		return 1;
	}
	if (flags & VAKT_EPF_FAIL_CLOSED) {
		v->reason = VAKT_R_FAIL_CLOSED;
		return 0;
	}
	if (!ep->policy[dir]) {
		v->reason = VAKT_R_NOT_ISOLATED;
		return 1;
	}

	key.prefixlen = VAKT_PLEN_FULL;
	key.policy = ep->policy[dir];
	key.proto = f->proto;
	key.port = VAKT_HTONS(f->dport);

	if ((flags & VAKT_EPF_ID(dir)) && v->peer_identity >= VAKT_ID_FIRST_POD &&
	    vakt_policy_match(ctx, &key, v->peer_identity, v))
		return 1;
	if (flags & VAKT_EPF_CLASS(dir)) {
		ckey.prefixlen = 128;
		ckey.addr = f->peer;
		cv = vakt_lookup_cidr(ctx, &ckey);
		if (cv && cv->class_id &&
		    vakt_policy_match(ctx, &key, VAKT_PEER_CLASS | cv->class_id, v))
			return 1;
	}
	if ((flags & VAKT_EPF_ANY(dir)) && vakt_policy_match(ctx, &key, VAKT_PEER_ANY, v))
		return 1;

	v->reason = VAKT_R_POLICY_DENIED;
	return 0;
}

#endif /* VAKT_VERDICT_H */
