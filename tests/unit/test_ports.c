// SPDX-License-Identifier: Apache-2.0
/*
 * NetworkPolicyPort resolution (numeric, named per pod, ranges, protocol
 * only, protocol mismatch, invalid specs) and the decomposition of a port
 * range into the minimal set of prefixes over the 16 port bits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "engine.h"

static struct vakt_named_port web_ports[] = {
	{ .name = "dns", .port = 53, .proto = IPPROTO_UDP },
	{ .name = "http", .port = 8080, .proto = IPPROTO_TCP },
	{ .name = "sctp-x", .port = 9000, .proto = IPPROTO_SCTP },
};

struct resolved {
	int ret;
	uint8_t proto;
	uint16_t lo, hi;
};

static struct resolved resolve(struct vakt_port_spec ps, const struct vakt_named_port *ports, size_t n)
{
	struct resolved r = { 0 };

	r.ret = vakt_port_resolve(&ps, ports, n, &r.proto, &r.lo, &r.hi);
	return r;
}

static void test_numeric_port_resolves_to_itself(void **state)
{
	struct resolved r = resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = 80 }, NULL, 0);

	(void)state;
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_TCP);
	assert_int_equal(r.lo, 80);
	assert_int_equal(r.hi, 80);
	r = resolve((struct vakt_port_spec){ .proto = IPPROTO_SCTP, .port = 65535 }, web_ports, 3);
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_SCTP);
	assert_int_equal(r.lo, 65535);
	assert_int_equal(r.hi, 65535);
}

static void test_end_port_gives_inclusive_range(void **state)
{
	struct resolved r =
		resolve((struct vakt_port_spec){ .proto = IPPROTO_UDP, .port = 32000, .end_port = 32768 }, NULL, 0);

	(void)state;
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_UDP);
	assert_int_equal(r.lo, 32000);
	assert_int_equal(r.hi, 32768);
	r = resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = 80, .end_port = 80 }, NULL, 0);
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.lo, 80);
	assert_int_equal(r.hi, 80);
}

static void test_protocol_without_port_means_every_port_of_it(void **state)
{
	struct resolved r = resolve((struct vakt_port_spec){ .proto = IPPROTO_UDP }, NULL, 0);

	(void)state;
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_UDP);
	assert_int_equal(r.lo, 1);
	assert_int_equal(r.hi, 65535);
}

static void test_named_port_resolves_against_the_pods_ports(void **state)
{
	struct resolved r = resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "http" }, web_ports, 3);

	(void)state;
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_TCP);
	assert_int_equal(r.lo, 8080);
	assert_int_equal(r.hi, 8080);
	r = resolve((struct vakt_port_spec){ .proto = IPPROTO_UDP, .name = "dns" }, web_ports, 3);
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.proto, IPPROTO_UDP);
	assert_int_equal(r.lo, 53);
	r = resolve((struct vakt_port_spec){ .proto = IPPROTO_SCTP, .name = "sctp-x" }, web_ports, 3);
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.lo, 9000);
}

static void test_same_name_means_different_numbers_on_different_pods(void **state)
{
	struct vakt_named_port a[] = { { .name = "http", .port = 80, .proto = IPPROTO_TCP } };
	struct vakt_named_port b[] = { { .name = "http", .port = 8443, .proto = IPPROTO_TCP } };
	struct vakt_port_spec ps = { .proto = IPPROTO_TCP, .name = "http" };

	(void)state;
	assert_int_equal(resolve(ps, a, 1).lo, 80);
	assert_int_equal(resolve(ps, b, 1).lo, 8443);
}

static void test_named_port_the_pod_lacks_resolves_to_nothing(void **state)
{
	(void)state;
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "grpc" }, web_ports, 3).ret, 0);
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "http" }, NULL, 0).ret, 0);
	/* Names are case-sensitive. */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "HTTP" }, web_ports, 3).ret, 0);
}

static void test_named_port_with_other_protocol_resolves_to_nothing(void **state)
{
	(void)state;
	/* "http" is TCP on the pod; a UDP spec naming it matches nothing. */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_UDP, .name = "http" }, web_ports, 3).ret, 0);
	/* Spec defaults to TCP; "dns" is UDP on the pod. */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "dns" }, web_ports, 3).ret, 0);
}

static void test_name_listed_for_two_protocols_resolves_per_protocol(void **state)
{
	struct vakt_named_port p[] = {
		{ .name = "dns", .port = 53, .proto = IPPROTO_UDP },
		{ .name = "dns", .port = 5353, .proto = IPPROTO_TCP },
	};

	(void)state;
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_UDP, .name = "dns" }, p, 2).lo, 53);
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "dns" }, p, 2).lo, 5353);
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_SCTP, .name = "dns" }, p, 2).ret, 0);
}

static void test_duplicate_name_and_protocol_resolves_to_lowest_port(void **state)
{
	struct vakt_named_port p[] = {
		{ .name = "http", .port = 9090, .proto = IPPROTO_TCP },
		{ .name = "http", .port = 8080, .proto = IPPROTO_TCP },
	};

	(void)state;
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "http" }, p, 2).lo, 8080);
}

static void test_invalid_specs_are_rejected(void **state)
{
	(void)state;
	/* endPort below port */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .port = 90, .end_port = 80 }, NULL, 0).ret,
			 -EINVAL);
	/* endPort without port */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .end_port = 80 }, NULL, 0).ret, -EINVAL);
	/* endPort with a named port */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "http", .end_port = 9000 },
				 web_ports, 3)
				 .ret,
			 -EINVAL);
	/* a name and a number at once */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "http", .port = 80 }, web_ports, 3)
				 .ret,
			 -EINVAL);
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_TCP, .name = "" }, web_ports, 3).ret, -EINVAL);
	/* protocols the API does not allow */
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = IPPROTO_ICMP, .port = 1 }, NULL, 0).ret, -EINVAL);
	assert_int_equal(resolve((struct vakt_port_spec){ .proto = 0, .port = 80 }, NULL, 0).ret, -EINVAL);
}

/* --- range -> prefixes ----------------------------------------------------- */

struct cover {
	uint8_t hits[65536];
	unsigned int n;
	int last_value;
	int ordered;
	int aligned;
	struct {
		uint16_t value;
		uint8_t plen;
	} p[64];
};

static int cover_cb(void *arg, uint16_t value, uint8_t plen)
{
	struct cover *c = arg;
	uint32_t size = 1U << (16 - plen);

	if (plen > 16 || c->n >= 64)
		return -E2BIG;
	if ((value & (size - 1)) != 0)
		c->aligned = 0;
	if ((int)value <= c->last_value)
		c->ordered = 0;
	c->last_value = value;
	c->p[c->n].value = value;
	c->p[c->n].plen = plen;
	c->n++;
	for (uint32_t i = value; i < value + size && i < 65536; i++)
		c->hits[i]++;
	return 0;
}

/* Number of maximal aligned blocks inside [lo,hi]: any exact cover needs at least one prefix per block. */
static unsigned int min_prefixes(uint32_t lo, uint32_t hi)
{
	unsigned int n = 0;

	while (lo <= hi) {
		uint32_t size = 1;

		while (size < 65536 && (lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi)
			size *= 2;
		n++;
		lo += size;
	}
	return n;
}

static void check_range(uint16_t lo, uint16_t hi)
{
	struct cover *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->last_value = -1;
	c->ordered = 1;
	c->aligned = 1;
	assert_int_equal(vakt_port_range_prefixes(lo, hi, cover_cb, c), 0);
	for (uint32_t port = 0; port < 65536; port++) {
		uint8_t want = port >= lo && port <= hi;

		if (c->hits[port] != want)
			fail_msg("range %u-%u: port %u covered %u times, want %u", lo, hi, port, c->hits[port], want);
	}
	assert_true(c->ordered);
	assert_true(c->aligned);
	assert_true(c->n <= 30);
	assert_int_equal(c->n, min_prefixes(lo, hi));
	/* No two prefixes could merge into one: the set is minimal. */
	for (unsigned int i = 0; i + 1 < c->n; i++) {
		if (c->p[i].plen == c->p[i + 1].plen && c->p[i].plen > 0) {
			uint32_t size = 1U << (16 - c->p[i].plen);

			assert_false((c->p[i].value & (2 * size - 1)) == 0 && c->p[i + 1].value == c->p[i].value + size);
		}
	}
	free(c);
}

static void test_range_edges_decompose_exactly(void **state)
{
	(void)state;
	check_range(0, 65535);
	check_range(1, 65535);
	check_range(0, 0);
	check_range(65535, 65535);
	check_range(80, 80);
	check_range(0, 65534);
	check_range(1, 65534);
	check_range(32768, 65535);
	check_range(32767, 32768);
	check_range(1024, 2047);
	check_range(1023, 2048);
}

static void test_well_known_ranges_have_expected_prefixes(void **state)
{
	struct cover *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(c);
	c->last_value = -1;
	assert_int_equal(vakt_port_range_prefixes(0, 65535, cover_cb, c), 0);
	assert_int_equal(c->n, 1);
	assert_int_equal(c->p[0].value, 0);
	assert_int_equal(c->p[0].plen, 0);

	memset(c, 0, sizeof(*c));
	c->last_value = -1;
	assert_int_equal(vakt_port_range_prefixes(8080, 8080, cover_cb, c), 0);
	assert_int_equal(c->n, 1);
	assert_int_equal(c->p[0].value, 8080);
	assert_int_equal(c->p[0].plen, 16);

	/* 1..65535 is the worst case at one end: 16 prefixes. */
	memset(c, 0, sizeof(*c));
	c->last_value = -1;
	assert_int_equal(vakt_port_range_prefixes(1, 65535, cover_cb, c), 0);
	assert_int_equal(c->n, 16);
	free(c);
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64: deterministic, so a failure reproduces. */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_ranges_cover_exactly_their_ports(void **state)
{
	uint64_t seed = 0x7661ab7dULL;

	(void)state;
	for (int i = 0; i < 1500; i++) {
		uint16_t a = (uint16_t)rng_next(&seed), b = (uint16_t)rng_next(&seed);

		/* Every third range is short: the interesting alignments sit there. */
		if (i % 3 == 0)
			b = (uint16_t)(a + (rng_next(&seed) % 300));
		if (a > b) {
			uint16_t t = a;

			a = b;
			b = t;
		}
		check_range(a, b);
	}
}

static int stop_after_two(void *arg, uint16_t value, uint8_t plen)
{
	int *n = arg;

	(void)value;
	(void)plen;
	return ++*n == 2 ? 42 : 0;
}

static void test_callback_value_stops_the_walk(void **state)
{
	int n = 0;

	(void)state;
	assert_int_equal(vakt_port_range_prefixes(1, 65535, stop_after_two, &n), 42);
	assert_int_equal(n, 2);
}

static void test_inverted_range_is_rejected(void **state)
{
	int n = 0;

	(void)state;
	assert_int_equal(vakt_port_range_prefixes(81, 80, stop_after_two, &n), -EINVAL);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric_port_resolves_to_itself),
		cmocka_unit_test(test_end_port_gives_inclusive_range),
		cmocka_unit_test(test_protocol_without_port_means_every_port_of_it),
		cmocka_unit_test(test_named_port_resolves_against_the_pods_ports),
		cmocka_unit_test(test_same_name_means_different_numbers_on_different_pods),
		cmocka_unit_test(test_named_port_the_pod_lacks_resolves_to_nothing),
		cmocka_unit_test(test_named_port_with_other_protocol_resolves_to_nothing),
		cmocka_unit_test(test_name_listed_for_two_protocols_resolves_per_protocol),
		cmocka_unit_test(test_duplicate_name_and_protocol_resolves_to_lowest_port),
		cmocka_unit_test(test_invalid_specs_are_rejected),
		cmocka_unit_test(test_range_edges_decompose_exactly),
		cmocka_unit_test(test_well_known_ranges_have_expected_prefixes),
		cmocka_unit_test(test_random_ranges_cover_exactly_their_ports),
		cmocka_unit_test(test_callback_value_stops_the_walk),
		cmocka_unit_test(test_inverted_range_is_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
