/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - a tiny HTTP/1.1 server for /healthz, /readyz and /metrics,
 * driven by the agent's event loop (no threads).
 *
 * One request per connection (the response carries Connection: close),
 * GET and HEAD only, request head bounded to VAKT_HTTP_MAX_REQUEST bytes,
 * at most VAKT_HTTP_MAX_CLIENTS connections at once. A client gets
 * VAKT_HTTP_READ_TIMEOUT_MS in total to send its request head and
 * VAKT_HTTP_WRITE_TIMEOUT_MS to take the response, however it trickles
 * bytes: a slow client costs one slot for a bounded time, never the loop.
 */
#ifndef VAKT_HTTP_H
#define VAKT_HTTP_H

#include <stdio.h>

#define VAKT_HTTP_MAX_REQUEST 4096
#define VAKT_HTTP_MAX_CLIENTS 64
#define VAKT_HTTP_READ_TIMEOUT_MS 5000
#define VAKT_HTTP_WRITE_TIMEOUT_MS 10000

struct vakt_loop;
struct vakt_http;

/*
 * Produces the response for GET @path (query string removed): writes the
 * body to @body, may set *ctype (default text/plain), returns the status
 * code (200, 404, 503, ...). Called from the event loop.
 */
typedef int (*vakt_http_handler)(void *arg, const char *path, FILE *body, const char **ctype);

/* addr: "IP:PORT", "[IPv6]:PORT" or ":PORT" (all addresses). Port 0 picks a free port. */
int vakt_http_open(struct vakt_loop *loop, const char *addr, vakt_http_handler h, void *arg,
		   struct vakt_http **out);
void vakt_http_close(struct vakt_http *srv);
/* The bound port (useful with port 0). */
int vakt_http_port(const struct vakt_http *srv);

#endif /* VAKT_HTTP_H */
