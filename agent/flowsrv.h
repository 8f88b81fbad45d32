/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flowsrv.h - drop events for `vakt flows`, over a unix stream socket served
 * from the agent's event loop.
 *
 * A BPF ring buffer has one consumer position, so vaktd is its only reader
 * and re-publishes every event here to any number of subscribers.
 *
 * Protocol: server to client only, one JSON object per line ('\n'):
 *   {"type":"drop","ts":"2025-01-02T03:04:05.678901234Z","src":"10.0.0.1",
 *    "dst":"10.0.0.2","sport":40000,"dport":80,"proto":"tcp",
 *    "namespace":"default","pod":"web","direction":"ingress",
 *    "reason":"policy_denied","ep_id":3,"ifindex":7}
 *   {"type":"lost","count":N,"msg":"dropped N events"}
 * namespace and pod are null when the endpoint has no name (yet). A client
 * that sends anything is disconnected: there is nothing to ask.
 *
 * Bounded cost: at most VAKT_FLOWSRV_MAX_CLIENTS subscribers (more are told
 * so and closed), each with at most VAKT_FLOWSRV_CLIENT_BUF bytes queued
 * beyond what its socket buffer holds. Publishing never blocks: an event
 * that does not fit a subscriber's queue is counted as lost for it, and the
 * subscriber gets one "lost" line with the count as soon as its queue has
 * room again, before any newer event.
 */
#ifndef VAKT_FLOWSRV_H
#define VAKT_FLOWSRV_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"

#define VAKT_FLOWS_SOCKET_DEFAULT "/run/vakt/flows.sock"
#define VAKT_FLOWSRV_MAX_CLIENTS 64
#define VAKT_FLOWSRV_CLIENT_BUF (64 * 1024)
/* Longest line vakt_flowsrv_format() produces (names escaped at worst). */
#define VAKT_FLOWSRV_LINE_MAX 2048

struct vakt_loop;
struct vakt_flowsrv;

/*
 * Listens on @path (socket mode 0660; its directory is created 0755 when
 * missing). A stale socket left by a dead agent is replaced; a live one
 * (another agent answers) is -EADDRINUSE, and a path that is not a socket is
 * -EEXIST: neither is touched. NULL with *err = -errno on failure.
 */
struct vakt_flowsrv *vakt_flowsrv_open(struct vakt_loop *l, const char *path, int *err);
/* Disconnects every subscriber, removes the socket file. NULL is a no-op. */
void vakt_flowsrv_close(struct vakt_flowsrv *s);

/* Queues @e for every subscriber; @ns and @pod may be NULL (unknown endpoint). */
void vakt_flowsrv_publish(struct vakt_flowsrv *s, const struct vakt_drop_event *e,
			  const char *ns, const char *pod);

struct vakt_flowsrv_stats {
	uint64_t clients;   /* connected now */
	uint64_t accepted;  /* subscribers accepted since open */
	uint64_t rejected;  /* turned away: VAKT_FLOWSRV_MAX_CLIENTS reached */
	uint64_t published; /* events handed to vakt_flowsrv_publish() */
	uint64_t lost;      /* event copies not delivered to a subscriber (too slow) */
};
void vakt_flowsrv_stats(const struct vakt_flowsrv *s, struct vakt_flowsrv_stats *out);

/*
 * The event line (with '\n', NUL-terminated) into @buf; returns its length,
 * or -ENOSPC. @mono_to_real_ns converts the event's CLOCK_MONOTONIC
 * timestamp (bpf_ktime_get_ns) to CLOCK_REALTIME. Exposed for tests.
 */
int vakt_flowsrv_format(const struct vakt_drop_event *e, const char *ns, const char *pod,
			int64_t mono_to_real_ns, char *buf, size_t len);

#endif /* VAKT_FLOWSRV_H */
