// SPDX-License-Identifier: Apache-2.0
/*
 * The dataplane with the real skeleton (bpf/vakt.bpf.c): the map writer
 * (apply, reconcile, make-before-break order, full map -> fail closed,
 * generation bumps), pinned maps across a restart, attachment to veths in
 * both modes with adoption and cleanup, counters. Each test uses its own pin
 * directory; the whole binary runs in a private network namespace.
 * Needs root; fails (never skips) when it cannot run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cmocka.h>

#include "attach.h"
#include "compiler.h"
#include "dataplane.h"
#include "loader.h"
#include "log.h"
#include "store.h"
#include "tables.h"
#include "vaktd_agent.h"
#include "vakt/datapath.h"
#include "../lib/testsys.h"

static int g_seq; /* pin directories of this process: vkt-mw-<pid>-<seq> */

#define sh vt_sh

static void new_bpffs(char *buf, size_t len)
{
	snprintf(buf, len, "/sys/fs/bpf/vkt-mw-%d-%d", (int)getpid(), ++g_seq);
}

static struct vakt_dataplane *open_dp(const char *bpffs, int force_clsact, uint32_t policy_max)
{
	struct vakt_dataplane_opts o = { .bpffs = bpffs, .force_clsact = force_clsact };
	struct vakt_dataplane *dp;
	int err = 0;

	o.max_entries[VAKT_T_POLICY] = policy_max;
	dp = vakt_dataplane_open(&o, &err);
	if (!dp)
		fail_msg("vakt_dataplane_open(%s) failed: %d", bpffs, err);
	return dp;
}

static struct vakt_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct vakt_addr x = { .b = { [10] = 0xff, [11] = 0xff } };

	x.b[12] = a;
	x.b[13] = b;
	x.b[14] = c;
	x.b[15] = d;
	return x;
}

static void put_ip(struct vakt_tables *t, struct vakt_addr a, uint32_t identity)
{
	struct vakt_ip_val v = { .identity = identity };

	assert_int_equal(vakt_tables_put(t, VAKT_T_IPCACHE, &a, &v), 0);
}

static void put_ep(struct vakt_tables *t, struct vakt_addr a, uint32_t ep_id, uint32_t pol_in,
		   uint32_t pol_eg, uint32_t flags)
{
	struct vakt_ep_val v = { .ep_id = ep_id, .identity = 300, .policy = { pol_in, pol_eg },
				 .flags = flags };

	assert_int_equal(vakt_tables_put(t, VAKT_T_ENDPOINTS, &a, &v), 0);
}

static struct vakt_policy_key pkey(uint32_t pol, uint32_t peer, uint16_t port)
{
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = pol, .peer = peer,
				     .proto = 6, .port = htons(port) };

	return k;
}

static void put_pol(struct vakt_tables *t, uint32_t pol, uint32_t peer, uint16_t port, uint32_t rule)
{
	struct vakt_policy_key k = pkey(pol, peer, port);
	struct vakt_policy_val v = { .rule = rule, .action = VAKT_ACTION_ALLOW };

	assert_int_equal(vakt_tables_put(t, VAKT_T_POLICY, &k, &v), 0);
}

static void put_cidr(struct vakt_tables *t, struct vakt_addr a, uint32_t plen, uint32_t cls)
{
	struct vakt_cidr_key k = { .prefixlen = plen, .addr = a };
	struct vakt_cidr_val v = { .class_id = cls };

	assert_int_equal(vakt_tables_put(t, VAKT_T_CIDR, &k, &v), 0);
}

static uint64_t map_count(struct vakt_dataplane *dp, const char *map)
{
	int fd = vakt_dataplane_map_fd(dp, map);
	unsigned char cur[64], next[64];
	void *prev = NULL;
	uint64_t n = 0;

	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, prev, next)) {
		n++;
		memcpy(cur, next, sizeof(cur));
		prev = cur;
	}
	return n;
}

struct eq_ctx {
	struct vakt_dataplane *dp;
	enum vakt_table_id id;
	int fd;
};

static int entry_in_map(void *arg, const void *key, const void *val)
{
	struct eq_ctx *e = arg;
	unsigned char got[256];
	size_t vs = vakt_table_value_size(e->id);

	if (bpf_map_lookup_elem(e->fd, key, got))
		fail_msg("%s: table entry missing in the map", vakt_table_name(e->id));
	if (e->id == VAKT_T_ENDPOINTS) {
		struct vakt_ep_val m;

		memcpy(&m, got, sizeof(m));
		m.flags &= ~VAKT_EPF_FAIL_CLOSED;
		memcpy(got, &m, sizeof(m));
	}
	if (memcmp(got, val, vs))
		fail_msg("%s: map value differs from the table", vakt_table_name(e->id));
	return 0;
}

/* Every map holds exactly the table's entries. */
static void assert_maps_equal_tables(struct vakt_dataplane *dp, struct vakt_tables *t)
{
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct eq_ctx e = { .dp = dp, .id = (enum vakt_table_id)id };
		const char *name = vakt_table_name((enum vakt_table_id)id);

		e.fd = vakt_dataplane_map_fd(dp, name);
		assert_true(e.fd >= 0);
		assert_int_equal(map_count(dp, name), vakt_tables_count(t, (enum vakt_table_id)id));
		vakt_tables_foreach(t, (enum vakt_table_id)id, entry_in_map, &e);
	}
}

static uint64_t gen_of(struct vakt_dataplane *dp)
{
	struct vakt_state st = {};
	uint32_t k = 0;

	assert_int_equal(bpf_map_lookup_elem(vakt_dataplane_map_fd(dp, VAKT_MAP_STATE), &k, &st), 0);
	assert_int_equal(st.abi, VAKT_ABI_VERSION);
	return st.gen;
}

static struct vakt_ep_val ep_in_map(struct vakt_dataplane *dp, struct vakt_addr a)
{
	struct vakt_ep_val v = {};

	assert_int_equal(bpf_map_lookup_elem(vakt_dataplane_map_fd(dp, VAKT_MAP_ENDPOINTS), &a, &v), 0);
	return v;
}

/* A small, consistent set: two local pods, one remote, a CIDR rule. */
static void base_tables(struct vakt_tables *t)
{
	put_ip(t, v4(10, 0, 0, 1), 300);
	put_ip(t, v4(10, 0, 0, 2), 301);
	put_ip(t, v4(10, 0, 1, 9), 302);
	put_cidr(t, v4(0, 0, 0, 0), 0, 0);
	put_cidr(t, v4(192, 168, 0, 0), 96 + 16, 1);
	put_pol(t, 5, 301, 8080, 11);
	put_pol(t, 5, 302, 8080, 12);
	put_pol(t, 6, VAKT_PEER_CLASS | 1, 443, 13);
	put_ep(t, v4(10, 0, 0, 1), 1, 5, 6, VAKT_EPF_ID(0) | VAKT_EPF_CLASS(1));
	put_ep(t, v4(10, 0, 0, 2), 2, 0, 0, 0);
}

static void test_apply_writes_the_journal_and_later_changes(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	struct vakt_policy_key k = pkey(5, 302, 8080);
	uint64_t entries, cap;

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	base_tables(t);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	assert_maps_equal_tables(dp, t);
	assert_int_equal(vakt_tables_journal_len(t), 0);

	/* Revoke one entry, move pod 2 under policy 5, add an address. */
	assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k), 0);
	put_ep(t, v4(10, 0, 0, 2), 2, 5, 0, VAKT_EPF_ID(0));
	put_ip(t, v4(10, 0, 2, 1), 303);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	assert_maps_equal_tables(dp, t);
	assert_int_equal(vakt_dataplane_map_usage(dp, VAKT_MAP_POLICY, &entries, &cap), 0);
	assert_int_equal(entries, 2);
	assert_int_equal(cap, VAKT_POLICY_MAX);
	assert_int_equal(vakt_dataplane_map_usage(dp, VAKT_MAP_IPCACHE, &entries, &cap), 0);
	assert_int_equal(entries, 4);
	assert_int_equal(vakt_dataplane_map_usage(dp, "nosuchmap", &entries, &cap), -ENOENT);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
	assert_int_not_equal(access(bpffs, F_OK), 0);
}

struct op {
	char map[16];
	int del;
};

struct oplog {
	struct op ops[256];
	size_t n;
};

static void record_op(void *arg, const char *map, int del, const void *key)
{
	struct oplog *l = arg;

	(void)key;
	assert_true(l->n < 256);
	snprintf(l->ops[l->n].map, sizeof(l->ops[0].map), "%s", map);
	l->ops[l->n].del = del;
	l->n++;
}

static int rank(const struct op *o)
{
	/* Make-before-break: rule puts (0) < endpoint puts (1) < endpoint deletes (2) < rule
	 * deletes (3) < generation bump (4). */
	if (!strcmp(o->map, "state"))
		return 4;
	if (!strcmp(o->map, VAKT_MAP_ENDPOINTS))
		return o->del ? 2 : 1;
	return o->del ? 3 : 0;
}

static void assert_make_before_break(const struct oplog *l, int want_bump)
{
	int bumped = 0;

	assert_true(l->n > 0);
	for (size_t i = 1; i < l->n; i++)
		if (rank(&l->ops[i]) < rank(&l->ops[i - 1]))
			fail_msg("op %zu (%s %s) after (%s %s)", i, l->ops[i].del ? "del" : "put",
				 l->ops[i].map, l->ops[i - 1].del ? "del" : "put", l->ops[i - 1].map);
	for (size_t i = 0; i < l->n; i++)
		bumped |= rank(&l->ops[i]) == 4;
	assert_int_equal(bumped, want_bump);
}

static void test_apply_orders_writes_make_before_break(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	struct oplog log = {};
	struct vakt_policy_key k = pkey(6, VAKT_PEER_CLASS | 1, 443);
	struct vakt_cidr_key ck = { .prefixlen = 96 + 16, .addr = v4(192, 168, 0, 0) };
	struct vakt_addr gone = v4(10, 0, 0, 2);

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	base_tables(t);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);

	/* Switch pod 1's egress to a new policy 7, drop policy 6 and its CIDR, drop pod 2. */
	put_pol(t, 7, 301, 53, 14);
	put_ep(t, v4(10, 0, 0, 1), 1, 5, 7, VAKT_EPF_ID(0) | VAKT_EPF_ID(1));
	assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k), 0);
	assert_int_equal(vakt_tables_del(t, VAKT_T_CIDR, &ck), 0);
	assert_int_equal(vakt_tables_del(t, VAKT_T_ENDPOINTS, &gone), 0);
	assert_int_equal(vakt_tables_del(t, VAKT_T_IPCACHE, &gone), 0);
	vakt_dataplane_set_write_hook(dp, record_op, &log);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	assert_make_before_break(&log, 1);
	assert_int_equal(log.n, 7); /* 2 puts, 4 deletes, 1 bump */
	assert_maps_equal_tables(dp, t);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
}

static void test_generation_bumps_only_when_access_may_be_revoked(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	struct vakt_policy_key k = pkey(5, 301, 8080);
	uint64_t g0, g1;

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	base_tables(t);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	g0 = gen_of(dp);
	/* Only additions: nothing can lose access, conntrack stays valid. */
	put_pol(t, 5, 303, 9090, 20);
	put_ip(t, v4(10, 0, 3, 3), 303);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	assert_int_equal(gen_of(dp), g0);
	/* A deletion revokes. */
	assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k), 0);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	g1 = gen_of(dp);
	assert_int_equal(g1, g0 + 1);
	/* An address changing identity revokes too. */
	put_ip(t, v4(10, 0, 3, 3), 304);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	assert_int_equal(gen_of(dp), g1 + 1);
	/*
	 * A new or moved anti-spoofing binding: flows admitted from another
	 * veth before it must be re-checked (established packets skip the
	 * binding check). The same binding again, or its removal, changes nothing.
	 */
	{
		struct vakt_addr a = v4(10, 0, 0, 1);

		assert_int_equal(vakt_dataplane_bind(dp, &a, 7), 0);
		assert_int_equal(gen_of(dp), g1 + 2);
		assert_int_equal(vakt_dataplane_bind(dp, &a, 7), 0);
		assert_int_equal(gen_of(dp), g1 + 2);
		assert_int_equal(vakt_dataplane_bind(dp, &a, 8), 0);
		assert_int_equal(gen_of(dp), g1 + 3);
		assert_int_equal(vakt_dataplane_unbind(dp, &a), 0);
		assert_int_equal(gen_of(dp), g1 + 3);
	}
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
}

static void test_reconcile_after_restart_fixes_a_stale_pinned_map(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new(), *t2 = vakt_tables_new();
	struct vakt_dataplane *dp;
	struct oplog log = {};
	uint64_t g0;

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	base_tables(t);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	g0 = gen_of(dp);
	vakt_dataplane_close(dp, 0); /* the agent dies; the maps stay pinned */

	/* What the restarted agent compiles: some entries kept, some new, some changed, some gone. */
	put_ip(t2, v4(10, 0, 0, 1), 300);
	put_ip(t2, v4(10, 0, 0, 2), 305);       /* changed identity */
	put_ip(t2, v4(10, 0, 5, 5), 306);       /* new */
	put_cidr(t2, v4(0, 0, 0, 0), 0, 0);
	put_pol(t2, 5, 301, 8080, 11);           /* kept */
	put_pol(t2, 8, 306, 22, 15);             /* new */
	put_ep(t2, v4(10, 0, 0, 1), 1, 5, 8, VAKT_EPF_ID(0) | VAKT_EPF_ID(1));
	dp = open_dp(bpffs, 0, 0);
	/* The maps were reused, not recreated. */
	assert_int_equal(map_count(dp, VAKT_MAP_POLICY), 3);
	assert_int_equal(gen_of(dp), g0);
	vakt_dataplane_set_write_hook(dp, record_op, &log);
	assert_int_equal(vakt_dataplane_reconcile(dp, t2, NULL), 0);
	assert_make_before_break(&log, 1);
	assert_maps_equal_tables(dp, t2);
	assert_int_equal(vakt_tables_journal_len(t2), 0);
	assert_true(gen_of(dp) > g0);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
	vakt_tables_free(t2);
}

/*
 * A fresh dataplane (policy map of policy_max entries, 0: the default)
 * holding pod 10.0.0.1 (ep 1) under ingress policy 5, which admits
 * identities 301 and 302 on TCP 80, and pod 10.0.0.2 (ep 2) unisolated.
 */
static struct vakt_dataplane *two_pods_one_policy(char *bpffs, size_t len, uint32_t policy_max,
						  struct vakt_tables *t)
{
	struct vakt_dataplane *dp;

	new_bpffs(bpffs, len);
	dp = open_dp(bpffs, 0, policy_max);
	put_ip(t, v4(10, 0, 0, 1), 300);
	put_pol(t, 5, 301, 80, 1);
	put_pol(t, 5, 302, 80, 2);
	put_ep(t, v4(10, 0, 0, 1), 1, 5, 0, VAKT_EPF_ID(0));
	put_ep(t, v4(10, 0, 0, 2), 2, 0, 0, 0);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	return dp;
}

static void test_full_policy_map_fails_the_endpoint_closed_until_it_fits(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	struct vakt_dataplane_stats st;
	struct vakt_ep_val ep;
	int err;

	(void)state;
	dp = two_pods_one_policy(bpffs, sizeof(bpffs), 4, t);

	/* Pod 2 gets a policy of 4 entries: only 2 fit. */
	for (uint16_t p = 1; p <= 4; p++)
		put_pol(t, 9, 301, p, 10 + p);
	put_ep(t, v4(10, 0, 0, 2), 2, 9, 0, VAKT_EPF_ID(0));
	err = vakt_dataplane_apply(dp, t, NULL);
	assert_true(err == -ENOSPC || err == -E2BIG);
	vakt_dataplane_stats(dp, &st);
	assert_true(st.map_full >= 2);
	assert_int_equal(st.fail_closed, 1);
	ep = ep_in_map(dp, v4(10, 0, 0, 2));
	assert_true(ep.flags & VAKT_EPF_FAIL_CLOSED);
	assert_int_equal(ep.policy[0], 9);
	/* The rest applied: pod 1 is untouched and not failed. */
	ep = ep_in_map(dp, v4(10, 0, 0, 1));
	assert_false(ep.flags & VAKT_EPF_FAIL_CLOSED);

	/* Pod 1 goes away: its entries free room, the retry writes pod 2's policy, the mark lifts. */
	{
		struct vakt_policy_key k1 = pkey(5, 301, 80), k2 = pkey(5, 302, 80);
		struct vakt_addr a = v4(10, 0, 0, 1);

		assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k1), 0);
		assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k2), 0);
		assert_int_equal(vakt_tables_del(t, VAKT_T_ENDPOINTS, &a), 0);
	}
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	ep = ep_in_map(dp, v4(10, 0, 0, 2));
	assert_false(ep.flags & VAKT_EPF_FAIL_CLOSED);
	assert_maps_equal_tables(dp, t);
	vakt_dataplane_stats(dp, &st);
	assert_int_equal(st.fail_closed, 0);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
}

static size_t count_ops(const struct oplog *l, const char *map, int del)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += !strcmp(l->ops[i].map, map) && l->ops[i].del == del;
	return n;
}

/*
 * A deletion the kernel refuses leaves an entry that may still allow what
 * the policy no longer does. The kernel's own refusal here: the policy map
 * frozen (BPF_MAP_FREEZE), so every write through the syscall fails with
 * EPERM while the programs still read it.
 */
static void test_failed_policy_delete_fails_the_endpoint_closed_and_is_retried(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_policy_key k2 = pkey(5, 302, 80);
	struct vakt_policy_val v;
	struct vakt_dataplane_stats st;
	struct vakt_dataplane *dp;
	struct oplog log = {};
	struct vakt_ep_val ep;
	uint64_t gen;
	int fd;

	(void)state;
	dp = two_pods_one_policy(bpffs, sizeof(bpffs), 0, t);
	gen = gen_of(dp);

	/* Identity 302 loses access to pod 1: the entry must go, and cannot. */
	assert_int_equal(vakt_tables_del(t, VAKT_T_POLICY, &k2), 0);
	fd = vakt_dataplane_map_fd(dp, VAKT_MAP_POLICY);
	assert_int_equal(bpf_map_freeze(fd), 0);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), -EPERM);
	assert_int_equal(bpf_map_lookup_elem(fd, &k2, &v), 0); /* still there */
	ep = ep_in_map(dp, v4(10, 0, 0, 1));
	assert_true(ep.flags & VAKT_EPF_FAIL_CLOSED);
	/* the other pod does not use the policy */
	ep = ep_in_map(dp, v4(10, 0, 0, 2));
	assert_false(ep.flags & VAKT_EPF_FAIL_CLOSED);
	/* established flows of pod 1 are re-decided against the closed record */
	assert_true(gen_of(dp) > gen);
	vakt_dataplane_stats(dp, &st);
	assert_int_equal(st.fail_closed, 1);
	assert_true(st.map_errors >= 1);

	/* Nothing new to write: the next apply still retries the deletion, and the mark stays. */
	vakt_dataplane_set_write_hook(dp, record_op, &log);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), -EPERM);
	assert_true(count_ops(&log, VAKT_MAP_POLICY, 1) >= 1);
	ep = ep_in_map(dp, v4(10, 0, 0, 1));
	assert_true(ep.flags & VAKT_EPF_FAIL_CLOSED);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
}

static int veth(const char *name)
{
	int ifindex;

	assert_int_equal(sh("ip link add %s type veth peer name %sp && ip link set %s up && ip link set %sp up",
			    name, name, name, name), 0);
	ifindex = (int)if_nametoindex(name);
	assert_true(ifindex > 0);
	return ifindex;
}

static uint32_t tcx_count(int ifindex, enum vakt_hook hook)
{
	uint32_t ids[16], n = 16;

	assert_int_equal(vakt_tcx_query(ifindex, hook, ids, &n), 0);
	return n;
}

static int load_foreign(const char *name)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_UNSPEC },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name, "GPL", insns, 2, NULL);

	assert_true(fd >= 0);
	return fd;
}

static void attach_restart_cleanup(int force_clsact)
{
	char bpffs[128];
	const char *ifname = force_clsact ? "vkt-mw-c" : "vkt-mw-t";
	struct bpf_tc_hook h = { .sz = sizeof(h), .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
	struct bpf_tc_opts fo = { .sz = sizeof(fo), .handle = 1, .priority = 1 };
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	int ifindex = veth(ifname);
	int ftcx = load_foreign("other_tcx"), fcls = load_foreign("other_cls"), flink;

	/* Foreign programs first: a tcx link and a clsact filter of another tool. */
	flink = bpf_link_create(ftcx, ifindex, (enum bpf_attach_type)VAKT_BPF_TCX_EGRESS, &lo);
	assert_true(flink >= 0);
	h.ifindex = ifindex;
	assert_int_equal(bpf_tc_hook_create(&h), 0);
	h.attach_point = BPF_TC_EGRESS;
	fo.prog_fd = fcls;
	assert_int_equal(bpf_tc_attach(&h, &fo), 0);

	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, force_clsact, 0);
	assert_string_equal(vakt_dataplane_mode(dp), force_clsact ? "clsact" : "tcx");
	base_tables(t);
	assert_int_equal(vakt_dataplane_reconcile(dp, t, NULL), 0);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 0);
	assert_int_equal(vakt_dataplane_attach(dp, ifindex, ifname), 0);
	assert_int_equal(vakt_dataplane_attach(dp, ifindex, ifname), 0);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 1);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS), force_clsact ? 1 : 2);

	/* Restart: the programs stay attached while no agent runs; the new one adopts them. */
	vakt_dataplane_close(dp, 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS), force_clsact ? 1 : 2);
	dp = open_dp(bpffs, force_clsact, 0);
	assert_int_equal(vakt_dataplane_reconcile(dp, t, NULL), 0);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 0); /* the old instance's programs */
	assert_int_equal(vakt_dataplane_attach(dp, ifindex, ifname), 0);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 1);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS), force_clsact ? 1 : 2);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS), force_clsact ? 0 : 1);
	if (force_clsact)
		assert_int_equal(sh("test $(tc filter show dev %s egress | grep -c 'direct-action') = 2", ifname), 0);

	/* Detach, attach again, then clean up: the foreign programs stay. */
	assert_int_equal(vakt_dataplane_detach(dp, ifindex, ifname), 0);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 0);
	assert_int_equal(vakt_dataplane_attach(dp, ifindex, ifname), 0);
	vakt_dataplane_close(dp, 1);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS), 1);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS), 0);
	h.attach_point = BPF_TC_EGRESS;
	fo.prog_fd = 0;
	fo.prog_id = 0;
	assert_int_equal(bpf_tc_query(&h, &fo), 0);
	assert_int_equal((int)fo.prog_id, vakt_prog_id_of_fd(fcls));
	assert_int_equal(sh("tc filter show dev %s ingress | grep -q direct-action", ifname) == 0, 0);
	assert_int_not_equal(access(bpffs, F_OK), 0);

	sh("ip link del %s", ifname);
	close(flink);
	close(ftcx);
	close(fcls);
	vakt_tables_free(t);
}

static void test_tcx_attach_adopt_after_restart_and_cleanup(void **state)
{
	(void)state;
	attach_restart_cleanup(0);
}

static void test_clsact_attach_adopt_after_restart_and_cleanup(void **state)
{
	(void)state;
	attach_restart_cleanup(1);
}

static void test_uplink_programs_attach_and_detach(void **state)
{
	char bpffs[128];
	struct vakt_dataplane *dp;
	int ifindex = veth("vkt-mw-u");

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	assert_int_equal(vakt_dataplane_attach_uplink(dp, ifindex, "vkt-mw-u"), 0);
	assert_int_equal(vakt_dataplane_uplink_attached(dp, ifindex), 1);
	assert_int_equal(vakt_dataplane_attached(dp, ifindex), 0);
	assert_int_equal(vakt_dataplane_detach_uplink(dp, ifindex, "vkt-mw-u"), 0);
	assert_int_equal(vakt_dataplane_uplink_attached(dp, ifindex), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS), 0);
	/* A vanished interface: attach says so, detach is fine. */
	sh("ip link del vkt-mw-u");
	assert_int_equal(vakt_dataplane_attach(dp, ifindex, "vkt-mw-u"), -ENODEV);
	assert_int_equal(vakt_dataplane_detach(dp, ifindex, "vkt-mw-u"), 0);
	vakt_dataplane_close(dp, 1);
}

struct ctr_sum {
	uint64_t packets[4], bytes[4];
	int calls;
};

static int on_counter(void *arg, uint32_t ep_id, int dir, int reason, uint64_t packets, uint64_t bytes)
{
	struct ctr_sum *s = arg;
	int i = ep_id == 3 && dir == VAKT_DIR_EGRESS && reason == VAKT_R_POLICY_DENIED ? 0 :
		ep_id == 1023 && dir == VAKT_DIR_INGRESS && reason == VAKT_R_POLICY_ALLOW ? 1 : 3;

	s->packets[i] += packets;
	s->bytes[i] += bytes;
	s->calls++;
	return 0;
}

static void test_counters_are_summed_over_cpus(void **state)
{
	char bpffs[128];
	struct vakt_dataplane *dp;
	int ncpus = libbpf_num_possible_cpus();
	struct vakt_counter *v = calloc((size_t)ncpus, sizeof(*v));
	struct ctr_sum s = {};
	uint32_t k;
	int fd;

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	fd = vakt_dataplane_map_fd(dp, VAKT_MAP_COUNTERS);
	for (int c = 0; c < ncpus; c++)
		v[c] = (struct vakt_counter){ .packets = 2, .bytes = 100 };
	k = vakt_counter_index(3, VAKT_DIR_EGRESS, VAKT_R_POLICY_DENIED);
	assert_int_equal(bpf_map_update_elem(fd, &k, v, BPF_ANY), 0);
	k = vakt_counter_index(1023, VAKT_DIR_INGRESS, VAKT_R_POLICY_ALLOW);
	assert_int_equal(bpf_map_update_elem(fd, &k, v, BPF_ANY), 0);
	assert_int_equal(vakt_dataplane_counters(dp, on_counter, &s), 0);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.packets[0], 2 * (uint64_t)ncpus);
	assert_int_equal(s.bytes[1], 100 * (uint64_t)ncpus);
	assert_int_equal(s.packets[3], 0);
	assert_true(vakt_dataplane_events_fd(dp) >= 0);
	vakt_dataplane_close(dp, 1);
	free(v);
}

struct ev_seen {
	int n;
	struct vakt_drop_event last;
};

static void on_event(void *arg, const struct vakt_drop_event *e)
{
	struct ev_seen *s = arg;

	s->n++;
	s->last = *e;
}

static int on_drop_counter(void *arg, uint32_t ep_id, int dir, int reason, uint64_t packets, uint64_t bytes)
{
	uint64_t *n = arg;

	(void)bytes;
	if (ep_id == 1 && dir == VAKT_DIR_EGRESS && reason == VAKT_R_FAIL_CLOSED)
		*n += packets;
	return 0;
}

/* Ethernet + IPv4 + UDP from 10.0.0.1:1234 to 10.0.0.2:53. */
static size_t udp_packet(unsigned char *buf)
{
	static const unsigned char pkt[] = {
		0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00,                  /* eth */
		0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, /* ipv4 */
		0x04, 0xd2, 0, 53, 0, 12, 0, 0,                                   /* udp */
		'v', 'a', 'k', 't',
	};

	memcpy(buf, pkt, sizeof(pkt));
	return sizeof(pkt);
}

static void test_drops_of_a_failed_closed_endpoint_reach_events_and_counters(void **state)
{
	char bpffs[128];
	struct vakt_tables *t = vakt_tables_new();
	struct vakt_dataplane *dp;
	unsigned char pkt[128];
	LIBBPF_OPTS(bpf_test_run_opts, ro);
	struct ev_seen ev = {};
	uint64_t drops = 0;

	(void)state;
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	put_ep(t, v4(10, 0, 0, 1), 1, 0, 5, VAKT_EPF_ID(1) | VAKT_EPF_FAIL_CLOSED);
	assert_int_equal(vakt_dataplane_apply(dp, t, NULL), 0);
	ro.data_in = pkt;
	ro.data_size_in = (uint32_t)udp_packet(pkt);
	assert_int_equal(bpf_prog_test_run_opts(vakt_dataplane_prog_fd(dp, VAKT_PROG_FROM_POD), &ro), 0);
	assert_int_equal((int)ro.retval, VAKT_TC_DROP);
	assert_int_equal(vakt_dataplane_events_consume(dp, on_event, &ev), 1);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.last.reason, VAKT_R_FAIL_CLOSED);
	assert_int_equal(ev.last.dir, VAKT_DIR_EGRESS);
	assert_int_equal(ev.last.ep_id, 1);
	assert_int_equal(ntohs(ev.last.dport), 53);
	assert_int_equal(vakt_dataplane_counters(dp, on_drop_counter, &drops), 0);
	assert_int_equal(drops, 1);
	vakt_dataplane_close(dp, 1);
	vakt_tables_free(t);
}

static const char manifests[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod, labels: {app: web}}\n"
	"spec: {nodeName: n1}\nstatus: {podIP: 10.1.0.2}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: prod, labels: {app: db}}\n"
	"spec: {nodeName: n1}\nstatus: {podIP: 10.1.0.3}\n---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db-in, namespace: prod}\n"
	"spec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n"
	"  - from: [{podSelector: {matchLabels: {app: web}}}]\n    ports: [{port: 5432}]\n";

struct meta_seen {
	int web, db, other;
};

static void scan_meta(struct vakt_dataplane *dp, struct meta_seen *m)
{
	int fd = vakt_dataplane_map_fd(dp, VAKT_MAP_EP_META);
	uint32_t cur, next, *prev = NULL;
	struct vakt_ep_meta v;

	memset(m, 0, sizeof(*m));
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		assert_int_equal(bpf_map_lookup_elem(fd, &next, &v), 0);
		if (!strcmp(v.ns, "prod") && !strcmp(v.name, "web"))
			m->web++;
		else if (!strcmp(v.ns, "prod") && !strcmp(v.name, "db"))
			m->db++;
		else
			m->other++;
		cur = next;
		prev = &cur;
	}
}

static void test_compiled_store_reaches_the_maps_with_endpoint_names(void **state)
{
	struct vakt_compiler_opts co = { .node = "n1" };
	struct vakt_objset set = {};
	struct vakt_error e = {};
	struct vakt_store *s = vakt_store_new();
	struct vakt_compiler *c;
	struct vakt_dataplane *dp;
	struct meta_seen m;
	char bpffs[128];
	int ncpus = libbpf_num_possible_cpus();
	struct vakt_counter *v = calloc((size_t)ncpus, sizeof(*v));
	uint32_t web_ep, k;

	(void)state;
	assert_int_equal(vakt_load_buffer(&set, manifests, sizeof(manifests) - 1, "test.yaml", NULL, &e), 0);
	assert_int_equal(vakt_objset_to_store(&set, s), 0);
	c = vakt_compiler_new(s, &co);
	assert_non_null(c);
	assert_int_equal(vakt_compiler_full(c), 0);
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	assert_int_equal(vakt_dataplane_apply(dp, vakt_compiler_tables(c), c), 0);
	assert_maps_equal_tables(dp, vakt_compiler_tables(c));
	assert_true(vakt_tables_count(vakt_compiler_tables(c), VAKT_T_POLICY) > 0);
	scan_meta(dp, &m);
	assert_int_equal(m.web, 1);
	assert_int_equal(m.db, 1);
	assert_int_equal(m.other, 0);

	/* Traffic counted for the web pod. */
	web_ep = ep_in_map(dp, v4(10, 1, 0, 2)).ep_id;
	assert_true(web_ep > 0);
	for (int i = 0; i < ncpus; i++)
		v[i] = (struct vakt_counter){ .packets = 1, .bytes = 60 };
	k = vakt_counter_index(web_ep, VAKT_DIR_EGRESS, VAKT_R_POLICY_ALLOW);
	assert_int_equal(bpf_map_update_elem(vakt_dataplane_map_fd(dp, VAKT_MAP_COUNTERS), &k, v, BPF_ANY), 0);

	/* The web pod goes: its endpoint, its address, its name and its counters leave the maps. */
	assert_int_equal(vakt_store_del_pod(s, "prod", "web"), 0);
	assert_int_equal(vakt_dataplane_apply(dp, vakt_compiler_tables(c), c), 0);
	assert_maps_equal_tables(dp, vakt_compiler_tables(c));
	scan_meta(dp, &m);
	assert_int_equal(m.web, 0);
	assert_int_equal(m.db, 1);
	assert_int_equal(bpf_map_lookup_elem(vakt_dataplane_map_fd(dp, VAKT_MAP_COUNTERS), &k, v), 0);
	for (int i = 0; i < ncpus; i++)
		assert_int_equal(v[i].packets, 0);
	free(v);
	vakt_dataplane_close(dp, 1);
	vakt_compiler_free(c);
	vakt_store_free(s);
}

/* --- the restart seed ends with the first successful write, whichever kind ------------ */

static const char seed_ns[] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n";

static void load_pod(struct vakt_store *s, const char *name, const char *ip)
{
	char buf[256];
	struct vakt_objset set = {};
	struct vakt_error e = {};
	int n = snprintf(buf, sizeof(buf),
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: prod, "
			 "labels: {app: %s}}\nspec: {nodeName: n1}\nstatus: {podIP: %s}\n",
			 name, name, ip);

	assert_int_equal(vakt_load_buffer(&set, buf, (size_t)n, "pod.yaml", NULL, &e), 0);
	assert_int_equal(vakt_objset_to_store(&set, s), 0);
}

static struct vakt_store *seed_store(int with_b)
{
	struct vakt_store *s = vakt_store_new();
	struct vakt_objset set = {};
	struct vakt_error e = {};

	assert_non_null(s);
	assert_int_equal(vakt_load_buffer(&set, seed_ns, sizeof(seed_ns) - 1, "ns.yaml", NULL, &e), 0);
	assert_int_equal(vakt_objset_to_store(&set, s), 0);
	load_pod(s, "a", "10.1.0.2");
	if (with_b)
		load_pod(s, "b", "10.1.0.3");
	return s;
}

/*
 * A restarted agent: the previous one pinned pods a and b; b is gone now. The
 * compiler is seeded, so b's ep_id stays reserved until the maps have been
 * written; then it is free, and a new pod c gets it (the lowest free id).
 * Returns c's ep_id and sets *b_ep to the id b had.
 */
static uint32_t restart_then_add_c(int through_vaktd, uint32_t *b_ep)
{
	struct vakt_compiler_opts co = { .node = "n1" };
	struct vakt_compiler_seed seed = { 0 };
	struct vakt_store *s = seed_store(1);
	struct vakt_compiler *c = vakt_compiler_new(s, &co);
	struct vakt_dataplane *dp;
	char bpffs[128];
	uint32_t c_ep;

	assert_non_null(c);
	assert_int_equal(vakt_compiler_full(c), 0);
	new_bpffs(bpffs, sizeof(bpffs));
	dp = open_dp(bpffs, 0, 0);
	assert_int_equal(vakt_dataplane_reconcile(dp, vakt_compiler_tables(c), c), 0);
	*b_ep = ep_in_map(dp, v4(10, 1, 0, 3)).ep_id;
	assert_true(*b_ep > ep_in_map(dp, v4(10, 1, 0, 2)).ep_id);
	vakt_dataplane_close(dp, 0);
	vakt_compiler_free(c);
	vakt_store_free(s);

	s = seed_store(0);
	c = vakt_compiler_new(s, &co);
	assert_non_null(c);
	dp = open_dp(bpffs, 0, 0);
	assert_int_equal(vakt_dataplane_pinned_ids(dp, &seed), 0);
	assert_int_equal(vakt_compiler_seed(c, &seed), 0);
	assert_int_equal(vakt_compiler_full(c), 0);
	/* The first write after the restart is an apply (which reconciles internally). */
	if (through_vaktd)
		assert_int_equal(vaktd_write_maps(dp, c, 0), 0);
	else
		assert_int_equal(vakt_dataplane_apply(dp, vakt_compiler_tables(c), c), 0);
	assert_maps_equal_tables(dp, vakt_compiler_tables(c));

	load_pod(s, "c", "10.1.0.4");
	assert_int_equal(vakt_dataplane_apply(dp, vakt_compiler_tables(c), c), 0);
	c_ep = ep_in_map(dp, v4(10, 1, 0, 4)).ep_id;
	vakt_dataplane_close(dp, 1);
	vakt_compiler_free(c);
	vakt_store_free(s);
	return c_ep;
}

static void test_first_write_through_apply_releases_the_restart_seed(void **state)
{
	uint32_t b_ep, c_ep;

	(void)state;
	c_ep = restart_then_add_c(1, &b_ep);
	assert_int_equal(c_ep, b_ep);
}

/* The control: without the release the id stays reserved, so the test above can fail. */
static void test_seed_keeps_ids_reserved_until_released(void **state)
{
	uint32_t b_ep, c_ep;

	(void)state;
	c_ep = restart_then_add_c(0, &b_ep);
	assert_true(c_ep != 0);
	assert_int_not_equal(c_ep, b_ep);
}

static void cleanup(void)
{
	sh("rm -rf /sys/fs/bpf/vkt-mw-%d-*", (int)getpid());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_writes_the_journal_and_later_changes),
		cmocka_unit_test(test_apply_orders_writes_make_before_break),
		cmocka_unit_test(test_generation_bumps_only_when_access_may_be_revoked),
		cmocka_unit_test(test_reconcile_after_restart_fixes_a_stale_pinned_map),
		cmocka_unit_test(test_full_policy_map_fails_the_endpoint_closed_until_it_fits),
		cmocka_unit_test(test_failed_policy_delete_fails_the_endpoint_closed_and_is_retried),
		cmocka_unit_test(test_tcx_attach_adopt_after_restart_and_cleanup),
		cmocka_unit_test(test_clsact_attach_adopt_after_restart_and_cleanup),
		cmocka_unit_test(test_uplink_programs_attach_and_detach),
		cmocka_unit_test(test_counters_are_summed_over_cpus),
		cmocka_unit_test(test_compiled_store_reaches_the_maps_with_endpoint_names),
		cmocka_unit_test(test_drops_of_a_failed_closed_endpoint_reach_events_and_counters),
		cmocka_unit_test(test_first_write_through_apply_releases_the_restart_seed),
		cmocka_unit_test(test_seed_keeps_ids_reserved_until_released),
	};

	if (vt_private_netns("test_mapwriter"))
		return 1;
	atexit(cleanup);
	vakt_log_hook_libbpf();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
