// SPDX-License-Identifier: Apache-2.0
/*
 * vakt.c - the vakt CLI: dispatch to a subcommand.
 *
 * The table below is the only list of subcommands; `vakt help` prints it.
 * Adding a command is one line here and one prototype in tools/cli.h.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

static const struct vakt_cmd commands[] = {
	{ "sim", vakt_cmd_sim, "can A reach B on port P, and why: answered from manifests" },
	{ "status", vakt_cmd_status, "what the datapath enforces now: endpoints, maps, counters" },
	{ "flows", vakt_cmd_flows, "follow the packets the datapath drops, live (from vaktd)" },
	{ "version", vakt_cmd_version, "print the version" },
	{ "help", vakt_cmd_help, "list the commands" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: vakt COMMAND [ARGS]...\n\n"
		   "Kubernetes NetworkPolicy enforcement with eBPF: the command-line tool.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n`vakt COMMAND --help` describes a command.\n");
}

int vakt_cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return VAKT_EXIT_OK;
}

int vakt_cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("vakt %s\n", VAKT_VERSION);
	return VAKT_EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *name;

	/* The CLI's own output is its answer; library logs are for problems only. */
	vakt_log_set_level(VAKT_LOG_WARN);
	if (argc < 2) {
		usage(stderr);
		return VAKT_EXIT_ERROR;
	}
	name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help"))
		name = "help";
	else if (!strcmp(name, "--version"))
		name = "version";
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (!strcmp(commands[i].name, name))
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "vakt: unknown command '%s' (try 'vakt help')\n", argv[1]);
	return VAKT_EXIT_ERROR;
}
