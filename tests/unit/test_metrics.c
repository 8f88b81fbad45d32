// SPDX-License-Identifier: Apache-2.0
/* Prometheus text exposition: escaping, sample lines, histograms. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "reasons.h"
#include "vakt/maps.h"

struct out {
	char *buf;
	size_t len;
	FILE *f;
};

static void out_open(struct out *o)
{
	o->buf = NULL;
	o->f = open_memstream(&o->buf, &o->len);
	assert_non_null(o->f);
}

static const char *out_close(struct out *o)
{
	assert_int_equal(fclose(o->f), 0);
	return o->buf;
}

static void test_label_values_escape_backslash_quote_and_newline(void **state)
{
	struct vakt_metric_label l[2] = { { "pod", "a\"b\\c\nd" }, { "namespace", "x" } };
	struct out o;

	(void)state;
	out_open(&o);
	vakt_metric_u64(o.f, "vakt_drops_total", l, 2, 42);
	assert_string_equal(out_close(&o), "vakt_drops_total{pod=\"a\\\"b\\\\c\\nd\",namespace=\"x\"} 42\n");
	free(o.buf);
}

static void test_help_escapes_backslash_and_newline_but_not_quotes(void **state)
{
	struct out o;

	(void)state;
	out_open(&o);
	vakt_metric_family(o.f, "vakt_x", "gauge", "a \"b\" \\ c\nd");
	assert_string_equal(out_close(&o),
			    "# HELP vakt_x a \"b\" \\\\ c\\nd\n# TYPE vakt_x gauge\n");
	free(o.buf);
}

static void test_sample_without_labels_has_no_braces(void **state)
{
	struct out o;

	(void)state;
	out_open(&o);
	vakt_metric_u64(o.f, "vakt_endpoints", NULL, 0, 3);
	vakt_metric_double(o.f, "vakt_t", NULL, 0, 1.5);
	assert_string_equal(out_close(&o), "vakt_endpoints 3\nvakt_t 1.5\n");
	free(o.buf);
}

static void test_histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state)
{
	static const double b[] = { 0.1, 1, 10 };
	struct vakt_histogram h;
	struct out o;

	(void)state;
	assert_int_equal(vakt_histogram_init(&h, b, 3), 0);
	vakt_histogram_observe(&h, 0.05);
	vakt_histogram_observe(&h, 0.1); /* le is inclusive */
	vakt_histogram_observe(&h, 5);
	vakt_histogram_observe(&h, 100);
	out_open(&o);
	vakt_histogram_write(o.f, "d", &h);
	assert_string_equal(out_close(&o), "d_bucket{le=\"0.1\"} 2\n"
					   "d_bucket{le=\"1\"} 2\n"
					   "d_bucket{le=\"10\"} 3\n"
					   "d_bucket{le=\"+Inf\"} 4\n"
					   "d_sum 105.15\n"
					   "d_count 4\n");
	free(o.buf);
}

static void test_histogram_rejects_unsorted_or_too_many_bounds(void **state)
{
	static const double bad[] = { 1, 1 };
	double many[VAKT_HIST_MAX_BUCKETS + 1];
	struct vakt_histogram h;

	(void)state;
	for (size_t i = 0; i < VAKT_HIST_MAX_BUCKETS + 1; i++)
		many[i] = (double)i;
	assert_int_equal(vakt_histogram_init(&h, bad, 2), -EINVAL);
	assert_int_equal(vakt_histogram_init(&h, many, VAKT_HIST_MAX_BUCKETS + 1), -EINVAL);
}

static void test_every_reason_of_maps_h_has_a_distinct_name(void **state)
{
	static const __u32 reasons[] = {
		VAKT_R_NOT_ISOLATED, VAKT_R_POLICY_ALLOW, VAKT_R_ESTABLISHED, VAKT_R_REPLY,
		VAKT_R_RELATED, VAKT_R_HOST, VAKT_R_SELF, VAKT_R_CONTROL, VAKT_R_NO_ENDPOINT,
		VAKT_R_FRAGMENT, VAKT_R_POLICY_DENIED, VAKT_R_MALFORMED, VAKT_R_REVOKED,
		VAKT_R_FAIL_CLOSED, VAKT_R_FRAG_UNKNOWN, VAKT_R_CT_FULL, VAKT_R_SPOOFED,
	};
	size_t n = sizeof(reasons) / sizeof(reasons[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(vakt_reason_name(reasons[i]), "unknown");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(vakt_reason_name(reasons[i]),
						vakt_reason_name(reasons[j]));
	}
	assert_string_equal(vakt_reason_name(VAKT_R_MAX), "unknown");
	assert_string_equal(vakt_reason_name(31), "unknown");
	assert_string_equal(vakt_dir_name(VAKT_DIR_EGRESS), "egress");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values_escape_backslash_quote_and_newline),
		cmocka_unit_test(test_help_escapes_backslash_and_newline_but_not_quotes),
		cmocka_unit_test(test_sample_without_labels_has_no_braces),
		cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf_sum_and_count),
		cmocka_unit_test(test_histogram_rejects_unsorted_or_too_many_bounds),
		cmocka_unit_test(test_every_reason_of_maps_h_has_a_distinct_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
