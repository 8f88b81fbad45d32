// SPDX-License-Identifier: Apache-2.0
/*
 * Differential: the kernel datapath and the userspace verdict agree.
 *
 * For many random clusters (tests/lib/gencluster, compiled by
 * agent/compiler for node-0), every compiled table is copied into the BPF
 * maps; then random packets (IPv4 and IPv6; TCP, UDP, SCTP, ICMP echo and
 * a portless protocol; toward pods, node addresses, ipBlock ranges and the
 * world) go through the real programs with BPF_PROG_TEST_RUN and through
 * vakt_tables_verdict(). The allow/drop decision and the reason counted by
 * the datapath must equal the userspace verdict on every packet. Egress
 * toward addresses that are no known pod is deferred by vakt_from_pod; the
 * test then runs vakt_node_egress with the mark, as the uplink would.
 * Needs root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "../lib/bpfload.h"
#include "../lib/bpfload_tables.h"
#include "../lib/gencluster.h"
#include "../lib/pkt.h"
#include "compiler.h"
#include "store.h"
#include "tables.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define SCENARIOS 1000
#define PACKETS_PER_SCENARIO 40
#define ADDRS_MAX 4096

static struct vakt_bpf *dp;

struct addrs {
	struct vakt_addr a[ADDRS_MAX];
	size_t n;
};

struct cidrs {
	struct vakt_cidr_key k[ADDRS_MAX];
	size_t n;
};

static int collect_addr(void *arg, const void *key, const void *val)
{
	struct addrs *s = arg;

	(void)val;
	if (s->n < ADDRS_MAX)
		memcpy(&s->a[s->n++], key, sizeof(struct vakt_addr));
	return 0;
}

static int collect_cidr(void *arg, const void *key, const void *val)
{
	struct cidrs *s = arg;

	(void)val;
	if (s->n < ADDRS_MAX)
		memcpy(&s->k[s->n++], key, sizeof(struct vakt_cidr_key));
	return 0;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the printed seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static int is_v4(const struct vakt_addr *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(a->b, pfx, 12);
}

static void addr_text(const struct vakt_addr *a, char *buf, size_t len)
{
	if (is_v4(a))
		inet_ntop(AF_INET, &a->b[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
}

/* An address inside the prefix k, random below the prefix length. */
static struct vakt_addr in_prefix(const struct vakt_cidr_key *k)
{
	struct vakt_addr a = k->addr;
	unsigned int bit;

	for (bit = k->prefixlen; bit < 128; bit++)
		if (rnd() & 1)
			a.b[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
	return a;
}

static struct vakt_addr random_world(int v4)
{
	struct vakt_addr a = { 0 };
	uint64_t r = rnd();

	if (v4) {
		a.b[10] = a.b[11] = 0xff;
		/* public-looking ranges, plus the cluster's 10/8 outside any pod */
		a.b[12] = (uint8_t)((r & 3) == 0 ? 10 : 1 + (r >> 8) % 220);
		a.b[13] = (uint8_t)(r >> 16);
		a.b[14] = (uint8_t)(r >> 24);
		a.b[15] = (uint8_t)(r >> 32);
	} else {
		a.b[0] = (r & 1) ? 0xfd : 0x20;
		a.b[1] = (r & 1) ? 0x00 : 0x01;
		memcpy(&a.b[8], &r, 8);
	}
	return a;
}

static struct vakt_addr pick_peer(const struct addrs *ip, const struct cidrs *cid,
				  const struct vakt_addr *self)
{
	int v4 = is_v4(self), tries;

	for (tries = 0; tries < 32; tries++) {
		struct vakt_addr a;
		unsigned int kind = (unsigned int)(rnd() % 10);

		if (kind < 5 && ip->n)
			a = ip->a[rnd() % ip->n];
		else if (kind < 8 && cid->n)
			a = in_prefix(&cid->k[rnd() % cid->n]);
		else if (kind < 9)
			a = *self;
		else
			a = random_world(v4);
		if (is_v4(&a) == v4)
			return a;
	}
	return random_world(v4);
}

static const uint16_t common_ports[] = { 53, 80, 81, 443, 8080, 8443, 5432, 6379, 9090, 9000 };

struct probe {
	struct vakt_addr self, peer;
	uint8_t proto, dir;
	uint16_t dport;
};

static void random_probe(struct probe *p, const struct addrs *eps, const struct addrs *ip,
			 const struct cidrs *cid)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDP,
					  IPPROTO_SCTP, IPPROTO_ICMP, 47 };
	uint64_t r = rnd();

	p->self = eps->a[r % eps->n];
	p->peer = pick_peer(ip, cid, &p->self);
	p->dir = (uint8_t)((r >> 20) & 1);
	p->proto = protos[(r >> 24) % sizeof(protos)];
	if (p->proto == IPPROTO_ICMP && !is_v4(&p->self))
		p->proto = IPPROTO_ICMPV6;
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6 || p->proto == 47)
		p->dport = 0;
	else if ((r >> 40) & 1)
		p->dport = common_ports[(r >> 41) % (sizeof(common_ports) / sizeof(common_ports[0]))];
	else
		p->dport = (uint16_t)(1 + (r >> 44) % 65535);
}

static uint64_t counted(uint32_t ep, uint32_t dir, uint32_t reason)
{
	struct vakt_counter c;

	assert_int_equal(dp_counter(dp, ep, dir, reason, &c), 0);
	return c.packets;
}

/* Runs the probe through the datapath; returns 1 forwarded / 0 dropped and checks the counter. */
static int bpf_decide(const struct probe *p, uint16_t sport, uint32_t ep_id, uint32_t want_reason)
{
	char self[64], peer[64];
	struct pk_spec s = { .proto = p->proto, .sport = sport, .dport = p->dport,
			     .tcp_flags = PK_TCP_SYN, .sctp_chunk = 1 };
	uint8_t buf[PK_MAX];
	uint64_t before = counted(ep_id, p->dir, want_reason);
	uint32_t mark = 0;
	size_t len;
	int ret;

	addr_text(&p->self, self, sizeof(self));
	addr_text(&p->peer, peer, sizeof(peer));
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		s.icmp_type = p->proto == IPPROTO_ICMP ? 8 : 128;
		s.icmp_id = sport;
	}
	s.src = p->dir == VAKT_DIR_EGRESS ? self : peer;
	s.dst = p->dir == VAKT_DIR_EGRESS ? peer : self;
	len = pk_build(&s, buf, sizeof(buf));
	assert_true(len > 0);
	if (p->dir == VAKT_DIR_INGRESS) {
		assert_int_equal(dp_run(dp, DP_TO_POD, buf, len, 0, NULL, &ret), 0);
	} else {
		assert_int_equal(dp_run(dp, DP_FROM_POD, buf, len, 0, &mark, &ret), 0);
		/* deferred toward an unknown address: decided where it leaves the node */
		if ((mark >> VAKT_MARK_DEFAULT_SHIFT) & VAKT_MARK_DEFER)
			assert_int_equal(dp_run(dp, DP_NODE_EGRESS, buf, len, mark, NULL, &ret), 0);
	}
	if (counted(ep_id, p->dir, want_reason) != before + 1)
		fail_msg("%s %s %s:%u proto %u: datapath did not count reason %u", self,
			 p->dir ? "->" : "<-", peer, p->dport, p->proto, want_reason);
	return ret == VAKT_TC_PASS;
}

/* Deletes every conntrack entry the probe can have created (scanning a 256k LRU is slow). */
static void ct_forget(const struct probe *p, uint16_t sport, uint32_t ep_id)
{
	int fd = dp_map_fd(dp, "ct");
	/* veth points: BPF_PROG_TEST_RUN's skb->dev is the loopback device */
	struct vakt_ct_key k = { .proto = p->proto, .scope = 1, .dir = p->dir }, r;
	uint16_t sp = htons(sport), dpt = htons(p->dport);

	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		dpt = 0; /* echo request: sport = id, dport = 0 */
	else if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP)
		sp = dpt = 0;
	k.saddr = p->dir == VAKT_DIR_EGRESS ? p->self : p->peer;
	k.daddr = p->dir == VAKT_DIR_EGRESS ? p->peer : p->self;
	k.sport = sp;
	k.dport = dpt;
	r = k;
	r.saddr = k.daddr;
	r.daddr = k.saddr;
	r.sport = k.dport;
	r.dport = k.sport;
	r.dir = (uint8_t)(k.dir ^ 1);
	bpf_map_delete_elem(fd, &k);
	bpf_map_delete_elem(fd, &r);
	/* the deferred egress check's entries, scoped by the endpoint */
	k.scope = r.scope = VAKT_CT_SCOPE_EP(ep_id);
	bpf_map_delete_elem(fd, &k);
	bpf_map_delete_elem(fd, &r);
	r.scope = 0;
	r.dir = VAKT_CT_DIR_NODE;
	bpf_map_delete_elem(fd, &r);
}

static void run_scenario(uint64_t seed, size_t *checked)
{
	struct vakt_gen_opts go = {
		.seed = seed,
		.namespaces = 2 + seed % 5,
		.pods = 20 + (seed * 7) % 60,
		.policies = 3 + (seed * 13) % 25,
		.nodes = 1 + seed % 3,
		.dual_stack_pct = (unsigned int)(seed % 4) * 20,
	};
	struct vakt_compiler_opts co = { .node = "node-0" };
	static struct addrs eps, ips;
	static struct cidrs cids;
	struct vakt_store *st = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);
	struct vakt_compiler *c;
	const struct vakt_tables *t;
	static const char *maps[] = { "ipcache", "endpoints", "cidr", "policy" };
	size_t i;

	assert_non_null(st);
	assert_non_null(g);
	c = vakt_compiler_new(st, &co);
	assert_non_null(c);
	assert_int_equal(vakt_gen_populate(g, st), 0);
	assert_int_equal(vakt_compiler_full(c), 0);
	t = vakt_compiler_tables(c);
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		assert_int_equal(dp_clear_map(dp, maps[i]), 0);
	assert_int_equal(dp_fill_tables(dp, t), 0);
	assert_int_equal(dp_set_gen(dp, seed + 1), 0);

	eps.n = ips.n = cids.n = 0;
	vakt_tables_foreach(t, VAKT_T_ENDPOINTS, collect_addr, &eps);
	vakt_tables_foreach(t, VAKT_T_IPCACHE, collect_addr, &ips);
	vakt_tables_foreach(t, VAKT_T_CIDR, collect_cidr, &cids);
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	for (i = 0; eps.n && i < PACKETS_PER_SCENARIO; i++) {
		struct probe p;
		struct vakt_flow f;
		struct vakt_verdict v;
		const struct vakt_ep_val *ep;
		int us, kern;

		random_probe(&p, &eps, &ips, &cids);
		ep = vakt_tables_endpoint(t, &p.self);
		if (!ep) {
			char txt[64];

			addr_text(&p.self, txt, sizeof(txt));
			fail_msg("seed %llu: endpoint %s listed but not found", (unsigned long long)seed, txt);
		}
		f = (struct vakt_flow){ .peer = p.peer, .dport = p.dport, .proto = p.proto,
					.dir = p.dir };
		us = vakt_tables_verdict(t, &p.self, &f, &v);
		assert_true(us == 0 || us == 1);
		kern = bpf_decide(&p, (uint16_t)(1024 + (*checked % 60000)), ep->ep_id, v.reason);
		/* every probe must be a new flow: portless protocols would share a tuple */
		ct_forget(&p, (uint16_t)(1024 + (*checked % 60000)), ep->ep_id);
		if (kern != us)
			fail_msg("seed %llu probe %zu: userspace %d (reason %u), datapath %d",
				 (unsigned long long)seed, i, us, v.reason, kern);
		(*checked)++;
	}
	vakt_compiler_free(c);
	vakt_store_free(st);
	vakt_gen_free(g);
}

static void test_datapath_agrees_with_userspace_verdict(void **state)
{
	size_t checked = 0;
	uint64_t seed, base = 1;
	const char *env = getenv("VAKT_DIFF_SEED");

	(void)state;
	if (env)
		base = strtoull(env, NULL, 0);
	for (seed = base; seed < base + SCENARIOS; seed++)
		run_scenario(seed, &checked);
	printf("differential: %zu probes over %d scenarios agree\n", checked, SCENARIOS);
	/* ct_forget() removed what every probe created: nothing was left behind to be hit */
	assert_int_equal(dp_map_count(dp, "ct"), 0);
	assert_true(checked > SCENARIOS * PACKETS_PER_SCENARIO / 2);
}

static int group_setup(void **state)
{
	struct dp_cfg cfg = { .no_events = 1 };

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_differential: needs root\n");
		return -1;
	}
	return dp_open(&dp, &cfg) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (dp)
		dp_close(dp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_datapath_agrees_with_userspace_verdict),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
