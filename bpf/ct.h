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
 * The clock of conntrack and fragment timestamps: the coarse CLOCK_MONOTONIC
 * in ns, tick granular (timeouts are seconds), a read of the timekeeper
 * where bpf_ktime_get_ns() reads the TSC. Kernels before 5.11 lack the
 * coarse helper: the test is a CO-RE enum relocation resolved at load time,
 * and the verifier drops the branch not taken, helper call included.
 * Established packets mostly do without it: see ct_live().
 */
static __always_inline __u64 ct_now(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ktime_get_coarse_ns))
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

/*
 * Refresh an entry's idle time, storing only when the clock moved forward
 * (at most once a tick per entry): a store dirties the entry's cache line
 * for the other CPUs that read it.
 */
static __always_inline void ct_touch(struct vakt_ct_val *v, __u64 now, __u64 jiffies)
{
	if (now > v->last_ns)
		v->last_ns = now;
	if (v->last_jiffies != (__u32)jiffies)
		v->last_jiffies = (__u32)jiffies;
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

/*
 * ct_live - is entry v still live (not idle past its timeout)? *now is the
 * clock for ct_touch(). A clock helper call is a function call into the
 * timekeeping code on every packet (live traffic here: a program reading
 * bpf_ktime_get_ns() ran ~30 ns longer than one reading jiffies, see
 * docs/datapath.md, Performance), while jiffies is one load (the verifier
 * inlines bpf_jiffies64()). An entry already touched in the current tick
 * cannot be idle past a timeout of seconds, so the clock is read only by
 * the first packet of an entry in each tick.
 */
static __always_inline int ct_live(const struct vakt_ct_val *v, __u8 proto, __u64 jiffies,
				   __u64 *now)
{
	if (v->last_jiffies == (__u32)jiffies) {
		*now = v->last_ns;
		return 1;
	}
	*now = ct_now();
	return !ct_expired(v, proto, *now);
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
		t->scope = VAKT_CT_SCOPE_EP(v->peer_ep);
		t->dir = VAKT_DIR_EGRESS;
	} else if (v->flags & VAKT_CTF_NODE) {
		t->scope = 0;
		t->dir = VAKT_CT_DIR_NODE;
	} else {
		t->scope = k->scope;
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

/*
 * A TCP packet whose flags can move an entry beyond NEW -> EST (SYN, FIN,
 * RST): ct_advance() has more to do than that step.
 */
static __always_inline int tcp_moves_state(const struct pkt *p)
{
	return p->tcp_flags & (VAKT_TCP_SYN | VAKT_TCP_FIN | VAKT_TCP_RST);
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

/* What ct_create() records besides the tuple. */
struct ct_admit {
	__u32 gen;
	__u32 rule;
	__u32 ep_id;   /* the endpoint whose policy admitted the flow */
	__u32 peer_ep; /* local endpoint at the other end of a NATed flow, 0 if none */
	__u8 reason;
	__u8 node;     /* admitted at a node's leaving point */
};

/*
 * Store entry val at k. old: k's current entry, if the caller holds it
 * (a closed, expired or declined entry being replaced): it is rewritten in
 * place. An update would take a free element off the LRU list and give
 * the old one back, each under a lock taken with interrupts off; a node
 * whose pods keep connecting to one destination sees its tuples come back
 * while their closed entries wait out CLOSING (the ephemeral port range
 * cycles in seconds), and that pair of list operations was most of a new
 * flow's cost (docs/datapath.md, "New connections"). The in-place write
 * is the kind every established packet's state change already makes.
 */
static __always_inline int ct_put(const struct vakt_ct_key *k, struct vakt_ct_val *old,
				  const struct vakt_ct_val *val)
{
	if (old) {
		*old = *val;
		return 0;
	}
	return bpf_map_update_elem(&ct, k, val, BPF_ANY) ? -1 : 0;
}

/*
 * Record an admitted flow: the forward entry at k and its reply entry.
 * node: admitted at a node's leaving point, the reply entry is (0, NODE)
 * and names ep_id as its peer. peer_ep: its replies get the REPLY mark.
 * old: k's entry as the caller found it, or NULL; where there was one, the
 * tuple is being reused and its reply entry is likely there too, so it is
 * looked up and rewritten in place (ct_put()); a brand-new tuple skips
 * that lookup.
 */
static __always_inline int ct_create(const struct vakt_ct_key *k, struct vakt_ct_val *old,
				     const struct pkt *p, __u64 now, const struct ct_admit *a)
{
	struct vakt_ct_key r;
	struct vakt_ct_val v = {
		.last_ns = now,
		.last_jiffies = (__u32)bpf_jiffies64(),
		.gen = a->gen,
		.rule = a->rule,
		.peer_ep = (__u16)a->peer_ep,
		.state = ct_initial_state(p),
		.flags = a->node ? VAKT_CTF_NODE : 0,
		.reason = a->reason,
		.ep_id = (__u16)a->ep_id,
	};

	ct_twin(k, &v, &r);
	if (ct_put(k, old, &v))
		return -1;
	if (old)
		old = bpf_map_lookup_elem(&ct, &r);
	if (a->node) {
		v.peer_ep = (__u16)a->ep_id;
		v.ep_id = 0;
	}
	v.flags = VAKT_CTF_REPLY;
	if (ct_put(&r, old, &v)) {
		bpf_map_delete_elem(&ct, k);
		return -1;
	}
	return 0;
}

#endif /* VAKT_BPF_CT_H */
