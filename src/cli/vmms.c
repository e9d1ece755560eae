// SPDX-License-Identifier: GPL-2.0-only
/* `viridian vmms`: the management service lives in src/vmms. */
#include "cli/commands.h"
#include "vmms/vmms.h"

int cmd_vmms(int argc, char **argv)
{
	return vmms_main(argc, argv);
}
