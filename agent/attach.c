// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <libmnl/libmnl.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "attach.h"
#include "log.h"

/* From linux/bpf.h of 6.6+ (the installed uapi headers predate tcx). */
#define TCX_F_BEFORE (1U << 3)
#define TCX_LINK_TYPE 11 /* BPF_LINK_TYPE_TCX */

/* The BPF_LINK_CREATE attribute prefix used for tcx. */
struct tcx_link_create_attr {
	uint32_t prog_fd;
	uint32_t target_ifindex;
	uint32_t attach_type;
	uint32_t flags;
	uint32_t relative_fd;
	uint32_t pad;
	uint64_t expected_revision;
};

/* The bpf_link_info prefix a tcx link fills: common header, then tcx.{ifindex, attach_type}. */
struct tcx_link_info {
	uint32_t type;
	uint32_t id;
	uint32_t prog_id;
	uint32_t pad;
	uint32_t ifindex;
	uint32_t attach_type;
	uint64_t spare[6];
};

static const char *const hook_names[] = { "ingress", "egress" };

static uint32_t tcx_type(enum vakt_hook hook)
{
	return hook == VAKT_HOOK_INGRESS ? VAKT_BPF_TCX_INGRESS : VAKT_BPF_TCX_EGRESS;
}

static int gone(int err)
{
	return err == -ENODEV || err == -ENXIO;
}

int vakt_tcx_query(int ifindex, enum vakt_hook hook, uint32_t *ids, uint32_t *n)
{
	uint32_t attach_flags = 0;

	if (bpf_prog_query(ifindex, (enum bpf_attach_type)tcx_type(hook), 0, &attach_flags, ids, n))
		return -errno;
	return 0;
}

int vakt_tcx_supported(void)
{
	uint32_t ids[1], n = 1;

	/* lo exists in every network namespace, and a query changes nothing. */
	return vakt_tcx_query(1, VAKT_HOOK_INGRESS, ids, &n) == 0;
}

int vakt_prog_id_of_fd(int prog_fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	return (int)info.id;
}

int vakt_prog_name_by_id(uint32_t id, char *name, size_t len)
{
	struct bpf_prog_info info = {};
	uint32_t ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		err = -errno;
	else
		snprintf(name, len, "%s", info.name);
	close(fd);
	return err;
}

static int is_our_name(const struct vakt_attacher *a, const char *name)
{
	for (const char *const *n = a->names; n && *n; n++)
		/* The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a program name. */
		if (!strncmp(*n, name, BPF_OBJ_NAME_LEN - 1))
			return 1;
	return 0;
}

static void pin_path(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook, char *buf,
		     size_t len)
{
	snprintf(buf, len, "%s/%d-%s", a->links_dir, ifindex, hook_names[hook]);
}

static int link_info(int fd, struct tcx_link_info *info)
{
	uint32_t len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return -errno;
	return 0;
}

/* Our pinned link for the hook, read-only: fd >= 0 if it is live on this interface, -ENOENT if
 * there is none, -ESTALE if the pin holds a link that is not (interface gone, ifindex reused). */
static int open_pinned_link(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook,
			    struct tcx_link_info *info, char *path, size_t len)
{
	int fd;

	memset(info, 0, sizeof(*info));
	pin_path(a, ifindex, hook, path, len);
	/* BPF_OBJ_GET needs CAP_BPF and access to the pin, not CAP_SYS_ADMIN. */
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (!link_info(fd, info) && info->type == TCX_LINK_TYPE && (int)info->ifindex == ifindex &&
	    info->attach_type == tcx_type(hook))
		return fd;
	close(fd);
	return -ESTALE;
}

/* As open_pinned_link(), but a stale pin is detached and removed on the way (-ENOENT). */
static int pinned_link(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook,
		       struct tcx_link_info *info)
{
	char path[320];
	int fd = open_pinned_link(a, ifindex, hook, info, path, sizeof(path));

	if (fd != -ESTALE)
		return fd;
	log_info("removing stale tcx link pin", "path=%s link_ifindex=%u", path, info->ifindex);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
	return -ENOENT;
}

int vakt_tcx_pinned_prog(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook)
{
	struct tcx_link_info info;
	char path[320];
	int fd = open_pinned_link(a, ifindex, hook, &info, path, sizeof(path));

	if (fd == -ENOENT || fd == -ESTALE)
		return 0;
	if (fd < 0)
		return fd;
	close(fd);
	return (int)info.prog_id;
}

static int tcx_create(int ifindex, enum vakt_hook hook, int prog_fd)
{
	struct tcx_link_create_attr attr = {
		.prog_fd = (uint32_t)prog_fd,
		.target_ifindex = (uint32_t)ifindex,
		.attach_type = tcx_type(hook),
		.flags = TCX_F_BEFORE, /* relative_fd 0: at the head of the list */
	};
	int fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));

	return fd < 0 ? -errno : fd;
}

static int attach_tcx(const struct vakt_attacher *a, int ifindex, const char *ifname,
		      enum vakt_hook hook, int prog_fd)
{
	struct tcx_link_info info;
	char path[320];
	int fd, err;

	fd = pinned_link(a, ifindex, hook, &info);
	if (fd >= 0) {
		/* Adopt: swap the program under the existing link, no gap on the hook. */
		err = (int)info.prog_id == vakt_prog_id_of_fd(prog_fd) ? 0 :
		      bpf_link_update(fd, prog_fd, NULL) ? -errno : 0;
		close(fd);
		if (err)
			log_error("tcx link update failed", "ifname=%s ifindex=%d hook=%s err=%d",
				  ifname, ifindex, hook_names[hook], err);
		return err;
	}
	if (fd != -ENOENT)
		return fd;
	fd = tcx_create(ifindex, hook, prog_fd);
	if (fd < 0)
		return fd;
	pin_path(a, ifindex, hook, path, sizeof(path));
	if (bpf_obj_pin(fd, path)) {
		/* Unpinned, the link would vanish with the agent: better not attached at all. */
		err = -errno;
		log_error("tcx link pin failed", "ifname=%s ifindex=%d path=%s err=%d", ifname,
			  ifindex, path, err);
		bpf_link_detach(fd);
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

/*
 * libbpf prints the kernel's extack message as a warning for every failed tc request, but
 * "no qdisc", "no such filter" and "qdisc exists" are answers here, not problems: mute them
 * for the calls whose errors we interpret (and log ourselves when they matter).
 */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static int tc_hook_create_quiet(struct bpf_tc_hook *h)
{
	libbpf_print_fn_t old = libbpf_set_print(quiet_print);
	int err = bpf_tc_hook_create(h);

	libbpf_set_print(old);
	return err;
}

static void tc_hook_init(struct bpf_tc_hook *h, int ifindex, enum vakt_hook hook)
{
	memset(h, 0, sizeof(*h));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = hook == VAKT_HOOK_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

static void tc_opts_init(struct bpf_tc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->sz = sizeof(*o);
	o->handle = VAKT_TC_HANDLE;
	o->priority = VAKT_TC_PRIO;
}

/*
 * One filter as an RTM_GETTFILTER dump reports it. The kernel fills all of this for anyone
 * who asks, with no capability at all; that is why clsact filters are identified from here:
 * asking for the program itself (BPF_PROG_GET_FD_BY_ID) needs CAP_SYS_ADMIN, which vaktd
 * does not have (only BPF, NET_ADMIN and PERFMON).
 */
struct tc_filter {
	uint32_t handle;
	uint32_t chain;
	uint32_t prog_id;   /* TCA_BPF_ID, 0 if none */
	char kind[16];      /* TCA_KIND: "bpf" for cls_bpf */
	char name[256];     /* TCA_BPF_NAME, "" if none: whatever the attaching tool set */
};

typedef void (*tc_filter_fn)(const struct tc_filter *f, void *arg);

static int tca_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	/* Attributes newer than our headers are not ours to read. */
	if (mnl_attr_type_valid(attr, TCA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int tca_bpf_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, TCA_BPF_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static void copy_str_attr(const struct nlattr *attr, char *buf, size_t len)
{
	if (attr && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(buf, len, "%s", mnl_attr_get_str(attr));
}

static uint32_t u32_attr(const struct nlattr *attr)
{
	return attr && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0 ? mnl_attr_get_u32(attr) : 0;
}

static void parse_filter(const struct nlmsghdr *m, struct tc_filter *f)
{
	const struct nlattr *tb[TCA_MAX + 1] = {}, *bpf[TCA_BPF_MAX + 1] = {};
	const struct tcmsg *tc = mnl_nlmsg_get_payload(m);

	memset(f, 0, sizeof(*f));
	f->handle = tc->tcm_handle;
	if (mnl_attr_parse(m, sizeof(*tc), tca_attr, tb) < 0)
		return;
	f->chain = u32_attr(tb[TCA_CHAIN]);
	copy_str_attr(tb[TCA_KIND], f->kind, sizeof(f->kind));
	if (strcmp(f->kind, "bpf") != 0 || !tb[TCA_OPTIONS] ||
	    mnl_attr_parse_nested(tb[TCA_OPTIONS], tca_bpf_attr, bpf) < 0)
		return;
	f->prog_id = u32_attr(bpf[TCA_BPF_ID]);
	copy_str_attr(bpf[TCA_BPF_NAME], f->name, sizeof(f->name));
}

/*
 * Every filter of chain 0 (or of all chains: chain < 0) on one clsact direction, at priority
 * prio (0: any), through fn. The dump also reports one entry per priority without a handle.
 * -EINVAL: no clsact qdisc.
 */
static int tc_filter_dump(int ifindex, uint32_t parent, uint16_t prio, int chain, tc_filter_fn fn,
			  void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE > 16384 ? MNL_SOCKET_BUFFER_SIZE : 16384];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct tcmsg *tc;
	unsigned seq = (unsigned)time(NULL), portid;
	int err = 0;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETTFILTER;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	tc = mnl_nlmsg_put_extra_header(nlh, sizeof(*tc));
	tc->tcm_family = AF_UNSPEC;
	tc->tcm_ifindex = ifindex;
	tc->tcm_parent = parent;
	/* The kernel filters the dump by the priority in tcm_info's upper half. */
	tc->tcm_info = TC_H_MAKE((uint32_t)prio << 16, 0);
	if (chain >= 0)
		mnl_attr_put_u32(nlh, TCA_CHAIN, (uint32_t)chain);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		const struct nlmsghdr *m;
		int left;

		if (n < 0) {
			err = -errno;
			break;
		}
		left = (int)n;
		for (m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, left);
		     m = mnl_nlmsg_next(m, &left)) {
			struct tc_filter f;

			if (m->nlmsg_seq != seq || m->nlmsg_pid != portid)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);

				err = e->error;
				goto out;
			}
			if (m->nlmsg_type == NLMSG_DONE)
				goto out;
			if (m->nlmsg_type != RTM_NEWTFILTER ||
			    m->nlmsg_len < mnl_nlmsg_size(sizeof(struct tcmsg)))
				continue;
			parse_filter(m, &f);
			fn(&f, arg);
		}
	}
out:
	mnl_socket_close(nl);
	return err;
}

static uint32_t clsact_parent(enum vakt_hook hook)
{
	return TC_H_MAKE(TC_H_CLSACT, hook == VAKT_HOOK_INGRESS ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

struct filter_find {
	struct tc_filter *out;
	int found;
};

static void find_ours_at_handle(const struct tc_filter *f, void *arg)
{
	struct filter_find *ff = arg;

	if (f->handle == VAKT_TC_HANDLE && f->chain == 0) {
		*ff->out = *f;
		ff->found = 1;
	}
}

/* The filter at our handle and priority (chain 0, where we attach): 1 found, 0 none, -errno. */
static int clsact_filter(int ifindex, enum vakt_hook hook, struct tc_filter *f)
{
	struct filter_find ff = { .out = f };
	int err = tc_filter_dump(ifindex, clsact_parent(hook), VAKT_TC_PRIO, 0, find_ours_at_handle,
				 &ff);

	/* No clsact qdisc (EINVAL) or nothing there (ENOENT): nothing of ours. */
	if (err == -EINVAL || err == -ENOENT)
		return 0;
	return err ? err : ff.found;
}

/*
 * The program name in a filter's TCA_BPF_NAME. libbpf's bpf_tc_attach() (how we attach) sets
 * it to "<program name>:[<program id>]", with the name as the kernel keeps it (15 characters);
 * a bracketed id that is not the filter's program means the name was made up for another
 * program, so it proves nothing.
 */
static int filter_prog_name(const struct tc_filter *f, char *name, size_t len)
{
	const char *br = strstr(f->name, ":[");
	size_t n = br ? (size_t)(br - f->name) : strlen(f->name);

	if (br) {
		char *end;
		unsigned long id = strtoul(br + 2, &end, 10);

		if (end == br + 2 || strcmp(end, "]") != 0 || id != f->prog_id)
			return -EINVAL;
	}
	if (!n || n >= len)
		return -EINVAL;
	memcpy(name, f->name, n);
	name[n] = '\0';
	return 0;
}

/* Our program name for the filter's program, or -errno if it is not ours or cannot be told. */
static int filter_ours_name(const struct vakt_attacher *a, const struct tc_filter *f, char *name,
			    size_t len)
{
	int err;

	if (strcmp(f->kind, "bpf") != 0 || !f->prog_id)
		return -EBUSY;
	if (f->name[0])
		err = filter_prog_name(f, name, len);
	else /* attached without a name: only a caller with CAP_SYS_ADMIN can ask the program */
		err = vakt_prog_name_by_id(f->prog_id, name, len);
	return !err && is_our_name(a, name) ? 0 : -EBUSY;
}

int vakt_clsact_prog(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook, char *name,
		     size_t len)
{
	char buf[64]; /* a name set by hand may be longer than the kernel's 15 characters */
	struct tc_filter f;
	int found = clsact_filter(ifindex, hook, &f);

	if (found <= 0)
		return found;
	if (filter_ours_name(a, &f, buf, sizeof(buf)))
		return -EBUSY;
	if (name)
		snprintf(name, len, "%s", buf);
	return (int)f.prog_id;
}

/* 1: our filter, 0: none, -EBUSY: someone else's filter at our handle and priority. */
static int clsact_ours(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook)
{
	int id = vakt_clsact_prog(a, ifindex, hook, NULL, 0);

	return id > 0 ? 1 : id;
}

static int attach_clsact(const struct vakt_attacher *a, int ifindex, const char *ifname,
			 enum vakt_hook hook, int prog_fd)
{
	struct bpf_tc_hook h;
	struct bpf_tc_opts o;
	int err;

	tc_hook_init(&h, ifindex, hook);
	h.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS; /* creates clsact */
	err = tc_hook_create_quiet(&h);
	if (err && err != -EEXIST)
		return err;
	err = clsact_ours(a, ifindex, hook);
	if (err < 0) {
		if (err == -EBUSY)
			log_error("foreign tc filter at our handle and priority, not replacing it",
				  "ifname=%s ifindex=%d hook=%s handle=0x%x prio=%d", ifname, ifindex,
				  hook_names[hook], VAKT_TC_HANDLE, VAKT_TC_PRIO);
		return err;
	}
	tc_hook_init(&h, ifindex, hook);
	tc_opts_init(&o);
	o.prog_fd = prog_fd;
	o.flags = BPF_TC_F_REPLACE; /* atomic swap of an existing filter of ours */
	return bpf_tc_attach(&h, &o);
}

/* 1: ours removed, 0: nothing of ours there, -errno. */
static int detach_clsact(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook)
{
	struct bpf_tc_hook h;
	struct bpf_tc_opts o;
	int ours = clsact_ours(a, ifindex, hook);
	int err;

	if (ours <= 0)
		return ours == -EBUSY ? 0 : ours; /* someone else's: leave it */
	tc_hook_init(&h, ifindex, hook);
	tc_opts_init(&o);
	err = bpf_tc_detach(&h, &o);
	return err == -ENOENT ? 0 : err ? err : 1;
}

static int detach_tcx(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook)
{
	struct tcx_link_info info;
	char path[320];
	int fd, err = 0;

	fd = pinned_link(a, ifindex, hook, &info);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (bpf_link_detach(fd))
		err = -errno;
	close(fd);
	pin_path(a, ifindex, hook, path, sizeof(path));
	if (unlink(path) && errno != ENOENT && !err)
		err = -errno;
	return err;
}

int vakt_attach_hook(const struct vakt_attacher *a, int ifindex, const char *ifname,
		     enum vakt_hook hook, int prog_fd)
{
	int err;

	if (a->mode == VAKT_ATTACH_TCX)
		err = attach_tcx(a, ifindex, ifname, hook, prog_fd);
	else
		err = attach_clsact(a, ifindex, ifname, hook, prog_fd);
	if (gone(err)) {
		log_warn("interface vanished before attach", "ifname=%s ifindex=%d hook=%s", ifname,
			 ifindex, hook_names[hook]);
		return -ENODEV;
	}
	if (err) {
		log_error("attach failed", "ifname=%s ifindex=%d hook=%s mode=%s err=%d", ifname,
			  ifindex, hook_names[hook], a->mode == VAKT_ATTACH_TCX ? "tcx" : "clsact",
			  err);
		return err;
	}
	/* The new program is in place: now drop one of ours left by the other mode. */
	if (a->mode == VAKT_ATTACH_TCX)
		err = detach_clsact(a, ifindex, hook);
	else
		err = detach_tcx(a, ifindex, hook);
	if (err < 0 && !gone(err))
		log_warn("could not remove our program of the other attach mode",
			 "ifname=%s ifindex=%d hook=%s err=%d", ifname, ifindex, hook_names[hook], err);
	return 0;
}

int vakt_detach_hook(const struct vakt_attacher *a, int ifindex, const char *ifname,
		     enum vakt_hook hook)
{
	int e1 = detach_tcx(a, ifindex, hook);
	int e2 = detach_clsact(a, ifindex, hook);
	int err = e1 < 0 && !gone(e1) ? e1 : e2 < 0 && !gone(e2) ? e2 : 0;

	if (err)
		log_error("detach failed", "ifname=%s ifindex=%d hook=%s err=%d", ifname, ifindex,
			  hook_names[hook], err);
	return err ? err : e2 > 0;
}

int vakt_hook_prog_id(const struct vakt_attacher *a, int ifindex, enum vakt_hook hook)
{
	struct tcx_link_info info;
	int fd, id;

	if (a->mode == VAKT_ATTACH_TCX) {
		fd = pinned_link(a, ifindex, hook, &info);
		if (fd == -ENOENT)
			return 0;
		if (fd < 0)
			return fd;
		close(fd);
		return (int)info.prog_id;
	}
	id = vakt_clsact_prog(a, ifindex, hook, NULL, 0);
	return id == -EBUSY ? 0 : id;
}

static void count_one(const struct tc_filter *f, void *arg)
{
	(void)f;
	(*(int *)arg)++;
}

/* Filters of anyone, in any chain, on one clsact direction. */
static int count_filters(int ifindex, enum vakt_hook hook)
{
	int count = 0;
	int err = tc_filter_dump(ifindex, clsact_parent(hook), 0, -1, count_one, &count);

	return err ? err : count;
}

int vakt_clsact_remove_if_empty(int ifindex, const char *ifname)
{
	struct bpf_tc_hook h;
	int in, eg, err;

	in = count_filters(ifindex, VAKT_HOOK_INGRESS);
	eg = count_filters(ifindex, VAKT_HOOK_EGRESS);
	/* No clsact at all (EINVAL), or the interface is gone: nothing to remove. */
	if (in == -EINVAL || eg == -EINVAL || gone(in) || gone(eg))
		return 0;
	if (in < 0 || eg < 0)
		return in < 0 ? in : eg;
	if (in || eg)
		return 0;
	tc_hook_init(&h, ifindex, VAKT_HOOK_INGRESS);
	h.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	err = bpf_tc_hook_destroy(&h);
	if (err && err != -ENOENT && err != -EINVAL && !gone(err)) {
		log_warn("could not remove empty clsact qdisc", "ifname=%s ifindex=%d err=%d", ifname,
			 ifindex, err);
		return err;
	}
	return 0;
}

/* Pin names are "<ifindex>-<hook>"; anything else in the directory is not ours to judge. */
static int parse_pin(const char *name, int *ifindex, enum vakt_hook *hook)
{
	char h[16];

	if (sscanf(name, "%d-%15s", ifindex, h) != 2 || *ifindex <= 0)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		if (!strcmp(h, hook_names[i])) {
			*hook = (enum vakt_hook)i;
			return 0;
		}
	}
	return -EINVAL;
}

int vakt_attach_sweep_defunct(const struct vakt_attacher *a)
{
	struct tcx_link_info info;
	struct dirent *de;
	DIR *d = opendir(a->links_dir);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		enum vakt_hook hook;
		int ifindex, fd;

		if (parse_pin(de->d_name, &ifindex, &hook))
			continue;
		/* pinned_link() removes pins whose link no longer sits on that interface. */
		fd = pinned_link(a, ifindex, hook, &info);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return 0;
}

int vakt_attach_remove_all(const struct vakt_attacher *a)
{
	struct if_nameindex *ifs, *i;
	struct dirent *de;
	int err = 0, e;
	DIR *d;

	d = opendir(a->links_dir);
	if (d) {
		while ((de = readdir(d))) {
			enum vakt_hook hook;
			int ifindex;

			if (!parse_pin(de->d_name, &ifindex, &hook) &&
			    (e = detach_tcx(a, ifindex, hook)) && !gone(e))
				err = e;
		}
		closedir(d);
	}
	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index; i++) {
		int removed = 0;

		for (int hook = 0; hook < 2; hook++) {
			e = detach_clsact(a, (int)i->if_index, (enum vakt_hook)hook);
			if (e < 0 && !gone(e)) {
				log_error("cleanup: clsact detach failed", "ifname=%s err=%d",
					  i->if_name, e);
				err = e;
			}
			removed |= e > 0;
		}
		if (removed)
			vakt_clsact_remove_if_empty((int)i->if_index, i->if_name);
	}
	if_freenameindex(ifs);
	return err;
}
