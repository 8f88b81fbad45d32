// SPDX-License-Identifier: Apache-2.0
/* The object store: put, replace, delete, the listener's old/new objects,
 * lookups by key and by address, per-namespace and sorted iteration. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"

static struct vakt_pod *pod(const char *ns, const char *name, const char *ip, const char *app)
{
	struct vakt_pod *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	if (ip) {
		assert_int_equal(vakt_addr_parse(ip, &p->ips[0], NULL), 0);
		p->nips = 1;
	}
	if (app)
		assert_int_equal(vakt_labels_set(&p->labels, "app", app), 0);
	return p;
}

static struct vakt_policy *policy(const char *ns, const char *name)
{
	struct vakt_policy *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->types = VAKT_PT_INGRESS;
	return p;
}

static struct vakt_namespace *nspace(const char *name, const char *team)
{
	struct vakt_namespace *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->name = strdup(name);
	assert_int_equal(vakt_labels_set(&n->labels, "team", team), 0);
	return n;
}

/* What the listener saw, as text: "pod +ns/name", "pod ~ns/name old=app new=app", "pod -ns/name". */
struct seen {
	char log[16][96];
	int n;
};

static void on_pod(void *arg, const struct vakt_pod *old, const struct vakt_pod *cur)
{
	struct seen *s = arg;
	const struct vakt_pod *p = cur ? cur : old;

	snprintf(s->log[s->n++ % 16], sizeof(s->log[0]), "pod %c%s/%s old=%s new=%s",
		 !old ? '+' : !cur ? '-' : '~', p->ns, p->name,
		 old ? vakt_labels_get(&old->labels, "app") : "-",
		 cur ? vakt_labels_get(&cur->labels, "app") : "-");
}

static void on_ns(void *arg, const struct vakt_namespace *old, const struct vakt_namespace *cur)
{
	struct seen *s = arg;

	snprintf(s->log[s->n++ % 16], sizeof(s->log[0]), "ns %c%s old=%s new=%s",
		 !old ? '+' : !cur ? '-' : '~', cur ? cur->name : old->name,
		 old ? vakt_labels_get(&old->labels, "team") : "-",
		 cur ? vakt_labels_get(&cur->labels, "team") : "-");
}

static void on_pol(void *arg, const struct vakt_policy *old, const struct vakt_policy *cur)
{
	struct seen *s = arg;
	const struct vakt_policy *p = cur ? cur : old;

	snprintf(s->log[s->n++ % 16], sizeof(s->log[0]), "pol %c%s/%s",
		 !old ? '+' : !cur ? '-' : '~', p->ns, p->name);
}

static void test_listener_sees_old_and_new_objects(void **state)
{
	struct vakt_store *s = vakt_store_new();
	struct seen seen = { 0 };
	struct vakt_store_listener l = { &seen, on_ns, on_pod, on_pol };

	(void)state;
	vakt_store_set_listener(s, &l);
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.1", "web")), 0);
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.1", "db")), 0);
	assert_int_equal(vakt_store_del_pod(s, "a", "p1"), 0);
	assert_int_equal(vakt_store_del_pod(s, "a", "p1"), -ENOENT);
	assert_int_equal(vakt_store_put_namespace(s, nspace("a", "t1")), 0);
	assert_int_equal(vakt_store_put_namespace(s, nspace("a", "t2")), 0);
	assert_int_equal(vakt_store_del_namespace(s, "a"), 0);
	assert_int_equal(vakt_store_put_policy(s, policy("a", "x")), 0);
	assert_int_equal(vakt_store_put_policy(s, policy("a", "x")), 0);
	assert_int_equal(vakt_store_del_policy(s, "a", "x"), 0);
	assert_int_equal(seen.n, 9);
	assert_string_equal(seen.log[0], "pod +a/p1 old=- new=web");
	assert_string_equal(seen.log[1], "pod ~a/p1 old=web new=db");
	assert_string_equal(seen.log[2], "pod -a/p1 old=db new=-");
	assert_string_equal(seen.log[3], "ns +a old=- new=t1");
	assert_string_equal(seen.log[4], "ns ~a old=t1 new=t2");
	assert_string_equal(seen.log[5], "ns -a old=t2 new=-");
	assert_string_equal(seen.log[6], "pol +a/x");
	assert_string_equal(seen.log[7], "pol ~a/x");
	assert_string_equal(seen.log[8], "pol -a/x");
	vakt_store_free(s);
}

static void test_replace_keeps_one_object_per_key(void **state)
{
	struct vakt_store *s = vakt_store_new();

	(void)state;
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.1", "web")), 0);
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.1", "db")), 0);
	assert_int_equal(vakt_store_put_pod(s, pod("b", "p1", "10.0.0.2", "web")), 0);
	assert_int_equal(vakt_store_count_pods(s), 2);
	assert_string_equal(vakt_labels_get(&vakt_store_pod(s, "a", "p1")->labels, "app"), "db");
	assert_null(vakt_store_pod(s, "a", "p2"));
	assert_int_equal(vakt_store_put_policy(s, policy("a", "x")), 0);
	assert_int_equal(vakt_store_put_policy(s, policy("a", "x")), 0);
	assert_int_equal(vakt_store_count_policies(s), 1);
	assert_non_null(vakt_store_policy(s, "a", "x"));
	assert_int_equal(vakt_store_put_namespace(s, nspace("a", "t")), 0);
	assert_int_equal(vakt_store_count_namespaces(s), 1);
	assert_non_null(vakt_store_namespace(s, "a"));
	assert_null(vakt_store_namespace(s, "b"));
	vakt_store_free(s);
}

static void test_pod_by_address_follows_ip_changes(void **state)
{
	struct vakt_store *s = vakt_store_new();
	struct vakt_addr a1, a2;
	struct vakt_pod *hn;

	(void)state;
	assert_int_equal(vakt_addr_parse("10.0.0.1", &a1, NULL), 0);
	assert_int_equal(vakt_addr_parse("10.0.0.2", &a2, NULL), 0);
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.1", NULL)), 0);
	assert_string_equal(vakt_store_pod_by_addr(s, &a1)->name, "p1");
	assert_int_equal(vakt_store_put_pod(s, pod("a", "p1", "10.0.0.2", NULL)), 0);
	assert_null(vakt_store_pod_by_addr(s, &a1));
	assert_string_equal(vakt_store_pod_by_addr(s, &a2)->name, "p1");
	/* hostNetwork pods share the node's address: never found by address */
	hn = pod("a", "hn", "10.0.0.1", NULL);
	hn->host_network = 1;
	assert_int_equal(vakt_store_put_pod(s, hn), 0);
	assert_null(vakt_store_pod_by_addr(s, &a1));
	assert_int_equal(vakt_store_del_pod(s, "a", "p1"), 0);
	assert_null(vakt_store_pod_by_addr(s, &a2));
	vakt_store_free(s);
}

static int count_cb(void *arg, const struct vakt_pod *p)
{
	(void)p;
	(*(int *)arg)++;
	return 0;
}

static int count_pol_cb(void *arg, const struct vakt_policy *p)
{
	(void)p;
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(void *arg, const struct vakt_pod *p)
{
	(void)arg;
	(void)p;
	return 7;
}

static void test_iteration_per_namespace_and_sorted(void **state)
{
	struct vakt_store *s = vakt_store_new();
	static const char *const names[][2] = { { "b", "z" }, { "a", "y" }, { "b", "a" }, { "a", "b" } };
	const struct vakt_pod **v;
	size_t n;
	int cnt = 0;

	(void)state;
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(vakt_store_put_pod(s, pod(names[i][0], names[i][1], NULL, NULL)), 0);
	assert_int_equal(vakt_store_put_policy(s, policy("a", "x")), 0);
	assert_int_equal(vakt_store_put_policy(s, policy("b", "x")), 0);
	assert_int_equal(vakt_store_foreach_pod_in(s, "a", count_cb, &cnt), 0);
	assert_int_equal(cnt, 2);
	cnt = 0;
	assert_int_equal(vakt_store_foreach_policy_in(s, "b", count_pol_cb, &cnt), 0);
	assert_int_equal(cnt, 1);
	cnt = 0;
	assert_int_equal(vakt_store_foreach_pod_in(s, "nope", count_cb, &cnt), 0);
	assert_int_equal(cnt, 0);
	assert_int_equal(vakt_store_foreach_pod(s, stop_cb, NULL), 7);
	assert_int_equal(vakt_store_pods_sorted(s, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(v[0]->ns, "a");
	assert_string_equal(v[0]->name, "b");
	assert_string_equal(v[1]->name, "y");
	assert_string_equal(v[2]->ns, "b");
	assert_string_equal(v[2]->name, "a");
	assert_string_equal(v[3]->name, "z");
	free(v);
	/* deleting from the middle keeps the per-namespace index whole */
	assert_int_equal(vakt_store_del_pod(s, "a", "b"), 0);
	cnt = 0;
	assert_int_equal(vakt_store_foreach_pod_in(s, "a", count_cb, &cnt), 0);
	assert_int_equal(cnt, 1);
	vakt_store_free(s);
}

static void test_object_without_name_is_rejected(void **state)
{
	struct vakt_store *s = vakt_store_new();
	struct vakt_pod *p = pod("a", "p", NULL, NULL);

	(void)state;
	free(p->name);
	p->name = NULL;
	assert_int_equal(vakt_store_put_pod(s, p), -EINVAL);
	assert_int_equal(vakt_store_count_pods(s), 0);
	vakt_store_free(s);
}

static void test_many_objects_survive_growth_and_deletes(void **state)
{
	struct vakt_store *s = vakt_store_new();
	char name[32], ip[32];
	int i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
		assert_int_equal(vakt_store_put_pod(s, pod(i % 2 ? "odd" : "even", name, ip, NULL)), 0);
	}
	for (i = 0; i < 5000; i += 3) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(vakt_store_del_pod(s, i % 2 ? "odd" : "even", name), 0);
	}
	for (i = 0; i < 5000; i++) {
		struct vakt_addr a;

		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
		assert_int_equal(vakt_addr_parse(ip, &a, NULL), 0);
		if (i % 3 == 0) {
			assert_null(vakt_store_pod(s, i % 2 ? "odd" : "even", name));
			assert_null(vakt_store_pod_by_addr(s, &a));
		} else {
			assert_non_null(vakt_store_pod(s, i % 2 ? "odd" : "even", name));
			assert_string_equal(vakt_store_pod_by_addr(s, &a)->name, name);
		}
	}
	vakt_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_sees_old_and_new_objects),
		cmocka_unit_test(test_replace_keeps_one_object_per_key),
		cmocka_unit_test(test_pod_by_address_follows_ip_changes),
		cmocka_unit_test(test_iteration_per_namespace_and_sorted),
		cmocka_unit_test(test_object_without_name_is_rejected),
		cmocka_unit_test(test_many_objects_survive_growth_and_deletes),
	};

	vakt_log_set_level(VAKT_LOG_ERROR + 0);
	vakt_log_set_stream(stderr);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
