// SPDX-License-Identifier: Apache-2.0
/*
 * loader.c - manifests from files, directories and standard input: format
 * detection, documents, List kinds, kind dispatch, duplicate detection and
 * the object set. Object decoding lives in decode.c, YAML in yaml_json.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "yaml_json.h"

enum obj_kind { K_NAMESPACE, K_POD, K_POLICY };

static const struct kind_desc {
	const char *api_version;
	const char *kind;
	const char *list_kind;
	enum obj_kind k;
} kinds[] = {
	{ "v1", "Namespace", "NamespaceList", K_NAMESPACE },
	{ "v1", "Pod", "PodList", K_POD },
	{ "networking.k8s.io/v1", "NetworkPolicy", "NetworkPolicyList", K_POLICY },
};

/* One load call: where objects go, and what to undo if it fails. */
struct load {
	struct vakt_error scratch; /* where messages go when the caller passed no err */
	struct vakt_objset *set;
	const struct vakt_load_opts *o;
	struct vakt_error *err;
	const char *origin;
	json_t *seen; /* "kind\0ns\0name" -> where it was loaded (a string) or null */
	size_t start_ns, start_pods, start_pols;
};

static __attribute__((format(printf, 2, 0))) void vlerr(struct vakt_error *err, const char *fmt,
							  va_list ap)
{
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang-tidy 14 false positive */
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);

	if (n >= (int)sizeof(err->msg)) /* say it was cut rather than end mid-word */
		memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
}

static __attribute__((format(printf, 3, 4))) int lerr(struct vakt_error *err, int ret,
							 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlerr(err, fmt, ap);
	va_end(ap);
	return ret;
}

/* --- the object set ------------------------------------------------------- */

/*
 * Arrays of object pointers grow to the next power of two, so the capacity
 * follows from the count. Every element is a pointer, sizeof(void *).
 */
static int grow(void **arr, size_t n)
{
	void *p;

	if (n && (n & (n - 1)) != 0)
		return 0;
	p = realloc(*arr, (n ? 2 * n : 4) * sizeof(void *));
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

static void truncate_set(struct vakt_objset *set, size_t nns, size_t npods, size_t npols)
{
	while (set->nns > nns)
		vakt_namespace_free(set->ns[--set->nns]);
	while (set->npods > npods)
		vakt_pod_free(set->pods[--set->npods]);
	while (set->npols > npols)
		vakt_policy_free(set->pols[--set->npols]);
}

void vakt_objset_free(struct vakt_objset *set)
{
	truncate_set(set, 0, 0, 0);
	free(set->ns);
	free(set->pods);
	free(set->pols);
	memset(set, 0, sizeof(*set));
}

int vakt_objset_to_store(struct vakt_objset *set, struct vakt_store *s)
{
	size_t i;
	int r = 0;

	/* The store owns each object from the put on, also when the put fails. */
	for (i = 0; i < set->nns; i++) {
		r = vakt_store_put_namespace(s, set->ns[i]);
		set->ns[i] = NULL;
		if (r)
			goto out;
	}
	for (i = 0; i < set->npods; i++) {
		r = vakt_store_put_pod(s, set->pods[i]);
		set->pods[i] = NULL;
		if (r)
			goto out;
	}
	for (i = 0; i < set->npols; i++) {
		r = vakt_store_put_policy(s, set->pols[i]);
		set->pols[i] = NULL;
		if (r)
			goto out;
	}
out:
	if (r)
		log_error("cannot store loaded objects", "err=%d", r);
	/* Moved entries are NULL; the free functions accept NULL. */
	vakt_objset_free(set);
	return r;
}

/* --- duplicates ----------------------------------------------------------- */

static size_t obj_key(char *buf, size_t len, char kind, const char *ns, const char *name)
{
	int n = snprintf(buf, len, "%c%c%s%c%s", kind, '\0', ns ? ns : "", '\0', name);

	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

static int seen_add(json_t *seen, char kind, const char *ns, const char *name, json_t *where)
{
	char key[512];
	size_t n = obj_key(key, sizeof(key), kind, ns, name);

	return json_object_setn_new_nocheck(seen, key, n, where) ? -ENOMEM : 0;
}

static json_t *seen_get(json_t *seen, char kind, const char *ns, const char *name)
{
	char key[512];
	size_t n = obj_key(key, sizeof(key), kind, ns, name);

	return json_object_getn(seen, key, n);
}

/* Objects of earlier calls: their origin is not kept, only that they exist. */
static int seen_init(struct load *L)
{
	const struct vakt_objset *set = L->set;
	int r = 0;

	L->seen = json_object();
	if (!L->seen)
		return -ENOMEM;
	for (size_t i = 0; i < set->nns && !r; i++)
		r = seen_add(L->seen, 'N', NULL, set->ns[i]->name, json_null());
	for (size_t i = 0; i < set->npods && !r; i++)
		r = seen_add(L->seen, 'P', set->pods[i]->ns, set->pods[i]->name, json_null());
	for (size_t i = 0; i < set->npols && !r; i++)
		r = seen_add(L->seen, 'X', set->pols[i]->ns, set->pols[i]->name, json_null());
	return r;
}

static int check_dup(struct load *L, const char *where, const char *kind, char k,
		     const char *ns, const char *name)
{
	json_t *prev = seen_get(L->seen, k, ns, name);
	json_t *w;

	if (prev)
		return lerr(L->err, -EINVAL, "%s: %s %s%s%s: duplicate object (also in %s)", where,
			    kind, ns ? ns : "", ns ? "/" : "", name,
			    json_is_string(prev) ? json_string_value(prev) : "an earlier load");
	w = json_string(where);
	if (!w)
		return -ENOMEM;
	return seen_add(L->seen, k, ns, name, w);
}

/* --- objects and lists ---------------------------------------------------- */

static int add_object(struct load *L, json_t *obj, enum obj_kind k, const char *where)
{
	struct vakt_objset *set = L->set;
	int r;

	switch (k) {
	case K_NAMESPACE: {
		struct vakt_namespace *ns;

		r = vakt_decode_namespace(obj, where, L->o, &ns, L->err);
		if (!r)
			r = check_dup(L, where, "Namespace", 'N', NULL, ns->name);
		if (!r)
			r = grow((void **)&set->ns, set->nns);
		if (r) {
			vakt_namespace_free(ns);
			return r;
		}
		set->ns[set->nns++] = ns;
		return 0;
	}
	case K_POD: {
		struct vakt_pod *pod;

		r = vakt_decode_pod(obj, where, L->o, &pod, L->err);
		if (r)
			return r;
		/*
		 * Only a finished pod (Succeeded, Failed) decodes without an IP when
		 * one is required: it takes no part in traffic, so it is left out.
		 */
		if (L->o->require_pod_ip && !pod->nips) {
			log_debug("skipping finished pod", "origin=\"%s\" pod=%s/%s", where, pod->ns,
				  pod->name);
			vakt_pod_free(pod);
			return 0;
		}
		r = check_dup(L, where, "Pod", 'P', pod->ns, pod->name);
		if (!r)
			r = grow((void **)&set->pods, set->npods);
		if (r) {
			vakt_pod_free(pod);
			return r;
		}
		set->pods[set->npods++] = pod;
		return 0;
	}
	case K_POLICY: {
		struct vakt_policy *pol;

		r = vakt_decode_policy(obj, where, L->o, &pol, L->err);
		if (!r)
			r = check_dup(L, where, "NetworkPolicy", 'X', pol->ns, pol->name);
		if (!r)
			r = grow((void **)&set->pols, set->npols);
		if (r) {
			vakt_policy_free(pol);
			return r;
		}
		set->pols[set->npols++] = pol;
		return 0;
	}
	}
	return -EINVAL;
}

/* kind and apiVersion of a document or List item; NULL when absent. */
static int type_meta(struct load *L, json_t *obj, const char *where, const char **api,
		     const char **kind)
{
	json_t *a = json_object_get(obj, "apiVersion"), *k = json_object_get(obj, "kind");

	*api = NULL;
	*kind = NULL;
	if (a && !json_is_null(a) && !json_is_string(a))
		return lerr(L->err, -EINVAL, "%s: apiVersion: expected a string", where);
	if (k && !json_is_null(k) && !json_is_string(k))
		return lerr(L->err, -EINVAL, "%s: kind: expected a string", where);
	*api = a ? json_string_value(a) : NULL;
	*kind = k ? json_string_value(k) : NULL;
	return 0;
}

static void skip_object(const char *where, const char *api, const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kind, kinds[i].kind) != 0)
			continue;
		/* A policy under an unexpected apiVersion is worth a warning: it enforces nothing. */
		log_warn("skipping object of unsupported apiVersion",
			 "origin=\"%s\" kind=%s apiVersion=\"%s\" want=\"%s\"", where, kind, api,
			 kinds[i].api_version);
		return;
	}
	log_debug("skipping object of unsupported kind", "origin=\"%s\" kind=\"%s\" apiVersion=\"%s\"",
		  where, kind, api);
}

static const struct kind_desc *find_kind(const char *api, const char *kind, int list)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(api, kinds[i].api_version) &&
		    !strcmp(kind, list ? kinds[i].list_kind : kinds[i].kind))
			return &kinds[i];
	return NULL;
}

/*
 * An object, or a List. Items of typed lists (PodList, ...) may omit kind
 * and apiVersion, as the API server's list responses do; items of a
 * generic List carry their own.
 */
static int load_object(struct load *L, json_t *obj, const char *where,
		       const struct kind_desc *implied, int depth)
{
	const struct kind_desc *d;
	const char *api, *kind;
	json_t *items, *item;
	size_t i;
	int r;

	if (!json_is_object(obj))
		return lerr(L->err, -EINVAL, "%s: expected an object, got %s", where,
			    json_is_array(obj) ? "a list" : "a scalar");
	r = type_meta(L, obj, where, &api, &kind);
	if (r)
		return r;
	if (!kind && implied)
		return add_object(L, obj, implied->k, where);
	if (!kind || !*kind)
		return lerr(L->err, -EINVAL, "%s: kind: missing", where);
	if (!api || !*api) {
		if (!implied)
			return lerr(L->err, -EINVAL, "%s: %s: apiVersion: missing", where, kind);
		api = implied->api_version;
	}
	d = find_kind(api, kind, 0);
	if (d)
		return add_object(L, obj, d->k, where);
	d = find_kind(api, kind, 1);
	if (!d && strcmp(kind, "List") == 0 && strcmp(api, "v1") == 0) {
		if (depth)
			return lerr(L->err, -EINVAL, "%s: a List inside a List is not supported",
				    where);
	} else if (!d) {
		skip_object(where, api, kind);
		return 0;
	} else if (depth) {
		return lerr(L->err, -EINVAL, "%s: a %s inside a List is not supported", where, kind);
	}
	items = json_object_get(obj, "items");
	if (items && !json_is_null(items) && !json_is_array(items))
		return lerr(L->err, -EINVAL, "%s: %s: items: expected a list", where, kind);
	json_array_foreach(items, i, item) {
		char w[512];
		int n = snprintf(w, sizeof(w), "%s: items[%zu]", where, i);

		if (n >= (int)sizeof(w))
			return lerr(L->err, -EINVAL, "%s: origin name too long", kind);
		r = load_object(L, item, w, d, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

/* --- documents ------------------------------------------------------------ */

static int yaml_doc(void *arg, json_t *root, size_t index, size_t line)
{
	struct load *L = arg;
	char where[400];
	int n;

	if (json_is_null(root))
		return 0; /* an empty document, e.g. after a trailing --- */
	n = snprintf(where, sizeof(where), "%s: document %zu (line %zu)", L->origin, index, line);
	if (n >= (int)sizeof(where))
		return lerr(L->err, -EINVAL, "%.300s...: origin name too long", L->origin);
	return load_object(L, root, where, NULL, 0);
}

static size_t skip_space(const char *buf, size_t len, size_t pos)
{
	while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t' || buf[pos] == '\n' ||
			     buf[pos] == '\r'))
		pos++;
	return pos;
}

/* jansson counts from where this document began; report positions in the whole input. */
static int json_err(struct load *L, const char *buf, size_t start, const json_error_t *je)
{
	size_t line = 1, col0 = 0;

	for (size_t i = 0; i < start; i++) {
		if (buf[i] == '\n') {
			line++;
			col0 = 0;
		} else {
			col0++;
		}
	}
	if (je->line <= 0)
		return lerr(L->err, -EINVAL, "%s: invalid JSON: %s", L->origin, je->text);
	return lerr(L->err, -EINVAL, "%s:%zu:%zu: invalid JSON: %s", L->origin,
		    line + (size_t)je->line - 1,
		    (je->line == 1 ? col0 : 0) + (size_t)(je->column > 0 ? je->column : 0),
		    je->text);
}

/* A JSON text, or several concatenated (as a stream of kubectl -o json outputs). */
static int load_json(struct load *L, const char *buf, size_t len)
{
	size_t pos = 0, index = 0;
	char where[400];
	int r = 0, n;

	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		pos = 3;
	while ((pos = skip_space(buf, len, pos)) < len && !r) {
		json_error_t je;
		json_t *doc = json_loadb(buf + pos, len - pos,
					 JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);

		index++;
		if (!doc)
			return json_err(L, buf, pos, &je);
		n = snprintf(where, sizeof(where), "%s: document %zu", L->origin, index);
		if (n >= (int)sizeof(where))
			r = lerr(L->err, -EINVAL, "%.300s...: origin name too long", L->origin);
		else
			r = load_object(L, doc, where, NULL, 0);
		json_decref(doc);
		if (je.position <= 0)
			break;
		pos += (size_t)je.position;
	}
	return r;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* By name first; otherwise JSON if the first significant character opens a JSON text. */
static int is_json(const char *origin, const char *buf, size_t len)
{
	size_t pos = 0;

	if (ends_with(origin, ".json"))
		return 1;
	if (ends_with(origin, ".yaml") || ends_with(origin, ".yml"))
		return 0;
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		pos = 3;
	pos = skip_space(buf, len, pos);
	return pos < len && (buf[pos] == '{' || buf[pos] == '[');
}

static int load_buffer(struct load *L, const char *buf, size_t len, const char *origin)
{
	L->origin = origin;
	if (len > VAKT_LOAD_MAX_BYTES)
		return lerr(L->err, -EFBIG, "%s: larger than %u MiB", origin,
			    VAKT_LOAD_MAX_BYTES >> 20);
	if (is_json(origin, buf, len))
		return load_json(L, buf, len);
	return vakt_yaml_parse(buf, len, origin, yaml_doc, L, L->err);
}

/* --- files ---------------------------------------------------------------- */

static int read_fd(int fd, const char *name, char **out, size_t *outlen, struct vakt_error *err)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *p;
	ssize_t n;

	for (;;) {
		if (len == cap) {
			if (cap > VAKT_LOAD_MAX_BYTES) {
				free(buf);
				return lerr(err, -EFBIG, "%s: larger than %u MiB", name,
					    VAKT_LOAD_MAX_BYTES >> 20);
			}
			cap = cap ? 2 * cap : 65536;
			p = realloc(buf, cap + 1);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return lerr(err, -e, "%s: %s", name, strerror(e));
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (len > VAKT_LOAD_MAX_BYTES) {
		free(buf);
		return lerr(err, -EFBIG, "%s: larger than %u MiB", name, VAKT_LOAD_MAX_BYTES >> 20);
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

static int load_fd(struct load *L, int fd, const char *name)
{
	size_t len = 0;
	char *buf = NULL;
	int r = read_fd(fd, name, &buf, &len, L->err);

	if (r)
		return r;
	r = load_buffer(L, buf, len, name);
	free(buf);
	return r;
}

static int load_file(struct load *L, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return lerr(L->err, -errno, "%s: %s", path, strerror(errno));
	r = load_fd(L, fd, path);
	close(fd);
	return r;
}

static int manifest_name(const struct dirent *d)
{
	const char *n = d->d_name;

	/* Dot files include the ..data links of a mounted ConfigMap: read each file once. */
	if (n[0] == '.')
		return 0;
	return ends_with(n, ".yaml") || ends_with(n, ".yml") || ends_with(n, ".json");
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_dir(struct load *L, const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, manifest_name, by_name);
	int r = 0;

	if (n < 0)
		return lerr(L->err, -errno, "%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		char *path = NULL;
		struct stat st;

		if (!r && asprintf(&path, "%s/%s", dir, ents[i]->d_name) < 0) {
			path = NULL;
			r = -ENOMEM;
		}
		/* Regular files only, following symlinks; subdirectories are not read. */
		if (!r && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			r = load_file(L, path);
		free(path);
		free(ents[i]);
	}
	free(ents);
	return r;
}

/* --- entry points --------------------------------------------------------- */

static const struct vakt_load_opts default_opts;

static int load_begin(struct load *L, struct vakt_objset *set, const struct vakt_load_opts *o,
		      struct vakt_error *err)
{
	memset(L, 0, sizeof(*L));
	L->set = set;
	L->o = o ? o : &default_opts;
	L->err = err ? err : &L->scratch;
	L->start_ns = set->nns;
	L->start_pods = set->npods;
	L->start_pols = set->npols;
	L->err->msg[0] = '\0';
	return seen_init(L);
}

/* On error the set goes back to what it held before the call. */
static int load_end(struct load *L, int r)
{
	if (r) {
		truncate_set(L->set, L->start_ns, L->start_pods, L->start_pols);
		if (r == -ENOMEM && !L->err->msg[0])
			lerr(L->err, r, "%s: out of memory", L->origin ? L->origin : "load");
	}
	json_decref(L->seen);
	return r;
}

int vakt_load_buffer(struct vakt_objset *set, const char *buf, size_t len, const char *origin,
		     const struct vakt_load_opts *o, struct vakt_error *err)
{
	struct load L;
	int r = load_begin(&L, set, o, err);

	if (!r)
		r = load_buffer(&L, buf, len, origin ? origin : "<buffer>");
	return load_end(&L, r);
}

int vakt_load_path(struct vakt_objset *set, const char *path, const struct vakt_load_opts *o,
		   struct vakt_error *err)
{
	struct load L;
	struct stat st;
	int r = load_begin(&L, set, o, err);

	L.origin = path;
	if (r)
		return load_end(&L, r);
	if (!strcmp(path, "-"))
		r = load_fd(&L, STDIN_FILENO, "<stdin>");
	else if (stat(path, &st))
		r = lerr(L.err, -errno, "%s: %s", path, strerror(errno));
	else if (S_ISDIR(st.st_mode))
		r = load_dir(&L, path);
	else
		r = load_file(&L, path);
	return load_end(&L, r);
}
