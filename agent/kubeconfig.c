// SPDX-License-Identifier: Apache-2.0
/*
 * kubeconfig.c - where the API server is and how to authenticate: a
 * kubeconfig file (clusters, users, contexts, current-context) or the
 * in-cluster service account.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kube.h"
#include "yaml_json.h"

/* A kubeconfig is small; anything larger is not one. */
#define KUBECONFIG_MAX_BYTES (4u << 20)

static int cfg_err(struct vakt_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfg_err(struct vakt_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void vakt_kube_config_free(struct vakt_kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	memset(c, 0, sizeof(*c));
}

static int b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Standard base64, whitespace ignored, padding optional. -EINVAL on other bytes. */
static int b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in), o = 0;
	unsigned acc = 0, bits = 0;
	char *buf = malloc(n / 4 * 3 + 4);

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		if (ch == '=' || ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t')
			continue;
		v = b64val(ch);
		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

static int doc_cb(void *arg, json_t *root, size_t index, size_t line)
{
	json_t **out = arg;

	(void)line;
	if (index == 1)
		*out = json_incref(root);
	return 0;
}

static char *read_small_file(const char *path, size_t max, size_t *len, int *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	*err = 0;
	if (!f) {
		*err = -errno;
		return NULL;
	}
	buf = malloc(max + 1);
	if (!buf) {
		*err = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		*err = ferror(f) ? -EIO : -EFBIG;
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
out:
	fclose(f);
	return buf;
}

/* The entry of a named list (clusters, users, contexts) called name, or NULL. */
static json_t *named(json_t *root, const char *list, const char *name, const char *field)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && !strcmp(n, name))
			return json_object_get(e, field);
	}
	return NULL;
}

static char *fmt_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* asprintf that returns NULL on failure (asprintf leaves its pointer undefined). */
static char *fmt_str(const char *fmt, ...)
{
	char *out;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&out, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : out;
}

/* A file name relative to the kubeconfig's directory, as kubectl resolves it. */
static char *resolve(const char *kcpath, const char *file)
{
	const char *slash = strrchr(kcpath, '/');

	if (file[0] == '/' || !slash)
		return strdup(file);
	return fmt_str("%.*s/%s", (int)(slash - kcpath), kcpath, file);
}

/* Reads a string field; *dst stays NULL if absent. -EINVAL if not a string. */
static int str_field(json_t *obj, const char *key, const char **dst, const char *path,
		     const char *where, struct vakt_error *err)
{
	json_t *v = json_object_get(obj, key);

	*dst = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cfg_err(err, -EINVAL, "%s: %s.%s: expected a string", path, where, key);
	*dst = json_string_value(v);
	return 0;
}

struct field_map {
	const char *file_key, *data_key;
	char **file;
	char **data;
	size_t *len;
};

/* file or base64 -data variants (certificate-authority, client-certificate, client-key). */
static int file_or_data(const char *path, json_t *obj, const char *where,
			const struct field_map *m, struct vakt_error *err)
{
	const char *file, *data;
	int r;

	r = str_field(obj, m->file_key, &file, path, where, err);
	if (!r)
		r = str_field(obj, m->data_key, &data, path, where, err);
	if (r)
		return r;
	if (data && *data) {
		r = b64_decode(data, m->data, m->len);
		if (r == -EINVAL)
			return cfg_err(err, r, "%s: %s.%s: not valid base64", path, where,
				       m->data_key);
		return r;
	}
	if (file && *file) {
		*m->file = resolve(path, file);
		return *m->file ? 0 : -ENOMEM;
	}
	return 0;
}

static int load_cluster(const char *path, json_t *cl, const char *where,
			struct vakt_kube_config *c, struct vakt_error *err)
{
	const struct field_map ca = { "certificate-authority", "certificate-authority-data",
				      &c->ca_file, &c->ca_data, &c->ca_len };
	const char *server;
	json_t *insecure;
	size_t n;
	int r;

	if (!json_is_object(cl))
		return cfg_err(err, -EINVAL, "%s: %s: missing or not a mapping", path, where);
	r = str_field(cl, "server", &server, path, where, err);
	if (r)
		return r;
	if (!server || strncmp(server, "https://", 8))
		return cfg_err(err, -EINVAL, "%s: %s.server: %s", path, where,
			       server ? "must be an https:// URL" : "missing");
	c->server = strdup(server);
	if (!c->server)
		return -ENOMEM;
	n = strlen(c->server);
	while (n > 8 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	insecure = json_object_get(cl, "insecure-skip-tls-verify");
	if (insecure && !json_is_boolean(insecure))
		return cfg_err(err, -EINVAL, "%s: %s.insecure-skip-tls-verify: expected true/false",
			       path, where);
	c->insecure = json_is_true(insecure);
	return file_or_data(path, cl, where, &ca, err);
}

static int load_user(const char *path, json_t *u, const char *where,
		     struct vakt_kube_config *c, struct vakt_error *err)
{
	const struct field_map cert = { "client-certificate", "client-certificate-data",
					&c->cert_file, &c->cert_data, &c->cert_len };
	const struct field_map key = { "client-key", "client-key-data", &c->key_file, &c->key_data,
				       &c->key_len };
	const char *token, *token_file;
	int r;

	if (!u || json_is_null(u))
		return 0; /* anonymous (or the CA is enough for a test server) */
	if (!json_is_object(u))
		return cfg_err(err, -EINVAL, "%s: %s: not a mapping", path, where);
	if (json_object_get(u, "exec") || json_object_get(u, "auth-provider"))
		return cfg_err(err, -ENOTSUP,
			       "%s: %s: exec and auth-provider credentials are not supported: "
			       "use a token, tokenFile or client certificate",
			       path, where);
	if (json_object_get(u, "username") || json_object_get(u, "password"))
		return cfg_err(err, -ENOTSUP, "%s: %s: basic auth is not supported", path, where);
	r = str_field(u, "token", &token, path, where, err);
	if (!r)
		r = str_field(u, "tokenFile", &token_file, path, where, err);
	if (r)
		return r;
	if (token && *token) {
		c->token = strdup(token);
		if (!c->token)
			return -ENOMEM;
	} else if (token_file && *token_file) {
		c->token_file = resolve(path, token_file);
		if (!c->token_file)
			return -ENOMEM;
	}
	r = file_or_data(path, u, where, &cert, err);
	if (!r)
		r = file_or_data(path, u, where, &key, err);
	if (r)
		return r;
	if (!!(c->cert_file || c->cert_data) != !!(c->key_file || c->key_data))
		return cfg_err(err, -EINVAL, "%s: %s: a client certificate needs its key and the "
			       "other way round", path, where);
	return 0;
}

static int load_tree(const char *path, json_t *root, const char *context,
		     struct vakt_kube_config *c, struct vakt_error *err)
{
	const char *cluster, *user;
	char where[300];
	json_t *ctx;
	int r;

	if (!json_is_object(root))
		return cfg_err(err, -EINVAL, "%s: not a kubeconfig (expected a mapping)", path);
	if (!context) {
		r = str_field(root, "current-context", &context, path, "kubeconfig", err);
		if (r)
			return r;
		if (!context || !*context)
			return cfg_err(err, -EINVAL, "%s: current-context is not set", path);
	}
	ctx = named(root, "contexts", context, "context");
	if (!json_is_object(ctx))
		return cfg_err(err, -ENOENT, "%s: context \"%s\" not found", path, context);
	snprintf(where, sizeof(where), "context \"%s\"", context);
	r = str_field(ctx, "cluster", &cluster, path, where, err);
	if (!r)
		r = str_field(ctx, "user", &user, path, where, err);
	if (r)
		return r;
	if (!cluster)
		return cfg_err(err, -EINVAL, "%s: %s: no cluster", path, where);
	snprintf(where, sizeof(where), "cluster \"%s\"", cluster);
	r = load_cluster(path, named(root, "clusters", cluster, "cluster"), where, c, err);
	if (r || !user)
		return r;
	snprintf(where, sizeof(where), "user \"%s\"", user);
	if (!named(root, "users", user, "user"))
		return cfg_err(err, -ENOENT, "%s: %s not found", path, where);
	return load_user(path, named(root, "users", user, "user"), where, c, err);
}

int vakt_kubeconfig_load(const char *path, const char *context, struct vakt_kube_config *out,
			 struct vakt_error *err)
{
	json_t *root = NULL;
	size_t len = 0;
	char *buf;
	int r;

	memset(out, 0, sizeof(*out));
	buf = read_small_file(path, KUBECONFIG_MAX_BYTES, &len, &r);
	if (!buf)
		return cfg_err(err, r, "%s: cannot read kubeconfig: %s", path, strerror(-r));
	r = vakt_yaml_parse(buf, len, path, doc_cb, &root, err);
	free(buf);
	if (r)
		goto out;
	if (!root) {
		r = cfg_err(err, -EINVAL, "%s: empty kubeconfig", path);
		goto out;
	}
	r = load_tree(path, root, context, out, err);
out:
	json_decref(root);
	if (r)
		vakt_kube_config_free(out);
	return r;
}

int vakt_kube_incluster(const char *sa_dir, struct vakt_kube_config *out,
			struct vakt_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	if (!sa_dir)
		sa_dir = VAKT_KUBE_SA_DIR;
	if (!host || !*host || !port || !*port)
		return cfg_err(err, -ENOENT,
			       "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set "
			       "(use --kubeconfig)");
	/* An IPv6 service address needs brackets in a URL. */
	out->server = strchr(host, ':') ? fmt_str("https://[%s]:%s", host, port)
					: fmt_str("https://%s:%s", host, port);
	out->token_file = fmt_str("%s/token", sa_dir);
	out->ca_file = fmt_str("%s/ca.crt", sa_dir);
	if (!out->server || !out->token_file || !out->ca_file) {
		r = -ENOMEM;
		goto fail;
	}
	if (stat(out->token_file, &st) || stat(out->ca_file, &st)) {
		r = cfg_err(err, -errno, "in-cluster: cannot read the service account's %s and "
			    "ca.crt in %s: %s", "token", sa_dir, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	vakt_kube_config_free(out);
	return r;
}
