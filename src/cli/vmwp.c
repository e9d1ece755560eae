// SPDX-License-Identifier: GPL-2.0-only
/* viridian vmwp: the worker of one VM (src/vmwp). */
#include "cli/commands.h"
#include "vmwp/vmwp.h"

int cmd_vmwp(int argc, char **argv)
{
	return vmwp_main(argc, argv);
}
