/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vaktd_agent.h - the node agent's wiring, separate from main() so that it
 * lives in libvakt: source -> store -> compiler -> dataplane, links and
 * addresses from rtnetlink, readiness, and the HTTP endpoint.
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
 */
#ifndef VAKT_VAKTD_AGENT_H
#define VAKT_VAKTD_AGENT_H

struct vakt_loop;

struct vaktd_opts {
	const char *objects;      /* manifest directory */
	const char *node;         /* spec.nodeName of local pods */
	const char *bpffs;        /* pin directory */
	const char *metrics_addr; /* HTTP listener */
	const char *uplinks;      /* comma-separated interface names, NULL: automatic */
	int force_clsact;
	int cleanup;
	unsigned int mark_mask; /* skb mark bits for the datapath, 0: default */
	int event_rate;         /* drop events per second per CPU, 0: default, < 0: none */
};

struct vaktd;

/* Loads, compiles, reconciles the maps, attaches, opens the HTTP endpoint.
 * On error nothing enforced is changed beyond what was reconciled. */
int vaktd_start(struct vakt_loop *loop, const struct vaktd_opts *o, struct vaktd **out);
/* Programs and maps stay unless cleanup. */
void vaktd_stop(struct vaktd *d, int cleanup);
/* Reloads the source now (SIGHUP). */
void vaktd_reload(struct vaktd *d);

#endif /* VAKT_VAKTD_AGENT_H */
