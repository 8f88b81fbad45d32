// SPDX-License-Identifier: Apache-2.0
/*
 * bench_rr - TCP request/response and connect/request/response load, the
 * part of netperf's TCP_RR and TCP_CRR that bench/bench_live.sh needs
 * (netperf is not in Debian 12).
 *
 *   bench_rr server PORT             single-threaded echo of 1-byte requests
 *   bench_rr rr IP PORT SECONDS      one connection, back-to-back 1-byte
 *                                    transactions: "rr_tps=N p50_us=X p99_us=Y"
 *   bench_rr crr IP PORT SECONDS     a new connection per transaction
 *                                    (abortive close, so no TIME_WAIT):
 *                                    "crr_cps=N"
 *   bench_rr probe IP PORT MS        one connect, at most MS milliseconds:
 *                                    exit 0 and "reachable" if it completes,
 *                                    exit 1 and "unreachable reason=..." if
 *                                    not (how the benchmarks prove that a
 *                                    configuration enforces, without waiting
 *                                    a whole second per check)
 *   bench_rr                         both against a loopback server for one
 *                                    second each: the tool's own cost
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listen_on(int port, int *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*bound = ntohs(sa.sin_port);
	return fd;
}

/* poll() over the listener and up to MAX_CONNS connections; echoes every byte. */
static void serve(int lfd)
{
	static struct pollfd p[MAX_CONNS + 1];
	nfds_t n = 1;
	char buf[256];

	p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		if (poll(p, n, -1) < 0 && errno != EINTR)
			return;
		for (nfds_t i = n; i-- > 1;) {
			ssize_t r;

			if (!p[i].revents)
				continue;
			r = recv(p[i].fd, buf, sizeof(buf), 0);
			if (r > 0 && send(p[i].fd, buf, (size_t)r, MSG_NOSIGNAL) == r)
				continue;
			close(p[i].fd);
			p[i] = p[--n];
		}
		if (p[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL), one = 1;

			if (c < 0)
				continue;
			if (n > MAX_CONNS) {
				close(c);
				continue;
			}
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
	}
}

static int connect_to(const char *ip, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int transact(int fd)
{
	char b = 'x';

	return send(fd, &b, 1, MSG_NOSIGNAL) == 1 && recv(fd, &b, 1, 0) == 1 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run_rr(const char *ip, int port, double seconds)
{
	size_t cap = 1 << 20, n = 0;
	double *lat = malloc(cap * sizeof(*lat)), t0, end, t;
	int fd = connect_to(ip, port);

	if (fd < 0 || !lat) {
		fprintf(stderr, "bench_rr: connect %s:%d: %s\n", ip, port, strerror(errno));
		free(lat);
		return 1;
	}
	t0 = now_s();
	end = t0 + seconds;
	for (t = t0; t < end;) {
		double s = t;

		if (transact(fd)) {
			fprintf(stderr, "bench_rr: transaction failed after %zu\n", n);
			break;
		}
		t = now_s();
		if (n == cap) {
			double *more = realloc(lat, cap * 2 * sizeof(*lat));

			if (!more)
				break; /* keep what was measured */
			lat = more;
			cap *= 2;
		}
		lat[n++] = t - s;
	}
	close(fd);
	if (!n) {
		free(lat);
		return 1;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("rr_tps=%.0f p50_us=%.2f p99_us=%.2f n=%zu\n", (double)n / (t - t0),
	       lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6, n);
	free(lat);
	return 0;
}

static int run_crr(const char *ip, int port, double seconds)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	double t0 = now_s(), end = t0 + seconds, t = t0;
	unsigned long n = 0, fails = 0;

	while (t < end) {
		int fd = connect_to(ip, port);

		if (fd >= 0 && !transact(fd))
			n++;
		else
			fails++;
		if (fd >= 0) {
			/* RST instead of FIN: no TIME_WAIT to exhaust the ephemeral ports. */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
		}
		t = now_s();
	}
	printf("crr_cps=%.0f n=%lu fails=%lu\n", (double)n / (t - t0), n, fails);
	return n ? 0 : 1;
}

/* Non-blocking connect so a dropped SYN costs MS milliseconds, not the
 * kernel's SYN retry schedule. */
static int run_probe(const char *ip, int port, int ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct pollfd p = { .events = POLLOUT };
	const char *why = NULL;
	int err = 0, r;
	socklen_t len = sizeof(err);

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "bench_rr: probe: bad address %s\n", ip);
		return 2;
	}
	p.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (p.fd < 0) {
		perror("bench_rr: probe: socket");
		return 2;
	}
	if (connect(p.fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		why = strerror(errno);
		goto out;
	}
	r = poll(&p, 1, ms);
	if (r == 0)
		why = "timeout";
	else if (r < 0 || getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len))
		why = strerror(errno);
	else if (err)
		why = strerror(err);
out:
	close(p.fd);
	if (why) {
		printf("unreachable reason=\"%s\"\n", why);
		return 1;
	}
	printf("reachable\n");
	return 0;
}

static void *server_thread(void *arg)
{
	serve(*(int *)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	static int lfd;
	pthread_t t;
	int port;

	if (argc == 3 && !strcmp(argv[1], "server")) {
		lfd = listen_on(atoi(argv[2]), &port);
		if (lfd < 0) {
			perror("bench_rr: listen");
			return 1;
		}
		printf("ready port=%d\n", port);
		fflush(stdout);
		serve(lfd);
		return 1;
	}
	if (argc == 5 && !strcmp(argv[1], "rr"))
		return run_rr(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "crr"))
		return run_crr(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "probe"))
		return run_probe(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc != 1) {
		fprintf(stderr, "usage: bench_rr [server PORT | rr IP PORT SECONDS | crr IP PORT SECONDS"
			" | probe IP PORT MS]\n");
		return 2;
	}
	lfd = listen_on(0, &port);
	if (lfd < 0 || pthread_create(&t, NULL, server_thread, &lfd)) {
		perror("bench_rr");
		return 1;
	}
	printf("bench_rr: loopback, the tool's own cost\n");
	return run_rr("127.0.0.1", port, 1.0) || run_crr("127.0.0.1", port, 1.0);
}
