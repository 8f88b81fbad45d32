// SPDX-License-Identifier: Apache-2.0
/*
 * sim.c - `vakt sim`: can A reach B on port P, and why.
 *
 *   vakt sim -f PATH [-f PATH]... --from SRC --to DST --port PORT [--protocol P] [-o text|json]
 *   vakt sim -f PATH [-f PATH]... --matrix [--port PORT]... [--protocol P]... [-o text|json]
 *
 * The manifests are compiled into the same tables the datapath reads, and
 * each direction is decided by the same verdict code the BPF program runs;
 * the reference engine answers the same question to explain it, and the two
 * must agree (simcore.c). Exit: query 0 allowed, 1 denied, 2 error; matrix 0
 * or 2 - as `kubectl auth can-i`, so scripts can branch on the answer.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "log.h"
#include "simcore.h"
#include "simout.h"

struct sim_opts {
	const char **paths;
	size_t npaths;
	const char *from, *to;
	struct sim_port *ports;
	size_t nports;
	uint8_t *protos;
	size_t nprotos;
	int matrix;
	int json;
	int dataplane;
	int verbose;
};

static const char sim_usage[] =
	"usage: vakt sim -f PATH [-f PATH]... --from SRC --to DST --port PORT [--protocol PROTO] [--dataplane] [-o text|json]\n"
	"       vakt sim -f PATH [-f PATH]... --matrix [--port PORT]... [--protocol PROTO]... [--dataplane] [-o text|json]\n"
	"\n"
	"Answers whether SRC may open a connection to DST on PORT under the NetworkPolicies of\n"
	"the given manifests, and why. The policies are compiled into the same tables and decided\n"
	"by the same verdict code as the vakt datapath; the reference engine explains the answer,\n"
	"and an internal-consistency error is reported if the two ever disagree.\n"
	"\n"
	"options:\n"
	"  -f, --file PATH      a manifest file (YAML or JSON, multi-document, List kinds) or a\n"
	"                       directory of them; '-' reads standard input. Repeatable.\n"
	"                       Kinds used: Namespace, Pod, networking.k8s.io/v1 NetworkPolicy.\n"
	"      --from SRC       namespace/pod, or an IPv4/IPv6 address: a pod's address\n"
	"                       (status.podIP/podIPs) means that pod, any other address is an\n"
	"                       endpoint outside the cluster, which has no policy of its own.\n"
	"      --to DST         like --from.\n"
	"      --port PORT      destination port: a number 1..65535, or a container port name\n"
	"                       resolved against the destination pod. Matrix mode: repeatable,\n"
	"                       default 80; a name resolves per destination pod, and a\n"
	"                       destination without that port is denied.\n"
	"      --protocol P     TCP (default), UDP or SCTP. Matrix mode: repeatable, crossed with\n"
	"                       every --port.\n"
	"      --matrix         every ordered pair of pods (a pod to itself included), one table\n"
	"                       per port and protocol: rows = from, columns = to, '.' allowed,\n"
	"                       'X' denied.\n"
	"      --dataplane      also ask the kernel: load the vakt BPF programs with private maps\n"
	"                       (never a running vaktd's pinned maps) filled from the compiled\n"
	"                       tables, and run the flow's opening packet (TCP SYN, UDP, SCTP INIT)\n"
	"                       through them with BPF_PROG_TEST_RUN. The kernel's verdict must be\n"
	"                       the tables' at every enforcement point, or sim reports an internal\n"
	"                       inconsistency and exits 2. Needs root (CAP_BPF, CAP_NET_ADMIN).\n"
	"  -o, --output FMT     text (default) or json.\n"
	"  -v, --verbose        log what the loader skipped and other details to stderr.\n"
	"  -h, --help           this help.\n"
	"\n"
	"Addresses: between two pods the flow uses IPv4 if both have an IPv4 address, else IPv6;\n"
	"an address given on the command line fixes the family. A pod always reaches itself.\n"
	"\n"
	"exit status: query 0 allowed, 1 denied, 2 error; matrix 0, or 2 on error.\n"
	"\n"
	"examples:\n"
	"  vakt sim -f examples/ --from production/frontend --to production/backend --port 8080\n"
	"  vakt sim -f examples/ --from production/backend --to production/frontend --port 80 -o json\n"
	"  kubectl get pods,ns,netpol -A -o yaml | vakt sim -f - --matrix --port 80 --port 443\n";

static void report(const char *hint, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* One line on stderr: every error of sim ends here, and the exit status is 2. */
static void report(const char *hint, const char *fmt, va_list ap)
{
	fputs("vakt sim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", hint);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sim_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A mistake in the command line: point at the help. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(" (see vakt sim --help)", fmt, ap);
	va_end(ap);
	return VAKT_EXIT_ERROR;
}

static int sim_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("", fmt, ap);
	va_end(ap);
	return VAKT_EXIT_ERROR;
}

static void opts_free(struct sim_opts *o)
{
	free(o->paths);
	free(o->ports);
	free(o->protos);
}

enum { OPT_FROM = 256, OPT_TO, OPT_PORT, OPT_PROTOCOL, OPT_MATRIX, OPT_DATAPLANE };

static const struct option long_opts[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "protocol", required_argument, NULL, OPT_PROTOCOL },
	{ "matrix", no_argument, NULL, OPT_MATRIX },
	{ "dataplane", no_argument, NULL, OPT_DATAPLANE },
	{ "output", required_argument, NULL, 'o' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, else the exit status. */
static int parse_one(struct sim_opts *o, int c, const char *arg, char **argv)
{
	char err[SIM_ERR_LEN];
	int proto;

	switch (c) {
	case 'f':
		o->paths[o->npaths++] = arg;
		return -1;
	case OPT_FROM:
	case OPT_TO:
		if (c == OPT_FROM ? o->from != NULL : o->to != NULL)
			return usage_error("--%s given twice", c == OPT_FROM ? "from" : "to");
		*(c == OPT_FROM ? &o->from : &o->to) = arg;
		return -1;
	case OPT_PORT:
		if (sim_port_parse(arg, &o->ports[o->nports], err, sizeof(err)) < 0)
			return sim_error("%s", err);
		o->nports++;
		return -1;
	case OPT_PROTOCOL:
		proto = sim_proto_parse(arg);
		if (proto < 0)
			return usage_error("invalid protocol '%s': expected TCP, UDP or SCTP", arg);
		o->protos[o->nprotos++] = (uint8_t)proto;
		return -1;
	case OPT_MATRIX:
		o->matrix = 1;
		return -1;
	case OPT_DATAPLANE:
		o->dataplane = 1;
		return -1;
	case 'o':
		o->json = strcmp(arg, "json") == 0;
		if (!o->json && strcmp(arg, "text") != 0)
			return usage_error("invalid output format '%s': expected text or json", arg);
		return -1;
	case 'v':
		vakt_log_set_level(VAKT_LOG_DEBUG);
		o->verbose = 1;
		return -1;
	case 'h':
		fputs(sim_usage, stdout);
		return VAKT_EXIT_OK;
	case ':':
		return usage_error("option %s needs a value", argv[optind - 1]);
	default:
		return usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

static int check_opts(const struct sim_opts *o, int argc, char **argv)
{
	size_t stdin_uses = 0;

	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->npaths == 0)
		return usage_error("no manifests: give -f PATH");
	for (size_t i = 0; i < o->npaths; i++)
		stdin_uses += !strcmp(o->paths[i], "-");
	if (stdin_uses > 1)
		return usage_error("standard input (-f -) can be read only once");
	if (o->matrix) {
		if (o->from || o->to)
			return usage_error("--matrix covers every pair of pods: it takes no --from or --to");
		return -1;
	}
	if (!o->from || !o->to)
		return usage_error("a query needs --from and --to (or use --matrix)");
	if (o->nports != 1)
		return usage_error(o->nports ? "a query takes one --port" : "a query needs --port");
	if (o->nprotos > 1)
		return usage_error("a query takes one --protocol");
	return -1;
}

static int parse_opts(struct sim_opts *o, int argc, char **argv)
{
	size_t n = (size_t)argc + 1;
	int c, ret;

	memset(o, 0, sizeof(*o));
	/* No option can appear more often than there are arguments. */
	o->paths = calloc(n, sizeof(*o->paths));
	o->ports = calloc(n, sizeof(*o->ports));
	o->protos = calloc(n, sizeof(*o->protos));
	if (!o->paths || !o->ports || !o->protos)
		return sim_error("out of memory");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:vh", long_opts, NULL)) != -1) {
		ret = parse_one(o, c, optarg, argv);
		if (ret >= 0)
			return ret;
	}
	ret = check_opts(o, argc, argv);
	if (ret >= 0)
		return ret;
	if (o->nprotos == 0)
		o->protos[o->nprotos++] = IPPROTO_TCP;
	if (o->nports == 0)
		o->ports[o->nports++] = (struct sim_port){ .num = 80 };
	return -1;
}

/* Prints a JSON document on one line; 0 or the exit status of a failure. */
static int emit_json(json_t *doc)
{
	int ret = 0;

	if (!doc)
		return sim_error("out of memory building JSON");
	if (json_dumpf(doc, stdout, JSON_COMPACT) < 0 || fputc('\n', stdout) == EOF)
		ret = sim_error("cannot write the output");
	json_decref(doc);
	return ret;
}

static int run_query(const struct sim_world *w, const struct sim_opts *o)
{
	struct sim_endpoint src, dst;
	struct sim_query q = { .port = o->ports[0], .proto = o->protos[0] };
	char err[SIM_ERR_LEN], plabel[16];
	int ret;

	if (sim_endpoint_parse(w->store, o->from, &src, err, sizeof(err)) < 0 ||
	    sim_endpoint_parse(w->store, o->to, &dst, err, sizeof(err)) < 0 ||
	    sim_pick_addrs(&src, &dst, &q.src, &q.dst, err, sizeof(err)) < 0)
		return sim_error("%s", err);
	if (!src.pod && !dst.pod)
		return sim_error("neither %s nor %s is a pod: no policy applies between them", o->from, o->to);
	if (!sim_port_resolve(&q.port, q.proto, dst.pod, &q.resolved)) {
		sim_port_label(&q.port, plabel, sizeof(plabel));
		if (!dst.pod)
			return sim_error("port '%s' is a name, but %s is not a pod with container ports", plabel,
					 o->to);
		return sim_error("pod %s/%s has no %s container port named '%s'", dst.pod->ns, dst.pod->name,
				 vakt_proto_name(q.proto), plabel);
	}
	if (sim_eval(w, &q.src, &q.dst, q.proto, q.resolved, &q.res, err, sizeof(err)) < 0)
		return sim_error("%s", err);
	if (o->json) {
		ret = emit_json(sim_query_json(w, &q));
		if (ret)
			return ret;
	} else {
		sim_query_print_text(stdout, w, &q);
	}
	return q.res.allowed ? VAKT_EXIT_OK : VAKT_EXIT_NO;
}

struct matrix {
	const struct vakt_pod **pods;
	char **names;
	size_t n;
	unsigned char *allowed; /* n * n, reused per table */
	json_t *results;        /* JSON mode only */
};

/* The flow's addresses for a pair of pods: IPv4 when both have one, else IPv6; 0 if none in common. */
static int pair_addrs(const struct vakt_pod *a, const struct vakt_pod *b, struct vakt_end *s, struct vakt_end *d)
{
	struct sim_endpoint ea = { .text = "", .pod = a }, eb = { .text = "", .pod = b };
	char err[SIM_ERR_LEN];

	return sim_pick_addrs(&ea, &eb, s, d, err, sizeof(err)) == 0;
}

static int matrix_cell(const struct sim_world *w, struct matrix *m, size_t i, size_t j, const struct sim_port *p,
		       uint8_t proto)
{
	struct vakt_end s, d;
	struct sim_result r;
	char err[SIM_ERR_LEN];
	uint16_t num = 0;
	int resolved = sim_port_resolve(p, proto, m->pods[j], &num);
	json_t *o;

	/* Pods without a common family or the named port cannot be reached: as upstream, X. */
	m->allowed[i * m->n + j] = 0;
	if (resolved && pair_addrs(m->pods[i], m->pods[j], &s, &d)) {
		if (sim_eval(w, &s, &d, proto, num, &r, err, sizeof(err)) < 0)
			return sim_error("%s", err);
		m->allowed[i * m->n + j] = (unsigned char)r.allowed;
	}
	if (!m->results)
		return 0;
	o = json_pack("{s:s, s:s, s:o, s:s, s:b}", "from", m->names[i], "to", m->names[j], "port",
		      p->name ? json_string(p->name) : json_integer(p->num), "protocol", vakt_proto_name(proto),
		      "allowed", m->allowed[i * m->n + j]);
	if (!o || (p->name && json_object_set_new(o, "resolved_port", resolved ? json_integer(num) : json_null()))) {
		json_decref(o);
		return sim_error("out of memory building JSON");
	}
	if (json_array_append_new(m->results, o))
		return sim_error("out of memory building JSON");
	return 0;
}

static int matrix_table(const struct sim_world *w, struct matrix *m, const struct sim_port *p, uint8_t proto,
			int first)
{
	char plabel[16];
	int ret;

	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->n; j++) {
			ret = matrix_cell(w, m, i, j, p, proto);
			if (ret)
				return ret;
		}
	}
	if (m->results)
		return 0;
	if (!first)
		fputc('\n', stdout);
	sim_matrix_print_text(stdout, (const char *const *)m->names, m->n, sim_port_label(p, plabel, sizeof(plabel)),
			      vakt_proto_name(proto), m->allowed);
	return 0;
}

static void matrix_free(struct matrix *m)
{
	for (size_t i = 0; m->names && i < m->n; i++)
		free(m->names[i]);
	free(m->names);
	free(m->pods);
	free(m->allowed);
	json_decref(m->results);
}

static int run_matrix(const struct sim_world *w, const struct sim_opts *o)
{
	struct matrix m = { 0 };
	int ret = VAKT_EXIT_ERROR;

	if (vakt_store_pods_sorted(w->store, &m.pods, &m.n) < 0)
		return sim_error("cannot list the pods: out of memory");
	m.names = calloc(m.n + 1, sizeof(*m.names));
	m.allowed = calloc(m.n * m.n + 1, 1);
	m.results = o->json ? json_array() : NULL;
	if (!m.names || !m.allowed || (o->json && !m.results)) {
		sim_error("out of memory");
		goto out;
	}
	for (size_t i = 0; i < m.n; i++) {
		if (asprintf(&m.names[i], "%s/%s", m.pods[i]->ns, m.pods[i]->name) < 0) {
			m.names[i] = NULL;
			sim_error("out of memory");
			goto out;
		}
	}
	for (size_t p = 0; p < o->nports; p++) {
		for (size_t k = 0; k < o->nprotos; k++) {
			ret = matrix_table(w, &m, &o->ports[p], o->protos[k], p == 0 && k == 0);
			if (ret)
				goto out;
		}
	}
	ret = 0;
	if (m.results)
		ret = emit_json(o->dataplane ? json_pack("{s:O, s:b}", "results", m.results, "dataplane", 1) :
					       json_pack("{s:O}", "results", m.results));
out:
	matrix_free(&m);
	return ret;
}

/*
 * Loading BPF logs through libbpf and the agent's logger; a failure is
 * reported once, as sim's own error line, unless -v asked for the details.
 */
static int open_dataplane(struct sim_world *w, int verbose, char *err, size_t errlen)
{
	FILE *quiet = NULL;
	libbpf_print_fn_t prev = NULL;
	int ret;

	if (verbose) {
		vakt_log_hook_libbpf();
	} else {
		prev = libbpf_set_print(NULL);
		quiet = fopen("/dev/null", "w");
		if (quiet)
			vakt_log_set_stream(quiet);
	}
	ret = sim_world_dataplane(w, err, errlen);
	if (!verbose) {
		libbpf_set_print(prev);
		vakt_log_set_stream(NULL);
		if (quiet)
			fclose(quiet);
	}
	return ret;
}

int vakt_cmd_sim(int argc, char **argv)
{
	struct sim_opts o;
	struct sim_world w;
	char err[SIM_ERR_LEN];
	int ret;

	ret = parse_opts(&o, argc, argv);
	if (ret >= 0)
		goto out_opts;
	if (sim_world_load(&w, o.paths, o.npaths, err, sizeof(err)) < 0) {
		ret = sim_error("%s", err);
		goto out_world;
	}
	if (o.dataplane && open_dataplane(&w, o.verbose, err, sizeof(err)) < 0) {
		ret = sim_error("%s", err);
		goto out_world;
	}
	ret = o.matrix ? run_matrix(&w, &o) : run_query(&w, &o);
	if (fflush(stdout) == EOF && ret != VAKT_EXIT_ERROR)
		ret = sim_error("cannot write the output");
out_world:
	sim_world_free(&w);
out_opts:
	opts_free(&o);
	return ret;
}
