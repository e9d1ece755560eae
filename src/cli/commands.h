/* SPDX-License-Identifier: GPL-2.0-only */
/* Subcommands of the one `viridian` binary. Each returns the process exit code. */
#ifndef VIRIDIAN_CLI_COMMANDS_H
#define VIRIDIAN_CLI_COMMANDS_H

/* Exit codes shared by every subcommand (documented in docs/exit-codes.md). */
enum viridian_exit {
	VIRIDIAN_EXIT_OK = 0,
	VIRIDIAN_EXIT_ERROR = 1,     /* runtime failure: missing file, corrupt image, VMM error */
	VIRIDIAN_EXIT_USAGE = 2,     /* bad command line */
	VIRIDIAN_EXIT_EMULATION = 3, /* KVM internal error / emulation failure in the guest */
	VIRIDIAN_EXIT_GUEST_CRASH = 4, /* guest reported a crash through the crash MSRs */
	VIRIDIAN_EXIT_INTERRUPTED = 130, /* stopped by SIGINT/SIGTERM */
};

int cmd_run(int argc, char **argv);
int cmd_vhd(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_vmms(int argc, char **argv);
int cmd_vmwp(int argc, char **argv);

#endif
