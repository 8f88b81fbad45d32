/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the Prometheus text exposition format (version 0.0.4).
 *
 * Writers take a FILE * (open_memstream() for HTTP responses) so that the
 * caller decides where the text goes. Each metric family starts with
 * vakt_metric_family() (HELP and TYPE lines), followed by its samples.
 * Label values and HELP text are escaped here: callers pass raw strings.
 */
#ifndef VAKT_METRICS_H
#define VAKT_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VAKT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct vakt_metric_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not escaped */
	const char *value; /* any UTF-8, escaped on output */
};

/* type: "counter", "gauge", "histogram" */
void vakt_metric_family(FILE *f, const char *name, const char *type, const char *help);
void vakt_metric_u64(FILE *f, const char *name, const struct vakt_metric_label *l, size_t nl,
		     uint64_t value);
void vakt_metric_double(FILE *f, const char *name, const struct vakt_metric_label *l,
			size_t nl, double value);
/* Writes a label value with \\, \" and \n escaped. */
void vakt_metric_escape_value(FILE *f, const char *v);

/*
 * A histogram with fixed upper bounds (strictly increasing, +Inf implied).
 * Not thread-safe: the agent observes and exposes from one event loop.
 */
#define VAKT_HIST_MAX_BUCKETS 24
struct vakt_histogram {
	size_t nbounds;
	double bounds[VAKT_HIST_MAX_BUCKETS];
	uint64_t counts[VAKT_HIST_MAX_BUCKETS]; /* non-cumulative, per bucket */
	uint64_t count;
	double sum;
};

/* Returns 0, or -EINVAL if bounds are not strictly increasing or too many. */
int vakt_histogram_init(struct vakt_histogram *h, const double *bounds, size_t n);
void vakt_histogram_observe(struct vakt_histogram *h, double v);
/* Writes name_bucket{le=...}, name_sum and name_count (after the family line). */
void vakt_histogram_write(FILE *f, const char *name, const struct vakt_histogram *h);

/*
 * The agent's metrics (docs/metrics.md lists each one). The datapath
 * counters are read at scrape time; names come from the compiler.
 */
struct vakt_dataplane;
struct vakt_compiler;
struct vakt_kube_stats;
struct vakt_flowsrv_stats;

struct vakt_agent_metrics {
	struct vakt_dataplane *dp;
	const struct vakt_compiler *comp; /* NULL until the first compile */
	const struct vakt_histogram *compile;
	/*
	 * The source: kube != NULL for the Kubernetes API (the vakt_watch_* and
	 * vakt_api_* families, every label combination present from the start);
	 * NULL for the manifest directory (source_reloads and source_errors).
	 */
	const struct vakt_kube_stats *kube;
	int kube_synced;
	uint64_t source_reloads, source_errors, source_events;
	uint64_t nl_events, nl_resyncs;
	uint64_t attached_pod, attached_uplink, attach_errors;
	uint64_t drop_events;
	const struct vakt_flowsrv_stats *flows; /* NULL: no flows socket (zeros) */
	int ready;
	double start_time; /* unix seconds */
};

/* Writes every family; returns 0 or the first -errno of a datapath read. */
int vakt_metrics_write_agent(FILE *f, const struct vakt_agent_metrics *m);

#endif /* VAKT_METRICS_H */
