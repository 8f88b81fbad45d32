/* SPDX-License-Identifier: Apache-2.0 */
/* testsys.h - shell and namespace helpers for the privileged C tests. */
#ifndef VAKT_TESTSYS_H
#define VAKT_TESTSYS_H

/* Runs the formatted command with system(); its exit status, -1 if it did not exit. */
int vt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Moves the calling test into a private network namespace with lo up, so
 * its interfaces never meet the host's or another test's. Needs root: says
 * why on stderr (prefixed with test) and returns -1 otherwise, and the test
 * must then fail, not skip.
 */
int vt_private_netns(const char *test);

#endif /* VAKT_TESTSYS_H */
