/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dptest.h - ask the real datapath (bpf/vakt.bpf.c, skeleton build/vakt.skel.h)
 * about a flow without attaching it anywhere: the programs are loaded with
 * private, unpinned maps (never the pinned maps of a running vaktd), the maps
 * are filled from compiled tables, and synthesised packets go through
 * BPF_PROG_TEST_RUN. Used by `vakt sim --dataplane` and by the BPF tests.
 *
 * Needs CAP_BPF and CAP_NET_ADMIN (root): vakt_dptest_open() returns -EPERM
 * when the kernel refuses to load.
 *
 * A probe (vakt_dptest_flow) is one new flow: it runs the enforcement points
 * the packet crosses on a node where both ends are local pods, in the order
 * the kernel would, and reads back what the kernel decided at each point -
 * the program's return code and the counter (endpoint, direction, reason)
 * that moved - then empties conntrack, so the next probe is new again.
 */
#ifndef VAKT_DPTEST_H
#define VAKT_DPTEST_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/datapath.h"
#include "vakt/maps.h"

struct vakt_dptest;
struct vakt_tables;
struct bpf_object;

enum vakt_dptest_prog {
	VAKT_DPT_FROM_POD,
	VAKT_DPT_TO_POD,
	VAKT_DPT_NODE_EGRESS,
	VAKT_DPT_NODE_INGRESS,
	VAKT_DPT_NPROGS,
};

/* "vakt_from_pod", ... (the program names of datapath.h). */
const char *vakt_dptest_prog_name(enum vakt_dptest_prog p);

struct vakt_dptest_opts {
	/*
	 * Conntrack capacity of the private map; 0: VAKT_DPTEST_CT_DEFAULT. A probe
	 * leaves at most a handful of entries and the reset walks the whole table,
	 * so a small table keeps the reset cheap; the production size only matters
	 * under real traffic.
	 */
	uint32_t ct_entries;
	uint32_t mark_mask; /* 0: VAKT_MARK_DEFAULT_MASK */
};

#define VAKT_DPTEST_CT_DEFAULT 4096

/*
 * Opens and loads the skeleton with private maps sized for t (may be NULL:
 * the compiled-in sizes) and drop events off. Returns 0 or -errno, logged once
 * (-EPERM: not allowed to load BPF; -ENOSPC: t does not fit the datapath).
 */
int vakt_dptest_open(struct vakt_dptest **out, const struct vakt_tables *t,
		     const struct vakt_dptest_opts *o);
void vakt_dptest_close(struct vakt_dptest *d);

/*
 * Copies every table of t into the map of the same name of obj (any loaded
 * vakt skeleton object) with vakt_tables_foreach(). Returns 0 or -errno.
 * Endpoint ids must fit the datapath (1..VAKT_MAX_ENDPOINTS-1): counters, the
 * ep_addr slots and the mark bits are indexed by them; -ERANGE otherwise.
 */
int vakt_dptest_fill_obj(struct bpf_object *obj, const struct vakt_tables *t);
int vakt_dptest_fill(struct vakt_dptest *d, const struct vakt_tables *t);

/* The loaded object and a map fd by name (-ENOENT), for tests and test hooks. */
struct bpf_object *vakt_dptest_obj(struct vakt_dptest *d);
int vakt_dptest_map_fd(struct vakt_dptest *d, const char *name);

/* Empties conntrack (and the fragment table). Returns 0 or -errno. */
int vakt_dptest_reset_ct(struct vakt_dptest *d);

/* The opening packet of a flow as the sending pod puts it on its veth. */
struct vakt_dptest_pkt {
	struct vakt_addr src, dst; /* both IPv4-mapped (IPv4) or both IPv6 */
	uint8_t proto;             /* IPPROTO_TCP (SYN), IPPROTO_UDP, IPPROTO_SCTP (INIT) */
	uint16_t sport, dport;     /* host order */
};

#define VAKT_DPTEST_FRAME_MAX 128

/* Ethernet + IPv4/IPv6 + TCP SYN / UDP / SCTP INIT into buf. Returns the length, or -EINVAL. */
int vakt_dptest_build(const struct vakt_dptest_pkt *p, uint8_t *buf, size_t cap);

/* One BPF_PROG_TEST_RUN: skb->mark in and out, the program's return value. */
int vakt_dptest_run(struct vakt_dptest *d, enum vakt_dptest_prog prog, const void *frame,
		    size_t len, uint32_t mark_in, uint32_t *mark_out, int *retval);

/* Per-reason packet counts of (ep_id, dir), summed over CPUs. */
int vakt_dptest_counters(struct vakt_dptest *d, uint32_t ep_id, uint32_t dir,
			 uint64_t packets[VAKT_R_MAX]);

/* What the kernel decided at one enforcement point. */
struct vakt_dptest_point {
	int ran;                      /* a program decided for this point */
	int allowed;                  /* its return code was VAKT_TC_PASS */
	uint32_t ep_id;               /* the endpoint the kernel found (0: none) */
	uint32_t reason;              /* the counter that moved (enum vakt_reason) */
	int rule_known;               /* rule is the admitting conntrack entry's */
	uint32_t rule;                /* rule reference, for POLICY_ALLOW */
	enum vakt_dptest_prog prog;   /* the program that decided */
	int deferred;                 /* egress: vakt_from_pod deferred it downstream */
};

/*
 * A new flow from src to dst. egress: src is a local pod whose egress is
 * enforced (its vakt_from_pod runs); ingress: the same for dst (vakt_to_pod).
 * An end that is not enforced (outside the cluster, hostNetwork) is skipped.
 * If vakt_from_pod defers the egress check (the destination is not a known
 * pod), it is completed where the packet would leave the node with the mark
 * vakt_from_pod set: the destination's vakt_to_pod when ingress is set, else
 * vakt_node_egress. Both points are always evaluated, even when the first
 * drops, so that each can be compared on its own.
 */
struct vakt_dptest_flow {
	struct vakt_dptest_pkt pkt;
	int egress, ingress;
};

struct vakt_dptest_verdict {
	int allowed; /* every point that ran passed */
	struct vakt_dptest_point dir[VAKT_DIR_MAX]; /* [VAKT_DIR_EGRESS], [VAKT_DIR_INGRESS] */
};

/*
 * Runs the probe and resets conntrack. Returns 0, or -errno on a run failure,
 * or -EPROTO when the kernel's own bookkeeping is not what the datapath
 * promises (no counter or several counters moved for a point, an admitted
 * flow without its conntrack entry); the log line says which.
 */
int vakt_dptest_flow(struct vakt_dptest *d, const struct vakt_dptest_flow *f,
		     struct vakt_dptest_verdict *v);

#endif /* VAKT_DPTEST_H */
