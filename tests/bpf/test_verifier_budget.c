// SPDX-License-Identifier: Apache-2.0
/*
 * test_verifier_budget - every datapath program leaves the verifier room.
 *
 * The kernel refuses a program whose verification walks more than 1M
 * instructions (E2BIG), and the walk grows with every branch that splits
 * verifier states (a second conntrack map chosen per packet once pushed
 * vakt_to_pod from 426k past the limit). Kernels differ in how well they
 * prune, so a program that loads here with little margin may not load on
 * another. This test loads the skeleton with verifier statistics and fails
 * when a program uses more than VAKT_VERIFIER_BUDGET of the limit, so the
 * margin is spent knowingly. Needs root; fails (never skips) when it cannot.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/libbpf.h>

#include "skel.h"

#define VERIFIER_LIMIT 1000000
/* Half the limit: the headroom any one change may take without a decision. */
#define VAKT_VERIFIER_BUDGET (VERIFIER_LIMIT / 2)
#define LOG_BYTES (64 * 1024)

/* "processed N insns" of a verifier log at level 4 (statistics only); -1 if absent. */
static long processed_insns(const char *log)
{
	const char *s = log ? strstr(log, "processed ") : NULL;

	return s ? strtol(s + strlen("processed "), NULL, 10) : -1;
}

static void test_every_program_stays_within_half_the_verifier_limit(void **state)
{
	static char logs[8][LOG_BYTES];
	struct vakt_bpf *skel;
	struct bpf_program *p;
	struct bpf_map *m;
	int n = 0, over = 0;

	(void)state;
	skel = vakt_bpf__open();
	if (!skel) {
		fail_msg("cannot open the skeleton: errno %d", errno);
		return;
	}
	/* Private maps: the test must not see or leave pinned state. */
	bpf_object__for_each_map(m, skel->obj)
		assert_int_equal(bpf_map__set_pin_path(m, NULL), 0);
	bpf_object__for_each_program(p, skel->obj) {
		assert_true(n < 8);
		assert_int_equal(bpf_program__set_log_level(p, 4), 0);
		assert_int_equal(bpf_program__set_log_buf(p, logs[n++], LOG_BYTES), 0);
	}
	assert_int_equal(vakt_bpf__load(skel), 0);
	bpf_object__for_each_program(p, skel->obj) {
		size_t size;
		long insns = processed_insns(bpf_program__log_buf(p, &size));

		printf("%-18s verifier processed %7ld insns (budget %d)\n", bpf_program__name(p),
		       insns, VAKT_VERIFIER_BUDGET);
		if (insns < 0 || insns > VAKT_VERIFIER_BUDGET)
			over++;
	}
	vakt_bpf__destroy(skel);
	assert_int_equal(over, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_program_stays_within_half_the_verifier_limit),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_verifier_budget: needs root (BPF program load)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
