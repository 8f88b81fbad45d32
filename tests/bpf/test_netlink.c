// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink watching in a private network namespace: the initial dump, a new
 * veth, its removal, address changes (IPv4 and IPv6, deduplicated, loopback
 * included). Needs root; fails (never skips) when it cannot run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cmocka.h>

#include "log.h"
#include "loop.h"
#include "netlink.h"
#include "../lib/testsys.h"

#define MAX_ADDRS 64

struct seen_link {
	int ifindex;
	char name[IF_NAMESIZE];
	char kind[32];
	int up;
	int removed;
};

struct watcher {
	struct vakt_loop *loop;
	struct seen_link last; /* last link event for the name we wait for */
	const char *want_name;
	int want_removed;
	int link_events;
	struct vakt_addr addrs[MAX_ADDRS];
	size_t naddrs;
	int addr_reports;
	int (*done)(struct watcher *w); /* stop the loop when true */
	const char *want_addr;          /* textual address to wait for */
	int want_addr_present;
};

#define sh vt_sh

static void to_vakt_addr(const char *s, struct vakt_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->b[12]) == 1) {
		a->b[10] = a->b[11] = 0xff;
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, s, a->b), 1);
}

static int has_addr(const struct watcher *w, const char *s)
{
	struct vakt_addr a;

	to_vakt_addr(s, &a);
	for (size_t i = 0; i < w->naddrs; i++)
		if (!memcmp(&w->addrs[i], &a, sizeof(a)))
			return 1;
	return 0;
}

static void on_link(void *arg, int ifindex, const char *name, const char *kind, int up, int removed)
{
	struct watcher *w = arg;

	w->link_events++;
	if (w->want_name && strcmp(name, w->want_name))
		return;
	w->last.ifindex = ifindex;
	snprintf(w->last.name, sizeof(w->last.name), "%s", name);
	snprintf(w->last.kind, sizeof(w->last.kind), "%s", kind);
	w->last.up = up;
	w->last.removed = removed;
	if (w->done && w->done(w))
		vakt_loop_stop(w->loop);
}

static void on_addrs(void *arg, const struct vakt_addr *addrs, size_t n)
{
	struct watcher *w = arg;

	assert_true(n <= MAX_ADDRS);
	memcpy(w->addrs, addrs, n * sizeof(*addrs));
	w->naddrs = n;
	w->addr_reports++;
	if (w->done && w->done(w))
		vakt_loop_stop(w->loop);
}

static void timeout(struct vakt_loop *l, void *arg)
{
	int *fired = arg;

	*fired = 1;
	vakt_loop_stop(l);
}

/* Run the loop until w->done() or 5 s; fail on timeout. */
static void wait_for(struct watcher *w, int (*done)(struct watcher *w))
{
	int fired = 0;
	long t;

	w->done = done;
	if (done(w))
		return;
	t = vakt_loop_add_timer(w->loop, 5000, 0, timeout, &fired);
	assert_true(t > 0);
	assert_int_equal(vakt_loop_run(w->loop), 0);
	if (!fired)
		vakt_loop_cancel_timer(w->loop, t);
	assert_false(fired);
	w->done = NULL;
}

static int link_matches(struct watcher *w)
{
	return !strcmp(w->last.name, w->want_name) && w->last.removed == w->want_removed &&
	       (w->want_removed || w->last.up);
}

static int addr_matches(struct watcher *w)
{
	return has_addr(w, w->want_addr) == w->want_addr_present;
}

struct fixture {
	struct watcher w;
	struct vakt_nl *nl;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vakt_nl_cbs cbs = { .link = on_link, .addrs = on_addrs };
	int err = 0;

	assert_non_null(f);
	f->w.loop = vakt_loop_new();
	cbs.arg = &f->w;
	f->nl = vakt_nl_open(f->w.loop, &cbs, &err);
	assert_non_null(f->nl);
	assert_int_equal(err, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vakt_nl_close(f->nl);
	vakt_loop_free(f->w.loop);
	free(f);
	return 0;
}

static void test_initial_dump_reports_links_and_loopback_addresses(void **state)
{
	struct fixture *f = *state;

	/* vakt_nl_open ran the dump synchronously: lo is known with both loopback addresses. */
	assert_true(f->w.link_events >= 1);
	assert_true(f->w.addr_reports >= 1);
	assert_true(has_addr(&f->w, "127.0.0.1"));
	assert_true(has_addr(&f->w, "::1"));
}

static void test_new_veth_and_its_removal_are_reported(void **state)
{
	struct fixture *f = *state;

	f->w.want_name = "vkt-nl-a";
	f->w.want_removed = 0;
	assert_int_equal(sh("ip link add vkt-nl-a type veth peer name vkt-nl-ap && ip link set vkt-nl-a up"), 0);
	wait_for(&f->w, link_matches);
	assert_string_equal(f->w.last.kind, "veth");
	assert_int_equal(f->w.last.ifindex, (int)if_nametoindex("vkt-nl-a"));

	f->w.want_removed = 1;
	assert_int_equal(sh("ip link del vkt-nl-a"), 0);
	wait_for(&f->w, link_matches);
	f->w.want_name = NULL;
}

static void test_address_changes_are_reported_as_the_full_set(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sh("ip link add vkt-nl-b type veth peer name vkt-nl-bp && ip link set vkt-nl-b up"), 0);
	f->w.want_addr = "10.77.0.1";
	f->w.want_addr_present = 1;
	assert_int_equal(sh("ip addr add 10.77.0.1/24 dev vkt-nl-b"), 0);
	wait_for(&f->w, addr_matches);
	f->w.want_addr = "fd00:77::1";
	assert_int_equal(sh("ip addr add fd00:77::1/64 dev vkt-nl-b nodad"), 0);
	wait_for(&f->w, addr_matches);
	/* The set is complete, not a delta: earlier addresses are still in it. */
	assert_true(has_addr(&f->w, "10.77.0.1"));
	assert_true(has_addr(&f->w, "127.0.0.1"));

	f->w.want_addr = "10.77.0.1";
	f->w.want_addr_present = 0;
	assert_int_equal(sh("ip addr del 10.77.0.1/24 dev vkt-nl-b"), 0);
	wait_for(&f->w, addr_matches);
	assert_true(has_addr(&f->w, "fd00:77::1"));

	/* Deleting the link takes its addresses along. */
	f->w.want_addr = "fd00:77::1";
	assert_int_equal(sh("ip link del vkt-nl-b"), 0);
	wait_for(&f->w, addr_matches);
}

static void test_same_address_on_two_links_is_reported_once(void **state)
{
	struct fixture *f = *state;
	size_t count = 0;
	struct vakt_addr a;

	assert_int_equal(sh("ip link add vkt-nl-c type veth peer name vkt-nl-cp"), 0);
	assert_int_equal(sh("ip addr add 10.78.0.1/32 dev vkt-nl-c && ip addr add 10.78.0.1/32 dev vkt-nl-cp"), 0);
	f->w.want_addr = "10.78.0.1";
	f->w.want_addr_present = 1;
	wait_for(&f->w, addr_matches);
	to_vakt_addr("10.78.0.1", &a);
	for (size_t i = 0; i < f->w.naddrs; i++)
		count += !memcmp(&f->w.addrs[i], &a, sizeof(a));
	assert_int_equal(count, 1);
	sh("ip link del vkt-nl-c");
}

static void test_reopen_after_changes_sees_the_current_state(void **state)
{
	struct fixture *f = *state;
	struct watcher w2 = { .loop = f->w.loop };
	struct vakt_nl_cbs cbs = { .arg = &w2, .link = on_link, .addrs = on_addrs };
	struct vakt_nl *nl2;
	int err = 0;

	assert_int_equal(sh("ip link add vkt-nl-d type veth peer name vkt-nl-dp && ip addr add 10.79.0.1/24 dev vkt-nl-d"), 0);
	w2.want_name = "vkt-nl-d";
	nl2 = vakt_nl_open(f->w.loop, &cbs, &err);
	assert_non_null(nl2);
	assert_string_equal(w2.last.name, "vkt-nl-d");
	assert_string_equal(w2.last.kind, "veth");
	assert_int_equal(w2.last.up, 0);
	assert_true(has_addr(&w2, "10.79.0.1"));
	vakt_nl_close(nl2);
	sh("ip link del vkt-nl-d");
}

/* The watcher's subscribed rtnetlink socket: the one of this process bound to groups. */
static int find_monitor_fd(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_nl sa;
		socklen_t len = sizeof(sa);
		int proto = 0;
		socklen_t plen = sizeof(proto);

		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) || proto != NETLINK_ROUTE)
			continue;
		if (getsockname(fd, (struct sockaddr *)&sa, &len) || sa.nl_family != AF_NETLINK)
			continue;
		if (sa.nl_groups)
			return fd;
	}
	return -1;
}

struct seen_set {
	struct watcher w;
	int present[40];
	int removed_seen;
};

static void on_link_set(void *arg, int ifindex, const char *name, const char *kind, int up, int removed)
{
	struct seen_set *s = arg;
	int i;

	(void)ifindex;
	(void)kind;
	(void)up;
	if (sscanf(name, "vkt-nl-o%d", &i) == 1 && i >= 0 && i < 40)
		s->present[i] = !removed;
	if (!strcmp(name, "vkt-nl-gone") && removed)
		s->removed_seen = 1;
}

static void stop_soon(struct vakt_loop *l, void *arg)
{
	(void)arg;
	vakt_loop_stop(l);
}

static void test_lost_notifications_are_recovered_by_a_new_dump(void **state)
{
	struct seen_set s = {};
	struct vakt_nl_cbs cbs = { .arg = &s, .link = on_link_set };
	struct vakt_nl_stats st;
	struct vakt_nl *nl;
	int err = 0, fd, small = 1;

	(void)state;
	s.w.loop = vakt_loop_new();
	assert_int_equal(sh("ip link add vkt-nl-gone type veth peer name vkt-nl-gonep"), 0);
	nl = vakt_nl_open(s.w.loop, &cbs, &err);
	assert_non_null(nl);
	fd = find_monitor_fd();
	assert_true(fd >= 0);
	/* The smallest receive buffer the kernel allows: a few notifications overflow it. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(sh("ip link add vkt-nl-o%d type veth peer name vkt-nl-op%d", i, i), 0);
	/* By now the buffer is full: this removal's notification is dropped, only a dump tells. */
	assert_int_equal(sh("ip link del vkt-nl-gone"), 0);
	assert_true(vakt_loop_add_timer(s.w.loop, 300, 0, stop_soon, NULL) > 0);
	assert_int_equal(vakt_loop_run(s.w.loop), 0);
	vakt_nl_stats(nl, &st);
	assert_true(st.resyncs >= 1);
	for (int i = 0; i < 40; i++)
		assert_true(s.present[i]);
	assert_true(s.removed_seen);
	vakt_nl_close(nl);
	vakt_loop_free(s.w.loop);
	for (int i = 0; i < 40; i++)
		sh("ip link del vkt-nl-o%d", i);
}

/* An RTM_NEWADDR message of family fam on ifindex 7, /24, with the given attributes. */
static struct nlmsghdr *addr_msg(char *buf, int fam, const void *local, size_t llen,
				 const void *address, size_t alen)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	nlh->nlmsg_type = RTM_NEWADDR;
	ifa->ifa_family = (unsigned char)fam;
	ifa->ifa_index = 7;
	ifa->ifa_prefixlen = 24;
	if (local)
		mnl_attr_put(nlh, IFA_LOCAL, llen, local);
	if (address)
		mnl_attr_put(nlh, IFA_ADDRESS, alen, address);
	return nlh;
}

/* Shared by the watcher and agent/peeraddr.c: what a message may not pass off as an address. */
static void test_address_messages_with_short_or_foreign_addresses_are_rejected(void **state)
{
	const uint8_t ours[4] = { 10, 0, 0, 1 }, peer[4] = { 10, 0, 0, 2 }, v6[16] = { 0xfd };
	char buf[512];
	struct vakt_addr a, want;
	unsigned int plen;
	int ifindex;

	(void)state;
	/* Point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the far end. */
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_INET, ours, 4, peer, 4), &a, &ifindex,
					 &plen), 0);
	to_vakt_addr("10.0.0.1", &want);
	assert_memory_equal(&a, &want, sizeof(a));
	assert_int_equal(ifindex, 7);
	assert_int_equal(plen, 96 + 24);
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_INET6, NULL, 0, v6, 16), &a, &ifindex,
					 &plen), 0);
	assert_int_equal(plen, 24);
	/* Too short for the family, missing, or not IP at all. */
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_INET, ours, 3, NULL, 0), &a, &ifindex,
					 &plen), -EINVAL);
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_INET6, NULL, 0, v6, 4), &a, &ifindex,
					 &plen), -EINVAL);
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_INET, NULL, 0, NULL, 0), &a, &ifindex,
					 &plen), -EINVAL);
	assert_int_equal(vakt_nl_addr_of(addr_msg(buf, AF_PACKET, ours, 4, NULL, 0), &a, &ifindex,
					 &plen), -EAFNOSUPPORT);
	/* A header cut short. */
	addr_msg(buf, AF_INET, ours, 4, NULL, 0)->nlmsg_len = NLMSG_LENGTH(2);
	assert_int_equal(vakt_nl_addr_of((struct nlmsghdr *)buf, &a, &ifindex, &plen), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_dump_reports_links_and_loopback_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_veth_and_its_removal_are_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_changes_are_reported_as_the_full_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_address_on_two_links_is_reported_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_changes_sees_the_current_state, setup, teardown),
		cmocka_unit_test(test_lost_notifications_are_recovered_by_a_new_dump),
		cmocka_unit_test(test_address_messages_with_short_or_foreign_addresses_are_rejected),
	};

	if (vt_private_netns("test_netlink"))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
