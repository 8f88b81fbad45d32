/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader.h - Kubernetes manifests (YAML or JSON) to model objects.
 *
 * Used by vakt sim (-f PATH), vaktd --objects DIR, and, for single objects,
 * by the Kubernetes API client. Accepted shapes, defaults and the errors are
 * described in docs/manifests.md.
 *
 * Errors are returned as negative errno (-EINVAL for bad input) with
 * err->msg saying where: "<file>: document <n> (line <l>): <Kind>
 * <namespace>/<name>: <field path>: <problem>".
 */
#ifndef VAKT_LOADER_H
#define VAKT_LOADER_H

#include <stddef.h>

#include <jansson.h>

#include "model.h"
#include "store.h"

/* Largest file or buffer the loader reads, to bound memory. */
#define VAKT_LOAD_MAX_BYTES (256u << 20)

struct vakt_error {
	char msg[512];
};

/*
 * Objects loaded so far, in load order. Only the functions below add to or
 * remove from a set (the arrays grow by powers of two). Zero-initialise.
 */
struct vakt_objset {
	size_t nns, npods, npols;
	struct vakt_namespace **ns;
	struct vakt_pod **pods;
	struct vakt_policy **pols;
};

struct vakt_load_opts {
	int require_pod_ip; /* vakt sim: a pod without an IP is an error; the agent: allowed */
};

/*
 * path: a file (any name; .json is read as JSON, .yaml/.yml as YAML, other
 * names by their first character), a directory (its *.yaml, *.yml and *.json
 * regular files, sorted by name, not recursive, names starting with '.'
 * skipped), or "-" for standard input.
 * Appends to set. Duplicate objects (same kind, namespace, name) across
 * everything loaded into the same set are an error. On error the set is
 * left as it was before the call.
 * Returns 0 or -errno (-EINVAL for bad input) with err->msg naming file,
 * document index, kind ns/name and field. o (all defaults) and err may be NULL.
 */
int vakt_load_path(struct vakt_objset *set, const char *path, const struct vakt_load_opts *o,
		   struct vakt_error *err);
/* As vakt_load_path for a buffer; origin names it and picks the format as a file name does. */
int vakt_load_buffer(struct vakt_objset *set, const char *buf, size_t len, const char *origin,
		     const struct vakt_load_opts *o, struct vakt_error *err);
/*
 * Frees remaining objects (NULL slots, objects a caller moved out, are
 * skipped); leaves set empty and reusable.
 */
void vakt_objset_free(struct vakt_objset *set);
/*
 * Moves every object into the store (the store takes ownership), leaving
 * set empty. Namespaces first, then pods, then policies. Stops at the first
 * store error (the objects not yet moved are freed) and returns it.
 */
int vakt_objset_to_store(struct vakt_objset *set, struct vakt_store *s);

/*
 * Decoders of single objects from JSON, for the Kubernetes API client too:
 * items of list responses carry no kind/apiVersion, so these do not require
 * them. origin names the source in errors. o and err may be NULL.
 */
int vakt_decode_namespace(json_t *obj, const char *origin, const struct vakt_load_opts *o,
			  struct vakt_namespace **out, struct vakt_error *err);
int vakt_decode_pod(json_t *obj, const char *origin, const struct vakt_load_opts *o,
		    struct vakt_pod **out, struct vakt_error *err);
int vakt_decode_policy(json_t *obj, const char *origin, const struct vakt_load_opts *o,
		       struct vakt_policy **out, struct vakt_error *err);

#endif /* VAKT_LOADER_H */
