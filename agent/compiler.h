/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compiler.h - store -> compiled tables (include/vakt/maps.h), kept current
 * incrementally from the store's change events.
 *
 * The compiler is a function of the store: after any sequence of events the
 * tables equal those of a fresh compiler's full compile, up to the numbering
 * of ids (vakt_compiler_dump_canonical() prints the tables with every id
 * replaced by what it stands for, so that equality can be tested).
 *
 * See docs/architecture.md for identities, CIDR classes and endpoint
 * policies.
 */
#ifndef VAKT_COMPILER_H
#define VAKT_COMPILER_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"
#include "tables.h"

struct vakt_compiler_opts {
	/*
	 * Pods with spec.nodeName == node and an IP are local endpoints.
	 * NULL: every non-hostNetwork pod with an IP is local (vakt sim); the
	 * tables are then not bounded by the BPF map capacities, since they
	 * describe a whole cluster, not one node's maps.
	 */
	const char *node;
};

struct vakt_compiler;

/*
 * Ids and batches. Whatever the compiler does between two drains of its
 * tables (vakt_tables_drain(), as vakt_dataplane_apply() does) is one batch
 * for the map writer, which writes puts before deletes. An id the compiler
 * frees is therefore not given to new content before the batch that freed
 * it has been drained: the compiler reuses freed ids only when it finds the
 * journal empty as an event arrives (docs/architecture.md, map writer). A
 * caller that never drains never reuses an id. Likewise an endpoint policy
 * whose entries change in a batch in which endpoints already in the maps
 * join or leave it moves to a fresh id, so that none of them sees its
 * content of the other side of the batch.
 */

/* Registers itself as the store's listener: every later store change is
 * compiled incrementally. The store must outlive the compiler. */
struct vakt_compiler *vakt_compiler_new(struct vakt_store *s, const struct vakt_compiler_opts *o);
/* Unregisters from the store and frees everything, tables included. */
void vakt_compiler_free(struct vakt_compiler *c);
/* (Re)builds everything from the store. Table keys whose value ends up
 * unchanged are not reported by the next drain. Returns 0 or -errno. */
int vakt_compiler_full(struct vakt_compiler *c);
struct vakt_tables *vakt_compiler_tables(struct vakt_compiler *c);

/* This node's addresses -> identity VAKT_ID_HOST in the ipcache (incremental).
 * Replaces the previous set. */
int vakt_compiler_set_host_addrs(struct vakt_compiler *c, const struct vakt_addr *addrs, size_t n);

/*
 * Restarts. A restarted agent compiles from scratch while the pinned maps
 * still hold the previous agent's numbering, and the map writer reconciles
 * by diffing ids: an id given to other content than the maps mean by it
 * would, until the reconcile ends, show an endpoint another policy's
 * entries or judge a peer by entries meant for another label set. So:
 *
 *   vakt_dataplane_pinned_ids(dp, &seed);   what the pinned maps hold
 *   vakt_compiler_seed(c, &seed);           before the first full compile
 *   vakt_compiler_full(c);
 *   vakt_dataplane_reconcile(dp, t, c);
 *   vakt_compiler_release_seed(c);          once the reconcile succeeded
 *
 * While seeded, every identity, class, endpoint policy and endpoint id the
 * maps use is reserved: new content gets other ids. Content whose meaning
 * provably equals what the maps mean by an id adopts it (an identity with
 * exactly the same addresses, a class with exactly the same prefixes, an
 * endpoint policy with exactly the same entries), so an unchanged cluster
 * reconciles with no writes; a local pod whose address has an endpoint
 * record keeps its ep_id. Adoption happens in the next vakt_compiler_full()
 * only (which may compile up to four times to verify it); the reservations
 * hold, for incremental events too, until released. Ids freed meanwhile
 * stay reserved.
 */
struct vakt_compiler_seed {
	struct vakt_tables *t; /* the pinned maps' ipcache, endpoints, cidr and policy */
};
/* Takes the seed's tables (s->t becomes NULL). 0, -EINVAL, -ENOMEM. */
int vakt_compiler_seed(struct vakt_compiler *c, struct vakt_compiler_seed *s);
void vakt_compiler_release_seed(struct vakt_compiler *c);
/* Frees a seed that was not handed to a compiler. */
void vakt_compiler_seed_free(struct vakt_compiler_seed *s);

struct vakt_rule_ref {
	const char *ns;   /* valid until the policy changes */
	const char *name;
	uint8_t dir;      /* VAKT_DIR_* */
	uint32_t index;   /* in the policy's ingress or egress rules */
};
/* What a policy entry's rule field refers to; -ENOENT. */
int vakt_compiler_rule(const struct vakt_compiler *c, uint32_t rule, struct vakt_rule_ref *out);
/* Name of a local endpoint id, for metrics/status; -ENOENT. */
int vakt_compiler_ep_meta(const struct vakt_compiler *c, uint32_t ep_id, struct vakt_ep_meta *out);

/*
 * Canonical text form of the tables in which every numeric id (identity,
 * class, endpoint policy, rule, ep_id) is replaced by what it stands for,
 * lines sorted: two compilers of the same store produce the same text
 * whatever their event history. Returns 0 or -errno.
 */
int vakt_compiler_dump_canonical(const struct vakt_compiler *c, FILE *out);

struct vakt_compiler_stats {
	uint64_t full_compiles;
	uint64_t events;      /* store events compiled incrementally */
	uint64_t errors;      /* table full, id space exhausted, out of memory */
	uint64_t fail_closed; /* times an endpoint was failed closed */
	uint64_t identities;  /* current counts, for status and metrics */
	uint64_t endpoint_policies;
	uint64_t classes;
	uint64_t local_endpoints;
};
void vakt_compiler_stats(const struct vakt_compiler *c, struct vakt_compiler_stats *out);

#endif /* VAKT_COMPILER_H */
