// SPDX-License-Identifier: Apache-2.0
/*
 * LabelSelector semantics (matchLabels, the four operators, missing keys,
 * the empty selector), peers (podSelector, namespaceSelector, both) and a
 * policy's own podSelector and policyTypes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"

/* Appends an expression; values are a NULL-terminated list given sorted. */
static void sel_expr(struct vakt_selector *s, const char *key, enum vakt_sel_op op, ...)
{
	struct vakt_sel_expr *e;
	const char *v;
	va_list ap;

	s->exprs = realloc(s->exprs, (s->nexprs + 1) * sizeof(*s->exprs));
	assert_non_null(s->exprs);
	e = &s->exprs[s->nexprs++];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	e->op = op;
	va_start(ap, op);
	while ((v = va_arg(ap, const char *))) {
		e->values = realloc(e->values, (e->nvalues + 1) * sizeof(*e->values));
		assert_non_null(e->values);
		e->values[e->nvalues++] = strdup(v);
	}
	va_end(ap);
}

static void sel_label(struct vakt_selector *s, const char *k, const char *v)
{
	assert_int_equal(vakt_labels_set(&s->match_labels, k, v), 0);
}

static struct vakt_selector *sel_new(void)
{
	struct vakt_selector *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	return s;
}

static void sel_put(struct vakt_selector *s)
{
	vakt_selector_free(s);
	free(s);
}

/* labels from "k=v,k=v" */
static void labels_of(struct vakt_labels *l, const char *spec)
{
	char *dup = strdup(spec), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		assert_non_null(eq);
		*eq = '\0';
		assert_int_equal(vakt_labels_set(l, t, eq + 1), 0);
	}
	free(dup);
}

static int matches(const struct vakt_selector *s, const char *spec)
{
	struct vakt_labels l = { 0 };
	int r;

	labels_of(&l, spec);
	r = vakt_selector_match(s, &l);
	vakt_labels_free(&l);
	return r;
}

static void test_empty_selector_matches_everything(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	assert_true(vakt_selector_is_empty(s));
	assert_true(matches(s, ""));
	assert_true(matches(s, "app=web,tier=front"));
	/* An absent selector reads like the empty one. */
	assert_true(vakt_selector_is_empty(NULL));
	assert_true(matches(NULL, "x=y"));
	sel_put(s);
}

static void test_match_labels_need_every_pair(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_label(s, "app", "web");
	sel_label(s, "tier", "front");
	assert_false(vakt_selector_is_empty(s));
	assert_true(matches(s, "app=web,tier=front"));
	assert_true(matches(s, "app=web,tier=front,extra=1"));
	assert_false(matches(s, "app=web"));
	assert_false(matches(s, "app=web,tier=back"));
	assert_false(matches(s, "app=Web,tier=front"));
	assert_false(matches(s, ""));
	sel_put(s);
}

static void test_match_label_with_empty_value_needs_the_key(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_label(s, "canary", "");
	assert_true(matches(s, "canary="));
	assert_false(matches(s, "canary=yes"));
	assert_false(matches(s, "other="));
	sel_put(s);
}

static void test_in_requires_key_and_listed_value(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_expr(s, "env", VAKT_SEL_IN, "prod", "staging", NULL);
	assert_true(matches(s, "env=prod"));
	assert_true(matches(s, "env=staging,app=x"));
	assert_false(matches(s, "env=dev"));
	assert_false(matches(s, "app=x"));
	assert_false(matches(s, ""));
	assert_false(vakt_selector_is_empty(s));
	sel_put(s);
}

static void test_not_in_matches_missing_key_or_unlisted_value(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_expr(s, "env", VAKT_SEL_NOT_IN, "prod", "staging", NULL);
	assert_false(matches(s, "env=prod"));
	assert_false(matches(s, "env=staging"));
	assert_true(matches(s, "env=dev"));
	assert_true(matches(s, "app=x"));
	assert_true(matches(s, ""));
	sel_put(s);
}

static void test_exists_needs_key_with_any_value(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_expr(s, "env", VAKT_SEL_EXISTS, NULL);
	assert_true(matches(s, "env=prod"));
	assert_true(matches(s, "env="));
	assert_false(matches(s, "app=env"));
	assert_false(matches(s, ""));
	sel_put(s);
}

static void test_does_not_exist_needs_key_absent(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_expr(s, "env", VAKT_SEL_DOES_NOT_EXIST, NULL);
	assert_false(matches(s, "env=prod"));
	assert_false(matches(s, "env="));
	assert_true(matches(s, "app=env"));
	assert_true(matches(s, ""));
	sel_put(s);
}

static void test_labels_and_expressions_are_anded(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_label(s, "app", "db");
	sel_expr(s, "env", VAKT_SEL_IN, "prod", NULL);
	sel_expr(s, "legacy", VAKT_SEL_DOES_NOT_EXIST, NULL);
	sel_expr(s, "team", VAKT_SEL_EXISTS, NULL);
	assert_true(matches(s, "app=db,env=prod,team=a"));
	assert_false(matches(s, "app=db,env=prod"));
	assert_false(matches(s, "app=db,env=prod,team=a,legacy=1"));
	assert_false(matches(s, "app=web,env=prod,team=a"));
	assert_false(matches(s, "app=db,env=dev,team=a"));
	sel_put(s);
}

static void test_contradictory_expressions_match_nothing(void **state)
{
	struct vakt_selector *s = sel_new();

	(void)state;
	sel_expr(s, "k", VAKT_SEL_EXISTS, NULL);
	sel_expr(s, "k", VAKT_SEL_DOES_NOT_EXIST, NULL);
	assert_false(matches(s, "k=v"));
	assert_false(matches(s, ""));
	sel_put(s);
}

/* --- peers ---------------------------------------------------------------- */

static struct vakt_pod *pod_new(const char *ns, const char *name, const char *labels)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	labels_of(&p->labels, labels);
	return p;
}

static struct vakt_namespace *ns_new(const char *name, const char *labels)
{
	struct vakt_namespace *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->name = strdup(name);
	labels_of(&n->labels, labels);
	assert_int_equal(vakt_labels_set(&n->labels, VAKT_NS_NAME_LABEL, name), 0);
	return n;
}

static void test_pod_selector_alone_selects_only_the_policy_namespace(void **state)
{
	struct vakt_pod *xb = pod_new("x", "b", "pod=b"), *yb = pod_new("y", "b", "pod=b");
	struct vakt_namespace *x = ns_new("x", "ns=x"), *y = ns_new("y", "ns=y");
	struct vakt_peer peer = { .pod_sel = sel_new() };

	(void)state;
	sel_label(peer.pod_sel, "pod", "b");
	assert_true(vakt_peer_selects_pod(&peer, "x", xb, x));
	assert_false(vakt_peer_selects_pod(&peer, "x", yb, y));
	assert_false(vakt_peer_selects_pod(&peer, "z", xb, x));
	sel_put(peer.pod_sel);
	peer.pod_sel = sel_new(); /* {}: every pod of the policy's namespace */
	assert_true(vakt_peer_selects_pod(&peer, "x", xb, x));
	assert_false(vakt_peer_selects_pod(&peer, "x", yb, y));
	sel_put(peer.pod_sel);
	vakt_pod_free(xb);
	vakt_pod_free(yb);
	vakt_namespace_free(x);
	vakt_namespace_free(y);
}

static void test_namespace_selector_alone_selects_all_pods_of_matching_namespaces(void **state)
{
	struct vakt_pod *xa = pod_new("x", "a", "pod=a"), *ya = pod_new("y", "a", "pod=a");
	struct vakt_namespace *x = ns_new("x", "ns=x"), *y = ns_new("y", "ns=y");
	struct vakt_peer peer = { .ns_sel = sel_new() };

	(void)state;
	sel_label(peer.ns_sel, "ns", "y");
	assert_false(vakt_peer_selects_pod(&peer, "x", xa, x));
	assert_true(vakt_peer_selects_pod(&peer, "x", ya, y));
	sel_put(peer.ns_sel);
	peer.ns_sel = sel_new(); /* {}: every pod of the cluster */
	assert_true(vakt_peer_selects_pod(&peer, "x", xa, x));
	assert_true(vakt_peer_selects_pod(&peer, "x", ya, y));
	assert_true(vakt_peer_selects_pod(&peer, "x", ya, NULL));
	sel_put(peer.ns_sel);
	vakt_pod_free(xa);
	vakt_pod_free(ya);
	vakt_namespace_free(x);
	vakt_namespace_free(y);
}

static void test_both_selectors_in_one_peer_are_anded(void **state)
{
	struct vakt_pod *ya = pod_new("y", "a", "pod=a"), *yb = pod_new("y", "b", "pod=b");
	struct vakt_pod *zb = pod_new("z", "b", "pod=b");
	struct vakt_namespace *y = ns_new("y", "ns=y"), *z = ns_new("z", "ns=z");
	struct vakt_peer peer = { .pod_sel = sel_new(), .ns_sel = sel_new() };

	(void)state;
	sel_label(peer.pod_sel, "pod", "b");
	sel_label(peer.ns_sel, "ns", "y");
	/* The pod selector applies in the selected namespaces, not the policy's. */
	assert_true(vakt_peer_selects_pod(&peer, "x", yb, y));
	assert_false(vakt_peer_selects_pod(&peer, "x", ya, y));
	assert_false(vakt_peer_selects_pod(&peer, "x", zb, z));
	sel_put(peer.pod_sel);
	sel_put(peer.ns_sel);
	vakt_pod_free(ya);
	vakt_pod_free(yb);
	vakt_pod_free(zb);
	vakt_namespace_free(y);
	vakt_namespace_free(z);
}

static void test_unknown_namespace_has_only_its_name_label(void **state)
{
	struct vakt_pod *qa = pod_new("q", "a", "pod=a");
	struct vakt_peer peer = { .ns_sel = sel_new() };

	(void)state;
	sel_label(peer.ns_sel, VAKT_NS_NAME_LABEL, "q");
	assert_true(vakt_peer_selects_pod(&peer, "x", qa, NULL));
	sel_put(peer.ns_sel);

	peer.ns_sel = sel_new();
	sel_label(peer.ns_sel, "ns", "q");
	assert_false(vakt_peer_selects_pod(&peer, "x", qa, NULL));
	sel_put(peer.ns_sel);

	peer.ns_sel = sel_new();
	sel_expr(peer.ns_sel, "team", VAKT_SEL_DOES_NOT_EXIST, NULL);
	assert_true(vakt_peer_selects_pod(&peer, "x", qa, NULL));
	sel_put(peer.ns_sel);
	vakt_pod_free(qa);
}

static void test_namespace_name_label_selects_by_name(void **state)
{
	struct vakt_pod *ya = pod_new("y", "a", "pod=a"), *za = pod_new("z", "a", "pod=a");
	struct vakt_namespace *y = ns_new("y", ""), *z = ns_new("z", "");
	struct vakt_peer peer = { .ns_sel = sel_new() };

	(void)state;
	sel_expr(peer.ns_sel, VAKT_NS_NAME_LABEL, VAKT_SEL_NOT_IN, "y", NULL);
	assert_false(vakt_peer_selects_pod(&peer, "x", ya, y));
	assert_true(vakt_peer_selects_pod(&peer, "x", za, z));
	sel_put(peer.ns_sel);
	vakt_pod_free(ya);
	vakt_pod_free(za);
	vakt_namespace_free(y);
	vakt_namespace_free(z);
}

static void test_selectors_never_select_host_network_pods(void **state)
{
	struct vakt_pod *h = pod_new("x", "h", "pod=a");
	struct vakt_namespace *x = ns_new("x", "ns=x");
	struct vakt_peer peer = { .pod_sel = sel_new(), .ns_sel = sel_new() };

	(void)state;
	h->host_network = 1;
	assert_false(vakt_peer_selects_pod(&peer, "x", h, x));
	sel_put(peer.ns_sel);
	peer.ns_sel = NULL;
	assert_false(vakt_peer_selects_pod(&peer, "x", h, x));
	sel_put(peer.pod_sel);
	vakt_pod_free(h);
	vakt_namespace_free(x);
}

static void test_peer_without_fields_selects_nothing(void **state)
{
	struct vakt_pod *xa = pod_new("x", "a", "pod=a");
	struct vakt_peer peer = { 0 };

	(void)state;
	assert_false(vakt_peer_selects_pod(&peer, "x", xa, NULL));
	vakt_pod_free(xa);
}

/* --- a policy's own podSelector ------------------------------------------ */

static void test_policy_selects_pods_of_its_namespace_for_its_types(void **state)
{
	struct vakt_policy pol = { .ns = "x", .name = "p", .types = VAKT_PT_INGRESS };
	struct vakt_pod *xa = pod_new("x", "a", "pod=a"), *xb = pod_new("x", "b", "pod=b");
	struct vakt_pod *ya = pod_new("y", "a", "pod=a");

	(void)state;
	sel_label(&pol.pod_sel, "pod", "a");
	assert_true(vakt_policy_selects(&pol, xa, VAKT_DIR_INGRESS));
	assert_false(vakt_policy_selects(&pol, xa, VAKT_DIR_EGRESS));
	assert_false(vakt_policy_selects(&pol, xb, VAKT_DIR_INGRESS));
	assert_false(vakt_policy_selects(&pol, ya, VAKT_DIR_INGRESS));
	pol.types = VAKT_PT_EGRESS;
	assert_false(vakt_policy_selects(&pol, xa, VAKT_DIR_INGRESS));
	assert_true(vakt_policy_selects(&pol, xa, VAKT_DIR_EGRESS));
	pol.types = VAKT_PT_INGRESS | VAKT_PT_EGRESS;
	assert_true(vakt_policy_selects(&pol, xa, VAKT_DIR_INGRESS));
	assert_true(vakt_policy_selects(&pol, xa, VAKT_DIR_EGRESS));
	assert_false(vakt_policy_selects(&pol, xa, 7));
	xa->host_network = 1;
	assert_false(vakt_policy_selects(&pol, xa, VAKT_DIR_INGRESS));
	vakt_selector_free(&pol.pod_sel);
	vakt_pod_free(xa);
	vakt_pod_free(xb);
	vakt_pod_free(ya);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_selector_matches_everything),
		cmocka_unit_test(test_match_labels_need_every_pair),
		cmocka_unit_test(test_match_label_with_empty_value_needs_the_key),
		cmocka_unit_test(test_in_requires_key_and_listed_value),
		cmocka_unit_test(test_not_in_matches_missing_key_or_unlisted_value),
		cmocka_unit_test(test_exists_needs_key_with_any_value),
		cmocka_unit_test(test_does_not_exist_needs_key_absent),
		cmocka_unit_test(test_labels_and_expressions_are_anded),
		cmocka_unit_test(test_contradictory_expressions_match_nothing),
		cmocka_unit_test(test_pod_selector_alone_selects_only_the_policy_namespace),
		cmocka_unit_test(test_namespace_selector_alone_selects_all_pods_of_matching_namespaces),
		cmocka_unit_test(test_both_selectors_in_one_peer_are_anded),
		cmocka_unit_test(test_unknown_namespace_has_only_its_name_label),
		cmocka_unit_test(test_namespace_name_label_selects_by_name),
		cmocka_unit_test(test_selectors_never_select_host_network_pods),
		cmocka_unit_test(test_peer_without_fields_selects_nothing),
		cmocka_unit_test(test_policy_selects_pods_of_its_namespace_for_its_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
