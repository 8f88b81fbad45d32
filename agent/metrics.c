// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <math.h>
#include <stddef.h>

#include "compiler.h"
#include "dataplane.h"
#include "flowsrv.h"
#include "kube.h"
#include "metrics.h"
#include "reasons.h"
#include "vakt/datapath.h"

static void write_help(FILE *f, const char *s)
{
	/* HELP text escapes backslash and newline only (quotes stay). */
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void vakt_metric_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	write_help(f, help);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

void vakt_metric_escape_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		switch (*v) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '"':
			fputs("\\\"", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		default:
			fputc(*v, f);
		}
	}
}

static void write_labels(FILE *f, const struct vakt_metric_label *l, size_t nl)
{
	if (!nl)
		return;
	fputc('{', f);
	for (size_t i = 0; i < nl; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", l[i].name);
		vakt_metric_escape_value(f, l[i].value ? l[i].value : "");
		fputc('"', f);
	}
	fputc('}', f);
}

void vakt_metric_u64(FILE *f, const char *name, const struct vakt_metric_label *l, size_t nl,
		     uint64_t value)
{
	fputs(name, f);
	write_labels(f, l, nl);
	fprintf(f, " %llu\n", (unsigned long long)value);
}

static void write_double(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else
		fprintf(f, "%.9g", v);
}

void vakt_metric_double(FILE *f, const char *name, const struct vakt_metric_label *l,
			size_t nl, double value)
{
	fputs(name, f);
	write_labels(f, l, nl);
	fputc(' ', f);
	write_double(f, value);
	fputc('\n', f);
}

int vakt_histogram_init(struct vakt_histogram *h, const double *bounds, size_t n)
{
	if (n > VAKT_HIST_MAX_BUCKETS)
		return -EINVAL;
	for (size_t i = 1; i < n; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return -EINVAL;
	*h = (struct vakt_histogram){ .nbounds = n };
	for (size_t i = 0; i < n; i++)
		h->bounds[i] = bounds[i];
	return 0;
}

void vakt_histogram_observe(struct vakt_histogram *h, double v)
{
	size_t i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	if (i < h->nbounds)
		h->counts[i]++;
	h->count++;
	h->sum += v;
}

void vakt_histogram_write(FILE *f, const char *name, const struct vakt_histogram *h)
{
	char bname[128], le[64];
	uint64_t cum = 0;
	struct vakt_metric_label l = { "le", le };

	snprintf(bname, sizeof(bname), "%s_bucket", name);
	for (size_t i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		snprintf(le, sizeof(le), "%g", h->bounds[i]);
		vakt_metric_u64(f, bname, &l, 1, cum);
	}
	snprintf(le, sizeof(le), "+Inf");
	vakt_metric_u64(f, bname, &l, 1, h->count);
	snprintf(bname, sizeof(bname), "%s_sum", name);
	vakt_metric_double(f, bname, NULL, 0, h->sum);
	snprintf(bname, sizeof(bname), "%s_count", name);
	vakt_metric_u64(f, bname, NULL, 0, h->count);
}

/* --- the agent's metrics ----------------------------------------------------- */

struct counter_walk {
	FILE *f;
	const struct vakt_compiler *comp;
	int drops; /* 1: write drop reasons, 0: forwarded ones */
	int bytes; /* 1: bytes, 0: packets */
};

static int write_counter(void *arg, uint32_t ep_id, int dir, int reason, uint64_t packets,
			 uint64_t bytes)
{
	struct counter_walk *w = arg;
	struct vakt_ep_meta meta = { "", "" };
	const char *name = w->drops ? (w->bytes ? "vakt_dropped_bytes_total" : "vakt_drops_total")
				    : (w->bytes ? "vakt_forwarded_bytes_total"
						: "vakt_forwarded_total");
	struct vakt_metric_label l[4] = {
		{ "namespace", meta.ns },
		{ "pod", meta.name },
		{ "direction", vakt_dir_name((uint32_t)dir) },
		{ "reason", vakt_reason_name((uint32_t)reason) },
	};

	if (vakt_reason_is_drop((uint32_t)reason) != w->drops)
		return 0;
	/* ep_id 0 (no local endpoint) and ids the compiler no longer knows stay unnamed. */
	if (ep_id && w->comp)
		vakt_compiler_ep_meta(w->comp, ep_id, &meta);
	vakt_metric_u64(w->f, name, l, 4, w->bytes ? bytes : packets);
	return 0;
}

static int write_counters(FILE *f, const struct vakt_agent_metrics *m)
{
	static const struct {
		const char *name, *help;
		int drops, bytes;
	} fam[] = {
		{ "vakt_drops_total", "Packets dropped by the datapath, by local pod, direction and reason.", 1, 0 },
		{ "vakt_dropped_bytes_total", "Bytes dropped by the datapath, by local pod, direction and reason.", 1, 1 },
		{ "vakt_forwarded_total", "Packets forwarded by the datapath, by local pod, direction and reason.", 0, 0 },
		{ "vakt_forwarded_bytes_total", "Bytes forwarded by the datapath, by local pod, direction and reason.", 0, 1 },
	};
	int err = 0;

	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		struct counter_walk w = { f, m->comp, fam[i].drops, fam[i].bytes };

		vakt_metric_family(f, fam[i].name, "counter", fam[i].help);
		if (m->dp && !err)
			err = vakt_dataplane_counters(m->dp, write_counter, &w);
	}
	return err;
}

static void write_maps(FILE *f, const struct vakt_agent_metrics *m)
{
	static const char *const maps[] = { VAKT_MAP_IPCACHE, VAKT_MAP_ENDPOINTS, VAKT_MAP_CIDR,
					    VAKT_MAP_POLICY, VAKT_MAP_CT, VAKT_MAP_FRAGS };
	uint64_t entries[sizeof(maps) / sizeof(maps[0])], cap[sizeof(maps) / sizeof(maps[0])];
	int ok[sizeof(maps) / sizeof(maps[0])];
	struct vakt_metric_label l = { "map", NULL };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		ok[i] = m->dp && !vakt_dataplane_map_usage(m->dp, maps[i], &entries[i], &cap[i]);
	vakt_metric_family(f, "vakt_bpf_map_entries", "gauge", "Entries in a BPF map.");
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		l.value = maps[i];
		if (ok[i])
			vakt_metric_u64(f, "vakt_bpf_map_entries", &l, 1, entries[i]);
	}
	vakt_metric_family(f, "vakt_bpf_map_capacity", "gauge", "Maximum entries of a BPF map.");
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		l.value = maps[i];
		if (ok[i])
			vakt_metric_u64(f, "vakt_bpf_map_capacity", &l, 1, cap[i]);
	}
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	vakt_metric_family(f, name, "gauge", help);
	vakt_metric_u64(f, name, NULL, 0, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	vakt_metric_family(f, name, "counter", help);
	vakt_metric_u64(f, name, NULL, 0, v);
}

/* A counter family with one series per watched resource. */
static void counter_per_resource(FILE *f, const char *name, const char *help,
				 const uint64_t v[VAKT_KUBE_NRES])
{
	struct vakt_metric_label l = { "resource", NULL };

	vakt_metric_family(f, name, "counter", help);
	for (int r = 0; r < VAKT_KUBE_NRES; r++) {
		l.value = vakt_kube_res_name((enum vakt_kube_res)r);
		vakt_metric_u64(f, name, &l, 1, v[r]);
	}
}

/* Every resource x type from the start, so that rate() sees the first event. */
static void write_kube(FILE *f, const struct vakt_kube_stats *k, int synced)
{
	struct vakt_metric_label l[2] = { { "resource", NULL }, { "type", NULL } };
	static const struct {
		const char *kind;
		size_t off;
	} errs[] = {
		{ "http", offsetof(struct vakt_kube_stats, http_errors) },
		{ "transport", offsetof(struct vakt_kube_stats, transport_errors) },
		{ "malformed", offsetof(struct vakt_kube_stats, malformed) },
	};
	struct vakt_metric_label kind = { "kind", NULL };

	vakt_metric_family(f, "vakt_watch_events_total", "counter",
			   "Watch events received from the API server, by resource and type.");
	for (int r = 0; r < VAKT_KUBE_NRES; r++) {
		l[0].value = vakt_kube_res_name((enum vakt_kube_res)r);
		for (int e = 0; e < VAKT_KUBE_NEV; e++) {
			l[1].value = vakt_kube_event_name((enum vakt_kube_event)e);
			vakt_metric_u64(f, "vakt_watch_events_total", l, 2, k->events[r][e]);
		}
	}
	counter_per_resource(f, "vakt_watch_restarts_total",
			     "Watches started again (stream ended, cut, expired or failed).",
			     k->restarts);
	counter_per_resource(f, "vakt_watch_relists_total",
			     "Lists after the first one (410 Gone: history compacted).", k->relists);
	counter_per_resource(f, "vakt_api_objects_rejected_total",
			     "Objects the decoder rejected (the previous version was kept).",
			     k->decode_errors);
	vakt_metric_family(f, "vakt_api_errors_total", "counter",
			   "Failed API requests: non-200 responses, connection failures and cut "
			   "streams, malformed watch events.");
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		kind.value = errs[i].kind;
		vakt_metric_u64(f, "vakt_api_errors_total", &kind, 1,
				*(const uint64_t *)((const char *)k + errs[i].off));
	}
	counter(f, "vakt_api_token_reloads_total", "Service account token file read again.",
		k->token_reloads);
	gauge(f, "vakt_api_synced", "1 once the first list of every resource is in the store.",
	      (uint64_t)!!synced);
}

static void write_flows(FILE *f, const struct vakt_flowsrv_stats *s)
{
	struct vakt_flowsrv_stats z = { 0 };

	if (!s)
		s = &z;
	gauge(f, "vakt_flow_subscribers", "Clients following drop events (vakt flows) now.",
	      s->clients);
	counter(f, "vakt_flow_events_lost_total",
		"Drop event copies not delivered to a flows subscriber that read too slowly.",
		s->lost);
}

int vakt_metrics_write_agent(FILE *f, const struct vakt_agent_metrics *m)
{
	struct vakt_compiler_stats cs = { 0 };
	struct vakt_dataplane_stats ds = { 0 };
	struct vakt_metric_label ver = { "version", VAKT_VERSION };
	int err;

	if (m->comp)
		vakt_compiler_stats(m->comp, &cs);
	if (m->dp)
		vakt_dataplane_stats(m->dp, &ds);
	err = write_counters(f, m);
	gauge(f, "vakt_endpoints", "Local pods enforced on this node.", cs.local_endpoints);
	gauge(f, "vakt_identities", "Label-set identities known to the compiler.", cs.identities);
	gauge(f, "vakt_endpoint_policies", "Distinct per-direction endpoint policies.",
	      cs.endpoint_policies);
	gauge(f, "vakt_cidr_classes", "CIDR classes of the ipBlocks of local policies.", cs.classes);
	write_maps(f, m);
	vakt_metric_family(f, "vakt_policy_compile_duration_seconds", "histogram",
			   "Time to compile a batch of object changes and write it to the maps.");
	vakt_histogram_write(f, "vakt_policy_compile_duration_seconds", m->compile);
	counter(f, "vakt_compile_errors_total", "Compiler errors (table full, id space, memory).",
		cs.errors);
	counter(f, "vakt_map_write_errors_total", "Failed BPF map writes.", ds.map_errors);
	counter(f, "vakt_map_full_total", "BPF map writes that failed because the map was full.",
		ds.map_full);
	gauge(f, "vakt_fail_closed_endpoints", "Endpoints failed closed by the map writer.",
	      ds.fail_closed);
	gauge(f, "vakt_policy_generation", "Current policy generation (state.gen).", ds.gen);
	if (m->kube) {
		write_kube(f, m->kube, m->kube_synced);
	} else {
		counter(f, "vakt_source_reloads_total", "Manifest loads applied to the store.",
			m->source_reloads);
		counter(f, "vakt_source_reload_errors_total",
			"Manifest loads rejected (the last good state was kept).", m->source_errors);
	}
	counter(f, "vakt_source_events_total", "Object changes (puts and deletes) from the source.",
		m->source_events);
	counter(f, "vakt_netlink_events_total", "rtnetlink notifications handled.", m->nl_events);
	counter(f, "vakt_netlink_resyncs_total", "rtnetlink re-dumps after lost notifications.",
		m->nl_resyncs);
	gauge(f, "vakt_attached_interfaces", "Pod veths carrying vakt programs.", m->attached_pod);
	gauge(f, "vakt_attached_uplinks", "Uplink devices carrying vakt programs.",
	      m->attached_uplink);
	counter(f, "vakt_attach_errors_total", "Failed program attachments.",
		m->attach_errors + ds.attach_errors);
	counter(f, "vakt_drop_events_total", "Drop events read from the ring buffer.",
		m->drop_events);
	write_flows(f, m->flows);
	gauge(f, "vakt_ready", "1 when /readyz reports ready.", (uint64_t)!!m->ready);
	vakt_metric_family(f, "vakt_agent_start_time_seconds", "gauge",
			   "Start time of this agent since the epoch; changes on restart.");
	vakt_metric_double(f, "vakt_agent_start_time_seconds", NULL, 0, m->start_time);
	vakt_metric_family(f, "vakt_build_info", "gauge", "Build information; always 1.");
	vakt_metric_u64(f, "vakt_build_info", &ver, 1, 1);
	return err;
}
