// SPDX-License-Identifier: Apache-2.0
/*
 * decode.c - JSON trees (from YAML or JSON manifests, or the API server) to
 * model objects, with the validation Kubernetes' API server applies to the
 * fields vakt uses. Every error names the object and the field path.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

struct dctx {
	struct vakt_error scratch; /* where messages go when the caller passed no err */
	const char *origin;
	const char *kind;
	const char *ns;   /* NULL for namespaces and until known */
	const char *name; /* NULL until known */
	const struct vakt_load_opts *o;
	struct vakt_error *err;
	size_t plen;
	char path[256]; /* field path of what is being decoded */
};

static const struct vakt_load_opts default_opts;

static __attribute__((format(printf, 2, 0))) int vderr(struct dctx *c, const char *fmt,
							va_list ap)
{
	char what[256];
	int n;

	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang-tidy 14 false positive */
	vsnprintf(what, sizeof(what), fmt, ap);
	n = snprintf(c->err->msg, sizeof(c->err->msg), "%s: %s %s%s%s%s%s: %s", c->origin,
		     c->kind, c->ns ? c->ns : "", c->ns ? "/" : "",
		     c->name ? c->name : "<unnamed>", c->plen ? ": " : "", c->path, what);
	if (n >= (int)sizeof(c->err->msg)) /* say it was cut rather than end mid-word */
		memcpy(c->err->msg + sizeof(c->err->msg) - 4, "...", 4);
	return -EINVAL;
}

static __attribute__((format(printf, 2, 3))) int derr(struct dctx *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vderr(c, fmt, ap);
	va_end(ap);
	return r;
}

static __attribute__((format(printf, 2, 0))) size_t vpath_push(struct dctx *c, const char *fmt,
							       va_list ap)
{
	size_t old = c->plen;
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang-tidy 14 false positive */
	int n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);

	if (n > 0)
		c->plen += (size_t)n;
	if (c->plen >= sizeof(c->path))
		c->plen = sizeof(c->path) - 1;
	return old;
}

/* Appends to the field path; returns the length to restore with path_pop(). */
static __attribute__((format(printf, 2, 3))) size_t path_push(struct dctx *c, const char *fmt,
								 ...)
{
	va_list ap;
	size_t old;

	va_start(ap, fmt);
	old = vpath_push(c, fmt, ap);
	va_end(ap);
	return old;
}

static size_t path_field(struct dctx *c, const char *key)
{
	return c->plen ? path_push(c, ".%s", key) : path_push(c, "%s", key);
}

static void path_pop(struct dctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int type_err(struct dctx *c, const char *key, const char *want, const json_t *v)
{
	if (key)
		path_field(c, key);
	return derr(c, "expected %s, got %s", want, type_name(v));
}

/* *out = the field, or NULL when absent or null (Kubernetes reads null as unset). */
static int get_object(struct dctx *c, json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return type_err(c, key, "an object", v);
	*out = v;
	return 0;
}

static int get_array(struct dctx *c, json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return type_err(c, key, "a list", v);
	*out = v;
	return 0;
}

static int check_string(struct dctx *c, const char *key, const json_t *v)
{
	if (!json_is_string(v))
		return type_err(c, key, "a string", v);
	/* YAML can carry NUL in a string; C strings cannot. */
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		if (key)
			path_field(c, key);
		return derr(c, "contains a NUL character");
	}
	return 0;
}

static int get_string(struct dctx *c, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	int r;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	r = check_string(c, key, v);
	if (r)
		return r;
	*out = json_string_value(v);
	return 0;
}

/* An integer; a number with an integral value is accepted too, as YAML 80.0 reaches the API as 80. */
static int as_int(struct dctx *c, const char *key, const json_t *v, long long *out)
{
	double d;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 1e15) {
			*out = (long long)d;
			return 0;
		}
	}
	return type_err(c, key, "an integer", v);
}

static int get_bool(struct dctx *c, json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return type_err(c, key, "a boolean", v);
	*out = json_is_true(v);
	return 0;
}

/* Fields of strictly known objects (the NetworkPolicy spec): a typo must not silently widen a rule. */
static int check_fields(struct dctx *c, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k;

		for (k = known; *k; k++)
			if (!strcmp(*k, key))
				break;
		if (!*k)
			return derr(c, "unknown field \"%s\"", key);
	}
	return 0;
}

static int dup_str(char **dst, const char *s)
{
	*dst = NULL;
	if (!s)
		return -EINVAL;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* --- names ---------------------------------------------------------------- */

static int is_alnum_lower(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 label: lowercase alphanumerics and '-', alphanumeric at both ends. */
/* RFC 1123 label characters: [a-z0-9-], alphanumeric at both ends. */
static int is_dns_chars(const char *s, size_t len)
{
	if (!len || !is_alnum_lower(s[0]) || !is_alnum_lower(s[len - 1]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum_lower(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int is_dns_label(const char *s, size_t len)
{
	return len <= 63 && is_dns_chars(s, len);
}

/*
 * RFC 1123 subdomain as Kubernetes validates it (IsDNS1123Subdomain): labels
 * joined by '.', at most 253 characters in all. Unlike DNS proper there is
 * no 63-character limit per label: upstream's own e2e tests create policy
 * names longer than 63 characters.
 */
static int is_dns_subdomain(const char *s)
{
	size_t len = strlen(s);
	const char *p = s;

	if (!len || len > 253)
		return 0;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (!is_dns_chars(p, l))
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

/* IANA_SVC_NAME: 1-15 of [a-z0-9-], a letter somewhere, no '-' at the ends or twice in a row. */
static int is_port_name(const char *s)
{
	size_t len = strlen(s);
	int letter = 0;

	if (!len || len > 15 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = 1;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return 0;
	}
	return letter;
}

/* --- metadata ------------------------------------------------------------- */

struct meta {
	const char *name;
	const char *ns;
	const char *rv;
	json_t *labels;
};

static int decode_meta(struct dctx *c, json_t *obj, int namespaced, struct meta *m)
{
	json_t *md;
	size_t mark;
	int r;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(obj))
		return derr(c, "expected an object, got %s", type_name(obj));
	r = get_object(c, obj, "metadata", &md);
	if (r)
		return r;
	if (!md)
		return derr(c, "metadata.name: missing");
	mark = path_field(c, "metadata");
	r = get_string(c, md, "name", &m->name);
	if (!r && namespaced)
		r = get_string(c, md, "namespace", &m->ns);
	if (r)
		return r;
	if (namespaced) {
		/* kubectl's default: an object without a namespace goes to "default". */
		if (!m->ns || !*m->ns)
			m->ns = "default";
		c->ns = m->ns;
		if (!is_dns_label(m->ns, strlen(m->ns))) {
			path_field(c, "namespace");
			return derr(c, "invalid namespace name \"%s\"", m->ns);
		}
	}
	if (!m->name || !*m->name) {
		path_field(c, "name");
		return derr(c, "missing");
	}
	c->name = m->name;
	if (namespaced ? !is_dns_subdomain(m->name) : !is_dns_label(m->name, strlen(m->name))) {
		path_field(c, "name");
		return derr(c, "invalid name: %s",
			    namespaced ? "must be a DNS subdomain: lowercase alphanumerics, '-' "
					 "and '.', alphanumeric at both ends, at most 253 characters" :
					 "must be a DNS label: lowercase alphanumerics and '-', "
					 "alphanumeric at both ends, at most 63 characters");
	}
	r = get_string(c, md, "resourceVersion", &m->rv);
	if (!r)
		r = get_object(c, md, "labels", &m->labels);
	path_pop(c, mark);
	return r;
}

static int decode_labels(struct dctx *c, json_t *obj, struct vakt_labels *out)
{
	const char *key;
	json_t *v;
	int r;

	json_object_foreach(obj, key, v) {
		size_t mark = path_push(c, "[%s]", key);

		r = check_string(c, NULL, v);
		if (r)
			return r;
		r = vakt_labels_set(out, key, json_string_value(v));
		if (r)
			return r;
		path_pop(c, mark);
	}
	return 0;
}

/* --- selectors ------------------------------------------------------------ */

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int decode_op(struct dctx *c, const char *op, enum vakt_sel_op *out)
{
	static const struct {
		const char *name;
		enum vakt_sel_op op;
	} ops[] = {
		{ "In", VAKT_SEL_IN },
		{ "NotIn", VAKT_SEL_NOT_IN },
		{ "Exists", VAKT_SEL_EXISTS },
		{ "DoesNotExist", VAKT_SEL_DOES_NOT_EXIST },
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!strcmp(op, ops[i].name)) {
			*out = ops[i].op;
			return 0;
		}
	}
	path_field(c, "operator");
	return derr(c, "unknown operator \"%s\" (In, NotIn, Exists or DoesNotExist)", op);
}

static int decode_values(struct dctx *c, json_t *values, struct vakt_sel_expr *e)
{
	size_t i, n = 0;
	json_t *v;
	int r;

	if (!json_array_size(values))
		return 0;
	e->values = calloc(json_array_size(values), sizeof(*e->values));
	if (!e->values)
		return -ENOMEM;
	json_array_foreach(values, i, v) {
		size_t mark = path_push(c, ".values[%zu]", i);

		r = check_string(c, NULL, v);
		if (r)
			return r;
		path_pop(c, mark);
		r = dup_str(&e->values[e->nvalues], json_string_value(v));
		if (r)
			return r;
		e->nvalues++;
	}
	/* Sorted and unique: a set, so equal selectors compare equal. */
	qsort(e->values, e->nvalues, sizeof(*e->values), cmp_strp);
	for (i = 0; i < e->nvalues; i++) {
		if (n && !strcmp(e->values[n - 1], e->values[i])) {
			free(e->values[i]);
			continue;
		}
		e->values[n++] = e->values[i];
	}
	e->nvalues = n;
	return 0;
}

static const char *const expr_fields[] = { "key", "operator", "values", NULL };

static int decode_expr(struct dctx *c, json_t *obj, struct vakt_sel_expr *e)
{
	const char *key, *op;
	json_t *values;
	int r;

	if (!json_is_object(obj))
		return derr(c, "expected an object, got %s", type_name(obj));
	r = check_fields(c, obj, expr_fields);
	if (!r)
		r = get_string(c, obj, "key", &key);
	if (!r)
		r = get_string(c, obj, "operator", &op);
	if (!r)
		r = get_array(c, obj, "values", &values);
	if (r)
		return r;
	if (!key || !*key) {
		path_field(c, "key");
		return derr(c, "missing");
	}
	if (!op) {
		path_field(c, "operator");
		return derr(c, "missing");
	}
	r = decode_op(c, op, &e->op);
	if (r)
		return r;
	r = dup_str(&e->key, key);
	if (!r)
		r = decode_values(c, values, e);
	if (r)
		return r;
	if ((e->op == VAKT_SEL_IN || e->op == VAKT_SEL_NOT_IN) && !e->nvalues) {
		path_field(c, "values");
		return derr(c, "must be non-empty when operator is %s", op);
	}
	if ((e->op == VAKT_SEL_EXISTS || e->op == VAKT_SEL_DOES_NOT_EXIST) && e->nvalues) {
		path_field(c, "values");
		return derr(c, "must be empty when operator is %s", op);
	}
	return 0;
}

static const char *const selector_fields[] = { "matchLabels", "matchExpressions", NULL };

/* Decodes into *s (zeroed by the caller); on error the caller frees *s. */
static int decode_selector(struct dctx *c, json_t *obj, struct vakt_selector *s)
{
	json_t *labels, *exprs, *v;
	size_t i;
	int r;

	r = check_fields(c, obj, selector_fields);
	if (!r)
		r = get_object(c, obj, "matchLabels", &labels);
	if (!r)
		r = get_array(c, obj, "matchExpressions", &exprs);
	if (r)
		return r;
	if (labels) {
		size_t mark = path_field(c, "matchLabels");

		r = decode_labels(c, labels, &s->match_labels);
		if (r)
			return r;
		path_pop(c, mark);
	}
	if (!json_array_size(exprs))
		return 0;
	s->exprs = calloc(json_array_size(exprs), sizeof(*s->exprs));
	if (!s->exprs)
		return -ENOMEM;
	json_array_foreach(exprs, i, v) {
		size_t mark = c->plen ? path_push(c, ".matchExpressions[%zu]", i) :
					path_push(c, "matchExpressions[%zu]", i);

		s->nexprs++;
		r = decode_expr(c, v, &s->exprs[i]);
		if (r)
			return r;
		path_pop(c, mark);
	}
	return 0;
}

/* A selector field that may be absent (*out = NULL) or present ({} matches all). */
static int decode_selector_opt(struct dctx *c, json_t *obj, const char *key,
			       struct vakt_selector **out)
{
	json_t *v;
	size_t mark;
	int r;

	*out = NULL;
	r = get_object(c, obj, key, &v);
	if (r || !v)
		return r;
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	mark = path_field(c, key);
	r = decode_selector(c, v, *out);
	if (r)
		return r; /* the caller's peer_fini frees *out */
	path_pop(c, mark);
	return 0;
}

/* --- namespaces ----------------------------------------------------------- */

static void dctx_init(struct dctx *c, const char *origin, const char *kind,
		      const struct vakt_load_opts *o, struct vakt_error *err)
{
	memset(c, 0, sizeof(*c));
	c->origin = origin ? origin : "<input>";
	c->kind = kind;
	c->o = o ? o : &default_opts;
	c->err = err ? err : &c->scratch;
}

int vakt_decode_namespace(json_t *obj, const char *origin, const struct vakt_load_opts *o,
			  struct vakt_namespace **out, struct vakt_error *err)
{
	struct vakt_namespace *ns;
	struct dctx c;
	struct meta m;
	int r;

	*out = NULL;
	dctx_init(&c, origin, "Namespace", o, err);
	r = decode_meta(&c, obj, 0, &m);
	if (r)
		return r;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	r = dup_str(&ns->name, m.name);
	if (!r && m.rv)
		r = dup_str(&ns->resource_version, m.rv);
	if (!r && m.labels) {
		size_t mark = path_field(&c, "metadata.labels");

		r = decode_labels(&c, m.labels, &ns->labels);
		path_pop(&c, mark);
	}
	/* The API server always sets this label to the name; selectors rely on it. */
	if (!r)
		r = vakt_labels_set(&ns->labels, NS_NAME_LABEL, m.name);
	if (r) {
		vakt_namespace_free(ns);
		return r;
	}
	*out = ns;
	return 0;
}

/* --- pods ----------------------------------------------------------------- */

struct port_pos {
	struct vakt_named_port p;
	size_t container, index; /* where it was declared, for errors */
};

static int cmp_port_pos(const void *a, const void *b)
{
	return strcmp(((const struct port_pos *)a)->p.name, ((const struct port_pos *)b)->p.name);
}

static int decode_proto(struct dctx *c, json_t *obj, uint8_t *out)
{
	const char *s;
	int r = get_string(c, obj, "protocol", &s);

	if (r)
		return r;
	if (!s) {
		*out = IPPROTO_TCP;
		return 0;
	}
	r = vakt_proto_parse(s);
	if (r < 0) {
		path_field(c, "protocol");
		return derr(c, "unknown protocol \"%s\" (TCP, UDP or SCTP)", s);
	}
	*out = (uint8_t)r;
	return 0;
}

static int decode_container_port(struct dctx *c, json_t *p, struct port_pos *out, int *named)
{
	const char *name = NULL;
	long long port = 0;
	json_t *v;
	int r;

	*named = 0;
	if (!json_is_object(p))
		return derr(c, "expected an object, got %s", type_name(p));
	v = json_object_get(p, "containerPort");
	if (!v || json_is_null(v)) {
		path_field(c, "containerPort");
		return derr(c, "missing");
	}
	r = as_int(c, "containerPort", v, &port);
	if (r)
		return r;
	if (port < 1 || port > 65535) {
		path_field(c, "containerPort");
		return derr(c, "port %lld outside 1..65535", port);
	}
	r = decode_proto(c, p, &out->p.proto);
	if (!r)
		r = get_string(c, p, "name", &name);
	if (r || !name)
		return r;
	if (!is_port_name(name)) {
		path_field(c, "name");
		return derr(c, "invalid port name \"%s\" (1-15 lowercase letters, digits, '-'; "
			       "a letter; no '-' at the ends or twice)", name);
	}
	out->p.port = (uint16_t)port;
	*named = 1;
	return dup_str(&out->p.name, name);
}

/* Named container ports of spec.containers[], sorted by name, unique across the pod. */
static int decode_pod_ports(struct dctx *c, json_t *spec, struct vakt_pod *pod)
{
	struct port_pos *ports = NULL, *grown;
	size_t n = 0, i, k;
	json_t *containers, *ct, *list, *p;
	int r, named;

	r = get_array(c, spec, "containers", &containers);
	json_array_foreach(containers, i, ct) {
		size_t mark = path_push(c, ".containers[%zu]", i);

		if (r)
			break;
		if (!json_is_object(ct)) {
			r = derr(c, "expected an object, got %s", type_name(ct));
			break;
		}
		r = get_array(c, ct, "ports", &list);
		json_array_foreach(list, k, p) {
			size_t pmark = path_push(c, ".ports[%zu]", k);

			if (r)
				break;
			grown = realloc(ports, (n + 1) * sizeof(*ports));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			ports = grown;
			memset(&ports[n], 0, sizeof(ports[n]));
			r = decode_container_port(c, p, &ports[n], &named);
			if (named) {
				ports[n].container = i;
				ports[n].index = k;
				n++;
			}
			if (!r)
				path_pop(c, pmark);
		}
		if (!r)
			path_pop(c, mark);
	}
	if (!r && n) {
		qsort(ports, n, sizeof(*ports), cmp_port_pos);
		for (i = 1; i < n && !r; i++) {
			if (strcmp(ports[i - 1].p.name, ports[i].p.name) != 0)
				continue;
			path_push(c, ".containers[%zu].ports[%zu].name", ports[i].container,
				  ports[i].index);
			r = derr(c, "duplicate port name \"%s\" (also containers[%zu].ports[%zu])",
				 ports[i].p.name, ports[i - 1].container, ports[i - 1].index);
		}
		pod->ports = calloc(n, sizeof(*pod->ports));
		if (!r && !pod->ports)
			r = -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		if (!r)
			pod->ports[pod->nports++] = ports[i].p;
		else
			free(ports[i].p.name);
	}
	free(ports);
	return r;
}

static int add_pod_ip(struct dctx *c, struct vakt_pod *pod, const char *ip)
{
	struct vakt_addr a;
	int v4;

	if (vakt_addr_parse(ip, &a, &v4))
		return derr(c, "invalid IP address \"%s\"", ip);
	for (size_t i = 0; i < pod->nips; i++) {
		if (memcmp(&pod->ips[i], &a, sizeof(a)) == 0)
			return derr(c, "duplicate IP address \"%s\"", ip);
		if (vakt_addr_is_v4(&pod->ips[i]) == vakt_addr_is_v4(&a))
			return derr(c, "a second %s address (at most one per family)",
				    vakt_addr_is_v4(&a) ? "IPv4" : "IPv6");
	}
	if (pod->nips >= VAKT_POD_MAX_IPS)
		return derr(c, "too many IP addresses (at most %d, one per family)",
			    VAKT_POD_MAX_IPS);
	pod->ips[pod->nips++] = a;
	return 0;
}

static int decode_pod_status(struct dctx *c, json_t *status, struct vakt_pod *pod)
{
	const char *ip = NULL, *phase = NULL;
	json_t *ips = NULL, *v;
	size_t i, mark = path_field(c, "status");
	int r = 0;

	if (status) {
		r = get_string(c, status, "podIP", &ip);
		if (!r)
			r = get_array(c, status, "podIPs", &ips);
		if (!r)
			r = get_string(c, status, "phase", &phase);
		if (r)
			return r;
	}
	json_array_foreach(ips, i, v) {
		size_t imark = path_push(c, ".podIPs[%zu]", i);
		const char *s;

		if (!json_is_object(v))
			return derr(c, "expected an object, got %s", type_name(v));
		r = get_string(c, v, "ip", &s);
		if (r)
			return r;
		path_field(c, "ip");
		if (!s)
			return derr(c, "missing");
		r = add_pod_ip(c, pod, s);
		if (r)
			return r;
		path_pop(c, imark);
	}
	if (ip && *ip) {
		struct vakt_addr a;
		size_t imark = path_field(c, "podIP");

		if (!pod->nips) {
			r = add_pod_ip(c, pod, ip);
		} else if (vakt_addr_parse(ip, &a, NULL)) {
			r = derr(c, "invalid IP address \"%s\"", ip);
		} else if (memcmp(&a, &pod->ips[0], sizeof(a)) != 0) {
			r = derr(c, "\"%s\" is not the first of status.podIPs", ip);
		}
		if (r)
			return r;
		path_pop(c, imark);
	}
	/* A finished pod holds no address any more: it may already belong to a new pod. */
	if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))) {
		pod->nips = 0;
		memset(pod->ips, 0, sizeof(pod->ips));
		path_pop(c, mark);
		return 0;
	}
	if (!pod->nips && c->o->require_pod_ip) {
		path_field(c, "podIP");
		return derr(c, "missing: every pod needs an IP address here");
	}
	path_pop(c, mark);
	return 0;
}

static int decode_pod_fields(struct dctx *c, json_t *obj, const struct meta *m,
			     struct vakt_pod *pod)
{
	json_t *spec, *status;
	const char *node;
	size_t mark;
	int r;

	r = dup_str(&pod->ns, m->ns);
	if (!r)
		r = dup_str(&pod->name, m->name);
	if (!r && m->rv)
		r = dup_str(&pod->resource_version, m->rv);
	if (!r && m->labels) {
		mark = path_field(c, "metadata.labels");
		r = decode_labels(c, m->labels, &pod->labels);
		if (!r)
			path_pop(c, mark);
	}
	if (!r)
		r = get_object(c, obj, "spec", &spec);
	if (!r)
		r = get_object(c, obj, "status", &status);
	if (r)
		return r;
	if (spec) {
		mark = path_field(c, "spec");
		r = get_string(c, spec, "nodeName", &node);
		if (!r && node && *node)
			r = dup_str(&pod->node, node);
		if (!r)
			r = get_bool(c, spec, "hostNetwork", &pod->host_network);
		if (!r)
			r = decode_pod_ports(c, spec, pod);
		if (r)
			return r;
		path_pop(c, mark);
	}
	return decode_pod_status(c, status, pod);
}

int vakt_decode_pod(json_t *obj, const char *origin, const struct vakt_load_opts *o,
		    struct vakt_pod **out, struct vakt_error *err)
{
	struct vakt_pod *pod;
	struct dctx c;
	struct meta m;
	int r;

	*out = NULL;
	dctx_init(&c, origin, "Pod", o, err);
	r = decode_meta(&c, obj, 1, &m);
	if (r)
		return r;
	pod = calloc(1, sizeof(*pod));
	if (!pod)
		return -ENOMEM;
	r = decode_pod_fields(&c, obj, &m, pod);
	if (r) {
		vakt_pod_free(pod);
		return r;
	}
	*out = pod;
	return 0;
}

/* --- network policies ----------------------------------------------------- */

static int decode_cidr(struct dctx *c, const json_t *v, struct vakt_cidr *out)
{
	int r = check_string(c, NULL, v);

	if (r)
		return r;
	if (vakt_cidr_parse(json_string_value(v), out))
		return derr(c, "invalid CIDR \"%s\"", json_string_value(v));
	return 0;
}

static const char *const ipblock_fields[] = { "cidr", "except", NULL };

static int decode_ipblock(struct dctx *c, json_t *obj, struct vakt_ipblock *b)
{
	json_t *cidr, *except, *v;
	char outer[64];
	size_t i, mark;
	int r;

	r = check_fields(c, obj, ipblock_fields);
	if (!r)
		r = get_array(c, obj, "except", &except);
	if (r)
		return r;
	cidr = json_object_get(obj, "cidr");
	mark = path_field(c, "cidr");
	if (!cidr || json_is_null(cidr))
		return derr(c, "missing");
	r = decode_cidr(c, cidr, &b->cidr);
	if (r)
		return r;
	path_pop(c, mark);
	if (!json_array_size(except))
		return 0;
	b->except = calloc(json_array_size(except), sizeof(*b->except));
	if (!b->except)
		return -ENOMEM;
	vakt_cidr_str(&b->cidr, outer, sizeof(outer));
	json_array_foreach(except, i, v) {
		struct vakt_cidr *e = &b->except[i];

		mark = path_push(c, ".except[%zu]", i);

		r = decode_cidr(c, v, e);
		if (r)
			return r;
		if (e->v4 != b->cidr.v4)
			return derr(c, "\"%s\" is not the address family of cidr %s",
				    json_string_value(v), outer);
		if (e->plen <= b->cidr.plen || !vakt_cidr_contains(&b->cidr, e))
			return derr(c, "\"%s\" is not a strict subset of cidr %s",
				    json_string_value(v), outer);
		b->nexcept++;
		path_pop(c, mark);
	}
	return 0;
}

static const char *const peer_fields[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };

static int decode_peer(struct dctx *c, json_t *obj, struct vakt_peer *p)
{
	json_t *ipb;
	size_t mark;
	int r;

	/* A null list element is a zero-value peer in Go, i.e. one with no field. */
	if (json_is_null(obj))
		return derr(c, "a peer needs podSelector, namespaceSelector or ipBlock");
	if (!json_is_object(obj))
		return derr(c, "expected an object, got %s", type_name(obj));
	r = check_fields(c, obj, peer_fields);
	if (!r)
		r = decode_selector_opt(c, obj, "podSelector", &p->pod_sel);
	if (!r)
		r = decode_selector_opt(c, obj, "namespaceSelector", &p->ns_sel);
	if (!r)
		r = get_object(c, obj, "ipBlock", &ipb);
	if (r)
		return r;
	if (ipb && (p->pod_sel || p->ns_sel))
		return derr(c, "ipBlock cannot be combined with podSelector or namespaceSelector");
	if (!ipb && !p->pod_sel && !p->ns_sel)
		return derr(c, "a peer needs podSelector, namespaceSelector or ipBlock");
	if (!ipb)
		return 0;
	p->has_ipblock = 1;
	mark = path_field(c, "ipBlock");
	r = decode_ipblock(c, ipb, &p->ipblock);
	if (!r)
		path_pop(c, mark);
	return r;
}

static const char *const port_fields[] = { "protocol", "port", "endPort", NULL };

static int decode_port_spec(struct dctx *c, json_t *obj, struct vakt_port_spec *ps)
{
	json_t *port, *end;
	long long v;
	int r;

	ps->proto = IPPROTO_TCP;
	/* A null list element is a zero-value port in Go: every TCP port. */
	if (json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return derr(c, "expected an object, got %s", type_name(obj));
	r = check_fields(c, obj, port_fields);
	if (!r)
		r = decode_proto(c, obj, &ps->proto);
	if (r)
		return r;
	port = json_object_get(obj, "port");
	end = json_object_get(obj, "endPort");
	if (json_is_null(port))
		port = NULL;
	if (json_is_null(end))
		end = NULL;
	if (json_is_string(port)) {
		r = check_string(c, "port", port);
		if (r)
			return r;
		if (!is_port_name(json_string_value(port))) {
			path_field(c, "port");
			return derr(c, "invalid port name \"%s\" (1-15 lowercase letters, digits, "
				       "'-'; a letter; no '-' at the ends or twice)",
				    json_string_value(port));
		}
		r = dup_str(&ps->name, json_string_value(port));
		if (r)
			return r;
	} else if (port) {
		if (!json_is_integer(port) && !json_is_real(port))
			return type_err(c, "port", "an integer or a port name", port);
		r = as_int(c, "port", port, &v);
		if (r)
			return r;
		if (v < 1 || v > 65535) {
			path_field(c, "port");
			return derr(c, "port %lld outside 1..65535", v);
		}
		ps->port = (uint16_t)v;
	}
	if (!end)
		return 0;
	r = as_int(c, "endPort", end, &v);
	if (r)
		return r;
	path_field(c, "endPort");
	if (!port)
		return derr(c, "endPort needs port");
	if (ps->name)
		return derr(c, "endPort cannot be used with a named port");
	if (v < ps->port || v > 65535)
		return derr(c, "endPort %lld outside %u..65535 (must not be below port)", v,
			    (unsigned int)ps->port);
	ps->end_port = (uint16_t)v;
	return 0;
}

static const char *const rule_fields[VAKT_DIR_MAX][3] = {
	[VAKT_DIR_INGRESS] = { "from", "ports", NULL },
	[VAKT_DIR_EGRESS] = { "to", "ports", NULL },
};

/* Decodes into *rule (zeroed); the caller frees it on error through the policy. */
static int decode_rule(struct dctx *c, json_t *obj, int dir, struct vakt_rule *rule)
{
	const char *peers_key = rule_fields[dir][0];
	json_t *peers, *ports;
	size_t i, n;
	int r;

	/* A null list element is a zero-value rule in Go: all peers, all ports. */
	if (json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return derr(c, "expected an object, got %s", type_name(obj));
	r = check_fields(c, obj, rule_fields[dir]);
	if (!r)
		r = get_array(c, obj, peers_key, &peers);
	if (!r)
		r = get_array(c, obj, "ports", &ports);
	if (r)
		return r;
	n = json_array_size(peers);
	if (n) {
		rule->peers = calloc(n, sizeof(*rule->peers));
		if (!rule->peers)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		size_t mark = path_push(c, ".%s[%zu]", peers_key, i);

		rule->npeers++;
		r = decode_peer(c, json_array_get(peers, i), &rule->peers[i]);
		if (r)
			return r;
		path_pop(c, mark);
	}
	n = json_array_size(ports);
	if (n) {
		rule->ports = calloc(n, sizeof(*rule->ports));
		if (!rule->ports)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		size_t mark = path_push(c, ".ports[%zu]", i);

		rule->nports++;
		r = decode_port_spec(c, json_array_get(ports, i), &rule->ports[i]);
		if (r)
			return r;
		path_pop(c, mark);
	}
	return 0;
}

static int decode_rules(struct dctx *c, json_t *spec, int dir, struct vakt_policy *pol)
{
	const char *key = dir == VAKT_DIR_INGRESS ? "ingress" : "egress";
	json_t *rules, *v;
	size_t i;
	int r;

	r = get_array(c, spec, key, &rules);
	if (r || !json_array_size(rules))
		return r;
	pol->rules[dir] = calloc(json_array_size(rules), sizeof(*pol->rules[dir]));
	if (!pol->rules[dir])
		return -ENOMEM;
	json_array_foreach(rules, i, v) {
		size_t mark = path_push(c, ".%s[%zu]", key, i);

		pol->nrules[dir]++;
		r = decode_rule(c, v, dir, &pol->rules[dir][i]);
		if (r)
			return r;
		path_pop(c, mark);
	}
	return 0;
}

static int decode_policy_types(struct dctx *c, json_t *spec, struct vakt_policy *pol)
{
	json_t *types, *v;
	size_t i;
	int r;

	r = get_array(c, spec, "policyTypes", &types);
	if (r)
		return r;
	/* Kubernetes' defaulting: Ingress always, Egress when there are egress rules. */
	if (!json_array_size(types)) {
		pol->types = VAKT_PT_INGRESS | (pol->nrules[VAKT_DIR_EGRESS] ? VAKT_PT_EGRESS : 0);
		return 0;
	}
	json_array_foreach(types, i, v) {
		size_t mark = path_push(c, ".policyTypes[%zu]", i);
		const char *s;

		r = check_string(c, NULL, v);
		if (r)
			return r;
		s = json_string_value(v);
		if (!strcmp(s, "Ingress"))
			pol->types |= VAKT_PT_INGRESS;
		else if (!strcmp(s, "Egress"))
			pol->types |= VAKT_PT_EGRESS;
		else
			return derr(c, "unknown policy type \"%s\" (Ingress or Egress)", s);
		path_pop(c, mark);
	}
	return 0;
}

static const char *const spec_fields[] = { "podSelector", "policyTypes", "ingress", "egress",
					   NULL };

static int decode_policy_fields(struct dctx *c, json_t *obj, const struct meta *m,
				struct vakt_policy *pol)
{
	json_t *spec, *sel;
	int r;

	r = dup_str(&pol->ns, m->ns);
	if (!r)
		r = dup_str(&pol->name, m->name);
	if (!r && m->rv)
		r = dup_str(&pol->resource_version, m->rv);
	if (!r)
		r = get_object(c, obj, "spec", &spec);
	if (r)
		return r;
	if (!spec)
		return derr(c, "spec: missing");
	path_field(c, "spec");
	r = check_fields(c, spec, spec_fields);
	if (r)
		return r;
	sel = json_object_get(spec, "podSelector");
	if (!sel) {
		path_field(c, "podSelector");
		return derr(c, "missing (use {} to select every pod)");
	}
	/* An explicit null is the zero-value selector: every pod, as {}. */
	if (!json_is_null(sel)) {
		size_t mark = path_field(c, "podSelector");

		if (!json_is_object(sel))
			return derr(c, "expected an object, got %s", type_name(sel));
		r = decode_selector(c, sel, &pol->pod_sel);
		if (r)
			return r;
		path_pop(c, mark);
	}
	r = decode_rules(c, spec, VAKT_DIR_INGRESS, pol);
	if (!r)
		r = decode_rules(c, spec, VAKT_DIR_EGRESS, pol);
	if (!r)
		r = decode_policy_types(c, spec, pol);
	return r;
}

int vakt_decode_policy(json_t *obj, const char *origin, const struct vakt_load_opts *o,
		       struct vakt_policy **out, struct vakt_error *err)
{
	struct vakt_policy *pol;
	struct dctx c;
	struct meta m;
	int r;

	*out = NULL;
	dctx_init(&c, origin, "NetworkPolicy", o, err);
	r = decode_meta(&c, obj, 1, &m);
	if (r)
		return r;
	pol = calloc(1, sizeof(*pol));
	if (!pol)
		return -ENOMEM;
	r = decode_policy_fields(&c, obj, &m, pol);
	if (r) {
		vakt_policy_free(pol);
		return r;
	}
	*out = pol;
	return 0;
}
