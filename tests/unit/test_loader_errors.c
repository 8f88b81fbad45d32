// SPDX-License-Identifier: Apache-2.0
/*
 * Bad manifests: every validation error of the loader, each asserting that
 * the message names the file, the document, the object (Kind ns/name) and
 * the field, and that a failed load leaves the object set as it was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"

#define DATA_DIR "tests/unit/data/loader"

struct err_case {
	const char *what;
	const char *origin;
	int require_ip;
	const char *input;
	const char *want[4]; /* substrings of the message */
};

#define POL_HEAD                                                                               \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"                              \
	"metadata: {name: np, namespace: prod}\n"
#define POD_HEAD "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod}\n"

static const struct err_case cases[] = {
	{ "invalid YAML names line and column", "bad.yaml", 0,
	  "apiVersion: v1\nkind: Pod\nmetadata: [1, 2\n",
	  { "bad.yaml:", "invalid YAML", "flow sequence" } },
	{ "invalid JSON names line and column", "bad.json", 0,
	  "{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",}\n", { "bad.json:2:", "invalid JSON" } },
	{ "invalid JSON in a later document names its line", "two.json", 0,
	  "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n"
	  "  {\"kind\": }\n",
	  { "two.json:2:12: invalid JSON" } },
	{ "duplicate YAML key", "bad.yaml", 0, "kind: Pod\nkind: Pod\n",
	  { "bad.yaml:2:", "duplicate mapping key \"kind\"" } },
	{ "duplicate JSON key", "bad.json", 0, "{\"kind\": \"Pod\", \"kind\": \"Pod\"}",
	  { "bad.json:1:", "duplicate object key" } },
	{ "missing kind", "bad.yaml", 0, "apiVersion: v1\nmetadata: {name: x}\n",
	  { "bad.yaml: document 1 (line 1): kind: missing" } },
	{ "missing apiVersion", "bad.yaml", 0, "kind: Pod\nmetadata: {name: x}\n",
	  { "bad.yaml: document 1 (line 1): Pod: apiVersion: missing" } },
	{ "document that is not an object", "bad.yaml", 0, "- a\n- b\n",
	  { "bad.yaml: document 1 (line 1): expected an object, got a list" } },
	{ "missing metadata.name", "bad.yaml", 0,
	  "apiVersion: v1\nkind: Pod\nmetadata: {namespace: prod}\n",
	  { "bad.yaml: document 1 (line 1): Pod prod/<unnamed>: metadata.name: missing" } },
	{ "invalid object name", "bad.yaml", 0,
	  "apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad_NS}\n",
	  { "Namespace Bad_NS: metadata.name: invalid name" } },
	{ "label value of the wrong type", "bad.yaml", 0,
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod, labels: {port: 80}}\n",
	  { "bad.yaml: document 1 (line 1): Pod prod/web: metadata.labels[port]: "
	    "expected a string, got an integer" } },
	{ "boolean field of the wrong type", "bad.yaml", 0,
	  POD_HEAD "spec: {hostNetwork: \"true\"}\n",
	  { "Pod prod/web: spec.hostNetwork: expected a boolean, got a string" } },
	{ "rules that are not a list", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress: {from: []}\n",
	  { "NetworkPolicy prod/np: spec.ingress: expected a list, got an object" } },
	{ "missing podSelector", "bad.yaml", 0, POL_HEAD "spec:\n  ingress: []\n",
	  { "NetworkPolicy prod/np: spec.podSelector: missing" } },
	{ "missing spec", "bad.yaml", 0, POL_HEAD, { "NetworkPolicy prod/np: spec: missing" } },
	{ "unknown protocol (case-sensitive)", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: tcp, port: 80}\n",
	  { "NetworkPolicy prod/np: spec.ingress[0].ports[0].protocol: unknown protocol \"tcp\"" } },
	{ "unknown container port protocol", "bad.yaml", 0,
	  POD_HEAD "spec:\n  containers:\n  - ports: [{containerPort: 80, protocol: ICMP}]\n",
	  { "Pod prod/web: spec.containers[0].ports[0].protocol: unknown protocol \"ICMP\"" } },
	{ "port above 65535", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 80}, {port: 65536}]\n",
	  { "NetworkPolicy prod/np: spec.ingress[0].ports[1].port: port 65536 outside 1..65535" } },
	{ "port zero", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: 0}]\n",
	  { "spec.egress[0].ports[0].port: port 0 outside 1..65535" } },
	{ "port of the wrong type", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: [80]}]\n",
	  { "spec.egress[0].ports[0].port: expected an integer or a port name, got a list" } },
	{ "container port outside range", DATA_DIR "/bad-port.yaml", 0, NULL,
	  { DATA_DIR "/bad-port.yaml: document 1 (line 1): Pod n/broken: "
		     "spec.containers[0].ports[0].containerPort: port 70000 outside 1..65535" } },
	{ "quoted number is not a port name", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: \"80\"}]\n",
	  { "spec.ingress[0].ports[0].port: invalid port name \"80\"" } },
	{ "port name with upper case", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: Http}]\n",
	  { "spec.ingress[0].ports[0].port: invalid port name \"Http\"" } },
	{ "port name with a double dash", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: a--b}]\n",
	  { "invalid port name \"a--b\"" } },
	{ "port name longer than 15", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: abcdefghijklmnop}]\n",
	  { "invalid port name \"abcdefghijklmnop\"" } },
	{ "container port name with a leading dash", "bad.yaml", 0,
	  POD_HEAD "spec:\n  containers:\n  - ports: [{containerPort: 80, name: -http}]\n",
	  { "Pod prod/web: spec.containers[0].ports[0].name: invalid port name \"-http\"" } },
	{ "duplicate container port names", "bad.yaml", 0,
	  POD_HEAD "spec:\n  containers:\n  - ports: [{containerPort: 80, name: http}]\n"
		   "  - ports: [{containerPort: 81, name: http}]\n",
	  { "Pod prod/web: spec.containers[1].ports[0].name: duplicate port name \"http\"" } },
	{ "endPort below port", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 80, endPort: 79}]\n",
	  { "spec.ingress[0].ports[0].endPort: endPort 79 outside 80..65535" } },
	{ "endPort above 65535", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 80, endPort: 70000}]\n",
	  { "spec.ingress[0].ports[0].endPort: endPort 70000 outside 80..65535" } },
	{ "endPort with a named port", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: http, endPort: 90}]\n",
	  { "spec.ingress[0].ports[0].endPort: endPort cannot be used with a named port" } },
	{ "endPort without port", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - ports: [{protocol: UDP, endPort: 90}]\n",
	  { "spec.egress[0].ports[0].endPort: endPort needs port" } },
	{ "invalid CIDR", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/33}}]\n",
	  { "NetworkPolicy prod/np: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR "
	    "\"10.0.0.0/33\"" } },
	{ "CIDR without a prefix length", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.1}}]\n",
	  { "spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR \"10.0.0.1\"" } },
	{ "ipBlock without cidr", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {except: []}}]\n",
	  { "spec.ingress[0].from[0].ipBlock.cidr: missing" } },
	{ "except outside its cidr", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n"
		   "        cidr: 10.0.0.0/8\n        except: [10.1.0.0/16, 11.0.0.0/16]\n",
	  { "spec.egress[0].to[0].ipBlock.except[1]: \"11.0.0.0/16\" is not a strict subset of "
	    "cidr 10.0.0.0/8" } },
	{ "except equal to its cidr", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n"
		   "        cidr: 10.0.0.0/8\n        except: [10.0.0.0/8]\n",
	  { "spec.egress[0].to[0].ipBlock.except[0]: \"10.0.0.0/8\" is not a strict subset" } },
	{ "except of the other family", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock:\n"
		   "        cidr: ::/0\n        except: [10.0.0.0/8]\n",
	  { "spec.egress[0].to[0].ipBlock.except[0]: \"10.0.0.0/8\" is not the address family" } },
	{ "ipBlock with a selector in one peer", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		   "    - {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}\n",
	  { "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or "
	    "namespaceSelector" } },
	{ "peer with no field", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}, {}]\n",
	  { "spec.ingress[0].from[1]: a peer needs podSelector, namespaceSelector or ipBlock" } },
	{ "unknown selector operator", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector:\n    matchExpressions:\n"
		   "    - {key: app, operator: Equals, values: [a]}\n",
	  { "spec.podSelector.matchExpressions[0].operator: unknown operator \"Equals\"" } },
	{ "In without values", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector:\n"
		   "        matchExpressions: [{key: app, operator: In, values: []}]\n",
	  { "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: must be "
	    "non-empty when operator is In" } },
	{ "Exists with values", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector:\n    matchExpressions:\n"
		   "    - {key: app, operator: Exists, values: [a]}\n",
	  { "spec.podSelector.matchExpressions[0].values: must be empty when operator is Exists" } },
	{ "selector expression without key", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector:\n    matchExpressions: [{operator: Exists}]\n",
	  { "spec.podSelector.matchExpressions[0].key: missing" } },
	{ "misspelt selector field", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
		   "    - podSelector: {matchLabel: {app: db}}\n",
	  { "spec.ingress[0].from[0].podSelector: unknown field \"matchLabel\"" } },
	{ "unknown policy type", "bad.yaml", 0,
	  POL_HEAD "spec:\n  podSelector: {}\n  policyTypes: [Ingress, ingress]\n",
	  { "NetworkPolicy prod/np: spec.policyTypes[1]: unknown policy type \"ingress\"" } },
	{ "pod without IP where one is required", "pods.yaml", 1,
	  "---\n" POD_HEAD "spec: {nodeName: n1}\n",
	  { "pods.yaml: document 1 (line 1): Pod prod/web: status.podIP: missing" } },
	{ "invalid podIP", "bad.yaml", 0, POD_HEAD "status: {podIP: 10.0.0.300}\n",
	  { "Pod prod/web: status.podIP: invalid IP address \"10.0.0.300\"" } },
	{ "invalid podIPs entry", "bad.yaml", 0,
	  POD_HEAD "status: {podIPs: [{ip: 10.0.0.3}, {ip: 'fd00::zz'}]}\n",
	  { "Pod prod/web: status.podIPs[1].ip: invalid IP address \"fd00::zz\"" } },
	{ "two addresses of one family", "bad.yaml", 0,
	  POD_HEAD "status: {podIPs: [{ip: 10.0.0.3}, {ip: 10.0.0.4}]}\n",
	  { "Pod prod/web: status.podIPs[1].ip: a second IPv4 address" } },
	{ "podIP that is not the first of podIPs", "bad.yaml", 0,
	  POD_HEAD "status: {podIP: 10.0.0.9, podIPs: [{ip: 10.0.0.3}]}\n",
	  { "Pod prod/web: status.podIP: \"10.0.0.9\" is not the first of status.podIPs" } },
	{ "duplicate objects in one file", "twice.yaml", 0,
	  POD_HEAD "---\n" POD_HEAD,
	  { "twice.yaml: document 2 (line 4): Pod prod/web: duplicate object (also in "
	    "twice.yaml: document 1 (line 1))" } },
	{ "duplicate items in a List", "list.json", 0,
	  "{\"apiVersion\":\"v1\",\"kind\":\"NamespaceList\",\"items\":[{\"metadata\":{\"name\":"
	  "\"a\"}},{\"metadata\":{\"name\":\"a\"}}]}",
	  { "list.json: document 1: items[1]: Namespace a: duplicate object (also in list.json: "
	    "document 1: items[0])" } },
	{ "wrong type inside a List item", "list.json", 0,
	  "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":"
	  "\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"},\"spec\":{\"containers\":"
	  "[{\"ports\":[{\"containerPort\":\"80\"}]}]}}]}",
	  { "list.json: document 1: items[0]: Pod n/p: spec.containers[0].ports[0].containerPort: "
	    "expected an integer, got a string" } },
	{ "List item without kind", "list.json", 0,
	  "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"metadata\":{\"name\":\"p\"}}]}",
	  { "list.json: document 1: items[0]: kind: missing" } },
	{ "NUL inside a YAML string", "bad.yaml", 0,
	  "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"a\\0b\"}\n",
	  { "Namespace <unnamed>: metadata.name: contains a NUL character" } },
};

static void check_case(const struct err_case *c)
{
	struct vakt_load_opts o = { .require_pod_ip = c->require_ip };
	struct vakt_objset set = { 0 };
	struct vakt_error err = { { 0 } };
	int r;

	if (c->input)
		r = vakt_load_buffer(&set, c->input, strlen(c->input), c->origin, &o, &err);
	else
		r = vakt_load_path(&set, c->origin, &o, &err);
	if (r != -EINVAL)
		fail_msg("%s: want -EINVAL, got %d (%s)", c->what, r, err.msg);
	if (set.nns || set.npods || set.npols)
		fail_msg("%s: a failed load left objects behind", c->what);
	for (size_t i = 0; i < 4 && c->want[i]; i++)
		if (!strstr(err.msg, c->want[i]))
			fail_msg("%s:\n  message: %s\n  lacks:   %s", c->what, err.msg, c->want[i]);
	vakt_objset_free(&set);
}

static void test_every_bad_input_names_file_object_and_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static void test_duplicate_across_files_is_an_error(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/dup-a.yaml", NULL, &err), 0);
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/dup-b.yaml", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, DATA_DIR "/dup-b.yaml: document 1 (line 1): Pod d/twin: "
					"duplicate object"));
	/* The failed call added nothing; the first file's pod is still there. */
	assert_int_equal(set.npods, 1);
	vakt_objset_free(&set);
}

static void test_failed_load_leaves_set_unchanged(void **state)
{
	static const char good[] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
	static const char half[] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n"
				   "apiVersion: v1\nkind: Namespace\nmetadata: {name: 7}\n";
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, good, sizeof(good) - 1, "a.yaml", NULL, &err), 0);
	assert_int_equal(vakt_load_buffer(&set, half, sizeof(half) - 1, "b.yaml", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "b.yaml: document 2 (line 4): Namespace <unnamed>: "
					"metadata.name: expected a string, got an integer"));
	assert_int_equal(set.nns, 1);
	assert_string_equal(set.ns[0]->name, "a");
	/* The set stays usable: b loads once fixed. */
	assert_int_equal(vakt_load_buffer(&set, half, 50, "b.yaml", NULL, &err), 0);
	assert_int_equal(set.nns, 2);
	vakt_objset_free(&set);
}

static void test_missing_file_reports_errno(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_path(&set, DATA_DIR "/no-such-file.yaml", NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, DATA_DIR "/no-such-file.yaml: No such file"));
	vakt_objset_free(&set);
}

static void test_yaml_alias_bomb_is_bounded(void **state)
{
	/* Each level holds ten of the previous: 10^9 nodes if expanded. */
	static const char bomb[] =
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, bomb, sizeof(bomb) - 1, "bomb.yaml", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "bomb.yaml:"));
	assert_non_null(strstr(err.msg, "aliases expand to too many nodes"));
	vakt_objset_free(&set);
}

static void test_recursive_alias_is_rejected(void **state)
{
	static const char rec[] = "a: &a [1, *a]\n";
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, rec, sizeof(rec) - 1, "rec.yaml", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "rec.yaml:1:"));
	assert_non_null(strstr(err.msg, "unknown or unfinished anchor \"a\""));
	vakt_objset_free(&set);
}

static void test_deep_nesting_is_bounded(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	char buf[4096];
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(buf, sizeof(buf), "kind: ");
	for (int i = 0; i < 1000; i++)
		buf[n++] = '[';
	buf[n] = '\0';
	assert_int_equal(vakt_load_buffer(&set, buf, n, "deep.yaml", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "deep.yaml:1:"));
	assert_non_null(strstr(err.msg, "nesting too deep"));
	/* JSON nesting is bounded by the parser. */
	memset(buf, '[', 4000);
	assert_int_equal(vakt_load_buffer(&set, buf, 4000, "deep.json", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "deep.json:"));
	vakt_objset_free(&set);
}

static void test_non_finite_yaml_numbers_are_rejected(void **state)
{
	static const char inf[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {x: .inf}\n";
	struct vakt_objset set = { 0 };
	struct vakt_error err;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, inf, sizeof(inf) - 1, "inf.yaml", NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "inf.yaml:4:11: invalid YAML: infinite or NaN"));
	vakt_objset_free(&set);
}

static void test_oversized_input_is_refused_before_reading(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	char one = '{';

	(void)state;
	/* The length is checked before a byte is read, so a short buffer proves it. */
	assert_int_equal(vakt_load_buffer(&set, &one, (size_t)VAKT_LOAD_MAX_BYTES + 1, "huge.yaml",
					  NULL, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "huge.yaml: larger than 256 MiB"));
	vakt_objset_free(&set);
}

static void test_errors_without_caller_buffers_do_not_crash(void **state)
{
	static const char bad[] = "apiVersion: v1\nkind: Pod\nmetadata: {}\n";
	struct vakt_objset set = { 0 };
	json_t *obj = json_pack("{s:{s:i}}", "metadata", "name", 7);
	struct vakt_pod *pod = NULL;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, bad, sizeof(bad) - 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(vakt_decode_pod(obj, NULL, NULL, &pod, NULL), -EINVAL);
	assert_null(pod);
	assert_int_equal(set.npods, 0);
	json_decref(obj);
	vakt_objset_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_bad_input_names_file_object_and_field),
		cmocka_unit_test(test_duplicate_across_files_is_an_error),
		cmocka_unit_test(test_failed_load_leaves_set_unchanged),
		cmocka_unit_test(test_missing_file_reports_errno),
		cmocka_unit_test(test_yaml_alias_bomb_is_bounded),
		cmocka_unit_test(test_recursive_alias_is_rejected),
		cmocka_unit_test(test_deep_nesting_is_bounded),
		cmocka_unit_test(test_non_finite_yaml_numbers_are_rejected),
		cmocka_unit_test(test_oversized_input_is_refused_before_reading),
		cmocka_unit_test(test_errors_without_caller_buffers_do_not_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
