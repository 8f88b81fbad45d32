/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simcore.h - what `vakt sim` computes, apart from option parsing and
 * printing: load manifests into a store, compile them, name the two ends of
 * a query, and answer it twice - from the compiled tables (the verdict code
 * the BPF program runs) and from the reference engine (which explains it).
 *
 * The two answers must agree. When they do not, sim_eval() fails with
 * -EPROTO and says which direction and what each side answered: a simulator
 * that silently picked one would hide exactly the bug it exists to find.
 *
 * Errors are returned as negative errno with a one-line message in the
 * caller's buffer (SIM_ERR_LEN), ready for stderr.
 */
#ifndef VAKT_SIMCORE_H
#define VAKT_SIMCORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "store.h"
#include "tables.h" /* struct vakt_flow, struct vakt_verdict */

#define SIM_ERR_LEN 512

struct vakt_compiler;
struct vakt_tables;
struct vakt_dptest;

/*
 * The store, its compiler (node = NULL: every pod with an IP is local) and its
 * tables; with --dataplane also the real BPF programs, loaded with private maps
 * filled from those tables (agent/dptest.h).
 */
struct sim_world {
	struct vakt_store *store;
	struct vakt_compiler *comp;
	struct vakt_tables *tables;
	struct vakt_dptest *dp; /* NULL unless sim_world_dataplane() succeeded */
};

/* Load every path (file, directory or "-") into one store and compile it. */
int sim_world_load(struct sim_world *w, const char *const *paths, size_t npaths, char *err, size_t errlen);
/* Compile what is already in w->store (which w takes over). */
int sim_world_compile(struct sim_world *w, char *err, size_t errlen);
void sim_world_free(struct sim_world *w);
/*
 * Loads the datapath's programs with private maps (never the pinned maps of a
 * running vaktd), fills them from w->tables; from then on sim_eval() also asks
 * the kernel. Needs root: -EPERM (with a message) otherwise.
 */
int sim_world_dataplane(struct sim_world *w, char *err, size_t errlen);

/* One end of a query as the user named it. */
struct sim_endpoint {
	const char *text;           /* as given: "ns/pod" or an address */
	const struct vakt_pod *pod; /* NULL: an address outside the cluster */
	int has_addr;               /* given as an address: addr is fixed */
	struct vakt_addr addr;
};

/* "ns/pod" (must exist) or an IPv4/IPv6 address (a pod's address means that pod). */
int sim_endpoint_parse(const struct vakt_store *s, const char *text, struct sim_endpoint *out, char *err,
		       size_t errlen);

/*
 * The addresses a flow between src and dst uses. Pods given by name use
 * their IPv4 address unless an address given for the other end is IPv6, or
 * they have no IPv4 address in common. Returns -EAFNOSUPPORT (with a message)
 * when the ends have no address family in common.
 */
int sim_pick_addrs(const struct sim_endpoint *src, const struct sim_endpoint *dst, struct vakt_end *s,
		   struct vakt_end *d, char *err, size_t errlen);

/* A --port: a number 1..65535 or a container port name. */
struct sim_port {
	const char *name; /* NULL for a number */
	uint16_t num;
};

int sim_port_parse(const char *text, struct sim_port *out, char *err, size_t errlen);
/* The number a port means for traffic to dst (which may be NULL: not a pod). 1 resolved, 0 not. */
int sim_port_resolve(const struct sim_port *p, uint8_t proto, const struct vakt_pod *dst, uint16_t *num);
/* "TCP", "UDP", "SCTP" (any case) -> IPPROTO_*; -EINVAL otherwise. */
int sim_proto_parse(const char *text);

/* One direction's answer from the compiled tables. */
struct sim_table_answer {
	int checked; /* 0: the end is not enforced (outside the cluster, hostNetwork, self traffic) */
	int allowed;
	struct vakt_verdict v;
};

/* One direction's answer from the BPF program (--dataplane). */
struct sim_kernel_answer {
	int checked;      /* the packet went through this enforcement point */
	int allowed;
	uint32_t reason;  /* the counter that moved */
	const char *prog; /* the program that decided: vakt_from_pod, vakt_to_pod, vakt_node_egress */
	int deferred;     /* egress decided downstream of vakt_from_pod */
	int rule_known;
	uint32_t rule;    /* the admitting conntrack entry's rule reference */
};

struct sim_result {
	int allowed;
	int self;
	struct vakt_explain ex;                          /* the engine: the explanation */
	struct sim_table_answer tables[VAKT_DIR_MAX];     /* the tables: the verdict */
	int dataplane;                                   /* the kernel was asked too */
	struct sim_kernel_answer kernel[VAKT_DIR_MAX];
};

/*
 * Answer "may src send proto/port to dst" (port is the resolved number; 0 for
 * portless protocols). Returns 0 with *r filled, -EPROTO when the tables and
 * the engine disagree, or (with w->dp) when the kernel disagrees with the
 * tables (message names both answers), other -errno on failure.
 *
 * The kernel probe: the opening packet (TCP SYN, UDP, SCTP INIT) from source
 * port SIM_DP_SPORT, through the enforcement points the tables path checks
 * (vakt_from_pod of an enforced source, vakt_to_pod of an enforced
 * destination; an egress check that vakt_from_pod defers because the
 * destination is no known pod completes in vakt_node_egress), conntrack
 * emptied after each probe. Self traffic never reaches a veth: not probed.
 */
#define SIM_DP_SPORT 49152
int sim_eval(const struct sim_world *w, const struct vakt_end *src, const struct vakt_end *dst, uint8_t proto,
	     uint16_t port, struct sim_result *r, char *err, size_t errlen);

/* "x/a" for a pod, the address for an outside end. buf >= VAKT_NAME_MAX + 64. */
const char *sim_end_name(const struct vakt_end *e, char *buf, size_t len);
#define SIM_NAME_LEN (VAKT_NAME_MAX + 64)

#endif /* VAKT_SIMCORE_H */
