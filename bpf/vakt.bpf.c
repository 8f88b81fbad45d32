// SPDX-License-Identifier: Apache-2.0
/*
 * vakt.bpf.c - the TC datapath: NetworkPolicy enforcement on pod veths.
 *
 * vakt_from_pod (veth host side, TC ingress) enforces the pod's egress,
 * vakt_to_pod (veth host side, TC egress) its ingress. New flows get the
 * verdict of include/vakt/verdict.h (shared with userspace); established
 * flows cost one conntrack lookup, done first: its key is scoped by the
 * veth's ifindex, known before any other lookup (ct_fast()). Egress toward
 * addresses that are no known pod (Service ClusterIPs, the world) is
 * deferred to where the packet leaves, after kube-proxy's DNAT and
 * masquerade: vakt_to_pod of the backend, or vakt_node_egress on the node's
 * uplink and tunnel devices.
 * docs/datapath.md describes the model; include/vakt/datapath.h the layouts.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "vakt/maps.h"
#include "vakt/datapath.h"

/* rodata: set by the agent before load (see include/vakt/datapath.h). */
const volatile __u32 cfg_mark_mask = VAKT_MARK_DEFAULT_MASK;
const volatile __u32 cfg_mark_shift = VAKT_MARK_DEFAULT_SHIFT;
const volatile __u32 cfg_event_rate_per_sec = VAKT_EVENT_RATE_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VAKT_IPCACHE_MAX);
	__type(key, struct vakt_addr);
	__type(value, struct vakt_ip_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VAKT_MAX_ENDPOINTS);
	__type(key, struct vakt_addr);
	__type(value, struct vakt_ep_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VAKT_CIDR_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vakt_cidr_key);
	__type(value, struct vakt_cidr_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VAKT_POLICY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vakt_policy_key);
	__type(value, struct vakt_policy_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vakt_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VAKT_CT_MAX);
	__type(key, struct vakt_ct_key);
	__type(value, struct vakt_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VAKT_COUNTERS_MAX);
	__type(key, __u32);
	__type(value, struct vakt_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VAKT_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VAKT_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct vakt_ep_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VAKT_FRAGS_MAX);
	__type(key, struct vakt_frag_key);
	__type(value, struct vakt_frag_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VAKT_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct vakt_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_addr SEC(".maps");

/* Written by vouch_back() only: the veth a vouch for local pod ep_id is honoured on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VAKT_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct vakt_ep_veth);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_veth SEC(".maps");

/* Written by the agent only (vakt_dataplane_bind()): which veth a local pod address sends from. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VAKT_EP_IFINDEX_MAX);
	__type(key, struct vakt_addr);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vakt_event_rl);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_rl SEC(".maps");

/* The shared verdict, over the maps above. */
typedef void *vakt_ctx_t;
#define VAKT_INLINE __always_inline

static __always_inline const struct vakt_ip_val *vakt_lookup_ipcache(vakt_ctx_t c,
								     const struct vakt_addr *a)
{
	return bpf_map_lookup_elem(&ipcache, a);
}

static __always_inline const struct vakt_cidr_val *vakt_lookup_cidr(vakt_ctx_t c,
								    const struct vakt_cidr_key *k)
{
	return bpf_map_lookup_elem(&cidr, k);
}

static __always_inline const struct vakt_policy_val *vakt_lookup_policy(vakt_ctx_t c,
									const struct vakt_policy_key *k)
{
	return bpf_map_lookup_elem(&policy, k);
}

#include "vakt/verdict.h"
#include "obs.h"
#include "parse.h"
#include "ct.h"

/* Internal outcome of point_check(): the egress check moves downstream. */
#define R_DEFER (VAKT_R_MAX - 1)
/* Stored in a frag entry: later fragments of a deferred datagram defer too. */
#define R_FRAG_DEFER 0xff

/* The policy generation, as conntrack entries keep it (low 32 bits). */
static __always_inline __u32 cur_gen(void)
{
	struct vakt_state *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&state, &zero);
	return s ? (__u32)s->gen : 0;
}

static __always_inline __u32 mark_get(struct __sk_buff *skb)
{
	return (skb->mark & cfg_mark_mask) >> cfg_mark_shift;
}

static __always_inline void mark_set(struct __sk_buff *skb, __u32 field)
{
	skb->mark = (skb->mark & ~cfg_mark_mask) | ((field << cfg_mark_shift) & cfg_mark_mask);
}

static __always_inline const struct vakt_addr *remote_of(const struct vakt_ct_key *k)
{
	return k->dir == VAKT_DIR_INGRESS ? &k->saddr : &k->daddr;
}

static __always_inline int portful(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/*
 * The endpoint record of local pod ep_id, through the address its
 * vakt_from_pod last wrote to ep_addr (*self, NULL for an id out of range);
 * NULL when that address has no record or one of another endpoint (the pod
 * went away or was replaced).
 */
static __always_inline const struct vakt_ep_val *ep_of_id(__u32 ep_id, struct vakt_addr **self)
{
	const struct vakt_ep_val *ep;

	*self = bpf_map_lookup_elem(&ep_addr, &ep_id);
	if (!*self)
		return 0;
	ep = bpf_map_lookup_elem(&endpoints, *self);
	return ep && ep->ep_id == ep_id ? ep : 0;
}

/*
 * Re-run the verdict for an entry admitted under an older generation. The
 * flow was admitted in direction dir (the entry's, or the opposite one for a
 * reply entry); the peer is the remote end at this point either way, and a
 * reply's source port is the flow's destination port.
 */
static __always_inline int ct_recheck(const struct vakt_ep_val *ep, const struct vakt_addr *self,
				      const struct vakt_ct_key *k, const struct vakt_ct_val *v,
				      __u32 dir)
{
	struct vakt_verdict vd;
	struct vakt_flow f = {
		.proto = k->proto,
	};
	int reply = v->flags & VAKT_CTF_REPLY;

	f.peer = *remote_of(k);
	f.dir = reply ? dir ^ 1 : dir;
	if (portful(k->proto))
		f.dport = bpf_ntohs(reply ? k->sport : k->dport);
	return vakt_verdict(0, ep, self, &f, &vd);
}

/* Both entries of the flow that owns (k, v) name peer (0: none) as the client behind the NAT. */
static __always_inline void ct_set_peer(const struct vakt_ct_key *k, struct vakt_ct_val *v,
					__u32 peer)
{
	struct vakt_ct_key t;
	struct vakt_ct_val *tv;

	v->peer_ep = (__u16)peer;
	ct_twin(k, v, &t);
	tv = bpf_map_lookup_elem(&ct, &t);
	if (tv)
		tv->peer_ep = (__u16)peer;
}

/*
 * The client of a flow through a Service, whose replies the backend's
 * vakt_from_pod marks REPLY | client (the entry's peer_ep): does the
 * client's egress still admit the flow? Asked when the generation moved.
 * Its deferred entry (the reverse of the reply, at the client's scope) says
 * yes while current; otherwise its policy decides again. Without this, a
 * client whose egress was revoked would still take the replies of a flow
 * that only the backend sends on (the client's own checks run on packets
 * it sends).
 */
static __always_inline int client_admits(const struct pkt *p, __u32 cep)
{
	struct vakt_flow f = { .proto = p->k.proto, .dir = VAKT_DIR_EGRESS };
	const struct vakt_ep_val *sep;
	struct vakt_verdict vd;
	struct vakt_ct_val *cv;
	struct vakt_addr *self;
	struct vakt_ct_key k;

	ct_reverse(&p->k, &k);
	k.scope = VAKT_CT_SCOPE_EP(cep);
	k.dir = VAKT_DIR_EGRESS;
	cv = bpf_map_lookup_elem(&ct, &k);
	if (cv && cv->gen == cur_gen() && !(cv->flags & (VAKT_CTF_REPLY | VAKT_CTF_DEFER)))
		return 1;
	sep = ep_of_id(cep, &self);
	if (!sep)
		return 0;
	f.peer = p->k.saddr;
	if (portful(p->k.proto))
		f.dport = bpf_ntohs(p->k.sport);
	return vakt_verdict(0, sep, self, &f, &vd);
}

static __always_inline void frag_key(struct vakt_frag_key *fk, const struct pkt *p)
{
	fk->saddr = p->k.saddr;
	fk->daddr = p->k.daddr;
	fk->id = p->frag_id;
	fk->scope = p->k.scope;
	fk->proto = p->k.proto;
	fk->dir = p->k.dir;
	fk->pad = 0;
}

static __always_inline void frag_record(const struct pkt *p, __u64 now, __u32 reason)
{
	struct vakt_frag_key fk;
	struct vakt_frag_val fv = { .last_ns = now, .reason = (__u8)reason };

	if (p->frag != PF_FIRST)
		return;
	frag_key(&fk, p);
	bpf_map_update_elem(&frags, &fk, &fv, BPF_ANY);
}

/* A later fragment follows its first fragment's verdict. */
static __always_inline __u32 frag_follow(const struct pkt *p, __u64 now)
{
	struct vakt_frag_key fk;
	struct vakt_frag_val *fv;

	frag_key(&fk, p);
	fv = bpf_map_lookup_elem(&frags, &fk);
	if (!fv || now - fv->last_ns > VAKT_FRAG_TIMEOUT * VAKT_NSEC_PER_SEC)
		return VAKT_R_FRAG_UNKNOWN;
	fv->last_ns = now;
	return fv->reason == R_FRAG_DEFER ? R_DEFER : VAKT_R_FRAGMENT;
}

struct point_opts {
	__u32 peer_ep;  /* local pod at the other end of a NATed flow */
	__u32 out_peer; /* out: peer_ep of the matched entry */
	__u8 defer;     /* from_pod: defer egress toward unknown addresses */
	__u8 reply_ok;  /* to_pod: the REPLY mark names this endpoint */
	__u8 node;      /* node_egress: replies are node entries */
	__u8 ct_absent; /* the caller's ct_fast() found no entry for the tuple here */
};

/*
 * point_check - the decision at one enforcement point (endpoint ep at
 * address self, conntrack scope, direction dir) for packet p. Returns the
 * reason (a drop if vakt_reason_is_drop()) or R_DEFER.
 */
static __always_inline __u32 point_check(struct pkt *p, const struct vakt_ep_val *ep,
					 const struct vakt_addr *self, __u32 scope, __u32 dir,
					 struct point_opts *o)
{
	struct vakt_ct_val *v;
	struct vakt_verdict vd;
	struct vakt_flow f = {};
	__u64 now = ct_now();
	__u32 reason, gen;

	p->k.scope = scope;
	p->k.dir = (__u8)dir;
	p->k.pad = 0;

	if (p->frag == PF_LATER)
		return frag_follow(p, now);
	gen = cur_gen();
	/* A new flow's packet would pay a second hash lookup for the same miss. */
	v = o->ct_absent ? 0 : bpf_map_lookup_elem(&ct, &p->k);
	/*
	 * The entry was admitted for another endpoint that had this address at
	 * this point (the record changed since, so the generation moved): it
	 * says nothing about this one, which decides as for a new flow.
	 */
	if (v && v->ep_id != ep->ep_id && !(v->flags & VAKT_CTF_DEFER)) {
		ct_delete_flow(&p->k, v);
		v = 0;
	}
	if (v && !ct_expired(v, p->k.proto, now)) {
		/*
		 * A deferral marker only means something to from_pod. Where the
		 * deferred check runs and sees the same tuple (no NAT on the way),
		 * the admission below overwrites it with the real entry.
		 */
		if (v->flags & VAKT_CTF_DEFER) {
			if (o->defer && v->gen == gen && v->ep_id == ep->ep_id) {
				ct_touch(v, now, bpf_jiffies64());
				frag_record(p, now, R_FRAG_DEFER);
				return R_DEFER;
			}
		} else if (!ct_advance(&p->k, v, p)) {
			if (v->gen != gen) {
				if (!ct_recheck(ep, self, &p->k, v, dir)) {
					ct_delete_flow(&p->k, v);
					return VAKT_R_REVOKED;
				}
				v->gen = gen;
				/* a vouch of another generation says nothing (vouch_gen already tells) */
				v->vouch = 0;
				/* from_pod: replies name the client only while it admits the flow */
				if (o->defer && v->peer_ep && !client_admits(p, v->peer_ep))
					ct_set_peer(&p->k, v, 0);
				/* to_pod: the client's check passed again, its replies name it again */
				if (o->peer_ep && v->peer_ep != o->peer_ep)
					ct_set_peer(&p->k, v, o->peer_ep);
			}
			ct_touch(v, now, bpf_jiffies64());
			o->out_peer = v->peer_ep;
			reason = (v->flags & VAKT_CTF_REPLY) ? VAKT_R_REPLY : VAKT_R_ESTABLISHED;
			frag_record(p, now, VAKT_R_FRAGMENT);
			return reason;
		}
	}

	/* An ICMP error about a packet this point has seen go the other way. */
	if (p->icmp == PI_ERROR) {
		p->inner.scope = scope;
		p->inner.dir = (__u8)(dir ^ 1);
		p->inner.pad = 0;
		if (bpf_map_lookup_elem(&ct, &p->inner))
			return VAKT_R_RELATED;
	}
	/* A pod failed closed takes nothing, not even replies: vakt_verdict() says so. */
	if (o->reply_ok && !(ep->flags & VAKT_EPF_FAIL_CLOSED))
		return VAKT_R_REPLY;

	f.peer = *remote_of(&p->k);
	if (o->defer && ep->policy[VAKT_DIR_EGRESS] && !(ep->flags & VAKT_EPF_FAIL_CLOSED) &&
	    !vakt_addr_eq(&f.peer, self) && !bpf_map_lookup_elem(&ipcache, &f.peer)) {
		struct vakt_ct_val dv = {
			.last_ns = now,
			.last_jiffies = (__u32)bpf_jiffies64(),
			.gen = gen,
			.state = VAKT_CT_EST,
			.flags = VAKT_CTF_DEFER,
			.ep_id = ep->ep_id,
		};

		/* Best effort: without the entry the next packet decides again. */
		ct_put(&p->k, v, &dv);
		frag_record(p, now, R_FRAG_DEFER);
		return R_DEFER;
	}

	f.proto = p->k.proto;
	f.dir = (__u8)dir;
	f.dport = p->vport;
	if (!vakt_verdict(0, ep, self, &f, &vd))
		return vd.reason;
	{
		struct ct_admit a = {
			.gen = gen,
			.rule = vd.rule,
			.ep_id = ep->ep_id,
			.peer_ep = o->peer_ep,
			.reason = (__u8)vd.reason,
			.node = o->node,
		};

		if (ct_create(&p->k, v, p, now, &a))
			return VAKT_R_CT_FULL;
	}
	frag_record(p, now, VAKT_R_FRAGMENT);
	return vd.reason;
}

static __always_inline int finish(struct __sk_buff *skb, const struct pkt *p, __u32 ep_id,
				  __u32 dir, __u32 reason)
{
	count(ep_id, dir, reason, skb->len);
	if (!vakt_reason_is_drop(reason))
		return VAKT_TC_PASS;
	drop_event(skb, &p->k, ep_id, dir, reason);
	return VAKT_TC_DROP;
}

/*
 * A packet conntrack let through (ESTABLISHED or REPLY, never a drop): the
 * established paths use this, not finish(), so that the drop-event code
 * stays out of the programs' hot JITed image (docs/datapath.md,
 * Performance, "Where the code lands").
 */
static __always_inline int pass(const struct __sk_buff *skb, __u32 ep_id, __u32 dir,
				__u32 reason)
{
	count(ep_id, dir, reason, skb->len);
	return VAKT_TC_PASS;
}

/* Packets the parser could not take as pod IP traffic. */
static __always_inline int finish_unparsed(struct __sk_buff *skb, struct pkt *p, int kind,
					   __u32 dir)
{
	if (kind == PK_BAD_L3)
		return finish(skb, p, 0, dir, VAKT_R_MALFORMED);
	return finish(skb, p, 0, dir, VAKT_R_CONTROL);
}

/*
 * The egress check of pod src_ep deferred by vakt_from_pod, done where the
 * packet leaves (after DNAT and masquerade): vakt_to_pod of a local backend,
 * vakt_node_egress (node set) off the node. Counted under the source pod.
 * A global function (as vakt_from_pod_full()): the verifier checks it once
 * for both callers instead of inside each, which kept vakt_to_pod within
 * its verifier budget; the price is parsing the packet again, on the full
 * path only.
 */
__noinline int vakt_deferred_egress(struct __sk_buff *skb, __u32 src_ep, int node)
{
	struct point_opts o = { .node = (__u8)(node != 0) };
	const struct vakt_ep_val *sep;
	struct pkt pk = {}, *p = &pk;
	struct vakt_addr *self;
	__u32 reason;
	int kind;

	kind = parse(skb, p);
	if (kind == PK_BAD_L3 || kind == PK_BAD_L4)
		return finish(skb, p, src_ep, VAKT_DIR_EGRESS, VAKT_R_MALFORMED);
	if (kind != PK_IP)
		return VAKT_TC_PASS;
	sep = ep_of_id(src_ep, &self);
	/* The pod went away while its packet was in flight. */
	if (!sep)
		return finish(skb, p, self ? src_ep : 0, VAKT_DIR_EGRESS, VAKT_R_FAIL_CLOSED);
	reason = point_check(p, sep, self, VAKT_CT_SCOPE_EP(src_ep), VAKT_DIR_EGRESS, &o);
	if (reason == R_DEFER)
		reason = VAKT_R_FAIL_CLOSED;
	return finish(skb, p, src_ep, VAKT_DIR_EGRESS, reason);
}

/*
 * Anti-spoofing: a local endpoint's address is bound to the host side of its
 * veth once the agent knows it (ep_ifindex); a packet with that source that
 * enters through any other interface is not the pod's, and must not get its
 * egress policy nor its identity at the receiver. Unbound addresses (binding
 * not known yet) pass: binding happens when the agent sees the pod routed via
 * its veth. Counted under ep_id 0: the impersonated pod did not send it.
 */
static __always_inline int spoofed(const struct __sk_buff *skb, const struct vakt_addr *src)
{
	__u32 *bound = bpf_map_lookup_elem(&ep_ifindex, src);

	return bound && *bound && *bound != skb->ifindex;
}

/*
 * ct_advance() for ct_fast(), in two parts: what nearly every established
 * packet needs (TCP without SYN, FIN or RST moves NEW to EST at most; UDP
 * and ICMP move nothing) inline, and the rest (handshakes, closes, SCTP)
 * out of line. Inline, the closing code's twin-entry lookups took most of
 * the programs' JITed size (docs/datapath.md, Performance, "Where the code
 * lands"). ct_moves() returns 1 if ct_advance_out() must see the packet.
 */
static __always_inline int ct_moves(struct vakt_ct_val *v, const struct pkt *p)
{
	if (p->k.proto == IPPROTO_SCTP)
		return 1;
	if (p->k.proto != IPPROTO_TCP)
		return 0;
	if (tcp_moves_state(p))
		return 1;
	if (v->state == VAKT_CT_NEW)
		v->state = VAKT_CT_EST;
	return 0;
}

static __noinline int ct_advance_out(const struct vakt_ct_key *k, struct vakt_ct_val *v,
				     const struct pkt *p)
{
	return ct_advance(k, v, p);
}

/*
 * ct_fast - an established packet at a veth point, decided by its conntrack
 * entry at (skb->ifindex, dir) before any other lookup. Taken only where
 * point_check() would decide the same from the same entry: a packet that is
 * no fragment nor link control, an unexpired entry whose generation is the
 * current one (so the endpoint record and the address binding that admitted
 * it are unchanged: any change bumps the generation), whose state takes the
 * packet. Returns the reason (ESTABLISHED, REPLY, or R_DEFER for a deferral
 * marker when defer is set) with *out the entry, or -1: the full path decides
 * (CT_FAST_NONE: because there is no entry at all). ct_fast_at() takes the
 * scope: the deferred check of a sender at the receiver's veth.
 */
#define CT_FAST_NONE (-2)
/* What the caller of a *_full() path knows of the tuple's entry at this point. */
#define CT_UNTRIED 0  /* not looked up: the fast parser did not take the packet */
#define CT_DECLINED 1 /* an entry is there, but ct_fast() left the packet to the full path */
#define CT_ABSENT 2   /* ct_fast() found no entry */
/* What a ct_fast() result that did not decide the packet says (above). */
#define CT_TRIED(r) ((r) == CT_FAST_NONE ? CT_ABSENT : CT_DECLINED)
static __always_inline int ct_fast_at(struct pkt *p, __u32 scope, __u32 dir, int defer,
				      struct vakt_ct_val **out)
{
	struct vakt_ct_val *v;
	__u64 now, j;

	if (p->frag != PF_NONE || p->icmp == PI_CONTROL)
		return -1;
	p->k.scope = scope;
	p->k.dir = (__u8)dir;
	p->k.pad = 0;
	v = bpf_map_lookup_elem(&ct, &p->k);
	if (!v)
		return CT_FAST_NONE;
	if (v->gen != cur_gen())
		return -1;
	j = bpf_jiffies64();
	if (!ct_live(v, p->k.proto, j, &now))
		return -1;
	if (v->flags & VAKT_CTF_DEFER) {
		if (!defer)
			return -1;
		ct_touch(v, now, j);
		*out = v;
		return R_DEFER;
	}
	if (ct_moves(v, p) && ct_advance_out(&p->k, v, p))
		return -1;
	ct_touch(v, now, j);
	*out = v;
	return (v->flags & VAKT_CTF_REPLY) ? VAKT_R_REPLY : VAKT_R_ESTABLISHED;
}

static __always_inline int ct_fast(const struct __sk_buff *skb, struct pkt *p, __u32 dir,
				   int defer, struct vakt_ct_val **out)
{
	return ct_fast_at(p, skb->ifindex, dir, defer, out);
}

/* from_pod: the egress check of ep_id moves to where the packet leaves. */
static __always_inline int defer_out(struct __sk_buff *skb, const struct pkt *p, __u32 ep_id)
{
	struct vakt_addr *slot = bpf_map_lookup_elem(&ep_addr, &ep_id);

	/* Written only when it changes: the slot is read on other CPUs. */
	if (slot && !vakt_addr_eq(slot, &p->k.saddr))
		*slot = p->k.saddr;
	mark_set(skb, VAKT_MARK_DEFER | (ep_id & VAKT_MARK_EP_MASK));
	return VAKT_TC_PASS;
}

/* from_pod: a forwarded packet; replies of NATed flows name their pod in the mark. */
static __always_inline int from_pod_pass(struct __sk_buff *skb, const struct pkt *p, __u32 ep_id,
					 __u32 peer_ep, __u32 reason)
{
	if (peer_ep)
		mark_set(skb, VAKT_MARK_REPLY | (peer_ep & VAKT_MARK_EP_MASK));
	return finish(skb, p, ep_id, VAKT_DIR_EGRESS, reason);
}

/*
 * Packets a receiver may take on a vouch (include/vakt/datapath.h,
 * "Vouching"): TCP and UDP only, and no TCP packet whose flags move the
 * receiver's entry (SYN, FIN, RST): those keep a lookup at both points.
 */
static __always_inline int vouchable(const struct pkt *p)
{
	if (p->k.proto == IPPROTO_TCP)
		return !tcp_moves_state(p);
	return p->k.proto == IPPROTO_UDP;
}

/*
 * from_pod: a packet passed on its current conntrack entry v (ct_fast()).
 * A flow without NAT carries the receiver's vouch while v holds one of this
 * generation and tick, and the packet is counted for the receiver here (its
 * vakt_to_pod then only checks the mark); without one it asks for one.
 */
static __always_inline int from_pod_est(struct __sk_buff *skb, const struct pkt *p,
					const struct vakt_ct_val *v, __u32 reason)
{
	__u32 rcv = v->vouch & VAKT_MARK_EP_MASK, rr;

	if (v->peer_ep)
		mark_set(skb, VAKT_MARK_REPLY | (v->peer_ep & VAKT_MARK_EP_MASK));
	else if (vouchable(p)) {
		if (rcv && v->vouch_gen == (__u16)v->gen &&
		    v->vouch_tick == VAKT_VOUCH_TICK(v->last_jiffies)) {
			mark_set(skb, VAKT_MARK_VOUCH | rcv);
			rr = (v->vouch & VAKT_CT_VOUCH_REPLY) ? VAKT_R_REPLY : VAKT_R_ESTABLISHED;
			count(rcv, VAKT_DIR_INGRESS, rr, skb->len);
		} else {
			mark_set(skb, v->ep_id & VAKT_MARK_EP_MASK);
		}
	}
	return pass(skb, v->ep_id, VAKT_DIR_EGRESS, reason);
}

/*
 * The full paths of the veth programs, for every packet ct_fast() did not
 * decide. Out of line, so that vakt_from_pod and vakt_to_pod proper are the
 * established path alone, a short stretch of JITed code: under live traffic
 * the programs run with caches cooled by the rest of the stack, and the
 * shorter hot path measured 0.93x (from_pod) and 0.97x (to_pod) ns per run
 * (docs/datapath.md, Performance). Global, so the verifier checks each once,
 * on its own, instead of once per caller state. The packet is parsed again:
 * a global function cannot take the caller's stack, and a packet that gets
 * here is mostly a new flow, which costs far more than a parse. ct_tried
 * (CT_UNTRIED, CT_DECLINED, CT_ABSENT): what the caller's ct_fast() found,
 * so that neither ct_fast() nor point_check() looks up the tuple again.
 */
__noinline int vakt_from_pod_full(struct __sk_buff *skb, int ct_tried)
{
	struct point_opts o = { .defer = 1 };
	const struct vakt_ep_val *ep;
	struct vakt_ct_val *v = 0;
	struct pkt pk = {}, *p = &pk;
	__u32 reason, ep_id;
	int kind, r;

	kind = parse(skb, p);
	if (ct_tried == CT_UNTRIED && kind == PK_IP) {
		r = ct_fast(skb, p, VAKT_DIR_EGRESS, 1, &v);
		if (r == R_DEFER && v)
			return defer_out(skb, p, v->ep_id);
		if (r >= 0 && v)
			return from_pod_est(skb, p, v, (__u32)r);
		ct_tried = CT_TRIED(r);
	}
	o.ct_absent = ct_tried == CT_ABSENT;
	if (kind != PK_IP && kind != PK_BAD_L4)
		return finish_unparsed(skb, p, kind, VAKT_DIR_EGRESS);
	/* Neighbour discovery mostly uses link-local addresses: no endpoint needed. */
	if (kind == PK_IP && p->icmp == PI_CONTROL)
		return finish(skb, p, 0, VAKT_DIR_EGRESS, VAKT_R_CONTROL);
	ep = bpf_map_lookup_elem(&endpoints, &p->k.saddr);
	if (!ep)
		return finish(skb, p, 0, VAKT_DIR_EGRESS, VAKT_R_NO_ENDPOINT);
	/* Another local pod's address, sent from a veth that is not that pod's. */
	if (spoofed(skb, &p->k.saddr))
		return finish(skb, p, 0, VAKT_DIR_EGRESS, VAKT_R_SPOOFED);
	ep_id = ep->ep_id;
	if (kind == PK_BAD_L4)
		return finish(skb, p, ep_id, VAKT_DIR_EGRESS, VAKT_R_MALFORMED);

	reason = point_check(p, ep, &p->k.saddr, skb->ifindex, VAKT_DIR_EGRESS, &o);
	if (reason == R_DEFER)
		return defer_out(skb, p, ep_id);
	return from_pod_pass(skb, p, ep_id, o.out_peer, reason);
}

SEC("tc")
int vakt_from_pod(struct __sk_buff *skb)
{
	struct vakt_ct_val *v = 0;
	struct pkt p = {};
	int r;

	/* Our bits must only ever say what this program decided. */
	mark_set(skb, 0);
	if (!parse_fast(skb, &p))
		return vakt_from_pod_full(skb, CT_UNTRIED);
	r = ct_fast(skb, &p, VAKT_DIR_EGRESS, 1, &v);
	if (r == R_DEFER && v)
		return defer_out(skb, &p, v->ep_id);
	if (r >= 0 && v)
		return from_pod_est(skb, &p, v, (__u32)r);
	return vakt_from_pod_full(skb, CT_TRIED(r));
}

/* See vakt_from_pod_full(). vakt_to_pod has cleared any VOUCH mark by now. */
__noinline int vakt_to_pod_full(struct __sk_buff *skb, int ct_tried)
{
	struct point_opts o = {};
	const struct vakt_ep_val *ep;
	struct vakt_ct_val *v = 0;
	struct pkt pk = {}, *p = &pk;
	__u32 reason, ep_id, m = mark_get(skb);
	int kind, r;

	kind = parse(skb, p);
	if (ct_tried == CT_UNTRIED && kind == PK_IP && !(m & VAKT_MARK_DEFER)) {
		r = ct_fast(skb, p, VAKT_DIR_INGRESS, 0, &v);
		if (r >= 0 && v)
			return pass(skb, v->ep_id, VAKT_DIR_INGRESS, (__u32)r);
		ct_tried = CT_TRIED(r);
	}
	o.ct_absent = ct_tried == CT_ABSENT;
	if (kind != PK_IP && kind != PK_BAD_L4)
		return finish_unparsed(skb, p, kind, VAKT_DIR_INGRESS);
	if (kind == PK_IP && p->icmp == PI_CONTROL)
		return finish(skb, p, 0, VAKT_DIR_INGRESS, VAKT_R_CONTROL);
	if (kind == PK_BAD_L4) {
		ep = bpf_map_lookup_elem(&endpoints, &p->k.daddr);
		if (!ep)
			return finish(skb, p, 0, VAKT_DIR_INGRESS, VAKT_R_NO_ENDPOINT);
		return finish(skb, p, ep->ep_id, VAKT_DIR_INGRESS, VAKT_R_MALFORMED);
	}
	/* The sender's deferred check passed (to_pod_slow()): replies name it. */
	if (m & VAKT_MARK_DEFER)
		o.peer_ep = m & VAKT_MARK_EP_MASK;
	ep = bpf_map_lookup_elem(&endpoints, &p->k.daddr);
	if (!ep)
		return finish(skb, p, 0, VAKT_DIR_INGRESS, VAKT_R_NO_ENDPOINT);
	ep_id = ep->ep_id;
	o.reply_ok = (m & VAKT_MARK_REPLY) && (m & VAKT_MARK_EP_MASK) == ep_id;
	reason = point_check(p, ep, &p->k.daddr, skb->ifindex, VAKT_DIR_INGRESS, &o);
	return finish(skb, p, ep_id, VAKT_DIR_INGRESS, reason);
}

/*
 * vakt_to_pod's way into the full path. The sender's deferred egress check
 * comes first, whoever receives: a destination without an endpoint record
 * (a pod vaktd does not know yet) is no reason to skip it. Called from here
 * rather than from vakt_to_pod_full(), so that the two global functions'
 * stack frames are never nested (BPF's 512-byte combined stack limit).
 */
static __always_inline int to_pod_slow(struct __sk_buff *skb, __u32 m, int ct_tried)
{
	if ((m & VAKT_MARK_DEFER) &&
	    vakt_deferred_egress(skb, m & VAKT_MARK_EP_MASK, 0) == VAKT_TC_DROP)
		return VAKT_TC_DROP;
	return vakt_to_pod_full(skb, ct_tried);
}

/*
 * to_pod: the deferred entry of sender src (a flow through a Service) takes
 * the packet: returns its reason, or -1. Out of line: its own conntrack
 * step would double the size of vakt_to_pod's image, and only Service
 * flows need it.
 */
static __noinline int deferred_fast(struct pkt *p, __u32 src)
{
	struct vakt_ct_val *dv = 0;
	int rd = ct_fast_at(p, VAKT_CT_SCOPE_EP(src), VAKT_DIR_EGRESS, 0, &dv);

	return rd < 0 || !dv || dv->ep_id != src ? -1 : rd;
}

/*
 * A VOUCH mark for endpoint ep counts only on the veth the vouch was given
 * for, under the generation it was given in (vouch_back()).
 */
static __always_inline int vouched_here(const struct __sk_buff *skb, __u32 ep)
{
	struct vakt_ep_veth *w = bpf_map_lookup_elem(&ep_veth, &ep);

	return w && w->ifindex == skb->ifindex && w->gen == cur_gen();
}

/*
 * to_pod: this pod's current entry rv passed a packet that sender src's
 * vakt_from_pod passed on its own entry and marked ASK. Write the vouch
 * into that entry (same tuple, the sender's veth, EGRESS), so that the
 * flow's next packets skip the lookup here. Only between pods whose
 * addresses are bound to their veths, on the receiver's own veth, for an
 * entry of src admitted under the same generation. Out of line: it runs
 * once per flow, direction and tick.
 */
static __noinline void vouch_back(const struct __sk_buff *skb, const struct pkt *p,
				  const struct vakt_ct_val *rv, __u32 src)
{
	struct vakt_ct_key k = p->k;
	struct vakt_ct_val *sv;
	struct vakt_ep_veth *w;
	__u32 rep = rv->ep_id, gen = rv->gen, *bound;

	bound = bpf_map_lookup_elem(&ep_ifindex, &k.daddr);
	if (!bound || *bound != skb->ifindex)
		return;
	bound = bpf_map_lookup_elem(&ep_ifindex, &k.saddr);
	if (!bound || !*bound)
		return;
	k.scope = *bound;
	k.dir = VAKT_DIR_EGRESS;
	sv = bpf_map_lookup_elem(&ct, &k);
	if (!sv || sv->ep_id != src || sv->gen != gen || sv->peer_ep ||
	    (sv->flags & (VAKT_CTF_DEFER | VAKT_CTF_NODE)))
		return;
	w = bpf_map_lookup_elem(&ep_veth, &rep);
	if (!w)
		return;
	if (w->ifindex != skb->ifindex || w->gen != gen) {
		w->ifindex = skb->ifindex;
		w->gen = gen;
	}
	sv->vouch_gen = (__u16)gen;
	sv->vouch_tick = VAKT_VOUCH_TICK(rv->last_jiffies);
	sv->vouch = (__u16)(rep | ((rv->flags & VAKT_CTF_REPLY) ? VAKT_CT_VOUCH_REPLY : 0));
}

SEC("tc")
int vakt_to_pod(struct __sk_buff *skb)
{
	struct vakt_ct_val *v = 0;
	const struct vakt_ep_val *ep;
	struct pkt p = {};
	__u32 m = mark_get(skb), src;
	int r, rd = 0;

	/* Counted by the sender's vakt_from_pod, which found the vouch. */
	if ((m & VAKT_MARK_STATE) == VAKT_MARK_VOUCH) {
		if (vouched_here(skb, m & VAKT_MARK_EP_MASK))
			return VAKT_TC_PASS;
		/* Not for this veth, or stale: decided as if unmarked, full path included. */
		mark_set(skb, 0);
		m = 0;
	}
	src = m & VAKT_MARK_EP_MASK;
	if (!parse_fast(skb, &p))
		return to_pod_slow(skb, m, CT_UNTRIED);
	/* Through a Service: the sender's deferred egress check rides on this packet. */
	if (m & VAKT_MARK_DEFER) {
		rd = deferred_fast(&p, src);
		if (rd < 0)
			return to_pod_slow(skb, m, CT_UNTRIED);
	}
	r = ct_fast(skb, &p, VAKT_DIR_INGRESS, 0, &v);
	if (r >= 0 && v) {
		if (m & VAKT_MARK_DEFER)
			count(src, VAKT_DIR_EGRESS, (__u32)rd, skb->len);
		else if (!(m & VAKT_MARK_STATE) && src && vouchable(&p))
			vouch_back(skb, &p, v, src);
		return pass(skb, v->ep_id, VAKT_DIR_INGRESS, (__u32)r);
	}
	/*
	 * The reply of a Service flow, which this pod's conntrack knows under
	 * the ClusterIP: with no entry for the tuple at all, point_check()
	 * would accept it on the REPLY mark naming this endpoint, and so do we.
	 */
	if (r == CT_FAST_NONE && (m & VAKT_MARK_STATE) == VAKT_MARK_REPLY) {
		ep = bpf_map_lookup_elem(&endpoints, &p.k.daddr);
		if (ep && ep->ep_id == src && !(ep->flags & VAKT_EPF_FAIL_CLOSED))
			return pass(skb, src, VAKT_DIR_INGRESS, VAKT_R_REPLY);
	}
	return to_pod_slow(skb, m, CT_TRIED(r));
}

SEC("tc")
int vakt_node_egress(struct __sk_buff *skb)
{
	__u32 m = mark_get(skb);

	/* Everything but deferred pod egress was decided at the pod's veth. */
	if ((m & VAKT_MARK_STATE) != VAKT_MARK_DEFER)
		return VAKT_TC_PASS;
	return vakt_deferred_egress(skb, m & VAKT_MARK_EP_MASK, 1);
}

SEC("tc")
int vakt_node_ingress(struct __sk_buff *skb)
{
	const struct vakt_ep_val *ep;
	struct vakt_addr *self;
	struct vakt_ct_val *v;
	struct pkt p = {};
	__u64 now, j;
	__u32 peer;

	mark_set(skb, 0);
	if (parse(skb, &p) != PK_IP || p.frag == PF_LATER)
		return VAKT_TC_PASS;
	p.k.scope = 0;
	p.k.dir = VAKT_CT_DIR_NODE;
	v = bpf_map_lookup_elem(&ct, &p.k);
	j = bpf_jiffies64();
	if (!v || !ct_live(v, p.k.proto, j, &now))
		return VAKT_TC_PASS;
	peer = v->peer_ep;
	if (v->gen != cur_gen()) {
		ep = ep_of_id(peer, &self);
		/* The reply of a flow the pod's egress admitted: re-run that egress. */
		p.k.dir = VAKT_DIR_INGRESS;
		if (!ep || !ct_recheck(ep, self, &p.k, v, VAKT_DIR_INGRESS)) {
			p.k.dir = VAKT_CT_DIR_NODE;
			ct_delete_flow(&p.k, v);
			return VAKT_TC_PASS;
		}
		v->gen = cur_gen();
	}
	p.k.dir = VAKT_CT_DIR_NODE;
	ct_advance(&p.k, v, &p);
	ct_touch(v, now, j);
	mark_set(skb, VAKT_MARK_REPLY | (peer & VAKT_MARK_EP_MASK));
	return VAKT_TC_PASS;
}

char LICENSE[] SEC("license") = "GPL";
