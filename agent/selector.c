// SPDX-License-Identifier: Apache-2.0
/*
 * selector.c - what selects what: label selectors, ipBlocks, peers and a
 * policy's own podSelector. Pure functions of their arguments; the compiler
 * and the reference engine share them so both read the API the same way.
 */
#include <string.h>

#include "engine.h"

static int values_have(const struct vakt_sel_expr *e, const char *v)
{
	for (size_t i = 0; i < e->nvalues; i++)
		if (strcmp(e->values[i], v) == 0)
			return 1;
	return 0;
}

static int expr_match(const struct vakt_sel_expr *e, const struct vakt_labels *labels)
{
	const char *v = vakt_labels_get(labels, e->key);

	switch (e->op) {
	case VAKT_SEL_IN:
		return v && values_have(e, v);
	case VAKT_SEL_NOT_IN:
		return !v || !values_have(e, v);
	case VAKT_SEL_EXISTS:
		return v != NULL;
	case VAKT_SEL_DOES_NOT_EXIST:
		return v == NULL;
	}
	/* An operator the loader would have rejected: selects nothing (fail closed). */
	return 0;
}

int vakt_selector_is_empty(const struct vakt_selector *s)
{
	return !s || (s->match_labels.n == 0 && s->nexprs == 0);
}

int vakt_selector_match(const struct vakt_selector *s, const struct vakt_labels *labels)
{
	if (vakt_selector_is_empty(s))
		return 1;
	for (size_t i = 0; i < s->match_labels.n; i++) {
		const struct vakt_label *want = &s->match_labels.v[i];
		const char *have = vakt_labels_get(labels, want->key);

		if (!have || strcmp(have, want->value) != 0)
			return 0;
	}
	for (size_t i = 0; i < s->nexprs; i++)
		if (!expr_match(&s->exprs[i], labels))
			return 0;
	return 1;
}

int vakt_ipblock_has(const struct vakt_ipblock *b, const struct vakt_addr *a)
{
	/* Families never mix: ::/0 must not swallow the IPv4-mapped space. */
	if (!!b->cidr.v4 != !!vakt_addr_is_v4(a))
		return 0;
	if (!vakt_cidr_has(&b->cidr, a))
		return 0;
	for (size_t i = 0; i < b->nexcept; i++)
		if (vakt_cidr_has(&b->except[i], a))
			return 0;
	return 1;
}

int vakt_peer_selects_pod(const struct vakt_peer *peer, const char *policy_ns, const struct vakt_pod *pod,
			  const struct vakt_namespace *ns)
{
	/* Writable copies because struct vakt_label holds non-const pointers; never written. */
	char key[] = VAKT_NS_NAME_LABEL;
	struct vakt_label synth = { .key = key, .value = pod->ns };
	struct vakt_labels synth_labels = { .n = 1, .v = &synth };
	const struct vakt_labels *ns_labels;

	if (peer->has_ipblock) {
		for (size_t i = 0; i < pod->nips; i++)
			if (vakt_ipblock_has(&peer->ipblock, &pod->ips[i]))
				return 1;
		return 0;
	}
	/* A hostNetwork pod has the node's identity, not its labels: selectors never pick it. */
	if (pod->host_network)
		return 0;
	/* A peer with no field at all is invalid upstream; it selects nothing rather than everything. */
	if (!peer->pod_sel && !peer->ns_sel)
		return 0;
	if (!peer->ns_sel) {
		/* podSelector alone: the policy's own namespace only. */
		if (strcmp(pod->ns, policy_ns) != 0)
			return 0;
		return vakt_selector_match(peer->pod_sel, &pod->labels);
	}
	ns_labels = ns ? &ns->labels : &synth_labels;
	if (!vakt_selector_match(peer->ns_sel, ns_labels))
		return 0;
	return !peer->pod_sel || vakt_selector_match(peer->pod_sel, &pod->labels);
}

int vakt_policy_selects(const struct vakt_policy *pol, const struct vakt_pod *pod, int dir)
{
	if (dir < 0 || dir >= VAKT_DIR_MAX || !(pol->types & (1 << dir)))
		return 0;
	if (pod->host_network)
		return 0;
	if (strcmp(pol->ns, pod->ns) != 0)
		return 0;
	return vakt_selector_match(&pol->pod_sel, &pod->labels);
}
