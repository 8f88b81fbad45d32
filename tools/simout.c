// SPDX-License-Identifier: Apache-2.0
/*
 * simout.c - text and JSON forms of sim answers (see simout.h).
 */
#include <netinet/in.h>
#include <string.h>

#include "compiler.h"
#include "reasons.h"
#include "simout.h"

const char *sim_port_label(const struct sim_port *p, char *buf, size_t len)
{
	if (p->name)
		snprintf(buf, len, "%s", p->name);
	else
		snprintf(buf, len, "%u", p->num);
	return buf;
}

/* "x/a (10.0.0.1)" for a pod, the bare address for an outside end. */
static void print_end(FILE *f, const struct vakt_end *e)
{
	char name[SIM_NAME_LEN], addr[INET6_ADDRSTRLEN];

	vakt_addr_str(&e->addr, addr, sizeof(addr));
	if (e->pod)
		fprintf(f, "%s (%s)", sim_end_name(e, name, sizeof(name)), addr);
	else
		fprintf(f, "%s", addr);
}

static const char *unenforced_why(const struct vakt_end *e)
{
	return e->pod ? "hostNetwork pod: policies do not apply" : "outside the cluster: no policy of its own";
}

static void print_dir(FILE *f, const char *what, const struct vakt_end *e, const struct vakt_dir_explain *de)
{
	char name[SIM_NAME_LEN];
	size_t shown = de->nhits < VAKT_EXPLAIN_MAX ? de->nhits : VAKT_EXPLAIN_MAX;

	fprintf(f, "  %s of %s: ", what, sim_end_name(e, name, sizeof(name)));
	if (!de->enforced) {
		fprintf(f, "not enforced (%s)\n", unenforced_why(e));
		return;
	}
	if (!de->isolated) {
		fprintf(f, "not isolated (no policy selects it for %s): allowed\n", what);
		return;
	}
	if (!de->allowed) {
		fprintf(f, "isolated; no rule matched: denied\n");
		return;
	}
	fprintf(f, "isolated; allowed by ");
	for (size_t i = 0; i < shown; i++)
		fprintf(f, "%s%s/%s rule %u", i ? ", " : "", de->hits[i].pol->ns, de->hits[i].pol->name,
			de->hits[i].rule);
	if (de->nhits > shown)
		fprintf(f, " and %zu more", de->nhits - shown);
	fputc('\n', f);
}

static void print_kernel_dir(FILE *f, const char *what, const struct sim_kernel_answer *k)
{
	fprintf(f, "%s ", what);
	if (!k->checked) {
		fprintf(f, "not enforced");
		return;
	}
	fprintf(f, "%s by %s%s (%s)", k->allowed ? "allowed" : "denied", k->prog,
		k->deferred ? " after vakt_from_pod deferred it" : "", vakt_reason_name(k->reason));
}

/* The kernel agreed with the tables at every point, or sim would have failed. */
static void print_kernel(FILE *f, const struct sim_result *r)
{
	fprintf(f, "  kernel (BPF_PROG_TEST_RUN): ");
	print_kernel_dir(f, "egress", &r->kernel[VAKT_DIR_EGRESS]);
	fprintf(f, ", ");
	print_kernel_dir(f, "ingress", &r->kernel[VAKT_DIR_INGRESS]);
	fprintf(f, ": %s, as the tables\n", r->allowed ? "allowed" : "denied");
}

void sim_query_print_text(FILE *f, const struct sim_world *w, const struct sim_query *q)
{
	char plabel[16];

	(void)w;
	print_end(f, &q->src);
	fprintf(f, " -> ");
	print_end(f, &q->dst);
	fprintf(f, " %s %s", vakt_proto_name(q->proto), sim_port_label(&q->port, plabel, sizeof(plabel)));
	if (q->port.name)
		fprintf(f, " (%u)", q->resolved);
	fprintf(f, ": %s\n", q->res.allowed ? "allowed" : "denied");
	if (q->res.self) {
		fprintf(f, "  self: a pod always reaches itself (the traffic never leaves its network namespace)\n");
		return;
	}
	print_dir(f, "egress", &q->src, &q->res.ex.egress);
	print_dir(f, "ingress", &q->dst, &q->res.ex.ingress);
	if (q->res.dataplane)
		print_kernel(f, &q->res);
}

/* Adds value to obj under key, taking the reference; a NULL value fails. */
static int put(json_t *obj, const char *key, json_t *value)
{
	return json_object_set_new(obj, key, value);
}

static json_t *rule_json(const char *ns, const char *name, uint32_t rule)
{
	char pname[2 * VAKT_NAME_MAX];

	snprintf(pname, sizeof(pname), "%s/%s", ns, name);
	return json_pack("{s:s, s:I}", "policy", pname, "rule", (json_int_t)rule);
}

static json_t *matched_json(const struct sim_world *w, const struct sim_table_answer *a)
{
	struct vakt_rule_ref ref;

	if (!a->checked || a->v.reason != VAKT_R_POLICY_ALLOW ||
	    vakt_compiler_rule(w->comp, a->v.rule, &ref) < 0)
		return json_null();
	return rule_json(ref.ns, ref.name, ref.index);
}

/* Policy names are listed once each even when several of their rules allow. */
static int add_policy_once(json_t *arr, const char *pname)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (!strcmp(json_string_value(v), pname))
			return 0;
	}
	return json_array_append_new(arr, json_string(pname));
}

static json_t *kernel_json(const struct sim_kernel_answer *k)
{
	if (!k->checked)
		return json_null();
	return json_pack("{s:b, s:s, s:s, s:b}", "allowed", k->allowed, "program", k->prog, "reason",
			 vakt_reason_name(k->reason), "deferred", k->deferred);
}

static json_t *dir_json(const struct sim_world *w, const struct vakt_dir_explain *de,
			const struct sim_table_answer *a, const struct sim_result *r, int dir)
{
	json_t *o = json_object(), *pols = json_array(), *rules = json_array();
	size_t shown = de->nhits < VAKT_EXPLAIN_MAX ? de->nhits : VAKT_EXPLAIN_MAX;
	char pname[2 * VAKT_NAME_MAX];
	int err = !o || !pols || !rules;

	for (size_t i = 0; i < shown && !err; i++) {
		const struct vakt_rule_hit *h = &de->hits[i];

		snprintf(pname, sizeof(pname), "%s/%s", h->pol->ns, h->pol->name);
		err |= add_policy_once(pols, pname);
		err |= json_array_append_new(rules, rule_json(h->pol->ns, h->pol->name, h->rule));
	}
	if (err || put(o, "enforced", json_boolean(de->enforced)) || put(o, "isolated", json_boolean(de->isolated)) ||
	    put(o, "allowed", json_boolean(de->allowed)) || put(o, "policies", pols) || put(o, "rules", rules) ||
	    put(o, "reason", a->checked ? json_string(vakt_reason_name(a->v.reason)) : json_null()) ||
	    put(o, "matched", matched_json(w, a)) ||
	    (r->dataplane && put(o, "kernel", kernel_json(&r->kernel[dir])))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *sim_query_json(const struct sim_world *w, const struct sim_query *q)
{
	char from[SIM_NAME_LEN], to[SIM_NAME_LEN], sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	json_t *o = json_object();
	json_t *port = q->port.name ? json_string(q->port.name) : json_integer(q->port.num);

	if (!o || put(o, "from", json_string(sim_end_name(&q->src, from, sizeof(from)))) ||
	    put(o, "to", json_string(sim_end_name(&q->dst, to, sizeof(to)))) || put(o, "port", port) ||
	    put(o, "protocol", json_string(vakt_proto_name(q->proto))) ||
	    put(o, "allowed", json_boolean(q->res.allowed)) ||
	    put(o, "egress", dir_json(w, &q->res.ex.egress, &q->res.tables[VAKT_DIR_EGRESS], &q->res, VAKT_DIR_EGRESS)) ||
	    put(o, "ingress", dir_json(w, &q->res.ex.ingress, &q->res.tables[VAKT_DIR_INGRESS], &q->res, VAKT_DIR_INGRESS)) ||
	    put(o, "self", json_boolean(q->res.self)) ||
	    put(o, "from_ip", json_string(vakt_addr_str(&q->src.addr, sa, sizeof(sa)))) ||
	    put(o, "to_ip", json_string(vakt_addr_str(&q->dst.addr, da, sizeof(da)))) ||
	    (q->port.name && put(o, "resolved_port", json_integer(q->resolved))) ||
	    (w->dp && put(o, "dataplane", json_true()))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static size_t widest(const char *const *names, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);

		if (l > w)
			w = l;
	}
	return w;
}

void sim_matrix_print_text(FILE *f, const char *const *names, size_t n, const char *port_label, const char *proto,
			   const unsigned char *allowed)
{
	int w = (int)widest(names, n);

	fprintf(f, "# port %s %s\n", port_label, proto);
	if (n == 0)
		return; /* no pods: a header with an empty table */
	fprintf(f, "%-*s ", w, "");
	for (size_t c = 0; c < n; c++)
		fprintf(f, " %-*s", c + 1 < n ? w : 0, names[c]);
	fputc('\n', f);
	for (size_t r = 0; r < n; r++) {
		fprintf(f, "%-*s ", w, names[r]);
		/* The last column is not padded: no trailing blanks. */
		for (size_t c = 0; c < n; c++)
			fprintf(f, " %-*s", c + 1 < n ? w : 0, allowed[r * n + c] ? "." : "X");
		fputc('\n', f);
	}
}
