/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vaktd_agent.h - the node agent's wiring, separate from main() so that it
 * lives in libvakt: source -> store -> compiler -> dataplane, links and
 * addresses from rtnetlink, readiness, the HTTP endpoint and the flows
 * socket.
 *
 * Sources: the manifest directory (--objects) or the Kubernetes API
 * (--kubeconfig, or in-cluster). The compiler is created once the source
 * has its first complete state (the directory loaded, or the first list of
 * all three resources): one full compile, one reconcile of the pinned maps,
 * then attachment. Until then the pinned maps are not touched: a restarted
 * agent that cannot reach the API server leaves the previous agent's state
 * enforcing, and is not ready.
 *
 * Attachment rule: every veth of the agent's network namespace is taken for
 * the host side of a pod and gets vakt_from_pod/vakt_to_pod. That is safe
 * for veths that are not pods': the datapath finds the local endpoint of a
 * packet by address, and a packet of no local pod passes (NO_ENDPOINT).
 * Devices that leave the node (--uplink, or by default physical and tunnel
 * devices) get vakt_node_egress/vakt_node_ingress.
 *
 * Readiness (/readyz 200) holds when all of:
 *   - the current objects are compiled and written to the maps (no change
 *     pending, the last write succeeded);
 *   - every veth and uplink carries our programs;
 *   - every address of a local endpoint is routed (as `ip route get`) via
 *     a veth that carries our programs, or via a bridge (whose ports are
 *     veths, all of which carry programs by the rule above).
 * A local pod without its veth yet (no route) keeps the agent not ready.
 *
 * Anti-spoofing: every local endpoint address routed via a pod veth is bound
 * to it (ep_ifindex, vakt_dataplane_bind()), after the first reconcile and
 * whenever endpoints or links change; unbound addresses are not checked.
 * Losing the API server after the initial sync does not: the maps keep
 * enforcing the last state, which is what a ready agent does.
 */
#ifndef VAKT_VAKTD_AGENT_H
#define VAKT_VAKTD_AGENT_H

#include <stdio.h>

struct vakt_loop;

struct vaktd_opts {
	const char *objects;      /* manifest directory, or NULL: the Kubernetes API */
	const char *kubeconfig;   /* NULL (and objects NULL): in-cluster configuration */
	const char *kube_context; /* NULL: the kubeconfig's current-context */
	const char *sa_dir;       /* in-cluster service account directory, NULL: default */
	const char *flows_socket; /* drop events for vakt flows; NULL or "": none */
	const char *node;         /* spec.nodeName of local pods */
	const char *bpffs;        /* pin directory */
	const char *metrics_addr; /* HTTP listener */
	const char *uplinks;      /* comma-separated interface names, NULL: automatic */
	int force_clsact;
	int cleanup;
	unsigned int mark_mask; /* skb mark bits for the datapath, 0: default */
	int event_rate;         /* drop events per second per CPU, 0: default, < 0: none */
	int debug_endpoints;    /* serve /debug/tables */
};

struct vaktd;

/* Loads, compiles, reconciles the maps, attaches, opens the HTTP endpoint.
 * On error nothing enforced is changed beyond what was reconciled. */
int vaktd_start(struct vakt_loop *loop, const struct vaktd_opts *o, struct vaktd **out);
/* Programs and maps stay unless cleanup. */
void vaktd_stop(struct vaktd *d, int cleanup);
/* Reloads the source now (SIGHUP; the manifest directory only). */
void vaktd_reload(struct vaktd *d);

/*
 * No BPF: loads the source of @o (the directory, or the API server until the
 * first list of every resource is in), compiles it for node o->node and
 * writes vakt_compiler_dump_canonical() to @out. A fresh compile, to compare
 * with a running agent's /debug/tables. Gives up after @timeout_s.
 */
int vaktd_dump_tables(struct vakt_loop *loop, const struct vaktd_opts *o, FILE *out,
		      unsigned timeout_s);

struct vakt_dataplane;
struct vakt_compiler;

/*
 * The one way vaktd writes compiled tables to the maps: a full
 * vakt_dataplane_reconcile() when @full, else vakt_dataplane_apply() (which
 * itself reconciles on its first use after open and after failed writes).
 * Whichever writes first, a successful write leaves the maps meaning what
 * the compiler means by every id, so the restart seed (vakt_compiler_seed())
 * is released there: ids it reserved become allocatable and ep_ids stop
 * being handed out softly. Returns 0 or -errno (the seed is kept then).
 */
int vaktd_write_maps(struct vakt_dataplane *dp, struct vakt_compiler *comp, int full);

/*
 * GET /debug/tables (--debug-endpoints): first a line
 *   "# maps: equal (ipcache=N endpoints=N cidr=N policy=N)"
 * or "# maps: differ (missing=N extra=N changed=N)" followed by up to 20
 * "# diff MAP missing|extra|changed KEY" lines, comparing the pinned maps
 * with the compiler's tables entry by entry (an endpoint failed closed by
 * the map writer counts as equal); then vakt_compiler_dump_canonical().
 * Defined in vaktd_debug.c. Returns 0 or -errno.
 */
int vaktd_debug_tables(struct vakt_dataplane *dp, struct vakt_compiler *comp, FILE *out);

#endif /* VAKT_VAKTD_AGENT_H */
