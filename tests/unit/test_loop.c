// SPDX-License-Identifier: Apache-2.0
/* The event loop: timers, fds, removal during a batch, stop, EINTR. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

struct counter {
	int n;
	int stop_at; /* stop the loop when n reaches it; 0: never */
	uint64_t first_ms;
};

static void count_timer(struct vakt_loop *l, void *arg)
{
	struct counter *c = arg;

	if (!c->n)
		c->first_ms = vakt_now_ms();
	if (++c->n == c->stop_at)
		vakt_loop_stop(l);
}

static void stop_timer(struct vakt_loop *l, void *arg)
{
	(void)arg;
	vakt_loop_stop(l);
}

static void test_one_shot_timer_fires_once_after_its_delay(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct counter c = {};
	uint64_t t0 = vakt_now_ms();
	long id;

	(void)state;
	assert_non_null(l);
	id = vakt_loop_add_timer(l, 30, 0, count_timer, &c);
	assert_true(id > 0);
	assert_true(vakt_loop_add_timer(l, 120, 0, stop_timer, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(c.n, 1);
	assert_true(c.first_ms - t0 >= 30);
	/* A fired one-shot timer is gone. */
	assert_int_equal(vakt_loop_cancel_timer(l, id), -ENOENT);
	vakt_loop_free(l);
}

static void test_periodic_timer_repeats_until_stopped(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct counter c = { .stop_at = 5 };

	(void)state;
	assert_true(vakt_loop_add_timer(l, 0, 5, count_timer, &c) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(c.n, 5);
	vakt_loop_free(l);
}

static void test_cancelled_timer_never_fires(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct counter c = {};
	long id;

	(void)state;
	id = vakt_loop_add_timer(l, 10, 10, count_timer, &c);
	assert_true(id > 0);
	assert_int_equal(vakt_loop_cancel_timer(l, id), 0);
	assert_int_equal(vakt_loop_cancel_timer(l, id), -ENOENT);
	assert_true(vakt_loop_add_timer(l, 60, 0, stop_timer, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(c.n, 0);
	vakt_loop_free(l);
}

struct pipe_ctx {
	int fds[2];
	int reads;
	char last;
};

static void on_readable(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct pipe_ctx *p = arg;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(fd, &p->last, 1), 1);
	if (++p->reads == 2)
		vakt_loop_stop(l);
}

static void write_b(struct vakt_loop *l, void *arg)
{
	struct pipe_ctx *p = arg;

	(void)l;
	assert_int_equal(write(p->fds[1], "b", 1), 1);
}

static void test_fd_callback_runs_when_readable(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct pipe_ctx p = {};

	(void)state;
	assert_int_equal(pipe(p.fds), 0);
	assert_int_equal(vakt_loop_add_fd(l, p.fds[0], EPOLLIN, on_readable, &p), 0);
	assert_int_equal(vakt_loop_add_fd(l, p.fds[0], EPOLLIN, on_readable, &p), -EEXIST);
	assert_int_equal(write(p.fds[1], "a", 1), 1);
	assert_true(vakt_loop_add_timer(l, 20, 0, write_b, &p) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(p.reads, 2);
	assert_int_equal(p.last, 'b');
	assert_int_equal(vakt_loop_del_fd(l, p.fds[0]), 0);
	assert_int_equal(vakt_loop_del_fd(l, p.fds[0]), -ENOENT);
	close(p.fds[0]);
	close(p.fds[1]);
	vakt_loop_free(l);
}

static void on_writable(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	int *n = arg;

	(void)fd;
	assert_true(events & EPOLLOUT);
	(*n)++;
	vakt_loop_stop(l);
}

static void test_mod_fd_switches_the_events_watched(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	int fds[2], n = 0;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	/* Watching only EPOLLIN of the write end never fires; after mod to EPOLLOUT it does. */
	assert_int_equal(vakt_loop_add_fd(l, fds[1], EPOLLIN, on_writable, &n), 0);
	assert_int_equal(vakt_loop_mod_fd(l, fds[1], EPOLLOUT), 0);
	assert_int_equal(vakt_loop_mod_fd(l, fds[0], EPOLLOUT), -ENOENT);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(n, 1);
	vakt_loop_del_fd(l, fds[1]);
	close(fds[0]);
	close(fds[1]);
	vakt_loop_free(l);
}

/* Two fds ready in the same batch; whichever runs first removes the other. */
struct victim {
	int fds[2][2];
	int calls;
};

static void remove_other(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct victim *v = arg;
	int other = fd == v->fds[0][0] ? v->fds[1][0] : v->fds[0][0];

	(void)events;
	v->calls++;
	vakt_loop_del_fd(l, fd);
	vakt_loop_del_fd(l, other);
	vakt_loop_add_timer(l, 30, 0, stop_timer, NULL);
}

static void test_fd_removed_during_a_batch_is_not_called(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct victim v = {};

	(void)state;
	assert_int_equal(pipe(v.fds[0]), 0);
	assert_int_equal(pipe(v.fds[1]), 0);
	assert_int_equal(vakt_loop_add_fd(l, v.fds[0][0], EPOLLIN, remove_other, &v), 0);
	assert_int_equal(vakt_loop_add_fd(l, v.fds[1][0], EPOLLIN, remove_other, &v), 0);
	assert_int_equal(write(v.fds[0][1], "x", 1), 1);
	assert_int_equal(write(v.fds[1][1], "x", 1), 1);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(v.calls, 1);
	for (int i = 0; i < 2; i++) {
		close(v.fds[i][0]);
		close(v.fds[i][1]);
	}
	vakt_loop_free(l);
}

struct self_cancel {
	long id;
	int calls;
};

static void cancel_self(struct vakt_loop *l, void *arg)
{
	struct self_cancel *s = arg;

	/* Periodic timer cancelling itself from its own callback. */
	assert_int_equal(vakt_loop_cancel_timer(l, s->id), 0);
	s->calls++;
}

static void test_timer_can_cancel_itself(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct self_cancel s = {};

	(void)state;
	s.id = vakt_loop_add_timer(l, 1, 1, cancel_self, &s);
	assert_true(s.id > 0);
	assert_true(vakt_loop_add_timer(l, 50, 0, stop_timer, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(s.calls, 1);
	vakt_loop_free(l);
}

struct sleep_ctx {
	int calls;
};

static void before_sleep(struct vakt_loop *l, void *arg)
{
	struct sleep_ctx *s = arg;

	if (++s->calls == 3)
		vakt_loop_stop(l);
}

static void noop_timer(struct vakt_loop *l, void *arg)
{
	(void)l;
	(void)arg;
}

static void test_before_sleep_runs_before_every_wait_and_can_stop(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct sleep_ctx s = {};

	(void)state;
	vakt_loop_set_before_sleep(l, before_sleep, &s);
	assert_true(vakt_loop_add_timer(l, 1, 1, noop_timer, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(s.calls, 3);
	vakt_loop_free(l);
}

static volatile sig_atomic_t g_alarms; /* written by the signal handler */

static void on_alarm(int sig)
{
	(void)sig;
	g_alarms++;
}

static void test_signals_interrupting_the_wait_are_not_errors(void **state)
{
	struct vakt_loop *l = vakt_loop_new();
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART: epoll_wait gets EINTR */
	struct itimerval it = { .it_interval = { 0, 5000 }, .it_value = { 0, 5000 } };
	struct itimerval off = {};

	(void)state;
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_true(vakt_loop_add_timer(l, 80, 0, stop_timer, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	setitimer(ITIMER_REAL, &off, NULL);
	assert_true(g_alarms > 0);
	vakt_loop_free(l);
}

static void test_bad_arguments_are_rejected(void **state)
{
	struct vakt_loop *l = vakt_loop_new();

	(void)state;
	assert_int_equal(vakt_loop_add_fd(l, -1, EPOLLIN, on_readable, NULL), -EINVAL);
	assert_int_equal(vakt_loop_add_fd(l, 0, EPOLLIN, NULL, NULL), -EINVAL);
	assert_int_equal(vakt_loop_add_timer(l, 1, 0, NULL, NULL), -EINVAL);
	assert_int_equal(vakt_loop_del_fd(l, 100000), -ENOENT);
	vakt_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_shot_timer_fires_once_after_its_delay),
		cmocka_unit_test(test_periodic_timer_repeats_until_stopped),
		cmocka_unit_test(test_cancelled_timer_never_fires),
		cmocka_unit_test(test_fd_callback_runs_when_readable),
		cmocka_unit_test(test_mod_fd_switches_the_events_watched),
		cmocka_unit_test(test_fd_removed_during_a_batch_is_not_called),
		cmocka_unit_test(test_timer_can_cancel_itself),
		cmocka_unit_test(test_before_sleep_runs_before_every_wait_and_can_stop),
		cmocka_unit_test(test_signals_interrupting_the_wait_are_not_errors),
		cmocka_unit_test(test_bad_arguments_are_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
