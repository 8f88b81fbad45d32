/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dirsource.h - the manifest-directory source of vaktd (--objects DIR).
 *
 * Loads every manifest of DIR into the store, then watches DIR with inotify
 * from the event loop. A change is debounced (editors write in steps), the
 * directory is loaded again into a fresh object set, and only the
 * difference reaches the store: puts of new and changed objects, then
 * deletes of vanished ones. A directory that fails to load is logged with
 * the loader's message and changes nothing: the last good state stays.
 *
 * Like every source, it only produces store events; it knows nothing of
 * the compiler or the dataplane.
 */
#ifndef VAKT_DIRSOURCE_H
#define VAKT_DIRSOURCE_H

#include "loader.h"
#include "store.h"

struct vakt_loop;
struct vakt_dirsource;

/* Delay between the last inotify event and the reload. */
#define VAKT_DIRSOURCE_DEBOUNCE_MS 100

struct vakt_dirsource_stats {
	unsigned long reloads;        /* successful loads, the first one included */
	unsigned long reload_errors;  /* loads rejected (last good state kept) */
	unsigned long puts, deletes;  /* store events produced */
};

/*
 * Called after a reload changed the store (not when it changed nothing).
 * changed is the number of store events the reload produced; seconds the
 * time they took in the store (which includes the store listener's work,
 * i.e. the incremental compile).
 */
typedef void (*vakt_dirsource_cb)(void *arg, unsigned long changed, double seconds);

/*
 * Loads dir into store. If that first load fails the error is returned
 * (with err->msg) and nothing is watched: an agent must not start from an
 * empty state it took for the truth. loop may be NULL (no watching).
 */
int vakt_dirsource_open(struct vakt_loop *loop, const char *dir, struct vakt_store *store,
			vakt_dirsource_cb cb, void *arg, struct vakt_dirsource **out,
			struct vakt_error *err);
void vakt_dirsource_close(struct vakt_dirsource *ds);
/* Loads the directory again now and applies the difference; 0 or -errno. */
int vakt_dirsource_reload(struct vakt_dirsource *ds, struct vakt_error *err);
void vakt_dirsource_stats(const struct vakt_dirsource *ds, struct vakt_dirsource_stats *out);

/* Deep equality of the fields the compiler reads (resourceVersion ignored). */
int vakt_namespace_equal(const struct vakt_namespace *a, const struct vakt_namespace *b);
int vakt_pod_equal(const struct vakt_pod *a, const struct vakt_pod *b);
int vakt_policy_equal(const struct vakt_policy *a, const struct vakt_policy *b);

#endif /* VAKT_DIRSOURCE_H */
