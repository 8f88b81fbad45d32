// SPDX-License-Identifier: Apache-2.0
/*
 * Two dumps do it: the links of this namespace (each veth's peer ifindex and
 * the id of the namespace the peer is in), then the addresses of each such
 * namespace, read from here with IFA_TARGET_NETNSID. The kernel honours that
 * attribute only on sockets with NETLINK_GET_STRICT_CHK, and needs
 * CAP_NET_ADMIN over the target namespace, which the agent has.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "netlink.h"
#include "peeraddr.h"

/* Large enough for one dump datagram (the kernel sends at most 32 KiB). */
#define DUMP_BUF 32768

struct veth {
	uint32_t ifindex; /* here */
	uint32_t peer;    /* ifindex of the peer in its namespace */
	int32_t nsid;     /* the peer's namespace, as this namespace names it */
};

struct links {
	struct veth *v;
	size_t n, cap;
	int (*want)(void *arg, int ifindex);
	void *arg;
};

struct link_attrs {
	uint32_t peer;
	int32_t nsid;
	int has_peer, has_nsid, is_veth;
};

static int info_cb(const struct nlattr *attr, void *data)
{
	struct link_attrs *la = data;

	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND && !mnl_attr_validate(attr, MNL_TYPE_STRING))
		la->is_veth = !strcmp(mnl_attr_get_str(attr), "veth");
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_attrs *la = data;

	switch (mnl_attr_get_type(attr)) {
	case IFLA_LINK:
		if (!mnl_attr_validate(attr, MNL_TYPE_U32)) {
			la->peer = mnl_attr_get_u32(attr);
			la->has_peer = 1;
		}
		break;
	case IFLA_LINK_NETNSID:
		if (!mnl_attr_validate(attr, MNL_TYPE_U32)) {
			la->nsid = (int32_t)mnl_attr_get_u32(attr);
			la->has_nsid = 1;
		}
		break;
	case IFLA_LINKINFO:
		if (!mnl_attr_validate(attr, MNL_TYPE_NESTED))
			mnl_attr_parse_nested(attr, info_cb, la);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct links *l = data;
	struct link_attrs la = { 0 };
	struct veth *nv;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, &la) < 0)
		return MNL_CB_OK;
	/* No peer namespace id: the peer is here, not in a pod. */
	if (!la.is_veth || !la.has_peer || !la.has_nsid || la.nsid < 0)
		return MNL_CB_OK;
	if (l->want && !l->want(l->arg, ifi->ifi_index))
		return MNL_CB_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;

		nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv) {
			errno = ENOMEM;
			return MNL_CB_ERROR;
		}
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = (struct veth){ (uint32_t)ifi->ifi_index, la.peer, la.nsid };
	return MNL_CB_OK;
}

struct addr_walk {
	const struct links *links;
	int32_t nsid;
	struct vakt_peer_addrs *out;
};

static int push(struct vakt_peer_addrs *pa, const struct vakt_addr *a, uint32_t ifindex)
{
	if (pa->n == pa->cap) {
		size_t cap = pa->cap ? pa->cap * 2 : 16;
		struct vakt_peer_addr *nv = realloc(pa->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		pa->v = nv;
		pa->cap = cap;
	}
	pa->v[pa->n++] = (struct vakt_peer_addr){ *a, ifindex };
	return 0;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_walk *w = data;
	struct vakt_addr a;
	unsigned int plen;
	int ifindex;

	if (nlh->nlmsg_type != RTM_NEWADDR || vakt_nl_addr_of(nlh, &a, &ifindex, &plen))
		return MNL_CB_OK;
	for (size_t i = 0; i < w->links->n; i++) {
		const struct veth *v = &w->links->v[i];

		if (v->nsid != w->nsid || v->peer != (uint32_t)ifindex)
			continue;
		if (push(w->out, &a, v->ifindex)) {
			errno = ENOMEM;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_OK;
}

/*
 * A dump that fails after it started (EACCES for a namespace we may not
 * read) ends with NLMSG_DONE carrying the error; libmnl's default handler
 * takes any DONE as success.
 */
static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)data;
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
		int err = *(const int *)mnl_nlmsg_get_payload(nlh);

		if (err < 0) {
			errno = -err;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

/*
 * With a control array, libmnl ignores the control messages it has no entry
 * for, NLMSG_ERROR included, so the error handler must be ours as well.
 */
static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	(void)data;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error < 0) {
		errno = -e->error;
		return MNL_CB_ERROR;
	}
	return MNL_CB_STOP;
}

/* Sends a dump request and runs cb over every answer until NLMSG_DONE. */
static int dump(struct mnl_socket *nl, char *buf, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	mnl_cb_t ctl[NLMSG_DONE + 1] = { [NLMSG_ERROR] = error_cb, [NLMSG_DONE] = done_cb };
	unsigned int portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, DUMP_BUF);
		if (n < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(buf, (size_t)n, req->nlmsg_seq, portid, cb, data, ctl,
				  MNL_ARRAY_SIZE(ctl));
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/* The header of a dump request of type in req; the caller appends its family header. */
static struct nlmsghdr *dump_req(char *req, uint16_t type, unsigned int seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	return nlh;
}

static int dump_links(struct mnl_socket *nl, char *buf, unsigned int seq, struct links *l)
{
	char req[256];
	struct nlmsghdr *nlh = dump_req(req, RTM_GETLINK, seq);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	return dump(nl, buf, nlh, link_cb, l);
}

static int dump_addrs(struct mnl_socket *nl, char *buf, unsigned int seq, struct addr_walk *w)
{
	char req[256];
	struct nlmsghdr *nlh = dump_req(req, RTM_GETADDR, seq);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	ifa->ifa_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, IFA_TARGET_NETNSID, (uint32_t)w->nsid);
	return dump(nl, buf, nlh, addr_cb, w);
}

static int seen_nsid(const struct links *l, size_t upto, int32_t nsid)
{
	for (size_t i = 0; i < upto; i++)
		if (l->v[i].nsid == nsid)
			return 1;
	return 0;
}

int vakt_peer_addrs_read(struct vakt_peer_addrs *out, int (*want)(void *arg, int ifindex),
			 void *arg)
{
	struct links l = { .want = want, .arg = arg };
	unsigned int seq = (unsigned int)time(NULL);
	struct mnl_socket *nl;
	char *buf = malloc(DUMP_BUF);
	struct timeval timeout = { .tv_sec = 2 };
	int one = 1, err;

	out->n = 0;
	if (!buf)
		return -ENOMEM;
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl) {
		err = -errno;
		goto out_buf;
	}
	/* The agent's loop waits on this: a kernel that never answered must not stall it. */
	if (mnl_socket_setsockopt(nl, NETLINK_GET_STRICT_CHK, &one, sizeof(one)) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	err = dump_links(nl, buf, seq, &l);
	/* One dump per namespace, however many veths lead into it. */
	for (size_t i = 0; !err && i < l.n; i++) {
		struct addr_walk w = { .links = &l, .nsid = l.v[i].nsid, .out = out };

		if (!seen_nsid(&l, i, w.nsid))
			err = dump_addrs(nl, buf, ++seq, &w);
		/* The namespace went since the link dump (its pod was deleted): nothing to read. */
		if (err == -EINVAL)
			err = 0;
	}
	if (err)
		out->n = 0;
out:
	mnl_socket_close(nl);
	free(l.v);
out_buf:
	free(buf);
	return err;
}

size_t vakt_peer_addrs_find(const struct vakt_peer_addrs *pa, const struct vakt_addr *a,
			    uint32_t *ifindex, size_t max)
{
	size_t n = 0, j;

	for (size_t i = 0; i < pa->n; i++) {
		if (memcmp(&pa->v[i].addr, a, sizeof(*a)))
			continue;
		/* One interface may hold an address twice (IPv4, two prefix lengths). */
		for (j = 0; j < i; j++)
			if (pa->v[j].ifindex == pa->v[i].ifindex &&
			    !memcmp(&pa->v[j].addr, a, sizeof(*a)))
				break;
		if (j < i)
			continue;
		if (n < max)
			ifindex[n] = pa->v[i].ifindex;
		n++;
	}
	return n;
}

void vakt_peer_addrs_free(struct vakt_peer_addrs *pa)
{
	free(pa->v);
	pa->v = NULL;
	pa->n = pa->cap = 0;
}
