// SPDX-License-Identifier: Apache-2.0
/*
 * The pods' own addresses read from the node's namespace (agent/peeraddr.c):
 * in a private network namespace standing in for the node, veths whose far
 * ends live in two pod namespaces (named vtpa<pid>a / b, removed by the
 * teardown even when an assertion failed). Needs root; fails, never skips.
 */
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "model.h"
#include "peeraddr.h"
#include "../lib/testsys.h"

static char ns_a[32], ns_b[32];

static void addr_of(const char *s, struct vakt_addr *a)
{
	int v4;

	assert_int_equal(vakt_addr_parse(s, a, &v4), 0);
}

/* The veths behind which the far ends hold s, read afresh. */
static size_t holders(const char *s, uint32_t *ifx, size_t max,
		      int (*want)(void *arg, int ifindex), void *arg)
{
	struct vakt_peer_addrs pa = { 0 };
	struct vakt_addr a;
	size_t n;

	addr_of(s, &a);
	assert_int_equal(vakt_peer_addrs_read(&pa, want, arg), 0);
	n = vakt_peer_addrs_find(&pa, &a, ifx, max);
	vakt_peer_addrs_free(&pa);
	return n;
}

static int teardown(void **state);

static int setup(void **state)
{
	int rc;

	/* hA -> pod a's eth0, hB -> pod b's eth0; pod a also has another interface (x0). */
	rc = vt_sh("ip netns add %s && ip netns add %s"
		     " && ip link add hA type veth peer name eth0 netns %s"
		     " && ip link add hB type veth peer name eth0 netns %s"
		     " && ip -n %s link set eth0 up && ip -n %s link set eth0 up"
		     " && ip -n %s addr add 10.9.0.1/32 dev eth0"
		     " && ip -n %s addr add fd00:9::1/128 dev eth0 nodad"
		     " && ip -n %s link add x0 type veth peer name x1 && ip -n %s addr add 10.9.7.7/32 dev x0"
		     " && ip -n %s addr add 10.9.8.8/32 dev lo"
		     " && ip -n %s addr add 10.9.0.2/24 dev eth0",
		     ns_a, ns_b, ns_a, ns_b, ns_a, ns_b, ns_a, ns_a, ns_a, ns_a, ns_a, ns_b);
	/* cmocka runs no teardown after a failed setup. */
	if (rc)
		teardown(state);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	vt_sh("ip link del hA 2>/dev/null; ip link del hB 2>/dev/null;"
	      " ip link del here0 2>/dev/null; ip netns del %s 2>/dev/null;"
	      " ip netns del %s 2>/dev/null; true", ns_a, ns_b);
	return 0;
}

static void test_each_pod_address_is_found_behind_its_own_veth(void **state)
{
	uint32_t ifx[4];

	(void)state;
	assert_int_equal(holders("10.9.0.1", ifx, 4, NULL, NULL), 1);
	assert_int_equal(ifx[0], if_nametoindex("hA"));
	assert_int_equal(holders("fd00:9::1", ifx, 4, NULL, NULL), 1);
	assert_int_equal(ifx[0], if_nametoindex("hA"));
	assert_int_equal(holders("10.9.0.2", ifx, 4, NULL, NULL), 1);
	assert_int_equal(ifx[0], if_nametoindex("hB"));
}

/* Only the veth's far end speaks for it: a pod's other interfaces and loopback do not. */
static void test_addresses_on_other_interfaces_of_the_pod_are_not_found(void **state)
{
	uint32_t ifx[4];

	(void)state;
	assert_int_equal(holders("10.9.7.7", ifx, 4, NULL, NULL), 0);
	assert_int_equal(holders("10.9.8.8", ifx, 4, NULL, NULL), 0);
	assert_int_equal(holders("10.9.0.3", ifx, 4, NULL, NULL), 0);
}

static void test_an_address_held_behind_two_veths_names_both(void **state)
{
	uint32_t ifx[4];

	(void)state;
	assert_int_equal(vt_sh("ip -n %s addr add 10.9.0.1/32 dev eth0", ns_b), 0);
	/* ... and twice on one interface still counts that interface once. */
	assert_int_equal(vt_sh("ip -n %s addr add 10.9.0.1/24 dev eth0", ns_b), 0);
	assert_int_equal(holders("10.9.0.1", ifx, 4, NULL, NULL), 2);
	assert_true((ifx[0] == if_nametoindex("hA") && ifx[1] == if_nametoindex("hB")) ||
		    (ifx[1] == if_nametoindex("hA") && ifx[0] == if_nametoindex("hB")));
}

static int only_hb(void *arg, int ifindex)
{
	(void)arg;
	return (unsigned int)ifindex == if_nametoindex("hB");
}

static void test_veths_the_caller_does_not_want_are_not_read(void **state)
{
	uint32_t ifx[4];

	(void)state;
	assert_int_equal(holders("10.9.0.1", ifx, 4, only_hb, NULL), 0);
	assert_int_equal(holders("10.9.0.2", ifx, 4, only_hb, NULL), 1);
	assert_int_equal(ifx[0], if_nametoindex("hB"));
}

/* A veth with both ends in the node's namespace leads to no pod. */
static void test_a_veth_with_its_far_end_here_is_no_pod(void **state)
{
	uint32_t ifx[4];

	(void)state;
	assert_int_equal(vt_sh("ip link add here0 type veth peer name here1"
			       " && ip addr add 10.9.5.5/32 dev here1"),
			 0);
	assert_int_equal(holders("10.9.5.5", ifx, 4, NULL, NULL), 0);
	assert_int_equal(holders("10.9.0.1", ifx, 4, NULL, NULL), 1);
}

/*
 * Without CAP_NET_ADMIN the kernel refuses another namespace's addresses
 * part way through the dump: that must be an error, not "no addresses".
 */
static void test_a_namespace_it_may_not_read_is_an_error_not_an_empty_list(void **state)
{
	int status = 0;
	pid_t pid = fork();

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vakt_peer_addrs pa = { 0 };
		int err;

		/* Leaving uid 0 drops every capability. */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(100);
		err = vakt_peer_addrs_read(&pa, NULL, NULL);
		_exit(err == -EACCES && pa.n == 0 ? 0 : err ? 101 : 102);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_each_pod_address_is_found_behind_its_own_veth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addresses_on_other_interfaces_of_the_pod_are_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_address_held_behind_two_veths_names_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_veths_the_caller_does_not_want_are_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_veth_with_its_far_end_here_is_no_pod, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_namespace_it_may_not_read_is_an_error_not_an_empty_list, setup, teardown),
	};

	snprintf(ns_a, sizeof(ns_a), "vtpa%da", (int)getpid());
	snprintf(ns_b, sizeof(ns_b), "vtpa%db", (int)getpid());
	if (vt_private_netns("test_peeraddr"))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
