// SPDX-License-Identifier: Apache-2.0
/*
 * The manifest-directory source: a reload applies only the difference to
 * the store, a broken manifest keeps the last good state, and inotify in
 * the event loop picks up edits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirsource.h"
#include "loop.h"
#include "store.h"

struct events {
	int ns_add, ns_del, ns_mod;
	int pod_add, pod_del, pod_mod;
	int pol_add, pol_del, pol_mod;
};

#define COUNT(prefix, old, cur)                   \
	do {                                      \
		if (!(old))                       \
			e->prefix##_add++;        \
		else if (!(cur))                  \
			e->prefix##_del++;        \
		else                              \
			e->prefix##_mod++;        \
	} while (0)

static void ns_changed(void *arg, const struct vakt_namespace *old, const struct vakt_namespace *cur)
{
	struct events *e = arg;

	COUNT(ns, old, cur);
}

static void pod_changed(void *arg, const struct vakt_pod *old, const struct vakt_pod *cur)
{
	struct events *e = arg;

	COUNT(pod, old, cur);
}

static void pol_changed(void *arg, const struct vakt_policy *old, const struct vakt_policy *cur)
{
	struct events *e = arg;

	COUNT(pol, old, cur);
}

struct fx {
	char dir[64];
	struct vakt_store *store;
	struct events ev;
};

static const char ns_yaml[] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"
			      "  labels:\n    team: a\n";
static const char pods_yaml[] =
	"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\n"
	"  labels:\n    app: web\nspec:\n  nodeName: n1\nstatus:\n  podIP: 10.0.0.1\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  namespace: prod\n"
	"  labels:\n    app: db\nspec:\n  nodeName: n1\nstatus:\n  podIP: 10.0.0.2\n";
static const char pol_yaml[] =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n"
	"  namespace: prod\nspec:\n  podSelector: {}\n";

static void write_file(const struct fx *f, const char *name, const char *text)
{
	char path[128], tmp[140];
	FILE *o;

	/* Written beside and renamed, as editors and kubectl-style tools do. */
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", f->dir, name);
	o = fopen(tmp, "w");
	assert_non_null(o);
	fputs(text, o);
	assert_int_equal(fclose(o), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void remove_file(const struct fx *f, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_int_equal(unlink(path), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vakt_store_listener l;

	snprintf(f->dir, sizeof(f->dir), "/tmp/vakt-test-dirsource-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->store = vakt_store_new();
	l = (struct vakt_store_listener){ &f->ev, ns_changed, pod_changed, pol_changed };
	vakt_store_set_listener(f->store, &l);
	write_file(f, "00-ns.yaml", ns_yaml);
	write_file(f, "10-pods.yaml", pods_yaml);
	write_file(f, "20-pol.yaml", pol_yaml);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	vakt_store_free(f->store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static void test_unchanged_reload_produces_no_store_events(void **state)
{
	struct fx *f = *state;
	struct vakt_dirsource *ds;
	struct vakt_error err;
	struct vakt_dirsource_stats st;

	assert_int_equal(vakt_dirsource_open(NULL, f->dir, f->store, NULL, NULL, &ds, &err), 0);
	assert_int_equal(f->ev.ns_add + f->ev.pod_add + f->ev.pol_add, 4);
	memset(&f->ev, 0, sizeof(f->ev));
	assert_int_equal(vakt_dirsource_reload(ds, &err), 0);
	assert_int_equal(f->ev.ns_add + f->ev.ns_mod + f->ev.pod_add + f->ev.pod_mod +
				 f->ev.pol_add + f->ev.pol_mod + f->ev.pod_del,
			 0);
	vakt_dirsource_stats(ds, &st);
	assert_int_equal(st.reloads, 2);
	vakt_dirsource_close(ds);
}

static void test_reload_puts_changed_objects_and_deletes_vanished_ones(void **state)
{
	struct fx *f = *state;
	struct vakt_dirsource *ds;
	struct vakt_error err;
	const struct vakt_pod *web;

	assert_int_equal(vakt_dirsource_open(NULL, f->dir, f->store, NULL, NULL, &ds, &err), 0);
	memset(&f->ev, 0, sizeof(f->ev));
	/* web relabelled, db gone, policy gone */
	write_file(f, "10-pods.yaml",
		   "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\n"
		   "  labels:\n    app: web2\nspec:\n  nodeName: n1\nstatus:\n  podIP: 10.0.0.1\n");
	remove_file(f, "20-pol.yaml");
	assert_int_equal(vakt_dirsource_reload(ds, &err), 0);
	assert_int_equal(f->ev.pod_mod, 1);
	assert_int_equal(f->ev.pod_del, 1);
	assert_int_equal(f->ev.pol_del, 1);
	assert_int_equal(f->ev.ns_mod + f->ev.ns_del + f->ev.pod_add + f->ev.pol_add, 0);
	web = vakt_store_pod(f->store, "prod", "web");
	assert_non_null(web);
	assert_string_equal(vakt_labels_get(&web->labels, "app"), "web2");
	assert_null(vakt_store_pod(f->store, "prod", "db"));
	assert_int_equal(vakt_store_count_policies(f->store), 0);
	vakt_dirsource_close(ds);
}

static void test_broken_manifest_keeps_the_last_good_state(void **state)
{
	struct fx *f = *state;
	struct vakt_dirsource *ds;
	struct vakt_error err;
	struct vakt_dirsource_stats st;

	assert_int_equal(vakt_dirsource_open(NULL, f->dir, f->store, NULL, NULL, &ds, &err), 0);
	memset(&f->ev, 0, sizeof(f->ev));
	write_file(f, "20-pol.yaml",
		   "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n"
		   "  namespace: prod\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n"
		   "    - port: 70000\n");
	assert_int_equal(vakt_dirsource_reload(ds, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "20-pol.yaml"));
	assert_int_equal(f->ev.pol_mod + f->ev.pol_del + f->ev.pod_del + f->ev.ns_del, 0);
	assert_non_null(vakt_store_policy(f->store, "prod", "deny"));
	assert_int_equal(vakt_store_count_pods(f->store), 2);
	vakt_dirsource_stats(ds, &st);
	assert_int_equal(st.reload_errors, 1);
	vakt_dirsource_close(ds);
}

static void test_broken_directory_at_start_is_an_error(void **state)
{
	struct fx *f = *state;
	struct vakt_dirsource *ds = NULL;
	struct vakt_error err;

	write_file(f, "30-bad.yaml", "kind: Pod\nmetadata: [\n");
	assert_int_equal(vakt_dirsource_open(NULL, f->dir, f->store, NULL, NULL, &ds, &err),
			 -EINVAL);
	assert_null(ds);
	assert_int_equal(vakt_store_count_pods(f->store), 0);
}

struct watch {
	struct fx *f;
	int calls;
	unsigned long changed;
};

static void on_change(void *arg, unsigned long changed, double seconds)
{
	struct watch *w = arg;

	(void)seconds;
	w->calls++;
	w->changed += changed;
}

static void edit_and_stop(struct vakt_loop *l, void *arg)
{
	struct watch *w = arg;

	(void)l;
	remove_file(w->f, "20-pol.yaml");
	write_file(w->f, "10-pods.yaml", pods_yaml); /* same content: no event */
}

static void stop(struct vakt_loop *l, void *arg)
{
	(void)arg;
	vakt_loop_stop(l);
}

static void test_edits_on_disk_reach_the_store_through_inotify(void **state)
{
	struct fx *f = *state;
	struct vakt_loop *l = vakt_loop_new();
	struct vakt_dirsource *ds;
	struct vakt_error err;
	struct watch w = { f, 0, 0 };

	assert_int_equal(vakt_dirsource_open(l, f->dir, f->store, on_change, &w, &ds, &err), 0);
	assert_true(vakt_loop_add_timer(l, 20, 0, edit_and_stop, &w) > 0);
	assert_true(vakt_loop_add_timer(l, 20 + VAKT_DIRSOURCE_DEBOUNCE_MS + 400, 0, stop, NULL) > 0);
	assert_int_equal(vakt_loop_run(l), 0);
	assert_int_equal(w.calls, 1); /* debounced into one reload */
	assert_int_equal(w.changed, 1);
	assert_null(vakt_store_policy(f->store, "prod", "deny"));
	vakt_dirsource_close(ds);
	vakt_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unchanged_reload_produces_no_store_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_puts_changed_objects_and_deletes_vanished_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_manifest_keeps_the_last_good_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_directory_at_start_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edits_on_disk_reach_the_store_through_inotify, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
