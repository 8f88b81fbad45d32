// SPDX-License-Identifier: Apache-2.0
/*
 * The manifest loader on every accepted shape: multi-document YAML, JSON,
 * List and typed lists, concatenated JSON, directories, standard input,
 * the defaults Kubernetes applies, YAML typing, anchors, and the hand-over
 * to the store. Errors are in test_loader_errors.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"
#include "store.h"

#define DATA_DIR "tests/unit/data/loader"

static const struct vakt_namespace *find_ns(const struct vakt_objset *s, const char *name)
{
	for (size_t i = 0; i < s->nns; i++)
		if (!strcmp(s->ns[i]->name, name))
			return s->ns[i];
	return NULL;
}

static const struct vakt_pod *find_pod(const struct vakt_objset *s, const char *ns,
				       const char *name)
{
	for (size_t i = 0; i < s->npods; i++)
		if (!strcmp(s->pods[i]->ns, ns) && !strcmp(s->pods[i]->name, name))
			return s->pods[i];
	return NULL;
}

static const struct vakt_policy *find_pol(const struct vakt_objset *s, const char *ns,
					  const char *name)
{
	for (size_t i = 0; i < s->npols; i++)
		if (!strcmp(s->pols[i]->ns, ns) && !strcmp(s->pols[i]->name, name))
			return s->pols[i];
	return NULL;
}

static const char *addr(const struct vakt_addr *a, char *buf)
{
	return vakt_addr_str(a, buf, 64);
}

/* Loads a buffer that must be valid; fails the test with the loader's message otherwise. */
static void load_ok(struct vakt_objset *set, const char *origin, const char *text,
		    const struct vakt_load_opts *o)
{
	struct vakt_error err = { { 0 } };
	int r = vakt_load_buffer(set, text, strlen(text), origin, o, &err);

	if (r)
		fail_msg("load of %s failed: %d %s", origin, r, err.msg);
}

static void test_multi_document_yaml_loads_every_object(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	const struct vakt_namespace *x, *y;
	const struct vakt_pod *a, *b;
	const struct vakt_policy *p;
	const struct vakt_rule *r;
	char buf[64];

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/multi.yaml", NULL, &err), 0);
	/* The ConfigMap and the empty documents are skipped. */
	assert_int_equal(set.nns, 2);
	assert_int_equal(set.npods, 2);
	assert_int_equal(set.npols, 1);

	x = find_ns(&set, "x");
	assert_non_null(x);
	assert_string_equal(vakt_labels_get(&x->labels, "team"), "blue");
	assert_string_equal(vakt_labels_get(&x->labels, "kubernetes.io/metadata.name"), "x");
	y = find_ns(&set, "y"); /* y is a string in YAML 1.2, not a boolean */
	assert_non_null(y);

	a = find_pod(&set, "x", "a");
	assert_non_null(a);
	assert_string_equal(a->node, "node-1");
	assert_string_equal(a->resource_version, "1234");
	assert_string_equal(vakt_labels_get(&a->labels, "tier"), "80");
	assert_int_equal(a->host_network, 0);
	assert_int_equal(a->nips, 2);
	assert_string_equal(addr(&a->ips[0], buf), "10.0.1.2");
	assert_string_equal(addr(&a->ips[1], buf), "fd00::12");
	/* Named ports only, sorted by name, protocol defaulting to TCP. */
	assert_int_equal(a->nports, 3);
	assert_string_equal(a->ports[0].name, "serve-80-tcp");
	assert_int_equal(a->ports[0].port, 80);
	assert_int_equal(a->ports[0].proto, IPPROTO_TCP);
	assert_string_equal(a->ports[1].name, "serve-80-udp");
	assert_int_equal(a->ports[1].proto, IPPROTO_UDP);
	assert_string_equal(a->ports[2].name, "serve-81-sctp");
	assert_int_equal(a->ports[2].port, 81);
	assert_int_equal(a->ports[2].proto, IPPROTO_SCTP);

	b = find_pod(&set, "default", "b"); /* no metadata.namespace: "default" */
	assert_non_null(b);
	assert_int_equal(b->host_network, 1);
	assert_null(b->node);
	assert_null(b->resource_version);
	assert_int_equal(b->nports, 0);

	p = find_pol(&set, "x", "allow-web");
	assert_non_null(p);
	assert_int_equal(p->types, VAKT_PT_INGRESS);
	assert_string_equal(vakt_labels_get(&p->pod_sel.match_labels, "pod"), "a");
	assert_int_equal(p->pod_sel.nexprs, 2);
	assert_string_equal(p->pod_sel.exprs[0].key, "tier");
	assert_int_equal(p->pod_sel.exprs[0].op, VAKT_SEL_IN);
	assert_int_equal(p->pod_sel.exprs[0].nvalues, 2); /* sorted, duplicates removed */
	assert_string_equal(p->pod_sel.exprs[0].values[0], "80");
	assert_string_equal(p->pod_sel.exprs[0].values[1], "90");
	assert_int_equal(p->pod_sel.exprs[1].op, VAKT_SEL_DOES_NOT_EXIST);
	assert_int_equal(p->pod_sel.exprs[1].nvalues, 0);
	assert_int_equal(p->nrules[VAKT_DIR_INGRESS], 2);
	assert_int_equal(p->nrules[VAKT_DIR_EGRESS], 0);
	assert_null(p->rules[VAKT_DIR_EGRESS]);

	r = &p->rules[VAKT_DIR_INGRESS][0];
	assert_int_equal(r->npeers, 2);
	assert_non_null(r->peers[0].pod_sel);
	assert_int_equal(r->peers[0].pod_sel->match_labels.n, 0);
	assert_non_null(r->peers[0].ns_sel);
	assert_string_equal(vakt_labels_get(&r->peers[0].ns_sel->match_labels, "team"), "blue");
	assert_int_equal(r->peers[0].has_ipblock, 0);
	assert_null(r->peers[1].pod_sel);
	assert_null(r->peers[1].ns_sel);
	assert_int_equal(r->peers[1].has_ipblock, 1);
	assert_string_equal(vakt_cidr_str(&r->peers[1].ipblock.cidr, buf, sizeof(buf)),
			    "10.0.0.0/8");
	assert_int_equal(r->peers[1].ipblock.nexcept, 1);
	assert_string_equal(vakt_cidr_str(&r->peers[1].ipblock.except[0], buf, sizeof(buf)),
			    "10.1.0.0/16");
	assert_int_equal(r->nports, 3);
	assert_int_equal(r->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(r->ports[0].port, 80);
	assert_int_equal(r->ports[0].end_port, 0);
	assert_null(r->ports[0].name);
	assert_int_equal(r->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(r->ports[1].port, 0);
	assert_string_equal(r->ports[1].name, "serve-80-udp");
	assert_int_equal(r->ports[2].proto, IPPROTO_SCTP);
	assert_int_equal(r->ports[2].port, 1000);
	assert_int_equal(r->ports[2].end_port, 2000);
	/* `- {}`: all peers, all ports. */
	assert_int_equal(p->rules[VAKT_DIR_INGRESS][1].npeers, 0);
	assert_int_equal(p->rules[VAKT_DIR_INGRESS][1].nports, 0);
	vakt_objset_free(&set);
	assert_int_equal(set.nns + set.npods + set.npols, 0);
	assert_null(set.pods);
}

static void test_json_list_loads_items_and_skips_other_kinds(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	const struct vakt_pod *c;
	const struct vakt_policy *p;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/list.json", NULL, &err), 0);
	assert_int_equal(set.nns, 1);
	assert_int_equal(set.npods, 1);
	assert_int_equal(set.npols, 1);
	c = find_pod(&set, "z", "c");
	assert_non_null(c);
	assert_int_equal(c->nports, 1);
	assert_string_equal(c->ports[0].name, "http");
	p = find_pol(&set, "z", "deny-egress");
	assert_non_null(p);
	assert_int_equal(p->types, VAKT_PT_EGRESS);
	vakt_objset_free(&set);
}

static void test_typed_list_items_need_no_kind(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	const struct vakt_pod *p1, *p2;
	char buf[64];

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/podlist.json", NULL, &err), 0);
	assert_int_equal(set.npods, 2);
	p1 = find_pod(&set, "q", "p1");
	p2 = find_pod(&set, "q", "p2");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_string_equal(p1->resource_version, "7");
	assert_string_equal(p1->node, "n");
	assert_string_equal(addr(&p2->ips[0], buf), "fd00::2");
	vakt_objset_free(&set);
}

static void test_typed_lists_of_every_kind_load(void **state)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: NamespaceList\nitems:\n- metadata: {name: n1}\n"
		"---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n"
		"- metadata: {name: p1, namespace: n1}\n  spec: {podSelector: {}}\n"
		"- kind: NetworkPolicy\n  metadata: {name: p2, namespace: n1}\n"
		"  spec: {podSelector: {}}\n"
		"---\n"
		"apiVersion: v1\nkind: List\nitems: []\n";
	struct vakt_objset set = { 0 };

	(void)state;
	load_ok(&set, "lists.yaml", yaml, NULL);
	assert_int_equal(set.nns, 1);
	assert_int_equal(set.npols, 2);
	assert_non_null(find_pol(&set, "n1", "p2"));
	vakt_objset_free(&set);
}

static void test_concatenated_json_documents_load(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/stream.json", NULL, &err), 0);
	assert_int_equal(set.nns, 2);
	assert_non_null(find_ns(&set, "s1"));
	assert_non_null(find_ns(&set, "s2"));
	vakt_objset_free(&set);
}

static void test_directory_loads_manifests_sorted_skipping_hidden_and_subdirs(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/dir", NULL, &err), 0);
	/* 10-ns.yaml, 20-pod.yml, 30-pol.json; not .hidden.yaml, notes.txt or sub/. */
	assert_int_equal(set.nns, 1);
	assert_int_equal(set.npods, 1);
	assert_int_equal(set.npols, 1);
	assert_string_equal(set.ns[0]->name, "d1");
	assert_null(find_ns(&set, "hidden"));
	assert_null(find_ns(&set, "nested"));
	assert_non_null(find_pod(&set, "d1", "p"));
	assert_non_null(find_pol(&set, "d1", "np"));
	vakt_objset_free(&set);
}

static void test_dash_reads_standard_input(void **state)
{
	static const char text[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: piped}\n"
				   "status: {podIP: 10.7.0.1}\n";
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	int fds[2], saved;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fds[1]);
	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[0], STDIN_FILENO) >= 0);
	close(fds[0]);
	assert_int_equal(vakt_load_path(&set, "-", NULL, &err), 0);
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
	assert_int_equal(set.npods, 1);
	assert_string_equal(set.pods[0]->ns, "default");
	assert_string_equal(set.pods[0]->name, "piped");
	vakt_objset_free(&set);
}

static void test_stdin_errors_name_stdin(void **state)
{
	static const char text[] = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}";
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	int fds[2], saved;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fds[1]);
	saved = dup(STDIN_FILENO);
	dup2(fds[0], STDIN_FILENO);
	close(fds[0]);
	assert_int_equal(vakt_load_path(&set, "-", NULL, &err), -EINVAL);
	dup2(saved, STDIN_FILENO);
	close(saved);
	/* Sniffed as JSON by its first character. */
	assert_non_null(strstr(err.msg, "<stdin>: document 1: Pod <unnamed>: metadata.name: missing"));
	vakt_objset_free(&set);
}

#define POL(spec)                                                                              \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"         \
	"spec:\n  podSelector: {}\n" spec

static int policy_types_of(const char *text)
{
	struct vakt_objset set = { 0 };
	int types;

	load_ok(&set, "types.yaml", text, NULL);
	assert_int_equal(set.npols, 1);
	types = set.pols[0]->types;
	vakt_objset_free(&set);
	return types;
}

static void test_policy_types_default_like_kubernetes(void **state)
{
	(void)state;
	assert_int_equal(policy_types_of(POL("")), VAKT_PT_INGRESS);
	assert_int_equal(policy_types_of(POL("  ingress: [{}]\n")), VAKT_PT_INGRESS);
	/* Egress joins only when there is at least one egress rule. */
	assert_int_equal(policy_types_of(POL("  egress: []\n")), VAKT_PT_INGRESS);
	assert_int_equal(policy_types_of(POL("  egress: [{}]\n")),
			 VAKT_PT_INGRESS | VAKT_PT_EGRESS);
	assert_int_equal(policy_types_of(POL("  policyTypes: []\n  egress: [{}]\n")),
			 VAKT_PT_INGRESS | VAKT_PT_EGRESS);
	/* Explicit types are taken as written, rules or not. */
	assert_int_equal(policy_types_of(POL("  policyTypes: [Egress]\n  ingress: [{}]\n")),
			 VAKT_PT_EGRESS);
	assert_int_equal(policy_types_of(POL("  policyTypes: [Egress, Ingress]\n")),
			 VAKT_PT_INGRESS | VAKT_PT_EGRESS);
}

/*
 * Policy and pod names are DNS subdomains as Kubernetes validates them: 253
 * characters in all, no 63-character limit per label (upstream's e2e tests
 * use a 71-character policy name). Namespace names stay DNS labels.
 */
static void test_long_subdomain_names_load_and_overlong_ones_fail(void **state)
{
	const char *long71 = "allow-any-ns-different-than-ns-a-via-ns-selector-with-match-expressions";
	struct vakt_objset set = { 0 };
	struct vakt_error err = { { 0 } };
	char doc[1024];
	char name254[255];

	(void)state;
	snprintf(doc, sizeof(doc),
		 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		 "metadata: {name: %s, namespace: x}\nspec: {podSelector: {}}\n", long71);
	load_ok(&set, "long.yaml", doc, NULL);
	assert_non_null(find_pol(&set, "x", long71));
	vakt_objset_free(&set);

	memset(name254, 'a', 254);
	name254[254] = '\0';
	snprintf(doc, sizeof(doc),
		 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		 "metadata: {name: %s, namespace: x}\nspec: {podSelector: {}}\n", name254);
	assert_int_equal(vakt_load_buffer(&set, doc, strlen(doc), "overlong.yaml", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "metadata.name"));
	assert_non_null(strstr(err.msg, "253"));
	vakt_objset_free(&set);
}

static void test_policy_namespace_defaults_to_default(void **state)
{
	struct vakt_objset set = { 0 };

	(void)state;
	load_ok(&set, "p.yaml", POL(""), NULL);
	assert_string_equal(set.pols[0]->ns, "default");
	assert_int_equal(set.pols[0]->nrules[VAKT_DIR_INGRESS], 0);
	vakt_objset_free(&set);
}

static void test_ports_default_to_tcp_and_empty_lists_mean_all(void **state)
{
	struct vakt_objset set = { 0 };
	const struct vakt_rule *r;

	(void)state;
	load_ok(&set, "p.yaml",
		POL("  ingress:\n  - from: []\n    ports: [{port: 443}, {protocol: UDP}, null]\n"
		    "  - ports: []\n"
		    "  -\n"),
		NULL);
	assert_int_equal(set.pols[0]->nrules[VAKT_DIR_INGRESS], 3);
	r = &set.pols[0]->rules[VAKT_DIR_INGRESS][0];
	assert_int_equal(r->npeers, 0);
	assert_int_equal(r->nports, 3);
	assert_int_equal(r->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(r->ports[0].port, 443);
	assert_int_equal(r->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(r->ports[1].port, 0); /* every UDP port */
	assert_null(r->ports[1].name);
	/* A null port is Go's zero value: every TCP port. */
	assert_int_equal(r->ports[2].proto, IPPROTO_TCP);
	assert_int_equal(r->ports[2].port, 0);
	r = &set.pols[0]->rules[VAKT_DIR_INGRESS][1];
	assert_int_equal(r->npeers, 0);
	assert_int_equal(r->nports, 0);
	/* A null rule (`-` alone) is Go's zero value: all peers, all ports. */
	r = &set.pols[0]->rules[VAKT_DIR_INGRESS][2];
	assert_int_equal(r->npeers, 0);
	assert_int_equal(r->nports, 0);
	vakt_objset_free(&set);
}

static void test_selectors_keep_absent_and_empty_apart(void **state)
{
	struct vakt_objset set = { 0 };
	const struct vakt_peer *p;

	(void)state;
	load_ok(&set, "p.yaml",
		POL("  egress:\n  - to:\n    - namespaceSelector: {}\n"
		    "    - podSelector: {matchExpressions: [{key: a, operator: Exists},\n"
		    "                    {key: b, operator: NotIn, values: [x]}]}\n"
		    "      namespaceSelector: null\n"),
		NULL);
	p = set.pols[0]->rules[VAKT_DIR_EGRESS][0].peers;
	assert_null(p[0].pod_sel);
	assert_non_null(p[0].ns_sel);
	assert_int_equal(p[0].ns_sel->nexprs, 0);
	assert_non_null(p[1].pod_sel);
	assert_null(p[1].ns_sel); /* null is absent */
	assert_int_equal(p[1].pod_sel->nexprs, 2);
	assert_int_equal(p[1].pod_sel->exprs[0].op, VAKT_SEL_EXISTS);
	assert_int_equal(p[1].pod_sel->exprs[1].op, VAKT_SEL_NOT_IN);
	assert_string_equal(p[1].pod_sel->exprs[1].values[0], "x");
	vakt_objset_free(&set);
}

static void test_ipv6_ipblocks_load(void **state)
{
	struct vakt_objset set = { 0 };
	const struct vakt_ipblock *b;
	char buf[64];

	(void)state;
	load_ok(&set, "p.yaml",
		POL("  egress:\n  - to:\n    - ipBlock: {cidr: 'fd00::/8', except: ['fd00:1::/32']}\n"),
		NULL);
	b = &set.pols[0]->rules[VAKT_DIR_EGRESS][0].peers[0].ipblock;
	assert_int_equal(b->cidr.v4, 0);
	assert_int_equal(b->cidr.plen, 8);
	assert_string_equal(vakt_cidr_str(&b->except[0], buf, sizeof(buf)), "fd00:1::/32");
	vakt_objset_free(&set);
}

static void test_namespace_name_label_is_always_set(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	const struct vakt_namespace *y;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/multi.yaml", NULL, &err), 0);
	/* multi.yaml gives y a wrong kubernetes.io/metadata.name: the API server would override it. */
	y = find_ns(&set, "y");
	assert_non_null(y);
	assert_string_equal(vakt_labels_get(&y->labels, "kubernetes.io/metadata.name"), "y");
	assert_int_equal(y ? y->labels.n : 0, 1);
	vakt_objset_free(&set);
}

static void test_yaml_scalars_are_typed_like_kubernetes(void **state)
{
	static const char text[] =
		"apiVersion: v1\nkind: Pod\n"
		"metadata:\n  name: p\n  labels: {quoted: \"80\", on: on, yes: 'yes', n: n, t: ~x}\n"
		"spec:\n  hostNetwork: True\n"
		"  containers:\n  - ports: [{name: hex, containerPort: 0x50}, {name: sep, containerPort: 1_000},\n"
		"                {name: real, containerPort: 81.0}]\n";
	struct vakt_objset set = { 0 };
	const struct vakt_pod *p;

	(void)state;
	load_ok(&set, "t.yaml", text, NULL);
	p = set.pods[0];
	assert_string_equal(vakt_labels_get(&p->labels, "quoted"), "80");
	assert_string_equal(vakt_labels_get(&p->labels, "on"), "on");
	assert_string_equal(vakt_labels_get(&p->labels, "yes"), "yes");
	assert_string_equal(vakt_labels_get(&p->labels, "n"), "n");
	assert_string_equal(vakt_labels_get(&p->labels, "t"), "~x");
	assert_int_equal(p->host_network, 1);
	assert_int_equal(p->nports, 3);
	assert_string_equal(p->ports[0].name, "hex");
	assert_int_equal(p->ports[0].port, 80);
	assert_string_equal(p->ports[1].name, "real");
	assert_int_equal(p->ports[1].port, 81);
	assert_string_equal(p->ports[2].name, "sep");
	assert_int_equal(p->ports[2].port, 1000);
	vakt_objset_free(&set);
}

static void test_yaml_anchors_aliases_and_merge_keys_resolve(void **state)
{
	static const char text[] =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata: {name: p, namespace: n}\n"
		"spec:\n"
		"  podSelector: &sel {matchLabels: {app: web}}\n"
		"  ingress:\n  - from: [{podSelector: *sel}]\n    ports: &ports [{port: 80}]\n"
		"  egress:\n  - to: [{namespaceSelector: *sel}]\n    ports: *ports\n"
		"---\n"
		"apiVersion: v1\nkind: Pod\n"
		"metadata:\n  <<: &md2 {name: orig, namespace: n, labels: {a: b}}\n  name: merged\n"
		"status: {podIP: 10.0.0.1}\n";
	struct vakt_objset set = { 0 };
	const struct vakt_policy *p;
	const struct vakt_pod *pod;

	(void)state;
	load_ok(&set, "anchors.yaml", text, NULL);
	p = set.pols[0];
	assert_string_equal(vakt_labels_get(&p->pod_sel.match_labels, "app"), "web");
	assert_string_equal(
		vakt_labels_get(&p->rules[VAKT_DIR_INGRESS][0].peers[0].pod_sel->match_labels, "app"),
		"web");
	assert_int_equal(p->rules[VAKT_DIR_EGRESS][0].ports[0].port, 80);
	/* Anchors do not cross documents (YAML); in its own document the merge key
	 * brings namespace and labels, and the explicit name wins. */
	pod = set.pods[0];
	assert_string_equal(pod->ns, "n");
	assert_string_equal(pod->name, "merged");
	assert_string_equal(vakt_labels_get(&pod->labels, "a"), "b");
	vakt_objset_free(&set);
}

static void test_pods_without_ip_are_kept_unless_required(void **state)
{
	static const char pending[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\n"
				      "status: {phase: Pending}\n";
	struct vakt_load_opts agent = { .require_pod_ip = 0 };
	struct vakt_load_opts sim = { .require_pod_ip = 1 };
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	load_ok(&set, "p.yaml", pending, &agent);
	assert_int_equal(set.npods, 1);
	assert_int_equal(set.pods[0]->nips, 0);
	vakt_objset_free(&set);
	assert_int_equal(vakt_load_buffer(&set, pending, strlen(pending), "p.yaml", &sim, &err),
			 -EINVAL);
	vakt_objset_free(&set);
}

static void test_finished_pods_hold_no_address(void **state)
{
	static const char done[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: job}\n"
				   "status: {phase: Succeeded, podIP: 10.0.0.8}\n"
				   "---\n"
				   "apiVersion: v1\nkind: Pod\nmetadata: {name: crashed}\n"
				   "status: {phase: Failed}\n";
	struct vakt_load_opts agent = { .require_pod_ip = 0 };
	struct vakt_load_opts sim = { .require_pod_ip = 1 };
	struct vakt_objset set = { 0 };

	(void)state;
	/* The agent keeps them, without addresses: their IPs may belong to new pods. */
	load_ok(&set, "p.yaml", done, &agent);
	assert_int_equal(set.npods, 2);
	assert_int_equal(set.pods[0]->nips, 0);
	assert_int_equal(set.pods[1]->nips, 0);
	vakt_objset_free(&set);
	/* Where every pod needs an IP, finished pods are left out instead of failing. */
	load_ok(&set, "p.yaml", done, &sim);
	assert_int_equal(set.npods, 0);
	vakt_objset_free(&set);
}

static void test_unsupported_kinds_and_empty_input_load_nothing(void **state)
{
	static const char *const inputs[] = {
		"",
		"# only a comment\n",
		"---\n---\n...\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
		"apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: old}\n",
		"apiVersion: v1\nkind: List\n",
		"  \n\n",
	};
	struct vakt_objset set = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		load_ok(&set, "empty.yaml", inputs[i], NULL);
	load_ok(&set, "empty.json", "", NULL);
	load_ok(&set, "empty.json", "\n \n", NULL);
	assert_int_equal(set.nns + set.npods + set.npols, 0);
	vakt_objset_free(&set);
}

static void test_format_follows_name_then_first_character(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	static const char json[] = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
				   "\"metadata\":{\"name\":\"j\"}}";

	(void)state;
	/* No telling suffix: sniffed as JSON. */
	load_ok(&set, "objects", json, NULL);
	/* .yaml: read as YAML, which accepts this JSON too. */
	load_ok(&set, "again.yaml", "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
				    "\"metadata\":{\"name\":\"k\"}}", NULL);
	/* .json: YAML text is a JSON error. */
	assert_int_equal(vakt_load_buffer(&set, "kind: Pod\n", 10, "x.json", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "x.json:1:"));
	assert_non_null(strstr(err.msg, "invalid JSON"));
	assert_int_equal(set.nns, 2);
	vakt_objset_free(&set);
}

static void test_bom_and_crlf_line_endings_load(void **state)
{
	struct vakt_objset set = { 0 };

	(void)state;
	load_ok(&set, "win.yaml",
		"\xef\xbb\xbf" "apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: w\r\n", NULL);
	load_ok(&set, "win.json", "\xef\xbb\xbf{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\r\n"
				  "\"metadata\":{\"name\":\"v\"}}\r\n", NULL);
	assert_int_equal(set.nns, 2);
	assert_string_equal(set.ns[0]->name, "w");
	vakt_objset_free(&set);
}

static void test_decoders_accept_api_items_without_type_meta(void **state)
{
	json_t *item = json_pack("{s:{s:s,s:s,s:{s:s}},s:{s:[{s:s}]}}", "metadata", "name", "p",
				 "namespace", "n", "labels", "app", "db", "status", "podIPs", "ip",
				 "10.1.1.1");
	json_t *bad = json_pack("{s:{s:s}}", "metadata", "name", "p");
	struct vakt_load_opts sim = { .require_pod_ip = 1 };
	struct vakt_error err;
	struct vakt_pod *pod;

	(void)state;
	assert_non_null(item);
	assert_int_equal(vakt_decode_pod(item, "watch pods", NULL, &pod, &err), 0);
	assert_string_equal(pod->ns, "n");
	assert_string_equal(vakt_labels_get(&pod->labels, "app"), "db");
	assert_int_equal(pod->nips, 1);
	vakt_pod_free(pod);
	assert_int_equal(vakt_decode_pod(bad, "watch pods", &sim, &pod, &err), -EINVAL);
	assert_null(pod);
	assert_string_equal(err.msg, "watch pods: Pod default/p: status.podIP: missing: every "
				     "pod needs an IP address here");
	json_decref(item);
	json_decref(bad);
}

static void test_objset_moves_into_store(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	struct vakt_store *s = vakt_store_new();

	(void)state;
	assert_non_null(s);
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/multi.yaml", NULL, &err), 0);
	assert_int_equal(vakt_objset_to_store(&set, s), 0);
	assert_int_equal(set.nns + set.npods + set.npols, 0);
	assert_null(set.ns);
	assert_int_equal(vakt_store_count_namespaces(s), 2);
	assert_int_equal(vakt_store_count_pods(s), 2);
	assert_int_equal(vakt_store_count_policies(s), 1);
	assert_non_null(vakt_store_pod(s, "x", "a"));
	assert_non_null(vakt_store_policy(s, "x", "allow-web"));
	/* The emptied set is reusable. */
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/list.json", NULL, &err), 0);
	assert_int_equal(set.npods, 1);
	vakt_objset_free(&set);
	vakt_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multi_document_yaml_loads_every_object),
		cmocka_unit_test(test_json_list_loads_items_and_skips_other_kinds),
		cmocka_unit_test(test_typed_list_items_need_no_kind),
		cmocka_unit_test(test_typed_lists_of_every_kind_load),
		cmocka_unit_test(test_concatenated_json_documents_load),
		cmocka_unit_test(test_directory_loads_manifests_sorted_skipping_hidden_and_subdirs),
		cmocka_unit_test(test_dash_reads_standard_input),
		cmocka_unit_test(test_stdin_errors_name_stdin),
		cmocka_unit_test(test_policy_types_default_like_kubernetes),
		cmocka_unit_test(test_long_subdomain_names_load_and_overlong_ones_fail),
		cmocka_unit_test(test_policy_namespace_defaults_to_default),
		cmocka_unit_test(test_ports_default_to_tcp_and_empty_lists_mean_all),
		cmocka_unit_test(test_selectors_keep_absent_and_empty_apart),
		cmocka_unit_test(test_ipv6_ipblocks_load),
		cmocka_unit_test(test_namespace_name_label_is_always_set),
		cmocka_unit_test(test_yaml_scalars_are_typed_like_kubernetes),
		cmocka_unit_test(test_yaml_anchors_aliases_and_merge_keys_resolve),
		cmocka_unit_test(test_pods_without_ip_are_kept_unless_required),
		cmocka_unit_test(test_finished_pods_hold_no_address),
		cmocka_unit_test(test_unsupported_kinds_and_empty_input_load_nothing),
		cmocka_unit_test(test_format_follows_name_then_first_character),
		cmocka_unit_test(test_bom_and_crlf_line_endings_load),
		cmocka_unit_test(test_decoders_accept_api_items_without_type_meta),
		cmocka_unit_test(test_objset_moves_into_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
