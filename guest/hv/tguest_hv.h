/* Test-guest glue for the hv/synic/stimer/vmbus scenarios (freestanding build only). */
#ifndef TGUEST_HV_TGUEST_HV_H
#define TGUEST_HV_TGUEST_HV_H

#include <stddef.h>
#include <stdint.h>

#include "hv/winhv.h"

/*
 * The partition's WinHv state, initialised once on the boot CPU (detect, OS ID, hypercall
 * page, this CPU's VP state). NULL with *why when this is not a usable Hyper-V partition.
 */
struct winhv *tguest_hv(const char **why);
/* winhv_synic_enable(SINT 2) on the calling CPU, once. 0 or -1 with *why. */
int tguest_hv_synic(const char **why);
/* Value of key=value on the kernel command line (copied to buf), or NULL. */
const char *tguest_cmdline_get(const char *key, char *buf, size_t size);
/* Unsigned number (decimal or 0x hex) from the command line, or def. */
uint64_t tguest_cmdline_u64(const char *key, uint64_t def);

#endif
