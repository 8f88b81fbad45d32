// SPDX-License-Identifier: Apache-2.0
/* The userspace tables: BPF LPM semantics (against a brute-force reference),
 * port-range prefixes, the journal's make-before-break order, changed-back
 * keys, the revoked flag, limits, and the verdict over the tables. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "engine.h"
#include "log.h"
#include "tables.h"

static struct vakt_cidr_key ckey(const char *s)
{
	struct vakt_cidr c;
	struct vakt_cidr_key k;

	assert_int_equal(vakt_cidr_parse(s, &c), 0);
	k.prefixlen = c.plen;
	k.addr = c.addr;
	return k;
}

static struct vakt_cidr_key hostkey(const char *s)
{
	struct vakt_cidr_key k = { .prefixlen = 128 };

	assert_int_equal(vakt_addr_parse(s, &k.addr, NULL), 0);
	return k;
}

static uint32_t cls(const struct vakt_tables *t, const char *addr)
{
	struct vakt_cidr_key k = hostkey(addr);
	const struct vakt_cidr_val *v = vakt_tables_cidr(t, &k);

	return v ? v->class_id : 999;
}

static void put_cidr(struct vakt_tables *t, const char *prefix, uint32_t c)
{
	struct vakt_cidr_key k = ckey(prefix);
	struct vakt_cidr_val v = { c };

	assert_int_equal(vakt_tables_put(t, VAKT_T_CIDR, &k, &v), 0);
}

static void test_cidr_longest_prefix_wins_including_default(void **state)
{
	struct vakt_tables *t = vakt_tables_new();

	(void)state;
	assert_int_equal(cls(t, "10.1.2.3"), 999); /* empty table: no match */
	put_cidr(t, "::/0", 0);
	put_cidr(t, "10.0.0.0/8", 1);
	put_cidr(t, "10.1.0.0/16", 2);
	put_cidr(t, "10.1.2.0/24", 3);
	put_cidr(t, "fd00::/64", 4);
	assert_int_equal(cls(t, "10.1.2.3"), 3);
	assert_int_equal(cls(t, "10.1.3.3"), 2);
	assert_int_equal(cls(t, "10.200.0.1"), 1);
	assert_int_equal(cls(t, "11.0.0.1"), 0);
	assert_int_equal(cls(t, "fd00::1"), 4);
	assert_int_equal(cls(t, "fd00:0:0:1::1"), 0);
	/* a lookup key with a shorter prefixlen only sees prefixes that fit */
	{
		struct vakt_cidr_key k = ckey("10.1.2.0/20");

		assert_int_equal(vakt_tables_cidr(t, &k)->class_id, 2);
	}
	/* bits beyond prefixlen are ignored: same entry */
	{
		struct vakt_cidr_key k = ckey("10.0.0.0/8");
		struct vakt_cidr_val v = { 7 };

		k.addr.b[13] = 99;
		assert_int_equal(vakt_tables_put(t, VAKT_T_CIDR, &k, &v), 0);
		assert_int_equal(vakt_tables_count(t, VAKT_T_CIDR), 5);
		assert_int_equal(cls(t, "10.200.0.1"), 7);
	}
	{
		struct vakt_cidr_key k = ckey("10.1.2.0/24");

		assert_int_equal(vakt_tables_del(t, VAKT_T_CIDR, &k), 0);
	}
	assert_int_equal(cls(t, "10.1.2.3"), 2);
	vakt_tables_free(t);
}

/* Reference: longest matching prefix by scanning every entry. */
struct ref {
	struct vakt_cidr_key k[400];
	uint32_t v[400];
	int n;
};

static int bit(const uint8_t *b, unsigned int i)
{
	return (b[i / 8] >> (7 - i % 8)) & 1;
}

static int ref_lookup(const struct ref *r, const struct vakt_cidr_key *q)
{
	int best = -1;

	for (int i = 0; i < r->n; i++) {
		unsigned int j, l = r->k[i].prefixlen;

		if (l > q->prefixlen)
			continue;
		for (j = 0; j < l && bit(r->k[i].addr.b, j) == bit(q->addr.b, j); j++)
			;
		if (j == l && (best < 0 || l > r->k[best].prefixlen))
			best = i;
	}
	return best;
}

static void test_cidr_lpm_matches_brute_force_reference(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct ref *r = calloc(1, sizeof(*r));
	uint64_t rng = 12345;

	(void)state;
	for (int i = 0; i < 300; i++) {
		struct vakt_cidr_key k = { 0 };
		struct vakt_cidr_val v;
		int j, dup = -1;

		rng = rng * 6364136223846793005ULL + 1;
		/* few distinct high bits so that prefixes nest often */
		k.addr.b[0] = (uint8_t)((rng >> 60) & 3);
		k.addr.b[1] = (uint8_t)(rng >> 52);
		k.addr.b[2] = (uint8_t)(rng >> 44);
		k.addr.b[15] = (uint8_t)(rng >> 36);
		k.prefixlen = (uint32_t)((rng >> 20) % 129);
		for (j = (int)k.prefixlen; j < 128; j++)
			k.addr.b[j / 8] &= (uint8_t)~(0x80 >> (j % 8));
		v.class_id = (uint32_t)i;
		assert_int_equal(vakt_tables_put(t, VAKT_T_CIDR, &k, &v), 0);
		for (j = 0; j < r->n; j++)
			if (r->k[j].prefixlen == k.prefixlen && !memcmp(&r->k[j].addr, &k.addr, 16))
				dup = j;
		if (dup < 0)
			dup = r->n++;
		r->k[dup] = k;
		r->v[dup] = (uint32_t)i;
	}
	assert_int_equal(vakt_tables_count(t, VAKT_T_CIDR), (size_t)r->n);
	for (int i = 0; i < 20000; i++) {
		struct vakt_cidr_key q = { .prefixlen = 128 };
		const struct vakt_cidr_val *got;
		int want;

		rng = rng * 6364136223846793005ULL + 1;
		q.addr.b[0] = (uint8_t)((rng >> 60) & 3);
		q.addr.b[1] = (uint8_t)(rng >> 52);
		q.addr.b[2] = (uint8_t)(rng >> 44);
		q.addr.b[15] = (uint8_t)(rng >> 36);
		if (i % 4 == 0)
			q.prefixlen = (uint32_t)((rng >> 8) % 129);
		want = ref_lookup(r, &q);
		got = vakt_tables_cidr(t, &q);
		if (want < 0)
			assert_null(got);
		else {
			assert_non_null(got);
			assert_int_equal(got->class_id, r->v[want]);
		}
	}
	free(r);
	vakt_tables_free(t);
}

struct pctx {
	struct vakt_tables *t;
	uint32_t rule;
};

static int put_port_prefix(void *arg, uint16_t value, uint8_t plen)
{
	struct pctx *p = arg;
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_ANY_PORT + plen, .policy = 1, .peer = 300,
				     .proto = IPPROTO_TCP, .port = VAKT_HTONS(value) };
	struct vakt_policy_val v = { .rule = p->rule, .action = VAKT_ACTION_ALLOW };

	return vakt_tables_put(p->t, VAKT_T_POLICY, &k, &v);
}

static uint32_t prule(const struct vakt_tables *t, uint32_t peer, uint8_t proto, uint16_t port)
{
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = 1, .peer = peer,
				     .proto = proto, .port = VAKT_HTONS(port) };
	const struct vakt_policy_val *v = vakt_tables_policy(t, &k);

	return v ? v->rule : 0;
}

static void test_policy_port_ranges_and_wildcards(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct pctx p = { t, 11 };
	struct vakt_policy_key k;
	struct vakt_policy_val v = { .rule = 22, .action = VAKT_ACTION_ALLOW };

	(void)state;
	assert_int_equal(vakt_port_range_prefixes(30000, 32767, put_port_prefix, &p), 0);
	assert_true(vakt_tables_count(t, VAKT_T_POLICY) < 10); /* prefixes, not one entry per port */
	assert_int_equal(prule(t, 300, IPPROTO_TCP, 30000), 11);
	assert_int_equal(prule(t, 300, IPPROTO_TCP, 31234), 11);
	assert_int_equal(prule(t, 300, IPPROTO_TCP, 32767), 11);
	assert_int_equal(prule(t, 300, IPPROTO_TCP, 29999), 0);
	assert_int_equal(prule(t, 300, IPPROTO_TCP, 32768), 0);
	assert_int_equal(prule(t, 300, IPPROTO_UDP, 31000), 0);
	assert_int_equal(prule(t, 301, IPPROTO_TCP, 31000), 0);
	/* any port of UDP for the same peer */
	k = (struct vakt_policy_key){ .prefixlen = VAKT_PLEN_ANY_PORT, .policy = 1, .peer = 300,
				      .proto = IPPROTO_UDP };
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &k, &v), 0);
	assert_int_equal(prule(t, 300, IPPROTO_UDP, 53), 22);
	assert_int_equal(prule(t, 300, IPPROTO_UDP, 0), 22);
	/* any protocol for peer 0 (ANY): ICMP too; a longer entry still wins */
	k = (struct vakt_policy_key){ .prefixlen = VAKT_PLEN_ANY_PROTO, .policy = 1, .peer = 0 };
	v.rule = 33;
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &k, &v), 0);
	assert_int_equal(prule(t, 0, IPPROTO_ICMP, 0), 33);
	k = (struct vakt_policy_key){ .prefixlen = VAKT_PLEN_FULL, .policy = 1, .peer = 0,
				      .proto = IPPROTO_TCP, .port = VAKT_HTONS(80) };
	v.rule = 44;
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &k, &v), 0);
	assert_int_equal(prule(t, 0, IPPROTO_TCP, 80), 44);
	assert_int_equal(prule(t, 0, IPPROTO_TCP, 81), 33);
	/* another endpoint policy sees nothing */
	k.policy = 2;
	k.peer = 300;
	assert_null(vakt_tables_policy(t, &k));
	vakt_tables_free(t);
}

struct rec {
	char log[64][48];
	int n;
	int fail_at;
};

static int record(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	struct rec *r = arg;

	(void)key;
	if (r->n == r->fail_at)
		return -EIO;
	snprintf(r->log[r->n++], sizeof(r->log[0]), "%s %s", val ? "put" : "del", vakt_table_name(id));
	return 0;
}

static void test_journal_is_make_before_break_and_skips_changed_back(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_addr a1, a2;
	struct vakt_ip_val ip = { .identity = 300 };
	struct vakt_ep_val ep = { .ep_id = 1, .identity = 300 };
	struct vakt_policy_key pk = { .prefixlen = VAKT_PLEN_ANY_PROTO, .policy = 1, .peer = 300 };
	struct vakt_policy_val pv = { .rule = 1, .action = VAKT_ACTION_ALLOW };
	struct rec r = { .fail_at = -1 };
	int revoked = 5;

	(void)state;
	assert_int_equal(vakt_addr_parse("10.0.0.1", &a1, NULL), 0);
	assert_int_equal(vakt_addr_parse("10.0.0.2", &a2, NULL), 0);
	/* written in "wrong" order on purpose */
	assert_int_equal(vakt_tables_put(t, VAKT_T_ENDPOINTS, &a1, &ep), 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a1, &ip), 0);
	put_cidr(t, "::/0", 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &pk, &pv), 0);
	/* changed and changed back: never reported */
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a2, &ip), 0);
	assert_int_equal(vakt_tables_del(t, VAKT_T_IPCACHE, &a2), 0);
	assert_int_equal(vakt_tables_drain(t, record, &r, &revoked), 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.log[0], "put policy");
	assert_string_equal(r.log[1], "put cidr");
	assert_string_equal(r.log[2], "put ipcache");
	assert_string_equal(r.log[3], "put endpoints");
	assert_int_equal(revoked, 0);
	assert_int_equal(vakt_tables_journal_len(t), 0);

	/* switch the endpoint to policy 2: new entries first, old ones last */
	r.n = 0;
	pk.policy = 2;
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &pk, &pv), 0);
	ep.policy[0] = 2;
	assert_int_equal(vakt_tables_put(t, VAKT_T_ENDPOINTS, &a1, &ep), 0);
	pk.policy = 1;
	assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &pk), 0);
	/* a value changed and changed back is not reported */
	ip.identity = 301;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a1, &ip), 0);
	ip.identity = 300;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a1, &ip), 0);
	assert_int_equal(vakt_tables_drain(t, record, &r, &revoked), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[0], "put policy");
	assert_string_equal(r.log[1], "put endpoints");
	assert_string_equal(r.log[2], "del policy");
	assert_int_equal(revoked, 1);

	/* an address changing identity revokes; a failed drain is delivered again */
	r.n = 0;
	ip.identity = 302;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a1, &ip), 0);
	r.fail_at = 0;
	assert_int_equal(vakt_tables_drain(t, record, &r, &revoked), -EIO);
	r.fail_at = -1;
	revoked = 0;
	assert_int_equal(vakt_tables_drain(t, record, &r, &revoked), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.log[0], "put ipcache");
	assert_int_equal(revoked, 1);

	/* a new address is no revocation */
	r.n = 0;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a2, &ip), 0);
	assert_int_equal(vakt_tables_drain(t, record, &r, &revoked), 0);
	assert_int_equal(revoked, 0);
	vakt_tables_free(t);
}

static int record_cidr_plen(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	struct rec *r = arg;

	(void)val;
	if (id == VAKT_T_CIDR)
		snprintf(r->log[r->n++], sizeof(r->log[0]), "%s /%u", val ? "put" : "del",
			 ((const struct vakt_cidr_key *)key)->prefixlen - 96);
	return 0;
}

/*
 * Nested prefixes reach the kernel so that every address matches its old
 * or its new prefix throughout: puts longest first (else the new /16 would
 * briefly be the longest match of addresses whose /24 is not there yet),
 * deletes shortest first.
 */
static void test_nested_cidr_prefixes_drain_longest_put_first_shortest_delete_first(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct rec r = { .fail_at = -1 };
	struct vakt_cidr_key k;

	(void)state;
	put_cidr(t, "10.0.0.0/16", 1);
	put_cidr(t, "10.0.1.0/24", 2);
	put_cidr(t, "10.0.1.128/25", 3);
	assert_int_equal(vakt_tables_drain(t, record_cidr_plen, &r, NULL), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[0], "put /25");
	assert_string_equal(r.log[1], "put /24");
	assert_string_equal(r.log[2], "put /16");

	r.n = 0;
	k = ckey("10.0.1.128/25");
	assert_int_equal(vakt_tables_del(t, VAKT_T_CIDR, &k), 0);
	k = ckey("10.0.0.0/16");
	assert_int_equal(vakt_tables_del(t, VAKT_T_CIDR, &k), 0);
	k = ckey("10.0.1.0/24");
	assert_int_equal(vakt_tables_del(t, VAKT_T_CIDR, &k), 0);
	assert_int_equal(vakt_tables_drain(t, record_cidr_plen, &r, NULL), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.log[0], "del /16");
	assert_string_equal(r.log[1], "del /24");
	assert_string_equal(r.log[2], "del /25");
	vakt_tables_free(t);
}

static void test_full_table_refuses_new_keys_only(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_addr a;
	struct vakt_ip_val ip = { .identity = 300 };

	(void)state;
	assert_int_equal(vakt_table_capacity(VAKT_T_ENDPOINTS), VAKT_MAX_ENDPOINTS);
	assert_string_equal(vakt_table_name(VAKT_T_POLICY), "policy");
	assert_int_equal(vakt_table_key_size(VAKT_T_CIDR), sizeof(struct vakt_cidr_key));
	vakt_tables_set_limit(t, VAKT_T_IPCACHE, 2);
	for (int i = 0; i < 3; i++) {
		memset(&a, 0, sizeof(a));
		a.b[15] = (uint8_t)i;
		assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a, &ip), i < 2 ? 0 : -ENOSPC);
	}
	a.b[15] = 1;
	ip.identity = 301;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a, &ip), 0); /* update in place */
	assert_int_equal(vakt_tables_ipcache(t, &a)->identity, 301);
	assert_int_equal(vakt_tables_del(t, VAKT_T_IPCACHE, &a), 0);
	a.b[15] = 2;
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a, &ip), 0);
	assert_int_equal(vakt_tables_count(t, VAKT_T_IPCACHE), 2);
	vakt_tables_free(t);
}

static void test_verdict_over_tables(void **state)
{
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_addr self, peer, other, host;
	struct vakt_ep_val ep = { .ep_id = 1, .identity = 300, .policy = { 7, 0 },
				  .flags = VAKT_EPF_ID(VAKT_DIR_INGRESS) };
	struct vakt_ip_val ip = { .identity = 301 }, hip = { .identity = VAKT_ID_HOST };
	struct vakt_policy_key pk = { .prefixlen = VAKT_PLEN_FULL, .policy = 7, .peer = 301,
				      .proto = IPPROTO_TCP, .port = VAKT_HTONS(80) };
	struct vakt_policy_val pv = { .rule = 5, .action = VAKT_ACTION_ALLOW };
	struct vakt_flow f = { .dport = 80, .proto = IPPROTO_TCP, .dir = VAKT_DIR_INGRESS };
	struct vakt_verdict v;

	(void)state;
	assert_int_equal(vakt_addr_parse("10.0.0.1", &self, NULL), 0);
	assert_int_equal(vakt_addr_parse("10.0.0.2", &peer, NULL), 0);
	assert_int_equal(vakt_addr_parse("10.0.0.3", &other, NULL), 0);
	assert_int_equal(vakt_addr_parse("192.168.0.1", &host, NULL), 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_ENDPOINTS, &self, &ep), 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &peer, &ip), 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &host, &hip), 0);
	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &pk, &pv), 0);
	f.peer = peer;
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 1);
	assert_int_equal(v.reason, VAKT_R_POLICY_ALLOW);
	assert_int_equal(v.rule, 5);
	f.dport = 81;
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 0);
	assert_int_equal(v.reason, VAKT_R_POLICY_DENIED);
	f.peer = other;
	f.dport = 80;
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 0);
	f.peer = host;
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 1);
	assert_int_equal(v.reason, VAKT_R_HOST);
	f.dir = VAKT_DIR_EGRESS;
	f.peer = other;
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 1);
	assert_int_equal(v.reason, VAKT_R_NOT_ISOLATED);
	assert_int_equal(vakt_tables_verdict(t, &other, &f, &v), -ENOENT);
	ep.flags |= VAKT_EPF_FAIL_CLOSED;
	assert_int_equal(vakt_tables_put(t, VAKT_T_ENDPOINTS, &self, &ep), 0);
	assert_int_equal(vakt_tables_verdict(t, &self, &f, &v), 0);
	assert_int_equal(v.reason, VAKT_R_FAIL_CLOSED);
	vakt_tables_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_longest_prefix_wins_including_default),
		cmocka_unit_test(test_cidr_lpm_matches_brute_force_reference),
		cmocka_unit_test(test_policy_port_ranges_and_wildcards),
		cmocka_unit_test(test_journal_is_make_before_break_and_skips_changed_back),
		cmocka_unit_test(test_nested_cidr_prefixes_drain_longest_put_first_shortest_delete_first),
		cmocka_unit_test(test_full_table_refuses_new_keys_only),
		cmocka_unit_test(test_verdict_over_tables),
	};

	vakt_log_set_level(VAKT_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
