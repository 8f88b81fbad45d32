/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attach.h - putting our TC programs on an interface and taking them off,
 * without ever touching anybody else's.
 *
 * Two mechanisms, one per hook (ingress, egress) and interface:
 *  - tcx (Linux 6.6+): a BPF link created with BPF_LINK_CREATE, pinned at
 *    <links dir>/<ifindex>-<hook> so it survives the agent. The pin is what
 *    makes a link ours. Our link goes first in the hook's program list, so
 *    no other program can redirect a packet around the policy.
 *  - clsact: a cls_bpf direct-action filter with our fixed handle and
 *    priority. A filter is ours when it sits at that handle and priority
 *    AND its program carries one of our program names, read from the
 *    filter's TCA_BPF_NAME in an RTM_GETTFILTER dump ("<name>:[<id>]", as
 *    libbpf's bpf_tc_attach() sets it). Asking the program itself
 *    (BPF_PROG_GET_FD_BY_ID) would need CAP_SYS_ADMIN, which vaktd lacks.
 *
 * Re-attaching is idempotent and adopts what a previous agent left: a pinned
 * link is updated in place to the new program, a clsact filter is replaced
 * atomically. There is never a moment without a program on the hook.
 *
 * Interface gone (ENODEV, ENXIO): attach returns -ENODEV and logs it, detach
 * treats it as done.
 */
#ifndef VAKT_ATTACH_H
#define VAKT_ATTACH_H

#include <stddef.h>
#include <stdint.h>

/* Attach types from linux/bpf.h of 6.6+, newer than the installed headers. */
#define VAKT_BPF_TCX_INGRESS 46
#define VAKT_BPF_TCX_EGRESS 47

/* clsact filter identity: 'vakt' as handle; a priority below tc's automatic ones (49152 down). */
#define VAKT_TC_HANDLE 0x76616b74U
#define VAKT_TC_PRIO 16

enum vakt_hook { VAKT_HOOK_INGRESS = 0, VAKT_HOOK_EGRESS = 1 };

enum vakt_attach_mode { VAKT_ATTACH_TCX, VAKT_ATTACH_CLSACT };

struct vakt_attacher {
	enum vakt_attach_mode mode;
	char links_dir[256];       /* tcx pins */
	const char *const *names;  /* our program names (NULL-terminated): how we recognise ours */
};

/* 1 if this kernel has tcx (probed read-only with BPF_PROG_QUERY on lo). */
int vakt_tcx_supported(void);

/* Put prog_fd on the hook with the attacher's mode; replaces an earlier program of ours
 * on that hook (also one left by the other mode, after the new one is in place). */
int vakt_attach_hook(const struct vakt_attacher *a, int ifindex, const char *ifname,
		     enum vakt_hook hook, int prog_fd);
/* Remove ours from the hook, in both modes: 1 if a clsact filter of ours was removed (the
 * qdisc may now be empty), else 0, also when there was nothing or the interface is gone. */
int vakt_detach_hook(const struct vakt_attacher *a, int ifindex, const char *ifname,
		     enum vakt_hook hook);
/* Remove the clsact qdisc when no filter (of anyone) is left on it. */
int vakt_clsact_remove_if_empty(int ifindex, const char *ifname);

/* Which program of ours is on the hook: its id, 0 if none, -errno. */
int vakt_hook_prog_id(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook);

/*
 * Read-only lookups that need no CAP_SYS_ADMIN (CAP_BPF for the pin, nothing for the dump):
 *  - vakt_clsact_prog: our program in the filter at our handle and priority: its id, and its
 *    name in name (may be NULL); 0 if there is no filter, -EBUSY if the filter is not ours.
 *  - vakt_tcx_pinned_prog: the program of our pinned link on the hook (a->links_dir), 0 if
 *    there is no live pin. Unlike vakt_hook_prog_id(), it never removes a stale pin.
 */
int vakt_clsact_prog(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook, char *name,
		     size_t len);
int vakt_tcx_pinned_prog(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook);

/* Detach every pinned tcx link in links_dir whose interface is gone (defunct links). */
int vakt_attach_sweep_defunct(const struct vakt_attacher *a);
/* Detach all of ours in this network namespace: pinned links and clsact filters on every interface. */
int vakt_attach_remove_all(const struct vakt_attacher *a);

/* Helpers shared with the tests. */
int vakt_prog_id_of_fd(int prog_fd);
/* Needs CAP_SYS_ADMIN (BPF_PROG_GET_FD_BY_ID), so -EPERM in vaktd: attach only falls back to it
 * for a filter at our handle that reports no name (not one of ours), where EPERM means foreign. */
int vakt_prog_name_by_id(uint32_t id, char *name, size_t len);
/* Programs on a tcx hook, in order (ids), as the kernel reports them. */
int vakt_tcx_query(int ifindex, enum vakt_hook hook, uint32_t *ids, uint32_t *n);

#endif /* VAKT_ATTACH_H */
