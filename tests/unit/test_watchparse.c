// SPDX-License-Identifier: Apache-2.0
/*
 * The watch stream splitter: whole objects come out however the stream is
 * cut, several per chunk, none larger than the bound, garbage is refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "watchparse.h"

#define MAXOBJ 16

struct got {
	size_t n;
	char *obj[MAXOBJ];
	int stop_after; /* callback returns 7 after this many objects; 0: never */
};

static int collect(void *arg, const char *obj, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < MAXOBJ);
	g->obj[g->n++] = strndup(obj, len);
	return g->stop_after && g->n == (size_t)g->stop_after ? 7 : 0;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->obj[i]);
	g->n = 0;
}

/* Tricky on purpose: braces and quotes inside strings, escapes, nesting, arrays. */
static const char *const events[] = {
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a}\",\"labels\":{\"x\":\"{\"}}}}",
	"{\"type\":\"MODIFIED\",\"object\":{\"s\":\"quote \\\" brace } \\\\\",\"l\":[{},[],\"]\"]}}",
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}",
};

static void test_split_at_every_offset_yields_the_same_objects(void **state)
{
	char stream[1024] = "";
	size_t len;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		strcat(stream, events[i]);
		strcat(stream, i == 1 ? "\r\n  " : "\n");
	}
	len = strlen(stream);
	/* Two cuts at every pair of offsets: three chunks of any sizes. */
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b += 7) {
			struct vakt_watchparse p;
			struct got g = { 0 };

			vakt_watchparse_init(&p, 4096, collect, &g);
			assert_int_equal(vakt_watchparse_feed(&p, stream, a), 0);
			assert_int_equal(vakt_watchparse_feed(&p, stream + a, b - a), 0);
			assert_int_equal(vakt_watchparse_feed(&p, stream + b, len - b), 0);
			assert_int_equal(g.n, 3);
			for (size_t i = 0; i < 3; i++)
				assert_string_equal(g.obj[i], events[i]);
			assert_int_equal(vakt_watchparse_pending(&p), 0);
			got_free(&g);
			vakt_watchparse_free(&p);
		}
	}
}

static void test_byte_by_byte_feed_yields_each_object_once(void **state)
{
	struct vakt_watchparse p;
	struct got g = { 0 };
	const char *s = events[1];

	(void)state;
	vakt_watchparse_init(&p, 4096, collect, &g);
	for (size_t i = 0; s[i]; i++) {
		assert_int_equal(vakt_watchparse_feed(&p, s + i, 1), 0);
		assert_int_equal(g.n, s[i + 1] ? 0 : 1);
	}
	assert_string_equal(g.obj[0], s);
	got_free(&g);
	vakt_watchparse_free(&p);
}

static void test_objects_without_newlines_are_split(void **state)
{
	struct vakt_watchparse p;
	struct got g = { 0 };
	const char *s = "{\"a\":1}{\"b\":{\"c\":2}}  {\"d\":\"}\"}";

	(void)state;
	vakt_watchparse_init(&p, 4096, collect, &g);
	assert_int_equal(vakt_watchparse_feed(&p, s, strlen(s)), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.obj[0], "{\"a\":1}");
	assert_string_equal(g.obj[1], "{\"b\":{\"c\":2}}");
	assert_string_equal(g.obj[2], "{\"d\":\"}\"}");
	got_free(&g);
	vakt_watchparse_free(&p);
}

static void test_incomplete_object_is_held_not_emitted(void **state)
{
	struct vakt_watchparse p;
	struct got g = { 0 };
	const char *s = "{\"a\":1}\n{\"type\":\"ADDED\",\"obj";

	(void)state;
	vakt_watchparse_init(&p, 4096, collect, &g);
	assert_int_equal(vakt_watchparse_feed(&p, s, strlen(s)), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(vakt_watchparse_pending(&p), strlen("{\"type\":\"ADDED\",\"obj"));
	/* A new stream after a cut starts clean. */
	vakt_watchparse_reset(&p);
	assert_int_equal(vakt_watchparse_feed(&p, "{\"b\":2}", 7), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.obj[1], "{\"b\":2}");
	got_free(&g);
	vakt_watchparse_free(&p);
}

static void test_oversize_object_is_refused(void **state)
{
	struct vakt_watchparse p;
	struct got g = { 0 };
	char big[200];

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"s\":\"", 6);
	vakt_watchparse_init(&p, 64, collect, &g);
	/* An object of exactly max bytes is fine... */
	char exact[64];
	memset(exact, 'y', sizeof(exact));
	memcpy(exact, "{\"s\":\"", 6);
	memcpy(exact + 62, "\"}", 2);
	assert_int_equal(vakt_watchparse_feed(&p, exact, sizeof(exact)), 0);
	assert_int_equal(g.n, 1);
	/* ...one byte more is not, even when it arrives in small pieces. */
	for (size_t i = 0; i < 60; i += 10)
		assert_int_equal(vakt_watchparse_feed(&p, big + i, 10), 0);
	assert_int_equal(vakt_watchparse_feed(&p, big + 60, 10), -E2BIG);
	assert_int_equal(vakt_watchparse_feed(&p, "{}", 2), -EBADMSG); /* until reset */
	vakt_watchparse_reset(&p);
	assert_int_equal(vakt_watchparse_feed(&p, "{}", 2), 0);
	assert_int_equal(g.n, 2);
	got_free(&g);
	vakt_watchparse_free(&p);
}

static void test_garbage_between_objects_is_malformed(void **state)
{
	static const char *const bad[] = { "x{}", "{}\n]", "\"str\"", "42", "<html>" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vakt_watchparse p;
		struct got g = { 0 };

		vakt_watchparse_init(&p, 4096, collect, &g);
		assert_int_equal(vakt_watchparse_feed(&p, bad[i], strlen(bad[i])), -EBADMSG);
		got_free(&g);
		vakt_watchparse_free(&p);
	}
}

static void test_callback_can_stop_the_feed(void **state)
{
	struct vakt_watchparse p;
	struct got g = { .stop_after = 1 };
	const char *s = "{\"a\":1}{\"b\":2}";

	(void)state;
	vakt_watchparse_init(&p, 4096, collect, &g);
	assert_int_equal(vakt_watchparse_feed(&p, s, strlen(s)), 7);
	assert_int_equal(g.n, 1);
	got_free(&g);
	vakt_watchparse_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_at_every_offset_yields_the_same_objects),
		cmocka_unit_test(test_byte_by_byte_feed_yields_each_object_once),
		cmocka_unit_test(test_objects_without_newlines_are_split),
		cmocka_unit_test(test_incomplete_object_is_held_not_emitted),
		cmocka_unit_test(test_oversize_object_is_refused),
		cmocka_unit_test(test_garbage_between_objects_is_malformed),
		cmocka_unit_test(test_callback_can_stop_the_feed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
