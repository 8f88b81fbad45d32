// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "netlink.h"

/* Large enough for one multipart dump datagram (the kernel sizes them to the reader's buffer, up to 32 KiB). */
#define NL_BUF 32768
/* Room for bursts (a node creating many pods at once) before the kernel drops notifications. */
#define NL_RCVBUF (4 << 20)
#define NL_DUMP_RETRIES 5

struct nl_link {
	int ifindex;
	int up;
	int seen;
	char name[IF_NAMESIZE];
	char kind[32];
};

struct nl_addr {
	int ifindex;
	int seen;
	unsigned plen;
	struct vakt_addr a;
};

struct vakt_nl {
	struct vakt_loop *loop;
	struct vakt_nl_cbs cbs;
	struct mnl_socket *mon;  /* subscribed to link and address groups, in the loop */
	struct mnl_socket *dump; /* request/response, blocking */
	unsigned dump_portid;
	unsigned seq;
	struct nl_link *links;
	size_t nlinks, caplinks;
	struct nl_addr *addrs;
	size_t naddrs, capaddrs;
	int addrs_dirty;
	struct vakt_nl_stats stats;
	char buf[NL_BUF];
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static struct nl_link *link_find(struct vakt_nl *nl, int ifindex)
{
	for (size_t i = 0; i < nl->nlinks; i++)
		if (nl->links[i].ifindex == ifindex)
			return &nl->links[i];
	return NULL;
}

static void link_remove(struct vakt_nl *nl, struct nl_link *lk)
{
	int ifindex = lk->ifindex;
	char name[IF_NAMESIZE];

	memcpy(name, lk->name, sizeof(name));
	*lk = nl->links[--nl->nlinks];
	/* A deleted link takes its addresses along; the kernel does not always say so per address. */
	for (size_t i = 0; i < nl->naddrs;) {
		if (nl->addrs[i].ifindex == ifindex) {
			nl->addrs[i] = nl->addrs[--nl->naddrs];
			nl->addrs_dirty = 1;
		} else {
			i++;
		}
	}
	if (nl->cbs.link)
		nl->cbs.link(nl->cbs.arg, ifindex, name, "", 0, 1);
}

struct link_attrs {
	const char *name;
	const char *kind;
};

static int linkinfo_attr_cb(const struct nlattr *a, void *data)
{
	struct link_attrs *la = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
		la->kind = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct link_attrs *la = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
			la->name = mnl_attr_get_str(a);
		break;
	case IFLA_LINKINFO:
		if (mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0)
			mnl_attr_parse_nested(a, linkinfo_attr_cb, la);
		break;
	}
	return MNL_CB_OK;
}

static int handle_link(struct vakt_nl *nl, const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct link_attrs la = { .name = "", .kind = "" };
	struct nl_link *lk;
	int up;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return MNL_CB_OK;
	lk = link_find(nl, ifi->ifi_index);
	if (nlh->nlmsg_type == RTM_DELLINK) {
		if (lk)
			link_remove(nl, lk);
		return MNL_CB_OK;
	}
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, &la);
	up = !!(ifi->ifi_flags & IFF_UP);
	if (!lk) {
		if (grow((void **)&nl->links, &nl->caplinks, nl->nlinks + 1, sizeof(*nl->links))) {
			log_error("netlink: out of memory for link", "ifindex=%d", ifi->ifi_index);
			return MNL_CB_ERROR;
		}
		lk = &nl->links[nl->nlinks++];
		memset(lk, 0, sizeof(*lk));
		lk->ifindex = ifi->ifi_index;
	}
	lk->up = up;
	lk->seen = 1;
	snprintf(lk->name, sizeof(lk->name), "%s", la.name);
	/* Change notifications may omit IFLA_LINKINFO; keep the kind learned earlier. */
	if (la.kind[0])
		snprintf(lk->kind, sizeof(lk->kind), "%s", la.kind);
	if (nl->cbs.link)
		nl->cbs.link(nl->cbs.arg, lk->ifindex, lk->name, lk->kind, up, 0);
	return MNL_CB_OK;
}

struct addr_attrs {
	const struct nlattr *local;
	const struct nlattr *address;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	struct addr_attrs *aa = data;

	switch (mnl_attr_get_type(a)) {
	case IFA_LOCAL:
		aa->local = a;
		break;
	case IFA_ADDRESS:
		aa->address = a;
		break;
	}
	return MNL_CB_OK;
}

int vakt_nl_addr_of(const struct nlmsghdr *nlh, struct vakt_addr *a, int *ifindex,
		    unsigned int *plen)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_attrs aa = {};
	const struct nlattr *src;
	size_t len;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return -EINVAL;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return -EAFNOSUPPORT;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &aa);
	/* On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours. */
	src = aa.local ? aa.local : aa.address;
	len = ifa->ifa_family == AF_INET ? 4 : 16;
	if (!src || mnl_attr_get_payload_len(src) != len)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	*ifindex = (int)ifa->ifa_index;
	if (len == 4) {
		a->b[10] = 0xff;
		a->b[11] = 0xff;
		memcpy(&a->b[12], mnl_attr_get_payload(src), 4);
		*plen = 96U + ifa->ifa_prefixlen;
	} else {
		memcpy(a->b, mnl_attr_get_payload(src), 16);
		*plen = ifa->ifa_prefixlen;
	}
	return 0;
}

static int addr_from_msg(const struct nlmsghdr *nlh, struct nl_addr *out)
{
	memset(out, 0, sizeof(*out));
	return vakt_nl_addr_of(nlh, &out->a, &out->ifindex, &out->plen);
}

static struct nl_addr *addr_find(struct vakt_nl *nl, const struct nl_addr *k)
{
	for (size_t i = 0; i < nl->naddrs; i++) {
		struct nl_addr *a = &nl->addrs[i];

		if (a->ifindex == k->ifindex && a->plen == k->plen && !memcmp(&a->a, &k->a, sizeof(a->a)))
			return a;
	}
	return NULL;
}

static int handle_addr(struct vakt_nl *nl, const struct nlmsghdr *nlh)
{
	struct nl_addr k;
	struct nl_addr *a;

	if (addr_from_msg(nlh, &k))
		return MNL_CB_OK;
	a = addr_find(nl, &k);
	if (nlh->nlmsg_type == RTM_DELADDR) {
		if (a) {
			*a = nl->addrs[--nl->naddrs];
			nl->addrs_dirty = 1;
		}
		return MNL_CB_OK;
	}
	if (a) {
		a->seen = 1;
		return MNL_CB_OK;
	}
	if (grow((void **)&nl->addrs, &nl->capaddrs, nl->naddrs + 1, sizeof(*nl->addrs))) {
		log_error("netlink: out of memory for address", "ifindex=%d", k.ifindex);
		return MNL_CB_ERROR;
	}
	k.seen = 1;
	nl->addrs[nl->naddrs++] = k;
	nl->addrs_dirty = 1;
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct vakt_nl *nl = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		return handle_link(nl, nlh);
	case RTM_NEWADDR:
	case RTM_DELADDR:
		return handle_addr(nl, nlh);
	}
	return MNL_CB_OK;
}

static int addr_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct vakt_addr));
}

/* Deliver the deduplicated address set: one address on two links is one node address. */
static void report_addrs(struct vakt_nl *nl)
{
	struct vakt_addr *v;
	size_t n = 0;

	nl->addrs_dirty = 0;
	if (!nl->cbs.addrs)
		return;
	v = calloc(nl->naddrs ? nl->naddrs : 1, sizeof(*v));
	if (!v) {
		log_error("netlink: out of memory reporting addresses", "n=%zu", nl->naddrs);
		nl->addrs_dirty = 1; /* retried after the next notification */
		return;
	}
	for (size_t i = 0; i < nl->naddrs; i++)
		v[i] = nl->addrs[i].a;
	qsort(v, nl->naddrs, sizeof(*v), addr_cmp);
	for (size_t i = 0; i < nl->naddrs; i++)
		if (!n || memcmp(&v[n - 1], &v[i], sizeof(*v)) != 0)
			v[n++] = v[i];
	nl->cbs.addrs(nl->cbs.arg, v, n);
	free(v);
}

static int dump_once(struct vakt_nl *nl, int type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	unsigned seq = ++nl->seq;
	struct rtgenmsg *g;
	ssize_t n;
	int ret;

	nlh->nlmsg_type = (uint16_t)type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	/* rtgenmsg is a prefix of ifinfomsg and ifaddrmsg: the family is all a dump filter needs. */
	g = mnl_nlmsg_put_extra_header(nlh, type == RTM_GETLINK ? sizeof(struct ifinfomsg) :
								  sizeof(struct ifaddrmsg));
	g->rtgen_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl->dump, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl->dump, nl->buf, sizeof(nl->buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(nl->buf, (size_t)n, seq, nl->dump_portid, msg_cb, nl);
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/*
 * A dump that raced with changes is flagged NLM_F_DUMP_INTR (libmnl: EINTR) and
 * repeated. ENOBUFS on the dump socket itself means the same: try again.
 */
static int dump(struct vakt_nl *nl, int type)
{
	int err = 0;

	for (int i = 0; i < NL_DUMP_RETRIES; i++) {
		err = dump_once(nl, type);
		if (err != -EINTR && err != -ENOBUFS && err != -EBUSY)
			break;
		/* Drain the rest of the interrupted dump before asking again. */
		mnl_socket_close(nl->dump);
		nl->dump = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
		if (!nl->dump || mnl_socket_bind(nl->dump, 0, MNL_SOCKET_AUTOPID) < 0)
			return -errno;
		nl->dump_portid = mnl_socket_get_portid(nl->dump);
	}
	if (err)
		log_error("netlink dump failed", "type=%s err=%d",
			  type == RTM_GETLINK ? "link" : "addr", err);
	return err;
}

/* Dump everything; what the kernel no longer has is reported as removed. */
static int resync(struct vakt_nl *nl)
{
	int err;

	for (size_t i = 0; i < nl->nlinks; i++)
		nl->links[i].seen = 0;
	err = dump(nl, RTM_GETLINK);
	if (err)
		return err;
	for (size_t i = 0; i < nl->nlinks;) {
		if (!nl->links[i].seen)
			link_remove(nl, &nl->links[i]);
		else
			i++;
	}
	for (size_t i = 0; i < nl->naddrs; i++)
		nl->addrs[i].seen = 0;
	err = dump(nl, RTM_GETADDR);
	if (err)
		return err;
	for (size_t i = 0; i < nl->naddrs;) {
		if (!nl->addrs[i].seen) {
			nl->addrs[i] = nl->addrs[--nl->naddrs];
			nl->addrs_dirty = 1;
		} else {
			i++;
		}
	}
	return 0;
}

static void on_readable(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct vakt_nl *nl = arg;
	int need_resync = 0;

	(void)l;
	(void)fd;
	(void)events;
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(nl->mon), nl->buf, sizeof(nl->buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* Notifications were lost: only a full dump tells what changed. */
				need_resync = 1;
				continue;
			}
			if (errno != EAGAIN)
				log_error("netlink receive failed", "err=%d", -errno);
			break;
		}
		nl->stats.events++;
		if (mnl_cb_run(nl->buf, (size_t)n, 0, 0, msg_cb, nl) < 0)
			log_warn("netlink: bad notification", "err=%d", -errno);
	}
	if (need_resync) {
		nl->stats.resyncs++;
		log_warn("netlink: notifications lost, dumping again", "resyncs=%llu",
			 nl->stats.resyncs);
		resync(nl);
	}
	if (nl->addrs_dirty)
		report_addrs(nl);
}

static struct mnl_socket *open_socket(unsigned groups)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);

	if (!s)
		return NULL;
	if (mnl_socket_bind(s, groups, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;

		mnl_socket_close(s);
		errno = err;
		return NULL;
	}
	return s;
}

struct vakt_nl *vakt_nl_open(struct vakt_loop *l, const struct vakt_nl_cbs *cbs, int *err)
{
	struct vakt_nl *nl = calloc(1, sizeof(*nl));
	int rcvbuf = NL_RCVBUF;
	int e;

	if (!nl) {
		e = -ENOMEM;
		goto err;
	}
	nl->loop = l;
	nl->cbs = *cbs;
	/* Subscribe before dumping so that no change between the dump and the first read is lost. */
	nl->mon = open_socket(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
	if (!nl->mon) {
		e = -errno;
		log_error("netlink: cannot open monitor socket", "err=%d", e);
		goto err_free;
	}
	/* FORCE needs CAP_NET_ADMIN, which the agent has; the plain option is the fallback. */
	if (setsockopt(mnl_socket_get_fd(nl->mon), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(nl->mon), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	nl->dump = open_socket(0);
	if (!nl->dump) {
		e = -errno;
		log_error("netlink: cannot open dump socket", "err=%d", e);
		goto err_mon;
	}
	nl->dump_portid = mnl_socket_get_portid(nl->dump);
	nl->seq = (unsigned)time(NULL);
	e = resync(nl);
	if (e)
		goto err_dump;
	report_addrs(nl);
	e = vakt_loop_add_fd(l, mnl_socket_get_fd(nl->mon), EPOLLIN, on_readable, nl);
	if (e) {
		log_error("netlink: cannot watch socket", "err=%d", e);
		goto err_dump;
	}
	return nl;

err_dump:
	if (nl->dump)
		mnl_socket_close(nl->dump);
err_mon:
	mnl_socket_close(nl->mon);
err_free:
	free(nl->links);
	free(nl->addrs);
	free(nl);
err:
	if (err)
		*err = e;
	return NULL;
}

void vakt_nl_close(struct vakt_nl *nl)
{
	if (!nl)
		return;
	vakt_loop_del_fd(nl->loop, mnl_socket_get_fd(nl->mon));
	mnl_socket_close(nl->mon);
	if (nl->dump)
		mnl_socket_close(nl->dump);
	free(nl->links);
	free(nl->addrs);
	free(nl);
}

void vakt_nl_stats(const struct vakt_nl *nl, struct vakt_nl_stats *out)
{
	*out = nl->stats;
}
