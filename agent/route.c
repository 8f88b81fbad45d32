// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "model.h"
#include "route.h"

struct oif_ctx {
	int oif;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct oif_ctx *c = data;

	if (mnl_attr_get_type(attr) == RTA_OIF && !mnl_attr_validate(attr, MNL_TYPE_U32))
		c->oif = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (rtm->rtm_type != RTN_UNICAST && rtm->rtm_type != RTN_LOCAL)
		return MNL_CB_OK; /* blackhole, unreachable, prohibit: no interface */
	return mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, data);
}

int vakt_route_oif(const struct vakt_addr *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct oif_ctx ctx = { 0 };
	struct mnl_socket *nl;
	struct rtmsg *rtm;
	unsigned int seq = (unsigned int)time(NULL), portid;
	int v4 = vakt_addr_is_v4(a), ret;
	ssize_t n;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = v4 ? AF_INET : AF_INET6;
	rtm->rtm_dst_len = v4 ? 32 : 128;
	if (v4)
		mnl_attr_put(nlh, RTA_DST, 4, a->b + 12);
	else
		mnl_attr_put(nlh, RTA_DST, 16, a->b);

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	ret = mnl_cb_run(buf, (size_t)n, seq, portid, msg_cb, &ctx);
	if (ret < 0) {
		ret = errno ? -errno : -EIO;
		goto out;
	}
	ret = ctx.oif > 0 ? ctx.oif : -EHOSTUNREACH;
out:
	mnl_socket_close(nl);
	return ret;
}
