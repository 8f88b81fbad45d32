// SPDX-License-Identifier: Apache-2.0
/*
 * flows.c - `vakt flows`: follow drop events live, from vaktd's flows socket
 * (agent/flowsrv.h describes the line protocol).
 *
 *   vakt flows [-o text|json] [--socket PATH] [-n COUNT]
 *
 * vaktd is the only reader of the datapath's ring buffer (a BPF ring buffer
 * has one consumer position), so this command subscribes to vaktd instead of
 * reading the pinned map.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "flowsrv.h"

static const char flows_usage[] =
	"usage: vakt flows [-o text|json] [--socket PATH] [-n COUNT]\n"
	"\n"
	"Follows the packets the vakt datapath drops on this node, live, until interrupted.\n"
	"Events come from vaktd over its flows socket (default " VAKT_FLOWS_SOCKET_DEFAULT ").\n"
	"\n"
	"  -o, --output FORMAT  text (default): one line per drop;\n"
	"                       json: the JSON lines vaktd sends, unchanged\n"
	"  -s, --socket PATH    vaktd's flows socket (vaktd --flows-socket)\n"
	"  -n, --count COUNT    exit after COUNT drop events\n"
	"\n"
	"A reader that cannot keep up loses events, never slows vaktd: a line says how many.\n"
	"Exit status: 0 interrupted or COUNT reached, 2 error (vaktd not running, connection\n"
	"closed by vaktd).\n";

/* Longer lines than this are not vaktd's. */
#define MAX_LINE (16 * VAKT_FLOWSRV_LINE_MAX)

/* Set by SIGINT/SIGTERM: the read loop ends cleanly (exit 0). */
static volatile sig_atomic_t interrupted;

struct flows_opts {
	const char *socket;
	int json;
	long count; /* 0: unlimited */
};

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_opts(int argc, char **argv, struct flows_opts *o)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "socket", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	o->socket = VAKT_FLOWS_SOCKET_DEFAULT;
	while ((c = getopt_long(argc, argv, "o:s:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!strcmp(optarg, "json")) {
				o->json = 1;
			} else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "vakt flows: -o: unknown format '%s' (text or json)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 's': o->socket = optarg; break;
		case 'n':
			errno = 0;
			o->count = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o->count <= 0) {
				fprintf(stderr, "vakt flows: -n: '%s' is not a positive number\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'h': fputs(flows_usage, stdout); exit(VAKT_EXIT_OK);
		default: fputs(flows_usage, stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vakt flows: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int connect_vaktd(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vakt flows: socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "vakt flows: socket: %s\n", strerror(errno));
		return err;
	}
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return fd;
	err = -errno;
	close(fd);
	if (err == -ENOENT)
		fprintf(stderr, "vakt flows: %s does not exist: vaktd is not running on this node "
				"(or serves another --flows-socket; see --socket)\n", path);
	else if (err == -ECONNREFUSED)
		fprintf(stderr, "vakt flows: %s refuses connections: vaktd is not running "
				"(the socket is a leftover)\n", path);
	else if (err == -EACCES)
		fprintf(stderr, "vakt flows: %s: permission denied (run as root or as a member "
				"of the socket's group)\n", path);
	else
		fprintf(stderr, "vakt flows: cannot connect to %s: %s\n", path, strerror(-err));
	return err;
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

/* "10.0.0.1:80", "[fd00::1]:80", or the bare address where ports mean nothing. */
static void endpoint_str(char *buf, size_t len, const char *addr, json_t *port, int has_ports)
{
	if (!has_ports)
		snprintf(buf, len, "%s", addr);
	else if (strchr(addr, ':'))
		snprintf(buf, len, "[%s]:%lld", addr, (long long)json_integer_value(port));
	else
		snprintf(buf, len, "%s:%lld", addr, (long long)json_integer_value(port));
}

static void print_drop(json_t *ev)
{
	const char *proto = jstr(ev, "proto", "?");
	const char *ns = jstr(ev, "namespace", NULL), *pod = jstr(ev, "pod", NULL);
	int ports = !strcmp(proto, "tcp") || !strcmp(proto, "udp") || !strcmp(proto, "sctp");
	char src[96], dst[96], who[256];

	endpoint_str(src, sizeof(src), jstr(ev, "src", "?"), json_object_get(ev, "sport"), ports);
	endpoint_str(dst, sizeof(dst), jstr(ev, "dst", "?"), json_object_get(ev, "dport"), ports);
	if (ns && pod)
		snprintf(who, sizeof(who), "%s/%s", ns, pod);
	else
		snprintf(who, sizeof(who), "ep:%lld",
			 (long long)json_integer_value(json_object_get(ev, "ep_id")));
	printf("%s %-7s %s %s -> %s %s %s\n", jstr(ev, "ts", "?"), jstr(ev, "direction", "?"),
	       who, src, dst, proto, jstr(ev, "reason", "?"));
}

/* One line from vaktd; 1: a drop event, 0: another line, -errno: stop (error). */
static int handle_line(const struct flows_opts *o, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, 0, &jerr);
	const char *type;
	int ret = 0;

	if (!ev || !json_is_object(ev)) {
		fprintf(stderr, "vakt flows: unreadable line from vaktd (%s), skipped\n",
			ev ? "not an object" : jerr.text);
		json_decref(ev);
		return 0;
	}
	type = jstr(ev, "type", "");
	if (!strcmp(type, "error")) {
		fprintf(stderr, "vakt flows: vaktd: %s\n", jstr(ev, "msg", "error"));
		ret = -ECONNREFUSED;
	} else if (o->json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		ret = !strcmp(type, "drop");
	} else if (!strcmp(type, "drop")) {
		print_drop(ev);
		ret = 1;
	} else if (!strcmp(type, "lost")) {
		printf("-- dropped %lld events: this reader did not keep up --\n",
		       (long long)json_integer_value(json_object_get(ev, "count")));
	}
	json_decref(ev);
	/* Followed live, often through a pipe: every line as it comes. */
	fflush(stdout);
	return ret;
}

/* Reads and prints until interrupted, COUNT events, or an error. */
static int follow(int fd, const struct flows_opts *o)
{
	static char buf[MAX_LINE];
	size_t have = 0;
	long seen = 0;

	while (!interrupted) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		char *start = buf, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "vakt flows: read: %s\n", strerror(errno));
			return VAKT_EXIT_ERROR;
		}
		if (n == 0) {
			fprintf(stderr, "vakt flows: vaktd closed the connection\n");
			return VAKT_EXIT_ERROR;
		}
		have += (size_t)n;
		while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
			int r = handle_line(o, start, (size_t)(nl - start));

			if (r < 0)
				return VAKT_EXIT_ERROR;
			seen += r;
			if (o->count && seen >= o->count)
				return VAKT_EXIT_OK;
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
		if (have == sizeof(buf)) {
			fprintf(stderr, "vakt flows: line longer than %d bytes from vaktd\n", MAX_LINE);
			return VAKT_EXIT_ERROR;
		}
	}
	return VAKT_EXIT_OK;
}

int vakt_cmd_flows(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_interrupt }; /* no SA_RESTART: read returns */
	struct flows_opts o = { 0 };
	int fd, ret;

	if (parse_opts(argc, argv, &o))
		return VAKT_EXIT_ERROR;
	fd = connect_vaktd(o.socket);
	if (fd < 0)
		return VAKT_EXIT_ERROR;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = follow(fd, &o);
	close(fd);
	return ret;
}
