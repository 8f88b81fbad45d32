/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the object store: namespaces, pods and policies by key.
 *
 * The store only holds state. Sources put and delete objects; the store
 * takes ownership of what is put and tells its listener (the compiler) what
 * changed, with the old and the new object, after the change is made. It
 * never calls back into a source.
 */
#ifndef VAKT_STORE_H
#define VAKT_STORE_H

#include <stddef.h>

#include "model.h"

struct vakt_store;

struct vakt_store_listener {
	void *arg;
	/* old == NULL: added; new == NULL: deleted. Objects stay valid during the call only. */
	void (*namespace_changed)(void *arg, const struct vakt_namespace *old,
				  const struct vakt_namespace *cur);
	void (*pod_changed)(void *arg, const struct vakt_pod *old, const struct vakt_pod *cur);
	void (*policy_changed)(void *arg, const struct vakt_policy *old,
			       const struct vakt_policy *cur);
};

struct vakt_store *vakt_store_new(void);
void vakt_store_free(struct vakt_store *s);
void vakt_store_set_listener(struct vakt_store *s, const struct vakt_store_listener *l);

/* Take ownership of the object (also on error, when it is freed). Replaces
 * an object with the same key. Return 0 or -errno. */
int vakt_store_put_namespace(struct vakt_store *s, struct vakt_namespace *ns);
int vakt_store_put_pod(struct vakt_store *s, struct vakt_pod *pod);
int vakt_store_put_policy(struct vakt_store *s, struct vakt_policy *pol);

/* Return 0, or -ENOENT if there was no such object. */
int vakt_store_del_namespace(struct vakt_store *s, const char *name);
int vakt_store_del_pod(struct vakt_store *s, const char *ns, const char *name);
int vakt_store_del_policy(struct vakt_store *s, const char *ns, const char *name);

const struct vakt_namespace *vakt_store_namespace(const struct vakt_store *s, const char *name);
const struct vakt_pod *vakt_store_pod(const struct vakt_store *s, const char *ns,
				      const char *name);
/* The pod that has this address (hostNetwork pods excluded), or NULL. */
const struct vakt_pod *vakt_store_pod_by_addr(const struct vakt_store *s,
					      const struct vakt_addr *a);
const struct vakt_policy *vakt_store_policy(const struct vakt_store *s, const char *ns,
					    const char *name);

size_t vakt_store_count_namespaces(const struct vakt_store *s);
size_t vakt_store_count_pods(const struct vakt_store *s);
size_t vakt_store_count_policies(const struct vakt_store *s);

/*
 * Iteration. The callback returns 0 to go on, anything else stops the walk
 * and is returned. The store must not be changed during a walk. Order is
 * unspecified; the _sorted variants fill a caller-freed array sorted by
 * namespace then name.
 */
int vakt_store_foreach_namespace(const struct vakt_store *s,
				 int (*cb)(void *arg, const struct vakt_namespace *ns), void *arg);
int vakt_store_foreach_pod(const struct vakt_store *s,
			   int (*cb)(void *arg, const struct vakt_pod *pod), void *arg);
int vakt_store_foreach_policy(const struct vakt_store *s,
			      int (*cb)(void *arg, const struct vakt_policy *pol), void *arg);
/* Policies of one namespace only: the common case for the compiler. */
int vakt_store_foreach_policy_in(const struct vakt_store *s, const char *ns,
				 int (*cb)(void *arg, const struct vakt_policy *pol), void *arg);
/* Pods of one namespace only. */
int vakt_store_foreach_pod_in(const struct vakt_store *s, const char *ns,
			      int (*cb)(void *arg, const struct vakt_pod *pod), void *arg);
int vakt_store_pods_sorted(const struct vakt_store *s, const struct vakt_pod ***out, size_t *n);

#endif /* VAKT_STORE_H */
