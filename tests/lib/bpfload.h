/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfload.h - test and benchmark helper around the datapath skeleton
 * (build/vakt.skel.h): load it with private (unpinned) maps, fill the maps
 * directly or from a struct vakt_tables, run a program on a packet with
 * BPF_PROG_TEST_RUN, read counters. Needs root (CAP_BPF, CAP_NET_ADMIN).
 */
#ifndef VAKT_TEST_BPFLOAD_H
#define VAKT_TEST_BPFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"
#include "vakt/datapath.h"

struct vakt_bpf;
struct vakt_tables;

struct dp_cfg {
	uint32_t event_rate; /* cfg_event_rate_per_sec; 0 keeps the default */
	int no_events;       /* set cfg_event_rate_per_sec to 0 */
	uint32_t mark_mask;  /* 0 keeps the default */
	const char *pin_root; /* NULL: maps are private to this load */
};

/* Opens and loads the skeleton. Returns 0 or -errno (logged to stderr). */
int dp_open(struct vakt_bpf **out, const struct dp_cfg *cfg);
void dp_close(struct vakt_bpf *skel);

enum dp_prog { DP_FROM_POD, DP_TO_POD, DP_NODE_EGRESS, DP_NODE_INGRESS };
int dp_prog_fd(struct vakt_bpf *skel, enum dp_prog prog);

/*
 * Runs prog on one frame (starting at the Ethernet header). mark_in is
 * skb->mark on entry, *mark_out (may be NULL) on exit; *ret the program's
 * return value. repeat > 1 runs it that many times and sets *ns_per_run
 * (may be NULL) to the kernel's average. Returns 0 or -errno.
 */
int dp_run(struct vakt_bpf *skel, enum dp_prog prog, const void *frame, size_t len,
	   uint32_t mark_in, uint32_t *mark_out, int *ret);
/* dp_run as if on interface ifindex (a device of the caller's network namespace). */
int dp_run_at(struct vakt_bpf *skel, enum dp_prog prog, int ifindex, const void *frame,
	      size_t len, uint32_t mark_in, uint32_t *mark_out, int *ret);
int dp_run_repeat(struct vakt_bpf *skel, enum dp_prog prog, const void *frame, size_t len,
		  uint32_t repeat, uint32_t *ns_per_run);
/* Runs an arbitrary program fd (the benchmarks' empty reference program). */
int dp_run_fd(int prog_fd, const void *frame, size_t len, uint32_t repeat, uint32_t mark_in,
	      uint32_t *mark_out, int *ret, uint32_t *ns_per_run);

/* Direct map writes. */
int dp_put_ipcache(struct vakt_bpf *skel, const char *addr, uint32_t identity);
int dp_put_endpoint(struct vakt_bpf *skel, const char *addr, const struct vakt_ep_val *ep);
int dp_put_cidr(struct vakt_bpf *skel, const char *addr, uint32_t plen, uint32_t class_id);
/* One policy entry; plen is VAKT_PLEN_* or a port prefix (80 + port bits). */
int dp_put_policy(struct vakt_bpf *skel, uint32_t policy, uint32_t peer, uint8_t proto,
		  uint16_t port, uint32_t plen, uint32_t rule);
int dp_set_gen(struct vakt_bpf *skel, uint64_t gen);

/* Empties a map (by name in the skeleton: "ct", "frags", "policy", ...). */
int dp_clear_map(struct vakt_bpf *skel, const char *name);
int dp_map_fd(struct vakt_bpf *skel, const char *name);

/* Sum over CPUs of the counter (ep_id, dir, reason). */
int dp_counter(struct vakt_bpf *skel, uint32_t ep_id, uint32_t dir, uint32_t reason,
	       struct vakt_counter *out);
/* Number of entries in a hash/LRU map. */
int dp_map_count(struct vakt_bpf *skel, const char *name);

/* Drains the events ring buffer into out (up to max); returns how many. */
int dp_read_events(struct vakt_bpf *skel, struct vakt_drop_event *out, int max);

#endif /* VAKT_TEST_BPFLOAD_H */
