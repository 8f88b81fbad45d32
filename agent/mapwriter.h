/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mapwriter.h - internal to dataplane.c and mapwriter.c: the dataplane's
 * state. Everyone else uses dataplane.h.
 */
#ifndef VAKT_MAPWRITER_H
#define VAKT_MAPWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "attach.h"
#include "htab.h"
#include "dataplane.h"

enum dp_prog { DP_FROM_POD, DP_TO_POD, DP_NODE_INGRESS, DP_NODE_EGRESS, DP_NPROGS };

struct vakt_bpf;
struct ring_buffer;

struct vakt_dataplane {
	struct vakt_bpf *skel;
	char bpffs[200];
	struct vakt_attacher att;
	const char *prog_names[16]; /* NULL-terminated, owned by the skeleton */
	int prog_fd[DP_NPROGS];
	int prog_id[DP_NPROGS];
	int table_fd[VAKT_T_COUNT];
	int state_fd, counters_fd, ep_meta_fd, ep_ifindex_fd;
	int ncpus;
	struct ring_buffer *rb;
	void (*ev_cb)(void *arg, const struct vakt_drop_event *e); /* during consume only */
	void *ev_arg;
	int ev_count;
	struct vakt_dataplane_stats stats;

	/*
	 * Fail-closed bookkeeping. A policy entry that could not be written leaves its
	 * endpoint policy incomplete: every endpoint using it is written with
	 * VAKT_EPF_FAIL_CLOSED. A failed cidr write does the same for endpoints with
	 * ipBlock peers. retry: some write failed, the next apply reconciles fully
	 * (which also lifts the mark once everything fits).
	 */
	uint32_t *failed_pol;
	size_t nfailed_pol, capfailed_pol;
	int cidr_failed;
	int retry;
	int reconciled; /* apply() reconciles first after open */
	uint64_t missing[VAKT_T_COUNT]; /* table entries not in the map (failed writes) */
	uint64_t entries[VAKT_T_COUNT]; /* map entries, for metrics */

	void (*write_hook)(void *arg, const char *map, int del, const void *key);
	void *write_hook_arg;

	struct vakt_htab bindings; /* struct dp_binding by address: ep_ifindex as written */

	/* ep_meta as written, by ep_id: a name change means the ep_id was reused. */
	struct vakt_ep_meta meta[VAKT_MAX_ENDPOINTS];
	uint8_t meta_state[VAKT_MAX_ENDPOINTS]; /* 0 unknown, 1 present, 2 absent */
};

/* dpbind.c: the ep_ifindex mirror, loaded at open, freed at close. */
int dp_bindings_load(struct vakt_dataplane *dp);
/* state.gen++: every conntrack entry is re-checked on its next packet. */
int dp_bump_gen(struct vakt_dataplane *dp);
void dp_bindings_free(struct vakt_dataplane *dp);

#endif /* VAKT_MAPWRITER_H */
