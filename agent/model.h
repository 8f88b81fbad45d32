/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model.h - the Kubernetes objects vakt needs, and only the fields it needs.
 *
 * Produced by the sources (agent/loader.c for manifests, agent/kube.c for the
 * API), held by the store, read by the engine and the compiler. Every object
 * owns its memory; vakt_*_free() releases it. Strings are NUL-terminated
 * heap copies. Label lists are sorted by key with unique keys, so two label
 * sets can be compared with vakt_labels_cmp().
 */
#ifndef VAKT_MODEL_H
#define VAKT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"

struct vakt_label {
	char *key;
	char *value;
};

struct vakt_labels {
	size_t n;
	struct vakt_label *v; /* sorted by key, keys unique */
};

struct vakt_namespace {
	char *name;
	char *resource_version; /* may be NULL */
	struct vakt_labels labels; /* always has kubernetes.io/metadata.name */
};

/* A named container port: the target of named ports in policies. */
struct vakt_named_port {
	char *name;
	uint16_t port;
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
};

#define VAKT_POD_MAX_IPS 2

struct vakt_pod {
	char *ns;
	char *name;
	char *node;             /* spec.nodeName, may be NULL (unscheduled) */
	char *resource_version; /* may be NULL */
	struct vakt_labels labels;
	int host_network;
	size_t nips; /* status.podIPs (or podIP); 0 while pending */
	struct vakt_addr ips[VAKT_POD_MAX_IPS];
	size_t nports; /* container ports that have a name, sorted by name */
	struct vakt_named_port *ports;
};

enum vakt_sel_op {
	VAKT_SEL_IN,
	VAKT_SEL_NOT_IN,
	VAKT_SEL_EXISTS,
	VAKT_SEL_DOES_NOT_EXIST,
};

struct vakt_sel_expr {
	char *key;
	enum vakt_sel_op op;
	size_t nvalues;
	char **values; /* sorted, for In and NotIn */
};

/* A LabelSelector. Empty (no labels, no expressions) matches everything. */
struct vakt_selector {
	struct vakt_labels match_labels;
	size_t nexprs;
	struct vakt_sel_expr *exprs;
};

struct vakt_cidr {
	struct vakt_addr addr; /* masked to the prefix */
	uint8_t plen;          /* 0..128, IPv4 as 96 + n */
	uint8_t v4;            /* written as an IPv4 prefix */
};

struct vakt_ipblock {
	struct vakt_cidr cidr;
	size_t nexcept;
	struct vakt_cidr *except; /* each strictly inside cidr */
};

/*
 * A NetworkPolicyPeer. Exactly one of: ipblock, or one or both selectors.
 * A NULL selector is an absent field; a present empty selector matches all.
 * pod_sel alone: pods of the policy's namespace; ns_sel alone: all pods of
 * matching namespaces; both: matching pods in matching namespaces.
 */
struct vakt_peer {
	struct vakt_selector *pod_sel;
	struct vakt_selector *ns_sel;
	int has_ipblock;
	struct vakt_ipblock ipblock;
};

/* A NetworkPolicyPort. */
struct vakt_port_spec {
	uint8_t proto;     /* default IPPROTO_TCP */
	uint16_t port;     /* 0 with name == NULL: every port of proto */
	uint16_t end_port; /* 0: single port; else the range port..end_port */
	char *name;        /* named port, resolved per pod */
};

/* One ingress or egress rule. npeers == 0: all peers; nports == 0: all ports and protocols. */
struct vakt_rule {
	size_t npeers;
	struct vakt_peer *peers;
	size_t nports;
	struct vakt_port_spec *ports;
};

#define VAKT_PT_INGRESS (1 << VAKT_DIR_INGRESS)
#define VAKT_PT_EGRESS (1 << VAKT_DIR_EGRESS)

struct vakt_policy {
	char *ns;
	char *name;
	char *resource_version; /* may be NULL */
	struct vakt_selector pod_sel;
	int types; /* VAKT_PT_*, defaults already applied */
	size_t nrules[VAKT_DIR_MAX];
	struct vakt_rule *rules[VAKT_DIR_MAX]; /* [VAKT_DIR_INGRESS], [VAKT_DIR_EGRESS] */
};

void vakt_labels_free(struct vakt_labels *l);
int vakt_labels_set(struct vakt_labels *l, const char *key, const char *value);
const char *vakt_labels_get(const struct vakt_labels *l, const char *key);
int vakt_labels_cmp(const struct vakt_labels *a, const struct vakt_labels *b);
int vakt_labels_copy(struct vakt_labels *dst, const struct vakt_labels *src);

void vakt_selector_free(struct vakt_selector *s);
void vakt_namespace_free(struct vakt_namespace *ns);
void vakt_pod_free(struct vakt_pod *pod);
void vakt_policy_free(struct vakt_policy *pol);

/* Deep copies; return NULL on allocation failure. */
struct vakt_namespace *vakt_namespace_dup(const struct vakt_namespace *ns);
struct vakt_pod *vakt_pod_dup(const struct vakt_pod *pod);
struct vakt_policy *vakt_policy_dup(const struct vakt_policy *pol);

/* Addresses and prefixes. Return 0 or -EINVAL. */
int vakt_addr_parse(const char *s, struct vakt_addr *out, int *is_v4);
int vakt_addr_is_v4(const struct vakt_addr *a);
/* Writes the conventional text form (dotted quad for IPv4); buf >= 46 bytes. */
const char *vakt_addr_str(const struct vakt_addr *a, char *buf, size_t len);
int vakt_cidr_parse(const char *s, struct vakt_cidr *out);
int vakt_cidr_contains(const struct vakt_cidr *outer, const struct vakt_cidr *inner);
int vakt_cidr_has(const struct vakt_cidr *c, const struct vakt_addr *a);
const char *vakt_cidr_str(const struct vakt_cidr *c, char *buf, size_t len);

/* "TCP" -> IPPROTO_TCP; -EINVAL for anything but TCP, UDP, SCTP. */
int vakt_proto_parse(const char *s);
const char *vakt_proto_name(int proto);

#endif /* VAKT_MODEL_H */
