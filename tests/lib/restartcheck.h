/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restartcheck.h - checks the maps while they move from one state of the
 * tables (A: before a restart, or before a batch of changes) to another (B:
 * after it): after every single write, every verdict the current content
 * gives must be one that A or B gives. Writes are mirrored into a userspace copy and the
 * verdict (include/vakt/verdict.h through vakt_tables_verdict) runs on it,
 * for every endpoint of the copy, every peer address known to A or B plus
 * some outside addresses, a set of ports and protocols, both directions.
 *
 * An address without an endpoint record is not enforced by the maps (the
 * datapath passes it), so such an end "allows" under A or B.
 */
#ifndef VAKT_RESTARTCHECK_H
#define VAKT_RESTARTCHECK_H

#include <stddef.h>

#include "tables.h"

struct vakt_rcheck;

/* A copy of t's entries with no journal and no limits (what maps holding t
 * would read back); NULL on failure. */
struct vakt_tables *vakt_rcheck_tables_copy(const struct vakt_tables *t);
/* Empties t's journal, as a map writer that has written the batch does. 0 or -errno. */
int vakt_rcheck_mark_written(struct vakt_tables *t);
/* 1 if x and y hold exactly the same entries. */
int vakt_rcheck_tables_equal(const struct vakt_tables *x, const struct vakt_tables *y);

/* a and b must outlive the checker; the mirror starts as a copy of start. */
struct vakt_rcheck *vakt_rcheck_new(const struct vakt_tables *a, const struct vakt_tables *b,
				    const struct vakt_tables *start);
void vakt_rcheck_free(struct vakt_rcheck *rc);
/*
 * Also accepts, per flow, what the map writer's batch order cannot avoid
 * when both the endpoint's policy and the peer's address change in one
 * batch (docs/architecture.md, map writer): the verdict of a "cross" state,
 * A's endpoint records and policy entries with B's ipcache and cidr (the
 * ipcache and cidr puts precede the endpoint switch), or B's records and
 * entries with A's ipcache and cidr (their deletes follow it). A verdict
 * that mixes entries of one side with records of the other is still a
 * violation. 0 or -ENOMEM.
 */
int vakt_rcheck_allow_cross(struct vakt_rcheck *rc);
/* Applies one write (val NULL: delete) to the mirror and checks every verdict. */
void vakt_rcheck_write(struct vakt_rcheck *rc, enum vakt_table_id id, const void *key,
		       const void *val);
/* Checks the mirror as it is (e.g. before the first write). */
void vakt_rcheck_now(struct vakt_rcheck *rc);
const struct vakt_tables *vakt_rcheck_mirror(const struct vakt_rcheck *rc);
size_t vakt_rcheck_violations(const struct vakt_rcheck *rc);
size_t vakt_rcheck_writes(const struct vakt_rcheck *rc);
/* The first violation in words, "" if none. */
const char *vakt_rcheck_first(const struct vakt_rcheck *rc);

/*
 * Moves a userspace copy of the maps from A to B in the order of
 * vakt_dataplane_reconcile() (puts of policy, cidr, ipcache, then endpoints,
 * each only when missing or different; then deletes of endpoints, ipcache,
 * cidr, policy), feeding each write to the checker. Returns the number of
 * writes.
 */
size_t vakt_rcheck_reconcile(struct vakt_rcheck *rc, const struct vakt_tables *b);

/*
 * Drains the journal of t (the compiler's tables, holding B) into the copy,
 * feeding each write to the checker: the batch exactly as
 * vakt_dataplane_apply() writes it (vakt_tables_drain() order: puts of
 * policy, cidr, ipcache, then endpoints, then deletes of endpoints, ipcache,
 * cidr, policy). Returns the number of writes.
 */
size_t vakt_rcheck_drain(struct vakt_rcheck *rc, struct vakt_tables *t);

#endif /* VAKT_RESTARTCHECK_H */
