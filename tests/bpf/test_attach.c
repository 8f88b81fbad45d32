// SPDX-License-Identifier: Apache-2.0
/*
 * Attaching and detaching on real veth pairs in a private network namespace,
 * tcx and clsact: idempotence, adoption after a restart, foreign programs
 * left alone, vanished interfaces. The programs here are minimal "pass"
 * programs built from raw instructions, named like ours or like a foreign
 * tool's, so this test exercises agent/attach.c on its own; the dataplane
 * test (test_mapwriter) runs the same paths with the real skeleton.
 * Some scenarios run in a child that holds only what vaktd's DaemonSet grants
 * (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, no_new_privs, nothing else in the
 * bounding set), to prove the agent's own paths need nothing more.
 * Needs root; fails (never skips) when it cannot run.
 */
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/pkt_cls.h>

#include <cmocka.h>

#include "attach.h"
#include "log.h"
#include "../lib/testsys.h"

#define LINKS_DIR_FMT "/sys/fs/bpf/vkt-att-%d"

static char g_pin_root[128]; /* per-process pin directory, removed at exit */

/* vakt_node_egress is longer than the 15 characters the kernel keeps of a program name. */
static const char *const our_names[] = { "vakt_from_pod", "vakt_to_pod", "vakt_node_egress", NULL };

#define sh vt_sh

/* A SCHED_CLS program that returns `ret`, under `name`. */
static int load_prog(const char *name, int ret)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name, "GPL", insns, 2, NULL);

	assert_true(fd >= 0);
	return fd;
}

static int veth(const char *name)
{
	char peer[IF_NAMESIZE + 4];
	int ifindex;

	snprintf(peer, sizeof(peer), "%sp", name);
	assert_int_equal(sh("ip link add %s type veth peer name %s && ip link set %s up && ip link set %s up",
			    name, peer, name, peer), 0);
	ifindex = (int)if_nametoindex(name);
	assert_true(ifindex > 0);
	return ifindex;
}

static void attacher(struct vakt_attacher *a, enum vakt_attach_mode mode)
{
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	snprintf(a->links_dir, sizeof(a->links_dir), "%s/links", g_pin_root);
	mkdir(g_pin_root, 0700);
	mkdir(a->links_dir, 0700);
	a->names = our_names;
}

static uint32_t tcx_count(int ifindex, enum vakt_hook hook, uint32_t *first)
{
	uint32_t ids[16], n = 16;

	assert_int_equal(vakt_tcx_query(ifindex, hook, ids, &n), 0);
	if (first)
		*first = n ? ids[0] : 0;
	return n;
}

static int clsact_prog(int ifindex, enum vakt_hook hook, uint32_t handle, uint32_t prio)
{
	struct bpf_tc_hook h = { .sz = sizeof(h), .ifindex = ifindex,
				 .attach_point = hook == VAKT_HOOK_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS };
	struct bpf_tc_opts o = { .sz = sizeof(o), .handle = handle, .priority = prio };
	int err = bpf_tc_query(&h, &o);

	return err ? 0 : (int)o.prog_id;
}

static int has_clsact(const char *ifname)
{
	return sh("tc qdisc show dev %s | grep -q clsact", ifname) == 0;
}

static void test_tcx_attach_is_idempotent_and_detach_removes_only_ours(void **state)
{
	struct vakt_attacher a;
	int from = load_prog("vakt_from_pod", TC_ACT_UNSPEC);
	int to = load_prog("vakt_to_pod", TC_ACT_UNSPEC);
	int ifindex = veth("vkt-att-t1");
	uint32_t first;

	(void)state;
	attacher(&a, VAKT_ATTACH_TCX);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-t1", VAKT_HOOK_INGRESS, from), 0);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-t1", VAKT_HOOK_EGRESS, to), 0);
	}
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS, &first), 1);
	assert_int_equal((int)first, vakt_prog_id_of_fd(from));
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS, &first), 1);
	assert_int_equal((int)first, vakt_prog_id_of_fd(to));
	assert_int_equal(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_INGRESS), vakt_prog_id_of_fd(from));
	assert_false(has_clsact("vkt-att-t1"));

	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-t1", VAKT_HOOK_INGRESS), 0);
	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-t1", VAKT_HOOK_EGRESS), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS, NULL), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS, NULL), 0);
	assert_int_equal(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_INGRESS), 0);
	/* Detaching what is not there is fine. */
	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-t1", VAKT_HOOK_INGRESS), 0);
	sh("ip link del vkt-att-t1");
	close(from);
	close(to);
}

static void test_clsact_attach_is_idempotent_and_detach_removes_the_empty_qdisc(void **state)
{
	struct vakt_attacher a;
	int from = load_prog("vakt_from_pod", TC_ACT_UNSPEC);
	int to = load_prog("vakt_to_pod", TC_ACT_UNSPEC);
	int ifindex = veth("vkt-att-c1");

	(void)state;
	attacher(&a, VAKT_ATTACH_CLSACT);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-c1", VAKT_HOOK_INGRESS, from), 0);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-c1", VAKT_HOOK_EGRESS, to), 0);
	}
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO),
			 vakt_prog_id_of_fd(from));
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_EGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO),
			 vakt_prog_id_of_fd(to));
	/* One filter per direction: the second attach replaced, it did not add. */
	assert_int_equal(sh("test $(tc filter show dev vkt-att-c1 ingress | grep -c 'direct-action') = 1"), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS, NULL), 0);
	assert_int_equal(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_EGRESS), vakt_prog_id_of_fd(to));

	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-c1", VAKT_HOOK_INGRESS), 1);
	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-c1", VAKT_HOOK_EGRESS), 1);
	assert_int_equal(vakt_clsact_remove_if_empty(ifindex, "vkt-att-c1"), 0);
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO), 0);
	assert_false(has_clsact("vkt-att-c1"));
	sh("ip link del vkt-att-c1");
	close(from);
	close(to);
}

static void test_restarted_agent_adopts_its_attachments_without_duplicates(void **state)
{
	struct vakt_attacher a;
	int ifindex = veth("vkt-att-r1");

	(void)state;
	for (int mode = VAKT_ATTACH_TCX; mode <= VAKT_ATTACH_CLSACT; mode++) {
		int old_prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);
		int new_prog;
		uint32_t first;

		attacher(&a, (enum vakt_attach_mode)mode);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-r1", VAKT_HOOK_INGRESS, old_prog), 0);
		/* The agent exits: its fds close, the pinned link / the filter stay. */
		close(old_prog);
		assert_true(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_INGRESS) > 0);
		new_prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-r1", VAKT_HOOK_INGRESS, new_prog), 0);
		assert_int_equal(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_INGRESS), vakt_prog_id_of_fd(new_prog));
		if (mode == VAKT_ATTACH_TCX) {
			assert_int_equal(tcx_count(ifindex, VAKT_HOOK_INGRESS, &first), 1);
			assert_int_equal((int)first, vakt_prog_id_of_fd(new_prog));
		} else {
			assert_int_equal(sh("test $(tc filter show dev vkt-att-r1 ingress | grep -c 'direct-action') = 1"), 0);
		}
		assert_true(vakt_detach_hook(&a, ifindex, "vkt-att-r1", VAKT_HOOK_INGRESS) >= 0);
		close(new_prog);
	}
	sh("ip link del vkt-att-r1");
}

static void test_switching_mode_replaces_our_program_of_the_other_mode(void **state)
{
	struct vakt_attacher a;
	int prog = load_prog("vakt_to_pod", TC_ACT_UNSPEC);
	int ifindex = veth("vkt-att-m1");

	(void)state;
	attacher(&a, VAKT_ATTACH_CLSACT);
	assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-m1", VAKT_HOOK_EGRESS, prog), 0);
	attacher(&a, VAKT_ATTACH_TCX);
	assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-m1", VAKT_HOOK_EGRESS, prog), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS, NULL), 1);
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_EGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO), 0);
	attacher(&a, VAKT_ATTACH_CLSACT);
	assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-m1", VAKT_HOOK_EGRESS, prog), 0);
	assert_int_equal(tcx_count(ifindex, VAKT_HOOK_EGRESS, NULL), 0);
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_EGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO),
			 vakt_prog_id_of_fd(prog));
	sh("ip link del vkt-att-m1");
	close(prog);
}

/* A foreign tcx program (link held by "another tool": an fd we keep) and a foreign clsact filter. */
struct foreign {
	int tcx_prog, tcx_link, cls_prog;
	uint32_t tcx_id, cls_id;
};

static void add_foreign(int ifindex, struct foreign *f)
{
	struct bpf_tc_hook h = { .sz = sizeof(h), .ifindex = ifindex,
				 .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
	struct bpf_tc_opts o = { .sz = sizeof(o), .handle = 1, .priority = 1 };
	LIBBPF_OPTS(bpf_link_create_opts, lo);

	f->tcx_prog = load_prog("other_tcx", TC_ACT_UNSPEC);
	f->cls_prog = load_prog("other_cls", TC_ACT_UNSPEC);
	f->tcx_link = bpf_link_create(f->tcx_prog, ifindex, (enum bpf_attach_type)VAKT_BPF_TCX_INGRESS, &lo);
	assert_true(f->tcx_link >= 0);
	assert_int_equal(bpf_tc_hook_create(&h), 0);
	h.attach_point = BPF_TC_INGRESS;
	o.prog_fd = f->cls_prog;
	assert_int_equal(bpf_tc_attach(&h, &o), 0);
	f->tcx_id = (uint32_t)vakt_prog_id_of_fd(f->tcx_prog);
	f->cls_id = (uint32_t)vakt_prog_id_of_fd(f->cls_prog);
}

static void assert_foreign_intact(int ifindex, const struct foreign *f)
{
	uint32_t ids[16], n = 16, found = 0;

	assert_int_equal(vakt_tcx_query(ifindex, VAKT_HOOK_INGRESS, ids, &n), 0);
	for (uint32_t i = 0; i < n; i++)
		found += ids[i] == f->tcx_id;
	assert_int_equal(found, 1);
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_INGRESS, 1, 1), (int)f->cls_id);
}

static void test_foreign_tc_programs_survive_attach_detach_and_cleanup(void **state)
{
	struct vakt_attacher a;
	struct foreign f;
	int ifindex = veth("vkt-att-f1");
	int prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);

	(void)state;
	add_foreign(ifindex, &f);
	for (int mode = VAKT_ATTACH_TCX; mode <= VAKT_ATTACH_CLSACT; mode++) {
		uint32_t ids[16], n = 16;

		attacher(&a, (enum vakt_attach_mode)mode);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-f1", VAKT_HOOK_INGRESS, prog), 0);
		assert_foreign_intact(ifindex, &f);
		if (mode == VAKT_ATTACH_TCX) {
			/* Ours runs first, ahead of the foreign program. */
			assert_int_equal(vakt_tcx_query(ifindex, VAKT_HOOK_INGRESS, ids, &n), 0);
			assert_int_equal(n, 2);
			assert_int_equal((int)ids[0], vakt_prog_id_of_fd(prog));
		}
		assert_true(vakt_detach_hook(&a, ifindex, "vkt-att-f1", VAKT_HOOK_INGRESS) >= 0);
		/* The foreign filter keeps the qdisc. */
		assert_int_equal(vakt_clsact_remove_if_empty(ifindex, "vkt-att-f1"), 0);
		assert_true(has_clsact("vkt-att-f1"));
		assert_foreign_intact(ifindex, &f);

		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-f1", VAKT_HOOK_INGRESS, prog), 0);
		assert_int_equal(vakt_attach_remove_all(&a), 0);
		assert_int_equal(vakt_hook_prog_id(&a, ifindex, VAKT_HOOK_INGRESS), 0);
		assert_true(has_clsact("vkt-att-f1"));
		assert_foreign_intact(ifindex, &f);
	}
	sh("ip link del vkt-att-f1");
	close(f.tcx_link);
	close(f.tcx_prog);
	close(f.cls_prog);
	close(prog);
}

static void test_foreign_filter_at_our_handle_is_never_replaced(void **state)
{
	struct bpf_tc_hook h = { .sz = sizeof(h), .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
	struct bpf_tc_opts o = { .sz = sizeof(o), .handle = VAKT_TC_HANDLE, .priority = VAKT_TC_PRIO };
	struct vakt_attacher a;
	int ifindex = veth("vkt-att-s1");
	int other = load_prog("squatter", TC_ACT_UNSPEC);
	int prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);

	(void)state;
	h.ifindex = ifindex;
	assert_int_equal(bpf_tc_hook_create(&h), 0);
	h.attach_point = BPF_TC_INGRESS;
	o.prog_fd = other;
	assert_int_equal(bpf_tc_attach(&h, &o), 0);
	attacher(&a, VAKT_ATTACH_CLSACT);
	assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-s1", VAKT_HOOK_INGRESS, prog), -EBUSY);
	assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-s1", VAKT_HOOK_INGRESS), 0);
	assert_int_equal(vakt_attach_remove_all(&a), 0);
	assert_int_equal(clsact_prog(ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO),
			 vakt_prog_id_of_fd(other));
	sh("ip link del vkt-att-s1");
	close(other);
	close(prog);
}

static void test_vanished_interface_fails_attach_and_is_fine_for_detach(void **state)
{
	struct vakt_attacher a;
	int ifindex = veth("vkt-att-v1");
	int prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);

	(void)state;
	assert_int_equal(sh("ip link del vkt-att-v1"), 0);
	for (int mode = VAKT_ATTACH_TCX; mode <= VAKT_ATTACH_CLSACT; mode++) {
		attacher(&a, (enum vakt_attach_mode)mode);
		assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-v1", VAKT_HOOK_INGRESS, prog), -ENODEV);
		assert_int_equal(vakt_detach_hook(&a, ifindex, "vkt-att-v1", VAKT_HOOK_INGRESS), 0);
	}
	close(prog);
}

static void test_pins_of_deleted_interfaces_are_swept(void **state)
{
	struct vakt_attacher a;
	char path[400];
	int ifindex = veth("vkt-att-d1");
	int prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);

	(void)state;
	attacher(&a, VAKT_ATTACH_TCX);
	assert_int_equal(vakt_attach_hook(&a, ifindex, "vkt-att-d1", VAKT_HOOK_INGRESS, prog), 0);
	snprintf(path, sizeof(path), "%s/%d-ingress", a.links_dir, ifindex);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(sh("ip link del vkt-att-d1"), 0);
	assert_int_equal(vakt_attach_sweep_defunct(&a), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	close(prog);
}

/*
 * Reduce this process to the DaemonSet's capabilities, as the kubelet starts vaktd: bounding
 * set first (dropping from it needs CAP_SETPCAP, which goes next), then no_new_privs, then
 * effective and permitted. 0 or -errno.
 */
static int drop_to_daemonset_caps(void)
{
	const uint64_t keep = 1ULL << CAP_BPF | 1ULL << CAP_NET_ADMIN | 1ULL << CAP_PERFMON;
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	/* The kernel may know more capabilities than our headers: drop until it says EINVAL. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (!(cap < 64 && keep & 1ULL << cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* In the child no cmocka: a failed check prints where and makes the child exit non-zero. */
#define CHILD_CHECK(cond)                                                                     \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: child check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                       \
			return 1;                                                             \
		}                                                                             \
	} while (0)

/* Runs fn(arg) in a child with only the DaemonSet's capabilities; its exit status. */
static int run_with_daemonset_caps(int (*fn)(void *arg), void *arg)
{
	int status = -1;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int err = drop_to_daemonset_caps();

		if (err) {
			fprintf(stderr, "child: cannot drop capabilities: err=%d\n", err);
			_exit(2);
		}
		/* _exit: the parent's atexit cleanup must not run here. */
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

struct adopt_case {
	int ifindex;
	const char *ifname;
	enum vakt_attach_mode mode;
	int old_id;
};

/* A restarted vaktd: its fresh program takes over the hook a previous agent left. */
static int adopt_as_restarted_agent(void *arg)
{
	const struct adopt_case *c = arg;
	struct vakt_attacher a;
	int prog, id;

	/* The point of the exercise: a lookup by id must be refused here. */
	CHILD_CHECK(bpf_prog_get_fd_by_id((uint32_t)c->old_id) < 0 && errno == EPERM);
	attacher(&a, c->mode);
	prog = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "vakt_from_pod", "GPL",
			     (const struct bpf_insn[]){
				     { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
				       .imm = TC_ACT_UNSPEC },
				     { .code = BPF_JMP | BPF_EXIT },
			     },
			     2, NULL);
	CHILD_CHECK(prog >= 0);
	id = vakt_prog_id_of_fd(prog);
	CHILD_CHECK(id > 0 && id != c->old_id);
	CHILD_CHECK(vakt_hook_prog_id(&a, c->ifindex, VAKT_HOOK_INGRESS) == c->old_id);
	CHILD_CHECK(vakt_attach_hook(&a, c->ifindex, c->ifname, VAKT_HOOK_INGRESS, prog) == 0);
	CHILD_CHECK(vakt_hook_prog_id(&a, c->ifindex, VAKT_HOOK_INGRESS) == id);
	if (c->mode == VAKT_ATTACH_TCX) {
		CHILD_CHECK(vakt_tcx_pinned_prog(&a, c->ifindex, VAKT_HOOK_INGRESS) == id);
	} else {
		char name[BPF_OBJ_NAME_LEN];

		CHILD_CHECK(vakt_clsact_prog(&a, c->ifindex, VAKT_HOOK_INGRESS, name, sizeof(name)) == id);
		CHILD_CHECK(!strcmp(name, "vakt_from_pod"));
	}
	/* Idempotent: attaching the same program again changes nothing. */
	CHILD_CHECK(vakt_attach_hook(&a, c->ifindex, c->ifname, VAKT_HOOK_INGRESS, prog) == 0);
	CHILD_CHECK(vakt_hook_prog_id(&a, c->ifindex, VAKT_HOOK_INGRESS) == id);
	close(prog);
	return 0;
}

static void test_restarted_agent_adopts_with_only_the_daemonset_capabilities(void **state)
{
	struct adopt_case c = { .ifname = "vkt-att-p1" };
	struct vakt_attacher a;

	(void)state;
	c.ifindex = veth(c.ifname);
	for (int mode = VAKT_ATTACH_TCX; mode <= VAKT_ATTACH_CLSACT; mode++) {
		int old_prog = load_prog("vakt_from_pod", TC_ACT_UNSPEC);
		uint32_t first;

		c.mode = (enum vakt_attach_mode)mode;
		attacher(&a, c.mode);
		assert_int_equal(vakt_attach_hook(&a, c.ifindex, c.ifname, VAKT_HOOK_INGRESS, old_prog), 0);
		c.old_id = vakt_prog_id_of_fd(old_prog);
		close(old_prog); /* the previous agent is gone; its attachment stays */
		assert_int_equal(run_with_daemonset_caps(adopt_as_restarted_agent, &c), 0);
		/* Still exactly one program of ours on the hook, and it is not the old one. */
		if (mode == VAKT_ATTACH_TCX) {
			assert_int_equal(tcx_count(c.ifindex, VAKT_HOOK_INGRESS, &first), 1);
			assert_int_not_equal((int)first, c.old_id);
		} else {
			assert_int_equal(sh("test $(tc filter show dev %s ingress | grep -c 'direct-action') = 1",
					    c.ifname), 0);
			assert_int_not_equal(clsact_prog(c.ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE,
							 VAKT_TC_PRIO), c.old_id);
		}
		assert_true(vakt_detach_hook(&a, c.ifindex, c.ifname, VAKT_HOOK_INGRESS) >= 0);
	}
	sh("ip link del %s", c.ifname);
}

struct squat_case {
	int ifindex;
	int squatter_id;
	int prog_fd;
};

/* Without CAP_SYS_ADMIN a foreign filter at our handle is still told apart and left alone. */
static int refuse_squatter_and_name_ours(void *arg)
{
	const struct squat_case *c = arg;
	struct vakt_attacher a;
	char name[BPF_OBJ_NAME_LEN];

	attacher(&a, VAKT_ATTACH_CLSACT);
	CHILD_CHECK(vakt_attach_hook(&a, c->ifindex, "vkt-att-p2", VAKT_HOOK_INGRESS, c->prog_fd) ==
		    -EBUSY);
	CHILD_CHECK(vakt_clsact_prog(&a, c->ifindex, VAKT_HOOK_INGRESS, name, sizeof(name)) == -EBUSY);
	CHILD_CHECK(vakt_hook_prog_id(&a, c->ifindex, VAKT_HOOK_INGRESS) == 0);
	CHILD_CHECK(vakt_detach_hook(&a, c->ifindex, "vkt-att-p2", VAKT_HOOK_INGRESS) == 0);
	CHILD_CHECK(vakt_attach_remove_all(&a) == 0);
	CHILD_CHECK(clsact_prog(c->ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO) ==
		    c->squatter_id);
	/* Our own filter on the other hook is named from the filter (the kernel's truncated program
	 * name, as libbpf put it there), not from the program. */
	CHILD_CHECK(vakt_attach_hook(&a, c->ifindex, "vkt-att-p2", VAKT_HOOK_EGRESS, c->prog_fd) == 0);
	CHILD_CHECK(vakt_clsact_prog(&a, c->ifindex, VAKT_HOOK_EGRESS, name, sizeof(name)) ==
		    vakt_prog_id_of_fd(c->prog_fd));
	CHILD_CHECK(!strcmp(name, "vakt_node_egres"));
	CHILD_CHECK(vakt_detach_hook(&a, c->ifindex, "vkt-att-p2", VAKT_HOOK_EGRESS) == 1);
	return 0;
}

static void test_squatter_is_refused_and_ours_named_without_cap_sys_admin(void **state)
{
	struct bpf_tc_hook h = { .sz = sizeof(h), .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
	struct bpf_tc_opts o = { .sz = sizeof(o), .handle = VAKT_TC_HANDLE, .priority = VAKT_TC_PRIO };
	struct squat_case c;
	int other = load_prog("squatter", TC_ACT_UNSPEC);

	(void)state;
	c.ifindex = veth("vkt-att-p2");
	c.prog_fd = load_prog("vakt_node_egress", TC_ACT_UNSPEC);
	c.squatter_id = vakt_prog_id_of_fd(other);
	h.ifindex = c.ifindex;
	assert_int_equal(bpf_tc_hook_create(&h), 0);
	h.attach_point = BPF_TC_INGRESS;
	o.prog_fd = other;
	assert_int_equal(bpf_tc_attach(&h, &o), 0);
	assert_int_equal(run_with_daemonset_caps(refuse_squatter_and_name_ours, &c), 0);
	assert_int_equal(clsact_prog(c.ifindex, VAKT_HOOK_INGRESS, VAKT_TC_HANDLE, VAKT_TC_PRIO),
			 c.squatter_id);
	sh("ip link del vkt-att-p2");
	close(other);
	close(c.prog_fd);
}

static void cleanup(void)
{
	sh("rm -rf %s", g_pin_root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcx_attach_is_idempotent_and_detach_removes_only_ours),
		cmocka_unit_test(test_clsact_attach_is_idempotent_and_detach_removes_the_empty_qdisc),
		cmocka_unit_test(test_restarted_agent_adopts_its_attachments_without_duplicates),
		cmocka_unit_test(test_switching_mode_replaces_our_program_of_the_other_mode),
		cmocka_unit_test(test_foreign_tc_programs_survive_attach_detach_and_cleanup),
		cmocka_unit_test(test_foreign_filter_at_our_handle_is_never_replaced),
		cmocka_unit_test(test_vanished_interface_fails_attach_and_is_fine_for_detach),
		cmocka_unit_test(test_pins_of_deleted_interfaces_are_swept),
		cmocka_unit_test(test_restarted_agent_adopts_with_only_the_daemonset_capabilities),
		cmocka_unit_test(test_squatter_is_refused_and_ours_named_without_cap_sys_admin),
	};

	if (vt_private_netns("test_attach"))
		return 1;
	if (!vakt_tcx_supported()) {
		fprintf(stderr, "test_attach: kernel without tcx; the tcx half cannot run\n");
		return 1;
	}
	snprintf(g_pin_root, sizeof(g_pin_root), LINKS_DIR_FMT, (int)getpid());
	atexit(cleanup);
	vakt_log_hook_libbpf();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
