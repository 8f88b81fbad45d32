/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the subcommands of the vakt CLI.
 *
 * tools/vakt.c dispatches on argv[1] through one table of struct vakt_cmd;
 * a new subcommand is a function with the vakt_cmd_fn signature, declared
 * here, plus one line in that table. A subcommand receives argv starting at
 * its own name (so getopt_long works unchanged) and returns the process exit
 * status: 0 success, 1 a negative answer where the command defines one
 * (vakt sim: denied), 2 any error.
 */
#ifndef VAKT_CLI_H
#define VAKT_CLI_H

#define VAKT_EXIT_OK 0
#define VAKT_EXIT_NO 1
#define VAKT_EXIT_ERROR 2

typedef int vakt_cmd_fn(int argc, char **argv);

struct vakt_cmd {
	const char *name;
	vakt_cmd_fn *fn;
	const char *help; /* one line for `vakt help` */
};

int vakt_cmd_sim(int argc, char **argv);     /* tools/sim.c */
int vakt_cmd_status(int argc, char **argv);  /* tools/status.c */
int vakt_cmd_flows(int argc, char **argv);   /* tools/flows.c */
int vakt_cmd_version(int argc, char **argv); /* tools/vakt.c */
int vakt_cmd_help(int argc, char **argv);    /* tools/vakt.c */

#endif /* VAKT_CLI_H */
