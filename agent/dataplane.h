/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dataplane.h - the BPF side as the agent sees it: loading the skeleton
 * (build/vakt.skel.h of bpf/vakt.bpf.c), pinned maps, attaching to
 * interfaces, the map writer, counters and drop events. This is the only
 * code that writes BPF maps.
 *
 * Lifecycle of a (re)started agent, which never leaves a hook without a
 * program nor a map half-written:
 *   vakt_dataplane_open()       load, reusing the pinned maps (programs that a
 *                               previous agent left attached keep enforcing)
 *   vakt_dataplane_reconcile()  make the pinned maps equal the compiled tables
 *   vakt_dataplane_attach()     per pod veth: swaps in the new programs
 *   vakt_dataplane_apply()      after every compile
 *   vakt_dataplane_close(dp, 0) programs stay attached, maps stay pinned
 */
#ifndef VAKT_DATAPLANE_H
#define VAKT_DATAPLANE_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "tables.h"
#include "vakt/maps.h"

#define VAKT_BPFFS_DEFAULT "/sys/fs/bpf/vakt"

struct vakt_dataplane_opts {
	const char *bpffs;  /* pin directory, default VAKT_BPFFS_DEFAULT */
	int force_clsact;   /* do not try tcx */
	uint32_t mark_mask; /* skb mark bits for the datapath (datapath.h); 0: default */
	int event_rate;     /* drop events per second per CPU; 0: default, < 0: none */
	/* Tests only: smaller maps, to reach "map full" quickly. 0: the map's own size.
	 * Indexed by enum vakt_table_id. Pinned maps of another size are recreated. */
	uint32_t max_entries[VAKT_T_COUNT];
};

struct vakt_dataplane;

/* Opens the skeleton, reusing compatible pinned maps (incompatible ones, e.g. after
 * a VAKT_ABI_VERSION change, are replaced), creates the pin directory. NULL with
 * *err = -errno on failure. */
struct vakt_dataplane *vakt_dataplane_open(const struct vakt_dataplane_opts *o, int *err);
/* Leaves programs attached and maps pinned unless cleanup: then detaches ours
 * everywhere in this network namespace and unpins everything. */
void vakt_dataplane_close(struct vakt_dataplane *dp, int cleanup);

/*
 * Drains the tables' journal into the maps in make-before-break order (the
 * order vakt_tables_drain() delivers), writes ep_meta for endpoints (names from
 * the compiler; the counters of a reused ep_id are zeroed), bumps state.gen when
 * access may have been revoked. A full map is counted, logged and fails closed:
 * the endpoints whose policy could not be written completely get
 * VAKT_EPF_FAIL_CLOSED in the endpoints map; the rest is applied and the first
 * error returned. Failed writes are retried by later applies.
 */
int vakt_dataplane_apply(struct vakt_dataplane *dp, struct vakt_tables *t,
			 const struct vakt_compiler *c);
/*
 * After a (re)start: makes the pinned maps equal the tables. Writes everything
 * missing or different first (policy, cidr, ipcache, then endpoints), then
 * deletes what the tables do not have (endpoints first), then bumps the
 * generation. Clears the tables' journal.
 */
int vakt_dataplane_reconcile(struct vakt_dataplane *dp, struct vakt_tables *t,
			     const struct vakt_compiler *c);

/* Pod veth (host side): vakt_from_pod at ingress, vakt_to_pod at egress. Idempotent,
 * adopts a previous agent's attachments, never touches other programs. -ENODEV if
 * the interface is gone. */
int vakt_dataplane_attach(struct vakt_dataplane *dp, int ifindex, const char *ifname);
/* 0 also when nothing was attached or the interface is gone. */
int vakt_dataplane_detach(struct vakt_dataplane *dp, int ifindex, const char *ifname);
/* 1 if both programs of this agent instance are on the interface. */
int vakt_dataplane_attached(const struct vakt_dataplane *dp, int ifindex);

/* Devices that leave the node (uplink, tunnels): vakt_node_ingress at ingress,
 * vakt_node_egress at egress; see include/vakt/datapath.h. */
int vakt_dataplane_attach_uplink(struct vakt_dataplane *dp, int ifindex, const char *ifname);
int vakt_dataplane_detach_uplink(struct vakt_dataplane *dp, int ifindex, const char *ifname);
int vakt_dataplane_uplink_attached(const struct vakt_dataplane *dp, int ifindex);

const char *vakt_dataplane_mode(const struct vakt_dataplane *dp); /* "tcx" or "clsact" */

/* Counters summed over CPUs: cb for each non-zero (ep_id, dir, reason); a non-zero
 * return of cb stops the walk and is returned. */
int vakt_dataplane_counters(struct vakt_dataplane *dp,
			    int (*cb)(void *arg, uint32_t ep_id, int dir, int reason,
				      uint64_t packets, uint64_t bytes),
			    void *arg);

/* Drop events: an fd to poll (EPOLLIN) in the loop, and consume, which calls cb per
 * event and returns the number consumed or -errno. */
int vakt_dataplane_events_fd(struct vakt_dataplane *dp);
int vakt_dataplane_events_consume(struct vakt_dataplane *dp,
				  void (*cb)(void *arg, const struct vakt_drop_event *e), void *arg);

/* Entries and capacity of a map by name, for metrics. The table maps are counted
 * from what the writer holds; others are walked (cost grows with their size). */
int vakt_dataplane_map_usage(struct vakt_dataplane *dp, const char *map, uint64_t *entries,
			     uint64_t *capacity);

struct vakt_dataplane_stats {
	uint64_t map_errors;    /* failed map writes of any kind */
	uint64_t map_full;      /* of which: the map was full */
	uint64_t attach_errors; /* failed attaches (vanished interfaces excluded) */
	uint64_t fail_closed;   /* endpoints currently failed closed by the writer */
	uint64_t gen;           /* current state.gen */
};
void vakt_dataplane_stats(const struct vakt_dataplane *dp, struct vakt_dataplane_stats *out);

/* Observe every write of the map writer, in order (debug tracing and the tests that
 * prove make-before-break): map is the map name, key NULL for the generation bump. */
void vakt_dataplane_set_write_hook(struct vakt_dataplane *dp,
				   void (*hook)(void *arg, const char *map, int del, const void *key),
				   void *arg);

/*
 * What the pinned maps hold now (ipcache, endpoints, cidr, policy), read into
 * out->t (new, unbounded tables): the seed a restarted compiler needs so that
 * the reconcile never gives an id another meaning (see compiler.h). Call it
 * after open and before the first reconcile. 0 or -errno (out->t NULL then).
 */
int vakt_dataplane_pinned_ids(struct vakt_dataplane *dp, struct vakt_compiler_seed *out);

/*
 * Anti-spoofing (map ep_ifindex, include/vakt/datapath.h): local pod address
 * -> the host-side veth it must send from. Facts of the node's links, known
 * to the agent, not the compiler. The dataplane keeps a mirror (loaded from
 * the pinned map at open, so a restarted agent starts from what enforces),
 * so reads cost no syscall and a write happens only when a binding changes.
 *   bind:    0 or -errno (the map full: -E2BIG; the address stays unbound,
 *            which only means unchecked)
 *   unbind:  0, also when there was no binding
 *   bound:   the ifindex, 0 when unbound
 *   foreach: cb per binding; a non-zero return stops the walk and is
 *            returned. cb must not bind or unbind.
 */
int vakt_dataplane_bind(struct vakt_dataplane *dp, const struct vakt_addr *a, uint32_t ifindex);
int vakt_dataplane_unbind(struct vakt_dataplane *dp, const struct vakt_addr *a);
uint32_t vakt_dataplane_bound(const struct vakt_dataplane *dp, const struct vakt_addr *a);
int vakt_dataplane_foreach_binding(const struct vakt_dataplane *dp,
				   int (*cb)(void *arg, const struct vakt_addr *a, uint32_t ifindex),
				   void *arg);

/* Map fd by name (tests, vakt sim --dataplane); -ENOENT. */
int vakt_dataplane_map_fd(const struct vakt_dataplane *dp, const char *map);
/* Program fd by name, e.g. VAKT_PROG_FROM_POD; -ENOENT. */
int vakt_dataplane_prog_fd(const struct vakt_dataplane *dp, const char *prog);

#endif /* VAKT_DATAPLANE_H */
