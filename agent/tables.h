/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tables.h - the userspace mirror of the BPF maps of include/vakt/maps.h,
 * with the same lookup semantics (exact hash for ipcache and endpoints,
 * longest-prefix match for cidr and policy), and a journal of changed keys
 * that the map writer drains in make-before-break order.
 *
 * Written by the compiler only; read by the map writer, vakt sim, the tests
 * and the benchmarks. Single-threaded like the rest of the agent.
 */
#ifndef VAKT_TABLES_H
#define VAKT_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"

struct vakt_tables;

/*
 * The verdict header is compiled here against the tables: its lookups are
 * the LPM/hash lookups below, so vakt sim and the datapath share one
 * decision function. This also gives every includer struct vakt_flow and
 * struct vakt_verdict.
 */
typedef const struct vakt_tables *vakt_ctx_t;
#define VAKT_INLINE inline
const struct vakt_ip_val *vakt_lookup_ipcache(vakt_ctx_t t, const struct vakt_addr *a);
const struct vakt_cidr_val *vakt_lookup_cidr(vakt_ctx_t t, const struct vakt_cidr_key *k);
const struct vakt_policy_val *vakt_lookup_policy(vakt_ctx_t t, const struct vakt_policy_key *k);
#include "vakt/verdict.h"

enum vakt_table_id { VAKT_T_IPCACHE, VAKT_T_ENDPOINTS, VAKT_T_CIDR, VAKT_T_POLICY, VAKT_T_COUNT };

/* "ipcache", "endpoints", "cidr", "policy": the BPF map names. */
const char *vakt_table_name(enum vakt_table_id id);
size_t vakt_table_key_size(enum vakt_table_id id);
size_t vakt_table_value_size(enum vakt_table_id id);
size_t vakt_table_capacity(enum vakt_table_id id); /* VAKT_*_MAX of maps.h */

struct vakt_tables *vakt_tables_new(void);
void vakt_tables_free(struct vakt_tables *t);
/*
 * Entry limit of one table; 0 means unbounded. New tables start at
 * vakt_table_capacity(). vakt sim compiles a whole cluster as if every pod
 * were local, which no BPF map has to hold, so it lifts the limits; tests
 * lower them to exercise the full-table path.
 */
void vakt_tables_set_limit(struct vakt_tables *t, enum vakt_table_id id, size_t limit);

size_t vakt_tables_count(const struct vakt_tables *t, enum vakt_table_id id);
/* Present entries in unspecified order; cb returns non-zero to stop (returned). */
int vakt_tables_foreach(const struct vakt_tables *t, enum vakt_table_id id,
			int (*cb)(void *arg, const void *key, const void *val), void *arg);
/*
 * A snapshot of the present keys (vakt_table_key_size(id) bytes each) in a
 * caller-freed array, for callers that change the table while walking it.
 * Returns 0 (*keys NULL when *n is 0) or -ENOMEM / -EINVAL.
 */
int vakt_tables_keys(const struct vakt_tables *t, enum vakt_table_id id, void **keys, size_t *n);

/*
 * Writes. LPM keys are masked to their prefix length first (as the kernel's
 * LPM trie treats bits after prefixlen as irrelevant). put returns 0,
 * -ENOSPC when the table is at its limit and the key is new, -EINVAL for a
 * prefixlen beyond the key, -ENOMEM. del returns 0 or -ENOENT.
 */
int vakt_tables_put(struct vakt_tables *t, enum vakt_table_id id, const void *key, const void *val);
int vakt_tables_del(struct vakt_tables *t, enum vakt_table_id id, const void *key);
/* Exact-key read (LPM keys: same prefixlen and masked bits), NULL if absent. */
const void *vakt_tables_get(const struct vakt_tables *t, enum vakt_table_id id, const void *key);

/* Lookups return pointers into the table, valid until its next write. */
const struct vakt_ip_val *vakt_tables_ipcache(const struct vakt_tables *t, const struct vakt_addr *a);
const struct vakt_ep_val *vakt_tables_endpoint(const struct vakt_tables *t, const struct vakt_addr *a);
/* Longest prefix match over the first k->prefixlen bits, like BPF_MAP_TYPE_LPM_TRIE. */
const struct vakt_cidr_val *vakt_tables_cidr(const struct vakt_tables *t, const struct vakt_cidr_key *k);
const struct vakt_policy_val *vakt_tables_policy(const struct vakt_tables *t,
						 const struct vakt_policy_key *k);

/*
 * Runs include/vakt/verdict.h in userspace for the endpoint at address self
 * and flow f. Returns 1 allowed, 0 denied, -ENOENT if self is no local
 * endpoint.
 */
int vakt_tables_verdict(const struct vakt_tables *t, const struct vakt_addr *self,
			const struct vakt_flow *f, struct vakt_verdict *v);

/*
 * Journal of keys changed since the last drain, delivered in
 * make-before-break order: puts of POLICY, CIDR, IPCACHE, then puts of
 * ENDPOINTS, then deletes of ENDPOINTS, then deletes of IPCACHE, CIDR,
 * POLICY. val == NULL means delete. A key changed and changed back is not
 * reported. *revoked (may be NULL) is set when something can have revoked
 * access: any delete, an ipcache address changing identity, or an endpoint
 * record changing (policy switch, flags): the map writer then bumps the
 * conntrack generation. Returns 0, or the first non-zero cb return, in
 * which case the journal is kept whole and the next drain delivers it again
 * (every delivery is idempotent).
 */
int vakt_tables_drain(struct vakt_tables *t,
		      int (*cb)(void *arg, enum vakt_table_id id, const void *key, const void *val),
		      void *arg, int *revoked);
/* Number of keys in the journal (changed-back keys included). */
size_t vakt_tables_journal_len(const struct vakt_tables *t);

#endif /* VAKT_TABLES_H */
