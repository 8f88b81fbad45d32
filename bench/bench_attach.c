// SPDX-License-Identifier: Apache-2.0
/*
 * bench_attach: how fast a new pod veth gets its programs, with the agent's
 * loop running as in vaktd: rtnetlink notification -> vakt_dataplane_attach().
 * Creates N veth pairs (default 100) one by one in a private network
 * namespace and reports, per mode (tcx, clsact), the median and p99 of
 *   created->attached   from just before the RTM_NEWLINK request to both programs on
 *   event->attached     from the netlink notification to both programs on
 * Target: created->attached p99 <= 100 ms.  Usage: bench_attach [N]
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "dataplane.h"
#include "log.h"
#include "loop.h"
#include "netlink.h"

#define MAX_N 2000

struct bench {
	struct mnl_socket *rtnl;
	struct vakt_loop *loop;
	struct vakt_dataplane *dp;
	int n, created, attached, failed;
	uint64_t t_create[MAX_N], t_event[MAX_N], t_attached[MAX_N];
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Our veths are "vkt-b-<i>"; the peers "vkt-bp-<i>" stay unattached, as in a pod. */
static int bench_index(const char *name)
{
	int i;

	if (sscanf(name, "vkt-b-%d", &i) != 1 || i < 0 || i >= MAX_N)
		return -1;
	return i;
}

static void on_link(void *arg, int ifindex, const char *name, const char *kind, int up,
		    int removed)
{
	struct bench *b = arg;
	int i = bench_index(name);

	(void)up;
	if (i < 0 || removed || strcmp(kind, "veth") || b->t_attached[i])
		return;
	b->t_event[i] = now_us();
	if (vakt_dataplane_attach(b->dp, ifindex, name)) {
		b->failed++;
		return;
	}
	b->t_attached[i] = now_us();
	if (++b->attached == b->n)
		vakt_loop_stop(b->loop);
}

/* RTM_NEWLINK for a veth pair, in-process: no fork/exec noise between "created" and the
 * kernel creating it. Returns 0 once the kernel acknowledged. */
static int veth_add(struct mnl_socket *nl, const char *name, const char *peer)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi, *pifi;
	struct nlattr *linkinfo, *data, *peer_attr;
	ssize_t n;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer_attr = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_nest_end(nlh, peer_attr);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	return mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), NULL, NULL) < 0 ? -errno : 0;
}

static void create_next(struct vakt_loop *l, void *arg)
{
	struct bench *b = arg;
	char name[24], peer[24]; /* i < MAX_N keeps the names within IF_NAMESIZE */
	int i = b->created;

	(void)l;
	if (i >= b->n)
		return;
	snprintf(name, sizeof(name), "vkt-b-%d", i);
	snprintf(peer, sizeof(peer), "vkt-bp-%d", i);
	b->t_create[i] = now_us();
	if (veth_add(b->rtnl, name, peer))
		b->failed++;
	b->created++;
}

static void give_up(struct vakt_loop *l, void *arg)
{
	(void)arg;
	vakt_loop_stop(l);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *mode, const char *what, uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("bench_attach mode=%s metric=%s n=%d median_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", mode,
	       what, n, v[n / 2] / 1000.0, v[(n * 99) / 100 >= n ? n - 1 : (n * 99) / 100] / 1000.0,
	       v[n - 1] / 1000.0);
}

static int run(int n, int force_clsact)
{
	static struct bench b; /* large arrays: not on the stack */
	struct vakt_dataplane_opts o = { .force_clsact = force_clsact };
	struct vakt_nl_cbs cbs = { .arg = &b, .link = on_link };
	uint64_t total[MAX_N], ev[MAX_N];
	char bpffs[64];
	struct vakt_nl *nl;
	int err = 0, ok = 0;

	memset(&b, 0, sizeof(b));
	b.n = n;
	snprintf(bpffs, sizeof(bpffs), "/sys/fs/bpf/vkt-bench-%d", (int)getpid());
	o.bpffs = bpffs;
	b.loop = vakt_loop_new();
	b.rtnl = mnl_socket_open(NETLINK_ROUTE);
	if (!b.rtnl || mnl_socket_bind(b.rtnl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "bench_attach: rtnetlink socket: %s\n", strerror(errno));
		return 1;
	}
	b.dp = vakt_dataplane_open(&o, &err);
	if (!b.loop || !b.dp) {
		fprintf(stderr, "bench_attach: dataplane open failed: %d\n", err);
		return 1;
	}
	nl = vakt_nl_open(b.loop, &cbs, &err);
	if (!nl) {
		fprintf(stderr, "bench_attach: netlink open failed: %d\n", err);
		return 1;
	}
	/*
	 * One veth every 50 ms, slower than one tcx attach (two BPF_LINK_CREATEs, each waiting
	 * for an RCU grace period, ~15 ms apiece here), so the figure is the latency of one
	 * attach, not of a queue the benchmark itself builds up.
	 */
	vakt_loop_add_timer(b.loop, 10, 50, create_next, &b);
	vakt_loop_add_timer(b.loop, 20000 + (uint64_t)n * 200, 0, give_up, &b);
	vakt_loop_run(b.loop);
	for (int i = 0; i < n; i++) {
		if (!b.t_attached[i])
			continue;
		total[ok] = b.t_attached[i] - b.t_create[i];
		ev[ok] = b.t_attached[i] - b.t_event[i];
		ok++;
	}
	if (ok)
		report(vakt_dataplane_mode(b.dp), "created_to_attached", total, ok);
	if (ok)
		report(vakt_dataplane_mode(b.dp), "event_to_attached", ev, ok);
	vakt_nl_close(nl);
	for (int i = 0; i < b.created; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "ip link del vkt-b-%d 2>/dev/null", i);
		if (system(cmd)) {
			/* already gone */
		}
	}
	vakt_dataplane_close(b.dp, 1);
	vakt_loop_free(b.loop);
	mnl_socket_close(b.rtnl);
	if (ok != n || b.failed) {
		fprintf(stderr, "bench_attach: %d of %d attached, %d failures\n", ok, n, b.failed);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	int rc;

	if (n <= 0 || n > MAX_N) {
		fprintf(stderr, "usage: bench_attach [N<=%d]\n", MAX_N);
		return 2;
	}
	if (geteuid() != 0 || unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench_attach: needs root for a private network namespace\n");
		return 1;
	}
	vakt_log_set_level(VAKT_LOG_WARN);
	vakt_log_hook_libbpf();
	if (system("ip link set lo up"))
		return 1;
	rc = run(n, 0);
	rc |= run(n, 1);
	return rc;
}
