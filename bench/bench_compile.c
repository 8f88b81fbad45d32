// SPDX-License-Identifier: Apache-2.0
/*
 * Compiler and userspace verdict benchmark on a generated cluster
 * (tests/lib/gencluster.h): full compile time and peak RSS, incremental pod
 * add/delete latency, and the verdict cost per new flow at 10 .. 10,000
 * policies.
 *
 *   bench_compile [-p PODS] [-n NAMESPACES] [-P POLICIES] [-N NODES] [-S]
 *
 * -S skips the every-pod-local (vakt sim) full compile.
 *
 * Targets (issue 2): full compile <= 2 s, peak RSS <= 300 MB, pod add and
 * delete median <= 1 ms, verdict <= 200 ns and flat in the policy count.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compiler.h"
#include "log.h"
#include "../tests/lib/gencluster.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static long peak_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int noop(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	(void)arg;
	(void)id;
	(void)key;
	(void)val;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct opts {
	size_t pods, namespaces, policies, nodes;
	int skip_sim;
};

static struct vakt_store *make_cluster(const struct opts *o, size_t policies, struct vakt_gen **gout)
{
	struct vakt_gen_opts go = {
		.seed = 42, .namespaces = o->namespaces, .pods = o->pods, .policies = policies,
		.nodes = o->nodes, .dual_stack_pct = 5,
	};
	struct vakt_store *s = vakt_store_new();
	struct vakt_gen *g = vakt_gen_new(&go);

	if (!s || !g || vakt_gen_populate(g, s)) {
		fprintf(stderr, "bench: cannot generate the cluster\n");
		exit(1);
	}
	if (gout)
		*gout = g;
	else
		vakt_gen_free(g);
	return s;
}

static void print_stats(const char *what, struct vakt_compiler *c, double secs)
{
	struct vakt_compiler_stats st;
	struct vakt_tables *t = vakt_compiler_tables(c);

	vakt_compiler_stats(c, &st);
	printf("%-34s %8.3f s  local=%llu identities=%llu endpoint_policies=%llu classes=%llu "
	       "ipcache=%zu endpoints=%zu cidr=%zu policy=%zu errors=%llu\n",
	       what, secs, (unsigned long long)st.local_endpoints, (unsigned long long)st.identities,
	       (unsigned long long)st.endpoint_policies, (unsigned long long)st.classes,
	       vakt_tables_count(t, VAKT_T_IPCACHE), vakt_tables_count(t, VAKT_T_ENDPOINTS),
	       vakt_tables_count(t, VAKT_T_CIDR), vakt_tables_count(t, VAKT_T_POLICY),
	       (unsigned long long)st.errors);
}

static void latency(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%-40s median %7.1f us  p99 %7.1f us  max %7.1f us  (n=%zu)\n", what, v[n / 2] * 1e6,
	       v[n * 99 / 100] * 1e6, v[n - 1] * 1e6, n);
}

/* Pod add then delete, each compiled and drained. */
static void bench_pod_events(struct vakt_store *s, struct vakt_compiler *c, struct vakt_gen *g,
			     int kind, size_t n)
{
	static const char *const kinds[] = { "replica, any node", "replica, local", "new labels, any node" };
	double *add = calloc(n, sizeof(*add)), *del = calloc(n, sizeof(*del));
	char label[80];
	size_t i;

	for (i = 0; i < n; i++) {
		struct vakt_pod *p = vakt_gen_pod(g, kind != 2);
		char ns[64], name[64];
		double t0;

		if (!p)
			exit(1);
		if (kind == 1) {
			free(p->node);
			p->node = strdup("node-0");
			p->host_network = 0;
		}
		snprintf(ns, sizeof(ns), "%s", p->ns);
		snprintf(name, sizeof(name), "%s", p->name);
		t0 = now_s();
		vakt_store_put_pod(s, p);
		vakt_tables_drain(vakt_compiler_tables(c), noop, NULL, NULL);
		add[i] = now_s() - t0;
		t0 = now_s();
		vakt_store_del_pod(s, ns, name);
		vakt_tables_drain(vakt_compiler_tables(c), noop, NULL, NULL);
		del[i] = now_s() - t0;
	}
	snprintf(label, sizeof(label), "pod add (%s)", kinds[kind]);
	latency(label, add, n);
	snprintf(label, sizeof(label), "pod delete (%s)", kinds[kind]);
	latency(label, del, n);
	free(add);
	free(del);
}

static int collect_ep(void *arg, const void *key, const void *val)
{
	struct vakt_addr **v = arg;

	(void)val;
	**v = *(const struct vakt_addr *)key;
	(*v)++;
	return 0;
}

enum vclass { V_ALL, V_EARLY, V_ALLOW, V_DENY, V_MAX };
static const char *const vclass_names[V_MAX] = { "all flows", "not isolated/host/self",
						 "allowed by policy", "denied" };

struct vresult {
	double ns[V_MAX];
	size_t n[V_MAX];
};

static double time_flows(const struct vakt_tables *t, const struct vakt_addr *self,
			 const struct vakt_flow *f, size_t n)
{
	struct vakt_verdict v;
	volatile int sink = 0;
	size_t rounds = n ? (1200000 + n - 1) / n : 0, r, i;
	double t0 = now_s();

	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			sink += vakt_tables_verdict(t, &self[i], &f[i], &v);
	(void)sink;
	return n ? (now_s() - t0) * 1e9 / (double)(rounds * n) : 0;
}

/* ns per userspace verdict over 4096 random (endpoint, peer, port) flows,
 * overall and per decision path (their mix changes with the policy count). */
static void bench_verdict(struct vakt_store *s, struct vakt_compiler *c, struct vresult *res)
{
	struct vakt_tables *t = vakt_compiler_tables(c);
	size_t neps = vakt_tables_count(t, VAKT_T_ENDPOINTS), npods, i, k;
	struct vakt_addr *eps = calloc(neps + 1, sizeof(*eps)), *cur = eps;
	const struct vakt_pod **pods;
	struct vakt_addr *self[V_MAX];
	struct vakt_flow *fl[V_MAX];
	static const uint16_t ports[] = { 80, 443, 8080, 9090, 53, 5432, 9100, 31000 };
	uint64_t rng = 7;

	vakt_tables_foreach(t, VAKT_T_ENDPOINTS, collect_ep, &cur);
	if (vakt_store_pods_sorted(s, &pods, &npods) || !neps)
		exit(1);
	for (k = 0; k < V_MAX; k++) {
		self[k] = calloc(4096, sizeof(**self));
		fl[k] = calloc(4096, sizeof(**fl));
		res->n[k] = 0;
	}
	for (i = 0; i < 4096; i++) {
		const struct vakt_pod *p;
		struct vakt_verdict v;
		struct vakt_flow f = { 0 };
		struct vakt_addr a;
		int ret;

		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		a = eps[(rng >> 33) % neps];
		p = pods[(rng >> 17) % npods];
		f.peer = p->nips ? p->ips[0] : eps[0];
		f.dport = ports[(rng >> 11) % 8];
		f.proto = (rng >> 40) % 5 ? IPPROTO_TCP : IPPROTO_UDP;
		f.dir = (uint8_t)((rng >> 50) & 1);
		ret = vakt_tables_verdict(t, &a, &f, &v);
		k = ret == 0 ? V_DENY : v.reason == VAKT_R_POLICY_ALLOW ? V_ALLOW : V_EARLY;
		self[k][res->n[k]] = a;
		fl[k][res->n[k]++] = f;
		self[V_ALL][res->n[V_ALL]] = a;
		fl[V_ALL][res->n[V_ALL]++] = f;
	}
	for (k = 0; k < V_MAX; k++) {
		res->ns[k] = time_flows(t, self[k], fl[k], res->n[k]);
		free(self[k]);
		free(fl[k]);
	}
	free(pods);
	free(eps);
}

int main(int argc, char **argv)
{
	struct opts o = { .pods = 150000, .namespaces = 2000, .policies = 10000, .nodes = 200 };
	static const size_t sizes[] = { 10, 100, 1000, 10000 };
	struct vresult vr[4];
	struct vakt_compiler_opts co = { .node = "node-0" };
	struct vakt_compiler *c;
	struct vakt_store *s;
	struct vakt_gen *g;
	double t0, t;
	long rss0;
	int opt;

	while ((opt = getopt(argc, argv, "p:n:P:N:S")) != -1) {
		switch (opt) {
		case 'p': o.pods = strtoul(optarg, NULL, 10); break;
		case 'n': o.namespaces = strtoul(optarg, NULL, 10); break;
		case 'P': o.policies = strtoul(optarg, NULL, 10); break;
		case 'N': o.nodes = strtoul(optarg, NULL, 10); break;
		case 'S': o.skip_sim = 1; break;
		default:
			fprintf(stderr, "usage: %s [-p pods] [-n namespaces] [-P policies] [-N nodes] [-S]\n",
				argv[0]);
			return 2;
		}
	}
	vakt_log_set_level(VAKT_LOG_ERROR);
	printf("bench_compile: %zu pods, %zu namespaces, %zu policies, %zu nodes (node-0 is the agent's node)\n",
	       o.pods, o.namespaces, o.policies, o.nodes);

	t0 = now_s();
	s = make_cluster(&o, o.policies, &g);
	rss0 = rss_kb();
	printf("%-34s %8.3f s  store RSS %ld MB\n", "generate store", now_s() - t0, rss0 / 1024);

	t0 = now_s();
	t = cpu_s();
	c = vakt_compiler_new(s, &co);
	if (!c || vakt_compiler_full(c))
		fprintf(stderr, "bench: full compile reported errors\n");
	t = cpu_s() - t;
	print_stats("full compile (node-0)", c, now_s() - t0);
	printf("%-34s %8.3f s\n", "  of which CPU time", t);
	t0 = now_s();
	vakt_tables_drain(vakt_compiler_tables(c), noop, NULL, NULL);
	printf("%-34s %8.3f s\n", "first drain (node-0)", now_s() - t0);
	printf("%-34s %8ld MB (store alone %ld MB, compiler+tables %ld MB)\n",
	       "peak RSS after compile", peak_kb() / 1024, rss0 / 1024, (rss_kb() - rss0) / 1024);

	bench_pod_events(s, c, g, 0, 2000);
	bench_pod_events(s, c, g, 1, 500);
	bench_pod_events(s, c, g, 2, 500);

	bench_verdict(s, c, &vr[3]);
	vakt_compiler_free(c);

	if (!o.skip_sim) {
		t0 = now_s();
		t = cpu_s();
		co.node = NULL;
		c = vakt_compiler_new(s, &co);
		if (!c || vakt_compiler_full(c))
			fprintf(stderr, "bench: full compile (every pod local) reported errors\n");
		print_stats("full compile (all local, sim)", c, now_s() - t0);
		printf("%-34s %8.3f s\n", "  of which CPU time", cpu_s() - t);
		printf("%-34s %8ld MB\n", "peak RSS after sim compile", peak_kb() / 1024);
		vakt_compiler_free(c);
	}
	vakt_store_free(s);
	vakt_gen_free(g);

	co.node = "node-0";
	for (size_t i = 0; i < 3; i++) {
		s = make_cluster(&o, sizes[i], NULL);
		c = vakt_compiler_new(s, &co);
		if (!c || vakt_compiler_full(c))
			fprintf(stderr, "bench: compile with %zu policies reported errors\n", sizes[i]);
		bench_verdict(s, c, &vr[i]);
		vakt_compiler_free(c);
		vakt_store_free(s);
	}
	printf("userspace verdict per new flow (node-0 endpoints, random peers and ports), ns/flow (flows):\n");
	printf("  %-24s %13s %13s %13s %13s   10000/10\n", "path | policies:", "10", "100", "1000",
	       "10000");
	for (size_t k = 0; k < V_MAX; k++) {
		printf("  %-24s", vclass_names[k]);
		for (size_t i = 0; i < 4; i++)
			printf(" %6.1f (%4zu)", vr[i].ns[k], vr[i].n[k]);
		printf("   x%.2f\n", vr[0].ns[k] > 0 ? vr[3].ns[k] / vr[0].ns[k] : 0.0);
	}
	return 0;
}
