/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube.h - the Kubernetes API source of vaktd: list and watch Namespaces,
 * Pods (all nodes: peers need their addresses and labels) and
 * NetworkPolicies, and keep the store equal to what the API server holds.
 *
 * For each resource: a paginated list (limit, continue; an expired continue
 * token starts the list again), then a watch from the list's
 * resourceVersion with bookmarks. A relist (after 410 Gone) applies only
 * the difference to the store: puts for new and changed objects, deletes
 * for those that vanished. Failures reconnect with jittered exponential
 * backoff; 429 waits for Retry-After; 401 re-reads the token file once
 * before backing off; 401/403 are logged with the resource. A malformed
 * watch event restarts the watch from the last good resourceVersion; an
 * object the decoder rejects is logged and skipped (the store keeps its
 * previous version).
 *
 * Everything runs in the caller's event loop through libcurl's multi
 * socket interface: no threads. Over TLS libcurl offers HTTP/2 by ALPN and
 * multiplexes the three watches on one connection when the server agrees;
 * HTTP/1.1 servers get one connection per transfer.
 *
 * Like every source, it only produces store events; it knows nothing of the
 * compiler or the dataplane. Behaviour and RBAC: docs/kubernetes.md.
 */
#ifndef VAKT_KUBE_H
#define VAKT_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "loader.h" /* struct vakt_error */

struct vakt_loop;
struct vakt_store;
struct vakt_kube;

/* Where and how to reach the API server: from a kubeconfig or in-cluster. */
struct vakt_kube_config {
	char *server;     /* "https://host:port[/prefix]", without a trailing slash */
	char *ca_file;    /* CA bundle file, or ca_data (PEM), or neither: system CAs */
	char *ca_data;
	size_t ca_len;
	char *token;      /* a static bearer token, or */
	char *token_file; /* a token file, re-read when it changes and on 401 */
	char *cert_file;  /* client certificate: files or PEM data */
	char *key_file;
	char *cert_data;
	size_t cert_len;
	char *key_data;
	size_t key_len;
	int insecure; /* insecure-skip-tls-verify */
};

#define VAKT_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * Reads a kubeconfig (YAML or JSON): the context (NULL: current-context),
 * its cluster (server, certificate-authority[-data],
 * insecure-skip-tls-verify) and user (token, tokenFile,
 * client-certificate[-data], client-key[-data]). Relative file names are
 * relative to the kubeconfig's directory. exec and auth-provider users are
 * refused with a clear error. Returns 0 or -errno with err->msg.
 */
int vakt_kubeconfig_load(const char *path, const char *context, struct vakt_kube_config *out,
			 struct vakt_error *err);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, sa_dir/token and sa_dir/ca.crt
 * (sa_dir NULL: VAKT_KUBE_SA_DIR). */
int vakt_kube_incluster(const char *sa_dir, struct vakt_kube_config *out,
			struct vakt_error *err);
void vakt_kube_config_free(struct vakt_kube_config *c);

enum vakt_kube_res {
	VAKT_KUBE_NAMESPACES,
	VAKT_KUBE_PODS,
	VAKT_KUBE_POLICIES,
	VAKT_KUBE_NRES,
};

enum vakt_kube_event {
	VAKT_KUBE_EV_ADDED,
	VAKT_KUBE_EV_MODIFIED,
	VAKT_KUBE_EV_DELETED,
	VAKT_KUBE_EV_BOOKMARK,
	VAKT_KUBE_EV_ERROR,
	VAKT_KUBE_NEV,
};

/* "namespaces", "pods", "networkpolicies"; "ADDED", ... as the API spells them. */
const char *vakt_kube_res_name(enum vakt_kube_res r);
const char *vakt_kube_event_name(enum vakt_kube_event e);

/*
 * Called after a batch of store changes (everything one loop dispatch
 * produced), not when nothing changed. changed counts the store events;
 * seconds is the time they took in the store, which includes the store
 * listener's work (the incremental compile).
 */
typedef void (*vakt_kube_cb)(void *arg, unsigned long changed, double seconds);

struct vakt_kube_opts {
	const char *kubeconfig; /* NULL: in-cluster */
	const char *context;    /* NULL: the kubeconfig's current-context */
	const char *sa_dir;     /* in-cluster service account dir; NULL: VAKT_KUBE_SA_DIR */
	const char *user_agent; /* NULL: "vaktd/<version>" */
	vakt_kube_cb cb;
	void *cb_arg;
	/* Tuning; 0 picks the default in brackets. */
	unsigned page_limit;         /* items per list page [500] */
	unsigned backoff_initial_ms; /* first retry delay [500] */
	unsigned backoff_max_ms;     /* cap of the exponential backoff [30000] */
	unsigned watch_timeout_s;    /* server-side watch timeout, jittered up to 2x [300] */
	unsigned idle_timeout_s;     /* a watch silent this long is restarted [0: off] */
	size_t max_event_bytes;      /* largest watch event [16 MiB] */
	int http1_only;              /* do not offer HTTP/2 */
};

struct vakt_kube_stats {
	uint64_t events[VAKT_KUBE_NRES][VAKT_KUBE_NEV]; /* watch events received */
	uint64_t restarts[VAKT_KUBE_NRES];  /* watches started again (any reason) */
	uint64_t relists[VAKT_KUBE_NRES];   /* lists after the first one */
	uint64_t pages[VAKT_KUBE_NRES];     /* list pages received */
	uint64_t decode_errors[VAKT_KUBE_NRES]; /* objects skipped, previous version kept */
	uint64_t http_errors;     /* responses other than 200 */
	uint64_t transport_errors; /* connection failures, cut streams */
	uint64_t malformed;       /* malformed watch events */
	uint64_t token_reloads;   /* token file read again */
	uint64_t puts, deletes;   /* store events produced */
	uint64_t connects;        /* new connections libcurl made */
	uint64_t h2_transfers;    /* transfers that ran over HTTP/2 */
	uint64_t transfers;       /* transfers finished */
};

/*
 * Reads the configuration and starts the three lists. NULL with *err set
 * (-errno) if the configuration is unusable; a server that cannot be
 * reached is not an error here, it is retried.
 */
struct vakt_kube *vakt_kube_open(struct vakt_loop *l, struct vakt_store *s,
				 const struct vakt_kube_opts *o, int *err);
/* As vakt_kube_open with a configuration already read (copied). */
struct vakt_kube *vakt_kube_open_config(struct vakt_loop *l, struct vakt_store *s,
					const struct vakt_kube_config *cfg,
					const struct vakt_kube_opts *o, int *err);
void vakt_kube_close(struct vakt_kube *k);
/* 1 once the first list of all three resources is in the store. */
int vakt_kube_synced(const struct vakt_kube *k);
void vakt_kube_stats(const struct vakt_kube *k, struct vakt_kube_stats *out);

#endif /* VAKT_KUBE_H */
