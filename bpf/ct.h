/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct.h - conntrack scoped per enforcement point (see include/vakt/datapath.h
 * for the key and value layouts). Expects the map ct to be defined.
 *
 * A flow admitted at (ep, dir) owns two entries: the forward tuple at
 * (ep, dir) and the reverse tuple at (ep, !dir) flagged REPLY, so that any
 * packet of an established flow costs one lookup. TCP and SCTP state is
 * kept per entry (each entry sees its own direction); closing events (both
 * FINs, RST, ABORT) update both entries, which costs a second lookup only
 * on those rare packets.
 */
#ifndef VAKT_BPF_CT_H
#define VAKT_BPF_CT_H

#include <bpf/bpf_core_read.h>

#include "parse.h"

#ifndef VAKT_NSEC_PER_SEC
#define VAKT_NSEC_PER_SEC 1000000000ULL
#endif

/*
 * The clock of conntrack and fragment timestamps. Timeouts are seconds, so
 * the tick-granular coarse clock does: it is a load from the timekeeper,
 * where bpf_ktime_get_ns() reads the TSC, a third of an established packet's
 * cost in a VM here (docs/datapath.md, Performance). Both are
 * CLOCK_MONOTONIC, the coarse one at most a tick behind, so entries written
 * with either compare correctly. Kernels before 5.11 lack the coarse helper:
 * the test is a CO-RE enum relocation resolved at load time, and the
 * verifier drops the branch not taken, helper call included.
 */
static __always_inline __u64 ct_now(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ktime_get_coarse_ns))
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

/*
 * Refresh an entry's idle time, storing only when the clock moved (at most
 * once a tick per entry): a store dirties the entry's cache line for the
 * other CPUs that read it.
 */
static __always_inline void ct_touch(struct vakt_ct_val *v, __u64 now)
{
	if (v->last_ns != now)
		v->last_ns = now;
}

static __always_inline __u64 ct_timeout_ns(__u8 proto, __u8 state)
{
	__u64 s;

	if (state == VAKT_CT_CLOSING)
		s = VAKT_CT_TIMEOUT_CLOSING;
	else if (proto == IPPROTO_TCP || proto == IPPROTO_SCTP)
		s = state == VAKT_CT_NEW ? VAKT_CT_TIMEOUT_TCP_NEW : VAKT_CT_TIMEOUT_TCP_EST;
	else if (proto == IPPROTO_UDP)
		s = VAKT_CT_TIMEOUT_UDP;
	else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		s = VAKT_CT_TIMEOUT_ICMP;
	else
		s = VAKT_CT_TIMEOUT_OTHER;
	return s * VAKT_NSEC_PER_SEC;
}

static __always_inline int ct_expired(const struct vakt_ct_val *v, __u8 proto, __u64 now)
{
	return now > v->last_ns && now - v->last_ns > ct_timeout_ns(proto, v->state);
}

static __always_inline void ct_reverse(const struct vakt_ct_key *k, struct vakt_ct_key *r)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->pad = 0;
}

/* The other entry of the flow that owns entry (k, v). */
static __always_inline void ct_twin(const struct vakt_ct_key *k, const struct vakt_ct_val *v,
				    struct vakt_ct_key *t)
{
	ct_reverse(k, t);
	if (k->dir == VAKT_CT_DIR_NODE) {
		t->ep_id = v->peer_ep;
		t->dir = VAKT_DIR_EGRESS;
	} else if (v->flags & VAKT_CTF_NODE) {
		t->ep_id = 0;
		t->dir = VAKT_CT_DIR_NODE;
	} else {
		t->ep_id = k->ep_id;
		t->dir = k->dir ^ 1;
	}
}

static __always_inline void ct_delete_flow(const struct vakt_ct_key *k, const struct vakt_ct_val *v)
{
	struct vakt_ct_key t;

	ct_twin(k, v, &t);
	bpf_map_delete_elem(&ct, &t);
	bpf_map_delete_elem(&ct, k);
}

/* Initial state of a new flow from its first packet. */
static __always_inline __u8 ct_initial_state(const struct pkt *p)
{
	if (p->k.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (VAKT_TCP_SYN | VAKT_TCP_ACK)) == VAKT_TCP_SYN)
		return VAKT_CT_NEW;
	if (p->k.proto == IPPROTO_SCTP && p->chunk == VAKT_SCTP_INIT)
		return VAKT_CT_NEW;
	return VAKT_CT_EST;
}

/* A packet that opens a connection: TCP SYN without ACK, SCTP INIT. */
static __always_inline int pkt_opens(const struct pkt *p)
{
	return ct_initial_state(p) == VAKT_CT_NEW;
}

/*
 * Both directions have sent their FIN (or SHUTDOWN), or one sent RST/ABORT:
 * move both entries to CLOSING, so they expire after a short grace period
 * that lets the last ACKs and retransmissions through.
 */
static __always_inline void ct_close_both(const struct vakt_ct_key *k, struct vakt_ct_val *v)
{
	struct vakt_ct_key t;
	struct vakt_ct_val *tv;

	v->state = VAKT_CT_CLOSING;
	ct_twin(k, v, &t);
	tv = bpf_map_lookup_elem(&ct, &t);
	if (tv)
		tv->state = VAKT_CT_CLOSING;
}

static __always_inline void ct_fin(const struct vakt_ct_key *k, struct vakt_ct_val *v)
{
	struct vakt_ct_key t;
	struct vakt_ct_val *tv;

	v->flags |= VAKT_CTF_FIN;
	ct_twin(k, v, &t);
	tv = bpf_map_lookup_elem(&ct, &t);
	if (tv && (tv->flags & VAKT_CTF_FIN)) {
		v->state = VAKT_CT_CLOSING;
		tv->state = VAKT_CT_CLOSING;
	}
}

/*
 * Advance the entry's state with this packet. Returns 1 if the packet opens
 * a new connection on a tuple whose entry cannot carry it (a SYN or INIT on
 * a closing flow or against a reply entry): the caller treats it as a new
 * flow and re-runs the verdict.
 */
static __always_inline int ct_advance(const struct vakt_ct_key *k, struct vakt_ct_val *v,
				      const struct pkt *p)
{
	if (p->k.proto == IPPROTO_TCP) {
		__u8 f = p->tcp_flags;

		if (pkt_opens(p))
			return v->state == VAKT_CT_CLOSING || (v->flags & VAKT_CTF_REPLY);
		if (f & VAKT_TCP_RST)
			ct_close_both(k, v);
		else if (f & VAKT_TCP_FIN)
			ct_fin(k, v);
		else if (v->state == VAKT_CT_NEW)
			v->state = VAKT_CT_EST;
	} else if (p->k.proto == IPPROTO_SCTP) {
		__u8 c = p->chunk;

		if (c == VAKT_SCTP_INIT)
			return v->state == VAKT_CT_CLOSING || (v->flags & VAKT_CTF_REPLY);
		if (c == VAKT_SCTP_ABORT || c == VAKT_SCTP_SHUTDOWN_COMPLETE)
			ct_close_both(k, v);
		else if (c == VAKT_SCTP_SHUTDOWN || c == VAKT_SCTP_SHUTDOWN_ACK)
			ct_fin(k, v);
		else if (v->state == VAKT_CT_NEW)
			v->state = VAKT_CT_EST;
	}
	return 0;
}

/*
 * Record an admitted flow: the forward entry at k and its reply entry.
 * node: admitted at a node's leaving point, the reply entry is (0, NODE)
 * and names ep as its peer. peer_ep: the local endpoint at the other end of
 * a NATed flow (its replies get the REPLY mark), 0 if none.
 */
static __always_inline int ct_create(const struct vakt_ct_key *k, const struct pkt *p, __u64 now,
				     __u64 gen, __u32 rule, __u32 reason, __u32 peer_ep, int node)
{
	struct vakt_ct_key r;
	struct vakt_ct_val v = {
		.last_ns = now,
		.gen = gen,
		.rule = rule,
		.peer_ep = peer_ep,
		.state = ct_initial_state(p),
		.flags = node ? VAKT_CTF_NODE : 0,
		.reason = (__u8)reason,
	};

	if (bpf_map_update_elem(&ct, k, &v, BPF_ANY))
		return -1;
	ct_reverse(k, &r);
	if (node) {
		r.ep_id = 0;
		r.dir = VAKT_CT_DIR_NODE;
		v.peer_ep = k->ep_id;
	} else {
		r.ep_id = k->ep_id;
		r.dir = k->dir ^ 1;
	}
	v.flags = VAKT_CTF_REPLY;
	if (bpf_map_update_elem(&ct, &r, &v, BPF_ANY)) {
		bpf_map_delete_elem(&ct, k);
		return -1;
	}
	return 0;
}

#endif /* VAKT_BPF_CT_H */
