// SPDX-License-Identifier: Apache-2.0
/*
 * kube.c - list and watch the API server from the event loop (libcurl
 * multi socket interface). See kube.h for the contract, docs/kubernetes.md
 * for the behaviour under failures.
 *
 * Per resource the state is: LIST (pages until no continue token), then
 * WATCH from the list's resourceVersion, and IDLE while a retry timer runs.
 * Everything a transfer teaches (status, 410 events, malformed events) is
 * recorded in struct res while libcurl calls us, and acted upon only when
 * the transfer is done, outside libcurl's callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "dirsource.h" /* vakt_*_equal */
#include "htab.h"
#include "kube.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "store.h"
#include "watchparse.h"

#define DEF_PAGE_LIMIT 500
#define DEF_BACKOFF_INITIAL_MS 500
#define DEF_BACKOFF_MAX_MS 30000
#define DEF_WATCH_TIMEOUT_S 300
#define DEF_MAX_EVENT_BYTES (16u << 20)
/* One list page of 500 large pods is a few MB; this bounds a broken server. */
#define MAX_PAGE_BYTES (256u << 20)
/* A Retry-After beyond this is treated as this: the agent must come back. */
#define MAX_RETRY_AFTER_S 300
/* A watch that ended after less than this, having delivered nothing, was a failure. */
#define WATCH_HEALTHY_MS 1000
#define TOKEN_MAX_BYTES 65536

enum state { ST_IDLE, ST_LIST, ST_WATCH };

enum outcome {
	OUT_NONE,
	OUT_GONE,      /* ERROR event with code 410: relist */
	OUT_MALFORMED, /* undecodable event: restart from the last good rv */
	OUT_ERROR,     /* other ERROR event */
	OUT_TOO_BIG,   /* body or event over the bound */
};

struct buf {
	char *p;
	size_t len, cap;
};

struct res {
	struct vakt_kube *k;
	enum vakt_kube_res id;
	const char *path; /* collection path below the server URL */
	enum state st;
	CURL *easy;
	struct curl_slist *hdrs;
	long timer;         /* retry timer id, 0: none */
	unsigned attempts;  /* consecutive failures, for the backoff */
	int token_retried;  /* a 401 already led to a token re-read in this failure streak */
	char *rv;           /* where the next watch starts */
	char *cont;         /* continue token of the list in progress */
	unsigned lists;     /* completed lists */
	unsigned pages;     /* pages of the list in progress */
	uint64_t list_t0;
	struct vakt_htab seen; /* keys (char *) of the list in progress */
	struct buf body;
	struct vakt_watchparse wp;
	enum outcome out;
	uint64_t watch_t0;
	unsigned long watch_events;
};

struct vakt_kube {
	struct vakt_loop *loop;
	struct vakt_store *store;
	struct vakt_kube_config cfg;
	struct vakt_kube_opts o;
	char *user_agent;
	CURLM *multi;
	long curl_timer;
	char *token;
	struct stat token_st; /* of the token file when last read */
	int *fds;             /* sockets registered in the loop, to unregister on close */
	size_t nfds, capfds;
	struct res res[VAKT_KUBE_NRES];
	struct vakt_kube_stats st;
	unsigned long batch_changes;
	double batch_seconds;
	unsigned rng; /* jitter only: no need for good randomness */
	int closing;
};

static const char *const res_names[VAKT_KUBE_NRES] = { "namespaces", "pods", "networkpolicies" };
static const char *const res_paths[VAKT_KUBE_NRES] = {
	"/api/v1/namespaces",
	"/api/v1/pods",
	"/apis/networking.k8s.io/v1/networkpolicies",
};
static const char *const ev_names[VAKT_KUBE_NEV] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK",
						     "ERROR" };

const char *vakt_kube_res_name(enum vakt_kube_res r)
{
	return r < VAKT_KUBE_NRES ? res_names[r] : "?";
}

const char *vakt_kube_event_name(enum vakt_kube_event e)
{
	return e < VAKT_KUBE_NEV ? ev_names[e] : "?";
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(struct res *r);

/* --- small helpers ------------------------------------------------------------- */

static int buf_add(struct buf *b, const char *p, size_t n, size_t max)
{
	if (b->len + n + 1 > max)
		return -E2BIG;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

static int set_str(char **dst, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

static unsigned rnd(struct vakt_kube *k)
{
	k->rng = k->rng * 1103515245u + 12345u;
	return k->rng >> 8;
}

static int key_eq(const void *item, const void *key)
{
	return !strcmp(item, key);
}

static void seen_clear(struct res *r)
{
	for (size_t i = 0; i < vakt_htab_cap(&r->seen); i++)
		free(r->seen.slots[i].item);
	vakt_htab_clear(&r->seen);
}

static int seen_add(struct res *r, const char *key)
{
	uint64_t h = vakt_hash_str(0, key);
	char *d;
	int err;

	if (vakt_htab_find(&r->seen, h, key_eq, key))
		return 0;
	d = strdup(key);
	if (!d)
		return -ENOMEM;
	err = vakt_htab_insert(&r->seen, h, d);
	if (err)
		free(d);
	return err;
}

static int seen_has(const struct res *r, const char *key)
{
	return vakt_htab_find(&r->seen, vakt_hash_str(0, key), key_eq, key) != NULL;
}

/* --- token ---------------------------------------------------------------------- */

/*
 * Reads the token file again if it changed since the last read (or always
 * when forced, after a 401). Returns 1 if the token changed, 0 if not,
 * -errno if it cannot be read (the old token stays).
 */
static int token_refresh(struct vakt_kube *k, int force)
{
	struct stat st;
	char buf[TOKEN_MAX_BYTES];
	ssize_t n;
	int fd, err = 0;

	if (!k->cfg.token_file)
		return 0;
	if (stat(k->cfg.token_file, &st))
		err = -errno;
	else if (!force && k->token && st.st_ino == k->token_st.st_ino &&
		 st.st_mtim.tv_sec == k->token_st.st_mtim.tv_sec &&
		 st.st_mtim.tv_nsec == k->token_st.st_mtim.tv_nsec && st.st_size == k->token_st.st_size)
		return 0;
	fd = err ? -1 : open(k->cfg.token_file, O_RDONLY | O_CLOEXEC);
	if (!err && fd < 0)
		err = -errno;
	if (err) {
		log_error("cannot read the token file, keeping the previous token",
			  "file=%s err=%d", k->cfg.token_file, err);
		return err;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err) {
		log_error("cannot read the token file", "file=%s err=%d", k->cfg.token_file, err);
		return err;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	k->token_st = st;
	k->st.token_reloads++;
	if (k->token && !strcmp(k->token, buf))
		return 0;
	if (set_str(&k->token, buf))
		return -ENOMEM;
	log_info("bearer token loaded", "file=%s bytes=%zd", k->cfg.token_file, n);
	return 1;
}

/* --- the store -------------------------------------------------------------------- */

static void store_event(struct vakt_kube *k, double t0, int del)
{
	k->batch_changes++;
	k->batch_seconds += now_s() - t0;
	if (del)
		k->st.deletes++;
	else
		k->st.puts++;
}

/* metadata.namespace/name of an API object: the store key. */
static int obj_key(struct res *r, json_t *obj, const char **ns, const char **name)
{
	json_t *md = json_object_get(obj, "metadata");

	*name = json_string_value(json_object_get(md, "name"));
	*ns = json_string_value(json_object_get(md, "namespace"));
	if (!*name || (r->id != VAKT_KUBE_NAMESPACES && !*ns))
		return -EINVAL;
	return 0;
}

static const char *obj_rv(json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"),
						 "resourceVersion"));
}

static const char *stored_rv(struct res *r, const char *ns, const char *name, int *exists)
{
	const struct vakt_store *s = r->k->store;
	const char *rv = NULL;

	*exists = 0;
	if (r->id == VAKT_KUBE_NAMESPACES) {
		const struct vakt_namespace *o = vakt_store_namespace(s, name);

		if (o) {
			*exists = 1;
			rv = o->resource_version;
		}
	} else if (r->id == VAKT_KUBE_PODS) {
		const struct vakt_pod *o = vakt_store_pod(s, ns, name);

		if (o) {
			*exists = 1;
			rv = o->resource_version;
		}
	} else {
		const struct vakt_policy *o = vakt_store_policy(s, ns, name);

		if (o) {
			*exists = 1;
			rv = o->resource_version;
		}
	}
	return rv;
}

/* Decodes and puts unless the store holds the same. 0, or -errno (store failure). */
static int put_object(struct res *r, json_t *obj, const char *ns, const char *name)
{
	static const struct vakt_load_opts lo = { .require_pod_ip = 0 };
	struct vakt_kube *k = r->k;
	struct vakt_error verr = { "" };
	char origin[64];
	const char *rv = obj_rv(obj), *have;
	double t0 = now_s();
	int exists, err = 0;

	have = stored_rv(r, ns, name, &exists);
	if (exists && rv && have && !strcmp(rv, have))
		return 0; /* same version: a relist of an unchanged object */
	snprintf(origin, sizeof(origin), "api %s", res_names[r->id]);
	if (r->id == VAKT_KUBE_NAMESPACES) {
		struct vakt_namespace *o;

		err = vakt_decode_namespace(obj, origin, &lo, &o, &verr);
		if (!err && exists && vakt_namespace_equal(vakt_store_namespace(k->store, name), o)) {
			vakt_namespace_free(o);
			return 0;
		}
		if (!err)
			err = vakt_store_put_namespace(k->store, o);
	} else if (r->id == VAKT_KUBE_PODS) {
		struct vakt_pod *o;

		err = vakt_decode_pod(obj, origin, &lo, &o, &verr);
		if (!err && exists && vakt_pod_equal(vakt_store_pod(k->store, ns, name), o)) {
			vakt_pod_free(o);
			return 0;
		}
		if (!err)
			err = vakt_store_put_pod(k->store, o);
	} else {
		struct vakt_policy *o;

		err = vakt_decode_policy(obj, origin, &lo, &o, &verr);
		if (!err && exists &&
		    vakt_policy_equal(vakt_store_policy(k->store, ns, name), o)) {
			vakt_policy_free(o);
			return 0;
		}
		if (!err)
			err = vakt_store_put_policy(k->store, o);
	}
	if (err == -EINVAL && verr.msg[0]) {
		/* The API server accepted it, we cannot use it: keep what we had. */
		k->st.decode_errors[r->id]++;
		log_error("object rejected, previous version kept", "resource=%s object=%s%s%s "
			  "rv=%s error=\"%s\"", res_names[r->id], ns ? ns : "", ns ? "/" : "",
			  name, rv ? rv : "-", verr.msg);
		return 0;
	}
	if (err) {
		log_error("store update failed", "resource=%s object=%s%s%s err=%d",
			  res_names[r->id], ns ? ns : "", ns ? "/" : "", name, err);
		return err;
	}
	store_event(k, t0, 0);
	return 0;
}

static void del_object(struct res *r, const char *ns, const char *name)
{
	struct vakt_kube *k = r->k;
	double t0 = now_s();
	int err;

	if (r->id == VAKT_KUBE_NAMESPACES)
		err = vakt_store_del_namespace(k->store, name);
	else if (r->id == VAKT_KUBE_PODS)
		err = vakt_store_del_pod(k->store, ns, name);
	else
		err = vakt_store_del_policy(k->store, ns, name);
	if (!err)
		store_event(k, t0, 1);
}

/* --- relist: delete what the list did not contain ------------------------------------ */

struct sweep {
	struct res *r;
	char **keys;
	size_t n, cap;
	int err;
};

static int sweep_key(struct sweep *w, const char *ns, const char *name)
{
	char key[512];

	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
	if (seen_has(w->r, key))
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char **p = realloc(w->keys, cap * sizeof(*p));

		if (!p)
			return w->err = -ENOMEM;
		w->keys = p;
		w->cap = cap;
	}
	w->keys[w->n] = strdup(key);
	if (!w->keys[w->n])
		return w->err = -ENOMEM;
	w->n++;
	return 0;
}

static int sweep_ns(void *arg, const struct vakt_namespace *o)
{
	return sweep_key(arg, NULL, o->name);
}

static int sweep_pod(void *arg, const struct vakt_pod *o)
{
	return sweep_key(arg, o->ns, o->name);
}

static int sweep_pol(void *arg, const struct vakt_policy *o)
{
	return sweep_key(arg, o->ns, o->name);
}

static size_t sweep(struct res *r)
{
	struct sweep w = { .r = r };
	const struct vakt_store *s = r->k->store;

	if (r->id == VAKT_KUBE_NAMESPACES)
		vakt_store_foreach_namespace(s, sweep_ns, &w);
	else if (r->id == VAKT_KUBE_PODS)
		vakt_store_foreach_pod(s, sweep_pod, &w);
	else
		vakt_store_foreach_policy(s, sweep_pol, &w);
	if (w.err)
		log_error("relist sweep incomplete", "resource=%s err=%d", res_names[r->id], w.err);
	for (size_t i = 0; i < w.n; i++) {
		char *slash = strchr(w.keys[i], '/');

		*slash = '\0';
		del_object(r, *w.keys[i] ? w.keys[i] : NULL, slash + 1);
		free(w.keys[i]);
	}
	free(w.keys);
	return w.n;
}

/* --- retries ------------------------------------------------------------------------ */

static void on_retry(struct vakt_loop *l, void *arg)
{
	struct res *r = arg;

	(void)l;
	r->timer = 0;
	start(r);
}

/* Starts the next transfer after delay_ms (0: at the next loop turn). */
static void schedule(struct res *r, uint64_t delay_ms)
{
	long id;

	r->st = ST_IDLE;
	id = vakt_loop_add_timer(r->k->loop, delay_ms, 0, on_retry, r);
	if (id < 0) {
		/* Without a timer nothing would ever restart this resource. */
		log_error("cannot arm the retry timer, retrying now", "resource=%s err=%ld",
			  res_names[r->id], id);
		start(r);
		return;
	}
	r->timer = id;
}

/* Jittered exponential backoff: uniformly in [d/2, d], d doubling up to the cap. */
static uint64_t backoff_ms(struct res *r)
{
	const struct vakt_kube_opts *o = &r->k->o;
	uint64_t d = o->backoff_initial_ms;
	unsigned a = r->attempts < 20 ? r->attempts : 20;

	d <<= a;
	if (d > o->backoff_max_ms)
		d = o->backoff_max_ms;
	r->attempts++;
	return d / 2 + (d > 1 ? rnd(r->k) % (d / 2 + 1) : 0);
}

static void retry_later(struct res *r, uint64_t min_ms)
{
	uint64_t d = backoff_ms(r);

	schedule(r, d > min_ms ? d : min_ms);
}

/* --- transfers ---------------------------------------------------------------------- */

static size_t list_write(char *p, size_t size, size_t n, void *arg)
{
	struct res *r = arg;
	int err = buf_add(&r->body, p, size * n, MAX_PAGE_BYTES);

	if (err) {
		r->out = OUT_TOO_BIG;
		return 0; /* aborts the transfer */
	}
	return size * n;
}

static void bump_rv(struct res *r, json_t *obj)
{
	const char *rv = obj_rv(obj);

	if (rv && *rv && set_str(&r->rv, rv))
		log_error("out of memory keeping the resourceVersion", "resource=%s",
			  res_names[r->id]);
}

static int event_type(const char *t)
{
	for (int i = 0; i < VAKT_KUBE_NEV; i++)
		if (t && !strcmp(t, ev_names[i]))
			return i;
	return -1;
}

static int on_event_error(struct res *r, json_t *obj)
{
	json_int_t code = json_integer_value(json_object_get(obj, "code"));
	const char *msg = json_string_value(json_object_get(obj, "message"));

	if (code == 410) {
		log_info("watch expired, relisting", "resource=%s rv=%s message=\"%s\"",
			 res_names[r->id], r->rv ? r->rv : "-", msg ? msg : "");
		r->out = OUT_GONE;
	} else {
		log_warn("watch error event, restarting", "resource=%s code=%lld message=\"%s\"",
			 res_names[r->id], (long long)code, msg ? msg : "");
		r->out = OUT_ERROR;
	}
	return 1;
}

/* One whole JSON object from the stream. Non-zero stops the transfer. */
static int on_event(void *arg, const char *text, size_t len)
{
	struct res *r = arg;
	struct vakt_kube *k = r->k;
	json_error_t jerr;
	json_t *ev = json_loadb(text, len, 0, &jerr), *obj;
	const char *ns = NULL, *name = NULL;
	int type, stop = 0;

	obj = json_object_get(ev, "object");
	type = event_type(json_string_value(json_object_get(ev, "type")));
	if (!ev || !json_is_object(obj) || type < 0 ||
	    (type <= VAKT_KUBE_EV_DELETED && obj_key(r, obj, &ns, &name))) {
		k->st.malformed++;
		log_warn("malformed watch event, restarting the watch from the last good version",
			 "resource=%s rv=%s bytes=%zu error=\"%s\"", res_names[r->id],
			 r->rv ? r->rv : "-", len,
			 !ev ? jerr.text : type < 0 ? "unknown or missing type" : "no object or key");
		r->out = OUT_MALFORMED;
		json_decref(ev);
		return 1;
	}
	k->st.events[r->id][type]++;
	r->watch_events++;
	switch (type) {
	case VAKT_KUBE_EV_ADDED:
	case VAKT_KUBE_EV_MODIFIED:
		if (put_object(r, obj, ns, name)) {
			r->out = OUT_ERROR;
			stop = 1;
		}
		break;
	case VAKT_KUBE_EV_DELETED:
		del_object(r, ns, name);
		break;
	case VAKT_KUBE_EV_ERROR:
		stop = on_event_error(r, obj);
		break;
	default:
		break;
	}
	if (!stop) {
		bump_rv(r, obj);
		r->attempts = 0; /* the connection works */
		r->token_retried = 0;
	}
	json_decref(ev);
	return stop;
}

static size_t watch_write(char *p, size_t size, size_t n, void *arg)
{
	struct res *r = arg;
	long code = 0;
	int err;

	/* An error answer is a Status, not events: watch_done() acts on the code. */
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return size * n;
	err = vakt_watchparse_feed(&r->wp, p, size * n);
	if (!err)
		return size * n;
	if (err == -E2BIG || err == -EBADMSG) {
		r->k->st.malformed++;
		log_warn(err == -E2BIG ? "watch event over the size bound, restarting the watch"
				       : "watch stream is not JSON objects, restarting the watch",
			 "resource=%s rv=%s max_bytes=%zu", res_names[r->id], r->rv ? r->rv : "-",
			 r->k->o.max_event_bytes);
		r->out = OUT_MALFORMED;
	} else if (err < 0) {
		r->out = OUT_ERROR;
	}
	return 0;
}

static int add_header(struct res *r, const char *name, const char *val)
{
	char line[TOKEN_MAX_BYTES + 64];
	struct curl_slist *l;

	snprintf(line, sizeof(line), "%s%s", name, val);
	l = curl_slist_append(r->hdrs, line);
	if (!l)
		return -ENOMEM;
	r->hdrs = l;
	return 0;
}

static void setup_tls(struct vakt_kube *k, CURL *e)
{
	const struct vakt_kube_config *c = &k->cfg;

	if (c->ca_data) {
		struct curl_blob b = { c->ca_data, c->ca_len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (c->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	}
	if (c->cert_data) {
		struct curl_blob b = { c->cert_data, c->cert_len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
	}
	if (c->key_data) {
		struct curl_blob b = { c->key_data, c->key_len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	}
	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* Builds the URL of the next transfer of r into url (size n). */
static int build_url(struct res *r, CURL *e, char *url, size_t n)
{
	struct vakt_kube *k = r->k;
	int len;

	if (r->st == ST_LIST) {
		char *cont = r->cont ? curl_easy_escape(e, r->cont, 0) : NULL;

		if (r->cont && !cont)
			return -ENOMEM;
		len = snprintf(url, n, "%s%s?limit=%u%s%s", k->cfg.server, r->path,
			       k->o.page_limit, cont ? "&continue=" : "", cont ? cont : "");
		curl_free(cont);
	} else {
		/* Jitter spreads the reconnects of many agents after an API server restart. */
		unsigned t = k->o.watch_timeout_s + rnd(k) % (k->o.watch_timeout_s + 1);
		char *rv = curl_easy_escape(e, r->rv ? r->rv : "", 0);

		if (!rv)
			return -ENOMEM;
		len = snprintf(url, n,
			       "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
			       "&timeoutSeconds=%u",
			       k->cfg.server, r->path, rv, t);
		curl_free(rv);
	}
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static CURL *make_easy(struct res *r)
{
	struct vakt_kube *k = r->k;
	char url[8192];
	CURL *e = curl_easy_init();

	if (!e)
		return NULL;
	if (build_url(r, e, url, sizeof(url)))
		goto fail;
	r->hdrs = NULL;
	if (add_header(r, "Accept: ", "application/json"))
		goto fail;
	if (k->token && add_header(r, "Authorization: Bearer ", k->token))
		goto fail;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 k->o.http1_only ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
	/* Wait for a connection that may multiplex rather than open a second one. */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	setup_tls(k, e);
	if (r->st == ST_LIST) {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, list_write);
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	} else {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch_write);
		if (k->o.idle_timeout_s) {
			curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
			curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)k->o.idle_timeout_s);
		}
	}
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	return e;
fail:
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	curl_easy_cleanup(e);
	return NULL;
}

static void start(struct res *r)
{
	struct vakt_kube *k = r->k;
	CURLMcode mc;

	/* Without a resourceVersion to watch from, list (first page or the next one). */
	r->st = r->rv ? ST_WATCH : ST_LIST;
	token_refresh(k, 0);
	r->out = OUT_NONE;
	r->body.len = 0;
	vakt_watchparse_reset(&r->wp);
	if (r->st == ST_LIST && !r->cont) {
		seen_clear(r);
		r->pages = 0;
		r->list_t0 = vakt_now_ms();
	}
	if (r->st == ST_WATCH) {
		r->watch_t0 = vakt_now_ms();
		r->watch_events = 0;
	}
	r->easy = make_easy(r);
	if (!r->easy) {
		log_error("cannot set up a request, retrying", "resource=%s", res_names[r->id]);
		retry_later(r, 0);
		return;
	}
	mc = curl_multi_add_handle(k->multi, r->easy);
	if (mc != CURLM_OK) {
		log_error("cannot start a request, retrying", "resource=%s error=\"%s\"",
			  res_names[r->id], curl_multi_strerror(mc));
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->hdrs);
		r->easy = NULL;
		r->hdrs = NULL;
		retry_later(r, 0);
		return;
	}
	log_debug("request started", "resource=%s op=%s rv=%s continue=%s", res_names[r->id],
		  r->st == ST_LIST ? "list" : "watch", r->rv ? r->rv : "-", r->cont ? "yes" : "no");
}

/* Forget the watch position: the next start() lists from scratch. */
static void need_list(struct res *r)
{
	free(r->rv);
	r->rv = NULL;
	free(r->cont);
	r->cont = NULL;
	r->st = ST_IDLE;
}

/* A non-200 answer (other than the 410s the callers handle). */
static void http_failure(struct res *r, long code, long retry_after_s)
{
	const char *op = r->st == ST_LIST ? "list" : "watch";
	struct vakt_kube *k = r->k;

	k->st.http_errors++;
	if (code == 401) {
		int changed = token_refresh(k, 1);

		log_error("API server rejected our credentials (401)",
			  "resource=%s op=%s token_file=%s token_changed=%d", res_names[r->id], op,
			  k->cfg.token_file ? k->cfg.token_file : "-", changed > 0);
		if (changed > 0 && !r->token_retried) {
			r->token_retried = 1;
			schedule(r, 0);
			return;
		}
	} else if (code == 403) {
		log_error("API server forbids this (403): the ClusterRole must allow get, list and "
			  "watch",
			  "resource=%s op=%s", res_names[r->id], op);
	} else if (code == 429) {
		uint64_t ms = (uint64_t)(retry_after_s > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S
									    : retry_after_s) * 1000;

		log_warn("API server asks to slow down (429)", "resource=%s op=%s retry_after_s=%ld",
			 res_names[r->id], op, retry_after_s);
		/* At least Retry-After, plus a little jitter so agents do not come back together. */
		if (ms) {
			r->attempts++;
			schedule(r, ms + rnd(k) % (ms / 10 + 1));
			return;
		}
	} else {
		log_warn("API request failed, retrying", "resource=%s op=%s status=%ld",
			 res_names[r->id], op, code);
	}
	retry_later(r, 0);
}

static void list_page(struct res *r)
{
	struct vakt_kube *k = r->k;
	json_error_t jerr;
	json_t *root = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &jerr);
	json_t *items = json_object_get(root, "items"), *md = json_object_get(root, "metadata"), *it;
	const char *cont = json_string_value(json_object_get(md, "continue"));
	const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
	size_t i;

	if (!root || !json_is_array(items) || !rv) {
		log_error("list response is not a list, retrying", "resource=%s error=\"%s\"",
			  res_names[r->id], root ? "no items or resourceVersion" : jerr.text);
		json_decref(root);
		free(r->cont);
		r->cont = NULL;
		retry_later(r, 0);
		return;
	}
	r->pages++;
	k->st.pages[r->id]++;
	json_array_foreach(items, i, it) {
		const char *ns, *name;
		char key[512];

		if (obj_key(r, it, &ns, &name)) {
			k->st.decode_errors[r->id]++;
			log_error("list item without a name, skipped", "resource=%s index=%zu",
				  res_names[r->id], i);
			continue;
		}
		snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
		/* Seen before decoding: a rejected object keeps its previous version, not deleted. */
		if (seen_add(r, key) || put_object(r, it, ns, name)) {
			json_decref(root);
			free(r->cont);
			r->cont = NULL;
			retry_later(r, 0);
			return;
		}
	}
	if (cont && *cont) {
		if (set_str(&r->cont, cont)) {
			json_decref(root);
			retry_later(r, 0);
			return;
		}
		json_decref(root);
		start(r);
		return;
	}
	free(r->cont);
	r->cont = NULL;
	if (set_str(&r->rv, rv)) {
		json_decref(root);
		retry_later(r, 0);
		return;
	}
	json_decref(root);
	{
		size_t gone = sweep(r);

		if (r->lists)
			k->st.relists[r->id]++;
		r->lists++;
		log_info(r->lists == 1 ? "initial list done" : "relist done",
			 "resource=%s pages=%u rv=%s deleted=%zu took_ms=%llu", res_names[r->id],
			 r->pages, r->rv, gone,
			 (unsigned long long)(vakt_now_ms() - r->list_t0));
	}
	seen_clear(r);
	buf_free(&r->body); /* a page can be megabytes: not kept while watching */
	r->attempts = 0;
	r->token_retried = 0;
	r->st = ST_WATCH;
	start(r);
}

static void list_done(struct res *r, CURLcode cc, long code, long retry_after_s)
{
	if (cc != CURLE_OK && r->out != OUT_TOO_BIG) {
		r->k->st.transport_errors++;
		log_warn("list failed, retrying", "resource=%s error=\"%s\"", res_names[r->id],
			 curl_easy_strerror(cc));
		retry_later(r, 0);
		return;
	}
	if (r->out == OUT_TOO_BIG) {
		log_error("list page over the size bound, retrying", "resource=%s max_bytes=%u",
			  res_names[r->id], MAX_PAGE_BYTES);
		retry_later(r, 0);
		return;
	}
	if (code == 410) {
		/* The continue token's snapshot was compacted away: start over. */
		log_info("list continue token expired, listing from the start", "resource=%s",
			 res_names[r->id]);
		r->k->st.http_errors++;
		need_list(r);
		retry_later(r, 0);
		return;
	}
	if (code != 200) {
		http_failure(r, code, retry_after_s);
		return;
	}
	list_page(r);
}

static void watch_done(struct res *r, CURLcode cc, long code, long retry_after_s)
{
	struct vakt_kube *k = r->k;
	int healthy = r->watch_events > 0 || vakt_now_ms() - r->watch_t0 >= WATCH_HEALTHY_MS;

	k->st.restarts[r->id]++;
	if (r->out == OUT_GONE || code == 410) {
		if (code == 410)
			log_info("watch expired (410), relisting", "resource=%s rv=%s",
				 res_names[r->id], r->rv ? r->rv : "-");
		need_list(r);
		if (healthy)
			schedule(r, 0);
		else
			retry_later(r, 0);
		return;
	}
	if (code && code != 200) {
		http_failure(r, code, retry_after_s);
		return;
	}
	if (r->out == OUT_NONE && cc != CURLE_OK) {
		k->st.transport_errors++;
		log_warn("watch stream failed, restarting", "resource=%s rv=%s error=\"%s\"",
			 res_names[r->id], r->rv ? r->rv : "-", curl_easy_strerror(cc));
	} else if (r->out == OUT_NONE && vakt_watchparse_pending(&r->wp)) {
		k->st.transport_errors++;
		log_warn("watch stream ended inside an event, restarting", "resource=%s rv=%s",
			 res_names[r->id], r->rv ? r->rv : "-");
		healthy = 0;
	} else if (r->out == OUT_NONE) {
		log_debug("watch ended, restarting", "resource=%s rv=%s events=%lu",
			  res_names[r->id], r->rv ? r->rv : "-", r->watch_events);
	}
	/* From the last good resourceVersion: nothing after it was applied. */
	if (healthy && r->out == OUT_NONE)
		schedule(r, 0);
	else
		retry_later(r, 0);
}

static void transfer_done(struct vakt_kube *k, CURL *e, CURLcode cc)
{
	struct res *r = NULL;
	long code = 0, ver = 0, nconn = 0;
	curl_off_t retry_after = 0;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
	curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
	k->st.transfers++;
	k->st.connects += (uint64_t)nconn;
	if (ver == CURL_HTTP_VERSION_2_0)
		k->st.h2_transfers++;
	curl_multi_remove_handle(k->multi, e);
	curl_easy_cleanup(e);
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	r->easy = NULL;
	if (r->st == ST_LIST)
		list_done(r, cc, code, (long)retry_after);
	else
		watch_done(r, cc, code, (long)retry_after);
}

/* --- libcurl <-> event loop ------------------------------------------------------------ */

static void flush(struct vakt_kube *k)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(k->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			transfer_done(k, m->easy_handle, m->data.result);
	if (k->batch_changes && k->o.cb)
		k->o.cb(k->o.cb_arg, k->batch_changes, k->batch_seconds);
	k->batch_changes = 0;
	k->batch_seconds = 0;
}

static void on_sock(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct vakt_kube *k = arg;
	int flags = 0, running;

	(void)l;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(k->multi, fd, flags, &running);
	flush(k);
}

static void on_curl_timer(struct vakt_loop *l, void *arg)
{
	struct vakt_kube *k = arg;
	int running;

	(void)l;
	k->curl_timer = 0;
	curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	flush(k);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct vakt_kube *k = arg;

	(void)multi;
	if (k->closing)
		return 0;
	if (k->curl_timer > 0)
		vakt_loop_cancel_timer(k->loop, k->curl_timer);
	k->curl_timer = 0;
	if (timeout_ms < 0)
		return 0;
	k->curl_timer = vakt_loop_add_timer(k->loop, (uint64_t)timeout_ms, 0, on_curl_timer, k);
	if (k->curl_timer < 0) {
		log_error("cannot arm libcurl's timer", "err=%ld", k->curl_timer);
		k->curl_timer = 0;
		return -1;
	}
	return 0;
}

static void fd_forget(struct vakt_kube *k, int fd)
{
	for (size_t i = 0; i < k->nfds; i++) {
		if (k->fds[i] == fd) {
			k->fds[i] = k->fds[--k->nfds];
			return;
		}
	}
}

static int fd_remember(struct vakt_kube *k, int fd)
{
	if (k->nfds == k->capfds) {
		size_t cap = k->capfds ? k->capfds * 2 : 8;
		int *p = realloc(k->fds, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		k->fds = p;
		k->capfds = cap;
	}
	k->fds[k->nfds++] = fd;
	return 0;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct vakt_kube *k = arg;
	uint32_t ev = 0;
	int err;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (sockp) {
			vakt_loop_del_fd(k->loop, s);
			fd_forget(k, s);
			curl_multi_assign(k->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (sockp)
		return vakt_loop_mod_fd(k->loop, s, ev) ? -1 : 0;
	err = vakt_loop_add_fd(k->loop, s, ev, on_sock, k);
	if (!err)
		err = fd_remember(k, s);
	if (err) {
		log_error("cannot watch a libcurl socket", "fd=%d err=%d", (int)s, err);
		return -1;
	}
	curl_multi_assign(k->multi, s, k); /* any non-NULL: "registered" */
	return 0;
}

/* --- lifecycle -------------------------------------------------------------------------- */

static int copy_blob(char **dst, size_t *dlen, const char *src, size_t len)
{
	if (!src)
		return 0;
	*dst = malloc(len + 1);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	*dlen = len;
	return 0;
}

static int copy_config(struct vakt_kube_config *d, const struct vakt_kube_config *s)
{
	memset(d, 0, sizeof(*d));
	d->insecure = s->insecure;
	if (set_str(&d->server, s->server) || set_str(&d->ca_file, s->ca_file) ||
	    set_str(&d->token, s->token) || set_str(&d->token_file, s->token_file) ||
	    set_str(&d->cert_file, s->cert_file) || set_str(&d->key_file, s->key_file) ||
	    copy_blob(&d->ca_data, &d->ca_len, s->ca_data, s->ca_len) ||
	    copy_blob(&d->cert_data, &d->cert_len, s->cert_data, s->cert_len) ||
	    copy_blob(&d->key_data, &d->key_len, s->key_data, s->key_len))
		return -ENOMEM;
	return d->server ? 0 : -EINVAL;
}

static void apply_defaults(struct vakt_kube_opts *o)
{
	if (!o->page_limit)
		o->page_limit = DEF_PAGE_LIMIT;
	if (!o->backoff_initial_ms)
		o->backoff_initial_ms = DEF_BACKOFF_INITIAL_MS;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = DEF_BACKOFF_MAX_MS;
	if (o->backoff_max_ms < o->backoff_initial_ms)
		o->backoff_max_ms = o->backoff_initial_ms;
	if (!o->watch_timeout_s)
		o->watch_timeout_s = DEF_WATCH_TIMEOUT_S;
	if (!o->max_event_bytes)
		o->max_event_bytes = DEF_MAX_EVENT_BYTES;
}

static int multi_setup(struct vakt_kube *k)
{
	static int global_done; /* curl_global_init once per process; the loop is single-threaded */

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return -EIO;
		global_done = 1;
	}
	k->multi = curl_multi_init();
	if (!k->multi)
		return -ENOMEM;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return 0;
}

struct vakt_kube *vakt_kube_open_config(struct vakt_loop *l, struct vakt_store *s,
					const struct vakt_kube_config *cfg,
					const struct vakt_kube_opts *o, int *err)
{
	struct vakt_kube *k = calloc(1, sizeof(*k));
	int r;

	if (!k) {
		*err = -ENOMEM;
		return NULL;
	}
	k->loop = l;
	k->store = s;
	k->o = *o;
	apply_defaults(&k->o);
	k->rng = (unsigned)getpid() ^ (unsigned)vakt_now_ms();
	r = copy_config(&k->cfg, cfg);
	if (r)
		goto fail;
	k->user_agent = strdup(o->user_agent ? o->user_agent : "vaktd/" VAKT_VERSION);
	if (!k->user_agent) {
		r = -ENOMEM;
		goto fail;
	}
	if (k->cfg.token && set_str(&k->token, k->cfg.token)) {
		r = -ENOMEM;
		goto fail;
	}
	/* An unreadable token file is not fatal: kubelet may not have written it yet. */
	token_refresh(k, 1);
	r = multi_setup(k);
	if (r)
		goto fail;
	for (int i = 0; i < VAKT_KUBE_NRES; i++) {
		struct res *rs = &k->res[i];

		rs->k = k;
		rs->id = (enum vakt_kube_res)i;
		rs->path = res_paths[i];
		vakt_watchparse_init(&rs->wp, k->o.max_event_bytes, on_event, rs);
	}
	for (int i = 0; i < VAKT_KUBE_NRES; i++)
		start(&k->res[i]);
	log_info("kubernetes source started", "server=%s auth=%s http=%s", k->cfg.server,
		 k->cfg.token_file ? "token-file" : k->cfg.token ? "token"
		 : (k->cfg.cert_file || k->cfg.cert_data) ? "client-cert" : "none",
		 k->o.http1_only ? "1.1" : "2-or-1.1");
	return k;
fail:
	vakt_kube_close(k);
	*err = r;
	return NULL;
}

struct vakt_kube *vakt_kube_open(struct vakt_loop *l, struct vakt_store *s,
				 const struct vakt_kube_opts *o, int *err)
{
	struct vakt_kube_config cfg;
	struct vakt_error verr = { "" };
	struct vakt_kube *k;
	int r;

	if (o->kubeconfig)
		r = vakt_kubeconfig_load(o->kubeconfig, o->context, &cfg, &verr);
	else
		r = vakt_kube_incluster(o->sa_dir, &cfg, &verr);
	if (r) {
		log_error("cannot configure the API client", "kubeconfig=%s err=%d error=\"%s\"",
			  o->kubeconfig ? o->kubeconfig : "(in-cluster)", r, verr.msg);
		*err = r;
		return NULL;
	}
	k = vakt_kube_open_config(l, s, &cfg, o, err);
	vakt_kube_config_free(&cfg);
	return k;
}

void vakt_kube_close(struct vakt_kube *k)
{
	if (!k)
		return;
	for (int i = 0; i < VAKT_KUBE_NRES; i++) {
		struct res *r = &k->res[i];

		if (r->timer > 0)
			vakt_loop_cancel_timer(k->loop, r->timer);
		if (r->easy && k->multi) {
			curl_multi_remove_handle(k->multi, r->easy);
			curl_easy_cleanup(r->easy);
		}
		curl_slist_free_all(r->hdrs);
		seen_clear(r);
		vakt_htab_fini(&r->seen);
		buf_free(&r->body);
		vakt_watchparse_free(&r->wp);
		free(r->rv);
		free(r->cont);
	}
	k->closing = 1;
	if (k->multi)
		curl_multi_cleanup(k->multi);
	/* libcurl may not report every socket as removed when the multi goes away. */
	for (size_t i = 0; i < k->nfds; i++)
		vakt_loop_del_fd(k->loop, k->fds[i]);
	if (k->curl_timer > 0)
		vakt_loop_cancel_timer(k->loop, k->curl_timer);
	free(k->fds);
	free(k->token);
	free(k->user_agent);
	vakt_kube_config_free(&k->cfg);
	free(k);
}

int vakt_kube_synced(const struct vakt_kube *k)
{
	for (int i = 0; i < VAKT_KUBE_NRES; i++)
		if (!k->res[i].lists)
			return 0;
	return 1;
}

void vakt_kube_stats(const struct vakt_kube *k, struct vakt_kube_stats *out)
{
	*out = k->st;
}
