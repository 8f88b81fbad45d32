/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop.h - the agent's one event loop: epoll over file descriptors, timers
 * (one timerfd each) and a hook run before every sleep. Single-threaded by
 * design: every piece of agent state is touched from loop callbacks only, so
 * nothing needs a lock.
 *
 * Callbacks may add, modify and remove any fd or timer, including their own;
 * a removed entry is never called again, even if it was already reported
 * ready in the current batch.
 */
#ifndef VAKT_LOOP_H
#define VAKT_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct vakt_loop;

typedef void (*vakt_fd_cb)(struct vakt_loop *l, int fd, uint32_t events, void *arg);
typedef void (*vakt_timer_cb)(struct vakt_loop *l, void *arg);

struct vakt_loop *vakt_loop_new(void);
/* Closes the timers' fds, not the fds the caller added. */
void vakt_loop_free(struct vakt_loop *l);

/* events: EPOLLIN|EPOLLOUT|...; -EEXIST if fd is already in the loop. */
int vakt_loop_add_fd(struct vakt_loop *l, int fd, uint32_t events, vakt_fd_cb cb, void *arg);
int vakt_loop_mod_fd(struct vakt_loop *l, int fd, uint32_t events);
/* -ENOENT if fd is not in the loop. Remove before closing fd. */
int vakt_loop_del_fd(struct vakt_loop *l, int fd);

/* Returns a timer id > 0 or -errno. every_ms == 0: one-shot (then the timer is
 * gone after it fired; cancelling it afterwards returns -ENOENT). */
long vakt_loop_add_timer(struct vakt_loop *l, uint64_t after_ms, uint64_t every_ms,
			 vakt_timer_cb cb, void *arg);
int vakt_loop_cancel_timer(struct vakt_loop *l, long id);

void vakt_loop_set_before_sleep(struct vakt_loop *l, void (*cb)(struct vakt_loop *l, void *arg),
				void *arg);

/* Runs until vakt_loop_stop() (returns 0) or an epoll error (-errno). */
int vakt_loop_run(struct vakt_loop *l);
/* Safe from callbacks; the loop returns after the current batch. */
void vakt_loop_stop(struct vakt_loop *l);

uint64_t vakt_now_ms(void); /* CLOCK_MONOTONIC */

#endif /* VAKT_LOOP_H */
