// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watchparse.h"

void vakt_watchparse_init(struct vakt_watchparse *p, size_t max, vakt_watchparse_cb cb,
			  void *arg)
{
	*p = (struct vakt_watchparse){ .cb = cb, .arg = arg, .max = max };
}

void vakt_watchparse_reset(struct vakt_watchparse *p)
{
	p->len = 0;
	p->depth = 0;
	p->in_string = 0;
	p->escaped = 0;
	p->failed = 0;
}

void vakt_watchparse_free(struct vakt_watchparse *p)
{
	free(p->buf);
	p->buf = NULL;
	p->cap = 0;
	vakt_watchparse_reset(p);
}

static int is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int append(struct vakt_watchparse *p, const char *data, size_t n)
{
	if (p->len + n > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *b;

		while (cap < p->len + n)
			cap *= 2;
		if (cap > p->max)
			cap = p->max;
		b = realloc(p->buf, cap);
		if (!b)
			return -ENOMEM;
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, data, n);
	p->len += n;
	return 0;
}

/*
 * Scans data for the end of the object in progress. Returns the number of
 * bytes consumed up to and including the closing brace, or n when the
 * object continues past this data. The scan state persists, so every byte
 * is looked at once however the stream is cut.
 */
static size_t scan(struct vakt_watchparse *p, const char *data, size_t n, int *done)
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (p->in_string) {
			if (p->escaped)
				p->escaped = 0;
			else if (c == '\\')
				p->escaped = 1;
			else if (c == '"')
				p->in_string = 0;
			continue;
		}
		if (c == '"') {
			p->in_string = 1;
		} else if (c == '{' || c == '[') {
			p->depth++;
		} else if (c == '}' || c == ']') {
			if (--p->depth == 0) {
				*done = 1;
				return i + 1;
			}
		}
	}
	*done = 0;
	return n;
}

static int fail(struct vakt_watchparse *p, int err)
{
	p->failed = 1;
	return err;
}

int vakt_watchparse_feed(struct vakt_watchparse *p, const char *data, size_t len)
{
	if (p->failed)
		return -EBADMSG;
	while (len) {
		size_t used;
		int done, err;

		if (!p->len) {
			/* Between objects: only whitespace may separate them. */
			if (is_ws(*data)) {
				data++;
				len--;
				continue;
			}
			if (*data != '{')
				return fail(p, -EBADMSG);
		}
		used = scan(p, data, len, &done);
		if (p->len + used > p->max)
			return fail(p, -E2BIG);
		err = append(p, data, used);
		if (err)
			return fail(p, err);
		data += used;
		len -= used;
		if (!done)
			break;
		err = p->cb(p->arg, p->buf, p->len);
		p->len = 0;
		if (err)
			return fail(p, err);
	}
	return 0;
}
