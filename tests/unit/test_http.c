// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's HTTP server in a real event loop on loopback: routing,
 * methods, bounded requests, and slow or idle clients that must not block
 * anybody else. Clients run in a thread; the loop runs in the test thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http.h"
#include "loop.h"

struct fixture {
	struct vakt_loop *loop;
	struct vakt_http *srv;
	int port;
	int done_fd;
	void (*client)(struct fixture *f);
	int failed;
	char detail[256];
};

static int handler(void *arg, const char *path, FILE *body, const char **ctype)
{
	(void)arg;
	if (!strcmp(path, "/healthz")) {
		fputs("ok\n", body);
		return 200;
	}
	if (!strcmp(path, "/metrics")) {
		*ctype = "text/plain; version=0.0.4";
		for (int i = 0; i < 20000; i++) /* larger than a socket buffer */
			fprintf(body, "vakt_x{i=\"%d\"} %d\n", i, i);
		return 200;
	}
	fputs("nope\n", body);
	return 404;
}

static int connect_srv(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends req, reads the whole response (until close) into a malloc'd string. */
static char *roundtrip_fd(int fd, const char *req, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	if (req && send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		free(buf);
		return NULL;
	}
	while ((r = recv(fd, buf + n, cap - n - 1, 0)) > 0) {
		n += (size_t)r;
		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *roundtrip(int port, const char *req)
{
	int fd = connect_srv(port);
	char *r;

	if (fd < 0)
		return NULL;
	r = roundtrip_fd(fd, req, NULL);
	close(fd);
	return r;
}

#define CHECK(f, cond, ...)                                                          \
	do {                                                                         \
		if (!(cond) && !(f)->failed) {                                       \
			(f)->failed = 1;                                             \
			snprintf((f)->detail, sizeof((f)->detail), __VA_ARGS__);     \
		}                                                                    \
	} while (0)

static void *client_thread(void *arg)
{
	struct fixture *f = arg;
	uint64_t one = 1;

	f->client(f);
	if (write(f->done_fd, &one, sizeof(one)) < 0)
		f->failed = 1;
	return NULL;
}

static void on_done(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	vakt_loop_stop(l);
}

static void run_client(void (*client)(struct fixture *f))
{
	struct fixture f = { .client = client };
	pthread_t t;

	f.loop = vakt_loop_new();
	assert_non_null(f.loop);
	assert_int_equal(vakt_http_open(f.loop, "127.0.0.1:0", handler, NULL, &f.srv), 0);
	f.port = vakt_http_port(f.srv);
	assert_true(f.port > 0);
	f.done_fd = eventfd(0, EFD_NONBLOCK);
	assert_true(f.done_fd >= 0);
	assert_int_equal(vakt_loop_add_fd(f.loop, f.done_fd, EPOLLIN, on_done, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, client_thread, &f), 0);
	assert_int_equal(vakt_loop_run(f.loop), 0);
	pthread_join(t, NULL);
	vakt_loop_del_fd(f.loop, f.done_fd);
	close(f.done_fd);
	vakt_http_close(f.srv);
	vakt_loop_free(f.loop);
	if (f.failed)
		fail_msg("%s", f.detail);
}

static void get_routes(struct fixture *f)
{
	char *r = roundtrip(f->port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");

	CHECK(f, r && !strncmp(r, "HTTP/1.1 200 OK\r\n", 17), "healthz: %s", r ? r : "(none)");
	CHECK(f, r && strstr(r, "\r\nContent-Length: 3\r\n") && strstr(r, "\r\n\r\nok\n"),
	      "healthz body: %s", r ? r : "(none)");
	free(r);
	r = roundtrip(f->port, "GET /healthz?verbose=1 HTTP/1.0\r\n\r\n");
	CHECK(f, r && !strncmp(r, "HTTP/1.1 200", 12), "query string: %s", r ? r : "(none)");
	free(r);
	r = roundtrip(f->port, "GET /other HTTP/1.1\r\n\r\n");
	CHECK(f, r && !strncmp(r, "HTTP/1.1 404", 12), "404: %s", r ? r : "(none)");
	free(r);
}

static void test_get_serves_handler_status_and_body(void **state)
{
	(void)state;
	run_client(get_routes);
}

static void methods(struct fixture *f)
{
	char *r = roundtrip(f->port, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");

	CHECK(f, r && !strncmp(r, "HTTP/1.1 405", 12) && strstr(r, "Allow: GET, HEAD"),
	      "POST: %s", r ? r : "(none)");
	free(r);
	r = roundtrip(f->port, "HEAD /healthz HTTP/1.1\r\n\r\n");
	CHECK(f, r && !strncmp(r, "HTTP/1.1 200", 12) && strstr(r, "Content-Length: 3") &&
			 !strstr(r, "ok\n"),
	      "HEAD: %s", r ? r : "(none)");
	free(r);
	r = roundtrip(f->port, "garbage\r\n\r\n");
	CHECK(f, r && !strncmp(r, "HTTP/1.1 400", 12), "garbage: %s", r ? r : "(none)");
	free(r);
}

static void test_only_get_and_head_are_served_and_garbage_is_400(void **state)
{
	(void)state;
	run_client(methods);
}

static void oversized(struct fixture *f)
{
	char *req = malloc(VAKT_HTTP_MAX_REQUEST * 2);
	char *r;

	memset(req, 'a', VAKT_HTTP_MAX_REQUEST * 2 - 1);
	memcpy(req, "GET /", 5);
	req[VAKT_HTTP_MAX_REQUEST * 2 - 1] = '\0';
	r = roundtrip(f->port, req);
	CHECK(f, r && !strncmp(r, "HTTP/1.1 431", 12), "oversized: %.40s", r ? r : "(none)");
	free(r);
	free(req);
}

static void test_request_head_beyond_the_bound_gets_431(void **state)
{
	(void)state;
	run_client(oversized);
}

static void large_body(struct fixture *f)
{
	size_t len = 0;
	int fd = connect_srv(f->port);
	char *r;

	r = fd >= 0 ? roundtrip_fd(fd, "GET /metrics HTTP/1.1\r\n\r\n", &len) : NULL;
	CHECK(f, r && strstr(r, "vakt_x{i=\"19999\"} 19999\n"), "large body truncated (%zu bytes)",
	      len);
	free(r);
	if (fd >= 0)
		close(fd);
}

static void test_large_response_is_written_completely(void **state)
{
	(void)state;
	run_client(large_body);
}

static void idle_clients(struct fixture *f)
{
	int idle[8], slow, n = 0;
	char *r;
	char b;

	/* Idle and trickling clients hold slots but never the loop. */
	for (int i = 0; i < 8; i++)
		idle[i] = connect_srv(f->port);
	slow = connect_srv(f->port);
	CHECK(f, slow >= 0 && send(slow, "GET /hea", 8, 0) == 8, "slow client");
	r = roundtrip(f->port, "GET /healthz HTTP/1.1\r\n\r\n");
	CHECK(f, r && !strncmp(r, "HTTP/1.1 200", 12), "with idle clients: %s", r ? r : "(none)");
	free(r);
	/* After the read timeout the server has closed them: recv sees EOF. */
	for (int i = 0; i < 8; i++) {
		if (idle[i] >= 0 && recv(idle[i], &b, 1, 0) == 0)
			n++;
		if (idle[i] >= 0)
			close(idle[i]);
	}
	CHECK(f, n == 8, "only %d of 8 idle clients were closed by the server", n);
	CHECK(f, slow >= 0 && recv(slow, &b, 1, 0) == 0, "trickling client not closed");
	if (slow >= 0)
		close(slow);
}

static void test_idle_and_trickling_clients_are_cut_after_the_read_timeout(void **state)
{
	(void)state;
	run_client(idle_clients);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_serves_handler_status_and_body),
		cmocka_unit_test(test_only_get_and_head_are_served_and_garbage_is_400),
		cmocka_unit_test(test_request_head_beyond_the_bound_gets_431),
		cmocka_unit_test(test_large_response_is_written_completely),
		cmocka_unit_test(test_idle_and_trickling_clients_are_cut_after_the_read_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
