/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vakt/datapath.h - what the agent, the CLI and the tests need to load,
 * attach and read the TC datapath (bpf/vakt.bpf.c, skeleton build/vakt.skel.h,
 * struct vakt_bpf). Included by BPF C and by userspace: fixed-width types,
 * explicit padding. docs/datapath.md explains the model behind each item.
 *
 * Programs and where the agent attaches them (all SEC("tc"), direct action):
 *
 *   vakt_from_pod     host side of every pod veth, TC ingress (packets the
 *                     pod sends: the pod's EGRESS policy)
 *   vakt_to_pod       host side of every pod veth, TC egress (packets to the
 *                     pod: its INGRESS policy)
 *   vakt_node_egress  TC egress of every device that leaves the node (uplink,
 *                     tunnel/overlay devices such as vxlan, geneve, wireguard):
 *                     the egress check of pod traffic toward addresses that are
 *                     not known pods (Service ClusterIPs, the outside world),
 *                     done after kube-proxy's DNAT and after MASQUERADE
 *   vakt_node_ingress TC ingress of the same devices: marks replies of flows
 *                     admitted by vakt_node_egress so the pod's vakt_to_pod
 *                     lets them in after the kernel reverses the NAT
 *
 * Return values: VAKT_TC_PASS lets the next program on the hook run (tcx:
 * TCX_NEXT; clsact: TC_ACT_UNSPEC), VAKT_TC_DROP drops (TC_ACT_SHOT ==
 * TCX_DROP). The programs never redirect and never touch other programs.
 */
#ifndef VAKT_DATAPATH_H
#define VAKT_DATAPATH_H

#include <linux/types.h>

#include "vakt/maps.h"

#define VAKT_PROG_FROM_POD "vakt_from_pod"
#define VAKT_PROG_TO_POD "vakt_to_pod"
#define VAKT_PROG_NODE_EGRESS "vakt_node_egress"
#define VAKT_PROG_NODE_INGRESS "vakt_node_ingress"

#define VAKT_TC_PASS (-1) /* TC_ACT_UNSPEC / TCX_NEXT */
#define VAKT_TC_DROP 2    /* TC_ACT_SHOT / TCX_DROP */

/*
 * skb->mark bits carried across the node's network stack (set in
 * vakt_from_pod, vakt_node_ingress; read in vakt_to_pod, vakt_node_egress).
 * The agent chooses the mask (rodata cfg_mark_mask, cfg_mark_shift); the
 * field is VAKT_MARK_BITS wide and sits at the mask's lowest set bit:
 *
 *   bits 0..9   ep_id of the local pod the mark is about
 *   bits 10..11 what the mark says about ep_id (VAKT_MARK_STATE):
 *     0       ASK (ep_id set): sender ep_id's vakt_from_pod passed the packet
 *             on an established entry that holds no current vouch; the
 *             receiver's vakt_to_pod may write one (see "Vouching" below)
 *     DEFER   the egress check of ep_id is still to be done, at the point
 *             where the packet leaves (after DNAT and masquerade)
 *     REPLY   reply of a flow that ep_id's egress admitted through NAT
 *     VOUCH   (DEFER and REPLY both set) receiver ep_id's ingress entry for
 *             this flow was current at the current generation: its
 *             vakt_to_pod passes the packet without a lookup, if and only if
 *             it runs on the veth that vouch was given for (map ep_veth)
 *
 * The default mask avoids kube-proxy's 0x4000 (masquerade) and 0x8000 (drop)
 * bits and Cilium's and Calico's low bits. Bits outside the mask are kept.
 */
#define VAKT_MARK_BITS 12
#define VAKT_MARK_EP_MASK 0x3ffU
#define VAKT_MARK_DEFER (1U << 10)
#define VAKT_MARK_REPLY (1U << 11)
#define VAKT_MARK_STATE (VAKT_MARK_DEFER | VAKT_MARK_REPLY)
#define VAKT_MARK_VOUCH VAKT_MARK_STATE
#define VAKT_MARK_DEFAULT_MASK 0x0fff0000U
#define VAKT_MARK_DEFAULT_SHIFT 16

/*
 * vakt_mark_config - validate a mark mask and compute its shift. The mask
 * must be VAKT_MARK_BITS contiguous bits. Returns 0 and sets *shift, or -1.
 */
static inline int vakt_mark_config(__u32 mask, __u32 *shift)
{
	__u32 s;

	if (!mask)
		return -1;
	s = (__u32)__builtin_ctz(mask);
	if (s + VAKT_MARK_BITS > 32 || (mask >> s) != ((1U << VAKT_MARK_BITS) - 1))
		return -1;
	*shift = s;
	return 0;
}

/*
 * rodata configuration (const volatile globals, set by the agent between
 * vakt_bpf__open() and vakt_bpf__load(); skel->rodata->NAME):
 *
 *   cfg_mark_mask           __u32, default VAKT_MARK_DEFAULT_MASK
 *   cfg_mark_shift          __u32, default VAKT_MARK_DEFAULT_SHIFT
 *   cfg_event_rate_per_sec  __u32, drop events per second per CPU, default
 *                           1000; the burst is one second's worth; 0 = none
 */
#define VAKT_EVENT_RATE_DEFAULT 1000

/*
 * Conntrack (map `ct`, LRU hash, VAKT_CT_MAX entries; written by the datapath
 * only). An entry belongs to one enforcement point, named by the key's scope
 * and dir, plus the 5-tuple as seen at that point. A flow admitted at a point
 * gets two entries: the forward tuple at (scope, dir) and the reverse tuple
 * at (scope, !dir), which marks replies. Another point never matches, so an
 * allowed egress at the sender never skips the receiver's ingress.
 *
 * Scopes:
 *   ifindex of the pod's veth (host side): the points of vakt_from_pod
 *     (EGRESS) and vakt_to_pod (INGRESS). Known before any lookup, so an
 *     established packet costs one hash lookup (the conntrack one): the
 *     value names the endpoint (ep_id) for counters and marks. A pod's
 *     address arriving through another veth never matches its entries
 *     (anti-spoofing holds without a lookup); a changed endpoint record or
 *     binding bumps state.gen, and the re-check finds the endpoint again.
 *   VAKT_CT_SCOPE_EP(ep_id): the deferred egress check of pod ep_id, done
 *     where the packet leaves (vakt_to_pod of the backend, vakt_node_egress),
 *     on the post-NAT tuple. Scoped by endpoint, not by interface: a
 *     masqueraded tuple reused by another pod after the first one's flow
 *     ended must not inherit the first pod's admission.
 *   0 with dir VAKT_CT_DIR_NODE: the reply tuples, as seen on the node's
 *     uplink, of flows admitted by vakt_node_egress (post-NAT tuple); the
 *     value's peer_ep names the pod whose egress admitted them.
 * Interface indexes are positive ints, so the two kinds never overlap.
 *
 * Ports: TCP, UDP, SCTP ports; ICMP/ICMPv6 echo: request sport = id,
 * dport = 0; reply sport = 0, dport = id (so the reverse of a request is its
 * reply); other protocols 0.
 */
#define VAKT_CT_DIR_NODE 2
#define VAKT_CT_SCOPE_EP(ep_id) (0x80000000U | (ep_id))

struct vakt_ct_key {
	struct vakt_addr saddr;
	struct vakt_addr daddr;
	__be16 sport;
	__be16 dport;
	__u32 scope; /* see above: veth ifindex, VAKT_CT_SCOPE_EP(ep_id), or 0 */
	__u8 proto;
	__u8 dir; /* VAKT_DIR_* or VAKT_CT_DIR_NODE */
	__u16 pad;
};

/* Entry kinds and TCP/SCTP states. */
#define VAKT_CTF_REPLY 0x01 /* reverse tuple of an admitted flow */
#define VAKT_CTF_DEFER 0x02 /* from_pod: egress deferred to the leaving point */
#define VAKT_CTF_FIN 0x04   /* FIN (SCTP SHUTDOWN) seen in this entry's direction */
#define VAKT_CTF_NODE 0x08  /* admitted by vakt_node_egress: the reply entry is a node one */

enum vakt_ct_state {
	VAKT_CT_NEW = 0,     /* TCP SYN / SCTP INIT seen, no answer yet */
	VAKT_CT_EST = 1,     /* traffic past the handshake; UDP, ICMP, others */
	VAKT_CT_CLOSING = 2, /* both FINs, RST, SCTP ABORT or SHUTDOWN COMPLETE */
};

struct vakt_ct_val {
	__u64 last_ns; /* CLOCK_MONOTONIC ns (tick granular) of the last packet, bpf/ct.h ct_now() */
	__u32 last_jiffies; /* low 32 bits of jiffies when last_ns was stored; another
			     * value makes the next packet read the clock (bpf/ct.h ct_live()) */
	__u32 gen;     /* low 32 bits of state.gen the flow was admitted or last re-checked under */
	__u32 rule;    /* rule reference of the admitting policy entry */
	__u16 peer_ep; /* local endpoint at the other end of a NATed flow, 0 if none */
	__u16 ep_id;   /* endpoint whose policy admitted the entry (0: node entries) */
	__u16 vouch;   /* vakt_from_pod entries: receiver ep id | VAKT_CT_VOUCH_REPLY, 0: none */
	__u16 vouch_gen; /* low 16 bits of the generation the vouch was given under */
	__u8 state;    /* enum vakt_ct_state */
	__u8 flags;    /* VAKT_CTF_* */
	__u8 reason;   /* reason of the admission (POLICY_ALLOW, NOT_ISOLATED, ...) */
	__u8 vouch_tick; /* VAKT_VOUCH_TICK(jiffies) when the vouch was given */
};
/*
 * 32 bytes: with the 44-byte key (48 aligned) and the kernel's 48-byte LRU
 * element header, an entry is 128 bytes, two cache lines, which is what an
 * established packet touches (a 136-byte entry straddles three). gen keeps
 * 32 bits: equal generations 2^32 bumps apart are not a concern; ep ids fit
 * 16 bits (VAKT_MAX_ENDPOINTS). last_jiffies keeps 32 bits: it is only ever
 * compared for equality with the current tick.
 */
_Static_assert(sizeof(struct vakt_ct_val) == 32, "a conntrack entry must stay two cache lines");
_Static_assert(VAKT_MAX_ENDPOINTS <= 0x10000, "ep ids are 16 bits in conntrack values");

/*
 * Vouching: one conntrack lookup per packet between two local pods instead
 * of two (docs/datapath.md, "Vouching"). The receiver's vakt_to_pod, when
 * its own entry for a flow is current and the packet carries the sender's
 * ASK mark, writes into the sender's vakt_from_pod entry of the same tuple
 * that the receiver's ingress holds (vouch = receiver | REPLY bit if its
 * entry is a reply entry, vouch_gen, vouch_tick). The sender's vakt_from_pod
 * then marks the flow's packets VOUCH | receiver and counts them for the
 * receiver, while the vouch is from the current generation and the current
 * VAKT_VOUCH_TICK (so the receiver's entry sees a packet, and its idle timer
 * a refresh, at least once a tick of 256 jiffies, 0.256-2.56 s). Packets
 * that change TCP state (SYN, FIN, RST) and protocols other than TCP and
 * UDP are never vouched for. Both pods' addresses must be bound to their
 * veths (ep_ifindex), and the receiver's binding is copied to ep_veth[ep]
 * with the generation: the mark is only honoured on that veth, at that
 * generation. The tick is 8 bits: a flow idle exactly 65536 jiffies (65.5 s
 * or more) finds its old vouch current again, which can only delay the
 * refresh of the receiver's entry by a tick (the generation must match all
 * the same; UDP and ICMP entries have expired at the sender by then).
 */
#define VAKT_CT_VOUCH_REPLY 0x8000
#define VAKT_VOUCH_TICK(jiffies) ((__u8)((jiffies) >> 8))

/* Map ep_veth (array, VAKT_MAX_ENDPOINTS; written by the datapath). */
struct vakt_ep_veth {
	__u32 ifindex; /* the pod's veth (host side), as its address binding said */
	__u32 gen;     /* low 32 bits of state.gen when written */
};

/* Timeouts in seconds, per state and protocol (idle time since last_ns). */
#define VAKT_CT_TIMEOUT_TCP_NEW 60
#define VAKT_CT_TIMEOUT_TCP_EST 21600
#define VAKT_CT_TIMEOUT_CLOSING 10
#define VAKT_CT_TIMEOUT_UDP 60
#define VAKT_CT_TIMEOUT_ICMP 30
#define VAKT_CT_TIMEOUT_OTHER 60

/*
 * Fragments (map `frags`, LRU hash): the verdict of a first fragment,
 * scoped like conntrack, so that later fragments (which carry no ports)
 * follow it. Only forwarded first fragments are recorded.
 */
#define VAKT_FRAGS_MAX 8192
#define VAKT_FRAG_TIMEOUT 30 /* seconds, as the kernel's ipfrag_time */

struct vakt_frag_key {
	struct vakt_addr saddr;
	struct vakt_addr daddr;
	__u32 id; /* IPv4 id (16 bits) or IPv6 fragment id */
	__u32 scope; /* as the conntrack key's */
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

struct vakt_frag_val {
	__u64 last_ns;
	__u8 reason; /* reason given to the first fragment */
	__u8 pad[7];
};

/*
 * ep_addr: array[VAKT_MAX_ENDPOINTS] of struct vakt_addr, written by
 * vakt_from_pod when it defers an egress check: ep_id -> the address the pod
 * used, so the leaving point finds the pod's endpoint record even after
 * masquerade rewrote the source.
 *
 * event_rl: per-CPU array[1] of struct vakt_event_rl, the token bucket of
 * the drop events and what it or a full ring buffer suppressed.
 */
struct vakt_event_rl {
	__u64 tokens;      /* scaled by 1e9 (token-nanoseconds) */
	__u64 last_ns;
	__u64 suppressed;  /* drops whose event the rate limit suppressed */
	__u64 ring_full;   /* events lost because the ring buffer was full */
};

#define VAKT_EVENTS_RING_BYTES (256 * 1024)

/*
 * ep_ifindex: hash, local pod address (struct vakt_addr) -> __u32 ifindex of
 * the host side of the pod's veth, written by the agent only
 * (vakt_dataplane_bind()), never by the compiler: it is a fact of the node's
 * links, not of the objects. vakt_from_pod drops a packet whose source is a
 * bound address with VAKT_R_SPOOFED unless it enters through that interface;
 * an address without a binding (not learned yet) is not checked. Checked on
 * the full path only: established packets find their conntrack entry only
 * at the veth that admitted them, and a new or moved binding bumps
 * state.gen so that earlier admissions are checked again. Room for every
 * address of every endpoint (dual stack).
 */
#define VAKT_EP_IFINDEX_MAX (VAKT_MAX_ENDPOINTS * 2)

/* Map names (pinned by name under the agent's bpffs directory). */
#define VAKT_MAP_IPCACHE "ipcache"
#define VAKT_MAP_ENDPOINTS "endpoints"
#define VAKT_MAP_CIDR "cidr"
#define VAKT_MAP_POLICY "policy"
#define VAKT_MAP_STATE "state"
#define VAKT_MAP_CT "ct"
#define VAKT_MAP_COUNTERS "counters"
#define VAKT_MAP_EVENTS "events"
#define VAKT_MAP_EP_META "ep_meta"
#define VAKT_MAP_FRAGS "frags"
#define VAKT_MAP_EP_ADDR "ep_addr"
#define VAKT_MAP_EVENT_RL "event_rl"
#define VAKT_MAP_EP_IFINDEX "ep_ifindex"

#endif /* VAKT_DATAPATH_H */
