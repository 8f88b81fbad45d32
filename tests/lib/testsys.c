// SPDX-License-Identifier: Apache-2.0
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testsys.h"

int vt_sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc == -1)
		return -1;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int vt_private_netns(const char *test)
{
	if (geteuid() != 0) {
		fprintf(stderr, "%s: needs root (BPF, network namespaces)\n", test);
		return -1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "%s: unshare(CLONE_NEWNET): ", test);
		perror(NULL);
		return -1;
	}
	if (vt_sh("ip link set lo up")) {
		fprintf(stderr, "%s: cannot bring lo up\n", test);
		return -1;
	}
	return 0;
}
