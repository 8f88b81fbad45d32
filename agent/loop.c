// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define LOOP_BATCH 64

enum entry_kind { ENTRY_FD, ENTRY_TIMER };

/*
 * One registration. epoll reports the entry pointer, so a removed entry must
 * outlive the batch in which it may still be reported: removal marks it dead
 * and moves it to the graveyard, which is emptied between batches.
 */
struct entry {
	enum entry_kind kind;
	int fd;
	int dead;
	uint32_t events;
	vakt_fd_cb fd_cb;
	vakt_timer_cb timer_cb;
	void *arg;
	long id;          /* timers */
	uint64_t every_ms; /* timers: 0 = one-shot */
	struct entry *next; /* live timers list, or graveyard */
};

struct vakt_loop {
	int epfd;
	int stop;
	struct entry **byfd; /* fd entries indexed by fd */
	size_t nbyfd;
	struct entry *timers;
	struct entry *graveyard;
	long next_timer_id;
	void (*before_sleep)(struct vakt_loop *l, void *arg);
	void *before_sleep_arg;
};

uint64_t vakt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct vakt_loop *vakt_loop_new(void)
{
	struct vakt_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_error("epoll_create1 failed", "err=%d", -errno);
		free(l);
		return NULL;
	}
	l->next_timer_id = 1;
	return l;
}

static void bury(struct vakt_loop *l, struct entry *e)
{
	e->dead = 1;
	e->next = l->graveyard;
	l->graveyard = e;
}

static void empty_graveyard(struct vakt_loop *l)
{
	while (l->graveyard) {
		struct entry *e = l->graveyard;

		l->graveyard = e->next;
		free(e);
	}
}

void vakt_loop_free(struct vakt_loop *l)
{
	if (!l)
		return;
	while (l->timers) {
		struct entry *t = l->timers;

		l->timers = t->next;
		close(t->fd);
		free(t);
	}
	for (size_t i = 0; i < l->nbyfd; i++)
		free(l->byfd[i]);
	free(l->byfd);
	empty_graveyard(l);
	close(l->epfd);
	free(l);
}

static int fd_slot(struct vakt_loop *l, int fd)
{
	size_t n;
	struct entry **p;

	if ((size_t)fd < l->nbyfd)
		return 0;
	n = l->nbyfd ? l->nbyfd : 64;
	while (n <= (size_t)fd)
		n *= 2;
	p = realloc(l->byfd, n * sizeof(struct entry *));
	if (!p)
		return -ENOMEM;
	memset(p + l->nbyfd, 0, (n - l->nbyfd) * sizeof(struct entry *));
	l->byfd = p;
	l->nbyfd = n;
	return 0;
}

static int epoll_add(struct vakt_loop *l, struct entry *e)
{
	struct epoll_event ev = { .events = e->events, .data.ptr = e };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0)
		return -errno;
	return 0;
}

int vakt_loop_add_fd(struct vakt_loop *l, int fd, uint32_t events, vakt_fd_cb cb, void *arg)
{
	struct entry *e;
	int err;

	if (fd < 0 || !cb)
		return -EINVAL;
	err = fd_slot(l, fd);
	if (err)
		return err;
	if (l->byfd[fd])
		return -EEXIST;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*e = (struct entry){ .kind = ENTRY_FD, .fd = fd, .events = events, .fd_cb = cb, .arg = arg };
	err = epoll_add(l, e);
	if (err) {
		log_error("epoll add failed", "fd=%d err=%d", fd, err);
		free(e);
		return err;
	}
	l->byfd[fd] = e;
	return 0;
}

static struct entry *fd_entry(struct vakt_loop *l, int fd)
{
	return fd >= 0 && (size_t)fd < l->nbyfd ? l->byfd[fd] : NULL;
}

int vakt_loop_mod_fd(struct vakt_loop *l, int fd, uint32_t events)
{
	struct entry *e = fd_entry(l, fd);
	struct epoll_event ev = { .events = events };

	if (!e)
		return -ENOENT;
	ev.data.ptr = e;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
		int err = -errno;

		log_error("epoll mod failed", "fd=%d err=%d", fd, err);
		return err;
	}
	e->events = events;
	return 0;
}

int vakt_loop_del_fd(struct vakt_loop *l, int fd)
{
	struct entry *e = fd_entry(l, fd);

	if (!e)
		return -ENOENT;
	/* The fd may already be closed by a careless caller: nothing to undo then. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->byfd[fd] = NULL;
	bury(l, e);
	return 0;
}

static void ms_to_ts(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

long vakt_loop_add_timer(struct vakt_loop *l, uint64_t after_ms, uint64_t every_ms,
			 vakt_timer_cb cb, void *arg)
{
	struct itimerspec its = {};
	struct entry *t;
	int err;

	if (!cb)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0) {
		err = -errno;
		log_error("timerfd_create failed", "err=%d", err);
		goto err_free;
	}
	/* A zero it_value disarms a timerfd: "now" is the smallest non-zero delay. */
	ms_to_ts(after_ms, &its.it_value);
	if (!after_ms)
		its.it_value.tv_nsec = 1;
	ms_to_ts(every_ms, &its.it_interval);
	if (timerfd_settime(t->fd, 0, &its, NULL) < 0) {
		err = -errno;
		log_error("timerfd_settime failed", "err=%d", err);
		goto err_close;
	}
	t->kind = ENTRY_TIMER;
	t->events = EPOLLIN;
	t->timer_cb = cb;
	t->arg = arg;
	t->every_ms = every_ms;
	t->id = l->next_timer_id++;
	err = epoll_add(l, t);
	if (err) {
		log_error("epoll add timer failed", "err=%d", err);
		goto err_close;
	}
	t->next = l->timers;
	l->timers = t;
	return t->id;

err_close:
	close(t->fd);
err_free:
	free(t);
	return err;
}

static void timer_remove(struct vakt_loop *l, struct entry *t)
{
	struct entry **p;

	for (p = &l->timers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	t->fd = -1;
	bury(l, t);
}

int vakt_loop_cancel_timer(struct vakt_loop *l, long id)
{
	for (struct entry *t = l->timers; t; t = t->next) {
		if (t->id == id) {
			timer_remove(l, t);
			return 0;
		}
	}
	return -ENOENT;
}

void vakt_loop_set_before_sleep(struct vakt_loop *l, void (*cb)(struct vakt_loop *l, void *arg),
				void *arg)
{
	l->before_sleep = cb;
	l->before_sleep_arg = arg;
}

void vakt_loop_stop(struct vakt_loop *l)
{
	l->stop = 1;
}

static void fire_timer(struct vakt_loop *l, struct entry *t)
{
	uint64_t expirations;
	vakt_timer_cb cb = t->timer_cb;
	void *arg = t->arg;

	/* Drain the count: a late loop runs the callback once, not once per missed period. */
	if (read(t->fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	if (!t->every_ms)
		timer_remove(l, t);
	cb(l, arg);
}

static void dispatch(struct vakt_loop *l, struct entry *e, uint32_t events)
{
	if (e->dead)
		return;
	if (e->kind == ENTRY_TIMER)
		fire_timer(l, e);
	else
		e->fd_cb(l, e->fd, events, e->arg);
}

int vakt_loop_run(struct vakt_loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->stop = 0;
	while (!l->stop) {
		int n;

		if (l->before_sleep)
			l->before_sleep(l, l->before_sleep_arg);
		if (l->stop)
			break;
		n = epoll_wait(l->epfd, evs, LOOP_BATCH, -1);
		if (n < 0) {
			int err = -errno;

			if (err == -EINTR)
				continue;
			log_error("epoll_wait failed", "err=%d", err);
			return err;
		}
		for (int i = 0; i < n && !l->stop; i++)
			dispatch(l, evs[i].data.ptr, evs[i].events);
		empty_graveyard(l);
	}
	return 0;
}
