// SPDX-License-Identifier: Apache-2.0
/*
 * The Kubernetes API client against the test API server
 * (tests/apiserver/server.py, started here as a subprocess): after every
 * fault the store equals the server's objects, nothing lost, and the
 * client behaves (backoff, Retry-After, relist of the difference only).
 * Also the kubeconfig and in-cluster configuration, and HTTP/2 through
 * nghttpx (Debian package nghttp2-proxy) with the watches multiplexed.
 *
 * Run from the repository root (tests/run.sh does).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "dirsource.h"
#include "kube.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "store.h"

#define SERVER "tests/apiserver/server.py"
#define WAIT_MS 10000

struct server {
	pid_t pid;
	char dir[64];
	char url[128];
	char ca[256], token_file[256], kubeconfig[256], kubeconfig_cert[256];
	int port;
};

static struct server srv; /* one server for the whole group: starting one takes ~0.5 s */

struct counts {
	int add, mod, del;
};

struct events {
	struct counts ns, pod, pol;
};

struct client {
	struct vakt_loop *loop;
	struct vakt_store *store;
	struct vakt_kube *kube;
	struct events ev;
	unsigned long batches, changes;
};

/* --- the server -------------------------------------------------------------------------- */

static int start_server(struct server *s, const char *extra)
{
	char cmd[512], line[4096];
	json_t *info;
	FILE *out;
	int fds[2];

	snprintf(s->dir, sizeof(s->dir), "/tmp/vakt-kube-test-XXXXXX");
	if (!mkdtemp(s->dir) || pipe(fds))
		return -1;
	s->pid = fork();
	if (s->pid == 0) {
		/* A test killed by a timeout must not leave its server behind. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		snprintf(cmd, sizeof(cmd), "exec python3 %s --port 0 --dir %s %s", SERVER, s->dir,
			 extra);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	out = fdopen(fds[0], "r");
	if (!out || !fgets(line, sizeof(line), out)) {
		fprintf(stderr, "test API server did not start (run from the repo root)\n");
		return -1;
	}
	fclose(out);
	info = json_loads(line, 0, NULL);
	if (!info)
		return -1;
	snprintf(s->url, sizeof(s->url), "%s", json_string_value(json_object_get(info, "url")));
	snprintf(s->ca, sizeof(s->ca), "%s", json_string_value(json_object_get(info, "ca")));
	snprintf(s->token_file, sizeof(s->token_file), "%s",
		 json_string_value(json_object_get(info, "token_file")));
	snprintf(s->kubeconfig, sizeof(s->kubeconfig), "%s",
		 json_string_value(json_object_get(info, "kubeconfig")));
	snprintf(s->kubeconfig_cert, sizeof(s->kubeconfig_cert), "%s",
		 json_string_value(json_object_get(info, "kubeconfig_cert")));
	s->port = (int)json_integer_value(json_object_get(info, "port"));
	json_decref(info);
	return 0;
}

static void stop_server(struct server *s)
{
	char cmd[128];

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
	if (s->dir[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", s->dir);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	FILE *f = arg;

	return fwrite(p, size, n, f);
}

static char *read_token(void)
{
	static char tok[256];
	FILE *f = fopen(srv.token_file, "r");

	tok[0] = '\0';
	if (f) {
		if (!fgets(tok, sizeof(tok), f))
			tok[0] = '\0';
		fclose(f);
	}
	tok[strcspn(tok, "\n")] = '\0';
	return tok;
}

/* A blocking request to the test server; returns the status, *out the JSON answer. */
static long request(const char *method, const char *path, json_t *body, json_t **out)
{
	char url[512], auth[300], *resp = NULL, *text = NULL;
	size_t resp_len = 0;
	struct curl_slist *h = NULL;
	long code = 0;
	CURL *e = curl_easy_init();
	FILE *f = open_memstream(&resp, &resp_len);

	snprintf(url, sizeof(url), "%s%s", srv.url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", read_token());
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CAINFO, srv.ca);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
	}
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	fclose(f);
	if (out)
		*out = json_loadb(resp ? resp : "", resp_len, 0, NULL);
	free(resp);
	free(text);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return code;
}

static void fault(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);

	assert_non_null(j);
	assert_int_equal(request("POST", "/_admin/fault", j, NULL), 200);
	json_decref(j);
}

/* Creates or replaces objects (the admin bulk endpoint), given as one JSON array. */
static void load(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void load(const char *fmt, ...)
{
	char text[16384];
	va_list ap;
	json_t *items, *body;
	json_error_t jerr;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	items = json_loads(text, 0, &jerr);
	if (!items)
		fail_msg("bad test JSON: %s: %s", jerr.text, text);
	body = json_pack("{s:o}", "items", items);
	assert_int_equal(request("POST", "/_admin/objects", body, NULL), 200);
	json_decref(body);
}

static void del(const char *path)
{
	assert_int_equal(request("DELETE", path, NULL, NULL), 200);
}

#define NS(name, team)                                                                   \
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" name      \
	"\",\"labels\":{\"team\":\"" team "\"}}}"
#define POD(ns, name, app, ip)                                                           \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name             \
	"\",\"namespace\":\"" ns "\",\"labels\":{\"app\":\"" app "\"}},\"spec\":{\"nodeName\":" \
	"\"n1\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"http\","               \
	"\"containerPort\":80}]}]},\"status\":{\"podIP\":\"" ip "\"}}"
#define POL(ns, name, app, port)                                                         \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"   \
	"{\"name\":\"" name "\",\"namespace\":\"" ns "\"},\"spec\":{\"podSelector\":"         \
	"{\"matchLabels\":{\"app\":\"" app "\"}},\"ingress\":[{\"ports\":[{\"port\":" port    \
	"}]}]}}"

/* --- comparing the store with the server ----------------------------------------------- */

/* 1 if the store holds exactly the server's objects (decoded the same way). */
static int store_matches_server(const struct vakt_store *s, int verbose)
{
	json_t *all = NULL, *items, *it;
	size_t i, nns = 0, npods = 0, npols = 0;
	int ok = 1;

	if (request("GET", "/_admin/objects", NULL, &all) != 200) {
		json_decref(all);
		return 0;
	}
	items = json_object_get(all, "items");
	json_array_foreach(items, i, it) {
		const char *kind = json_string_value(json_object_get(it, "kind"));
		int same = 0;

		if (!strcmp(kind, "Namespace")) {
			struct vakt_namespace *o;

			nns++;
			if (!vakt_decode_namespace(it, "server", NULL, &o, NULL)) {
				const struct vakt_namespace *h = vakt_store_namespace(s, o->name);

				same = h && vakt_namespace_equal(h, o);
				vakt_namespace_free(o);
			}
		} else if (!strcmp(kind, "Pod")) {
			struct vakt_pod *o;

			npods++;
			if (!vakt_decode_pod(it, "server", NULL, &o, NULL)) {
				const struct vakt_pod *h = vakt_store_pod(s, o->ns, o->name);

				same = h && vakt_pod_equal(h, o);
				vakt_pod_free(o);
			}
		} else {
			struct vakt_policy *o;

			npols++;
			if (!vakt_decode_policy(it, "server", NULL, &o, NULL)) {
				const struct vakt_policy *h = vakt_store_policy(s, o->ns, o->name);

				same = h && vakt_policy_equal(h, o);
				vakt_policy_free(o);
			}
		}
		if (!same) {
			ok = 0;
			if (verbose) {
				char *t = json_dumps(json_object_get(it, "metadata"), JSON_COMPACT);

				fprintf(stderr, "store differs: %s %s\n", kind, t);
				free(t);
			}
		}
	}
	if (nns != vakt_store_count_namespaces(s) || npods != vakt_store_count_pods(s) ||
	    npols != vakt_store_count_policies(s)) {
		if (verbose)
			fprintf(stderr, "counts differ: server ns=%zu pods=%zu pols=%zu, store "
				"ns=%zu pods=%zu pols=%zu\n", nns, npods, npols,
				vakt_store_count_namespaces(s), vakt_store_count_pods(s),
				vakt_store_count_policies(s));
		ok = 0;
	}
	json_decref(all);
	return ok;
}

/* --- the client under test ------------------------------------------------------------------ */

#define COUNT(c, old, cur)                      \
	do {                                    \
		if (!(old))                     \
			(c)->add++;             \
		else if (!(cur))                \
			(c)->del++;             \
		else                            \
			(c)->mod++;             \
	} while (0)

static void ns_changed(void *arg, const struct vakt_namespace *old, const struct vakt_namespace *cur)
{
	COUNT(&((struct events *)arg)->ns, old, cur);
}

static void pod_changed(void *arg, const struct vakt_pod *old, const struct vakt_pod *cur)
{
	COUNT(&((struct events *)arg)->pod, old, cur);
}

static void pol_changed(void *arg, const struct vakt_policy *old, const struct vakt_policy *cur)
{
	COUNT(&((struct events *)arg)->pol, old, cur);
}

static void on_batch(void *arg, unsigned long changed, double seconds)
{
	struct client *c = arg;

	assert_true(changed > 0);
	assert_true(seconds >= 0);
	c->batches++;
	c->changes += changed;
}

static const struct vakt_kube_opts fast = {
	.backoff_initial_ms = 50,
	.backoff_max_ms = 400,
	.watch_timeout_s = 30,
	.user_agent = "vakt-test",
};

static struct client *client_open(const char *kubeconfig, const struct vakt_kube_opts *o)
{
	struct client *c = calloc(1, sizeof(*c));
	struct vakt_kube_opts opts = o ? *o : fast;
	struct vakt_store_listener l;
	int err = 0;

	assert_non_null(c);
	c->loop = vakt_loop_new();
	c->store = vakt_store_new();
	assert_non_null(c->loop);
	assert_non_null(c->store);
	l = (struct vakt_store_listener){ &c->ev, ns_changed, pod_changed, pol_changed };
	vakt_store_set_listener(c->store, &l);
	opts.kubeconfig = kubeconfig;
	opts.cb = on_batch;
	opts.cb_arg = c;
	c->kube = vakt_kube_open(c->loop, c->store, &opts, &err);
	assert_int_equal(err, 0);
	assert_non_null(c->kube);
	return c;
}

static void client_close(struct client *c)
{
	vakt_kube_close(c->kube);
	vakt_store_free(c->store);
	vakt_loop_free(c->loop);
	free(c);
}

struct waiter {
	struct client *c;
	int (*pred)(struct client *c);
	uint64_t deadline;
	int ok;
};

static void check(struct vakt_loop *l, void *arg)
{
	struct waiter *w = arg;

	if (w->pred(w->c)) {
		w->ok = 1;
		vakt_loop_stop(l);
	} else if (vakt_now_ms() >= w->deadline) {
		vakt_loop_stop(l);
	}
}

/* Runs the client's loop until pred holds (1) or ms pass (0). */
static int run_until(struct client *c, int (*pred)(struct client *c), uint64_t ms)
{
	struct waiter w = { c, pred, vakt_now_ms() + ms, 0 };
	long t = vakt_loop_add_timer(c->loop, 20, 20, check, &w);

	assert_true(t > 0);
	assert_int_equal(vakt_loop_run(c->loop), 0);
	vakt_loop_cancel_timer(c->loop, t);
	return w.ok;
}

static int never(struct client *c)
{
	(void)c;
	return 0;
}

static int converged(struct client *c)
{
	return vakt_kube_synced(c->kube) && store_matches_server(c->store, 0);
}

static void assert_converges(struct client *c)
{
	if (!run_until(c, converged, WAIT_MS)) {
		store_matches_server(c->store, 1);
		fail_msg("the store did not converge to the server's objects (synced=%d)",
			 vakt_kube_synced(c->kube));
	}
}

static struct vakt_kube_stats stats(struct client *c)
{
	struct vakt_kube_stats st;

	vakt_kube_stats(c->kube, &st);
	return st;
}

static uint64_t sum_events(const struct vakt_kube_stats *st, int type)
{
	uint64_t n = 0;

	for (int r = 0; r < VAKT_KUBE_NRES; r++)
		n += st->events[r][type];
	return n;
}

/* --- tests ------------------------------------------------------------------------------------ */

static void test_lists_in_pages_then_syncs(void **state)
{
	struct vakt_kube_opts o = fast;
	char items[16384];
	size_t n = 0;
	struct client *c;

	(void)state;
	n += (size_t)snprintf(items + n, sizeof(items) - n, "[" NS("alpha", "a") "," NS("beta", "b"));
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(items + n, sizeof(items) - n,
				      ",{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
				      "{\"name\":\"p%d\",\"namespace\":\"%s\",\"labels\":{\"app\":"
				      "\"a%d\"}},\"status\":{\"podIP\":\"10.1.0.%d\"}}",
				      i, i % 2 ? "alpha" : "beta", i % 3, i + 1);
	snprintf(items + n, sizeof(items) - n, "," POL("alpha", "web", "a1", "80") "]");
	load("%s", items);
	o.page_limit = 7;
	c = client_open(srv.kubeconfig, &o);
	assert_converges(c);
	assert_true(stats(c).pages[VAKT_KUBE_PODS] >= 5); /* 30 pods, 7 a page */
	assert_int_equal(c->ev.pod.del, 0);
	assert_true(c->batches > 0);
	client_close(c);
}

static void test_watch_applies_adds_changes_and_deletes(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	struct vakt_kube_stats st;

	(void)state;
	assert_converges(c);
	load("[" NS("gamma", "g") "," POD("gamma", "w1", "web", "10.2.0.1") "," POD("alpha", "p1",
	     "changed", "10.1.0.2") "," POL("gamma", "gp", "web", "443") "]");
	del("/api/v1/namespaces/beta/pods/p0");
	assert_converges(c);
	st = stats(c);
	assert_true(sum_events(&st, VAKT_KUBE_EV_ADDED) >= 3);
	assert_true(st.events[VAKT_KUBE_PODS][VAKT_KUBE_EV_MODIFIED] >= 1);
	assert_true(st.events[VAKT_KUBE_PODS][VAKT_KUBE_EV_DELETED] >= 1);
	assert_string_equal(vakt_labels_get(&vakt_store_pod(c->store, "alpha", "p1")->labels, "app"),
			    "changed");
	assert_null(vakt_store_pod(c->store, "beta", "p0"));
	client_close(c);
}

static void test_stream_cut_mid_event_loses_nothing(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);

	(void)state;
	assert_converges(c);
	fault("{\"cut_events\": 2}");
	load("[" POD("gamma", "w2", "web", "10.2.0.2") "," POD("gamma", "w3", "web", "10.2.0.3")
	     "," POL("gamma", "gp2", "web", "8443") "]");
	del("/api/v1/namespaces/gamma/pods/w1");
	assert_converges(c);
	assert_true(stats(c).transport_errors >= 1);
	fault("{\"clear\": true}");
	client_close(c);
}

static void test_stream_split_into_tiny_chunks_is_reassembled(void **state)
{
	struct client *c;

	(void)state;
	fault("{\"fragment\": 3}");
	c = client_open(srv.kubeconfig, NULL);
	assert_converges(c);
	load("[" POD("gamma", "w4", "db", "10.2.0.4") "," NS("gamma", "g2") "]");
	assert_converges(c);
	assert_int_equal(stats(c).malformed, 0);
	fault("{\"fragment\": 0}");
	client_close(c);
}

static void test_malformed_event_restarts_from_last_good_version(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	struct vakt_kube_stats st;

	(void)state;
	assert_converges(c);
	fault("{\"malformed_events\": 1}");
	load("[" POD("gamma", "w5", "web", "10.2.0.5") "," POD("gamma", "w6", "web", "10.2.0.6")
	     "]");
	assert_converges(c);
	st = stats(c);
	assert_int_equal(st.malformed, 1);
	assert_true(st.restarts[VAKT_KUBE_PODS] >= 1); /* the garbage replaced a pod event */
	for (int r = 0; r < VAKT_KUBE_NRES; r++)
		assert_int_equal(st.relists[r], 0); /* a restart, not a relist */
	client_close(c);
}

static void test_server_errors_are_retried(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);

	(void)state;
	assert_converges(c);
	/* Only the pod watch fails, so that all four failures precede the change. */
	fault("{\"status\": 500, \"count\": 4, \"match\": \"/pods?watch=1\", "
	      "\"close_watches\": true}");
	load("[" POD("gamma", "w7", "web", "10.2.0.7") "]");
	assert_converges(c);
	assert_true(stats(c).http_errors >= 4);
	fault("{\"clear\": true}");
	client_close(c);
}

static void test_too_many_requests_waits_for_retry_after(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	uint64_t t0;

	(void)state;
	assert_converges(c);
	/* The pod watch's reconnect gets a 429 asking for 1 s; the change is seen only after. */
	fault("{\"status\": 429, \"count\": 1, \"retry_after\": 1, \"match\": \"/pods?watch=1\"}");
	fault("{\"close_watches\": true}");
	t0 = vakt_now_ms();
	load("[" POD("gamma", "w8", "web", "10.2.0.8") "]");
	assert_converges(c);
	assert_true(vakt_now_ms() - t0 >= 950);
	assert_int_equal(stats(c).http_errors, 1);
	fault("{\"clear\": true}");
	client_close(c);
}

static void test_refused_connections_are_retried_until_the_server_is_back(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	uint64_t t0;

	(void)state;
	assert_converges(c);
	t0 = vakt_now_ms();
	fault("{\"refuse_seconds\": 1.0}");
	/* Nothing can be changed while the port is closed: let the client fail against it. */
	run_until(c, never, 1200);
	load("[" POD("gamma", "w9", "web", "10.2.0.9") "]");
	assert_converges(c);
	assert_true(vakt_now_ms() - t0 >= 1000);
	assert_true(stats(c).transport_errors >= 3);
	client_close(c);
}

static void test_rotated_token_is_read_again(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	uint64_t before;

	(void)state;
	assert_converges(c);
	before = stats(c).token_reloads;
	/* The old token stops working at once: every open stream is closed too. */
	fault("{\"rotate_token\": true, \"keep_previous\": false, \"close_watches\": true}");
	load("[" POD("gamma", "w10", "web", "10.2.0.10") "]");
	assert_converges(c);
	assert_true(stats(c).token_reloads > before);
	client_close(c);
}

static void test_compaction_relists_and_applies_only_the_difference(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	struct vakt_kube_stats st;

	(void)state;
	assert_converges(c);
	/* Keep the client from watching while the cluster changes, then compact. */
	fault("{\"status\": 503, \"count\": 100000, \"match\": \"watch=1\", \"close_watches\": true}");
	run_until(c, never, 200);
	memset(&c->ev, 0, sizeof(c->ev));
	del("/api/v1/namespaces/gamma/pods/w2");
	del("/api/v1/namespaces/gamma/pods/w3");
	load("[" POD("gamma", "w11", "web", "10.2.0.11") "," POL("gamma", "gp", "web", "9443") "]");
	fault("{\"clear\": true, \"compact\": true}");
	assert_converges(c);
	st = stats(c);
	assert_true(st.relists[VAKT_KUBE_PODS] >= 1);
	assert_true(st.relists[VAKT_KUBE_POLICIES] >= 1);
	/* Exactly the difference reached the store. */
	assert_int_equal(c->ev.pod.del, 2);
	assert_int_equal(c->ev.pod.add, 1);
	assert_int_equal(c->ev.pod.mod, 0);
	assert_int_equal(c->ev.pol.mod, 1);
	assert_int_equal(c->ev.pol.add + c->ev.pol.del, 0);
	assert_int_equal(c->ev.ns.add + c->ev.ns.mod + c->ev.ns.del, 0);
	client_close(c);
}

static void test_gone_as_http_status_relists_too(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);

	(void)state;
	assert_converges(c);
	fault("{\"watch_gone\": \"http\", \"status\": 503, \"count\": 100000, "
	      "\"match\": \"watch=1\", \"close_watches\": true}");
	run_until(c, never, 200);
	del("/api/v1/namespaces/gamma/pods/w11");
	fault("{\"clear\": true, \"compact\": true}");
	assert_converges(c);
	assert_true(stats(c).relists[VAKT_KUBE_PODS] >= 1);
	fault("{\"watch_gone\": \"event\"}");
	client_close(c);
}

static void test_expired_continue_token_lists_again_from_the_start(void **state)
{
	struct vakt_kube_opts o = fast;
	struct client *c;

	(void)state;
	fault("{\"expire_continue\": 1}");
	o.page_limit = 4;
	c = client_open(srv.kubeconfig, &o);
	assert_converges(c);
	assert_true(stats(c).http_errors >= 1);
	assert_int_equal(c->ev.pod.del, 0);
	client_close(c);
}

static int bookmarked_all(struct client *c)
{
	struct vakt_kube_stats st = stats(c);

	for (int r = 0; r < VAKT_KUBE_NRES; r++)
		if (!st.events[r][VAKT_KUBE_EV_BOOKMARK])
			return 0;
	return 1;
}

static int rejected_and_went_on(struct client *c)
{
	return stats(c).decode_errors[VAKT_KUBE_POLICIES] >= 1 &&
	       vakt_store_pod(c->store, "gamma", "w12") != NULL;
}

static void test_bookmarks_advance_the_resource_version(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	struct vakt_kube_stats st;

	(void)state;
	assert_converges(c);
	/* The server sends bookmarks every 0.3 s. */
	assert_true(run_until(c, bookmarked_all, WAIT_MS));
	st = stats(c);
	for (int r = 0; r < VAKT_KUBE_NRES; r++)
		assert_true(st.events[r][VAKT_KUBE_EV_BOOKMARK] >= 1);
	assert_int_equal(sum_events(&st, VAKT_KUBE_EV_ADDED), 0); /* nothing changed meanwhile */
	client_close(c);
}

static void test_rejected_object_keeps_the_previous_version(void **state)
{
	struct client *c = client_open(srv.kubeconfig, NULL);
	const struct vakt_policy *p;

	(void)state;
	assert_converges(c);
	/* The test server does not validate; ICMP is not a NetworkPolicy protocol. */
	load("[{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"
	     "{\"name\":\"gp\",\"namespace\":\"gamma\"},\"spec\":{\"podSelector\":{},"
	     "\"ingress\":[{\"ports\":[{\"protocol\":\"ICMP\"}]}]}}]");
	load("[" POD("gamma", "w12", "web", "10.2.0.12") "]");
	assert_true(run_until(c, rejected_and_went_on, WAIT_MS));
	assert_false(store_matches_server(c->store, 0)); /* gp stays as it was */
	p = vakt_store_policy(c->store, "gamma", "gp");
	assert_non_null(p);
	assert_int_equal(p->nrules[VAKT_DIR_INGRESS], 1);
	assert_int_equal(p->rules[VAKT_DIR_INGRESS][0].ports[0].port, 9443);
	assert_non_null(vakt_store_pod(c->store, "gamma", "w12")); /* the watch went on */
	load("[" POL("gamma", "gp", "web", "443") "]");
	assert_converges(c);
	client_close(c);
}

static void test_client_certificate_authenticates(void **state)
{
	struct client *c = client_open(srv.kubeconfig_cert, NULL);

	(void)state;
	assert_converges(c);
	client_close(c);
}

static void write_text(const char *path, const char *text)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void test_in_cluster_unauthorized_backs_off_then_recovers(void **state)
{
	char sa[128], path[256], cmd[600], port[16];
	struct vakt_kube_opts o = fast;
	struct vakt_kube_stats st;
	struct client *c;

	(void)state;
	snprintf(sa, sizeof(sa), "%s/sa", srv.dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s %s/ca.crt", sa, srv.ca, sa);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/token", sa);
	write_text(path, "not-the-token\n");
	snprintf(port, sizeof(port), "%d", srv.port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	o.sa_dir = sa;
	c = client_open(NULL, &o);
	run_until(c, never, 1500);
	st = stats(c);
	assert_false(vakt_kube_synced(c->kube));
	/* Backoff, not a hot loop: 3 resources, 50 ms doubling to 400 ms, in 1.5 s. */
	assert_true(st.http_errors >= 3);
	assert_true(st.http_errors <= 3 * 10);
	/* kubelet rotates the projected token: the file changes, the client reads it. */
	write_text(path, read_token());
	assert_converges(c);
	client_close(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static int free_port(void)
{
	/* Bind port 0, read the port, close: racy in theory, fine on a test host. */
	char cmd[] = "python3 -c 'import socket;s=socket.socket();s.bind((\"127.0.0.1\",0));"
		     "print(s.getsockname()[1])'";
	FILE *p = popen(cmd, "r");
	int port = 0;

	if (p) {
		if (fscanf(p, "%d", &port) != 1)
			port = 0;
		pclose(p);
	}
	return port;
}

static void test_http2_multiplexes_the_watches_on_one_connection(void **state)
{
	struct vakt_kube_config cfg = { 0 };
	struct vakt_kube_opts o = fast;
	struct vakt_kube_stats st;
	char url[64], backend[64], frontend[64], cert[256], key[256], cfgfile[256];
	struct client *c = calloc(1, sizeof(*c));
	struct vakt_store_listener l;
	int port = free_port(), err = 0;
	pid_t px;

	(void)state;
	assert_true(port > 0);
	/* nghttpx (nghttp2-proxy) speaks h2 to us and HTTP/1.1 over TLS to the test server. */
	snprintf(frontend, sizeof(frontend), "--frontend=127.0.0.1,%d", port);
	snprintf(backend, sizeof(backend), "--backend=127.0.0.1,%d;;tls", srv.port);
	snprintf(cert, sizeof(cert), "%s/server.crt", srv.dir);
	snprintf(key, sizeof(key), "%s/server.key", srv.dir);
	snprintf(cfgfile, sizeof(cfgfile), "--conf=/dev/null");
	px = fork();
	if (px == 0) {
		int fd = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fd, 1);
		execlp("nghttpx", "nghttpx", cfgfile, frontend, backend, "--insecure",
		       "--workers=1", "--no-ocsp",
		       key, cert, (char *)NULL);
		fprintf(stderr, "cannot run nghttpx (Debian package nghttp2-proxy): %s\n",
			strerror(errno));
		_exit(127);
	}
	assert_true(px > 0);
	c->loop = vakt_loop_new();
	c->store = vakt_store_new();
	l = (struct vakt_store_listener){ &c->ev, ns_changed, pod_changed, pol_changed };
	vakt_store_set_listener(c->store, &l);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
	cfg.server = url;
	cfg.ca_file = srv.ca;
	cfg.token_file = srv.token_file;
	o.cb = on_batch;
	o.cb_arg = c;
	run_until(c, never, 300); /* nghttpx starting */
	c->kube = vakt_kube_open_config(c->loop, c->store, &cfg, &o, &err);
	assert_non_null(c->kube);
	if (!run_until(c, converged, WAIT_MS)) {
		kill(px, SIGTERM);
		waitpid(px, NULL, 0);
		fail_msg("no sync through nghttpx (is nghttp2-proxy installed?)");
	}
	load("[" POD("gamma", "h2pod", "web", "10.2.0.99") "]");
	assert_converges(c);
	st = stats(c);
	kill(px, SIGTERM);
	waitpid(px, NULL, 0);
	/* Three lists and three watches so far, all over HTTP/2, all on one connection. */
	assert_true(st.transfers >= 3);
	assert_int_equal(st.h2_transfers, st.transfers);
	assert_int_equal(st.connects, 1);
	client_close(c);
}

/* --- configuration ------------------------------------------------------------------------------ */

static void test_kubeconfig_picks_context_and_resolves_relative_files(void **state)
{
	char dir[] = "/tmp/vakt-kubeconfig-XXXXXX", path[128];
	struct vakt_kube_config cfg;
	struct vakt_error err = { "" };
	char text[2048];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
		 "clusters:\n"
		 "- name: ca\n  cluster:\n    server: https://a.example:6443/\n"
		 "    certificate-authority: certs/ca.pem\n"
		 "- name: cb\n  cluster:\n    server: https://10.0.0.1:443\n"
		 "    certificate-authority-data: aGVsbG8=\n    insecure-skip-tls-verify: true\n"
		 "users:\n"
		 "- name: ua\n  user:\n    tokenFile: tok\n"
		 "- name: ub\n  user:\n    token: abc\n    client-certificate-data: Y2VydA==\n"
		 "    client-key-data: a2V5\n"
		 "contexts:\n- name: a\n  context: {cluster: ca, user: ua}\n"
		 "- name: b\n  context: {cluster: cb, user: ub}\n");
	write_text(path, text);

	assert_int_equal(vakt_kubeconfig_load(path, NULL, &cfg, &err), 0);
	assert_string_equal(cfg.server, "https://10.0.0.1:443");
	assert_int_equal(cfg.ca_len, 5);
	assert_memory_equal(cfg.ca_data, "hello", 5);
	assert_int_equal(cfg.insecure, 1);
	assert_string_equal(cfg.token, "abc");
	assert_memory_equal(cfg.cert_data, "cert", 4);
	assert_memory_equal(cfg.key_data, "key", 3);
	vakt_kube_config_free(&cfg);

	assert_int_equal(vakt_kubeconfig_load(path, "a", &cfg, &err), 0);
	assert_string_equal(cfg.server, "https://a.example:6443");
	snprintf(text, sizeof(text), "%s/certs/ca.pem", dir);
	assert_string_equal(cfg.ca_file, text);
	snprintf(text, sizeof(text), "%s/tok", dir);
	assert_string_equal(cfg.token_file, text);
	assert_null(cfg.token);
	assert_int_equal(cfg.insecure, 0);
	vakt_kube_config_free(&cfg);
	unlink(path);
	rmdir(dir);
}

static void test_kubeconfig_errors_say_what_is_wrong(void **state)
{
	static const struct {
		const char *text, *context, *expect;
	} cases[] = {
		{ "current-context: x\ncontexts: []\n", NULL, "context \"x\" not found" },
		{ "kind: Config\n", NULL, "current-context is not set" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: 'http://x'}\n",
		  NULL, "cluster \"c\".server: must be an https:// URL" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
		  "users:\n- name: u\n  user:\n    exec: {command: aws}\n",
		  NULL, "exec and auth-provider credentials are not supported" },
		{ "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: 'https://x', "
		  "certificate-authority-data: '%%%%'}\n",
		  NULL, "certificate-authority-data: not valid base64" },
		{ "- a\n- b\n", NULL, "not a kubeconfig" },
	};
	char dir[] = "/tmp/vakt-kubeconfig-XXXXXX", path[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vakt_kube_config cfg;
		struct vakt_error err = { "" };

		write_text(path, cases[i].text);
		assert_true(vakt_kubeconfig_load(path, cases[i].context, &cfg, &err) < 0);
		if (!strstr(err.msg, cases[i].expect))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].expect);
		assert_non_null(strstr(err.msg, path));
	}
	unlink(path);
	rmdir(dir);
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("VAKT_TEST_DEBUG"))
		vakt_log_set_level(VAKT_LOG_DEBUG);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return start_server(&srv, "--bookmark-interval 0.3");
}

static int group_teardown(void **state)
{
	(void)state;
	stop_server(&srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_picks_context_and_resolves_relative_files),
		cmocka_unit_test(test_kubeconfig_errors_say_what_is_wrong),
		cmocka_unit_test(test_lists_in_pages_then_syncs),
		cmocka_unit_test(test_watch_applies_adds_changes_and_deletes),
		cmocka_unit_test(test_stream_cut_mid_event_loses_nothing),
		cmocka_unit_test(test_stream_split_into_tiny_chunks_is_reassembled),
		cmocka_unit_test(test_malformed_event_restarts_from_last_good_version),
		cmocka_unit_test(test_server_errors_are_retried),
		cmocka_unit_test(test_too_many_requests_waits_for_retry_after),
		cmocka_unit_test(test_refused_connections_are_retried_until_the_server_is_back),
		cmocka_unit_test(test_rotated_token_is_read_again),
		cmocka_unit_test(test_compaction_relists_and_applies_only_the_difference),
		cmocka_unit_test(test_gone_as_http_status_relists_too),
		cmocka_unit_test(test_expired_continue_token_lists_again_from_the_start),
		cmocka_unit_test(test_bookmarks_advance_the_resource_version),
		cmocka_unit_test(test_rejected_object_keeps_the_previous_version),
		cmocka_unit_test(test_client_certificate_authenticates),
		cmocka_unit_test(test_in_cluster_unauthorized_backs_off_then_recovers),
		cmocka_unit_test(test_http2_multiplexes_the_watches_on_one_connection),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
