/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.h - networking.k8s.io/v1 NetworkPolicy semantics, evaluated directly
 * over the objects of the store.
 *
 * This is the specification: the compiler (agent/compiler.c) reuses the
 * matching helpers below, and its tables are tested against
 * vakt_engine_eval(). `vakt sim` uses vakt_engine_eval() to explain which
 * policy and rule allowed each direction. docs/semantics.md lists every
 * decision taken on edge cases.
 *
 * Everything here is a pure function of its arguments: no allocation except
 * a temporary array in vakt_engine_eval(), no global state.
 */
#ifndef VAKT_ENGINE_H
#define VAKT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "store.h"

/* The label every namespace carries (and the engine synthesizes when the namespace is unknown). */
#define VAKT_NS_NAME_LABEL "kubernetes.io/metadata.name"

/* LabelSelector semantics: all matchLabels and all expressions must hold; empty selector matches everything.
 * In: key present and value in values; NotIn: key absent or value not in values; Exists; DoesNotExist.
 * A NULL selector (absent field) is treated like the empty one. */
int vakt_selector_match(const struct vakt_selector *s, const struct vakt_labels *labels);
int vakt_selector_is_empty(const struct vakt_selector *s);
/* Resolve a NetworkPolicyPort against the named ports of the pod the port refers to.
 * Returns 1 with *proto and the inclusive range [*lo,*hi] (lo=1,hi=65535 for "all ports of proto"),
 * 0 if it is a named port the pod does not have (or whose protocol differs from the spec's protocol), -EINVAL on a bad spec.
 * ports may be NULL when nports is 0 (an end without named ports: an address outside the cluster).
 * If the pod lists the same name and protocol more than once (two containers), the lowest port wins. */
int vakt_port_resolve(const struct vakt_port_spec *ps, const struct vakt_named_port *ports, size_t nports,
		      uint8_t *proto, uint16_t *lo, uint16_t *hi);
/* The minimal set of prefixes (value, plen 0..16 over the 16 port bits) covering [lo,hi] exactly. Calls cb for each;
 * stops and returns cb's value if non-zero. Prefixes come in ascending order of value. -EINVAL if lo > hi. */
int vakt_port_range_prefixes(uint16_t lo, uint16_t hi, int (*cb)(void *arg, uint16_t value, uint8_t plen), void *arg);
/* An address is in an ipBlock: in cidr, in no except. An IPv6 ipBlock never contains IPv4(-mapped) addresses and an IPv4 block never IPv6 ones. */
int vakt_ipblock_has(const struct vakt_ipblock *b, const struct vakt_addr *a);
/* A peer (podSelector / namespaceSelector / both) selects a pod. ns is the pod's namespace object (NULL if unknown: then only
 * the synthesized label kubernetes.io/metadata.name=<pod ns> is known). policy_ns is the policy's namespace.
 * ipBlock peers match pods by address only (use vakt_ipblock_has on each pod IP): here, any of the pod's IPs.
 * hostNetwork pods are matched by ipBlock peers only. */
int vakt_peer_selects_pod(const struct vakt_peer *peer, const char *policy_ns, const struct vakt_pod *pod,
			  const struct vakt_namespace *ns);
/* The policy applies to the pod (same namespace, podSelector matches) in direction dir (policy has that type).
 * Never for a hostNetwork pod: policies do not apply to them. */
int vakt_policy_selects(const struct vakt_policy *pol, const struct vakt_pod *pod, int dir);

/* Reference evaluation. An end is a pod (pod != NULL; addr = the pod IP of the family in use) or an address outside the cluster (pod == NULL). */
struct vakt_end {
	const struct vakt_pod *pod;
	struct vakt_addr addr;
};
#define VAKT_EXPLAIN_MAX 32
struct vakt_rule_hit {
	const struct vakt_policy *pol;
	uint32_t rule; /* index in pol->rules[dir] */
};
struct vakt_dir_explain {
	int enforced;   /* the end is a pod whose policy applies (not outside, not hostNetwork) */
	int isolated;   /* some policy selects the pod for this direction */
	int allowed;
	size_t nhits;   /* rules that allow, in store order by policy ns/name then rule index; may exceed VAKT_EXPLAIN_MAX */
	struct vakt_rule_hit hits[VAKT_EXPLAIN_MAX];
};
struct vakt_explain {
	int allowed;     /* egress of src AND ingress of dst (or self traffic) */
	int self;        /* src and dst are the same pod: always allowed */
	struct vakt_dir_explain egress;  /* of src */
	struct vakt_dir_explain ingress; /* of dst */
};
/* proto: IPPROTO_TCP/UDP/SCTP or another protocol (then port 0: only rules without ports allow it). port: destination port.
 * Returns 0 with *out filled, -EINVAL on bad arguments, -ENOMEM. */
int vakt_engine_eval(const struct vakt_store *s, const struct vakt_end *src, const struct vakt_end *dst,
		     uint8_t proto, uint16_t port, struct vakt_explain *out);

/*
 * One rule of pol in direction dir allows traffic with the peer end (the
 * other side: destination on egress, source on ingress), protocol and
 * destination port. named_pod is the pod named ports resolve against (the
 * destination pod in both directions; NULL for an address outside the
 * cluster, where a named port never matches). ns is the peer pod's namespace
 * object (NULL if unknown). Returns 1, 0, or -EINVAL for an invalid rule.
 */
int vakt_rule_allows(const struct vakt_policy *pol, int dir, uint32_t rule, const struct vakt_end *peer,
		     const struct vakt_namespace *peer_ns, const struct vakt_pod *named_pod, uint8_t proto,
		     uint16_t port);

#endif /* VAKT_ENGINE_H */
