// SPDX-License-Identifier: GPL-2.0-only
/* viridian: one binary, subcommands (like git). */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

static int cmd_version(int argc, char **argv)
{
	printf("viridian %s\n", VIRIDIAN_VERSION);
	return VIRIDIAN_EXIT_OK;
}

struct viridian_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct viridian_command viridian_commands[] = {
#ifdef HAVE_CMD_RUN
	{ "run", cmd_run, "boot one VM in the foreground" },
#endif
#ifdef HAVE_CMD_VHD
	{ "vhd", cmd_vhd, "create, inspect, check and convert disk images" },
#endif
#ifdef HAVE_CMD_VM
	{ "vm", cmd_vm, "manage VMs through the management service" },
#endif
#ifdef HAVE_CMD_VMMS
	{ "vmms", cmd_vmms, "run the management service (daemon)" },
#endif
#ifdef HAVE_CMD_VMWP
	{ "vmwp", cmd_vmwp, "worker process for one VM (started by vmms)" },
#endif
	{ "version", cmd_version, "print the version" },
};

static void viridian_usage(FILE *out)
{
	fprintf(out, "usage: viridian <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(viridian_commands) / sizeof(viridian_commands[0]); i++)
		fprintf(out, "  %-8s %s\n", viridian_commands[i].name, viridian_commands[i].summary);
	fprintf(out, "\n'viridian <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		viridian_usage(stderr);
		return VIRIDIAN_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		viridian_usage(stdout);
		return VIRIDIAN_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(viridian_commands) / sizeof(viridian_commands[0]); i++)
		if (!strcmp(argv[1], viridian_commands[i].name))
			return viridian_commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "viridian: unknown command '%s'; 'viridian --help' lists them\n", argv[1]);
	return VIRIDIAN_EXIT_USAGE;
}
