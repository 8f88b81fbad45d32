// SPDX-License-Identifier: Apache-2.0
/*
 * simcore.c - load, compile and answer one query twice (see simcore.h).
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "dptest.h"
#include "loader.h"
#include "reasons.h"
#include "simcore.h"
#include "tables.h"

static int sim_fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes the message for the caller to print once, and passes ret through. */
static int sim_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

int sim_world_compile(struct sim_world *w, char *err, size_t errlen)
{
	/* node = NULL: the simulator enforces every pod, as if each were local. */
	struct vakt_compiler_opts co = { .node = NULL };
	int ret;

	w->comp = vakt_compiler_new(w->store, &co);
	if (!w->comp)
		return sim_fail(err, errlen, -ENOMEM, "cannot create the policy compiler: out of memory");
	w->tables = vakt_compiler_tables(w->comp);
	ret = vakt_compiler_full(w->comp);
	if (ret < 0)
		return sim_fail(err, errlen, ret, "cannot compile the policies: %s", strerror(-ret));
	return 0;
}

int sim_world_load(struct sim_world *w, const char *const *paths, size_t npaths, char *err, size_t errlen)
{
	/* A pod without an IP cannot be the end of a flow: the loader rejects it. */
	struct vakt_load_opts lo = { .require_pod_ip = 1 };
	struct vakt_objset set;
	struct vakt_error e = { .msg = "" };
	int ret;

	memset(w, 0, sizeof(*w));
	memset(&set, 0, sizeof(set));
	for (size_t i = 0; i < npaths; i++) {
		ret = vakt_load_path(&set, paths[i], &lo, &e);
		if (ret < 0) {
			sim_fail(err, errlen, ret, "%s", e.msg[0] ? e.msg : strerror(-ret));
			goto err_set;
		}
	}
	w->store = vakt_store_new();
	if (!w->store) {
		ret = sim_fail(err, errlen, -ENOMEM, "cannot create the object store: out of memory");
		goto err_set;
	}
	ret = vakt_objset_to_store(&set, w->store);
	if (ret < 0) {
		sim_fail(err, errlen, ret, "cannot store the loaded objects: %s", strerror(-ret));
		goto err_set;
	}
	vakt_objset_free(&set);
	return sim_world_compile(w, err, errlen);

err_set:
	vakt_objset_free(&set);
	return ret;
}

void sim_world_free(struct sim_world *w)
{
	vakt_dptest_close(w->dp);
	/* The tables belong to the compiler. */
	if (w->comp)
		vakt_compiler_free(w->comp);
	if (w->store)
		vakt_store_free(w->store);
	memset(w, 0, sizeof(*w));
}

#ifdef VAKT_SIM_TEST_HOOKS
#include <bpf/bpf.h>
/*
 * Test builds only: tests/sim/test_sim_dataplane.sh compiles this file with
 * -DVAKT_SIM_TEST_HOOKS into a separate binary; the vakt binary that make
 * builds has no such hook. VAKT_SIM_TEST_OPEN_ENDPOINT=ADDR clears both
 * policy ids of that endpoint in the kernel's map after the fill (the
 * compiled tables keep them), so kernel and tables disagree and the
 * inconsistency check must say so.
 */
static int test_hook_corrupt(struct sim_world *w, char *err, size_t errlen)
{
	const char *text = getenv("VAKT_SIM_TEST_OPEN_ENDPOINT");
	struct vakt_addr a;
	struct vakt_ep_val ep;
	int fd;

	if (!text)
		return 0;
	fd = vakt_dptest_map_fd(w->dp, VAKT_MAP_ENDPOINTS);
	if (vakt_addr_parse(text, &a, NULL) || fd < 0 || bpf_map_lookup_elem(fd, &a, &ep))
		return sim_fail(err, errlen, -EINVAL, "test hook: no endpoint %s", text);
	ep.policy[VAKT_DIR_INGRESS] = 0;
	ep.policy[VAKT_DIR_EGRESS] = 0;
	if (bpf_map_update_elem(fd, &a, &ep, BPF_ANY))
		return sim_fail(err, errlen, -errno, "test hook: update of %s failed", text);
	return 0;
}
#endif

int sim_world_dataplane(struct sim_world *w, char *err, size_t errlen)
{
	int ret;

	ret = vakt_dptest_open(&w->dp, w->tables, NULL);
	if (ret == -EPERM || ret == -EACCES)
		return sim_fail(err, errlen, ret,
			    "--dataplane needs root (CAP_BPF and CAP_NET_ADMIN) to load the BPF programs: %s",
			    strerror(-ret));
	if (ret < 0)
		return sim_fail(err, errlen, ret, "--dataplane: cannot load the BPF programs: %s", strerror(-ret));
	ret = vakt_dptest_fill(w->dp, w->tables);
	if (ret == -ERANGE)
		return sim_fail(err, errlen, ret,
			    "--dataplane: more pods than the datapath's %d endpoint slots per node", VAKT_MAX_ENDPOINTS - 1);
	if (ret < 0)
		return sim_fail(err, errlen, ret, "--dataplane: cannot fill the BPF maps: %s", strerror(-ret));
#ifdef VAKT_SIM_TEST_HOOKS
	ret = test_hook_corrupt(w, err, errlen);
#endif
	return ret;
}

int sim_endpoint_parse(const struct vakt_store *s, const char *text, struct sim_endpoint *out, char *err,
		       size_t errlen)
{
	const char *slash;
	char ns[VAKT_NAME_MAX];
	struct vakt_addr range;

	memset(out, 0, sizeof(*out));
	out->text = text;
	if (vakt_addr_parse(text, &out->addr, NULL) == 0) {
		out->has_addr = 1;
		out->pod = vakt_store_pod_by_addr(s, &out->addr);
		return 0;
	}
	slash = strchr(text, '/');
	if (!slash || slash == text || !slash[1] || strchr(slash + 1, '/'))
		return sim_fail(err, errlen, -EINVAL, "'%s' is neither namespace/pod nor an IP address", text);
	if ((size_t)(slash - text) >= sizeof(ns))
		return sim_fail(err, errlen, -EINVAL, "'%s': namespace name too long", text);
	memcpy(ns, text, (size_t)(slash - text));
	ns[slash - text] = '\0';
	if (vakt_addr_parse(ns, &range, NULL) == 0)
		return sim_fail(err, errlen, -EINVAL, "'%s' is an address range: give one address", text);
	out->pod = vakt_store_pod(s, ns, slash + 1);
	if (!out->pod)
		return sim_fail(err, errlen, -ENOENT, "unknown pod %s (no such pod in the manifests)", text);
	return 0;
}

static int pod_addr(const struct vakt_pod *pod, int v4, struct vakt_addr *out)
{
	for (size_t i = 0; i < pod->nips; i++) {
		if (vakt_addr_is_v4(&pod->ips[i]) == v4) {
			*out = pod->ips[i];
			return 1;
		}
	}
	return 0;
}

static int pod_has_family(const struct sim_endpoint *e, int v4)
{
	struct vakt_addr a;

	return e->has_addr ? vakt_addr_is_v4(&e->addr) == v4 : pod_addr(e->pod, v4, &a);
}

static int end_addr(const struct sim_endpoint *e, int v4, struct vakt_end *out, char *err, size_t errlen)
{
	out->pod = e->pod;
	if (e->has_addr) {
		out->addr = e->addr;
		return 0;
	}
	if (!pod_addr(e->pod, v4, &out->addr))
		return sim_fail(err, errlen, -EAFNOSUPPORT, "pod %s has no %s address", e->text, v4 ? "IPv4" : "IPv6");
	return 0;
}

int sim_pick_addrs(const struct sim_endpoint *src, const struct sim_endpoint *dst, struct vakt_end *s,
		   struct vakt_end *d, char *err, size_t errlen)
{
	int v4;
	int ret;

	if (src->has_addr && dst->has_addr && vakt_addr_is_v4(&src->addr) != vakt_addr_is_v4(&dst->addr))
		return sim_fail(err, errlen, -EAFNOSUPPORT, "%s and %s are of different address families", src->text,
			    dst->text);
	if (src->has_addr)
		v4 = vakt_addr_is_v4(&src->addr);
	else if (dst->has_addr)
		v4 = vakt_addr_is_v4(&dst->addr);
	else if (pod_has_family(src, 1) && pod_has_family(dst, 1))
		v4 = 1;
	else if (pod_has_family(src, 0) && pod_has_family(dst, 0))
		v4 = 0;
	else
		return sim_fail(err, errlen, -EAFNOSUPPORT, "%s and %s have no address family in common", src->text,
			    dst->text);
	ret = end_addr(src, v4, s, err, errlen);
	if (ret < 0)
		return ret;
	return end_addr(dst, v4, d, err, errlen);
}

/* What Kubernetes accepts as a container port name (IANA_SVC_NAME). */
static int port_name_valid(const char *s)
{
	size_t n = strlen(s);
	int letter = 0;

	if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = 1;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	}
	return letter;
}

int sim_port_parse(const char *text, struct sim_port *out, char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	memset(out, 0, sizeof(*out));
	if (text[0] && strspn(text, "0123456789") == strlen(text)) {
		errno = 0;
		v = strtoul(text, &end, 10);
		if (errno || v < 1 || v > 65535)
			return sim_fail(err, errlen, -ERANGE, "port %s is outside 1..65535", text);
		out->num = (uint16_t)v;
		return 0;
	}
	if (!port_name_valid(text))
		return sim_fail(err, errlen, -EINVAL,
			    "invalid port '%s': expected a number 1..65535 or a container port name", text);
	out->name = text;
	return 0;
}

int sim_port_resolve(const struct sim_port *p, uint8_t proto, const struct vakt_pod *dst, uint16_t *num)
{
	/* The spec holds a mutable name; a valid port name fits in 15 bytes. */
	char name[16];
	struct vakt_port_spec ps = { .proto = proto, .name = name };
	uint8_t rproto;
	uint16_t lo, hi;

	if (!p->name) {
		*num = p->num;
		return 1;
	}
	if (!dst || strlen(p->name) >= sizeof(name))
		return 0;
	memcpy(name, p->name, strlen(p->name) + 1);
	if (vakt_port_resolve(&ps, dst->ports, dst->nports, &rproto, &lo, &hi) != 1)
		return 0;
	*num = lo;
	return 1;
}

int sim_proto_parse(const char *text)
{
	char up[8];
	size_t n = strlen(text);

	if (n >= sizeof(up))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)text[i]);
	return vakt_proto_parse(up);
}

const char *sim_end_name(const struct vakt_end *e, char *buf, size_t len)
{
	if (e->pod)
		snprintf(buf, len, "%s/%s", e->pod->ns, e->pod->name);
	else
		vakt_addr_str(&e->addr, buf, len);
	return buf;
}

static const char *dir_word(int dir)
{
	return dir == VAKT_DIR_EGRESS ? "egress" : "ingress";
}

/* The rule the tables cite must be one the engine found allowing. */
static int hit_cited(const struct sim_world *w, const struct vakt_dir_explain *de, int dir, uint32_t rule)
{
	struct vakt_rule_ref ref;

	if (de->nhits > VAKT_EXPLAIN_MAX)
		return 1; /* the engine's list is truncated: nothing to compare against */
	if (vakt_compiler_rule(w->comp, rule, &ref) < 0)
		return 0;
	for (size_t i = 0; i < de->nhits; i++) {
		const struct vakt_rule_hit *h = &de->hits[i];

		if (ref.dir == dir && ref.index == h->rule && !strcmp(ref.ns, h->pol->ns) &&
		    !strcmp(ref.name, h->pol->name))
			return 1;
	}
	return 0;
}

/* Ask the tables about one direction at the enforcing pod and compare with the engine. */
static int table_dir(const struct sim_world *w, const struct vakt_end *self, const struct vakt_end *peer, int dir,
		     uint8_t proto, uint16_t port, const struct vakt_dir_explain *de, struct sim_table_answer *a,
		     char *err, size_t errlen)
{
	struct vakt_flow f = { .peer = peer->addr, .dport = port, .proto = proto, .dir = (uint8_t)dir };
	char name[SIM_NAME_LEN];
	int ret;

	sim_end_name(self, name, sizeof(name));
	ret = vakt_tables_verdict(w->tables, &self->addr, &f, &a->v);
	if (ret == -ENOENT)
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency: the compiled tables have no endpoint for pod %s", name);
	if (ret < 0)
		return sim_fail(err, errlen, ret, "tables verdict for %s of %s failed: %s", dir_word(dir), name,
			    strerror(-ret));
	a->checked = 1;
	a->allowed = ret;
	if (a->allowed != de->allowed)
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency on %s of %s: compiled tables say %s (reason %s), engine says %s",
			    dir_word(dir), name, a->allowed ? "allowed" : "denied", vakt_reason_name(a->v.reason),
			    de->allowed ? "allowed" : "denied");
	if (a->v.reason == VAKT_R_POLICY_ALLOW && !hit_cited(w, de, dir, a->v.rule))
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency on %s of %s: compiled tables cite rule reference %u, "
			    "which the engine does not find allowing",
			    dir_word(dir), name, a->v.rule);
	return 0;
}

static int enforced(const struct vakt_end *e)
{
	return e->pod && !e->pod->host_network;
}

static const char *verdict_word(int allowed)
{
	return allowed ? "allowed" : "denied";
}

/* The kernel's answer for one direction must be the tables': same point, verdict, reason and rule. */
static int kernel_dir(const struct vakt_end *self, int dir, const struct sim_table_answer *a,
		      const struct sim_kernel_answer *k, char *err, size_t errlen)
{
	char name[SIM_NAME_LEN];

	sim_end_name(self, name, sizeof(name));
	if (k->checked != a->checked)
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency on %s of %s: kernel %s the packet, tables %s the point",
			    dir_word(dir), name, k->checked ? "checked" : "did not check",
			    a->checked ? "check" : "skip");
	if (!k->checked)
		return 0;
	if (k->allowed != a->allowed || k->reason != a->v.reason)
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency on %s of %s: kernel says %s (%s, reason %s), tables say %s (reason %s)",
			    dir_word(dir), name, verdict_word(k->allowed), k->prog, vakt_reason_name(k->reason),
			    verdict_word(a->allowed), vakt_reason_name(a->v.reason));
	if (k->reason == VAKT_R_POLICY_ALLOW && (!k->rule_known || k->rule != a->v.rule))
		return sim_fail(err, errlen, -EPROTO,
			    "internal inconsistency on %s of %s: kernel says allowed by rule reference %u, "
			    "tables say rule reference %u",
			    dir_word(dir), name, k->rule, a->v.rule);
	return 0;
}

/* Ask the BPF program through BPF_PROG_TEST_RUN and compare with the tables. */
static int kernel_eval(const struct sim_world *w, const struct vakt_end *src, const struct vakt_end *dst,
		       uint8_t proto, uint16_t port, struct sim_result *r, char *err, size_t errlen)
{
	struct vakt_dptest_flow f = {
		.pkt = { .src = src->addr, .dst = dst->addr, .proto = proto, .sport = SIM_DP_SPORT, .dport = port },
		.egress = enforced(src),
		.ingress = enforced(dst),
	};
	struct vakt_dptest_verdict v;
	int ret;

	ret = vakt_dptest_flow(w->dp, &f, &v);
	if (ret < 0)
		return sim_fail(err, errlen, ret, "BPF_PROG_TEST_RUN probe failed: %s", strerror(-ret));
	r->dataplane = 1;
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++) {
		struct sim_kernel_answer *k = &r->kernel[dir];

		k->checked = v.dir[dir].ran;
		k->allowed = v.dir[dir].allowed;
		k->reason = v.dir[dir].reason;
		k->prog = vakt_dptest_prog_name(v.dir[dir].prog);
		k->deferred = v.dir[dir].deferred;
		k->rule_known = v.dir[dir].rule_known;
		k->rule = v.dir[dir].rule;
	}
	ret = kernel_dir(src, VAKT_DIR_EGRESS, &r->tables[VAKT_DIR_EGRESS], &r->kernel[VAKT_DIR_EGRESS], err,
			 errlen);
	if (!ret)
		ret = kernel_dir(dst, VAKT_DIR_INGRESS, &r->tables[VAKT_DIR_INGRESS], &r->kernel[VAKT_DIR_INGRESS],
				 err, errlen);
	if (!ret && v.allowed != r->ex.allowed)
		ret = sim_fail(err, errlen, -EPROTO, "internal inconsistency: kernel says %s, tables say %s",
			       verdict_word(v.allowed), verdict_word(r->ex.allowed));
	return ret;
}

int sim_eval(const struct sim_world *w, const struct vakt_end *src, const struct vakt_end *dst, uint8_t proto,
	     uint16_t port, struct sim_result *r, char *err, size_t errlen)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = vakt_engine_eval(w->store, src, dst, proto, port, &r->ex);
	if (ret < 0)
		return sim_fail(err, errlen, ret, "policy engine failed: %s", strerror(-ret));
	r->self = r->ex.self;
	if (r->self) {
		/* Loopback inside the pod never reaches an enforcement point. */
		r->allowed = 1;
		return 0;
	}
	if (enforced(src)) {
		ret = table_dir(w, src, dst, VAKT_DIR_EGRESS, proto, port, &r->ex.egress,
				&r->tables[VAKT_DIR_EGRESS], err, errlen);
		if (ret < 0)
			return ret;
	}
	if (enforced(dst)) {
		ret = table_dir(w, dst, src, VAKT_DIR_INGRESS, proto, port, &r->ex.ingress,
				&r->tables[VAKT_DIR_INGRESS], err, errlen);
		if (ret < 0)
			return ret;
	}
	r->allowed = r->ex.allowed;
	if (w->dp)
		return kernel_eval(w, src, dst, proto, port, r, err, errlen);
	return 0;
}
