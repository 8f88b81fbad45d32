// SPDX-License-Identifier: Apache-2.0
/*
 * yaml_json.c - libyaml events to jansson trees. An explicit stack (no
 * recursion) builds each document; see yaml_json.h for the typing rules.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "yaml_json.h"

struct frame {
	json_t *node;     /* the open mapping or sequence */
	char *anchor;     /* its anchor, registered when it closes */
	size_t start;     /* node count before it opened, for its anchor's size */
	size_t line;      /* where it opened, for errors */
	json_t *key;      /* mapping: the pending key (a string), NULL when none */
	int key_is_merge; /* the pending key is the merge key << */
	json_t *merges;   /* mapping: values of << keys, applied when it closes */
};

struct conv {
	const char *origin;
	struct vakt_error *err;
	struct frame stack[VAKT_YAML_MAX_DEPTH];
	size_t depth;
	json_t *root;
	json_t *anchors;    /* name -> [node, expanded size] */
	size_t nodes;       /* nodes of this document, aliases expanded */
	size_t alias_nodes; /* of which aliases added */
};

static __attribute__((format(printf, 4, 0))) int vcerr(struct conv *c, size_t line, size_t col,
							 const char *fmt, va_list ap)
{
	char what[384];
	int n;

	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang-tidy 14 false positive */
	vsnprintf(what, sizeof(what), fmt, ap);
	n = snprintf(c->err->msg, sizeof(c->err->msg), "%s:%zu:%zu: invalid YAML: %s", c->origin,
		     line, col, what);
	if (n >= (int)sizeof(c->err->msg))
		memcpy(c->err->msg + sizeof(c->err->msg) - 4, "...", 4);
	return -EINVAL;
}

static __attribute__((format(printf, 4, 5))) int cerr(struct conv *c, size_t line, size_t col,
							const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vcerr(c, line, col, fmt, ap);
	va_end(ap);
	return r;
}

static int mark_err(struct conv *c, const yaml_mark_t *m, const char *what)
{
	return cerr(c, m->line + 1, m->column + 1, "%s", what);
}

/* --- scalar typing (go-yaml v2's resolve) --------------------------------- */

static int in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

/*
 * YAML 1.2 booleans only: go-yaml v2 also reads y/n/yes/no/on/off as
 * booleans, which makes namespace "y" or label value "on" an error there;
 * here they stay strings (as in go-yaml v3), which is what people mean.
 */
static const char *const yaml_true[] = { "true", "True", "TRUE", NULL };
static const char *const yaml_false[] = { "false", "False", "FALSE", NULL };
static const char *const yaml_null[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const yaml_inf_nan[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
					    "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
					    NULL };

/* Integer forms go-yaml accepts: [-+] then decimal, 0x hex, 0o or leading-0 octal, 0b binary. */
static int parse_yaml_int(const char *s, long long *out)
{
	int neg = 0, base = 10;
	unsigned long long v = 0, lim;
	const char *p = s;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		base = 2, p += 2;
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		base = 8, p += 2;
	else if (p[0] == '0' && p[1])
		base = 8, p += 1;
	if (!*p)
		return -EINVAL;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; *p; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -EINVAL;
		if (d >= base || v > (lim - (unsigned long long)d) / (unsigned long long)base)
			return -EINVAL;
		v = v * (unsigned long long)base + (unsigned long long)d;
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int is_yaml_float(const char *p)
{
	size_t digits = 0;

	if (*p == '-' || *p == '+')
		p++;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
		if (!digits)
			return 0;
	} else {
		for (; *p >= '0' && *p <= '9'; p++)
			digits++;
		if (!digits)
			return 0;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		digits = 0;
		for (; *p >= '0' && *p <= '9'; p++)
			digits++;
		if (!digits)
			return 0;
	}
	return *p == '\0';
}

/* The value of a plain scalar. *bad is set for values JSON cannot hold. */
static json_t *resolve_plain(const char *s, size_t len, int *bad)
{
	char *num;
	json_t *v = NULL;
	long long i;

	*bad = 0;
	if (in_list(s, yaml_null))
		return json_null();
	if (in_list(s, yaml_true))
		return json_true();
	if (in_list(s, yaml_false))
		return json_false();
	if (!strchr("+-.0123456789", s[0]))
		return json_stringn(s, len);
	if (in_list(s, yaml_inf_nan)) {
		*bad = 1;
		return NULL;
	}
	/* Underscores are digit separators in YAML 1.1 numbers. */
	num = malloc(len + 1);
	if (!num)
		return NULL;
	{
		size_t n = 0;

		for (size_t k = 0; k < len; k++)
			if (s[k] != '_')
				num[n++] = s[k];
		num[n] = '\0';
	}
	if (!parse_yaml_int(num, &i)) {
		v = json_integer(i);
	} else if (is_yaml_float(num)) {
		double d = strtod(num, NULL);

		if (isfinite(d))
			v = json_real(d);
		else
			*bad = 1;
	} else {
		v = json_stringn(s, len);
	}
	free(num);
	return v;
}

/* --- building ------------------------------------------------------------- */

static void frame_fini(struct frame *f)
{
	json_decref(f->node);
	json_decref(f->key);
	json_decref(f->merges);
	free(f->anchor);
	memset(f, 0, sizeof(*f));
}

static void conv_reset(struct conv *c)
{
	while (c->depth)
		frame_fini(&c->stack[--c->depth]);
	json_decref(c->root);
	c->root = NULL;
	json_object_clear(c->anchors);
	c->nodes = 0;
	c->alias_nodes = 0;
}

static int register_anchor(struct conv *c, const char *anchor, json_t *v, size_t size)
{
	json_t *rec = json_pack("[OI]", v, (json_int_t)size);

	if (!rec || json_object_set_new_nocheck(c->anchors, anchor, rec))
		return -ENOMEM;
	return 0;
}

/*
 * Places a finished value (reference stolen) into the open container, or
 * makes it the root. Keys are handled by the caller.
 */
static int attach(struct conv *c, json_t *v, const yaml_mark_t *m)
{
	struct frame *f;
	int r = 0;

	if (!c->depth) {
		json_decref(c->root);
		c->root = v;
		return 0;
	}
	f = &c->stack[c->depth - 1];
	if (json_is_array(f->node)) {
		if (json_array_append_new(f->node, v))
			return -ENOMEM;
		return 0;
	}
	if (f->key_is_merge) {
		if (!f->merges)
			f->merges = json_array();
		if (!f->merges) {
			json_decref(v);
			r = -ENOMEM;
		} else if (json_array_append_new(f->merges, v)) {
			r = -ENOMEM;
		}
	} else if (json_object_get(f->node, json_string_value(f->key))) {
		json_decref(v);
		r = cerr(c, m->line + 1, m->column + 1, "duplicate mapping key \"%s\"",
			 json_string_value(f->key));
	} else if (json_object_set_new_nocheck(f->node, json_string_value(f->key), v)) {
		r = -ENOMEM;
	}
	json_decref(f->key);
	f->key = NULL;
	f->key_is_merge = 0;
	return r;
}

/* True when the open container is a mapping waiting for a key. */
static int wants_key(const struct conv *c)
{
	const struct frame *f;

	if (!c->depth)
		return 0;
	f = &c->stack[c->depth - 1];
	return json_is_object(f->node) && !f->key;
}

static int set_key(struct conv *c, const char *s, size_t len, int merge, const yaml_mark_t *m)
{
	struct frame *f = &c->stack[c->depth - 1];

	if (memchr(s, '\0', len))
		return mark_err(c, m, "mapping key contains a NUL character");
	f->key = json_stringn(s, len);
	if (!f->key)
		return mark_err(c, m, "mapping key is not valid UTF-8");
	f->key_is_merge = merge;
	return 0;
}

static int count_nodes(struct conv *c, size_t n, int alias, const yaml_mark_t *m)
{
	c->nodes += n;
	if (alias) {
		c->alias_nodes += n;
		if (c->alias_nodes > VAKT_YAML_MAX_ALIAS_NODES)
			return mark_err(c, m, "aliases expand to too many nodes");
	}
	return 0;
}

static int on_scalar(struct conv *c, const yaml_event_t *e)
{
	const char *s = (const char *)e->data.scalar.value;
	const char *tag = (const char *)e->data.scalar.tag;
	const char *anchor = (const char *)e->data.scalar.anchor;
	size_t len = e->data.scalar.length;
	int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	int str_tag = tag && (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG) ||
			      !strcmp(tag, "tag:yaml.org,2002:binary"));
	json_t *v;
	int bad = 0, r;

	r = count_nodes(c, 1, 0, &e->start_mark);
	if (r)
		return r;
	if (wants_key(c)) {
		/* Keys stay text: label keys like "80" or "true" are strings to Kubernetes too. */
		r = set_key(c, s, len, plain && !tag && len == 2 && !memcmp(s, "<<", 2),
			    &e->start_mark);
		if (!r && anchor) {
			v = json_stringn(s, len);
			r = v ? register_anchor(c, anchor, v, 1) : -ENOMEM;
			json_decref(v);
		}
		return r;
	}
	if (plain && !str_tag && !memchr(s, '\0', len))
		v = resolve_plain(s, len, &bad);
	else
		v = json_stringn(s, len);
	if (bad)
		return mark_err(c, &e->start_mark, "infinite or NaN numbers are not supported");
	if (!v)
		return mark_err(c, &e->start_mark, "scalar is not valid UTF-8");
	if (anchor) {
		r = register_anchor(c, anchor, v, 1);
		if (r) {
			json_decref(v);
			return r;
		}
	}
	return attach(c, v, &e->start_mark);
}

static int on_alias(struct conv *c, const yaml_event_t *e)
{
	const char *name = (const char *)e->data.alias.anchor;
	json_t *rec = json_object_get(c->anchors, name);
	json_t *v;
	int r;

	/* Anchors register when their node closes, so an alias can never form a cycle. */
	if (!rec)
		return cerr(c, e->start_mark.line + 1, e->start_mark.column + 1,
			    "unknown or unfinished anchor \"%s\"", name);
	v = json_array_get(rec, 0);
	r = count_nodes(c, (size_t)json_integer_value(json_array_get(rec, 1)), 1, &e->start_mark);
	if (r)
		return r;
	if (wants_key(c)) {
		if (!json_is_string(v))
			return mark_err(c, &e->start_mark, "an alias used as a key must be a string");
		return set_key(c, json_string_value(v), json_string_length(v), 0, &e->start_mark);
	}
	return attach(c, json_incref(v), &e->start_mark);
}

static int on_open(struct conv *c, const yaml_event_t *e, int mapping)
{
	const yaml_char_t *anchor = mapping ? e->data.mapping_start.anchor :
					      e->data.sequence_start.anchor;
	struct frame *f;
	size_t start = c->nodes;
	int r;

	if (wants_key(c))
		return mark_err(c, &e->start_mark, "mapping keys must be scalars");
	if (c->depth >= VAKT_YAML_MAX_DEPTH)
		return mark_err(c, &e->start_mark, "nesting too deep");
	r = count_nodes(c, 1, 0, &e->start_mark);
	if (r)
		return r;
	/* Free slots are all-zero: conv starts zeroed and on_close/frame_fini clear them. */
	f = &c->stack[c->depth];
	f->node = mapping ? json_object() : json_array();
	if (!f->node)
		return -ENOMEM;
	f->start = start;
	f->line = e->start_mark.line + 1;
	if (anchor) {
		f->anchor = strdup((const char *)anchor);
		if (!f->anchor) {
			json_decref(f->node);
			f->node = NULL;
			return -ENOMEM;
		}
	}
	c->depth++;
	return 0;
}

/* Merge keys: explicit keys win, then earlier merged mappings over later ones. */
static int apply_merges(struct conv *c, struct frame *f, const yaml_mark_t *m)
{
	size_t i;
	json_t *src;

	if (!f->merges)
		return 0;
	json_array_foreach(f->merges, i, src) {
		if (json_is_array(src)) {
			size_t k;
			json_t *inner;

			json_array_foreach(src, k, inner) {
				if (!json_is_object(inner))
					return mark_err(c, m, "merge key (<<) needs mappings");
				if (json_object_update_missing(f->node, inner))
					return -ENOMEM;
			}
		} else if (json_is_object(src)) {
			if (json_object_update_missing(f->node, src))
				return -ENOMEM;
		} else {
			return mark_err(c, m, "merge key (<<) needs a mapping or a list of mappings");
		}
	}
	return 0;
}

static int on_close(struct conv *c, const yaml_event_t *e)
{
	struct frame f = c->stack[--c->depth];
	int r;

	memset(&c->stack[c->depth], 0, sizeof(c->stack[c->depth]));
	r = apply_merges(c, &f, &e->start_mark);
	if (!r && f.anchor)
		r = register_anchor(c, f.anchor, f.node, c->nodes - f.start);
	if (!r) {
		r = attach(c, f.node, &e->start_mark);
		f.node = NULL; /* attach took it, also on error */
	}
	frame_fini(&f);
	return r;
}

static int on_event(struct conv *c, const yaml_event_t *e)
{
	switch (e->type) {
	case YAML_SCALAR_EVENT:
		return on_scalar(c, e);
	case YAML_ALIAS_EVENT:
		return on_alias(c, e);
	case YAML_SEQUENCE_START_EVENT:
		return on_open(c, e, 0);
	case YAML_MAPPING_START_EVENT:
		return on_open(c, e, 1);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_close(c, e);
	default:
		return 0;
	}
}

static int parser_err(struct conv *c, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "parse error";

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->context)
		return cerr(c, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s %s",
			    p->context, problem);
	return cerr(c, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s", problem);
}

int vakt_yaml_parse(const char *buf, size_t len, const char *origin, vakt_yaml_doc_fn fn,
		    void *arg, struct vakt_error *err)
{
	struct conv c = { .origin = origin, .err = err };
	yaml_parser_t parser;
	yaml_event_t e;
	size_t docs = 0, line = 0;
	int r = 0, done = 0;

	c.anchors = json_object();
	if (!c.anchors)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		json_decref(c.anchors);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && !r) {
		if (!yaml_parser_parse(&parser, &e)) {
			r = parser_err(&c, &parser);
			break;
		}
		switch (e.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			conv_reset(&c);
			line = e.start_mark.line + 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			docs++;
			r = fn(arg, c.root ? c.root : json_null(), docs, line);
			conv_reset(&c);
			break;
		default:
			r = on_event(&c, &e);
			break;
		}
		yaml_event_delete(&e);
	}
	conv_reset(&c);
	json_decref(c.anchors);
	yaml_parser_delete(&parser);
	return r;
}
