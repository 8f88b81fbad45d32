// SPDX-License-Identifier: Apache-2.0
/*
 * vaktd.c - the node agent: flags, wiring and signals.
 *
 *   source (--objects DIR, or the Kubernetes API: --kubeconfig FILE or
 *           in-cluster)    -> store -> compiler -> dataplane (pinned maps)
 *   rtnetlink links        -> attach to every veth, uplinks (--uplink)
 *   rtnetlink addresses    -> the node's addresses in the compiler
 *   HTTP (--metrics-addr)  -> /healthz, /readyz, /metrics
 *   ring buffer            -> drop events on the flows socket (vakt flows)
 *
 * Everything runs in one event loop. Changes are batched: sources and
 * netlink only mark the agent dirty, and the loop's before-sleep hook
 * applies the compiled difference to the maps once per batch.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "dataplane.h" /* VAKT_BPFFS_DEFAULT */
#include "flowsrv.h"   /* VAKT_FLOWS_SOCKET_DEFAULT */
#include "kube.h"      /* VAKT_KUBE_SA_DIR */
#include "log.h"
#include "loop.h"
#include "vaktd_agent.h"

static const char usage_text[] =
	"usage: vaktd [--kubeconfig FILE | --objects DIR] --node NAME [options]\n"
	"\n"
	"The vakt node agent: enforces the cluster's NetworkPolicies on the pods of node NAME\n"
	"with eBPF programs on their veths. Objects come from the Kubernetes API (in-cluster\n"
	"configuration unless --kubeconfig) or from a directory of manifests (--objects).\n"
	"\n"
	"  --kubeconfig FILE      API server, CA and credentials from a kubeconfig\n"
	"  --kube-context NAME    kubeconfig context (default: its current-context)\n"
	"  --service-account-dir DIR  in-cluster token and ca.crt\n"
	"                         (default " VAKT_KUBE_SA_DIR ")\n"
	"  --objects DIR          directory of Kubernetes manifests (YAML/JSON), reloaded on change\n"
	"  --node NAME            this node's name (spec.nodeName of local pods); default $NODE_NAME\n"
	"  --bpffs DIR            pin directory for maps and links (default " VAKT_BPFFS_DEFAULT ")\n"
	"  --metrics-addr A:P     /healthz, /readyz, /metrics listener (default 0.0.0.0:9964)\n"
	"  --uplink IF[,IF...]    devices that leave the node (for Services/NAT egress checks);\n"
	"                         default: every physical and tunnel device\n"
	"  --force-clsact         attach with clsact even where tcx is available\n"
	"  --mark-mask HEX        skb mark bits vakt may use (12 contiguous bits, default 0x0fff0000)\n"
	"  --drop-event-rate N    drop events per second per CPU (default 1000, 0 = none)\n"
	"  --flows-socket PATH    drop events for vakt flows (default " VAKT_FLOWS_SOCKET_DEFAULT ",\n"
	"                         '' = none)\n"
	"  --debug-endpoints      serve /debug/tables (pinned maps vs compiled tables)\n"
	"  --dump-tables          no BPF: compile the source's objects for NAME, print the\n"
	"                         canonical tables and exit\n"
	"  --cleanup              on exit, detach the programs and remove the pinned maps\n"
	"  --log-level L          error, warn, info (default), debug\n"
	"  --version, --help\n";

enum {
	OPT_OBJECTS = 256,
	OPT_NODE,
	OPT_BPFFS,
	OPT_METRICS,
	OPT_UPLINK,
	OPT_CLSACT,
	OPT_MARK,
	OPT_EVRATE,
	OPT_CLEANUP,
	OPT_LOGLEVEL,
	OPT_KUBECONFIG,
	OPT_KUBECTX,
	OPT_SADIR,
	OPT_FLOWS,
	OPT_DEBUG,
	OPT_DUMP,
	OPT_VERSION,
	OPT_HELP,
};

static int parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, base);
	return (!*s || *end || errno || *out > max || *s == '-') ? -EINVAL : 0;
}

static int parse_args(int argc, char **argv, struct vaktd_opts *o, int *dump)
{
	static const struct option opts[] = {
		{ "objects", required_argument, NULL, OPT_OBJECTS },
		{ "node", required_argument, NULL, OPT_NODE },
		{ "bpffs", required_argument, NULL, OPT_BPFFS },
		{ "metrics-addr", required_argument, NULL, OPT_METRICS },
		{ "uplink", required_argument, NULL, OPT_UPLINK },
		{ "force-clsact", no_argument, NULL, OPT_CLSACT },
		{ "mark-mask", required_argument, NULL, OPT_MARK },
		{ "drop-event-rate", required_argument, NULL, OPT_EVRATE },
		{ "cleanup", no_argument, NULL, OPT_CLEANUP },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
		{ "kube-context", required_argument, NULL, OPT_KUBECTX },
		{ "service-account-dir", required_argument, NULL, OPT_SADIR },
		{ "flows-socket", required_argument, NULL, OPT_FLOWS },
		{ "debug-endpoints", no_argument, NULL, OPT_DEBUG },
		{ "dump-tables", no_argument, NULL, OPT_DUMP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int c, lvl;

	o->node = getenv("NODE_NAME");
	o->bpffs = VAKT_BPFFS_DEFAULT;
	o->metrics_addr = "0.0.0.0:9964";
	o->flows_socket = VAKT_FLOWS_SOCKET_DEFAULT;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_OBJECTS: o->objects = optarg; break;
		case OPT_NODE: o->node = optarg; break;
		case OPT_BPFFS: o->bpffs = optarg; break;
		case OPT_METRICS: o->metrics_addr = optarg; break;
		case OPT_UPLINK: o->uplinks = optarg; break;
		case OPT_CLSACT: o->force_clsact = 1; break;
		case OPT_MARK:
			if (parse_uint(optarg, 16, 0xffffffffUL, &v) || !v) {
				fprintf(stderr, "vaktd: --mark-mask: want a non-zero hex mask, not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->mark_mask = (unsigned int)v;
			break;
		case OPT_EVRATE:
			if (parse_uint(optarg, 10, 1000000, &v)) {
				fprintf(stderr, "vaktd: --drop-event-rate: want 0..1000000, not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->event_rate = v ? (int)v : -1;
			break;
		case OPT_CLEANUP: o->cleanup = 1; break;
		case OPT_KUBECONFIG: o->kubeconfig = optarg; break;
		case OPT_KUBECTX: o->kube_context = optarg; break;
		case OPT_SADIR: o->sa_dir = optarg; break;
		case OPT_FLOWS: o->flows_socket = optarg; break;
		case OPT_DEBUG: o->debug_endpoints = 1; break;
		case OPT_DUMP: *dump = 1; break;
		case OPT_LOGLEVEL:
			lvl = vakt_log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "vaktd: --log-level: unknown level '%s'\n", optarg);
				return -EINVAL;
			}
			vakt_log_set_level((enum vakt_log_level)lvl);
			break;
		case OPT_VERSION: printf("vaktd %s\n", VAKT_VERSION); exit(0);
		case OPT_HELP: fputs(usage_text, stdout); exit(0);
		default: fputs(usage_text, stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vaktd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->objects && (o->kubeconfig || o->kube_context || o->sa_dir)) {
		fprintf(stderr, "vaktd: --objects and the Kubernetes API options (--kubeconfig, "
				"--kube-context, --service-account-dir) are mutually exclusive\n");
		return -EINVAL;
	}
	if (o->kube_context && !o->kubeconfig) {
		fprintf(stderr, "vaktd: --kube-context needs --kubeconfig\n");
		return -EINVAL;
	}
	if (o->sa_dir && o->kubeconfig) {
		fprintf(stderr, "vaktd: --service-account-dir is for the in-cluster configuration, "
				"not with --kubeconfig\n");
		return -EINVAL;
	}
	if (!o->node || !*o->node) {
		fprintf(stderr, "vaktd: --node NAME (or $NODE_NAME) is required\n");
		return -EINVAL;
	}
	return 0;
}

/* --dump-tables waits this long for the first complete list from the API server. */
#define DUMP_TIMEOUT_S 60

/* SIGTERM/SIGINT stop the loop; SIGHUP reloads the source. */
static void on_signal(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct vaktd *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("reload requested", "signal=SIGHUP");
			vaktd_reload(d);
			continue;
		}
		log_info("stopping", "signal=%s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		vakt_loop_stop(l);
	}
}

/* Blocked from the start, so a signal during startup waits for the loop. */
static int block_signals(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* --dump-tables: the compiled tables on stdout, logs on stderr. */
static int dump_tables(const struct vaktd_opts *o)
{
	struct vakt_loop *loop = vakt_loop_new();
	int err;

	if (!loop)
		return 1;
	err = vaktd_dump_tables(loop, o, stdout, DUMP_TIMEOUT_S);
	vakt_loop_free(loop);
	if (fflush(stdout))
		err = err ? err : -EIO;
	if (err)
		log_error("dump failed", "err=%d", err);
	return err ? 1 : 0;
}

static const char *source_name(const struct vaktd_opts *o)
{
	if (o->objects)
		return "objects";
	return o->kubeconfig ? "kubeconfig" : "in-cluster";
}

int main(int argc, char **argv)
{
	struct vaktd_opts opts = { 0 };
	struct vakt_loop *loop;
	struct vaktd *d = NULL;
	int err, sigfd, dump = 0;

	if (parse_args(argc, argv, &opts, &dump))
		return 2;
	vakt_log_hook_libbpf();
	if (dump)
		return dump_tables(&opts);
	log_info("starting", "version=%s node=%s source=%s from=%s bpffs=%s pid=%d", VAKT_VERSION,
		 opts.node, source_name(&opts),
		 opts.objects ? opts.objects : opts.kubeconfig ? opts.kubeconfig : "-",
		 opts.bpffs, (int)getpid());
	sigfd = block_signals();
	if (sigfd < 0) {
		log_error("cannot set up signals", "err=%d", sigfd);
		return 1;
	}
	loop = vakt_loop_new();
	if (!loop) {
		err = -ENOMEM;
		goto out_sig;
	}
	err = vaktd_start(loop, &opts, &d);
	if (err)
		goto out_loop;
	err = vakt_loop_add_fd(loop, sigfd, EPOLLIN, on_signal, d);
	if (!err)
		err = vakt_loop_run(loop);
	if (err)
		log_error("event loop failed", "err=%d", err);
	vakt_loop_del_fd(loop, sigfd);
	vaktd_stop(d, opts.cleanup);
out_loop:
	vakt_loop_free(loop);
out_sig:
	close(sigfd);
	log_info("exited", "err=%d cleanup=%d", err, opts.cleanup);
	return err ? 1 : 0;
}
