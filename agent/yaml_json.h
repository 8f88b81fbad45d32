/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml_json.h - YAML streams to jansson trees, one document at a time, so
 * that YAML and JSON manifests share one decoding path (agent/decode.c).
 *
 * Scalars are typed like Kubernetes' YAML (go-yaml): plain 80 is an integer
 * (0x1F hex, 0o17 and 017 octal, 1_000 too), "80" a string, true/false a
 * boolean, null/~/empty a null; yes/no/on/off/y/n stay strings (YAML 1.2).
 * Anchors and aliases are supported: an alias shares the anchored tree
 * (json_incref), and the nodes aliases add are bounded (billion laughs);
 * merge keys (<<) are applied. Nesting depth is bounded. Duplicate mapping
 * keys are an error, as they are for JSON (JSON_REJECT_DUPLICATES).
 */
#ifndef VAKT_YAML_JSON_H
#define VAKT_YAML_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "loader.h"

/* Deepest nesting of mappings and sequences accepted in one document. */
#define VAKT_YAML_MAX_DEPTH 128
/* Most nodes that aliases may add to one document, counting expansion. */
#define VAKT_YAML_MAX_ALIAS_NODES 1000000

/*
 * Called once per document with its root (a null for an empty document) and
 * its 1-based index and first line. The root stays owned by the parser.
 * A negative return stops parsing and is returned.
 */
typedef int (*vakt_yaml_doc_fn)(void *arg, json_t *root, size_t index, size_t line);

/* Returns 0 or a negative errno; -EINVAL for bad YAML, with err naming origin, line and column. */
int vakt_yaml_parse(const char *buf, size_t len, const char *origin, vakt_yaml_doc_fn fn,
		    void *arg, struct vakt_error *err);

#endif /* VAKT_YAML_JSON_H */
