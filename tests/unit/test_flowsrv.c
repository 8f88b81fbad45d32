// SPDX-License-Identifier: Apache-2.0
/*
 * The flows socket (agent/flowsrv.c) in a real event loop with real unix
 * sockets in a temporary directory: several subscribers, a slow one that
 * must not hold up the others and learns how many events it lost, clients
 * that misbehave or vanish, the socket file's lifecycle, the line format
 * (against tests/flows/events.jsonl, which tests/flows/test_flows_cli.sh
 * feeds to `vakt flows`), and the real `vakt flows` binary against the real
 * server.
 *
 * Runs from the repository root (as tests/run.sh does); $BUILD names the
 * build directory (default build).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "flowsrv.h"
#include "log.h"
#include "loop.h"
#include "model.h"

/* Fixed clock for the golden lines: mono 5 s is 2025-01-02T03:04:05.678901234Z. */
#define GOLDEN_OFFSET 1735787040678901234LL
#define GOLDEN_FILE "tests/flows/events.jsonl"

struct fx {
	char dir[64];
	char path[128];
	struct vakt_loop *loop;
	struct vakt_flowsrv *srv;
};

/* A subscriber as the test sees it: a socket and the bytes not yet split into lines. */
struct sub {
	int fd;
	size_t have;
	char buf[1 << 16];
};

static void stop_cb(struct vakt_loop *l, void *arg)
{
	(void)arg;
	vakt_loop_stop(l);
}

/* Lets the server's loop handle whatever is pending (accepts, EPOLLOUT, hangups). */
static void spin(struct fx *f, uint64_t ms)
{
	assert_true(vakt_loop_add_timer(f->loop, ms, 0, stop_cb, NULL) > 0);
	assert_int_equal(vakt_loop_run(f->loop), 0);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err = 0;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vkt-flows-XXXXXX");
	if (!mkdtemp(f->dir))
		goto fail;
	snprintf(f->path, sizeof(f->path), "%s/run/vakt/flows.sock", f->dir);
	f->loop = vakt_loop_new();
	if (!f->loop)
		goto fail_dir;
	f->srv = vakt_flowsrv_open(f->loop, f->path, &err);
	if (!f->srv) {
		fprintf(stderr, "vakt_flowsrv_open: %d\n", err);
		goto fail_loop;
	}
	*state = f;
	/* A test that hangs on a blocked server fails instead of running forever. */
	alarm(60);
	return 0;
fail_loop:
	vakt_loop_free(f->loop);
fail_dir:
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
fail:
	free(f);
	return -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	alarm(0);
	vakt_flowsrv_close(f->srv);
	vakt_loop_free(f->loop);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static struct sub *subscribe(struct fx *f)
{
	struct sub *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->fd = connect_path(f->path);
	assert_true(s->fd >= 0);
	return s;
}

static void unsubscribe(struct sub *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/*
 * Next complete line of s (without '\n') into line, without waiting: 1 if
 * there was one, 0 if not (yet), -1 at EOF with nothing buffered.
 */
static int next_line(struct sub *s, char *line, size_t len)
{
	for (;;) {
		char *nl = memchr(s->buf, '\n', s->have);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - s->buf);

			assert_true(l < len);
			memcpy(line, s->buf, l);
			line[l] = '\0';
			s->have -= l + 1;
			memmove(s->buf, nl + 1, s->have);
			return 1;
		}
		assert_true(s->have < sizeof(s->buf));
		n = recv(s->fd, s->buf + s->have, sizeof(s->buf) - s->have, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		s->have += (size_t)n;
	}
}

static struct vakt_drop_event event(uint32_t seq)
{
	struct vakt_drop_event e = { 0 };

	vakt_addr_parse("10.244.1.5", &e.saddr, NULL);
	vakt_addr_parse("10.244.1.9", &e.daddr, NULL);
	e.ts_ns = 5000000000ULL + seq;
	e.sport = htons(40000);
	e.dport = htons(80);
	e.proto = 6;
	e.dir = VAKT_DIR_INGRESS;
	e.reason = VAKT_R_POLICY_DENIED;
	e.ep_id = seq; /* the sequence number, so order and gaps can be checked */
	e.ifindex = 7;
	return e;
}

/* Parses a line the server sent; the caller json_decref()s. */
static json_t *parse(const char *line)
{
	json_error_t err;
	json_t *j = json_loads(line, 0, &err);

	if (!j)
		fail_msg("not JSON (%s): %s", err.text, line);
	return j;
}

static const char *type_of(json_t *j)
{
	return json_string_value(json_object_get(j, "type"));
}

static long long int_of(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	if (!json_is_integer(v))
		fail_msg("%s is not an integer", key);
	return (long long)json_integer_value(v);
}

/* --- the line format ------------------------------------------------------------ */

static size_t golden_events(struct vakt_drop_event *ev, const char **ns, const char **pod)
{
	struct vakt_drop_event e = event(0);

	/* IPv4 TCP, a named pod. */
	e.ts_ns = 5000000000ULL;
	e.ep_id = 3;
	ev[0] = e;
	ns[0] = "default";
	pod[0] = "web-7d9f";
	/* IPv6 UDP egress, revoked. */
	vakt_addr_parse("fd00::1", &e.saddr, NULL);
	vakt_addr_parse("fd00::2", &e.daddr, NULL);
	e.ts_ns = 5250000000ULL;
	e.sport = htons(5353);
	e.dport = htons(53);
	e.proto = 17;
	e.dir = VAKT_DIR_EGRESS;
	e.reason = VAKT_R_REVOKED;
	e.ep_id = 4;
	e.ifindex = 8;
	ev[1] = e;
	ns[1] = "prod";
	pod[1] = "api-0";
	/* ICMP of an endpoint without a name yet. */
	e = event(0);
	vakt_addr_parse("10.0.0.1", &e.saddr, NULL);
	vakt_addr_parse("10.0.0.2", &e.daddr, NULL);
	e.ts_ns = 6000000001ULL;
	e.sport = e.dport = 0;
	e.proto = 1;
	e.ep_id = 9;
	e.ifindex = 11;
	ev[2] = e;
	ns[2] = pod[2] = NULL;
	/* SCTP, malformed. */
	e = event(0);
	e.ts_ns = 7000000000ULL;
	e.sport = htons(3868);
	e.dport = htons(3868);
	e.proto = 132;
	e.reason = VAKT_R_MALFORMED;
	e.ep_id = 3;
	ev[3] = e;
	ns[3] = "default";
	pod[3] = "web-7d9f";
	/* GRE (no ports), egress, fail closed. */
	e = event(0);
	e.ts_ns = 8000000000ULL;
	e.sport = e.dport = 0;
	e.proto = 47;
	e.dir = VAKT_DIR_EGRESS;
	e.reason = VAKT_R_FAIL_CLOSED;
	e.ep_id = 5;
	ev[4] = e;
	ns[4] = "kube-system";
	pod[4] = "coredns-1";
	return 5;
}

static void test_event_lines_match_the_golden_file_the_cli_test_uses(void **state)
{
	struct vakt_drop_event ev[8];
	const char *ns[8], *pod[8];
	size_t n = golden_events(ev, ns, pod);
	char want[VAKT_FLOWSRV_LINE_MAX], got[VAKT_FLOWSRV_LINE_MAX];
	FILE *g = fopen(GOLDEN_FILE, "r");

	(void)state;
	if (!g)
		fail_msg("cannot open %s (run from the repository root): %s", GOLDEN_FILE,
			 strerror(errno));
	for (size_t i = 0; i < n; i++) {
		int len = vakt_flowsrv_format(&ev[i], ns[i], pod[i], GOLDEN_OFFSET, got,
					      sizeof(got));

		assert_true(len > 0);
		assert_int_equal((size_t)len, strlen(got));
		if (!fgets(want, sizeof(want), g))
			fail_msg("%s has fewer than %zu lines", GOLDEN_FILE, n);
		assert_string_equal(got, want);
	}
	/* The golden file ends with a "lost" line: the server's, byte for byte. */
	assert_non_null(fgets(want, sizeof(want), g));
	assert_string_equal(want, "{\"type\":\"lost\",\"count\":42,\"msg\":\"dropped 42 events\"}\n");
	assert_null(fgets(want, sizeof(want), g));
	fclose(g);
}

static void test_names_are_escaped_into_valid_json_and_unknown_names_are_null(void **state)
{
	struct vakt_drop_event e = event(1);
	char line[VAKT_FLOWSRV_LINE_MAX], big[VAKT_NAME_MAX + 64];
	json_t *j;

	(void)state;
	assert_true(vakt_flowsrv_format(&e, "we\"ird\\ns", "tab\there\n\x01\xc3", 0, line,
					sizeof(line)) > 0);
	j = parse(line);
	assert_string_equal(json_string_value(json_object_get(j, "namespace")), "we\"ird\\ns");
	assert_string_equal(json_string_value(json_object_get(j, "pod")),
			    "tab\there\n\x01\xc3\x83"); /* byte 0xc3 as U+00C3 */
	json_decref(j);
	/* An unterminated name is cut at VAKT_NAME_MAX bytes, never overread. */
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	assert_true(vakt_flowsrv_format(&e, NULL, big, 0, line, sizeof(line)) > 0);
	j = parse(line);
	assert_true(json_is_null(json_object_get(j, "namespace")));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "pod"))), VAKT_NAME_MAX);
	json_decref(j);
	/* A buffer too small is an error, not a cut line. */
	assert_int_equal(vakt_flowsrv_format(&e, "a", "b", 0, line, 40), -ENOSPC);
	assert_string_equal(line, "");
}

static void test_published_timestamps_are_wall_clock(void **state)
{
	struct fx *f = *state;
	struct sub *s = subscribe(f);
	struct vakt_drop_event e = event(1);
	struct timespec mono, real;
	char line[VAKT_FLOWSRV_LINE_MAX], want[32];
	struct tm tm;
	json_t *j;

	spin(f, 5);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	e.ts_ns = (uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec;
	vakt_flowsrv_publish(f->srv, &e, "ns", "pod");
	assert_int_equal(next_line(s, line, sizeof(line)), 1);
	j = parse(line);
	gmtime_r(&real.tv_sec, &tm);
	strftime(want, sizeof(want), "%Y-%m-%dT%H:%M", &tm);
	/* Same minute as now (a minute boundary in between would be one in 60 s). */
	assert_memory_equal(json_string_value(json_object_get(j, "ts")), want, strlen(want));
	json_decref(j);
	unsubscribe(s);
}

/* --- several subscribers ------------------------------------------------------ */

static void test_every_subscriber_gets_every_event_in_order(void **state)
{
	struct fx *f = *state;
	struct sub *s[3];
	struct vakt_flowsrv_stats st;
	char line[VAKT_FLOWSRV_LINE_MAX];

	(void)state;
	for (int i = 0; i < 3; i++)
		s[i] = subscribe(f);
	spin(f, 5);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, 3);
	for (uint32_t seq = 1; seq <= 100; seq++) {
		struct vakt_drop_event e = event(seq);

		vakt_flowsrv_publish(f->srv, &e, "default", "web");
	}
	spin(f, 5);
	for (int i = 0; i < 3; i++) {
		for (uint32_t seq = 1; seq <= 100; seq++) {
			json_t *j;

			assert_int_equal(next_line(s[i], line, sizeof(line)), 1);
			j = parse(line);
			assert_string_equal(type_of(j), "drop");
			assert_int_equal(int_of(j, "ep_id"), seq);
			assert_string_equal(json_string_value(json_object_get(j, "src")),
					    "10.244.1.5");
			assert_string_equal(json_string_value(json_object_get(j, "dst")),
					    "10.244.1.9");
			assert_int_equal(int_of(j, "sport"), 40000);
			assert_int_equal(int_of(j, "dport"), 80);
			assert_string_equal(json_string_value(json_object_get(j, "proto")), "tcp");
			assert_string_equal(json_string_value(json_object_get(j, "namespace")),
					    "default");
			assert_string_equal(json_string_value(json_object_get(j, "pod")), "web");
			assert_string_equal(json_string_value(json_object_get(j, "direction")),
					    "ingress");
			assert_string_equal(json_string_value(json_object_get(j, "reason")),
					    "policy_denied");
			json_decref(j);
		}
		assert_int_equal(next_line(s[i], line, sizeof(line)), 0);
	}
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.published, 100);
	assert_int_equal(st.lost, 0);
	assert_int_equal(st.accepted, 3);
	for (int i = 0; i < 3; i++)
		unsubscribe(s[i]);
}

/* Reads every line s has now; checks order and that each "lost" count is
 * exactly the gap it stands for. Returns the drop events seen. */
static uint64_t drain_checked(struct sub *s, uint32_t *last_seq, uint64_t *pending_lost,
			      uint64_t *lost_lines)
{
	char line[VAKT_FLOWSRV_LINE_MAX];
	uint64_t drops = 0;

	while (next_line(s, line, sizeof(line)) == 1) {
		json_t *j = parse(line);

		if (!strcmp(type_of(j), "lost")) {
			assert_int_equal(*pending_lost, 0); /* never two in a row */
			*pending_lost = (uint64_t)int_of(j, "count");
			assert_true(*pending_lost > 0);
			(*lost_lines)++;
		} else {
			uint32_t seq = (uint32_t)int_of(j, "ep_id");

			assert_string_equal(type_of(j), "drop");
			assert_int_equal(seq, *last_seq + 1 + *pending_lost);
			*last_seq = seq;
			*pending_lost = 0;
			drops++;
		}
		json_decref(j);
	}
	return drops;
}

static void test_slow_subscriber_loses_events_others_do_not_and_it_is_told(void **state)
{
	struct fx *f = *state;
	struct sub *fast = subscribe(f), *slow = subscribe(f);
	const uint32_t total = 20000, batch = 100;
	uint32_t fast_last = 0, slow_last = 0;
	uint64_t fast_lost = 0, slow_pending = 0, lines = 0, slow_drops = 0, fast_drops = 0;
	struct vakt_flowsrv_stats st;

	spin(f, 5);
	/* The slow subscriber reads nothing while far more than its socket buffer
	 * plus its queue is published; the fast one reads after every batch. */
	for (uint32_t seq = 1; seq <= total; seq++) {
		struct vakt_drop_event e = event(seq);

		vakt_flowsrv_publish(f->srv, &e, "default", "web");
		if (seq % batch == 0) {
			spin(f, 1);
			fast_drops += drain_checked(fast, &fast_last, &fast_lost, &lines);
		}
	}
	assert_int_equal(fast_drops, total);
	assert_int_equal(lines, 0);
	vakt_flowsrv_stats(f->srv, &st);
	assert_true(st.lost > 0);
	/* Now it catches up: what it gets plus what it is told it lost is everything. */
	for (int i = 0; i < 2000 && slow_last + slow_pending < total; i++) {
		slow_drops += drain_checked(slow, &slow_last, &slow_pending, &lines);
		spin(f, 1);
	}
	assert_int_equal(slow_last + slow_pending, total);
	assert_true(lines >= 1);
	assert_int_equal(slow_drops + st.lost, total);
	/* Events after the catch-up arrive again, without a second lost line. */
	for (uint32_t seq = total + 1; seq <= total + 10; seq++) {
		struct vakt_drop_event e = event(seq);

		vakt_flowsrv_publish(f->srv, &e, NULL, NULL);
	}
	spin(f, 5);
	lines = 0;
	slow_drops = drain_checked(slow, &slow_last, &slow_pending, &lines);
	/* A lost count still pending at the end was reported by the line before. */
	assert_int_equal(slow_drops, 10);
	assert_int_equal(slow_last, total + 10);
	assert_int_equal(lines, 0);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, 2);
	unsubscribe(fast);
	unsubscribe(slow);
}

/* --- misbehaving subscribers --------------------------------------------------- */

static int at_eof(struct sub *s)
{
	char line[VAKT_FLOWSRV_LINE_MAX];
	int r;

	while ((r = next_line(s, line, sizeof(line))) == 1)
		;
	return r == -1;
}

static void test_subscriber_that_sends_data_is_disconnected_others_stay(void **state)
{
	struct fx *f = *state;
	struct sub *good = subscribe(f), *chatty = subscribe(f);
	struct vakt_drop_event e = event(1);
	struct vakt_flowsrv_stats st;
	char line[VAKT_FLOWSRV_LINE_MAX];

	spin(f, 5);
	assert_int_equal(send(chatty->fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL), 18);
	spin(f, 5);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, 1);
	assert_true(at_eof(chatty));
	vakt_flowsrv_publish(f->srv, &e, "a", "b");
	spin(f, 5);
	assert_int_equal(next_line(good, line, sizeof(line)), 1);
	unsubscribe(good);
	unsubscribe(chatty);
}

static void test_vanished_subscribers_are_removed_without_harm(void **state)
{
	struct fx *f = *state;
	struct sub *good = subscribe(f), *gone = subscribe(f), *reset = subscribe(f);
	struct vakt_flowsrv_stats st;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char line[VAKT_FLOWSRV_LINE_MAX];

	spin(f, 5);
	/* One closes and the loop notices; one closes and the next publish
	 * notices (EPIPE on send, before the loop ran). */
	close(gone->fd);
	gone->fd = -1;
	spin(f, 5);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, 2);
	setsockopt(reset->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(reset->fd);
	reset->fd = -1;
	for (uint32_t seq = 1; seq <= 3; seq++) {
		struct vakt_drop_event e = event(seq);

		vakt_flowsrv_publish(f->srv, &e, "a", "b");
	}
	spin(f, 5);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(next_line(good, line, sizeof(line)), 1);
	unsubscribe(good);
	unsubscribe(gone);
	unsubscribe(reset);
}

static void test_subscribers_beyond_the_limit_are_told_and_closed(void **state)
{
	struct fx *f = *state;
	struct sub *s[VAKT_FLOWSRV_MAX_CLIENTS + 1];
	struct vakt_flowsrv_stats st;
	char line[VAKT_FLOWSRV_LINE_MAX];
	json_t *j;
	int r;

	for (int i = 0; i <= VAKT_FLOWSRV_MAX_CLIENTS; i++) {
		s[i] = subscribe(f);
		spin(f, 1); /* accept in order */
	}
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, VAKT_FLOWSRV_MAX_CLIENTS);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(next_line(s[VAKT_FLOWSRV_MAX_CLIENTS], line, sizeof(line)), 1);
	j = parse(line);
	assert_string_equal(type_of(j), "error");
	json_decref(j);
	assert_true(at_eof(s[VAKT_FLOWSRV_MAX_CLIENTS]));
	/* A slot freed is a slot usable again. */
	unsubscribe(s[0]);
	spin(f, 5);
	s[0] = subscribe(f);
	spin(f, 5);
	vakt_flowsrv_stats(f->srv, &st);
	assert_int_equal(st.clients, VAKT_FLOWSRV_MAX_CLIENTS);
	r = next_line(s[0], line, sizeof(line));
	assert_int_equal(r, 0); /* connected, nothing to read: not rejected */
	for (int i = 0; i <= VAKT_FLOWSRV_MAX_CLIENTS; i++)
		unsubscribe(s[i]);
}

/* --- the socket file ------------------------------------------------------------ */

static void test_socket_is_0660_in_a_created_directory(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char dir[160];

	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	snprintf(dir, sizeof(dir), "%s/run/vakt", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void test_live_socket_is_refused_stale_replaced_and_files_kept(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vakt_flowsrv *other;
	char path[100];
	struct stat st;
	int err = 0, fd;

	/* Another agent serves this path: left alone. */
	other = vakt_flowsrv_open(f->loop, f->path, &err);
	assert_null(other);
	assert_int_equal(err, -EADDRINUSE);
	assert_int_equal(lstat(f->path, &st), 0);
	fd = connect_path(f->path);
	assert_true(fd >= 0);
	close(fd);
	/* A socket nobody listens on any more (a dead agent's): replaced. */
	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(connect_path(path), -ECONNREFUSED);
	other = vakt_flowsrv_open(f->loop, path, &err);
	assert_non_null(other);
	fd = connect_path(path);
	assert_true(fd >= 0);
	close(fd);
	vakt_flowsrv_close(other);
	assert_int_equal(lstat(path, &st), -1);
	/* Not a socket: an error, and the file stays. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_null(vakt_flowsrv_open(f->loop, path, &err));
	assert_int_equal(err, -EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_close_removes_only_its_own_socket_file(void **state)
{
	struct fx *f = *state;
	struct vakt_flowsrv *old, *succ;
	char path[160];
	struct stat st;
	int err = 0, fd;

	snprintf(path, sizeof(path), "%s/handover.sock", f->dir);
	old = vakt_flowsrv_open(f->loop, path, &err);
	assert_non_null(old);
	/* A successor that found the file gone (or replaced it) owns the path now. */
	assert_int_equal(unlink(path), 0);
	succ = vakt_flowsrv_open(f->loop, path, &err);
	assert_non_null(succ);
	vakt_flowsrv_close(old);
	assert_int_equal(lstat(path, &st), 0);
	fd = connect_path(path);
	assert_true(fd >= 0);
	close(fd);
	vakt_flowsrv_close(succ);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* A path that does not fit a sockaddr_un is refused up front. */
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_null(vakt_flowsrv_open(f->loop, path, &err));
	assert_int_equal(err, -ENAMETOOLONG);
}

/* --- the real CLI against the real server ----------------------------------------- */

static void test_vakt_flows_cli_prints_what_the_server_publishes(void **state)
{
	struct fx *f = *state;
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char bin[256], out[8192];
	struct vakt_flowsrv_stats st;
	size_t have = 0;
	int p[2], status;
	pid_t pid;
	ssize_t n;

	snprintf(bin, sizeof(bin), "%s/vakt", build);
	if (access(bin, X_OK))
		fail_msg("%s is not built (make %s)", bin, bin);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(bin, "vakt", "flows", "--socket", f->path, "-n", "2", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* Wait until the CLI subscribed, then publish. */
	for (int i = 0; i < 5000; i++) {
		spin(f, 1);
		vakt_flowsrv_stats(f->srv, &st);
		if (st.clients == 1)
			break;
	}
	assert_int_equal(st.clients, 1);
	for (uint32_t seq = 1; seq <= 2; seq++) {
		struct vakt_drop_event e = event(seq);

		e.ts_ns = 5000000000ULL;
		vakt_flowsrv_publish(f->srv, &e, "default", seq == 1 ? "web" : NULL);
	}
	spin(f, 5);
	while ((n = read(p[0], out + have, sizeof(out) - 1 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Timestamps are wall clock here: compare what follows them. */
	assert_non_null(strstr(out, "Z ingress default/web 10.244.1.5:40000 -> 10.244.1.9:80 "
				    "tcp policy_denied\n"));
	assert_non_null(strstr(out, "Z ingress ep:2 10.244.1.5:40000 -> 10.244.1.9:80 "
				    "tcp policy_denied\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_lines_match_the_golden_file_the_cli_test_uses),
		cmocka_unit_test(test_names_are_escaped_into_valid_json_and_unknown_names_are_null),
		cmocka_unit_test_setup_teardown(test_published_timestamps_are_wall_clock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_every_subscriber_gets_every_event_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_slow_subscriber_loses_events_others_do_not_and_it_is_told, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_subscriber_that_sends_data_is_disconnected_others_stay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished_subscribers_are_removed_without_harm,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_subscribers_beyond_the_limit_are_told_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_is_0660_in_a_created_directory, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_live_socket_is_refused_stale_replaced_and_files_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_removes_only_its_own_socket_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_vakt_flows_cli_prints_what_the_server_publishes, setup, teardown),
	};

	vakt_log_set_level(VAKT_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
