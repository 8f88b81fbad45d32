// SPDX-License-Identifier: Apache-2.0
/* Tests of agent/model.c: label sets, addresses, prefixes, protocols, deep copies. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"
#include "model.h"

static void test_labels_stay_sorted_with_unique_keys(void **state)
{
	struct vakt_labels l = { 0 };

	(void)state;
	assert_int_equal(vakt_labels_set(&l, "c", "3"), 0);
	assert_int_equal(vakt_labels_set(&l, "a", "1"), 0);
	assert_int_equal(vakt_labels_set(&l, "b", "2"), 0);
	assert_int_equal(vakt_labels_set(&l, "a", "one"), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].key, "a");
	assert_string_equal(l.v[0].value, "one");
	assert_string_equal(l.v[1].key, "b");
	assert_string_equal(l.v[2].key, "c");
	assert_string_equal(vakt_labels_get(&l, "b"), "2");
	assert_null(vakt_labels_get(&l, "d"));
	assert_null(vakt_labels_get(&l, ""));
	vakt_labels_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
}

static void test_labels_compare_by_content(void **state)
{
	struct vakt_labels a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	assert_int_equal(vakt_labels_cmp(&a, &b), 0);
	vakt_labels_set(&a, "app", "web");
	vakt_labels_set(&a, "tier", "1");
	/* Insertion order does not matter. */
	vakt_labels_set(&b, "tier", "1");
	vakt_labels_set(&b, "app", "web");
	assert_int_equal(vakt_labels_cmp(&a, &b), 0);
	vakt_labels_set(&c, "app", "web");
	assert_true(vakt_labels_cmp(&c, &a) < 0); /* a prefix sorts first */
	assert_true(vakt_labels_cmp(&a, &c) > 0);
	vakt_labels_set(&b, "tier", "2");
	assert_true(vakt_labels_cmp(&a, &b) < 0);
	assert_true(vakt_labels_cmp(&b, &a) > 0);
	vakt_labels_free(&a);
	vakt_labels_free(&b);
	vakt_labels_free(&c);
}

static void test_labels_copy_is_deep(void **state)
{
	struct vakt_labels a = { 0 }, b = { 0 }, empty = { 0 }, e2 = { 0 };

	(void)state;
	vakt_labels_set(&a, "k", "v");
	vakt_labels_set(&a, "j", "w");
	assert_int_equal(vakt_labels_copy(&b, &a), 0);
	assert_int_equal(vakt_labels_cmp(&a, &b), 0);
	assert_ptr_not_equal(a.v[0].key, b.v[0].key);
	vakt_labels_free(&a);
	assert_string_equal(vakt_labels_get(&b, "k"), "v");
	vakt_labels_free(&b);
	assert_int_equal(vakt_labels_copy(&e2, &empty), 0);
	assert_int_equal(e2.n, 0);
}

static void test_ipv4_is_stored_v4_mapped(void **state)
{
	static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3 };
	struct vakt_addr a;
	char buf[64];
	int v4 = -1;

	(void)state;
	assert_int_equal(vakt_addr_parse("10.1.2.3", &a, &v4), 0);
	assert_int_equal(v4, 1);
	assert_memory_equal(a.b, want, 16);
	assert_true(vakt_addr_is_v4(&a));
	assert_string_equal(vakt_addr_str(&a, buf, sizeof(buf)), "10.1.2.3");
	/* The mapped form written as IPv6 is the same address. */
	assert_int_equal(vakt_addr_parse("::ffff:10.1.2.3", &a, &v4), 0);
	assert_int_equal(v4, 0);
	assert_memory_equal(a.b, want, 16);
	assert_string_equal(vakt_addr_str(&a, buf, sizeof(buf)), "10.1.2.3");
}

static void test_ipv6_parses_and_prints_compressed(void **state)
{
	struct vakt_addr a;
	char buf[64];
	int v4 = -1;

	(void)state;
	assert_int_equal(vakt_addr_parse("fd00:0:0::12", &a, &v4), 0);
	assert_int_equal(v4, 0);
	assert_false(vakt_addr_is_v4(&a));
	assert_int_equal(a.b[0], 0xfd);
	assert_int_equal(a.b[15], 0x12);
	assert_string_equal(vakt_addr_str(&a, buf, sizeof(buf)), "fd00::12");
	assert_int_equal(vakt_addr_parse("::", &a, NULL), 0);
	assert_string_equal(vakt_addr_str(&a, buf, sizeof(buf)), "::");
}

static void test_bad_addresses_are_rejected(void **state)
{
	static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4",
					   "1.2.3.4/32", " 1.2.3.4", "::g", "fe80::1%eth0", "abc",
					   "1:2:3:4:5:6:7:8:9" };
	struct vakt_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vakt_addr_parse(bad[i], &a, NULL), -EINVAL);
}

static void test_ipv4_cidr_is_mapped_prefix_with_host_bits_masked(void **state)
{
	struct vakt_cidr c;
	struct vakt_addr want;
	char buf[64];

	(void)state;
	assert_int_equal(vakt_cidr_parse("10.1.2.3/8", &c), 0);
	assert_int_equal(c.plen, 104);
	assert_int_equal(c.v4, 1);
	vakt_addr_parse("10.0.0.0", &want, NULL);
	assert_memory_equal(c.addr.b, want.b, 16);
	assert_string_equal(vakt_cidr_str(&c, buf, sizeof(buf)), "10.0.0.0/8");
	assert_int_equal(vakt_cidr_parse("192.168.1.129/25", &c), 0);
	assert_string_equal(vakt_cidr_str(&c, buf, sizeof(buf)), "192.168.1.128/25");
	assert_int_equal(vakt_cidr_parse("0.0.0.0/0", &c), 0);
	assert_int_equal(c.plen, 96);
	assert_int_equal(vakt_cidr_parse("1.2.3.4/32", &c), 0);
	assert_int_equal(c.plen, 128);
	assert_string_equal(vakt_cidr_str(&c, buf, sizeof(buf)), "1.2.3.4/32");
}

static void test_ipv6_cidr_masks_host_bits(void **state)
{
	struct vakt_cidr c;
	char buf[64];

	(void)state;
	assert_int_equal(vakt_cidr_parse("fd00:1:2:3::ff/33", &c), 0);
	assert_int_equal(c.plen, 33);
	assert_int_equal(c.v4, 0);
	assert_string_equal(vakt_cidr_str(&c, buf, sizeof(buf)), "fd00:1::/33");
	assert_int_equal(vakt_cidr_parse("fd00:ffff::/17", &c), 0);
	assert_string_equal(vakt_cidr_str(&c, buf, sizeof(buf)), "fd00:8000::/17");
	assert_int_equal(vakt_cidr_parse("::/0", &c), 0);
	assert_int_equal(c.plen, 0);
	assert_int_equal(vakt_cidr_parse("::1/128", &c), 0);
	assert_int_equal(c.plen, 128);
}

static void test_bad_cidrs_are_rejected(void **state)
{
	static const char *const bad[] = { "10.0.0.0",   "10.0.0.0/",   "10.0.0.0/33",
					   "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/8x",
					   "10.0.0.0/ 8", "/8",          "x/8",
					   "::/129",     "::/1000",     "10.0.0.0/8/8",
					   "",           "10.0.0/8",    "fd00::/+8" };
	struct vakt_cidr c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vakt_cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("accepted bad CIDR \"%s\"", bad[i]);
	}
}

static struct vakt_cidr cidr(const char *s)
{
	struct vakt_cidr c;

	assert_int_equal(vakt_cidr_parse(s, &c), 0);
	return c;
}

static void test_cidr_containment(void **state)
{
	struct vakt_cidr c8 = cidr("10.0.0.0/8"), c16 = cidr("10.1.0.0/16"),
			 other = cidr("11.0.0.0/16"), all6 = cidr("::/0"), all4 = cidr("0.0.0.0/0"),
			 v6 = cidr("fd00::/8"), v6in = cidr("fd12::/16");

	(void)state;
	assert_true(vakt_cidr_contains(&c8, &c16));
	assert_false(vakt_cidr_contains(&c16, &c8));
	assert_true(vakt_cidr_contains(&c8, &c8));
	assert_false(vakt_cidr_contains(&c8, &other));
	assert_true(vakt_cidr_contains(&all4, &c16));
	assert_false(vakt_cidr_contains(&all4, &v6));
	/* Numerically ::/0 holds the mapped IPv4 space; the compiler excludes it. */
	assert_true(vakt_cidr_contains(&all6, &c8));
	assert_true(vakt_cidr_contains(&v6, &v6in));
	assert_false(vakt_cidr_contains(&v6in, &v6));
}

static void test_cidr_has_address(void **state)
{
	struct vakt_cidr c = cidr("10.1.0.0/16"), c6 = cidr("fd00::/64"), host = cidr("1.2.3.4/32");
	struct vakt_addr a;

	(void)state;
	vakt_addr_parse("10.1.255.7", &a, NULL);
	assert_true(vakt_cidr_has(&c, &a));
	assert_false(vakt_cidr_has(&c6, &a));
	vakt_addr_parse("10.2.0.1", &a, NULL);
	assert_false(vakt_cidr_has(&c, &a));
	vakt_addr_parse("fd00::abcd", &a, NULL);
	assert_true(vakt_cidr_has(&c6, &a));
	assert_false(vakt_cidr_has(&c, &a));
	vakt_addr_parse("fd00:0:0:1::1", &a, NULL);
	assert_false(vakt_cidr_has(&c6, &a));
	vakt_addr_parse("1.2.3.4", &a, NULL);
	assert_true(vakt_cidr_has(&host, &a));
	vakt_addr_parse("1.2.3.5", &a, NULL);
	assert_false(vakt_cidr_has(&host, &a));
}

static void test_protocols_parse_exactly_as_kubernetes(void **state)
{
	(void)state;
	assert_int_equal(vakt_proto_parse("TCP"), IPPROTO_TCP);
	assert_int_equal(vakt_proto_parse("UDP"), IPPROTO_UDP);
	assert_int_equal(vakt_proto_parse("SCTP"), IPPROTO_SCTP);
	assert_int_equal(vakt_proto_parse("tcp"), -EINVAL);
	assert_int_equal(vakt_proto_parse("Tcp"), -EINVAL);
	assert_int_equal(vakt_proto_parse("ICMP"), -EINVAL);
	assert_int_equal(vakt_proto_parse(""), -EINVAL);
	assert_int_equal(vakt_proto_parse("TCP "), -EINVAL);
	assert_string_equal(vakt_proto_name(IPPROTO_TCP), "TCP");
	assert_string_equal(vakt_proto_name(IPPROTO_UDP), "UDP");
	assert_string_equal(vakt_proto_name(IPPROTO_SCTP), "SCTP");
}

static const char policy_yaml[] =
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: p, namespace: n, resourceVersion: '5'}\n"
	"spec:\n"
	"  podSelector: {matchLabels: {app: web}, matchExpressions: [{key: t, operator: In, values: [b, a]}]}\n"
	"  ingress:\n"
	"  - from: [{podSelector: {}, namespaceSelector: {matchLabels: {x: y}}},\n"
	"           {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/16]}}]\n"
	"    ports: [{port: http}, {protocol: UDP, port: 53, endPort: 60}]\n"
	"  egress:\n"
	"  - {}\n";

static void test_policy_dup_is_deep_and_equal(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	struct vakt_policy *d;
	const struct vakt_rule *r;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, policy_yaml, sizeof(policy_yaml) - 1, "p.yaml",
					  NULL, &err), 0);
	assert_int_equal(set.npols, 1);
	d = vakt_policy_dup(set.pols[0]);
	assert_non_null(d);
	/* Free the original first: the copy must not share anything with it. */
	vakt_objset_free(&set);
	assert_string_equal(d->ns, "n");
	assert_string_equal(d->name, "p");
	assert_string_equal(d->resource_version, "5");
	assert_int_equal(d->types, VAKT_PT_INGRESS | VAKT_PT_EGRESS);
	assert_string_equal(vakt_labels_get(&d->pod_sel.match_labels, "app"), "web");
	assert_int_equal(d->pod_sel.nexprs, 1);
	assert_string_equal(d->pod_sel.exprs[0].values[0], "a");
	assert_int_equal(d->nrules[VAKT_DIR_INGRESS], 1);
	assert_int_equal(d->nrules[VAKT_DIR_EGRESS], 1);
	r = &d->rules[VAKT_DIR_INGRESS][0];
	assert_int_equal(r->npeers, 2);
	assert_non_null(r->peers[0].pod_sel);
	assert_string_equal(vakt_labels_get(&r->peers[0].ns_sel->match_labels, "x"), "y");
	assert_int_equal(r->peers[1].has_ipblock, 1);
	assert_int_equal(r->peers[1].ipblock.nexcept, 2);
	assert_int_equal(r->nports, 2);
	assert_string_equal(r->ports[0].name, "http");
	assert_int_equal(r->ports[1].end_port, 60);
	assert_int_equal(d->rules[VAKT_DIR_EGRESS][0].npeers, 0);
	vakt_policy_free(d);
}

static const char pod_ns_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {a: b}}\n"
	"---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n, labels: {app: web}}\n"
	"spec:\n  nodeName: node\n  containers: [{ports: [{name: http, containerPort: 80}]}]\n"
	"status: {podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}]}\n";

static void test_pod_and_namespace_dup_are_deep(void **state)
{
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	struct vakt_namespace *ns;
	struct vakt_pod *pod;
	char buf[64];

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, pod_ns_yaml, sizeof(pod_ns_yaml) - 1, "x.yaml",
					  NULL, &err), 0);
	ns = vakt_namespace_dup(set.ns[0]);
	pod = vakt_pod_dup(set.pods[0]);
	vakt_objset_free(&set);
	assert_non_null(ns);
	assert_non_null(pod);
	assert_string_equal(ns->name, "n");
	assert_string_equal(vakt_labels_get(&ns->labels, "a"), "b");
	assert_string_equal(pod->node, "node");
	assert_int_equal(pod->nips, 2);
	assert_string_equal(vakt_addr_str(&pod->ips[1], buf, sizeof(buf)), "fd00::1");
	assert_int_equal(pod->nports, 1);
	assert_string_equal(pod->ports[0].name, "http");
	assert_int_equal(pod->ports[0].port, 80);
	vakt_namespace_free(ns);
	vakt_pod_free(pod);
	/* Freeing NULL is a no-op, as for free(). */
	vakt_pod_free(NULL);
	vakt_policy_free(NULL);
	vakt_namespace_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels_stay_sorted_with_unique_keys),
		cmocka_unit_test(test_labels_compare_by_content),
		cmocka_unit_test(test_labels_copy_is_deep),
		cmocka_unit_test(test_ipv4_is_stored_v4_mapped),
		cmocka_unit_test(test_ipv6_parses_and_prints_compressed),
		cmocka_unit_test(test_bad_addresses_are_rejected),
		cmocka_unit_test(test_ipv4_cidr_is_mapped_prefix_with_host_bits_masked),
		cmocka_unit_test(test_ipv6_cidr_masks_host_bits),
		cmocka_unit_test(test_bad_cidrs_are_rejected),
		cmocka_unit_test(test_cidr_containment),
		cmocka_unit_test(test_cidr_has_address),
		cmocka_unit_test(test_protocols_parse_exactly_as_kubernetes),
		cmocka_unit_test(test_policy_dup_is_deep_and_equal),
		cmocka_unit_test(test_pod_and_namespace_dup_are_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
