// SPDX-License-Identifier: Apache-2.0
/*
 * Services and NAT on real traffic: a node namespace routing (ptp, proxy
 * ARP) between pod namespaces on veth and an outside namespace on an
 * uplink, kube-proxy-style iptables DNAT for two ClusterIPs and MASQUERADE
 * toward the outside. The datapath is loaded through tests/lib/bpfload,
 * its maps filled directly, its programs attached with bpf_tc_attach:
 * vakt_from_pod/vakt_to_pod on the pod veths, vakt_node_egress/ingress on
 * the uplink. Real UDP and TCP sockets show:
 *   - egress allowing only the DNS pods on 53 resolves through the ClusterIP;
 *   - a denied backend stays denied through a ClusterIP (and works for an
 *     unrestricted pod, so the Service itself is fine);
 *   - egress ipBlock allow and deny toward outside addresses hold under
 *     masquerade, replies included;
 *   - ingress policy sees the client pod's address behind the ClusterIP;
 *   - the client's ingress is isolated (it admits nothing), so every reply
 *     it gets is recognised as one; a UDP stream a backend sends on alone
 *     stops reaching the client once the client's egress is revoked.
 * Clients and servers are forked children of the test that enter the pod
 * namespaces (setns), with 2 s timeouts on every step.
 * Needs root, iproute2 and iptables; fails when they are missing.
 * Namespaces and servers are removed on every exit path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../lib/bpfload.h"
#include "../lib/pkt.h"
#include "../lib/testsys.h"

/* Identities, endpoints and policies of the scenario. */
#define ID_CLIENT 300
#define ID_DNS 301
#define ID_DENIED 302
#define ID_OPEN 303
#define EP_DNS 2
#define EP_CLIENT 3
#define EP_DENIED 4
#define EP_OPEN 5
#define POL_CLIENT_EG 50 /* DNS pods on UDP/TCP 53, 198.18.0.2/32 on TCP 80 */
#define POL_DNS_IN 60    /* the client identity on UDP/TCP 53 */
#define POL_CLIENT_IN 70 /* no entries: the client admits nothing but replies */
#define STREAM_TICKS 30  /* datagrams a "stream" request gets, STREAM_GAP_MS apart */
#define STREAM_GAP_MS 50

#define DNS_VIP "10.96.0.10"
#define WEB_VIP "10.96.0.20"
#define OUT_OK "198.18.0.2"
#define OUT_NO "198.18.0.3"

static char pfx[32];    /* per-run netns prefix: concurrent runs never collide */
static char pidfile[64];
static struct vakt_bpf *dp;

struct pod {
	const char *name, *ip, *host_if;
	uint32_t ep, id;
};

static const struct pod pods[] = {
	{ "dns", "10.244.0.2", "h-dns", EP_DNS, ID_DNS },
	{ "cli", "10.244.0.3", "h-cli", EP_CLIENT, ID_CLIENT },
	{ "deny", "10.244.0.4", "h-deny", EP_DENIED, ID_DENIED },
	{ "open", "10.244.0.5", "h-open", EP_OPEN, ID_OPEN },
};
#define NPODS (sizeof(pods) / sizeof(pods[0]))

#define sh vt_sh

static void cleanup(void)
{
	/* VAKT_TEST_KEEP_NS=1 leaves everything in place for debugging (programs stay attached) */
	if (!pfx[0] || getenv("VAKT_TEST_KEEP_NS"))
		return;
	FILE *f = fopen(pidfile, "r");
	int pid;

	/* our server children only, by the pids we recorded */
	while (f && fscanf(f, "%d", &pid) == 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (f)
		fclose(f);
	unlink(pidfile);
	sh("for n in $(ip netns list | awk '{print $1}' | grep '^%s'); do ip netns del \"$n\"; done",
	   pfx);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int in_ns(const char *ns, int (*fn)(void *), void *arg)
{
	char path[128];
	int self, fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s%s", pfx, ns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "test_nat: cannot enter %s: %s\n", path, strerror(errno));
		rc = -1;
		goto out;
	}
	rc = fn(arg);
	if (setns(self, CLONE_NEWNET))
		abort(); /* the rest of the test would run in the wrong namespace */
out:
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return rc;
}

static int tc_attach(const char *ifname, enum bpf_tc_attach_point ap, int prog_fd)
{
	int ifindex = (int)if_nametoindex(ifname);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd);
	int err;

	if (!ifindex) {
		fprintf(stderr, "test_nat: no interface %s\n", ifname);
		return -ENODEV;
	}
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		fprintf(stderr, "test_nat: clsact on %s failed err=%d\n", ifname, err);
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		fprintf(stderr, "test_nat: attach on %s failed err=%d\n", ifname, err);
	return err;
}

static int attach_all(void *arg)
{
	size_t i;
	int err = 0;

	(void)arg;
	for (i = 0; i < NPODS && !err; i++) {
		err = tc_attach(pods[i].host_if, BPF_TC_INGRESS, dp_prog_fd(dp, DP_FROM_POD));
		if (!err)
			err = tc_attach(pods[i].host_if, BPF_TC_EGRESS, dp_prog_fd(dp, DP_TO_POD));
	}
	if (!err)
		err = tc_attach("up0", BPF_TC_EGRESS, dp_prog_fd(dp, DP_NODE_EGRESS));
	if (!err)
		err = tc_attach("up0", BPF_TC_INGRESS, dp_prog_fd(dp, DP_NODE_INGRESS));
	return err;
}

static int build_topology(void)
{
	size_t i;
	int rc = 0;

	rc |= sh("ip netns add %snode && ip netns add %sout", pfx, pfx);
	rc |= sh("ip netns exec %snode sysctl -qw net.ipv4.ip_forward=1", pfx);
	rc |= sh("ip netns exec %snode ip link set lo up", pfx);
	for (i = 0; i < NPODS && !rc; i++) {
		const struct pod *p = &pods[i];

		rc |= sh("ip netns add %s%s", pfx, p->name);
		/* fixed MACs and static neighbours: no ARP timing in the verdicts under test */
		rc |= sh("ip -n %snode link add %s address 02:00:00:00:01:%02x type veth peer name eth0 "
			 "address 02:00:00:00:02:%02x netns %s%s",
			 pfx, p->host_if, (unsigned int)i, (unsigned int)i, pfx, p->name);
		rc |= sh("ip -n %s%s link set lo up && ip -n %s%s link set eth0 up && "
			 "ip -n %s%s addr add %s/32 dev eth0 && "
			 "ip -n %s%s route add 169.254.1.1 dev eth0 scope link && "
			 "ip -n %s%s route add default via 169.254.1.1 dev eth0",
			 pfx, p->name, pfx, p->name, pfx, p->name, p->ip, pfx, p->name, pfx,
			 p->name);
		rc |= sh("ip -n %snode link set %s up && "
			 "ip netns exec %snode sysctl -qw net.ipv4.conf.%s.proxy_arp=1 && "
			 "ip netns exec %snode sysctl -qw net.ipv4.neigh.%s.proxy_delay=0 && "
			 "ip -n %snode route add %s/32 dev %s",
			 pfx, p->host_if, pfx, p->host_if, pfx, p->host_if, pfx, p->ip, p->host_if);
		rc |= sh("ip -n %s%s neigh replace 169.254.1.1 lladdr 02:00:00:00:01:%02x dev eth0 "
			 "nud permanent && ip -n %snode neigh replace %s lladdr 02:00:00:00:02:%02x "
			 "dev %s nud permanent",
			 pfx, p->name, (unsigned int)i, pfx, p->ip, (unsigned int)i, p->host_if);
	}
	/* The outside: no route back to the pods, only masquerade reaches it. */
	rc |= sh("ip -n %snode link add up0 type veth peer name eth0 netns %sout", pfx, pfx);
	rc |= sh("ip -n %snode addr add 198.18.0.1/24 dev up0 && ip -n %snode link set up0 up", pfx,
		 pfx);
	/* proxy ARP answers for 169.254.1.1 only if the node routes it elsewhere: a default route */
	rc |= sh("ip -n %snode route add default via %s dev up0", pfx, OUT_NO);
	rc |= sh("ip -n %sout link set lo up && ip -n %sout link set eth0 up && "
		 "ip -n %sout addr add %s/24 dev eth0 && ip -n %sout addr add %s/24 dev eth0",
		 pfx, pfx, pfx, OUT_OK, pfx, OUT_NO);
	/* kube-proxy's rules, reduced to what matters here */
	rc |= sh("ip netns exec %snode iptables -t nat -A PREROUTING -d %s -p udp --dport 53 "
		 "-j DNAT --to-destination 10.244.0.2:53",
		 pfx, DNS_VIP);
	rc |= sh("ip netns exec %snode iptables -t nat -A PREROUTING -d %s -p tcp --dport 53 "
		 "-j DNAT --to-destination 10.244.0.2:53",
		 pfx, DNS_VIP);
	rc |= sh("ip netns exec %snode iptables -t nat -A PREROUTING -d %s -p tcp --dport 80 "
		 "-j DNAT --to-destination 10.244.0.4:8080",
		 pfx, WEB_VIP);
	rc |= sh("ip netns exec %snode iptables -t nat -A POSTROUTING -s 10.244.0.0/16 -o up0 "
		 "-j MASQUERADE",
		 pfx);
	return rc;
}

static int enter_ns(const char *ns)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s%s", pfx, ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

/* A server child in namespace ns: answers every TCP connection or UDP datagram on port with word. */
static void server_loop(int type, uint16_t port, const char *word)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[256];
	int one = 1, s, c;

	s = socket(AF_INET, type, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) || (type == SOCK_STREAM && listen(s, 16)))
		_exit(1);
	for (;;) {
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);

		if (type == SOCK_DGRAM) {
			ssize_t n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&peer, &pl);

			if (n <= 0)
				continue;
			buf[n] = 0;
			/* "stream": the backend sends on alone, as a media or log stream does */
			for (int i = 0; !strcmp(buf, "stream") && i < STREAM_TICKS; i++) {
				sendto(s, "tick", 4, 0, (struct sockaddr *)&peer, pl);
				usleep(STREAM_GAP_MS * 1000);
			}
			if (strcmp(buf, "stream"))
				sendto(s, word, strlen(word), 0, (struct sockaddr *)&peer, pl);
			continue;
		}
		c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		if (read(c, buf, sizeof(buf)) > 0 && write(c, word, strlen(word)) < 0)
			(void)0;
		close(c);
	}
}

static int serve(const char *ns, int type, uint16_t port, const char *word)
{
	pid_t pid = fork();
	FILE *f;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (enter_ns(ns))
			_exit(1);
		server_loop(type, port, word);
	}
	f = fopen(pidfile, "a");
	if (!f)
		return -1;
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	return 0;
}

static int start_servers(void)
{
	int rc = 0;

	rc |= serve("dns", SOCK_DGRAM, 53, "pong-udp53");
	rc |= serve("dns", SOCK_STREAM, 53, "pong-tcp53");
	rc |= serve("deny", SOCK_STREAM, 8080, "pong-web");
	rc |= serve("out", SOCK_STREAM, 80, "pong-out");
	/* wait until they listen */
	rc |= sh("for i in $(seq 50); do "
		 "ip netns exec %sdns ss -lun | grep -q ':53 ' && "
		 "ip netns exec %sdns ss -ltn | grep -q ':53 ' && "
		 "ip netns exec %sdeny ss -ltn | grep -q ':8080 ' && "
		 "ip netns exec %sout ss -ltn | grep -q ':80 ' && exit 0; sleep 0.1; done; exit 1",
		 pfx, pfx, pfx, pfx);
	return rc;
}

/* Client child: 0 if the answer was word. Timeouts bound every step (2 s). */
static int client(int type, const char *ip, uint16_t port, const char *word)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 2 };
	char buf[256];
	ssize_t n;
	int s;

	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return 1;
	s = socket(AF_INET, type, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return 1;
	/* SO_SNDTIMEO bounds connect() too */
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) || write(s, "ping", 4) != 4)
		return 1;
	n = read(s, buf, sizeof(buf) - 1);
	close(s);
	if (n <= 0)
		return 1;
	buf[n] = 0;
	return strcmp(buf, word) != 0;
}

static void fill_maps(void)
{
	size_t i;

	for (i = 0; i < NPODS; i++) {
		struct vakt_ep_val ep = { .ep_id = pods[i].ep, .identity = pods[i].id };

		if (pods[i].ep == EP_CLIENT) {
			ep.policy[VAKT_DIR_INGRESS] = POL_CLIENT_IN;
			ep.policy[VAKT_DIR_EGRESS] = POL_CLIENT_EG;
			ep.flags = VAKT_EPF_ID(VAKT_DIR_EGRESS) | VAKT_EPF_CLASS(VAKT_DIR_EGRESS);
		}
		if (pods[i].ep == EP_DNS) {
			ep.policy[VAKT_DIR_INGRESS] = POL_DNS_IN;
			ep.flags = VAKT_EPF_ID(VAKT_DIR_INGRESS);
		}
		assert_int_equal(dp_put_endpoint(dp, pods[i].ip, &ep), 0);
		assert_int_equal(dp_put_ipcache(dp, pods[i].ip, pods[i].id), 0);
	}
	assert_int_equal(dp_put_ipcache(dp, "198.18.0.1", VAKT_ID_HOST), 0);
	assert_int_equal(dp_put_cidr(dp, "::", 0, 0), 0);
	assert_int_equal(dp_put_cidr(dp, OUT_OK, 128, 1), 0);
	assert_int_equal(dp_put_policy(dp, POL_CLIENT_EG, ID_DNS, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 1), 0);
	assert_int_equal(dp_put_policy(dp, POL_CLIENT_EG, ID_DNS, IPPROTO_TCP, 53, VAKT_PLEN_FULL, 2), 0);
	assert_int_equal(dp_put_policy(dp, POL_CLIENT_EG, VAKT_PEER_CLASS | 1, IPPROTO_TCP, 80,
				       VAKT_PLEN_FULL, 3), 0);
	assert_int_equal(dp_put_policy(dp, POL_DNS_IN, ID_CLIENT, IPPROTO_UDP, 53, VAKT_PLEN_FULL, 4), 0);
	assert_int_equal(dp_put_policy(dp, POL_DNS_IN, ID_CLIENT, IPPROTO_TCP, 53, VAKT_PLEN_FULL, 5), 0);
	assert_int_equal(dp_set_gen(dp, 1), 0);
}

static int group_setup(void **state)
{
	struct dp_cfg cfg = { 0 };

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_nat: needs root\n");
		return -1;
	}
	if (sh("command -v iptables >/dev/null && command -v ip >/dev/null && "
	       "command -v ss >/dev/null")) {
		fprintf(stderr, "test_nat: needs iptables and iproute2\n");
		return -1;
	}
	snprintf(pfx, sizeof(pfx), "vkt-dp%d-", (int)getpid() % 100000);
	snprintf(pidfile, sizeof(pidfile), "/tmp/%spids", pfx);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	if (build_topology()) {
		fprintf(stderr, "test_nat: building the namespaces failed\n");
		return -1;
	}
	if (dp_open(&dp, &cfg)) {
		fprintf(stderr, "test_nat: loading the datapath failed\n");
		return -1;
	}
	if (in_ns("node", attach_all, NULL))
		return -1;
	if (start_servers()) {
		fprintf(stderr, "test_nat: servers did not start\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cleanup();
	if (dp)
		dp_close(dp);
	dp = NULL;
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	if (dp_clear_map(dp, "ct") || dp_clear_map(dp, "counters") || dp_clear_map(dp, "policy"))
		return -1;
	fill_maps();
	return 0;
}

/* Runs a socat client in pod ns; 1 if the expected answer came back. */
static void dump_counters(void);

/* 1 if a client in pod ns got word back from ip:port over proto ("tcp"/"udp"). */
static int ask(const char *ns, const char *proto, const char *ip, uint16_t port, const char *word)
{
	int type = strcmp(proto, "udp") ? SOCK_STREAM : SOCK_DGRAM, st = 0, ok;
	pid_t pid = fork();

	if (pid == 0)
		_exit(enter_ns(ns) ? 2 : client(type, ip, port, word));
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		fail_msg("client fork failed");
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok && getenv("VAKT_TEST_VERBOSE")) {
		fprintf(stderr, "no answer: %s -> %s %s:%u\n", ns, proto, ip, port);
		dump_counters();
	}
	return ok;
}

static uint64_t packets(uint32_t ep, uint32_t dir, uint32_t reason)
{
	struct vakt_counter c;

	assert_int_equal(dp_counter(dp, ep, dir, reason, &c), 0);
	return c.packets;
}

/* On failure: what the datapath counted, to see where a packet went. */
static void dump_counters(void)
{
	uint32_t ep, dir, r;
	struct vakt_counter c;

	for (ep = 0; ep <= EP_OPEN; ep++)
		for (dir = 0; dir < VAKT_DIR_MAX; dir++)
			for (r = 0; r < VAKT_R_MAX; r++)
				if (!dp_counter(dp, ep, dir, r, &c) && c.packets)
					fprintf(stderr, "  counter ep=%u dir=%u reason=%u packets=%llu\n",
						ep, dir, r, (unsigned long long)c.packets);
}

static void test_egress_to_dns_pods_resolves_through_cluster_ip(void **state)
{
	(void)state;
	assert_true(ask("cli", "udp", DNS_VIP, 53, "pong-udp53"));
	assert_true(ask("cli", "tcp", DNS_VIP, 53, "pong-tcp53"));
	/* decided for the backend (the DNS pod), after DNAT, on the DNS pod's veth */
	assert_true(packets(EP_CLIENT, VAKT_DIR_EGRESS, VAKT_R_POLICY_ALLOW) >= 2);
	assert_true(packets(EP_CLIENT, VAKT_DIR_INGRESS, VAKT_R_REPLY) >= 2);
	assert_int_equal(packets(EP_CLIENT, VAKT_DIR_EGRESS, VAKT_R_POLICY_DENIED), 0);
	/* the same pod cannot reach the DNS pod on another port */
	assert_false(ask("cli", "tcp", "10.244.0.2", 54, "pong"));
}

static void test_denied_backend_stays_denied_through_cluster_ip(void **state)
{
	(void)state;
	/* the Service works for a pod without egress policy */
	assert_true(ask("open", "tcp", WEB_VIP, 80, "pong-web"));
	assert_false(ask("cli", "tcp", WEB_VIP, 80, "pong-web"));
	assert_true(packets(EP_CLIENT, VAKT_DIR_EGRESS, VAKT_R_POLICY_DENIED) >= 1);
	/* and directly, too */
	assert_false(ask("cli", "tcp", "10.244.0.4", 8080, "pong-web"));
}

static void test_egress_ipblock_holds_under_masquerade(void **state)
{
	(void)state;
	assert_true(ask("cli", "tcp", OUT_OK, 80, "pong-out"));
	assert_false(ask("cli", "tcp", OUT_NO, 80, "pong-out"));
	/* an unrestricted pod reaches both: masquerade and the outside work */
	assert_true(ask("open", "tcp", OUT_NO, 80, "pong-out"));
	assert_true(packets(EP_CLIENT, VAKT_DIR_EGRESS, VAKT_R_POLICY_DENIED) >= 1);
}

static void test_ingress_sees_the_client_pod_behind_cluster_ip(void **state)
{
	(void)state;
	/* the DNS pod admits the client identity only: another pod is refused */
	assert_false(ask("open", "udp", DNS_VIP, 53, "pong-udp53"));
	assert_true(packets(EP_DNS, VAKT_DIR_INGRESS, VAKT_R_POLICY_DENIED) >= 1);
	assert_true(ask("cli", "udp", DNS_VIP, 53, "pong-udp53"));
	assert_true(packets(EP_DNS, VAKT_DIR_INGRESS, VAKT_R_POLICY_ALLOW) >= 1);
}

static void test_revoked_policy_cuts_through_cluster_ip(void **state)
{
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = POL_CLIENT_EG,
				     .peer = ID_DNS, .proto = IPPROTO_UDP, .port = htons(53) };

	(void)state;
	assert_true(ask("cli", "udp", DNS_VIP, 53, "pong-udp53"));
	assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
	assert_int_equal(dp_set_gen(dp, 2), 0);
	assert_false(ask("cli", "udp", DNS_VIP, 53, "pong-udp53"));
	assert_true(ask("cli", "tcp", DNS_VIP, 53, "pong-tcp53"));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Child in the client pod: asks ip:53 for a stream, reports each tick's arrival time. */
static int stream_client(const char *ip, int report)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[16];
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(s, (struct sockaddr *)&a, sizeof(a)) || write(s, "stream", 6) != 6)
		return 1;
	/* until a second passes without a tick */
	while (read(s, buf, sizeof(buf)) > 0) {
		uint64_t t = now_ms();

		if (write(report, &t, sizeof(t)) != sizeof(t))
			return 1;
	}
	return 0;
}

/*
 * A stream from the DNS pod through its ClusterIP; revoke: after the third
 * tick, take the client's egress to the DNS pods on UDP away. Returns the
 * ticks that arrived after the revocation (all of them without one), and
 * the count before in *before.
 */
static int stream_ticks(int revoke, int *before)
{
	struct vakt_policy_key k = { .prefixlen = VAKT_PLEN_FULL, .policy = POL_CLIENT_EG,
				     .peer = ID_DNS, .proto = IPPROTO_UDP, .port = htons(53) };
	uint64_t t, revoked_at = 0;
	int fds[2], st = 0, after = 0;
	pid_t pid;

	*before = 0;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(enter_ns("cli") ? 2 : stream_client(DNS_VIP, fds[1]));
	}
	assert_true(pid > 0);
	close(fds[1]);
	while (read(fds[0], &t, sizeof(t)) == sizeof(t)) {
		/* a tick the datapath let through just before the revocation may land later */
		if (revoked_at && t > revoked_at + STREAM_GAP_MS)
			after++;
		else
			(*before)++;
		if (revoke && !revoked_at && *before == 3) {
			assert_int_equal(bpf_map_delete_elem(dp_map_fd(dp, "policy"), &k), 0);
			assert_int_equal(dp_set_gen(dp, 2), 0);
			revoked_at = now_ms();
		}
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return after;
}

static void test_backend_stream_stops_when_the_client_egress_is_revoked(void **state)
{
	int before, after;

	(void)state;
	/* the client admits nothing: the ticks get in as replies named by the mark */
	after = stream_ticks(0, &before);
	assert_int_equal(before + after, STREAM_TICKS);
	assert_true(packets(EP_CLIENT, VAKT_DIR_INGRESS, VAKT_R_REPLY) >= STREAM_TICKS);
	/* revoked after the third tick: the rest no longer reaches the client */
	after = stream_ticks(1, &before);
	assert_true(before >= 3);
	if (after > 1)
		fail_msg("%d of %d ticks reached the client after its egress was revoked", after,
			 STREAM_TICKS - before);
	assert_true(packets(EP_CLIENT, VAKT_DIR_INGRESS, VAKT_R_POLICY_DENIED) >= 1);
}

#define T(f) cmocka_unit_test_setup(f, test_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_egress_to_dns_pods_resolves_through_cluster_ip),
		T(test_denied_backend_stays_denied_through_cluster_ip),
		T(test_egress_ipblock_holds_under_masquerade),
		T(test_ingress_sees_the_client_pod_behind_cluster_ip),
		T(test_revoked_policy_cuts_through_cluster_ip),
		T(test_backend_stream_stops_when_the_client_egress_is_revoked),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
