/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watchparse.h - splits a Kubernetes watch stream into whole JSON objects.
 *
 * The API server writes one JSON object per event, usually newline
 * terminated, but TCP, TLS, HTTP/1.1 chunks and HTTP/2 frames may cut the
 * stream anywhere. Feed whatever arrived; the callback gets each complete
 * top-level object once. Boundaries come from JSON structure (braces outside
 * strings), not from newlines, so a stream without them works too.
 *
 * Bounded: an object larger than max bytes is an error (-E2BIG), so a
 * misbehaving server cannot make the agent buffer without limit. Anything
 * but whitespace between objects is -EBADMSG. After an error the parser
 * must be reset before it is fed again (the stream is restarted anyway).
 */
#ifndef VAKT_WATCHPARSE_H
#define VAKT_WATCHPARSE_H

#include <stddef.h>

/* Return 0 to go on; anything else stops feed() and is returned from it. */
typedef int (*vakt_watchparse_cb)(void *arg, const char *obj, size_t len);

struct vakt_watchparse {
	vakt_watchparse_cb cb;
	void *arg;
	size_t max;   /* largest object accepted */
	char *buf;    /* bytes of the object in progress, buf[0] == '{' */
	size_t len, cap;
	/* scanner state for buf[0..len) */
	unsigned depth;
	int in_string, escaped;
	int failed;   /* an error was returned: reset first */
};

void vakt_watchparse_init(struct vakt_watchparse *p, size_t max, vakt_watchparse_cb cb,
			  void *arg);
/* Forget any partial object and error state (a new stream starts). */
void vakt_watchparse_reset(struct vakt_watchparse *p);
void vakt_watchparse_free(struct vakt_watchparse *p);
/*
 * Returns 0, the callback's non-zero return, -EBADMSG (not a stream of JSON
 * objects), -E2BIG (object over max) or -ENOMEM.
 */
int vakt_watchparse_feed(struct vakt_watchparse *p, const char *data, size_t len);
/* Bytes of an incomplete object held (a stream that ends with some is cut). */
static inline size_t vakt_watchparse_pending(const struct vakt_watchparse *p)
{
	return p->len;
}

#endif /* VAKT_WATCHPARSE_H */
