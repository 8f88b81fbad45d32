/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gencluster.h - a deterministic (seeded) synthetic cluster generator for
 * tests and benchmarks: namespaces, pods and NetworkPolicies of realistic
 * shapes, written into a store, and random events against it.
 *
 * Shapes: most policies select by app label (matchLabels app=...), with
 * podSelector peers of the same namespace, namespaceSelector peers (alone
 * and with a podSelector), matchExpressions, ipBlocks with excepts (IPv4,
 * some IPv6), numeric and named ports, endPort ranges, UDP and SCTP, egress
 * rules (DNS, ipBlock to the internet), default-deny policies. Pods carry
 * app/tier labels and named container ports; IPs come from 10.0.0.0/8 and
 * fd00::/64 (dual-stack pods); nodes are node-0 .. node-(nodes-1).
 */
#ifndef VAKT_GENCLUSTER_H
#define VAKT_GENCLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "model.h"
#include "store.h"

struct vakt_gen_opts {
	uint64_t seed;
	size_t namespaces;
	size_t pods;
	size_t policies;
	size_t nodes;          /* pods spread uniformly; 0 = 1 node */
	unsigned int apps_per_ns; /* 0 = 15 */
	unsigned int dual_stack_pct; /* percentage of dual-stack pods */
	/* Egress ipBlock peers combined with named ports (the destination pod
	 * inside the block that has the name, on its port): off by default so
	 * that benchmarks keep their historical shape; the randomised compiler
	 * test turns it on. */
	int named_port_ipblocks;
};

struct vakt_gen;

struct vakt_gen *vakt_gen_new(const struct vakt_gen_opts *o);
void vakt_gen_free(struct vakt_gen *g);
/* Puts the whole cluster into s. Returns 0 or -errno. */
int vakt_gen_populate(struct vakt_gen *g, struct vakt_store *s);

/* A new pod (not yet in any store): replica != 0 copies the labels of an
 * existing app (same identity as its siblings); otherwise new labels. */
struct vakt_pod *vakt_gen_pod(struct vakt_gen *g, int replica);
/* A random policy for namespace index ns_idx with the given name. */
struct vakt_policy *vakt_gen_policy(struct vakt_gen *g, size_t ns_idx, const char *name);

/*
 * Applies one random event to s: pod add/delete/relabel/move, namespace
 * add/relabel/delete, policy add/change/delete. desc (may be NULL) receives
 * a one-line description. Returns 0 or -errno.
 */
int vakt_gen_event(struct vakt_gen *g, struct vakt_store *s, char *desc, size_t len);
enum vakt_gen_kind { VAKT_GEN_PODS, VAKT_GEN_POLICIES };

/*
 * One random event of one kind that never changes an object in place: a pod
 * (policy) is added, deleted, or replaced by one of other content (deleted,
 * and a pod with a label set of its own, or a new policy of the same
 * namespace, added: two store events). Within one batch, replacements free
 * ids (identity, CIDR class, endpoint policy, endpoint) and allocate ids for
 * new content. Returns 0 or -errno.
 */
int vakt_gen_event_churn(struct vakt_gen *g, struct vakt_store *s, enum vakt_gen_kind kind,
			 char *desc, size_t len);

/* A random existing policy replaced in place by a random one of the same name
 * (selector and rules both change). Returns 0 or -errno. */
int vakt_gen_event_policy_change(struct vakt_gen *g, struct vakt_store *s, char *desc, size_t len);

uint64_t vakt_gen_rand(struct vakt_gen *g);
/* A new store holding copies of every object of s (namespaces, policies,
 * then pods); NULL on failure. */
struct vakt_store *vakt_gen_store_copy(const struct vakt_store *s);
/* vakt_compiler_dump_canonical() of c as a string (caller frees); NULL on failure. */
char *vakt_gen_dump(const struct vakt_compiler *c);
/* The same for a fresh compiler's full compile of a copy of s, with opts.node = node. */
char *vakt_gen_fresh_dump(const struct vakt_store *s, const char *node);
const char *vakt_gen_ns_name(const struct vakt_gen *g, size_t idx, char *buf, size_t len);
const char *vakt_gen_node_name(size_t idx, char *buf, size_t len);

#endif /* VAKT_GENCLUSTER_H */
