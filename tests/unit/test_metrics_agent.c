// SPDX-License-Identifier: Apache-2.0
/* The agent's /metrics families that do not need a dataplane: the API
 * source's watch counters, the flows server's, and the directory source's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flowsrv.h"
#include "kube.h"
#include "metrics.h"

static const double bounds[] = { 0.001, 0.01, 0.1 };

static char *render(const struct vakt_agent_metrics *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(vakt_metrics_write_agent(f, m), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_api_source_exposes_every_resource_and_event_type_from_zero(void **state)
{
	struct vakt_histogram h;
	struct vakt_kube_stats ks;
	struct vakt_agent_metrics m = { .compile = &h, .kube = &ks, .kube_synced = 1 };
	char *text;

	(void)state;
	memset(&ks, 0, sizeof(ks));
	assert_int_equal(vakt_histogram_init(&h, bounds, 3), 0);
	ks.events[VAKT_KUBE_POLICIES][VAKT_KUBE_EV_DELETED] = 7;
	ks.restarts[VAKT_KUBE_PODS] = 3;
	ks.relists[VAKT_KUBE_NAMESPACES] = 2;
	ks.transport_errors = 5;
	text = render(&m);
	assert_non_null(strstr(text, "# TYPE vakt_watch_events_total counter\n"));
	assert_non_null(strstr(text, "vakt_watch_events_total{resource=\"networkpolicies\","
				     "type=\"DELETED\"} 7\n"));
	assert_non_null(strstr(text, "vakt_watch_events_total{resource=\"pods\",type=\"ADDED\"} 0\n"));
	assert_non_null(strstr(text, "vakt_watch_events_total{resource=\"namespaces\","
				     "type=\"BOOKMARK\"} 0\n"));
	assert_non_null(strstr(text, "vakt_watch_restarts_total{resource=\"pods\"} 3\n"));
	assert_non_null(strstr(text, "vakt_watch_relists_total{resource=\"namespaces\"} 2\n"));
	assert_non_null(strstr(text, "vakt_api_errors_total{kind=\"transport\"} 5\n"));
	assert_non_null(strstr(text, "vakt_api_synced 1\n"));
	assert_null(strstr(text, "vakt_source_reloads_total"));
	free(text);
}

static void test_directory_source_has_no_watch_families(void **state)
{
	struct vakt_histogram h;
	struct vakt_agent_metrics m = { .compile = &h, .source_reloads = 4 };
	char *text;

	(void)state;
	assert_int_equal(vakt_histogram_init(&h, bounds, 3), 0);
	text = render(&m);
	assert_null(strstr(text, "vakt_watch_events_total"));
	assert_null(strstr(text, "vakt_api_synced"));
	assert_non_null(strstr(text, "vakt_source_reloads_total 4\n"));
	free(text);
}

static void test_flow_metrics_come_from_the_flows_server_or_are_zero(void **state)
{
	struct vakt_histogram h;
	struct vakt_flowsrv_stats fs = { .clients = 2, .lost = 9 };
	struct vakt_agent_metrics m = { .compile = &h, .flows = &fs };
	char *text;

	(void)state;
	assert_int_equal(vakt_histogram_init(&h, bounds, 3), 0);
	text = render(&m);
	assert_non_null(strstr(text, "\nvakt_flow_subscribers 2\n"));
	assert_non_null(strstr(text, "\nvakt_flow_events_lost_total 9\n"));
	free(text);
	m.flows = NULL;
	text = render(&m);
	assert_non_null(strstr(text, "\nvakt_flow_subscribers 0\n"));
	assert_non_null(strstr(text, "\nvakt_flow_events_lost_total 0\n"));
	free(text);
}

static void test_build_info_carries_the_version(void **state)
{
	struct vakt_histogram h;
	struct vakt_agent_metrics m = { .compile = &h };
	char *text;

	(void)state;
	assert_int_equal(vakt_histogram_init(&h, bounds, 3), 0);
	text = render(&m);
	/* Not VAKT_VERSION itself: libvakt may have been built at another commit. */
	assert_non_null(strstr(text, "\nvakt_build_info{version=\""));
	assert_non_null(strstr(strstr(text, "\nvakt_build_info{"), "\"} 1\n"));
	assert_non_null(strstr(text, "vakt_policy_compile_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_source_exposes_every_resource_and_event_type_from_zero),
		cmocka_unit_test(test_directory_source_has_no_watch_families),
		cmocka_unit_test(test_flow_metrics_come_from_the_flows_server_or_are_zero),
		cmocka_unit_test(test_build_info_carries_the_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
