/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vakt/maps.h - the compiled tables: the contract between the compiler
 * (agent/compiler.c), the map writer (agent/mapwriter.c) and the datapath
 * (bpf/vakt.bpf.c).
 *
 * Included by BPF C (clang -target bpf) and by userspace (gcc), so it uses
 * fixed-width kernel types only, explicit padding and no pointers. Changing a
 * layout here changes the pinned maps: bump VAKT_ABI_VERSION so a restarted
 * agent recreates the maps instead of misreading old ones.
 *
 * Address representation: every address is 16 bytes. IPv4 is stored as an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d), so one key type and one LPM
 * trie serve both families, and an IPv4 /n prefix is the mapped /96+n.
 */
#ifndef VAKT_MAPS_H
#define VAKT_MAPS_H

#include <linux/types.h>

#define VAKT_ABI_VERSION 3

/* Enforcement direction, always from the local endpoint's point of view. */
#define VAKT_DIR_INGRESS 0 /* traffic to the pod: its ingress policy */
#define VAKT_DIR_EGRESS 1  /* traffic from the pod: its egress policy */
#define VAKT_DIR_MAX 2

/*
 * Identities. A pod identity stands for one label set (pod labels, its
 * namespace's name and labels, its named container ports), shared by every
 * pod with that set and stable across policy changes. Reserved identities
 * are below VAKT_ID_FIRST_POD.
 */
#define VAKT_ID_WORLD 0 /* not a known pod: only ipBlock and any-peer rules apply */
#define VAKT_ID_HOST 1  /* an address of this node: always allowed */
#define VAKT_ID_FIRST_POD 256
#define VAKT_ID_MAX 0x7fffffffU

/*
 * Peer field of a policy key: VAKT_PEER_ANY, a pod identity, or a CIDR class
 * id with VAKT_PEER_CLASS set. Classes and identities never collide.
 */
#define VAKT_PEER_ANY 0U
#define VAKT_PEER_CLASS 0x80000000U

/* Capacities. The map writer counts and fails closed when one is reached. */
#define VAKT_MAX_ENDPOINTS 1024 /* local pods per node, endpoint ids 1..1023 */
#define VAKT_IPCACHE_MAX 262144 /* pod and node addresses, cluster-wide */
#define VAKT_CIDR_MAX 65536     /* ipBlock prefixes of local policies */
#define VAKT_POLICY_MAX 1048576 /* policy entries of local endpoint policies */
#define VAKT_CT_MAX 262144      /* conntrack entries, LRU */

struct vakt_addr {
	__u8 b[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
};

/*
 * ipcache: hash, every pod IP in the cluster and every address of this node
 * -> identity. Written when pods come and go; a policy change never touches
 * it. Keyed by struct vakt_addr.
 */
struct vakt_ip_val {
	__u32 identity;
	__u32 flags; /* reserved, 0 */
};

/* Endpoint flags: which policy lookups can match, per direction. */
#define VAKT_EPF_ID(dir) (1U << (0 + (dir) * 4))    /* has identity peers */
#define VAKT_EPF_CLASS(dir) (1U << (1 + (dir) * 4)) /* has ipBlock peers */
#define VAKT_EPF_ANY(dir) (1U << (2 + (dir) * 4))   /* has any-peer rules */
#define VAKT_EPF_FAIL_CLOSED (1U << 16) /* compile/map error: drop everything */

/*
 * endpoints: hash, the addresses of the pods on this node -> their
 * enforcement state. The datapath resolves which local pod a packet belongs
 * to by address (routed and bridged CNIs alike). Keyed by struct vakt_addr;
 * a dual-stack pod has one entry per address with the same values.
 *
 * policy[dir] == 0 means the pod is not isolated in that direction.
 * Switching policy[dir] is the atomic step of a make-before-break update.
 */
struct vakt_ep_val {
	__u32 ep_id;     /* 1..VAKT_MAX_ENDPOINTS-1: counters index, names */
	__u32 identity;  /* the pod's own identity */
	__u32 policy[VAKT_DIR_MAX];
	__u32 flags;     /* VAKT_EPF_* */
	__u32 ifindex;   /* host-side interface, 0 when not known */
};

/*
 * cidr: LPM trie of the ipBlock prefixes (cidrs and their excepts) used by
 * local policies, plus ::/0 -> class 0. The value is the class of the
 * addresses whose longest match is this prefix: the set of ipBlocks that
 * contain them, minus excepts, numbered by the compiler.
 * prefixlen counts bits of addr (IPv4 /n is stored as 96 + n).
 */
struct vakt_cidr_key {
	__u32 prefixlen;
	struct vakt_addr addr;
};

struct vakt_cidr_val {
	__u32 class_id; /* 0: the address is in no ipBlock */
};

/*
 * policy: LPM trie of policy entries. One endpoint policy id covers one
 * direction's entries; endpoints with the same effective policy share it.
 *
 * Wildcards are prefix lengths: "any protocol, any port" stops after peer,
 * "any port of a protocol" stops after pad, and a port range is a set of
 * prefixes over the big-endian port bits. pad is always 0.
 */
struct vakt_policy_key {
	__u32 prefixlen;
	__u32 policy; /* endpoint policy id, >= 1 */
	__u32 peer;   /* VAKT_PEER_ANY, identity, or VAKT_PEER_CLASS | class */
	__u8 proto;   /* IPPROTO_* */
	__u8 pad;
	__be16 port;  /* destination port */
};

/*
 * Prefix lengths in bits of the data after prefixlen: policy and peer (64),
 * then proto and pad (16), then port (16). Userspace checks these against
 * offsetof() in agent/tables.c with static assertions.
 */
#define VAKT_PLEN_ANY_PROTO 64
#define VAKT_PLEN_ANY_PORT 80
#define VAKT_PLEN_FULL 96

#define VAKT_ACTION_ALLOW 1

struct vakt_policy_val {
	__u32 rule;   /* rule reference, see agent/compiler.h */
	__u8 action;  /* VAKT_ACTION_* */
	__u8 pad[3];
};

/*
 * state: array with one element. gen is bumped by the map writer after any
 * change that can revoke access (entries deleted, an address changing
 * identity); conntrack entries admitted under an older generation are
 * re-checked against the current policy on their next packet.
 */
struct vakt_state {
	__u64 gen;
	__u32 abi;
	__u32 pad;
};

/*
 * Verdict reasons. Shared by the datapath, the counters, the flow events,
 * the metrics (vakt_reason_name()) and vakt sim. Values are ABI: append only.
 */
enum vakt_reason {
	/* forwarded */
	VAKT_R_NOT_ISOLATED = 0, /* no policy selects the pod in this direction */
	VAKT_R_POLICY_ALLOW = 1, /* a policy entry allowed a new flow */
	VAKT_R_ESTABLISHED = 2,  /* conntrack: packet of an allowed flow */
	VAKT_R_REPLY = 3,        /* conntrack: reply of an allowed flow */
	VAKT_R_RELATED = 4,      /* ICMP error of an allowed flow */
	VAKT_R_HOST = 5,         /* to or from an address of this node */
	VAKT_R_SELF = 6,         /* the pod to itself */
	VAKT_R_CONTROL = 7,      /* ARP, IPv6 neighbour discovery */
	VAKT_R_NO_ENDPOINT = 8,  /* no local pod owns the address: not ours */
	VAKT_R_FRAGMENT = 9,     /* non-first fragment of an allowed datagram */
	VAKT_R_FWD_MAX = 16,
	/* dropped */
	VAKT_R_POLICY_DENIED = 16, /* no rule allows the new flow */
	VAKT_R_MALFORMED = 17,     /* truncated or invalid headers */
	VAKT_R_REVOKED = 18,       /* established flow no longer allowed */
	VAKT_R_FAIL_CLOSED = 19,   /* endpoint's tables could not be written */
	VAKT_R_FRAG_UNKNOWN = 20,  /* fragment without a known first fragment */
	VAKT_R_CT_FULL = 21,       /* could not record an allowed flow */
	VAKT_R_SPOOFED = 22,       /* source is a local pod bound to another interface */
	VAKT_R_MAX = 32,
};

static inline int vakt_reason_is_drop(__u32 r)
{
	return r >= VAKT_R_FWD_MAX;
}

/*
 * counters: per-CPU array indexed by vakt_counter_index(); packets and bytes
 * per endpoint, direction and reason.
 */
struct vakt_counter {
	__u64 packets;
	__u64 bytes;
};

#define VAKT_COUNTERS_MAX (VAKT_MAX_ENDPOINTS * VAKT_DIR_MAX * VAKT_R_MAX)

static inline __u32 vakt_counter_index(__u32 ep_id, __u32 dir, __u32 reason)
{
	return (ep_id * VAKT_DIR_MAX + dir) * VAKT_R_MAX + reason;
}

/* A drop event on the ring buffer. */
struct vakt_drop_event {
	__u64 ts_ns;
	struct vakt_addr saddr;
	struct vakt_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;
	__u8 reason;
	__u8 pad;
	__u32 ep_id;
	__u32 ifindex;
};

/* Names for ep_ids, written by the agent, read by vakt status and flows. */
#define VAKT_NAME_MAX 128
struct vakt_ep_meta {
	char ns[64];
	char name[VAKT_NAME_MAX];
};

#endif /* VAKT_MAPS_H */
