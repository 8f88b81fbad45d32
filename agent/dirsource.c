// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "dirsource.h"
#include "htab.h"
#include "log.h"
#include "loop.h"

#define WATCH_MASK                                                                      \
	(IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
	 IN_DELETE_SELF | IN_MOVE_SELF)
/* How often a vanished directory is looked for again. */
#define REWATCH_MS 1000

struct vakt_dirsource {
	struct vakt_loop *loop;
	struct vakt_store *store;
	char *dir;
	vakt_dirsource_cb cb;
	void *arg;
	int ifd, wd;
	long debounce_timer, rewatch_timer;
	struct vakt_dirsource_stats st;
};

/* --- equality of the fields the compiler reads ----------------------------- */

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

static int selector_eq(const struct vakt_selector *a, const struct vakt_selector *b)
{
	if (!a || !b)
		return a == b;
	if (vakt_labels_cmp(&a->match_labels, &b->match_labels) || a->nexprs != b->nexprs)
		return 0;
	for (size_t i = 0; i < a->nexprs; i++) {
		const struct vakt_sel_expr *x = &a->exprs[i], *y = &b->exprs[i];

		if (!str_eq(x->key, y->key) || x->op != y->op || x->nvalues != y->nvalues)
			return 0;
		for (size_t j = 0; j < x->nvalues; j++)
			if (!str_eq(x->values[j], y->values[j]))
				return 0;
	}
	return 1;
}

static int cidr_eq(const struct vakt_cidr *a, const struct vakt_cidr *b)
{
	return !memcmp(&a->addr, &b->addr, sizeof(a->addr)) && a->plen == b->plen &&
	       a->v4 == b->v4;
}

static int peer_eq(const struct vakt_peer *a, const struct vakt_peer *b)
{
	if (!selector_eq(a->pod_sel, b->pod_sel) || !selector_eq(a->ns_sel, b->ns_sel) ||
	    a->has_ipblock != b->has_ipblock)
		return 0;
	if (!a->has_ipblock)
		return 1;
	if (!cidr_eq(&a->ipblock.cidr, &b->ipblock.cidr) ||
	    a->ipblock.nexcept != b->ipblock.nexcept)
		return 0;
	for (size_t i = 0; i < a->ipblock.nexcept; i++)
		if (!cidr_eq(&a->ipblock.except[i], &b->ipblock.except[i]))
			return 0;
	return 1;
}

static int rule_eq(const struct vakt_rule *a, const struct vakt_rule *b)
{
	if (a->npeers != b->npeers || a->nports != b->nports)
		return 0;
	for (size_t i = 0; i < a->npeers; i++)
		if (!peer_eq(&a->peers[i], &b->peers[i]))
			return 0;
	for (size_t i = 0; i < a->nports; i++) {
		const struct vakt_port_spec *x = &a->ports[i], *y = &b->ports[i];

		if (x->proto != y->proto || x->port != y->port || x->end_port != y->end_port ||
		    !str_eq(x->name, y->name))
			return 0;
	}
	return 1;
}

int vakt_namespace_equal(const struct vakt_namespace *a, const struct vakt_namespace *b)
{
	return str_eq(a->name, b->name) && !vakt_labels_cmp(&a->labels, &b->labels);
}

int vakt_pod_equal(const struct vakt_pod *a, const struct vakt_pod *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) || !str_eq(a->node, b->node) ||
	    vakt_labels_cmp(&a->labels, &b->labels) || a->host_network != b->host_network ||
	    a->nips != b->nips || a->nports != b->nports)
		return 0;
	if (a->nips && memcmp(a->ips, b->ips, a->nips * sizeof(a->ips[0])) != 0)
		return 0;
	for (size_t i = 0; i < a->nports; i++) {
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].port != b->ports[i].port || a->ports[i].proto != b->ports[i].proto)
			return 0;
	}
	return 1;
}

int vakt_policy_equal(const struct vakt_policy *a, const struct vakt_policy *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) ||
	    !selector_eq(&a->pod_sel, &b->pod_sel) || a->types != b->types)
		return 0;
	for (int d = 0; d < VAKT_DIR_MAX; d++) {
		if (a->nrules[d] != b->nrules[d])
			return 0;
		for (size_t i = 0; i < a->nrules[d]; i++)
			if (!rule_eq(&a->rules[d][i], &b->rules[d][i]))
				return 0;
	}
	return 1;
}

/* --- diffing a fresh object set against the store --------------------------- */

enum { K_NS, K_POD, K_POL };

struct okey {
	int kind;
	const char *ns; /* NULL for namespaces */
	const char *name;
};

struct dkey {
	int kind;
	char *ns; /* owned; NULL for namespaces */
	char *name;
};

struct diff {
	struct vakt_htab keys; /* of struct okey, the objects of the fresh set */
	struct okey *kv;
	size_t nkv;
	struct dkey *del; /* store objects missing from the set */
	size_t ndel, cap;
	int err;
};

static uint64_t okey_hash(const struct okey *k)
{
	return vakt_hash_str(vakt_hash_str(vakt_hash_u64(0, (uint64_t)k->kind), k->ns), k->name);
}

static int okey_eq(const void *item, const void *key)
{
	const struct okey *a = item, *b = key;

	return a->kind == b->kind && str_eq(a->ns, b->ns) && str_eq(a->name, b->name);
}

static int diff_add_key(struct diff *d, int kind, const char *ns, const char *name)
{
	struct okey *k = &d->kv[d->nkv++];

	*k = (struct okey){ kind, ns, name };
	return vakt_htab_insert(&d->keys, okey_hash(k), k);
}

static int diff_index_set(struct diff *d, const struct vakt_objset *set)
{
	size_t n = set->nns + set->npods + set->npols;
	int err = 0;

	d->kv = calloc(n ? n : 1, sizeof(*d->kv));
	if (!d->kv || vakt_htab_init(&d->keys, n))
		return -ENOMEM;
	for (size_t i = 0; i < set->nns && !err; i++)
		err = diff_add_key(d, K_NS, NULL, set->ns[i]->name);
	for (size_t i = 0; i < set->npods && !err; i++)
		err = diff_add_key(d, K_POD, set->pods[i]->ns, set->pods[i]->name);
	for (size_t i = 0; i < set->npols && !err; i++)
		err = diff_add_key(d, K_POL, set->pols[i]->ns, set->pols[i]->name);
	return err;
}

/* Store walk callback body: remember the object for deletion if the set lacks it. */
static int diff_check(struct diff *d, int kind, const char *ns, const char *name)
{
	struct okey k = { kind, ns, name };
	struct dkey dk = { kind, NULL, NULL };

	if (vakt_htab_find(&d->keys, okey_hash(&k), okey_eq, &k))
		return 0;
	if (d->ndel == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct dkey *n = realloc(d->del, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->del = n;
		d->cap = cap;
	}
	dk.ns = ns ? strdup(ns) : NULL;
	dk.name = strdup(name);
	if ((ns && !dk.ns) || !dk.name) {
		free(dk.ns);
		free(dk.name);
		return -ENOMEM;
	}
	d->del[d->ndel++] = dk;
	return 0;
}

static int check_ns(void *arg, const struct vakt_namespace *ns)
{
	return diff_check(arg, K_NS, NULL, ns->name);
}

static int check_pod(void *arg, const struct vakt_pod *pod)
{
	return diff_check(arg, K_POD, pod->ns, pod->name);
}

static int check_pol(void *arg, const struct vakt_policy *pol)
{
	return diff_check(arg, K_POL, pol->ns, pol->name);
}

static void diff_free(struct diff *d)
{
	for (size_t i = 0; i < d->ndel; i++) {
		free(d->del[i].ns);
		free(d->del[i].name);
	}
	free(d->del);
	free(d->kv);
	vakt_htab_fini(&d->keys);
}

static unsigned long put_changed(struct vakt_dirsource *ds, struct vakt_objset *set, int *err)
{
	struct vakt_store *s = ds->store;
	unsigned long n = 0;
	int r;

	/* Objects moved into the store leave a NULL slot that vakt_objset_free skips. */
	for (size_t i = 0; i < set->nns; i++) {
		const struct vakt_namespace *cur = vakt_store_namespace(s, set->ns[i]->name);

		if (cur && vakt_namespace_equal(cur, set->ns[i]))
			continue;
		r = vakt_store_put_namespace(s, set->ns[i]);
		set->ns[i] = NULL;
		*err = r ? r : *err;
		n++;
	}
	for (size_t i = 0; i < set->npods; i++) {
		const struct vakt_pod *cur =
			vakt_store_pod(s, set->pods[i]->ns, set->pods[i]->name);

		if (cur && vakt_pod_equal(cur, set->pods[i]))
			continue;
		r = vakt_store_put_pod(s, set->pods[i]);
		set->pods[i] = NULL;
		*err = r ? r : *err;
		n++;
	}
	for (size_t i = 0; i < set->npols; i++) {
		const struct vakt_policy *cur =
			vakt_store_policy(s, set->pols[i]->ns, set->pols[i]->name);

		if (cur && vakt_policy_equal(cur, set->pols[i]))
			continue;
		r = vakt_store_put_policy(s, set->pols[i]);
		set->pols[i] = NULL;
		*err = r ? r : *err;
		n++;
	}
	return n;
}

/* Deletes vanished objects: policies first, namespaces last (reverse of puts). */
static unsigned long delete_vanished(struct vakt_dirsource *ds, const struct diff *d, int *err)
{
	static const int order[] = { K_POL, K_POD, K_NS };
	unsigned long n = 0;
	int r;

	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		for (size_t i = 0; i < d->ndel; i++) {
			const struct dkey *k = &d->del[i];

			if (k->kind != order[o])
				continue;
			if (k->kind == K_POL)
				r = vakt_store_del_policy(ds->store, k->ns, k->name);
			else if (k->kind == K_POD)
				r = vakt_store_del_pod(ds->store, k->ns, k->name);
			else
				r = vakt_store_del_namespace(ds->store, k->name);
			*err = r ? r : *err;
			n++;
		}
	}
	return n;
}

/* Message for a key=value log line: quoted, inner double quotes made single. */
static const char *quote_msg(const char *m, char *buf, size_t len)
{
	size_t j = 0;

	if (len < 3)
		return "\"\"";
	buf[j++] = '"';
	for (; *m && j + 2 < len; m++)
		buf[j++] = (*m == '"' || *m == '\n') ? '\'' : *m;
	buf[j++] = '"';
	buf[j] = '\0';
	return buf;
}

int vakt_dirsource_reload(struct vakt_dirsource *ds, struct vakt_error *err)
{
	struct vakt_load_opts opts = { .require_pod_ip = 0 };
	struct vakt_objset set = { 0 };
	struct diff d = { 0 };
	unsigned long puts, dels;
	struct timespec ts0, ts1;
	char q[600];
	int r, serr = 0;

	err->msg[0] = '\0';
	r = vakt_load_path(&set, ds->dir, &opts, err);
	if (r) {
		ds->st.reload_errors++;
		log_error("manifests rejected, keeping last good state", "dir=%s err=%d detail=%s",
			  ds->dir, r, quote_msg(err->msg, q, sizeof(q)));
		return r;
	}
	r = diff_index_set(&d, &set);
	if (!r)
		r = vakt_store_foreach_namespace(ds->store, check_ns, &d);
	if (!r)
		r = vakt_store_foreach_pod(ds->store, check_pod, &d);
	if (!r)
		r = vakt_store_foreach_policy(ds->store, check_pol, &d);
	if (r) {
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory while diffing", ds->dir);
		log_error("manifest reload failed", "dir=%s err=%d", ds->dir, r);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	puts = put_changed(ds, &set, &serr);
	dels = delete_vanished(ds, &d, &serr);
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	ds->st.reloads++;
	ds->st.puts += puts;
	ds->st.deletes += dels;
	log_info("manifests loaded", "dir=%s namespaces=%zu pods=%zu policies=%zu puts=%lu deletes=%lu",
		 ds->dir, set.nns, set.npods, set.npols, puts, dels);
	if (serr) {
		log_error("store rejected an object", "dir=%s err=%d", ds->dir, serr);
		snprintf(err->msg, sizeof(err->msg), "%s: store error %d", ds->dir, serr);
		r = serr;
	}
	if (ds->cb && puts + dels)
		ds->cb(ds->arg, puts + dels,
		       (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9);
out:
	diff_free(&d);
	vakt_objset_free(&set);
	return r;
}

/* --- watching ----------------------------------------------------------------- */

static void reload_now(struct vakt_loop *l, void *arg)
{
	struct vakt_dirsource *ds = arg;
	struct vakt_error err;

	(void)l;
	ds->debounce_timer = 0;
	vakt_dirsource_reload(ds, &err); /* logged there; the last good state stays */
}

static void schedule_reload(struct vakt_dirsource *ds)
{
	if (ds->debounce_timer > 0)
		vakt_loop_cancel_timer(ds->loop, ds->debounce_timer);
	ds->debounce_timer =
		vakt_loop_add_timer(ds->loop, VAKT_DIRSOURCE_DEBOUNCE_MS, 0, reload_now, ds);
	if (ds->debounce_timer < 0) {
		log_error("cannot schedule manifest reload", "dir=%s err=%ld", ds->dir,
			  ds->debounce_timer);
		ds->debounce_timer = 0;
	}
}

static void rewatch(struct vakt_loop *l, void *arg);

static void watch_lost(struct vakt_dirsource *ds)
{
	if (ds->wd >= 0)
		inotify_rm_watch(ds->ifd, ds->wd);
	ds->wd = -1;
	log_warn("objects directory gone, keeping last good state", "dir=%s", ds->dir);
	if (ds->rewatch_timer <= 0)
		ds->rewatch_timer = vakt_loop_add_timer(ds->loop, REWATCH_MS, REWATCH_MS,
						       rewatch, ds);
}

static void rewatch(struct vakt_loop *l, void *arg)
{
	struct vakt_dirsource *ds = arg;

	(void)l;
	ds->wd = inotify_add_watch(ds->ifd, ds->dir, WATCH_MASK);
	if (ds->wd < 0)
		return;
	vakt_loop_cancel_timer(ds->loop, ds->rewatch_timer);
	ds->rewatch_timer = 0;
	log_info("objects directory back", "dir=%s", ds->dir);
	schedule_reload(ds);
}

static void inotify_event(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct vakt_dirsource *ds = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0, lost = 0;
	ssize_t n;

	(void)l;
	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				lost = 1;
			else
				changed = 1; /* IN_Q_OVERFLOW included: a full reload covers it */
			p += sizeof(*ev) + ev->len;
		}
	}
	if (lost && ds->wd >= 0)
		watch_lost(ds);
	else if (changed)
		schedule_reload(ds);
}

int vakt_dirsource_open(struct vakt_loop *loop, const char *dir, struct vakt_store *store,
			vakt_dirsource_cb cb, void *arg, struct vakt_dirsource **out,
			struct vakt_error *err)
{
	struct vakt_dirsource *ds = calloc(1, sizeof(*ds));
	int r;

	if (!ds || !(ds->dir = strdup(dir))) {
		free(ds);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -ENOMEM;
	}
	ds->loop = loop;
	ds->store = store;
	ds->ifd = -1;
	ds->wd = -1;
	/* Watch before the first load so that no change between the two is missed. */
	if (loop) {
		ds->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ds->ifd < 0 || (ds->wd = inotify_add_watch(ds->ifd, dir, WATCH_MASK)) < 0) {
			r = -errno;
			snprintf(err->msg, sizeof(err->msg), "%s: cannot watch: %s", dir,
				 strerror(-r));
			log_error("cannot watch objects directory", "dir=%s err=%d", dir, r);
			goto err_free;
		}
	}
	r = vakt_dirsource_reload(ds, err);
	if (r)
		goto err_free;
	if (loop) {
		r = vakt_loop_add_fd(loop, ds->ifd, EPOLLIN, inotify_event, ds);
		if (r) {
			snprintf(err->msg, sizeof(err->msg), "event loop: %s", strerror(-r));
			goto err_free;
		}
	}
	/* Only later reloads are reported: the caller compiles after open anyway. */
	ds->cb = cb;
	ds->arg = arg;
	*out = ds;
	return 0;
err_free:
	if (ds->ifd >= 0)
		close(ds->ifd);
	free(ds->dir);
	free(ds);
	return r;
}

void vakt_dirsource_close(struct vakt_dirsource *ds)
{
	if (!ds)
		return;
	if (ds->debounce_timer > 0)
		vakt_loop_cancel_timer(ds->loop, ds->debounce_timer);
	if (ds->rewatch_timer > 0)
		vakt_loop_cancel_timer(ds->loop, ds->rewatch_timer);
	if (ds->ifd >= 0) {
		vakt_loop_del_fd(ds->loop, ds->ifd);
		close(ds->ifd);
	}
	free(ds->dir);
	free(ds);
}

void vakt_dirsource_stats(const struct vakt_dirsource *ds, struct vakt_dirsource_stats *out)
{
	*out = ds->st;
}
