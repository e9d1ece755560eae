/* SPDX-License-Identifier: GPL-2.0-only */
/* `viridian vmms`: the management service (registry, REST API, workers). */
#ifndef VIRIDIAN_VMMS_VMMS_H
#define VIRIDIAN_VMMS_VMMS_H

/* Runs the daemon in the foreground until SIGINT/SIGTERM; returns the exit code. */
int vmms_main(int argc, char **argv);

#endif
