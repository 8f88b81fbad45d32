// SPDX-License-Identifier: Apache-2.0
/*
 * bench_datapath - ns per packet of the TC datapath through
 * BPF_PROG_TEST_RUN (kernel-measured, no syscall cost included):
 *
 *   empty       a program that only returns TC_ACT_UNSPEC (the floor)
 *   established a packet of an admitted flow (one conntrack lookup); also
 *               with an 802.1Q tag, which takes the general parser
 *               (bpf_skb_load_bytes per header) instead of the in-place
 *               fast path: the cost of a packet whose headers are not all
 *               in the linear area (GRO skbs on veth)
 *   new flow    a packet that misses conntrack, gets the verdict and
 *               creates two entries, with 10, 10k and 1M policy entries
 *   service     an established flow through a ClusterIP at the backend's
 *               veth: the packet carries the client's DEFER mark, so the
 *               client's deferred egress check and the backend's ingress
 *               both run (one conntrack lookup each once established)
 *   drop        a denied new flow (verdict, counter, rate-limited event);
 *               the loop variant differs from "new flow" only by not
 *               creating conntrack entries, which shows their cost
 *   new flow on a closed tuple
 *               as "new flow", on tuples whose flows closed (RST) just
 *               before: the closed entries are rewritten in place
 *   new flow, conntrack full
 *               as "new flow", with the conntrack table full, so that
 *               every entry created evicts one (the LRU's shrink): the
 *               steady state of a node with connection churn, which the
 *               plain "new flow" (table never full) does not reach
 *
 * "loop" figures run the program once per syscall with a fresh tuple each
 * time (so every packet is a new flow); "repeat" figures let the kernel
 * repeat one packet (the same flow). The empty program is given both ways.
 * Usage: bench_datapath [repeat] (default 100000). Needs root.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../tests/lib/bpfload.h"
#include "../tests/lib/pkt.h"

#define POL_B 1
#define POL_C_EG 5000 /* above fill_policy()'s ids */
#define ID_A 256
#define EP_C 3
/* client addresses x 60,000 ports: fresh tuples enough to fill conntrack and go on */
#define CLIENTS 8
#define PORTS 60000

static int empty_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "bench_empty", "GPL", insns, 2, NULL);
}

/*
 * n policy entries: the one that matters (POL_B, ID_A, TCP 80) plus n-1
 * entries of other endpoint policies and peers with port ranges, so the
 * trie holds n keys of the real shape.
 */
static int fill_policy(struct vakt_bpf *dp, uint32_t n)
{
	uint32_t i;
	int err;

	err = dp_put_policy(dp, POL_B, ID_A, IPPROTO_TCP, 80, VAKT_PLEN_FULL, 1);
	for (i = 1; i < n && !err; i++) {
		uint32_t pol = 2 + i % 4096, peer = 257 + (i / 4096) % 100000;

		err = dp_put_policy(dp, pol, peer, (i & 1) ? IPPROTO_TCP : IPPROTO_UDP,
				    (uint16_t)(i * 7), VAKT_PLEN_ANY_PORT + 4 + i % 13, i);
	}
	return err;
}

static int fill_ipcache(struct vakt_bpf *dp, uint32_t n)
{
	char ip[32];
	uint32_t i;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", 64 + (i >> 16), (i >> 8) & 255, i & 255);
		err = dp_put_ipcache(dp, ip, 256 + i % 5000);
	}
	for (i = 0; i < CLIENTS && !err; i++) {
		snprintf(ip, sizeof(ip), "10.0.1.%u", i + 1);
		err = dp_put_ipcache(dp, ip, ID_A);
	}
	return err;
}

static int setup(struct vakt_bpf *dp, uint32_t entries)
{
	struct vakt_ep_val b = { .ep_id = 2, .identity = 257, .policy = { POL_B, 0 },
				 .flags = VAKT_EPF_ID(0) | VAKT_EPF_CLASS(0) | VAKT_EPF_ANY(0) };
	/* client 10.0.1.1 with an egress policy: its flows to a ClusterIP are deferred */
	struct vakt_ep_val c = { .ep_id = EP_C, .identity = ID_A, .policy = { 0, POL_C_EG },
				 .flags = VAKT_EPF_ID(1) };
	struct vakt_addr caddr = pk_addr("10.0.1.1");
	uint32_t cid = EP_C;
	int err;

	err = dp_put_endpoint(dp, "10.0.0.2", &b);
	if (!err)
		err = dp_put_endpoint(dp, "10.0.1.1", &c);
	if (!err)
		err = dp_put_ipcache(dp, "10.0.0.2", 257);
	if (!err)
		err = dp_put_policy(dp, POL_C_EG, 257, IPPROTO_TCP, 80, VAKT_PLEN_FULL, 2);
	if (!err && bpf_map_update_elem(dp_map_fd(dp, "ep_addr"), &cid, &caddr, BPF_ANY))
		err = -errno;
	if (!err)
		err = dp_put_cidr(dp, "::", 0, 0);
	if (!err)
		err = dp_put_cidr(dp, "192.168.0.0", 112, 1);
	if (!err)
		err = dp_set_gen(dp, 1);
	if (!err)
		err = fill_ipcache(dp, entries < 200000 ? entries : 200000);
	if (!err)
		err = fill_policy(dp, entries);
	return err;
}

/*
 * Average ns of one program run, one run per syscall, one TCP packet with
 * flags for each of tuples first .. first + runs - 1 (of CLIENTS * PORTS).
 */
static double tuples(int prog_fd, uint32_t first, uint32_t runs, uint16_t dport, uint8_t flags)
{
	struct pk_spec s = { .dst = "10.0.0.2", .dport = dport, .tcp_flags = flags };
	char src[32];
	uint8_t buf[PK_MAX];
	uint64_t total = 0;
	uint32_t i, t, ns;
	size_t len;

	for (i = 0; i < runs; i++) {
		t = first + i;
		snprintf(src, sizeof(src), "10.0.1.%u", 1 + (t / PORTS) % CLIENTS);
		s.src = src;
		s.sport = (uint16_t)(1024 + t % PORTS);
		len = pk_build(&s, buf, sizeof(buf));
		if (dp_run_fd(prog_fd, buf, len, 1, 0, NULL, NULL, &ns))
			return -1;
		total += ns;
	}
	return (double)total / runs;
}

/* A fresh flow per run: a SYN on tuples no entry has seen. */
static double new_flows(int prog_fd, uint32_t first, uint32_t runs, uint16_t dport)
{
	return tuples(prog_fd, first, runs, dport, PK_TCP_SYN);
}

/*
 * "new flow" with conntrack full: new flows after tuple first until the
 * table is full (two entries each), then runs more, each evicting.
 */
static double new_flows_full(int prog_fd, uint32_t first, uint32_t runs)
{
	uint32_t fill = VAKT_CT_MAX / 2 + 1024;

	if ((uint64_t)first + fill + runs > (uint64_t)CLIENTS * PORTS) {
		fprintf(stderr, "bench_datapath: %u runs need more than %u fresh tuples\n", runs,
			CLIENTS * PORTS);
		return -1;
	}
	if (new_flows(prog_fd, first, fill, 80) < 0)
		return -1;
	return new_flows(prog_fd, first + fill, runs, 80);
}

/*
 * "new flow" on the tuples of flows that closed (an RST each, not
 * measured): what a node sees when a pod keeps connecting to one
 * destination and the ephemeral port range wraps within the closed
 * entries' grace period. The entries are rewritten in place (bpf/ct.h
 * ct_put()).
 */
static double reused_flows(int prog_fd, uint32_t first, uint32_t runs)
{
	if (tuples(prog_fd, first, runs, 80, PK_TCP_RST | PK_TCP_ACK) < 0)
		return -1;
	return new_flows(prog_fd, first, runs, 80);
}

/* mark: skb->mark of every run (the client's DEFER mark for "service"). */
static double repeated(int prog_fd, uint16_t dport, uint32_t repeat, int vlan, uint32_t mark)
{
	struct pk_spec s = { .src = "10.0.1.1", .dst = "10.0.0.2", .sport = mark ? 998 : 999,
			     .dport = dport, .tcp_flags = PK_TCP_ACK, .vlan = vlan };
	uint8_t buf[PK_MAX];
	size_t len = pk_build(&s, buf, sizeof(buf));
	uint32_t ns;
	int ret;

	if (dp_run_fd(prog_fd, buf, len, 1, mark, NULL, NULL, NULL) ||
	    dp_run_fd(prog_fd, buf, len, repeat, mark, NULL, &ret, &ns))
		return -1;
	/* the figure must be of the path it names: allowed on port 80, dropped on 81 */
	if (ret != (dport == 80 ? VAKT_TC_PASS : VAKT_TC_DROP)) {
		fprintf(stderr, "bench_datapath: port %u mark %#x returned %d\n", dport, mark, ret);
		return -1;
	}
	return ns;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 10, 10000, 1000000 };
	uint32_t repeat = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 100000;
	double newf[3], reuse[3], full[3], est[3], estv[3], svc[3], drop[3], dropl[3], empty_rep, empty_loop;
	int efd, i;

	if (geteuid() != 0) {
		fprintf(stderr, "bench_datapath: needs root\n");
		return 1;
	}
	efd = empty_prog();
	if (efd < 0) {
		fprintf(stderr, "bench_datapath: loading the empty program failed err=%d\n", efd);
		return 1;
	}
	empty_rep = repeated(efd, 80, repeat, 0, 0);
	empty_loop = new_flows(efd, 0, repeat, 80);

	for (i = 0; i < 3; i++) {
		struct vakt_bpf *dp;
		int from, to;

		if (dp_open(&dp, NULL) || setup(dp, sizes[i])) {
			fprintf(stderr, "bench_datapath: setup with %u entries failed\n", sizes[i]);
			return 1;
		}
		to = dp_prog_fd(dp, DP_TO_POD);
		from = dp_prog_fd(dp, DP_FROM_POD);
		(void)from;
		newf[i] = new_flows(to, 0, repeat, 80);
		reuse[i] = reused_flows(to, 0, repeat);
		est[i] = repeated(to, 80, repeat, 0, 0);
		estv[i] = repeated(to, 80, repeat, 1, 0);
		svc[i] = repeated(to, 80, repeat, 0, (VAKT_MARK_DEFER | EP_C) << VAKT_MARK_DEFAULT_SHIFT);
		drop[i] = repeated(to, 81, repeat, 0, 0);
		dropl[i] = new_flows(to, 0, repeat, 81);
		full[i] = new_flows_full(to, repeat, repeat);
		dp_close(dp);
		if (newf[i] < 0 || reuse[i] < 0 || est[i] < 0 || estv[i] < 0 || svc[i] < 0 || drop[i] < 0 ||
		    dropl[i] < 0 || full[i] < 0) {
			fprintf(stderr, "bench_datapath: a run failed\n");
			return 1;
		}
	}

	printf("bench_datapath: ns/packet via BPF_PROG_TEST_RUN (runs=%u)\n", repeat);
	printf("  %-34s %10s %10s %10s\n", "", "10", "10k", "1M");
	printf("  %-34s %10.1f %10.1f %10.1f\n", "new flow (loop, allowed, +2 CT)", newf[0], newf[1],
	       newf[2]);
	printf("  %-34s %10.2f %10.2f %10.2f\n", "  ratio to 10 entries", 1.0, newf[1] / newf[0],
	       newf[2] / newf[0]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "new flow on a closed tuple (loop)", reuse[0],
	       reuse[1], reuse[2]);
	printf("  %-34s %10.2f %10.2f %10.2f\n", "  ratio to new flow", reuse[0] / newf[0],
	       reuse[1] / newf[1], reuse[2] / newf[2]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "established (repeat)", est[0], est[1], est[2]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "  with 802.1Q (general parser)", estv[0],
	       estv[1], estv[2]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "  through a Service (DEFER mark)", svc[0],
	       svc[1], svc[2]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "drop, new flow (repeat)", drop[0], drop[1],
	       drop[2]);
	printf("  %-34s %10.2f %10.2f %10.2f\n", "  ratio to 10 entries", 1.0, drop[1] / drop[0],
	       drop[2] / drop[0]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "drop, new flow (loop)", dropl[0], dropl[1],
	       dropl[2]);
	printf("  %-34s %10.1f %10.1f %10.1f\n", "new flow, conntrack full (loop)", full[0],
	       full[1], full[2]);
	printf("  %-34s %10.2f %10.2f %10.2f\n", "  ratio to new flow", full[0] / newf[0],
	       full[1] / newf[1], full[2] / newf[2]);
	printf("  %-34s %10.1f\n", "empty program (repeat)", empty_rep);
	printf("  %-34s %10.1f\n", "empty program (loop)", empty_loop);
	printf("  established / empty (repeat): %.2f; new flow - empty (loop): %.1f ns\n",
	       est[0] / (empty_rep > 0 ? empty_rep : 1), newf[0] - empty_loop);
	close(efd);
	return 0;
}
