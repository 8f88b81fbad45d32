// SPDX-License-Identifier: Apache-2.0
/*
 * ipBlock arithmetic: cidr minus excepts, IPv4 and IPv6, the families never
 * mixing (an IPv6 block never contains IPv4-mapped addresses), /0 and host
 * prefixes, and ipBlock peers matching pods by any of their IPs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"

/* A block from "cidr" and optional excepts, NULL-terminated. */
static struct vakt_ipblock block(const char *cidr, ...)
{
	struct vakt_ipblock b = { 0 };
	const char *e;
	va_list ap;

	assert_int_equal(vakt_cidr_parse(cidr, &b.cidr), 0);
	va_start(ap, cidr);
	while ((e = va_arg(ap, const char *))) {
		b.except = realloc(b.except, (b.nexcept + 1) * sizeof(*b.except));
		assert_non_null(b.except);
		assert_int_equal(vakt_cidr_parse(e, &b.except[b.nexcept]), 0);
		b.nexcept++;
	}
	va_end(ap);
	return b;
}

static int has(const struct vakt_ipblock *b, const char *addr)
{
	struct vakt_addr a;

	assert_int_equal(vakt_addr_parse(addr, &a, NULL), 0);
	return vakt_ipblock_has(b, &a);
}

static void test_v4_block_contains_its_addresses_only(void **state)
{
	struct vakt_ipblock b = block("10.1.0.0/16", NULL);

	(void)state;
	assert_true(has(&b, "10.1.0.0"));
	assert_true(has(&b, "10.1.2.3"));
	assert_true(has(&b, "10.1.255.255"));
	assert_false(has(&b, "10.0.255.255"));
	assert_false(has(&b, "10.2.0.0"));
	assert_false(has(&b, "11.1.2.3"));
	free(b.except);
}

static void test_v4_except_removes_its_addresses(void **state)
{
	struct vakt_ipblock b = block("10.0.0.0/8", "10.1.0.0/16", "10.2.3.4/32", NULL);

	(void)state;
	assert_true(has(&b, "10.0.0.1"));
	assert_false(has(&b, "10.1.0.0"));
	assert_false(has(&b, "10.1.200.7"));
	assert_true(has(&b, "10.2.3.3"));
	assert_false(has(&b, "10.2.3.4"));
	assert_true(has(&b, "10.2.3.5"));
	assert_true(has(&b, "10.255.255.255"));
	assert_false(has(&b, "11.0.0.0"));
	free(b.except);
}

static void test_v4_host_prefix_contains_one_address(void **state)
{
	struct vakt_ipblock b = block("192.168.1.7/32", NULL);

	(void)state;
	assert_true(has(&b, "192.168.1.7"));
	assert_false(has(&b, "192.168.1.6"));
	assert_false(has(&b, "192.168.1.8"));
	free(b.except);
}

static void test_v4_zero_prefix_contains_every_v4_address_and_no_v6(void **state)
{
	struct vakt_ipblock b = block("0.0.0.0/0", "169.254.169.254/32", NULL);

	(void)state;
	assert_true(has(&b, "0.0.0.0"));
	assert_true(has(&b, "1.2.3.4"));
	assert_true(has(&b, "255.255.255.255"));
	assert_false(has(&b, "169.254.169.254"));
	assert_false(has(&b, "::1"));
	assert_false(has(&b, "2001:db8::1"));
	assert_false(has(&b, "::"));
	free(b.except);
}

static void test_v6_block_with_except(void **state)
{
	struct vakt_ipblock b = block("2001:db8::/32", "2001:db8:bad::/48", NULL);

	(void)state;
	assert_true(has(&b, "2001:db8::1"));
	assert_true(has(&b, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(has(&b, "2001:db8:bad::1"));
	assert_false(has(&b, "2001:db8:bad:ffff::1"));
	assert_true(has(&b, "2001:db8:bae::1"));
	assert_false(has(&b, "2001:db9::1"));
	assert_false(has(&b, "10.0.0.1"));
	free(b.except);
}

static void test_v6_zero_prefix_never_contains_v4(void **state)
{
	struct vakt_ipblock b = block("::/0", NULL);

	(void)state;
	assert_true(has(&b, "::1"));
	assert_true(has(&b, "fe80::1"));
	assert_true(has(&b, "2001:db8::1"));
	assert_false(has(&b, "10.0.0.1"));
	assert_false(has(&b, "0.0.0.0"));
	/* Written in the mapped form, it is still an IPv4 address. */
	assert_false(has(&b, "::ffff:10.0.0.1"));
	free(b.except);
}

static void test_v6_block_over_mapped_range_never_contains_v4(void **state)
{
	struct vakt_ipblock b = block("::ffff:0:0/96", NULL);
	struct vakt_ipblock c = block("::ffff:10.0.0.0/104", NULL);

	(void)state;
	assert_false(has(&b, "10.0.0.1"));
	assert_false(has(&b, "1.2.3.4"));
	assert_false(has(&c, "10.0.0.1"));
	free(b.except);
	free(c.except);
}

static void test_v6_host_prefix_contains_one_address(void **state)
{
	struct vakt_ipblock b = block("fd00::10/128", NULL);

	(void)state;
	assert_true(has(&b, "fd00::10"));
	assert_false(has(&b, "fd00::11"));
	assert_false(has(&b, "fd00::f"));
	free(b.except);
}

static void test_except_equal_to_cidr_empties_the_block(void **state)
{
	struct vakt_ipblock b = block("10.0.0.0/24", "10.0.0.0/24", NULL);

	(void)state;
	assert_false(has(&b, "10.0.0.0"));
	assert_false(has(&b, "10.0.0.255"));
	free(b.except);
}

static void test_odd_prefix_lengths_split_inside_a_byte(void **state)
{
	struct vakt_ipblock b = block("10.0.0.64/27", "10.0.0.80/29", NULL);

	(void)state;
	assert_false(has(&b, "10.0.0.63"));
	assert_true(has(&b, "10.0.0.64"));
	assert_true(has(&b, "10.0.0.79"));
	assert_false(has(&b, "10.0.0.80"));
	assert_false(has(&b, "10.0.0.87"));
	assert_true(has(&b, "10.0.0.88"));
	assert_true(has(&b, "10.0.0.95"));
	assert_false(has(&b, "10.0.0.96"));
	free(b.except);
}

static void test_ip_block_peer_matches_pod_by_any_of_its_ips(void **state)
{
	struct vakt_pod pod = { .ns = "x", .name = "a", .nips = 2 };
	struct vakt_peer v4 = { .has_ipblock = 1, .ipblock = block("10.0.0.0/24", NULL) };
	struct vakt_peer v6 = { .has_ipblock = 1, .ipblock = block("fd00::/64", NULL) };
	struct vakt_peer other = { .has_ipblock = 1, .ipblock = block("10.9.0.0/16", NULL) };
	struct vakt_peer exc = { .has_ipblock = 1, .ipblock = block("10.0.0.0/24", "10.0.0.5/32", NULL) };

	(void)state;
	assert_int_equal(vakt_addr_parse("10.0.0.5", &pod.ips[0], NULL), 0);
	assert_int_equal(vakt_addr_parse("fd00::5", &pod.ips[1], NULL), 0);
	assert_true(vakt_peer_selects_pod(&v4, "y", &pod, NULL));
	assert_true(vakt_peer_selects_pod(&v6, "y", &pod, NULL));
	assert_false(vakt_peer_selects_pod(&other, "y", &pod, NULL));
	assert_false(vakt_peer_selects_pod(&exc, "y", &pod, NULL));
	/* hostNetwork pods are peers by address only: ipBlocks still match them. */
	pod.host_network = 1;
	assert_true(vakt_peer_selects_pod(&v4, "y", &pod, NULL));
	/* No IP yet: no block contains the pod. */
	pod.host_network = 0;
	pod.nips = 0;
	assert_false(vakt_peer_selects_pod(&v4, "y", &pod, NULL));
	free(v4.ipblock.except);
	free(v6.ipblock.except);
	free(other.ipblock.except);
	free(exc.ipblock.except);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_block_contains_its_addresses_only),
		cmocka_unit_test(test_v4_except_removes_its_addresses),
		cmocka_unit_test(test_v4_host_prefix_contains_one_address),
		cmocka_unit_test(test_v4_zero_prefix_contains_every_v4_address_and_no_v6),
		cmocka_unit_test(test_v6_block_with_except),
		cmocka_unit_test(test_v6_zero_prefix_never_contains_v4),
		cmocka_unit_test(test_v6_block_over_mapped_range_never_contains_v4),
		cmocka_unit_test(test_v6_host_prefix_contains_one_address),
		cmocka_unit_test(test_except_equal_to_cidr_empties_the_block),
		cmocka_unit_test(test_odd_prefix_lengths_split_inside_a_byte),
		cmocka_unit_test(test_ip_block_peer_matches_pod_by_any_of_its_ips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
