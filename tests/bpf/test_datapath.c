// SPDX-License-Identifier: Apache-2.0
/*
 * The TC datapath (bpf/vakt.bpf.c) through BPF_PROG_TEST_RUN: a table of
 * {what, packet, expected return, expected reason and counter} covering
 * every verdict path and reason, then sequences for conntrack (scoping,
 * replies, TCP RST/FIN, SCTP, timeouts, revocation by generation), ICMP
 * errors, fragments, the NAT marks, counters and rate-limited drop events.
 * Needs root; fails when the program cannot be loaded.
 */
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../lib/bpfload.h"
#include "../lib/pkt.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/*
 * The fixture cluster.
 *   A 10.0.0.1 / fd00::1  ep 1 id 256: not isolated
 *   B 10.0.0.2 / fd00::2  ep 2 id 257: ingress policy 10 (below)
 *   C 10.0.0.3 / fd00::3  ep 3 id 258: ingress policy 21 (deny all),
 *                          egress policy 20 (B on TCP 80, UDP 53; 8.8.8.0/24 UDP 53)
 *   D 10.0.0.4             ep 4 id 256: failed closed
 *   E 10.0.0.5             ep 5 id 259: not isolated
 *   node 10.0.0.254 (identity HOST); remote pod 10.1.0.5 id 256.
 * Policy 10 (B ingress): id 256 TCP 80, id 256 UDP 5000, id 256 SCTP 9000,
 *   id 259 any protocol, any peer UDP 53, class 1 (192.168.0.0/16) TCP 443.
 */
#define EP_A 1
#define EP_B 2
#define EP_C 3
#define EP_D 4
#define EP_E 5
#define POL_B_IN 10
#define POL_C_EG 20
#define POL_C_IN 21
#define MARK_SHIFT VAKT_MARK_DEFAULT_SHIFT

static struct vakt_bpf *dp;
static int veth_a_ifindex; /* a veth of this test's own network namespace */
static int veth_b_ifindex; /* its peer: a second pod veth where a test needs two */

static void setup_cluster(struct vakt_bpf *s)
{
	struct vakt_ep_val a = { .ep_id = EP_A, .identity = 256 };
	struct vakt_ep_val b = { .ep_id = EP_B, .identity = 257, .policy = { POL_B_IN, 0 },
				 .flags = VAKT_EPF_ID(0) | VAKT_EPF_CLASS(0) | VAKT_EPF_ANY(0) };
	struct vakt_ep_val c = { .ep_id = EP_C, .identity = 258, .policy = { POL_C_IN, POL_C_EG },
				 .flags = VAKT_EPF_ID(1) | VAKT_EPF_CLASS(1) };
	struct vakt_ep_val d = { .ep_id = EP_D, .identity = 256, .flags = VAKT_EPF_FAIL_CLOSED,
				 .policy = { 1, 1 } };
	struct vakt_ep_val e = { .ep_id = EP_E, .identity = 259 };

	assert_int_equal(dp_put_endpoint(s, "10.0.0.1", &a), 0);
	assert_int_equal(dp_put_endpoint(s, "fd00::1", &a), 0);
	assert_int_equal(dp_put_endpoint(s, "10.0.0.2", &b), 0);
	assert_int_equal(dp_put_endpoint(s, "fd00::2", &b), 0);
	assert_int_equal(dp_put_endpoint(s, "10.0.0.3", &c), 0);
	assert_int_equal(dp_put_endpoint(s, "fd00::3", &c), 0);
	assert_int_equal(dp_put_endpoint(s, "10.0.0.4", &d), 0);
	assert_int_equal(dp_put_endpoint(s, "10.0.0.5", &e), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.1", 256), 0);
	assert_int_equal(dp_put_ipcache(s, "fd00::1", 256), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.2", 257), 0);
	assert_int_equal(dp_put_ipcache(s, "fd00::2", 257), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.3", 258), 0);
	assert_int_equal(dp_put_ipcache(s, "fd00::3", 258), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.4", 256), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.5", 259), 0);
	assert_int_equal(dp_put_ipcache(s, "10.0.0.254", VAKT_ID_HOST), 0);
	assert_int_equal(dp_put_ipcache(s, "10.1.0.5", 256), 0);
	assert_int_equal(dp_put_cidr(s, "::", 0, 0), 0);
	assert_int_equal(dp_put_cidr(s, "192.168.0.0", 96 + 16, 1), 0);
	assert_int_equal(dp_put_cidr(s, "8.8.8.0", 96 + 24, 2), 0);

	assert_int_equal(dp_put_policy(s, POL_B_IN, 256, IPPROTO_TCP, 80, VAKT_PLEN_FULL, 101), 0);
	assert_int_equal(dp_put_policy(s, POL_B_IN, 256, IPPROTO_UDP, 5000, VAKT_PLEN_FULL, 102), 0);
	assert_int_equal(dp_put_policy(s, POL_B_IN, 256, IPPROTO_SCTP, 9000, VAKT_PLEN_FULL, 103), 0);
	assert_int_equal(dp_put_policy(s, POL_B_IN, 259, 0, 0, VAKT_PLEN_ANY_PROTO, 104), 0);
	assert_int_equal(dp_put_policy(s, POL_B_IN, VAKT_PEER_ANY, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 105), 0);
	assert_int_equal(dp_put_policy(s, POL_B_IN, VAKT_PEER_CLASS | 1, IPPROTO_TCP, 443, VAKT_PLEN_FULL, 106), 0);
	assert_int_equal(dp_put_policy(s, POL_C_EG, 257, IPPROTO_TCP, 80, VAKT_PLEN_FULL, 201), 0);
	assert_int_equal(dp_put_policy(s, POL_C_EG, 257, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 202), 0);
	assert_int_equal(dp_put_policy(s, POL_C_EG, VAKT_PEER_CLASS | 2, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 203), 0);
	assert_int_equal(dp_set_gen(s, 1), 0);
}

static int group_setup(void **state)
{
	struct dp_cfg cfg = { .no_events = 1 };

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_datapath: needs root (BPF_PROG_TEST_RUN)\n");
		return -1;
	}
	/* BPF_PROG_TEST_RUN takes skb->ifindex from a device of the caller's namespace. */
	if (unshare(CLONE_NEWNET) || system("ip link add vkt-ds-a type veth peer name vkt-ds-b") != 0) {
		fprintf(stderr, "test_datapath: cannot create a network namespace with a veth\n");
		return -1;
	}
	veth_a_ifindex = (int)if_nametoindex("vkt-ds-a");
	veth_b_ifindex = (int)if_nametoindex("vkt-ds-b");
	if (veth_a_ifindex <= 1 || veth_b_ifindex <= 1) {
		fprintf(stderr, "test_datapath: veth has no usable ifindex\n");
		return -1;
	}
	if (dp_open(&dp, &cfg)) {
		fprintf(stderr, "test_datapath: loading the datapath failed\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (dp)
		dp_close(dp);
	dp = NULL;
	return 0;
}

/* Fresh maps for each test: no state leaks between tests. */
static int test_setup(void **state)
{
	static const char *maps[] = { "ct", "frags", "counters", "policy", "cidr", "endpoints",
				      "ipcache", "ep_addr", "ep_ifindex", "ep_veth" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (dp_clear_map(dp, maps[i]))
			return -1;
	setup_cluster(dp);
	return 0;
}

struct out {
	int ret;
	uint32_t mark;
	size_t len;
};

static struct out run(enum dp_prog prog, const struct pk_spec *s, uint32_t mark_in)
{
	uint8_t buf[PK_MAX];
	struct out o = { 0 };

	o.len = pk_build(s, buf, sizeof(buf));
	assert_true(o.len > 0);
	assert_int_equal(dp_run(dp, prog, buf, o.len, mark_in, &o.mark, &o.ret), 0);
	return o;
}

static uint64_t packets(uint32_t ep, uint32_t dir, uint32_t reason)
{
	struct vakt_counter c;

	assert_int_equal(dp_counter(dp, ep, dir, reason, &c), 0);
	return c.packets;
}

/* Runs prog on s and checks the return value and that exactly the counter (ep, dir, reason) moved. */
static struct out expect(enum dp_prog prog, const struct pk_spec *s, uint32_t mark_in, uint32_t ep,
			 uint32_t dir, uint32_t reason)
{
	uint64_t before = packets(ep, dir, reason);
	struct out o = run(prog, s, mark_in);

	if (packets(ep, dir, reason) != before + 1)
		fail_msg("%s -> %s: counter ep=%u dir=%u reason=%u did not move", s->src, s->dst, ep,
			 dir, reason);
	assert_int_equal(o.ret, vakt_reason_is_drop(reason) ? VAKT_TC_DROP : VAKT_TC_PASS);
	return o;
}

/* ---- the verdict table ---- */

typedef void (*mutate_fn)(uint8_t *buf, size_t *len, const struct pk_spec *s);

struct row {
	const char *what;
	enum dp_prog prog;
	struct pk_spec pkt;
	mutate_fn mut;
	uint32_t ep, reason;
};

#define IN VAKT_DIR_INGRESS
#define EG VAKT_DIR_EGRESS
/* skb->ifindex of BPF_PROG_TEST_RUN without a ctx ifindex: the loopback device */
#define LO 1

/*
 * Cut the frame right after the fixed IP header, leaving the lengths in it
 * claiming more. (BPF_PROG_TEST_RUN itself refuses frames shorter than
 * Ethernet plus a fixed IP header, so that is the shortest cut it takes.)
 */
static void mut_truncate_ip(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)buf;
	*len = pk_l3_off(s) + (strchr(s->src, ':') ? 40 : 20);
}

static void mut_ihl4(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)len;
	buf[pk_l3_off(s)] = 0x44;
}

static void mut_totlen0(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)len;
	buf[pk_l3_off(s) + 2] = 0;
	buf[pk_l3_off(s) + 3] = 0;
}

static void mut_totlen_long(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)len;
	buf[pk_l3_off(s) + 2] = 0x05;
	buf[pk_l3_off(s) + 3] = 0xdc;
}

static void mut_v6_plen0(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)len;
	buf[pk_l3_off(s) + 4] = 0;
	buf[pk_l3_off(s) + 5] = 0;
}

/* Cut the L4 header short, keeping the IP lengths consistent with it. */
static void mut_short_l4(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	size_t l3 = pk_l3_off(s), l4 = pk_l4_off(s), keep = 6;
	uint16_t v;

	*len = l4 + keep;
	if (buf[l3] >> 4 == 4) {
		v = (uint16_t)(l4 - l3 + keep);
		buf[l3 + 2] = (uint8_t)(v >> 8);
		buf[l3 + 3] = (uint8_t)v;
	} else {
		v = (uint16_t)(l4 - l3 - 40 + keep);
		buf[l3 + 4] = (uint8_t)(v >> 8);
		buf[l3 + 5] = (uint8_t)v;
	}
	/* BPF_PROG_TEST_RUN wants at least an Ethernet header; keep the frame >= 14. */
	if (*len < 60) {
		memset(buf + *len, 0, 60 - *len);
		*len = 60;
	}
}

static void mut_tcp_doff3(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)len;
	buf[pk_l4_off(s) + 12] = 3 << 4;
}

static void mut_v6_ext_truncated(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	size_t l3 = pk_l3_off(s);

	/* hop-by-hop claiming 255*8 more bytes than the packet has */
	buf[l3 + 40 + 1] = 255;
	(void)len;
}

static void mut_arp(uint8_t *buf, size_t *len, const struct pk_spec *s)
{
	(void)s;
	buf[12] = 0x08;
	buf[13] = 0x06;
	*len = 60;
}

static const struct pk_spec ICMP6_NS = { .src = "fd00::a", .dst = "fd00::2", .proto = IPPROTO_ICMPV6,
					 .icmp_type = 135 };

static const struct row rows[] = {
	{ "v4 tcp identity allowed", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 tcp remote pod same identity allowed", DP_TO_POD, { .src = "10.1.0.5", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 tcp other identity denied", DP_TO_POD, { .src = "10.0.0.3", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 tcp other port denied", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 40000, .dport = 81, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 udp any peer allowed", DP_TO_POD, { .src = "8.8.4.4", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 tcp ipblock class allowed", DP_TO_POD, { .src = "192.168.7.7", .dst = "10.0.0.2", .sport = 1000, .dport = 443, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 tcp ipblock class wrong port denied", DP_TO_POD, { .src = "192.168.7.7", .dst = "10.0.0.2", .sport = 1000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 world outside ipblock denied", DP_TO_POD, { .src = "172.16.0.1", .dst = "10.0.0.2", .sport = 1000, .dport = 443, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 sctp allowed", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_SCTP, .sport = 7000, .dport = 9000, .sctp_chunk = 1 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 sctp wrong port denied", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_SCTP, .sport = 7000, .dport = 9001, .sctp_chunk = 1 }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 icmp echo by portless rule", DP_TO_POD, { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 7 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 icmp echo without portless rule denied", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 7 }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 unrelated icmp error is a portless flow", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_ICMP, .icmp_type = 3, .icmp_code = 4, .inner = &(struct pk_spec){ .src = "10.0.0.2", .dst = "10.9.9.9", .sport = 80, .dport = 1 } }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 gre portless by any-protocol rule", DP_TO_POD, { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = 47 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v4 not isolated egress", DP_FROM_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_A, VAKT_R_NOT_ISOLATED },
	{ "v4 not isolated ingress", DP_TO_POD, { .src = "10.0.0.3", .dst = "10.0.0.1", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_A, VAKT_R_NOT_ISOLATED },
	{ "v4 isolated egress allowed", DP_FROM_POD, { .src = "10.0.0.3", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_C, VAKT_R_POLICY_ALLOW },
	{ "v4 isolated egress to pod denied", DP_FROM_POD, { .src = "10.0.0.3", .dst = "10.0.0.1", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_C, VAKT_R_POLICY_DENIED },
	{ "v4 node address always allowed", DP_TO_POD, { .src = "10.0.0.254", .dst = "10.0.0.3", .sport = 40000, .dport = 8080, .tcp_flags = PK_TCP_SYN }, NULL, EP_C, VAKT_R_HOST },
	{ "v4 egress to node always allowed", DP_FROM_POD, { .src = "10.0.0.3", .dst = "10.0.0.254", .proto = IPPROTO_UDP, .sport = 40000, .dport = 53 }, NULL, EP_C, VAKT_R_HOST },
	{ "v4 pod to itself", DP_TO_POD, { .src = "10.0.0.3", .dst = "10.0.0.3", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_C, VAKT_R_SELF },
	{ "v4 failed closed endpoint", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.4", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_D, VAKT_R_FAIL_CLOSED },
	{ "v4 failed closed endpoint egress", DP_FROM_POD, { .src = "10.0.0.4", .dst = "10.0.0.1", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_D, VAKT_R_FAIL_CLOSED },
	{ "v4 no local endpoint passes", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.7.7.7", .sport = 40000, .dport = 80 }, NULL, 0, VAKT_R_NO_ENDPOINT },
	{ "v4 no local endpoint passes egress", DP_FROM_POD, { .src = "10.7.7.7", .dst = "10.0.0.2", .sport = 40000, .dport = 80 }, NULL, 0, VAKT_R_NO_ENDPOINT },
	{ "v4 vlan tagged", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN, .vlan = 1 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "arp always passes", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2" }, mut_arp, 0, VAKT_R_CONTROL },
	{ "v6 neighbour solicitation passes", DP_TO_POD, ICMP6_NS, NULL, 0, VAKT_R_CONTROL },
	{ "v6 link-local neighbour advertisement passes", DP_FROM_POD, { .src = "fe80::1", .dst = "fe80::2", .proto = IPPROTO_ICMPV6, .icmp_type = 136 }, NULL, 0, VAKT_R_CONTROL },
	{ "v6 router advertisement passes egress", DP_FROM_POD, { .src = "fd00::3", .dst = "ff02::1", .proto = IPPROTO_ICMPV6, .icmp_type = 134 }, NULL, 0, VAKT_R_CONTROL },
	{ "v6 tcp identity allowed", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v6 tcp through extension headers", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN, .v6_ext = 1 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v6 tcp other identity denied", DP_TO_POD, { .src = "fd00::3", .dst = "fd00::2", .sport = 40000, .dport = 80, .tcp_flags = PK_TCP_SYN, .v6_ext = 1 }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v6 udp any peer allowed", DP_TO_POD, { .src = "2001:db8::1", .dst = "fd00::2", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v6 with an ipv4-mapped source is refused", DP_TO_POD, { .src = "::ffff:c0a8:101", .dst = "fd00::2", .sport = 1, .dport = 443, .tcp_flags = PK_TCP_SYN }, NULL, 0, VAKT_R_MALFORMED },
	{ "v6 sctp allowed", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .proto = IPPROTO_SCTP, .sport = 7000, .dport = 9000, .sctp_chunk = 1 }, NULL, EP_B, VAKT_R_POLICY_ALLOW },
	{ "v6 icmp echo denied", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .proto = IPPROTO_ICMPV6, .icmp_type = 128, .icmp_id = 1 }, NULL, EP_B, VAKT_R_POLICY_DENIED },
	{ "v4 later fragment without first", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .frag = PK_FRAG_LATER, .frag_id = 99 }, NULL, EP_B, VAKT_R_FRAG_UNKNOWN },
	{ "v6 later fragment without first", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .proto = IPPROTO_UDP, .frag = PK_FRAG_LATER, .frag_id = 99 }, NULL, EP_B, VAKT_R_FRAG_UNKNOWN },
	{ "v4 truncated ip header", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_truncate_ip, 0, VAKT_R_MALFORMED },
	{ "v6 truncated ip header", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .dport = 80 }, mut_truncate_ip, 0, VAKT_R_MALFORMED },
	{ "v4 bad ihl", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_ihl4, 0, VAKT_R_MALFORMED },
	{ "v4 zero total length", DP_FROM_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_totlen0, 0, VAKT_R_MALFORMED },
	{ "v4 total length beyond packet", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_totlen_long, 0, VAKT_R_MALFORMED },
	{ "v6 zero payload length", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .dport = 80 }, mut_v6_plen0, 0, VAKT_R_MALFORMED },
	{ "v6 extension header beyond packet", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .dport = 80, .v6_ext = 1 }, mut_v6_ext_truncated, 0, VAKT_R_MALFORMED },
	{ "v4 truncated tcp", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_short_l4, EP_B, VAKT_R_MALFORMED },
	{ "v4 truncated udp egress", DP_FROM_POD, { .src = "10.0.0.3", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .dport = 53 }, mut_short_l4, EP_C, VAKT_R_MALFORMED },
	{ "v4 truncated sctp", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_SCTP, .dport = 9000 }, mut_short_l4, EP_B, VAKT_R_MALFORMED },
	{ "v4 truncated icmp", DP_TO_POD, { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_ICMP, .icmp_type = 8 }, mut_short_l4, EP_B, VAKT_R_MALFORMED },
	{ "v6 truncated tcp", DP_TO_POD, { .src = "fd00::1", .dst = "fd00::2", .dport = 80 }, mut_short_l4, EP_B, VAKT_R_MALFORMED },
	{ "v4 tcp data offset below 5", DP_TO_POD, { .src = "10.0.0.1", .dst = "10.0.0.2", .dport = 80 }, mut_tcp_doff3, EP_B, VAKT_R_MALFORMED },
};

static void test_verdict_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		uint32_t dir = r->prog == DP_TO_POD ? IN : EG;
		uint8_t buf[PK_MAX];
		size_t len;
		uint64_t before = packets(r->ep, dir, r->reason);
		struct vakt_counter c0, c1;
		int ret;

		assert_int_equal(dp_clear_map(dp, "ct"), 0);
		assert_int_equal(dp_clear_map(dp, "frags"), 0);
		len = pk_build(&r->pkt, buf, sizeof(buf));
		assert_true(len > 0);
		if (r->mut)
			r->mut(buf, &len, &r->pkt);
		assert_int_equal(dp_counter(dp, r->ep, dir, r->reason, &c0), 0);
		assert_int_equal(dp_run(dp, r->prog, buf, len, 0, NULL, &ret), 0);
		assert_int_equal(dp_counter(dp, r->ep, dir, r->reason, &c1), 0);
		if (c1.packets != before + 1 || c1.bytes != c0.bytes + len)
			fail_msg("row '%s': counter ep=%u dir=%u reason=%u packets %llu->%llu bytes +%llu (len %zu)",
				 r->what, r->ep, dir, r->reason, (unsigned long long)before,
				 (unsigned long long)c1.packets,
				 (unsigned long long)(c1.bytes - c0.bytes), len);
		if (ret != (vakt_reason_is_drop(r->reason) ? VAKT_TC_DROP : VAKT_TC_PASS))
			fail_msg("row '%s': returned %d", r->what, ret);
	}
}

/* ---- conntrack ---- */

static struct pk_spec tcp(const char *src, const char *dst, uint16_t sport, uint16_t dport,
			  uint8_t flags)
{
	return (struct pk_spec){ .src = src, .dst = dst, .sport = sport, .dport = dport,
				 .tcp_flags = flags };
}

static void test_established_flow_and_its_replies_pass(void **state)
{
	struct pk_spec syn = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec synack = tcp("10.0.0.2", "10.0.0.3", 80, 40000, PK_TCP_SYN | PK_TCP_ACK);
	struct pk_spec ack = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec rogue = tcp("10.0.0.2", "10.0.0.3", 80, 40001, PK_TCP_SYN | PK_TCP_ACK);

	(void)state;
	/* C's egress allows B:80; C's ingress allows nothing: the reply still passes. */
	expect(DP_FROM_POD, &syn, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &synack, 0, EP_C, IN, VAKT_R_REPLY);
	expect(DP_FROM_POD, &ack, 0, EP_C, EG, VAKT_R_ESTABLISHED);
	/* another port pair is no reply of anything */
	expect(DP_TO_POD, &rogue, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	assert_int_equal(dp_map_count(dp, "ct"), 2);
}

static void test_sender_egress_never_skips_receiver_ingress(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.3", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.3", 40000, 80, PK_TCP_ACK);
	int i;

	(void)state;
	/* A (not isolated) -> C (ingress denies all), both on this node. */
	expect(DP_FROM_POD, &syn, 0, EP_A, EG, VAKT_R_NOT_ISOLATED);
	expect(DP_TO_POD, &syn, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	for (i = 0; i < 3; i++) {
		expect(DP_FROM_POD, &ack, 0, EP_A, EG, VAKT_R_ESTABLISHED);
		expect(DP_TO_POD, &ack, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	}
}

/* The conntrack key of a veth point: scoped by the interface the packet crossed. */
static struct vakt_ct_key ct_key(const char *s, const char *d, uint16_t sp, uint16_t dpt,
				 uint8_t proto, uint32_t ifindex, uint8_t dir)
{
	struct vakt_ct_key k = { .saddr = pk_addr(s), .daddr = pk_addr(d), .sport = htons(sp),
				 .dport = htons(dpt), .proto = proto, .scope = ifindex, .dir = dir };
	return k;
}

static int ct_get(const struct vakt_ct_key *k, struct vakt_ct_val *v)
{
	return bpf_map_lookup_elem(dp_map_fd(dp, "ct"), k, v);
}

static void test_tcp_rst_closes_both_entries(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec rst = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_RST);
	struct vakt_ct_key fk = ct_key("10.0.0.1", "10.0.0.2", 40000, 80, IPPROTO_TCP, LO, IN);
	struct vakt_ct_key rk = ct_key("10.0.0.2", "10.0.0.1", 80, 40000, IPPROTO_TCP, LO, EG);
	struct vakt_ct_val v;

	(void)state;
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_NEW);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_EST);
	expect(DP_FROM_POD, &rst, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
	assert_int_equal(ct_get(&rk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
	/* a new SYN on the closed tuple is a new connection: policy decides again */
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_NEW);
}

/*
 * A connection on the tuple of one that closed seconds ago (the ephemeral
 * port range cycles that fast under churn) reuses the closed flow's two
 * entries, rewritten in place (bpf/ct.h ct_put()): nothing of the old flow
 * may survive in them. The old reply entry saw a FIN and carries a vouch;
 * were either kept, the new flow's first FIN would close it, or its
 * sender would count packets for a receiver that never checked them.
 */
static void test_new_connection_on_a_closed_tuple_starts_clean(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec fin1 = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_FIN | PK_TCP_ACK);
	struct pk_spec fin2 = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_FIN | PK_TCP_ACK);
	struct pk_spec rst = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_RST);
	struct vakt_ct_key fk = ct_key("10.0.0.1", "10.0.0.2", 40000, 80, IPPROTO_TCP, LO, IN);
	struct vakt_ct_key rk = ct_key("10.0.0.2", "10.0.0.1", 80, 40000, IPPROTO_TCP, LO, EG);
	struct vakt_ct_val v;
	int round;

	(void)state;
	for (round = 0; round < 2; round++) {
		expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
		expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
		expect(DP_FROM_POD, &fin2, 0, EP_B, EG, VAKT_R_REPLY);
		assert_int_equal(ct_get(&rk, &v), 0);
		v.vouch = EP_A;
		v.vouch_gen = 1;
		assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ct"), &rk, &v, BPF_EXIST), 0);
		expect(DP_FROM_POD, &rst, 0, EP_B, EG, VAKT_R_REPLY);
		assert_int_equal(ct_get(&fk, &v), 0);
		assert_int_equal(v.state, VAKT_CT_CLOSING);
		if (round == 1) /* the reply entry was evicted: it is created anew */
			assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "ct"), &rk), 0);

		expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
		assert_int_equal(dp_map_count(dp, "ct"), 2);
		assert_int_equal(ct_get(&fk, &v), 0);
		assert_int_equal(v.state, VAKT_CT_NEW);
		assert_int_equal(v.flags, 0);
		assert_int_equal(v.ep_id, EP_B);
		assert_int_equal(ct_get(&rk, &v), 0);
		assert_int_equal(v.state, VAKT_CT_NEW);
		assert_int_equal(v.flags, VAKT_CTF_REPLY);
		assert_int_equal(v.vouch, 0);
		assert_int_equal(v.ep_id, EP_B);
		/* one FIN is a half close, not the close of both sides */
		expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
		expect(DP_TO_POD, &fin1, 0, EP_B, IN, VAKT_R_ESTABLISHED);
		assert_int_equal(ct_get(&fk, &v), 0);
		assert_int_not_equal(v.state, VAKT_CT_CLOSING);
		expect(DP_FROM_POD, &rst, 0, EP_B, EG, VAKT_R_REPLY);
	}
}

static void test_tcp_fin_from_both_sides_closes(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec fin1 = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_FIN | PK_TCP_ACK);
	struct pk_spec data2 = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_ACK);
	struct pk_spec fin2 = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_FIN | PK_TCP_ACK);
	struct vakt_ct_key fk = ct_key("10.0.0.1", "10.0.0.2", 40000, 80, IPPROTO_TCP, LO, IN);
	struct vakt_ct_key rk = ct_key("10.0.0.2", "10.0.0.1", 80, 40000, IPPROTO_TCP, LO, EG);
	struct vakt_ct_val v;

	(void)state;
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &fin1, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_true(v.flags & VAKT_CTF_FIN);
	assert_int_not_equal(v.state, VAKT_CT_CLOSING);
	/* half-closed: the other side keeps sending */
	expect(DP_FROM_POD, &data2, 0, EP_B, EG, VAKT_R_REPLY);
	expect(DP_FROM_POD, &fin2, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
	assert_int_equal(ct_get(&rk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
}

static void age(const struct vakt_ct_key *k, uint64_t seconds)
{
	struct vakt_ct_val v;

	assert_int_equal(ct_get(k, &v), 0);
	v.last_ns -= seconds * 1000000000ULL;
	v.last_jiffies = 0; /* the next packet reads the clock (ct_live()) */
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ct"), k, &v, BPF_EXIST), 0);
}

static void test_entries_expire_per_state(void **state)
{
	struct pk_spec syn = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec synack = tcp("10.0.0.2", "10.0.0.3", 80, 40000, PK_TCP_SYN | PK_TCP_ACK);
	struct pk_spec ack = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec udp = { .src = "10.0.0.3", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
			       .sport = 5000, .dport = 53 };
	struct pk_spec udprep = { .src = "10.0.0.2", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				  .sport = 53, .dport = 5000 };
	struct vakt_ct_key rk = ct_key("10.0.0.2", "10.0.0.3", 80, 40000, IPPROTO_TCP, LO, IN);
	struct vakt_ct_key fk = ct_key("10.0.0.3", "10.0.0.2", 40000, 80, IPPROTO_TCP, LO, EG);
	struct vakt_ct_key urk = ct_key("10.0.0.2", "10.0.0.3", 53, 5000, IPPROTO_UDP, LO, IN);

	(void)state;
	expect(DP_FROM_POD, &syn, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	/* an unanswered SYN's entries live 60 s */
	age(&rk, VAKT_CT_TIMEOUT_TCP_NEW - 5);
	expect(DP_TO_POD, &synack, 0, EP_C, IN, VAKT_R_REPLY);
	assert_int_equal(dp_clear_map(dp, "ct"), 0);
	expect(DP_FROM_POD, &syn, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	age(&rk, VAKT_CT_TIMEOUT_TCP_NEW + 1);
	age(&fk, VAKT_CT_TIMEOUT_TCP_NEW + 1);
	expect(DP_TO_POD, &synack, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	/* established TCP survives an hour of silence */
	expect(DP_FROM_POD, &syn, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &synack, 0, EP_C, IN, VAKT_R_REPLY);
	expect(DP_FROM_POD, &ack, 0, EP_C, EG, VAKT_R_ESTABLISHED);
	age(&fk, 3600);
	expect(DP_FROM_POD, &ack, 0, EP_C, EG, VAKT_R_ESTABLISHED);
	/* UDP: 60 s */
	expect(DP_FROM_POD, &udp, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &udprep, 0, EP_C, IN, VAKT_R_REPLY);
	age(&urk, VAKT_CT_TIMEOUT_UDP + 1);
	expect(DP_TO_POD, &udprep, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
}

static void test_sctp_init_abort(void **state)
{
	struct pk_spec init = { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_SCTP,
				.sport = 7000, .dport = 9000, .sctp_chunk = 1 };
	struct pk_spec initack = { .src = "10.0.0.2", .dst = "10.0.0.1", .proto = IPPROTO_SCTP,
				   .sport = 9000, .dport = 7000, .sctp_chunk = 2 };
	struct pk_spec data = init, abort_ = initack;
	struct vakt_ct_key fk = ct_key("10.0.0.1", "10.0.0.2", 7000, 9000, IPPROTO_SCTP, LO, IN);
	struct vakt_ct_val v;

	(void)state;
	data.sctp_chunk = 0;
	abort_.sctp_chunk = 6;
	expect(DP_TO_POD, &init, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_NEW);
	expect(DP_FROM_POD, &initack, 0, EP_B, EG, VAKT_R_REPLY);
	expect(DP_TO_POD, &data, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_EST);
	expect(DP_FROM_POD, &abort_, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(ct_get(&fk, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
}

static void test_icmp_echo_reply_passes(void **state)
{
	struct pk_spec req = { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_ICMP,
			       .icmp_type = 8, .icmp_id = 4242 };
	struct pk_spec rep = { .src = "10.0.0.2", .dst = "10.0.0.5", .proto = IPPROTO_ICMP,
			       .icmp_type = 0, .icmp_id = 4242 };
	struct pk_spec rev_req = { .src = "10.0.0.2", .dst = "10.0.0.5", .proto = IPPROTO_ICMP,
				   .icmp_type = 8, .icmp_id = 4242 };

	(void)state;
	expect(DP_TO_POD, &req, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_FROM_POD, &rep, 0, EP_B, EG, VAKT_R_REPLY);
	expect(DP_TO_POD, &req, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	/* an echo request the other way is no reply */
	expect(DP_FROM_POD, &rev_req, 0, EP_B, EG, VAKT_R_NOT_ISOLATED);
}

static void test_icmp_errors_of_allowed_flows_are_related(void **state)
{
	struct pk_spec syn = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec inner = tcp("10.0.0.3", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec inner_other = tcp("10.0.0.3", "10.0.0.2", 40000, 81, PK_TCP_ACK);
	struct pk_spec err = { .src = "9.9.9.9", .dst = "10.0.0.3", .proto = IPPROTO_ICMP,
			       .icmp_type = 3, .icmp_code = 4, .inner = &inner };
	struct pk_spec err2 = err;
	struct pk_spec syn6 = tcp("fd00::3", "fd00::2", 40000, 80, PK_TCP_SYN);
	struct pk_spec inner6 = tcp("fd00::3", "fd00::2", 40000, 80, PK_TCP_ACK);
	struct pk_spec ptb = { .src = "2001:db8::9", .dst = "fd00::3", .proto = IPPROTO_ICMPV6,
			       .icmp_type = 2, .inner = &inner6 };
	struct pk_spec tx = { .src = "2001:db8::9", .dst = "fd00::3", .proto = IPPROTO_ICMPV6,
			      .icmp_type = 3, .inner = &inner6 };

	(void)state;
	err2.inner = &inner_other;
	expect(DP_FROM_POD, &syn, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	/* C's ingress denies everything, but the error is about C's own flow */
	expect(DP_TO_POD, &err, 0, EP_C, IN, VAKT_R_RELATED);
	expect(DP_TO_POD, &err2, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	expect(DP_FROM_POD, &syn6, 0, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &ptb, 0, EP_C, IN, VAKT_R_RELATED);
	expect(DP_TO_POD, &tx, 0, EP_C, IN, VAKT_R_RELATED);
}

static void test_fragments_follow_the_first(void **state)
{
	struct pk_spec first = { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
				 .sport = 6000, .dport = 5000, .frag = PK_FRAG_FIRST, .frag_id = 77,
				 .payload = 100 };
	struct pk_spec later = first, other = first;
	struct pk_spec dfirst = first, dlater;
	struct pk_spec first6 = { .src = "fd00::1", .dst = "fd00::2", .proto = IPPROTO_UDP,
				  .sport = 6000, .dport = 5000, .frag = PK_FRAG_FIRST,
				  .frag_id = 0x12345678, .v6_ext = 1 };
	struct pk_spec later6 = first6;

	(void)state;
	later.frag = PK_FRAG_LATER;
	other.frag = PK_FRAG_LATER;
	other.frag_id = 78;
	later6.frag = PK_FRAG_LATER;
	expect(DP_TO_POD, &first, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &later, 0, EP_B, IN, VAKT_R_FRAGMENT);
	expect(DP_TO_POD, &later, 0, EP_B, IN, VAKT_R_FRAGMENT);
	expect(DP_TO_POD, &other, 0, EP_B, IN, VAKT_R_FRAG_UNKNOWN);
	/* a denied first fragment leaves its followers unknown */
	dfirst.dport = 5001;
	dfirst.frag_id = 80;
	dlater = dfirst;
	dlater.frag = PK_FRAG_LATER;
	expect(DP_TO_POD, &dfirst, 0, EP_B, IN, VAKT_R_POLICY_DENIED);
	expect(DP_TO_POD, &dlater, 0, EP_B, IN, VAKT_R_FRAG_UNKNOWN);
	/* the record is per enforcement point: another endpoint's later fragment is unknown */
	expect(DP_FROM_POD, &later, 0, EP_A, EG, VAKT_R_FRAG_UNKNOWN);
	expect(DP_TO_POD, &first6, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &later6, 0, EP_B, IN, VAKT_R_FRAGMENT);
	/* an established flow's first fragment is recorded too */
	first.frag_id = 79;
	later.frag_id = 79;
	expect(DP_TO_POD, &first, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	expect(DP_TO_POD, &later, 0, EP_B, IN, VAKT_R_FRAGMENT);
}

static void test_revocation_by_generation(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec rep = tcp("10.0.0.2", "10.0.0.1", 80, 40000, PK_TCP_ACK);
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = POL_B_IN, .peer = 256,
				     .proto = IPPROTO_TCP, .port = htons(80) };

	(void)state;
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	/* a generation bump that revokes nothing keeps the flow */
	assert_int_equal(dp_set_gen(dp, 2), 0);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	expect(DP_FROM_POD, &rep, 0, EP_B, EG, VAKT_R_REPLY);
	/* the policy entry goes, the generation moves: the flow is cut, both ways */
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED); /* gen not bumped yet */
	assert_int_equal(dp_set_gen(dp, 3), 0);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_REVOKED);
	assert_int_equal(dp_map_count(dp, "ct"), 0);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_POLICY_DENIED);
	/* a reply entry is re-checked against the flow's own direction */
	assert_int_equal(dp_put_policy(dp, POL_B_IN, 256, IPPROTO_TCP, 80, VAKT_PLEN_FULL, 101), 0);
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
	assert_int_equal(dp_set_gen(dp, 4), 0);
	expect(DP_FROM_POD, &rep, 0, EP_B, EG, VAKT_R_REVOKED);
	assert_int_equal(dp_map_count(dp, "ct"), 0);
}

static void test_counters_count_packets_and_bytes(void **state)
{
	struct pk_spec ok = { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
			      .sport = 1, .dport = 5000, .payload = 200 };
	struct pk_spec bad = ok;
	struct vakt_counter c;
	uint8_t buf[PK_MAX];
	size_t len = pk_build(&ok, buf, sizeof(buf));
	int i;

	(void)state;
	bad.dport = 5001;
	for (i = 0; i < 10; i++) {
		run(DP_TO_POD, &ok, 0);
		run(DP_TO_POD, &bad, 0);
	}
	assert_int_equal(dp_counter(dp, EP_B, IN, VAKT_R_POLICY_ALLOW, &c), 0);
	assert_int_equal(c.packets, 1);
	assert_int_equal(c.bytes, len);
	assert_int_equal(dp_counter(dp, EP_B, IN, VAKT_R_ESTABLISHED, &c), 0);
	assert_int_equal(c.packets, 9);
	assert_int_equal(c.bytes, 9 * len);
	assert_int_equal(dp_counter(dp, EP_B, IN, VAKT_R_POLICY_DENIED, &c), 0);
	assert_int_equal(c.packets, 10);
	assert_int_equal(c.bytes, 10 * len);
	/* nothing counted under the other direction or endpoint */
	assert_int_equal(dp_counter(dp, EP_B, EG, VAKT_R_POLICY_DENIED, &c), 0);
	assert_int_equal(c.packets, 0);
	assert_int_equal(dp_counter(dp, EP_A, IN, VAKT_R_POLICY_DENIED, &c), 0);
	assert_int_equal(c.packets, 0);
}

/* ---- Services and NAT marks ---- */

static uint32_t mk(uint32_t field)
{
	return field << MARK_SHIFT;
}

static void test_egress_to_unknown_address_is_deferred_with_the_mark(void **state)
{
	/* C asks the DNS ClusterIP: nothing decided at C's veth, the mark carries C. */
	struct pk_spec q = { .src = "10.0.0.3", .dst = "10.96.0.10", .proto = IPPROTO_UDP,
			     .sport = 33333, .dport = 53 };
	struct pk_spec q_pod = q;
	uint64_t before = packets(EP_C, EG, VAKT_R_POLICY_DENIED);
	struct out o;
	int i;

	(void)state;
	q_pod.dst = "10.0.0.1";
	for (i = 0; i < 2; i++) {
		o = run(DP_FROM_POD, &q, 0x4000);
		assert_int_equal(o.ret, VAKT_TC_PASS);
		assert_int_equal(o.mark, 0x4000 | mk(VAKT_MARK_DEFER | EP_C));
	}
	assert_int_equal(packets(EP_C, EG, VAKT_R_POLICY_DENIED), before);
	/* a known pod is decided at once and our bits are cleared */
	o = expect(DP_FROM_POD, &q_pod, mk(0xfff), EP_C, EG, VAKT_R_POLICY_DENIED);
	assert_int_equal(o.mark, 0);
	/* an unisolated pod never defers */
	q.src = "10.0.0.1";
	o = expect(DP_FROM_POD, &q, 0, EP_A, EG, VAKT_R_NOT_ISOLATED);
	assert_int_equal(o.mark, 0);
}

static void test_deferred_egress_is_decided_for_the_backend(void **state)
{
	/* after DNAT 10.96.0.10:53 -> backend: B is allowed for C, A is not */
	struct pk_spec to_b = { .src = "10.0.0.3", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
				.sport = 33333, .dport = 53 };
	struct pk_spec to_a = to_b;
	struct pk_spec b_reply = { .src = "10.0.0.2", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				   .sport = 53, .dport = 33333 };
	/* the client sees the reply from the ClusterIP after the reverse NAT */
	struct pk_spec vip_reply = { .src = "10.96.0.10", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				     .sport = 53, .dport = 33333 };
	uint32_t m = mk(VAKT_MARK_DEFER | EP_C);
	struct out o;
	struct vakt_addr a = pk_addr("10.0.0.3");
	uint32_t ep = EP_C;

	(void)state;
	to_a.dst = "10.0.0.1";
	/* the slot from_pod would have written */
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &ep, &a, BPF_ANY), 0);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_ESTABLISHED);
	assert_int_equal(packets(EP_B, IN, VAKT_R_POLICY_ALLOW), 1); /* B's ingress: any peer UDP 53 */
	expect(DP_TO_POD, &to_a, m, EP_C, EG, VAKT_R_POLICY_DENIED);
	assert_int_equal(packets(EP_A, IN, VAKT_R_NOT_ISOLATED), 0); /* dropped before A's check */
	/* B's reply gets the REPLY mark for C, so C lets the ClusterIP-sourced reply in */
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(o.mark, mk(VAKT_MARK_REPLY | EP_C));
	expect(DP_TO_POD, &vip_reply, o.mark, EP_C, IN, VAKT_R_REPLY);
	/* without the mark (or with another pod's) C's ingress denies it */
	expect(DP_TO_POD, &vip_reply, 0, EP_C, IN, VAKT_R_POLICY_DENIED);
	expect(DP_TO_POD, &vip_reply, mk(VAKT_MARK_REPLY | EP_A), EP_C, IN, VAKT_R_POLICY_DENIED);
}

/*
 * A deferred egress check rides on the packet to whatever the DNAT chose,
 * even an address on a veth that has no endpoint record (a pod vaktd does
 * not know yet): the sender's egress still decides.
 */
static void test_deferred_egress_is_decided_without_a_receiving_endpoint(void **state)
{
	struct pk_spec unknown = { .src = "10.0.0.3", .dst = "10.0.0.77", .proto = IPPROTO_UDP,
				   .sport = 33334, .dport = 53 };
	struct pk_spec world_dns = unknown;
	uint32_t m = mk(VAKT_MARK_DEFER | EP_C);
	struct vakt_addr a = pk_addr("10.0.0.3");
	uint32_t ep = EP_C;
	uint64_t unowned = packets(0, IN, VAKT_R_NO_ENDPOINT);

	(void)state;
	world_dns.dst = "8.8.8.8"; /* C's egress allows 8.8.8.0/24 on UDP 53 */
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &ep, &a, BPF_ANY), 0);
	expect(DP_TO_POD, &unknown, m, EP_C, EG, VAKT_R_POLICY_DENIED);
	assert_int_equal(packets(0, IN, VAKT_R_NO_ENDPOINT), unowned);
	expect(DP_TO_POD, &world_dns, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	assert_int_equal(packets(0, IN, VAKT_R_NO_ENDPOINT), unowned + 1);
}

/*
 * A flow through a Service whose client loses its egress to the backend:
 * the backend may send on alone (a UDP stream), so its vakt_from_pod stops
 * naming the client in the REPLY mark, and the client's own ingress decides
 * the replies. A move of the generation that revokes nothing keeps the mark;
 * once allowed again, the client's next request names it again.
 */
static void test_service_replies_stop_naming_a_client_whose_egress_was_revoked(void **state)
{
	struct pk_spec to_b = { .src = "10.0.0.3", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
				.sport = 33336, .dport = 53 };
	struct pk_spec b_reply = { .src = "10.0.0.2", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				   .sport = 53, .dport = 33336 };
	struct pk_spec vip_reply = { .src = "10.96.0.10", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				     .sport = 53, .dport = 33336 };
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = POL_C_EG, .peer = 257,
				     .proto = IPPROTO_UDP, .port = htons(53) };
	uint32_t m = mk(VAKT_MARK_DEFER | EP_C);
	struct vakt_addr c = pk_addr("10.0.0.3");
	uint32_t ep = EP_C;
	struct out o;

	(void)state;
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &ep, &c, BPF_ANY), 0);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(o.mark, mk(VAKT_MARK_REPLY | EP_C));
	/* the generation moves, nothing revoked: still the client's replies */
	assert_int_equal(dp_set_gen(dp, 2), 0);
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(o.mark, mk(VAKT_MARK_REPLY | EP_C));
	/* C may no longer send to B on UDP 53; B's ingress still admits the flow */
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
	assert_int_equal(dp_set_gen(dp, 3), 0);
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(o.mark, 0);
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	/* a plain flow of B's now: the mark only asks C's point for a vouch */
	assert_int_equal(o.mark, mk(EP_B));
	/* so C's ingress (deny all) decides them */
	expect(DP_TO_POD, &vip_reply, o.mark, EP_C, IN, VAKT_R_POLICY_DENIED);
	/* C's request is refused now */
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_REVOKED);
	/* allowed again: the next request passes, and the replies name C again */
	assert_int_equal(dp_put_policy(dp, POL_C_EG, 257, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 202), 0);
	assert_int_equal(dp_set_gen(dp, 4), 0);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	o = expect(DP_FROM_POD, &b_reply, 0, EP_B, EG, VAKT_R_REPLY);
	assert_int_equal(o.mark, mk(VAKT_MARK_REPLY | EP_C));
	expect(DP_TO_POD, &vip_reply, o.mark, EP_C, IN, VAKT_R_REPLY);
}

/* A pod failed closed takes nothing, not even replies that carry its name. */
static void test_failed_closed_pod_takes_no_replies_on_the_mark(void **state)
{
	struct pk_spec vip_reply = { .src = "10.96.0.10", .dst = "10.0.0.4", .proto = IPPROTO_UDP,
				     .sport = 53, .dport = 33337 };

	(void)state;
	expect(DP_TO_POD, &vip_reply, mk(VAKT_MARK_REPLY | EP_D), EP_D, IN, VAKT_R_FAIL_CLOSED);
}

static void test_node_egress_checks_masqueraded_traffic(void **state)
{
	/* after MASQUERADE the source is the node; the mark still names C */
	struct pk_spec ok = { .src = "192.0.2.1", .dst = "8.8.8.8", .proto = IPPROTO_UDP,
			      .sport = 40001, .dport = 53 };
	struct pk_spec no = ok;
	struct pk_spec rep = { .src = "8.8.8.8", .dst = "192.0.2.1", .proto = IPPROTO_UDP,
			       .sport = 53, .dport = 40001 };
	struct pk_spec demasq = { .src = "8.8.8.8", .dst = "10.0.0.3", .proto = IPPROTO_UDP,
				  .sport = 53, .dport = 33333 };
	struct pk_spec unrelated = rep;
	uint32_t m = mk(VAKT_MARK_DEFER | EP_C);
	struct vakt_addr a = pk_addr("10.0.0.3");
	uint32_t ep = EP_C;
	struct out o;

	(void)state;
	no.dst = "1.1.1.1";
	unrelated.sport = 54;
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &ep, &a, BPF_ANY), 0);
	/* unmarked traffic is not looked at */
	o = run(DP_NODE_EGRESS, &no, 0);
	assert_int_equal(o.ret, VAKT_TC_PASS);
	expect(DP_NODE_EGRESS, &ok, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	expect(DP_NODE_EGRESS, &no, m, EP_C, EG, VAKT_R_POLICY_DENIED);
	/* the reply on the uplink is marked for C, then let in after de-masquerade */
	o = run(DP_NODE_INGRESS, &rep, 0);
	assert_int_equal(o.ret, VAKT_TC_PASS);
	assert_int_equal(o.mark, mk(VAKT_MARK_REPLY | EP_C));
	expect(DP_TO_POD, &demasq, o.mark, EP_C, IN, VAKT_R_REPLY);
	o = run(DP_NODE_INGRESS, &unrelated, mk(VAKT_MARK_REPLY | EP_C));
	assert_int_equal(o.mark, 0);
	/* revocation reaches the node entries too */
	assert_int_equal(dp_clear_map(dp, "policy"), 0);
	assert_int_equal(dp_set_gen(dp, 9), 0);
	o = run(DP_NODE_INGRESS, &rep, 0);
	assert_int_equal(o.mark, 0);
	expect(DP_NODE_EGRESS, &ok, m, EP_C, EG, VAKT_R_POLICY_DENIED);
}

static void test_custom_mark_mask(void **state)
{
	struct dp_cfg cfg = { .no_events = 1, .mark_mask = 0x00fff000 };
	struct vakt_bpf *s;
	struct pk_spec q = { .src = "10.0.0.3", .dst = "10.96.0.10", .proto = IPPROTO_UDP,
			     .sport = 33333, .dport = 53 };
	uint8_t buf[PK_MAX];
	size_t len = pk_build(&q, buf, sizeof(buf));
	uint32_t mark;
	int ret;

	(void)state;
	assert_int_equal(dp_open(&s, &cfg), 0);
	setup_cluster(s);
	assert_int_equal(dp_run(s, DP_FROM_POD, buf, len, 0xff000fff, &mark, &ret), 0);
	assert_int_equal(ret, VAKT_TC_PASS);
	assert_int_equal(mark, 0xff000fff | ((VAKT_MARK_DEFER | EP_C) << 12));
	dp_close(s);
	/* masks that are not 12 contiguous bits are refused */
	cfg.mark_mask = 0x0ff0f000;
	assert_int_not_equal(dp_open(&s, &cfg), 0);
}

/* ---- drop events ---- */

static void test_drop_events_are_rate_limited(void **state)
{
	struct dp_cfg cfg = { .event_rate = 5 };
	struct pk_spec bad = tcp("10.0.0.1", "10.0.0.2", 40000, 81, PK_TCP_SYN);
	struct vakt_drop_event ev[64];
	struct vakt_bpf *s;
	uint8_t buf[PK_MAX];
	size_t len = pk_build(&bad, buf, sizeof(buf));
	struct vakt_addr sa = pk_addr("10.0.0.1"), da = pk_addr("10.0.0.2");
	int i, n, ret;

	(void)state;
	assert_int_equal(dp_open(&s, &cfg), 0);
	setup_cluster(s);
	for (i = 0; i < 40; i++) {
		assert_int_equal(dp_run(s, DP_TO_POD, buf, len, 0, NULL, &ret), 0);
		assert_int_equal(ret, VAKT_TC_DROP);
	}
	n = dp_read_events(s, ev, 64);
	/* the burst is one second's worth (5); the 40 packets take well under a second */
	assert_true(n >= 5 && n <= 7);
	assert_memory_equal(&ev[0].saddr, &sa, sizeof(sa));
	assert_memory_equal(&ev[0].daddr, &da, sizeof(da));
	assert_int_equal(ntohs(ev[0].sport), 40000);
	assert_int_equal(ntohs(ev[0].dport), 81);
	assert_int_equal(ev[0].proto, IPPROTO_TCP);
	assert_int_equal(ev[0].dir, IN);
	assert_int_equal(ev[0].reason, VAKT_R_POLICY_DENIED);
	assert_int_equal(ev[0].ep_id, EP_B);
	/* allowed traffic produces no event */
	bad.dport = 80;
	len = pk_build(&bad, buf, sizeof(buf));
	sleep(1);
	assert_int_equal(dp_run(s, DP_TO_POD, buf, len, 0, NULL, &ret), 0);
	assert_int_equal(ret, VAKT_TC_PASS);
	assert_int_equal(dp_read_events(s, ev, 64), 0);
	dp_close(s);
}

#define T(f) cmocka_unit_test_setup(f, test_setup)

/* ---- anti-spoofing: a local pod's address is only its own on its veth ---- */

static void bind_addr(const char *addr, uint32_t ifindex)
{
	struct vakt_addr a = pk_addr(addr);

	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_ifindex"), &a, &ifindex, BPF_ANY), 0);
}

/*
 * Runs prog as if on interface ifindex (its ingress for vakt_from_pod, its
 * egress for vakt_to_pod) with skb->mark mark_in; *mark_out (may be NULL)
 * gets the mark on exit. Returns the program's return value.
 */
static int run_on(enum dp_prog prog, const struct pk_spec *s, int ifindex, uint32_t mark_in,
		  uint32_t *mark_out)
{
	uint8_t buf[PK_MAX];
	size_t len = pk_build(s, buf, sizeof(buf));
	int ret;

	assert_true(len > 0);
	assert_int_equal(dp_run_at(dp, prog, ifindex, buf, len, mark_in, mark_out, &ret), 0);
	return ret;
}

/* Runs vakt_from_pod as if the frame entered through interface ifindex. */
static int run_from_ifindex(const struct pk_spec *s, int ifindex)
{
	return run_on(DP_FROM_POD, s, ifindex, 0, NULL);
}

struct spoof_row {
	const char *what;
	struct pk_spec pkt;
	const char *bound; /* address bound to pod A's veth, NULL: none */
	int from_a;        /* the frame enters through pod A's veth (else lo) */
	uint32_t ep, reason;
};

static void test_spoofed_sources_of_bound_pods_are_dropped(void **state)
{
	static const struct spoof_row spoof_rows[] = {
		{ "A's address from A's veth passes", { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 4000, .dport = 80, .tcp_flags = PK_TCP_SYN }, "10.0.0.1", 1, EP_A, VAKT_R_NOT_ISOLATED },
		{ "A's address from another veth is spoofed", { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 4000, .dport = 80, .tcp_flags = PK_TCP_SYN }, "10.0.0.1", 0, 0, VAKT_R_SPOOFED },
		{ "A's v6 address from another veth is spoofed", { .src = "fd00::1", .dst = "fd00::2", .sport = 4000, .dport = 80, .tcp_flags = PK_TCP_SYN }, "fd00::1", 0, 0, VAKT_R_SPOOFED },
		{ "C's egress rights are not A's", { .src = "10.0.0.3", .dst = "10.0.0.2", .sport = 4000, .dport = 80, .tcp_flags = PK_TCP_SYN }, "10.0.0.3", 1, EP_C, VAKT_R_POLICY_ALLOW },
		{ "C's address from the wrong veth, even to an allowed peer", { .src = "10.0.0.3", .dst = "10.0.0.2", .sport = 4000, .dport = 80, .tcp_flags = PK_TCP_SYN }, "10.0.0.3", 0, 0, VAKT_R_SPOOFED },
		{ "spoofed packet of an established-looking flow", { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 4000, .dport = 80 }, "10.0.0.1", 0, 0, VAKT_R_SPOOFED },
		{ "spoofed udp", { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .sport = 53, .dport = 53 }, "10.0.0.5", 0, 0, VAKT_R_SPOOFED },
		{ "unbound address is not checked", { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .sport = 53, .dport = 53 }, NULL, 0, EP_E, VAKT_R_NOT_ISOLATED },
		{ "a binding of another address does not matter", { .src = "10.0.0.5", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .sport = 53, .dport = 53 }, "10.0.0.1", 0, EP_E, VAKT_R_NOT_ISOLATED },
		{ "no local endpoint stays no_endpoint", { .src = "10.7.7.7", .dst = "10.0.0.2", .sport = 4000, .dport = 80 }, "10.0.0.1", 0, 0, VAKT_R_NO_ENDPOINT },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(spoof_rows) / sizeof(spoof_rows[0]); i++) {
		const struct spoof_row *r = &spoof_rows[i];
		uint64_t before;
		int ret;

		assert_int_equal(dp_clear_map(dp, "ep_ifindex"), 0);
		assert_int_equal(dp_clear_map(dp, "ct"), 0);
		if (r->bound)
			bind_addr(r->bound, (uint32_t)veth_a_ifindex);
		before = packets(r->ep, EG, r->reason);
		ret = run_from_ifindex(&r->pkt, r->from_a ? veth_a_ifindex : 1);
		if (packets(r->ep, EG, r->reason) != before + 1)
			fail_msg("%s: counter ep=%u reason=%u did not move", r->what, r->ep, r->reason);
		if (ret != (vakt_reason_is_drop(r->reason) ? VAKT_TC_DROP : VAKT_TC_PASS))
			fail_msg("%s: returned %d", r->what, ret);
	}
}

/* Conntrack is scoped by the veth: an admitted flow cannot be continued from another one. */
static void test_spoofing_an_established_flow_is_dropped(void **state)
{
	struct pk_spec syn = { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 4100, .dport = 80,
			       .tcp_flags = PK_TCP_SYN };
	struct pk_spec ack = syn;

	(void)state;
	ack.tcp_flags = 0;
	bind_addr("10.0.0.1", (uint32_t)veth_a_ifindex);
	assert_int_equal(run_from_ifindex(&syn, veth_a_ifindex), VAKT_TC_PASS);
	assert_int_equal(run_from_ifindex(&ack, veth_a_ifindex), VAKT_TC_PASS);
	assert_int_equal(packets(EP_A, EG, VAKT_R_ESTABLISHED), 1);
	assert_int_equal(run_from_ifindex(&ack, 1), VAKT_TC_DROP);
	assert_int_equal(packets(0, EG, VAKT_R_SPOOFED), 1);
	assert_int_equal(packets(EP_A, EG, VAKT_R_ESTABLISHED), 1);
}

/*
 * A flow admitted while its source address was unbound (from any veth) is
 * re-checked once the binding exists: the agent bumps the generation when
 * it binds (vakt_dataplane_bind()), established packets skip the binding
 * check only while the generation they were admitted under holds.
 */
static void test_flow_admitted_before_binding_is_rechecked_once_bound(void **state)
{
	struct pk_spec syn = { .src = "10.0.0.1", .dst = "10.0.0.2", .sport = 4200, .dport = 80,
			       .tcp_flags = PK_TCP_SYN };
	struct pk_spec ack = syn;

	(void)state;
	ack.tcp_flags = PK_TCP_ACK;
	assert_int_equal(run_from_ifindex(&syn, 1), VAKT_TC_PASS);
	assert_int_equal(run_from_ifindex(&ack, 1), VAKT_TC_PASS);
	assert_int_equal(packets(EP_A, EG, VAKT_R_ESTABLISHED), 1);
	bind_addr("10.0.0.1", (uint32_t)veth_a_ifindex);
	/* same generation: the entry still speaks for the flow */
	assert_int_equal(run_from_ifindex(&ack, 1), VAKT_TC_PASS);
	assert_int_equal(packets(EP_A, EG, VAKT_R_ESTABLISHED), 2);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	assert_int_equal(run_from_ifindex(&ack, 1), VAKT_TC_DROP);
	assert_int_equal(packets(0, EG, VAKT_R_SPOOFED), 1);
	/* from the pod's own veth the flow goes on as a new one */
	assert_int_equal(run_from_ifindex(&ack, veth_a_ifindex), VAKT_TC_PASS);
	assert_int_equal(packets(EP_A, EG, VAKT_R_NOT_ISOLATED), 2);
}

/*
 * The address of a deleted pod goes to a new one (a new endpoint record, the
 * generation moves): the old pod's conntrack entries at the same veth admit
 * nothing for the new pod, whose own policy decides.
 */
static void test_replaced_endpoint_never_inherits_conntrack(void **state)
{
	struct pk_spec syn = tcp("10.0.0.5", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.5", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct vakt_ep_val b2 = { .ep_id = EP_E, .identity = 259, .policy = { POL_C_IN, 0 },
				  .flags = VAKT_EPF_ID(0) };

	(void)state;
	/* B's ingress admits E's identity on any port */
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	/* 10.0.0.2 now belongs to another pod, isolated, whose policy allows nothing */
	assert_int_equal(dp_put_endpoint(dp, "10.0.0.2", &b2), 0);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	expect(DP_TO_POD, &ack, 0, EP_E, IN, VAKT_R_POLICY_DENIED);
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), 1);
	assert_int_equal(packets(EP_B, IN, VAKT_R_REVOKED), 0);
}

/* ---- vouching: one conntrack lookup for a flow between two local pods ---- */

static uint64_t read_jiffies(void)
{
	FILE *f = fopen("/proc/timer_list", "r");
	unsigned long long j = 0;
	char line[256];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "jiffies: %llu", &j) == 1)
			break;
	fclose(f);
	assert_true(j != 0);
	return j;
}

/*
 * A vouch lasts to the end of the tick it was given in (VAKT_VOUCH_TICK,
 * 256 jiffies). The sequences below take microseconds; started in the first
 * half of a tick, no tick boundary can fall between a vouch and its use.
 */
static void early_in_a_tick(void)
{
	struct timespec pause = { .tv_nsec = 2000000 };

	for (int i = 0; i < 2000; i++) {
		if ((read_jiffies() & 255) < 128)
			return;
		nanosleep(&pause, NULL);
	}
	fail_msg("jiffies did not reach the first half of a tick in 4 s");
}

/*
 * A's address bound to veth a, B's to veth b: the setup in which the
 * receiver's point vouches (include/vakt/datapath.h, "Vouching"), early in
 * a tick.
 */
static void bind_a_and_b(void)
{
	bind_addr("10.0.0.1", (uint32_t)veth_a_ifindex);
	bind_addr("10.0.0.2", (uint32_t)veth_b_ifindex);
	early_in_a_tick();
}

/*
 * One packet across the node: the sender's vakt_from_pod on its veth, then
 * the receiver's vakt_to_pod on its own with the mark the first one left.
 * Returns the second verdict (VAKT_TC_DROP if the first one dropped);
 * *mark (may be NULL) gets the mark in between.
 */
static int cross(const struct pk_spec *s, int from_if, int to_if, uint32_t *mark)
{
	uint32_t m = 0;
	int ret = run_on(DP_FROM_POD, s, from_if, 0, &m);

	if (mark)
		*mark = m;
	if (ret == VAKT_TC_DROP)
		return VAKT_TC_DROP;
	return run_on(DP_TO_POD, s, to_if, m, NULL);
}

/* A to B on TCP 80 (B's ingress admits A), handshake done: the flow is established at all four points. */
static void a_to_b_established(uint16_t sport)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", sport, 80, PK_TCP_SYN);
	struct pk_spec synack = tcp("10.0.0.2", "10.0.0.1", 80, sport, PK_TCP_SYN | PK_TCP_ACK);

	assert_int_equal(cross(&syn, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(cross(&synack, veth_b_ifindex, veth_a_ifindex, NULL), VAKT_TC_PASS);
}

static void test_receiver_vouches_and_its_lookup_is_skipped(void **state)
{
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 41000, 80, PK_TCP_ACK);
	struct pk_spec back = tcp("10.0.0.2", "10.0.0.1", 80, 41000, PK_TCP_ACK);
	uint64_t est, rep;
	uint32_t m;

	(void)state;
	bind_a_and_b();
	a_to_b_established(41000);
	/* no vouch yet: A's point asks, B's point looks its entry up and counts */
	est = packets(EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_A));
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), est + 1);
	/* vouched: A's point marks and counts for B, B's point passes on the mark alone */
	assert_int_equal(run_on(DP_FROM_POD, &ack, veth_a_ifindex, 0, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(VAKT_MARK_VOUCH | EP_B));
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), est + 2);
	assert_int_equal(run_on(DP_TO_POD, &ack, veth_b_ifindex, m, NULL), VAKT_TC_PASS);
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), est + 2);
	/* the other way, B's reply entry vouches A's: counted as replies */
	rep = packets(EP_A, IN, VAKT_R_REPLY);
	assert_int_equal(cross(&back, veth_b_ifindex, veth_a_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_B));
	assert_int_equal(cross(&back, veth_b_ifindex, veth_a_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(VAKT_MARK_VOUCH | EP_A));
	assert_int_equal(packets(EP_A, IN, VAKT_R_REPLY), rep + 2);
}

/* The same for IPv6: the bindings and the conntrack key are family-blind. */
static void test_ipv6_flows_are_vouched_too(void **state)
{
	struct pk_spec syn = tcp("fd00::1", "fd00::2", 41050, 80, PK_TCP_SYN);
	struct pk_spec synack = tcp("fd00::2", "fd00::1", 80, 41050, PK_TCP_SYN | PK_TCP_ACK);
	struct pk_spec ack = tcp("fd00::1", "fd00::2", 41050, 80, PK_TCP_ACK);
	uint64_t est;
	uint32_t m;

	(void)state;
	bind_addr("fd00::1", (uint32_t)veth_a_ifindex);
	bind_addr("fd00::2", (uint32_t)veth_b_ifindex);
	early_in_a_tick();
	assert_int_equal(cross(&syn, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(cross(&synack, veth_b_ifindex, veth_a_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_A));
	est = packets(EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(VAKT_MARK_VOUCH | EP_B));
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), est + 1);
}

/*
 * A UDP datagram with a 1-byte payload, in a frame a veth leaves unpadded,
 * ends before a TCP header's first 14 bytes would: it still takes the
 * in-place parser, and with it the vouch.
 */
static void test_tiny_udp_datagrams_are_vouched_too(void **state)
{
	struct pk_spec d = { .src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
			     .sport = 41060, .dport = 5000, .payload = 1, .no_pad = 1 };
	uint32_t m;

	(void)state;
	bind_a_and_b();
	assert_int_equal(cross(&d, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(cross(&d, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_A));
	assert_int_equal(cross(&d, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(VAKT_MARK_VOUCH | EP_B));
}

/*
 * A VOUCH mark decides only on the veth its vouch was given for and under
 * the generation it was given in; anywhere else the receiver decides as if
 * the packet were unmarked. The packet here (to B's port 81) is one B's
 * ingress denies, so only the mark could pass it.
 */
static void test_vouch_counts_only_on_its_veth_and_generation(void **state)
{
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 41100, 80, PK_TCP_ACK);
	struct pk_spec to81 = tcp("10.0.0.1", "10.0.0.2", 41101, 81, PK_TCP_ACK);
	struct pk_spec to_c = tcp("10.0.0.1", "10.0.0.3", 41102, 80, PK_TCP_ACK);
	uint32_t vb = mk(VAKT_MARK_VOUCH | EP_B), denied;

	(void)state;
	bind_a_and_b();
	a_to_b_established(41100);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	denied = (uint32_t)packets(EP_B, IN, VAKT_R_POLICY_DENIED);
	/* what a vouch does: B's point no longer looks */
	assert_int_equal(run_on(DP_TO_POD, &to81, veth_b_ifindex, vb, NULL), VAKT_TC_PASS);
	/* on another veth, the vouch for B is no vouch */
	assert_int_equal(run_on(DP_TO_POD, &to81, veth_a_ifindex, vb, NULL), VAKT_TC_DROP);
	assert_int_equal(packets(EP_B, IN, VAKT_R_POLICY_DENIED), denied + 1);
	/* a vouch for a pod that was never vouched for anywhere */
	assert_int_equal(run_on(DP_TO_POD, &to_c, veth_b_ifindex, mk(VAKT_MARK_VOUCH | EP_C), NULL),
			 VAKT_TC_DROP);
	/* the generation moves: B's veth takes no vouch given before */
	assert_int_equal(dp_set_gen(dp, 2), 0);
	assert_int_equal(run_on(DP_TO_POD, &to81, veth_b_ifindex, vb, NULL), VAKT_TC_DROP);
	assert_int_equal(packets(EP_B, IN, VAKT_R_POLICY_DENIED), denied + 2);
}

/* B's ingress stops admitting A: the vouched flow is cut at B's veth on the next packet. */
static void test_revoking_the_receivers_ingress_cuts_a_vouched_flow(void **state)
{
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 41200, 80, PK_TCP_ACK);
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = POL_B_IN, .peer = 256,
				     .proto = IPPROTO_TCP, .port = htons(80) };
	uint32_t m;

	(void)state;
	bind_a_and_b();
	a_to_b_established(41200);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(VAKT_MARK_VOUCH | EP_B));
	/* A's egress (not isolated) still admits the flow, B's ingress no longer does */
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_DROP);
	assert_int_equal(m & mk(VAKT_MARK_STATE), 0);
	assert_int_equal(packets(EP_B, IN, VAKT_R_REVOKED), 1);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_DROP);
	assert_int_equal(m, mk(EP_A));
	assert_int_equal(packets(EP_B, IN, VAKT_R_POLICY_DENIED), 1);
}

/* The sender's entry of the flow A -> B:80 (sport) at A's veth. */
static struct vakt_ct_key a_entry(uint16_t sport)
{
	return ct_key("10.0.0.1", "10.0.0.2", sport, 80, IPPROTO_TCP, (uint32_t)veth_a_ifindex,
		      VAKT_DIR_EGRESS);
}

/*
 * A vouch is used only while it is of the current generation and tick, and
 * given only where both pods' addresses are bound to their veths: else the
 * sender's point asks again and the receiver's point looks.
 */
static void test_sender_uses_only_a_current_vouch(void **state)
{
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 41300, 80, PK_TCP_ACK);
	struct vakt_ct_key k = a_entry(41300);
	struct vakt_ct_val v;
	uint32_t m;

	(void)state;
	bind_a_and_b();
	a_to_b_established(41300);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(ct_get(&k, &v), 0);
	assert_int_equal(v.vouch, EP_B);
	/* a vouch left from another generation (one given while the entry was re-checked) */
	v.vouch_gen = (uint16_t)(v.gen - 1);
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ct"), &k, &v, BPF_EXIST), 0);
	assert_int_equal(run_on(DP_FROM_POD, &ack, veth_a_ifindex, 0, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_A));
	/* a vouch from another tick: the receiver's entry has not seen the flow since */
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(ct_get(&k, &v), 0);
	assert_int_equal(v.vouch_gen, (uint16_t)v.gen);
	v.vouch_tick = (uint8_t)(v.vouch_tick + 1);
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ct"), &k, &v, BPF_EXIST), 0);
	assert_int_equal(run_on(DP_FROM_POD, &ack, veth_a_ifindex, 0, &m), VAKT_TC_PASS);
	assert_int_equal(m, mk(EP_A));
	/* B's address unbound: B's point never vouches */
	assert_int_equal(dp_clear_map(dp, "ct"), 0);
	assert_int_equal(dp_clear_map(dp, "ep_ifindex"), 0);
	bind_addr("10.0.0.1", (uint32_t)veth_a_ifindex);
	a_to_b_established(41300);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
		assert_int_equal(m, mk(EP_A));
	}
}

/*
 * FIN and RST move the receiver's entry: they are never vouched for, so
 * both points see them and the flow closes at both.
 */
static void test_packets_that_move_tcp_state_are_never_vouched(void **state)
{
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 41400, 80, PK_TCP_ACK);
	struct pk_spec fin = tcp("10.0.0.1", "10.0.0.2", 41400, 80, PK_TCP_FIN | PK_TCP_ACK);
	struct pk_spec rst = tcp("10.0.0.2", "10.0.0.1", 80, 41400, PK_TCP_RST);
	struct vakt_ct_key kb = ct_key("10.0.0.1", "10.0.0.2", 41400, 80, IPPROTO_TCP,
				       (uint32_t)veth_b_ifindex, VAKT_DIR_INGRESS);
	struct vakt_ct_val v;
	uint32_t m;

	(void)state;
	bind_a_and_b();
	a_to_b_established(41400);
	assert_int_equal(cross(&ack, veth_a_ifindex, veth_b_ifindex, NULL), VAKT_TC_PASS);
	assert_int_equal(cross(&fin, veth_a_ifindex, veth_b_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, 0);
	assert_int_equal(ct_get(&kb, &v), 0);
	assert_true(v.flags & VAKT_CTF_FIN);
	assert_int_equal(cross(&rst, veth_b_ifindex, veth_a_ifindex, &m), VAKT_TC_PASS);
	assert_int_equal(m, 0);
	assert_int_equal(ct_get(&kb, &v), 0);
	assert_int_equal(v.state, VAKT_CT_CLOSING);
}

/*
 * An established packet is decided by its conntrack entry alone while the
 * generation holds (the one-lookup fast path): the endpoint record is not
 * read. The map writer bumps the generation with every deletion, and then
 * the full path finds the endpoint gone.
 */
static void test_established_packets_skip_the_endpoint_lookup(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ack = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct vakt_addr b = pk_addr("10.0.0.2");

	(void)state;
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "endpoints"), &b), 0);
	expect(DP_TO_POD, &ack, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	expect(DP_TO_POD, &ack, 0, 0, IN, VAKT_R_NO_ENDPOINT);
}

/*
 * Packets the in-place parser refuses (a VLAN tag, IPv6 extension headers)
 * take the out-of-line full path, which must still try conntrack first.
 */
static void test_established_packets_the_fast_parser_refuses_use_conntrack(void **state)
{
	struct pk_spec syn = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_SYN);
	struct pk_spec tagged = tcp("10.0.0.1", "10.0.0.2", 40000, 80, PK_TCP_ACK);
	struct pk_spec syn6 = tcp("fd00::1", "fd00::2", 40000, 80, PK_TCP_SYN);
	struct pk_spec ext6 = tcp("fd00::1", "fd00::2", 40000, 80, PK_TCP_ACK);
	struct vakt_addr b = pk_addr("10.0.0.2"), b6 = pk_addr("fd00::2");

	(void)state;
	tagged.vlan = 1;
	ext6.v6_ext = 1;
	expect(DP_TO_POD, &syn, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	expect(DP_TO_POD, &syn6, 0, EP_B, IN, VAKT_R_POLICY_ALLOW);
	/* with no endpoint record left, only conntrack can admit them */
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "endpoints"), &b), 0);
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "endpoints"), &b6), 0);
	expect(DP_TO_POD, &tagged, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	expect(DP_TO_POD, &ext6, 0, EP_B, IN, VAKT_R_ESTABLISHED);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	expect(DP_TO_POD, &tagged, 0, 0, IN, VAKT_R_NO_ENDPOINT);
}

/*
 * Through a ClusterIP, the backend's veth holds two checks: the sender's
 * deferred egress and the backend's ingress. Once established, both are
 * one conntrack lookup each, with no endpoint lookup (the records can be
 * gone) while the generation holds.
 */
static void test_established_service_flows_skip_the_endpoint_lookups(void **state)
{
	struct pk_spec to_b = { .src = "10.0.0.3", .dst = "10.0.0.2", .proto = IPPROTO_UDP,
				.sport = 33335, .dport = 53 };
	uint32_t m = mk(VAKT_MARK_DEFER | EP_C);
	struct vakt_addr c = pk_addr("10.0.0.3"), b = pk_addr("10.0.0.2");
	uint32_t ep = EP_C;
	uint64_t b_est;

	(void)state;
	assert_int_equal(bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &ep, &c, BPF_ANY), 0);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_POLICY_ALLOW);
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "endpoints"), &c), 0);
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "endpoints"), &b), 0);
	b_est = packets(EP_B, IN, VAKT_R_ESTABLISHED);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_ESTABLISHED);
	assert_int_equal(packets(EP_B, IN, VAKT_R_ESTABLISHED), b_est + 1);
	/* any change moves the generation: the full path finds the sender gone */
	assert_int_equal(dp_set_gen(dp, 3), 0);
	expect(DP_TO_POD, &to_b, m, EP_C, EG, VAKT_R_FAIL_CLOSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_verdict_table),
		T(test_established_flow_and_its_replies_pass),
		T(test_sender_egress_never_skips_receiver_ingress),
		T(test_tcp_rst_closes_both_entries),
		T(test_new_connection_on_a_closed_tuple_starts_clean),
		T(test_tcp_fin_from_both_sides_closes),
		T(test_entries_expire_per_state),
		T(test_sctp_init_abort),
		T(test_icmp_echo_reply_passes),
		T(test_icmp_errors_of_allowed_flows_are_related),
		T(test_fragments_follow_the_first),
		T(test_revocation_by_generation),
		T(test_counters_count_packets_and_bytes),
		T(test_egress_to_unknown_address_is_deferred_with_the_mark),
		T(test_deferred_egress_is_decided_for_the_backend),
		T(test_deferred_egress_is_decided_without_a_receiving_endpoint),
		T(test_service_replies_stop_naming_a_client_whose_egress_was_revoked),
		T(test_failed_closed_pod_takes_no_replies_on_the_mark),
		T(test_node_egress_checks_masqueraded_traffic),
		T(test_custom_mark_mask),
		T(test_drop_events_are_rate_limited),
		T(test_spoofed_sources_of_bound_pods_are_dropped),
		T(test_spoofing_an_established_flow_is_dropped),
		T(test_flow_admitted_before_binding_is_rechecked_once_bound),
		T(test_replaced_endpoint_never_inherits_conntrack),
		T(test_established_packets_skip_the_endpoint_lookup),
		T(test_established_packets_the_fast_parser_refuses_use_conntrack),
		T(test_established_service_flows_skip_the_endpoint_lookups),
		T(test_receiver_vouches_and_its_lookup_is_skipped),
		T(test_ipv6_flows_are_vouched_too),
		T(test_tiny_udp_datagrams_are_vouched_too),
		T(test_vouch_counts_only_on_its_veth_and_generation),
		T(test_revoking_the_receivers_ingress_cuts_a_vouched_flow),
		T(test_sender_uses_only_a_current_vouch),
		T(test_packets_that_move_tcp_state_are_never_vouched),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
