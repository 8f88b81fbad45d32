// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "dataplane.h"
#include "dirsource.h"
#include "flowsrv.h"
#include "http.h"
#include "kube.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "netlink.h"
#include "peeraddr.h"
#include "reasons.h"
#include "route.h"
#include "store.h"
#include "vaktd_agent.h"

/* Failed attaches and writes are retried at this period. */
#define RETRY_MS 2000

enum link_role { ROLE_NONE, ROLE_POD, ROLE_UPLINK };

struct vlink {
	int ifindex;
	char name[IFNAMSIZ];
	char kind[32];
	enum link_role role;
	int attached;
};

struct vaktd {
	struct vaktd_opts o;
	struct vakt_loop *loop;
	struct vakt_dataplane *dp;
	struct vakt_store *store;
	struct vakt_compiler *comp; /* created once the source has its first full state */
	struct vakt_dirsource *src; /* one source: the directory or the API */
	struct vakt_kube *kube;
	struct vakt_nl *nl;
	struct vakt_http *http;
	struct vakt_flowsrv *flows;
	long retry_timer;
	int events_fd;

	/* The node's addresses, kept for a compiler created after netlink reported them. */
	struct vakt_addr *host_addrs;
	size_t nhost_addrs;

	struct vlink *links;
	size_t nlinks, cap;

	int started;        /* initial reconcile done: links are attached as they come */
	int live_failed;    /* the first compile failed: retried by the retry timer */
	int seed_tried;     /* the pinned maps' ids were offered to the compiler (held until
			     * the first successful write, vaktd_write_maps()) */
	double sync_t0;     /* when the source was opened */
	int need_reconcile; /* the initial reconcile failed: retry it before any apply */
	int apply_failed;   /* last write to the maps failed: not ready, retried */
	int dirty;          /* something changed since the last write */
	int bind_due;       /* endpoints or time moved on: bind what is not bound yet */
	int bind_full;      /* links changed: check every anti-spoofing binding again */
	int peers_err;      /* last read of the pods' addresses failed: logged once, retried every 2 s */
	double pending_s;   /* compile time of the batch not yet written */

	struct vakt_histogram compile_hist;
	uint64_t drop_events;
	double start_time;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- links ------------------------------------------------------------------ */

static int name_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/* See vaktd_agent.h for the rule. */
static enum link_role link_role(const struct vaktd *d, const char *name, const char *kind)
{
	static const char *const tunnels[] = { "vxlan", "geneve", "wireguard", "ipip", "sit",
					       "gre", "gretap", "ip6tnl", "bond", NULL };

	if (!strcmp(name, "lo"))
		return ROLE_NONE;
	if (d->o.uplinks)
		return name_in_list(d->o.uplinks, name) ? ROLE_UPLINK
		       : !strcmp(kind, "veth")         ? ROLE_POD
						       : ROLE_NONE;
	if (!strcmp(kind, "veth"))
		return ROLE_POD;
	if (!*kind)
		return ROLE_UPLINK; /* a physical device */
	for (size_t i = 0; tunnels[i]; i++)
		if (!strcmp(kind, tunnels[i]))
			return ROLE_UPLINK;
	return ROLE_NONE;
}

static struct vlink *link_find(struct vaktd *d, int ifindex)
{
	for (size_t i = 0; i < d->nlinks; i++)
		if (d->links[i].ifindex == ifindex)
			return &d->links[i];
	return NULL;
}

static struct vlink *link_add(struct vaktd *d, int ifindex)
{
	if (d->nlinks == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct vlink *n = realloc(d->links, cap * sizeof(*n));

		if (!n)
			return NULL;
		d->links = n;
		d->cap = cap;
	}
	d->links[d->nlinks] = (struct vlink){ .ifindex = ifindex };
	return &d->links[d->nlinks++];
}

static void link_attach(struct vaktd *d, struct vlink *l)
{
	double t0 = now_s();
	int err;

	if (l->attached || l->role == ROLE_NONE)
		return;
	if (l->role == ROLE_POD)
		err = vakt_dataplane_attach(d->dp, l->ifindex, l->name);
	else
		err = vakt_dataplane_attach_uplink(d->dp, l->ifindex, l->name);
	if (err) {
		/* -ENODEV: it went away meanwhile; its removal notification follows. */
		if (err != -ENODEV)
			log_error("attach failed, will retry", "ifname=%s ifindex=%d role=%s err=%d",
				  l->name, l->ifindex, l->role == ROLE_POD ? "pod" : "uplink",
				  err);
		return;
	}
	l->attached = 1;
	log_info("attached", "ifname=%s ifindex=%d role=%s mode=%s took_us=%.0f", l->name,
		 l->ifindex, l->role == ROLE_POD ? "pod" : "uplink", vakt_dataplane_mode(d->dp),
		 (now_s() - t0) * 1e6);
}

static void link_detach(struct vaktd *d, struct vlink *l)
{
	if (!l->attached)
		return;
	if (l->role == ROLE_POD)
		vakt_dataplane_detach(d->dp, l->ifindex, l->name);
	else
		vakt_dataplane_detach_uplink(d->dp, l->ifindex, l->name);
	l->attached = 0;
}

static void on_link(void *arg, int ifindex, const char *name, const char *kind, int up,
		    int removed)
{
	struct vaktd *d = arg;
	struct vlink *l = link_find(d, ifindex);
	enum link_role role;

	(void)up;
	if (removed) {
		if (!l)
			return;
		log_info("link gone", "ifname=%s ifindex=%d attached=%d", l->name, ifindex,
			 l->attached);
		d->bind_full |= l->role == ROLE_POD;
		link_detach(d, l);
		*l = d->links[--d->nlinks];
		return;
	}
	if (!l) {
		l = link_add(d, ifindex);
		if (!l) {
			log_error("out of memory tracking link", "ifname=%s", name);
			return;
		}
		log_debug("link seen", "ifname=%s ifindex=%d kind=%s", name, ifindex,
			  *kind ? kind : "-");
	}
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->kind, sizeof(l->kind), "%s", kind);
	role = link_role(d, l->name, l->kind);
	if (role != l->role) {
		link_detach(d, l);
		l->role = role;
		/* A new pod veth may now carry an address bound elsewhere (a pod re-created). */
		d->bind_full = 1;
	}
	if (d->started)
		link_attach(d, l);
}

static void on_addrs(void *arg, const struct vakt_addr *addrs, size_t n)
{
	struct vaktd *d = arg;
	double t0 = now_s();
	struct vakt_addr *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	int err;

	if (n && !copy) {
		log_error("out of memory recording node addresses", "n=%zu", n);
		return;
	}
	if (n)
		memcpy(copy, addrs, n * sizeof(*copy));
	free(d->host_addrs);
	d->host_addrs = copy;
	d->nhost_addrs = n;
	log_info("node addresses", "n=%zu", n);
	if (!d->comp)
		return; /* handed over when the compiler is created */
	err = vakt_compiler_set_host_addrs(d->comp, addrs, n);
	if (err)
		log_error("cannot record node addresses", "n=%zu err=%d", n, err);
	d->pending_s += now_s() - t0;
	d->dirty = 1;
}

/* --- anti-spoofing bindings -------------------------------------------------------- */

struct bind_walk {
	struct vaktd *d;
	int full;
	struct vakt_peer_addrs peers; /* the pods' own addresses, read once a pass needs them */
	int peers_state;              /* 0 not read yet, 1 read, -1 the read failed */
	struct vakt_addr *stale;
	size_t nstale, cap;
};

static int is_pod_veth(void *arg, int ifindex)
{
	struct vlink *l = link_find(arg, ifindex);

	return l && l->role == ROLE_POD;
}

/*
 * For an address the node's routes do not place on a pod veth (bridged
 * CNIs route every pod via the bridge): the pod veth whose far end, in the
 * pod's network namespace, holds the address. The current binding stands
 * while its veth's far end still holds it, so a pod that puts another pod's
 * address on its own interface later takes nothing over; an address held
 * behind several veths and bound to none stays unbound (unchecked). When
 * the namespaces cannot be read, what is bound stays bound.
 */
static uint32_t peer_veth_of(struct bind_walk *w, const struct vakt_addr *a, uint32_t cur)
{
	uint32_t ifx[8];
	size_t n;
	char buf[64];

	if (!w->peers_state) {
		int err = vakt_peer_addrs_read(&w->peers, is_pod_veth, w->d);

		w->peers_state = err ? -1 : 1;
		if (err && err != w->d->peers_err)
			log_error("cannot read pod addresses from their network namespaces, will retry",
				  "err=%d", err);
		w->d->peers_err = err;
	}
	if (w->peers_state < 0)
		return cur;
	n = vakt_peer_addrs_find(&w->peers, a, ifx, sizeof(ifx) / sizeof(ifx[0]));
	for (size_t i = 0; cur && i < n && i < sizeof(ifx) / sizeof(ifx[0]); i++)
		if (ifx[i] == cur)
			return cur;
	if (n == 1)
		return ifx[0];
	/* Logged on full passes only: the 2 s retry would repeat it. */
	if (n > 1 && w->full)
		log_warn("address configured behind several pod veths, left unbound", "addr=%s veths=%zu",
			 vakt_addr_str(a, buf, sizeof(buf)), n);
	return 0;
}

/*
 * The pod veth address a belongs to, or 0 (not known yet: unbound, i.e.
 * unchecked). The node's route decides where it leads to a pod veth
 * (routed CNIs); otherwise the pods' namespaces do (peer_veth_of()).
 */
static uint32_t pod_veth_of(struct bind_walk *w, const struct vakt_addr *a, uint32_t cur)
{
	int oif = vakt_route_oif(a);
	struct vlink *l = oif > 0 ? link_find(w->d, oif) : NULL;

	if (l && l->role == ROLE_POD)
		return (uint32_t)oif;
	return peer_veth_of(w, a, cur);
}

static int bind_endpoint(void *arg, const void *key, const void *val)
{
	struct bind_walk *w = arg;
	struct vaktd *d = w->d;
	const struct vakt_addr *a = key;
	uint32_t cur = vakt_dataplane_bound(d->dp, a), want;
	struct vlink *l = cur ? link_find(d, (int)cur) : NULL;
	char buf[64];

	(void)val;
	/* A binding to a live pod veth stands until links change (a full pass). */
	if (l && l->role == ROLE_POD && !w->full)
		return 0;
	want = pod_veth_of(w, a, l && l->role == ROLE_POD ? cur : 0);
	if (want == cur)
		return 0;
	if (!(want ? vakt_dataplane_bind(d->dp, a, want) : vakt_dataplane_unbind(d->dp, a)))
		log_info(want ? "address bound to its veth" : "address unbound", "addr=%s ifindex=%u",
			 vakt_addr_str(a, buf, sizeof(buf)), want ? want : cur);
	return 0;
}

static int collect_stale(void *arg, const struct vakt_addr *a, uint32_t ifindex)
{
	struct bind_walk *w = arg;
	struct vakt_addr *v;

	(void)ifindex;
	if (vakt_tables_endpoint(vakt_compiler_tables(w->d->comp), a))
		return 0;
	if (w->nstale == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		v = realloc(w->stale, w->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->stale = v;
	}
	w->stale[w->nstale++] = *a;
	return 0;
}

/*
 * Keeps ep_ifindex equal to "each local endpoint address -> the pod veth the
 * node routes it to": bindings of addresses that are no local endpoint go
 * first, then unbound addresses are looked up (cheap when all are bound);
 * a full pass (links changed, start) checks every binding's route again.
 */
static void bind_pass(struct vaktd *d, int full)
{
	struct bind_walk w = { .d = d, .full = full };
	int err = vakt_dataplane_foreach_binding(d->dp, collect_stale, &w);

	if (err)
		log_error("cannot check anti-spoofing bindings, will retry", "err=%d", err);
	for (size_t i = 0; i < w.nstale; i++)
		vakt_dataplane_unbind(d->dp, &w.stale[i]);
	free(w.stale);
	vakt_tables_foreach(vakt_compiler_tables(d->comp), VAKT_T_ENDPOINTS, bind_endpoint, &w);
	vakt_peer_addrs_free(&w.peers);
	d->bind_due = err != 0;
	if (full && !err)
		d->bind_full = 0;
}

/* --- compile and write ---------------------------------------------------------- */

int vaktd_write_maps(struct vakt_dataplane *dp, struct vakt_compiler *comp, int full)
{
	struct vakt_tables *t = vakt_compiler_tables(comp);
	int err = full ? vakt_dataplane_reconcile(dp, t, comp) : vakt_dataplane_apply(dp, t, comp);

	/* The maps now mean what the compiler means: its ids are free to move on. */
	if (!err)
		vakt_compiler_release_seed(comp);
	return err;
}

static int reconcile(struct vaktd *d)
{
	double t0 = now_s();
	int err = vaktd_write_maps(d->dp, d->comp, 1);

	d->need_reconcile = err != 0;
	if (err) {
		log_error("reconcile failed, will retry", "err=%d", err);
		return err;
	}
	vakt_histogram_observe(&d->compile_hist, d->pending_s + now_s() - t0);
	d->pending_s = 0;
	d->dirty = 0;
	d->bind_due = 1;
	log_info("maps reconciled", "took_ms=%.1f", (now_s() - t0) * 1e3);
	return 0;
}

/*
 * The first full compile reuses the ids the pinned maps already hold, so
 * that the reconcile never gives an id another meaning (compiler.h). Without
 * a seed the compile is still correct, only the reconcile is not gap-free
 * for an id that changes meaning: worth an error in the log, not a refusal
 * to enforce.
 */
static void seed_compiler(struct vaktd *d)
{
	struct vakt_compiler_seed seed = { 0 };
	int err;

	if (d->seed_tried)
		return;
	d->seed_tried = 1;
	err = vakt_dataplane_pinned_ids(d->dp, &seed);
	if (!err && seed.t)
		err = vakt_compiler_seed(d->comp, &seed);
	if (err) {
		vakt_compiler_seed_free(&seed);
		log_error("cannot seed the compiler with the pinned maps' ids, compiling without",
			  "err=%d", err);
	}
}

static void apply(struct vaktd *d)
{
	struct vakt_tables *t = vakt_compiler_tables(d->comp);
	size_t journal = vakt_tables_journal_len(t);
	double t0 = now_s();
	int err;

	if (d->need_reconcile) {
		d->apply_failed = reconcile(d) != 0;
		return;
	}
	if (!journal && !d->apply_failed) {
		/* The changes compiled to nothing the maps hold (e.g. an unrelated label). */
		d->dirty = 0;
		d->pending_s = 0;
		return;
	}
	err = vaktd_write_maps(d->dp, d->comp, 0);
	d->apply_failed = err != 0;
	d->dirty = 0;
	if (err) {
		log_error("map write failed, will retry", "changes=%zu err=%d", journal, err);
		return;
	}
	d->bind_due = 1;
	vakt_histogram_observe(&d->compile_hist, d->pending_s + now_s() - t0);
	log_info("applied", "changes=%zu compile_ms=%.2f write_ms=%.2f", journal,
		 d->pending_s * 1e3, (now_s() - t0) * 1e3);
	d->pending_s = 0;
}

static int source_synced(const struct vaktd *d)
{
	return d->kube ? vakt_kube_synced(d->kube) : d->src != NULL;
}

/*
 * The source has its first complete state: one full compile, then the
 * pinned maps are reconciled with it (make-before-break), then programs go
 * on. Never earlier: reconciling from a partial or empty store would delete
 * what the maps enforce.
 */
static int go_live(struct vaktd *d)
{
	struct vakt_compiler_opts copts = { .node = d->o.node };
	double t0 = now_s();
	int err;

	if (!d->comp) {
		d->comp = vakt_compiler_new(d->store, &copts);
		if (!d->comp) {
			log_error("cannot create the compiler", "err=%d", -ENOMEM);
			return -ENOMEM;
		}
	}
	seed_compiler(d);
	if (d->nhost_addrs) {
		err = vakt_compiler_set_host_addrs(d->comp, d->host_addrs, d->nhost_addrs);
		if (err)
			log_error("cannot record node addresses", "n=%zu err=%d", d->nhost_addrs,
				  err);
	}
	err = vakt_compiler_full(d->comp);
	if (err) {
		log_error("compile failed", "err=%d", err);
		return err;
	}
	d->pending_s = now_s() - t0;
	log_info("compiled", "took_ms=%.1f namespaces=%zu pods=%zu policies=%zu",
		 d->pending_s * 1e3, vakt_store_count_namespaces(d->store),
		 vakt_store_count_pods(d->store), vakt_store_count_policies(d->store));
	/* Make-before-break from here: write what the objects say, then put programs on. */
	reconcile(d);
	d->started = 1;
	for (size_t i = 0; i < d->nlinks; i++)
		link_attach(d, &d->links[i]);
	bind_pass(d, 1);
	log_info("running", "node=%s source=%s mode=%s links=%zu sync_ms=%.0f", d->o.node,
		 d->kube ? "kubernetes" : "objects", vakt_dataplane_mode(d->dp), d->nlinks,
		 (now_s() - d->sync_t0) * 1e3);
	return 0;
}

/* One write per batch of changes: the loop calls this before it sleeps. */
static void before_sleep(struct vakt_loop *l, void *arg)
{
	struct vaktd *d = arg;

	(void)l;
	if (!d->started) {
		if (!d->live_failed && source_synced(d))
			d->live_failed = go_live(d) != 0;
		return;
	}
	if (d->dirty || d->apply_failed || d->need_reconcile)
		apply(d);
	if (d->bind_due || d->bind_full)
		bind_pass(d, d->bind_full);
}

static void on_source(void *arg, unsigned long changed, double seconds)
{
	struct vaktd *d = arg;

	log_debug("objects changed", "events=%lu store_ms=%.2f", changed, seconds * 1e3);
	d->pending_s += seconds;
	d->dirty = 1;
}

/* Our programs still on the hooks? Someone may have removed them (tc, bpftool). */
static int link_still_attached(struct vaktd *d, const struct vlink *l)
{
	if (l->role == ROLE_POD)
		return vakt_dataplane_attached(d->dp, l->ifindex) > 0;
	return vakt_dataplane_uplink_attached(d->dp, l->ifindex) > 0;
}

/* Every RETRY_MS: failed attaches again, and programs removed behind our back put back. */
static void retry(struct vakt_loop *l, void *arg)
{
	struct vaktd *d = arg;

	(void)l;
	if (!d->started) {
		/* Nothing attached before the first reconcile; a failed first compile again. */
		d->live_failed = 0;
		return;
	}
	for (size_t i = 0; i < d->nlinks; i++) {
		struct vlink *k = &d->links[i];

		if (k->attached && !link_still_attached(d, k)) {
			log_warn("programs missing, attaching again", "ifname=%s ifindex=%d",
				 k->name, k->ifindex);
			k->attached = 0;
		}
		link_attach(d, k);
	}
	/* Pods whose veth or route came after their endpoint record. */
	d->bind_due = 1;
	/* The last pass could not read the pods' namespaces: again, in full, at this pace only. */
	if (d->peers_err)
		d->bind_full = 1;
}

static void on_drop(void *arg, const struct vakt_drop_event *e)
{
	struct vaktd *d = arg;
	struct vakt_ep_meta meta;
	int named = d->comp && e->ep_id && !vakt_compiler_ep_meta(d->comp, e->ep_id, &meta);
	char s[64], t[64];

	d->drop_events++;
	if (d->flows)
		vakt_flowsrv_publish(d->flows, e, named ? meta.ns : NULL, named ? meta.name : NULL);
	log_debug("drop", "ep_id=%u dir=%s reason=%s proto=%u src=%s sport=%u dst=%s dport=%u",
		  e->ep_id, vakt_dir_name(e->dir), vakt_reason_name(e->reason), e->proto,
		  vakt_addr_str(&e->saddr, s, sizeof(s)), ntohs(e->sport),
		  vakt_addr_str(&e->daddr, t, sizeof(t)), ntohs(e->dport));
}

static void on_events(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	vakt_dataplane_events_consume(((struct vaktd *)arg)->dp, on_drop, arg);
}

/* --- readiness and HTTP ----------------------------------------------------------- */

struct ready_walk {
	struct vaktd *d;
	FILE *why;
	int ok;
};

static int check_endpoint(void *arg, const void *key, const void *val)
{
	struct ready_walk *w = arg;
	const struct vakt_addr *a = key;
	const struct vakt_ep_val *ep = val;
	struct vakt_ep_meta meta = { "?", "?" };
	struct vlink *l;
	char buf[64];
	int oif = vakt_route_oif(a);

	l = oif > 0 ? link_find(w->d, oif) : NULL;
	if (l && ((l->role == ROLE_POD && l->attached) || !strcmp(l->kind, "bridge")))
		return 0;
	vakt_compiler_ep_meta(w->d->comp, ep->ep_id, &meta);
	w->ok = 0;
	if (oif <= 0)
		fprintf(w->why, "pod %s/%s: no route to %s yet\n", meta.ns, meta.name,
			vakt_addr_str(a, buf, sizeof(buf)));
	else
		fprintf(w->why, "pod %s/%s: %s is routed via %s, which carries no vakt programs\n",
			meta.ns, meta.name, vakt_addr_str(a, buf, sizeof(buf)),
			l ? l->name : "an unknown interface");
	return 0;
}

static int ready(struct vaktd *d, FILE *why)
{
	struct ready_walk w = { d, why, 1 };
	struct vakt_tables *t;

	if (!d->started && !source_synced(d)) {
		fprintf(why, d->kube ? "waiting for the first list of namespaces, pods and "
				       "networkpolicies from the API server\n"
				     : "objects not loaded yet\n");
		return 0;
	}
	if (!d->started || d->need_reconcile || d->apply_failed || d->dirty) {
		fprintf(why, "objects not yet written to the maps\n");
		return 0;
	}
	t = vakt_compiler_tables(d->comp);
	if (vakt_tables_journal_len(t)) {
		fprintf(why, "compiled changes not yet written to the maps\n");
		return 0;
	}
	for (size_t i = 0; i < d->nlinks; i++) {
		if (d->links[i].role != ROLE_NONE && !d->links[i].attached) {
			fprintf(why, "interface %s: programs not attached\n", d->links[i].name);
			w.ok = 0;
		}
	}
	vakt_tables_foreach(t, VAKT_T_ENDPOINTS, check_endpoint, &w);
	return w.ok;
}

static void fill_metrics(struct vaktd *d, struct vakt_agent_metrics *m,
			 struct vakt_kube_stats *ks, struct vakt_flowsrv_stats *fs)
{
	struct vakt_dirsource_stats ss = { 0 };
	struct vakt_nl_stats ns = { 0 };

	if (d->src)
		vakt_dirsource_stats(d->src, &ss);
	if (d->kube)
		vakt_kube_stats(d->kube, ks);
	if (d->flows)
		vakt_flowsrv_stats(d->flows, fs);
	if (d->nl)
		vakt_nl_stats(d->nl, &ns);
	*m = (struct vakt_agent_metrics){
		.dp = d->dp,
		.comp = d->comp,
		.compile = &d->compile_hist,
		.kube = d->kube ? ks : NULL,
		.kube_synced = d->kube && vakt_kube_synced(d->kube),
		.source_reloads = ss.reloads,
		.source_errors = ss.reload_errors,
		.source_events = d->kube ? ks->puts + ks->deletes : ss.puts + ss.deletes,
		.nl_events = ns.events,
		.nl_resyncs = ns.resyncs,
		.drop_events = d->drop_events,
		.flows = d->flows ? fs : NULL,
		.start_time = d->start_time,
	};
	for (size_t i = 0; i < d->nlinks; i++) {
		if (d->links[i].attached && d->links[i].role == ROLE_POD)
			m->attached_pod++;
		else if (d->links[i].attached && d->links[i].role == ROLE_UPLINK)
			m->attached_uplink++;
	}
}

static int http_handler(void *arg, const char *path, FILE *body, const char **ctype)
{
	struct vaktd *d = arg;
	struct vakt_agent_metrics m;
	struct vakt_kube_stats ks;
	struct vakt_flowsrv_stats fs;
	FILE *devnull;

	if (!strcmp(path, "/healthz")) {
		fputs("ok\n", body);
		return 200;
	}
	if (!strcmp(path, "/readyz")) {
		if (ready(d, body)) {
			fputs("ready\n", body);
			return 200;
		}
		return 503;
	}
	if (!strcmp(path, "/metrics")) {
		fill_metrics(d, &m, &ks, &fs);
		devnull = fopen("/dev/null", "w");
		m.ready = devnull && ready(d, devnull);
		if (devnull)
			fclose(devnull);
		*ctype = VAKT_METRICS_CONTENT_TYPE;
		if (vakt_metrics_write_agent(body, &m))
			log_warn("metrics incomplete", "reason=%s", "datapath read failed");
		return 200;
	}
	if (d->o.debug_endpoints && !strcmp(path, "/debug/tables")) {
		if (!d->comp) {
			fputs("not compiled yet\n", body);
			return 503;
		}
		*ctype = "text/plain; charset=utf-8";
		return vaktd_debug_tables(d->dp, d->comp, body) ? 500 : 200;
	}
	fputs("not found: try /healthz, /readyz or /metrics\n", body);
	return 404;
}

/* --- lifecycle ---------------------------------------------------------------- */

static int open_source(struct vaktd *d, struct vakt_store *store, vakt_kube_cb cb, void *arg,
		       struct vakt_dirsource **src, struct vakt_kube **kube)
{
	struct vakt_kube_opts ko = { .kubeconfig = d->o.kubeconfig,
				     .context = d->o.kube_context,
				     .sa_dir = d->o.sa_dir,
				     .cb = cb,
				     .cb_arg = arg };
	struct vakt_error verr = { "" };
	int err = 0;

	if (d->o.objects) {
		err = vakt_dirsource_open(d->loop, d->o.objects, store, cb, arg, src, &verr);
		if (err)
			/* Starting from nothing would wipe what the maps enforce: refuse instead. */
			log_error("cannot load objects, not starting (enforcement unchanged)",
				  "objects=%s err=%d", d->o.objects, err);
		return err;
	}
	/* An unreachable API server is no error here: the client retries, vaktd waits. */
	*kube = vakt_kube_open(d->loop, store, &ko, &err);
	if (!*kube)
		log_error("cannot start the Kubernetes API source, not starting (enforcement "
			  "unchanged)", "kubeconfig=%s err=%d",
			  d->o.kubeconfig ? d->o.kubeconfig : "(in-cluster)", err);
	return *kube ? 0 : (err ? err : -EINVAL);
}

static int open_dataplane(struct vaktd *d)
{
	struct vakt_dataplane_opts dopts = { .bpffs = d->o.bpffs,
					     .force_clsact = d->o.force_clsact,
					     .mark_mask = d->o.mark_mask,
					     .event_rate = d->o.event_rate };
	int err = 0;

	d->dp = vakt_dataplane_open(&dopts, &err);
	if (!d->dp) {
		log_error("cannot open the dataplane", "bpffs=%s err=%d", d->o.bpffs, err);
		return err ? err : -EIO;
	}
	return 0;
}

static int open_watchers(struct vaktd *d)
{
	struct vakt_nl_cbs cbs = { .arg = d, .link = on_link, .addrs = on_addrs };
	int err = 0;

	/* Links are only recorded during the dump: attachment follows the reconcile. */
	d->nl = vakt_nl_open(d->loop, &cbs, &err);
	if (!d->nl) {
		log_error("cannot watch links", "err=%d", err);
		return err ? err : -EIO;
	}
	d->events_fd = vakt_dataplane_events_fd(d->dp);
	if (d->events_fd >= 0)
		vakt_loop_add_fd(d->loop, d->events_fd, EPOLLIN, on_events, d);
	d->retry_timer = vakt_loop_add_timer(d->loop, RETRY_MS, RETRY_MS, retry, d);
	return d->retry_timer < 0 ? (int)d->retry_timer : 0;
}

/* vakt flows is a diagnostic: an agent that cannot serve it still enforces. */
static void open_flows(struct vaktd *d)
{
	int err = 0;

	if (!d->o.flows_socket || !*d->o.flows_socket)
		return;
	d->flows = vakt_flowsrv_open(d->loop, d->o.flows_socket, &err);
	if (!d->flows)
		log_error("cannot serve drop events, vakt flows will not work",
			  "socket=%s err=%d", d->o.flows_socket, err);
	else
		log_info("serving drop events", "socket=%s", d->o.flows_socket);
}

int vaktd_start(struct vakt_loop *loop, const struct vaktd_opts *o, struct vaktd **out)
{
	static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
					 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
	struct vaktd *d = calloc(1, sizeof(*d));
	struct timespec rt;
	int err;

	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->loop = loop;
	d->events_fd = -1;
	clock_gettime(CLOCK_REALTIME, &rt);
	d->start_time = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
	d->sync_t0 = now_s();
	vakt_histogram_init(&d->compile_hist, bounds, sizeof(bounds) / sizeof(bounds[0]));
	/* The source first: a configuration error must not leave pinned maps behind. */
	d->store = vakt_store_new();
	err = d->store ? 0 : -ENOMEM;
	if (!err)
		err = open_source(d, d->store, on_source, d, &d->src, &d->kube);
	if (!err)
		err = open_dataplane(d);
	if (!err)
		err = open_watchers(d);
	if (!err && d->src)
		err = go_live(d); /* the directory is loaded: no reason to wait */
	if (err)
		goto fail;
	err = vakt_http_open(loop, o->metrics_addr, http_handler, d, &d->http);
	if (err)
		goto fail;
	open_flows(d);
	vakt_loop_set_before_sleep(loop, before_sleep, d);
	if (!d->started)
		log_info("waiting for the API server before touching the maps",
			 "node=%s links=%zu", o->node, d->nlinks);
	*out = d;
	return 0;
fail:
	vaktd_stop(d, 0);
	return err;
}

void vaktd_reload(struct vaktd *d)
{
	struct vakt_error verr;

	if (d->src)
		vakt_dirsource_reload(d->src, &verr);
	else
		log_info("reload ignored: the API source is always current", "source=%s",
			 "kubernetes");
}

void vaktd_stop(struct vaktd *d, int cleanup)
{
	if (!d)
		return;
	vakt_loop_set_before_sleep(d->loop, NULL, NULL);
	vakt_flowsrv_close(d->flows);
	vakt_http_close(d->http);
	if (d->retry_timer > 0)
		vakt_loop_cancel_timer(d->loop, d->retry_timer);
	if (d->events_fd >= 0)
		vakt_loop_del_fd(d->loop, d->events_fd);
	if (d->nl)
		vakt_nl_close(d->nl);
	vakt_kube_close(d->kube);
	vakt_dirsource_close(d->src);
	if (d->comp)
		vakt_compiler_free(d->comp);
	if (d->store)
		vakt_store_free(d->store);
	if (d->dp)
		vakt_dataplane_close(d->dp, cleanup);
	if (d->dp && cleanup)
		log_info("cleaned up", "bpffs=%s", d->o.bpffs);
	else if (d->dp)
		log_info("enforcement left in place", "bpffs=%s", d->o.bpffs);
	free(d->host_addrs);
	free(d->links);
	free(d);
}

/* --- vaktd --dump-tables ---------------------------------------------------------- */

struct dump_run {
	struct vakt_kube *kube;
	int timed_out;
};

static void dump_changed(void *arg, unsigned long changed, double seconds)
{
	(void)arg;
	(void)changed;
	(void)seconds;
}

static void dump_check(struct vakt_loop *l, void *arg)
{
	struct dump_run *r = arg;

	if (vakt_kube_synced(r->kube))
		vakt_loop_stop(l);
}

static void dump_timeout(struct vakt_loop *l, void *arg)
{
	((struct dump_run *)arg)->timed_out = 1;
	vakt_loop_stop(l);
}

int vaktd_dump_tables(struct vakt_loop *loop, const struct vaktd_opts *o, FILE *out,
		      unsigned timeout_s)
{
	struct vaktd d = { .o = *o, .loop = loop };
	struct vakt_compiler_opts copts = { .node = o->node };
	struct vakt_store *store = vakt_store_new();
	struct vakt_dirsource *src = NULL;
	struct dump_run r = { 0 };
	struct vakt_compiler *comp = NULL;
	long timer;
	int err;

	if (!store)
		return -ENOMEM;
	err = open_source(&d, store, dump_changed, NULL, &src, &r.kube);
	if (err)
		goto out_store;
	if (r.kube) {
		timer = vakt_loop_add_timer(loop, (uint64_t)timeout_s * 1000, 0, dump_timeout, &r);
		vakt_loop_set_before_sleep(loop, dump_check, &r);
		err = timer < 0 ? (int)timer : vakt_loop_run(loop);
		vakt_loop_set_before_sleep(loop, NULL, NULL);
		if (!r.timed_out && timer > 0)
			vakt_loop_cancel_timer(loop, timer);
		if (!err && r.timed_out) {
			log_error("no complete list from the API server in time", "timeout_s=%u",
				  timeout_s);
			err = -ETIMEDOUT;
		}
		if (err)
			goto out_src;
	}
	comp = vakt_compiler_new(store, &copts);
	err = comp ? vakt_compiler_full(comp) : -ENOMEM;
	if (!err)
		err = vakt_compiler_dump_canonical(comp, out);
	if (comp)
		vakt_compiler_free(comp);
out_src:
	vakt_kube_close(r.kube);
	vakt_dirsource_close(src);
out_store:
	vakt_store_free(store);
	return err;
}
